"""ShadeformClient against the fake API on loopback: retries, errors, redirects, secrecy."""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shadeanalytics.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from shadeanalytics.live.client import (
    DEFAULT_BASE_URL,
    ClientPolicy,
    SessionTransport,
    ShadeformClient,
)
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, Fault, State

# A unique key, so that searching any output for it is meaningful.
KEY = "sk-canary-Zq81xVb3"
BURST = "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f"
STEADY = "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb"
LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"
TRAIN = "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40"


@pytest.fixture
def api() -> Iterator[FakeShadeformAPI]:
    with FakeShadeformAPI(api_key=KEY, hang_seconds=2.0) as fake:
        yield fake


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def make_client(
    api: FakeShadeformAPI, waits: list[float]
) -> Iterator[Callable[..., ShadeformClient]]:
    """Clients on the fake whose waits are recorded, not slept, with jitter pinned to 1.0."""
    clients: list[ShadeformClient] = []

    def make(*, api_key: str = KEY, base_url: str = api.url, **policy: Any) -> ShadeformClient:
        settings: dict[str, Any] = {
            "sleep": waits.append,
            "jitter": lambda: 1.0,
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
        }
        settings.update(policy)
        client = ShadeformClient(api_key, base_url=base_url, policy=ClientPolicy(**settings))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., ShadeformClient]) -> ShadeformClient:
    return make_client()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- success paths ----------------------------------------------------------------------------


def test_each_method_returns_the_current_state(
    api: FakeShadeformAPI, client: ShadeformClient
) -> None:
    """Each method GETs its endpoint once, with the key, and returns the parsed body."""
    state = api.state
    assert client.clusters() == state.clusters
    assert client.instances() == state.instances
    assert client.instance_types() == state.instance_types
    assert client.cluster_info(STEADY) == state.clusters["clusters"][0]
    assert client.instance_info(LLM)["envs"][0]["name"] == "WANDB_API_KEY"
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", "/v1/clusters"),
        ("GET", "/v1/instances"),
        ("GET", "/v1/instances/types"),
        ("GET", f"/v1/clusters/{STEADY}/info"),
        ("GET", f"/v1/instances/{LLM}/info"),
    ]
    assert all(r.headers["X-API-KEY"] == KEY for r in api.requests)


def test_instance_types_sends_its_filters(api: FakeShadeformAPI, client: ShadeformClient) -> None:
    """Filters become query parameters, booleans as true/false, and the server applies them."""
    body = client.instance_types(cloud="paperspace", available=True, num_gpus=1, sort="price")
    assert [t["shade_instance_type"] for t in body["instance_types"]] == ["A6000"]
    assert api.requests[0].query == "cloud=paperspace&available=true&num_gpus=1&sort=price"


def test_instance_types_refuses_unknown_filters(
    api: FakeShadeformAPI, client: ShadeformClient
) -> None:
    """An unknown filter is a TypeError before any request."""
    with pytest.raises(TypeError, match="gpu_count"):
        client.instance_types(gpu_count=8)
    assert api.requests == []


def test_ids_are_quoted_into_the_path(api: FakeShadeformAPI, client: ShadeformClient) -> None:
    """An id cannot change the endpoint: it is percent-encoded as one path segment."""
    with pytest.raises(NotFoundError):
        client.cluster_info("../instances")
    assert api.requests[0].path == "/v1/clusters/..%2Finstances/info"


def test_a_poll_loop_sees_the_scripted_lifecycle() -> None:
    """Polling with advance_on walks the default scenario; vanished ids raise NotFoundError."""
    with (
        FakeShadeformAPI(api_key=KEY, advance_on="/instances/types") as api,
        ShadeformClient(KEY, base_url=api.url) as client,
    ):
        seen = []
        for _ in api.scenario:
            instances = client.instances()["instances"]
            client.instance_types()
            seen.append(next((i["status"] for i in instances if i["id"] == TRAIN), None))
        assert seen == [
            "creating", "pending_provider", "pending", "active", "deleting", "deleted", None,
        ]  # fmt: skip
        with pytest.raises(NotFoundError):
            client.instance_info(TRAIN)


# --- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_twice_then_success(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float], status: int
) -> None:
    """Two 5xx then a 200: three requests, waits 0.5 s and 1.0 s, the 200's body returned."""
    api.inject("/clusters", status, times=2)
    assert client.clusters() == api.state.clusters
    assert len(api.requests) == 3
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_every_time_is_a_server_error(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float], status: int
) -> None:
    """A 5xx on all three attempts raises ServerError naming method, path, status, attempts."""
    api.inject("/clusters", status, times=3)
    with pytest.raises(ServerError) as excinfo:
        client.clusters()
    error = excinfo.value
    assert str(error).startswith(f"GET /clusters: {status} ")
    assert str(error).endswith("after 3 attempts")
    assert (error.endpoint, error.status) == ("/clusters", status)
    assert len(api.requests) == 3
    assert waits == [0.5, 1.0]


def test_503_message_reads_like_the_example(api: FakeShadeformAPI, client: ShadeformClient) -> None:
    """The message is "GET /clusters: 503 Service Unavailable ... after 3 attempts"."""
    api.inject("/clusters", 503, times=3)
    with pytest.raises(ServerError, match=r"^GET /clusters: 503 Service Unavailable .*after 3"):
        client.clusters()


def test_429_retry_after_seconds_is_a_floor(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """429 with Retry-After: 2 waits 2.0 s (more than the 0.5 s jitter), then succeeds."""
    api.inject("/instances", 429, retry_after=2)
    client.instances()
    assert len(api.requests) == 2
    assert waits == [2.0]


def test_retry_after_below_the_backoff_keeps_the_backoff(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """Retry-After: 0 is only a floor: the 0.5 s backoff still applies."""
    api.inject("/instances", 429, retry_after=0)
    client.instances()
    assert waits == [0.5]


def test_retry_after_is_honoured_on_503(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """A 503 with Retry-After: 3 waits 3.0 s."""
    api.inject("/instances", 503, retry_after=3)
    client.instances()
    assert waits == [3.0]


def test_retry_after_past_the_cap_stops_at_once(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """Retry-After: 120 (cap 60 s) raises RateLimitedError after one request, no wait."""
    api.inject("/clusters", 429, times=3, retry_after=120)
    with pytest.raises(RateLimitedError, match="Retry-After 120 s exceeds the 60 s cap") as excinfo:
        client.clusters()
    assert excinfo.value.status == 429
    assert len(api.requests) == 1
    assert waits == []


def test_retry_after_http_date_is_honoured(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """Retry-After as an HTTP-date 10 s ahead waits about 10 s (1 s date resolution)."""
    api.inject("/clusters", 429, retry_after=datetime.now(UTC) + timedelta(seconds=10))
    client.clusters()
    [wait] = waits
    assert 8.0 < wait <= 10.0
    assert len(api.requests) == 2


def test_retry_after_http_date_past_the_cap_stops_at_once(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """Retry-After as an HTTP-date an hour ahead raises RateLimitedError after one request."""
    api.inject("/clusters", 429, retry_after=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(RateLimitedError):
        client.clusters()
    assert len(api.requests) == 1
    assert waits == []


def test_unparseable_retry_after_is_ignored(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """A Retry-After that is neither seconds nor a date falls back to the backoff."""
    api.inject("/clusters", 429, retry_after="soon")
    client.clusters()
    assert waits == [0.5]


def test_429_every_time_is_rate_limited(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """429 on all attempts raises RateLimitedError after three requests."""
    api.inject("/clusters", 429, times=3)
    with pytest.raises(RateLimitedError, match=r"^GET /clusters: 429 Too Many Requests.*after 3"):
        client.clusters()
    assert len(api.requests) == 3
    assert waits == [0.5, 1.0]


def test_jitter_comes_from_the_injected_random(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """wait = random() * min(cap, base * 2**(attempt-1)): 0.25*0.5 and 0.75*1.0."""
    draws = iter([0.25, 0.75])
    client = make_client(jitter=lambda: next(draws))
    api.inject("/clusters", 502, times=2)
    client.clusters()
    assert waits == [0.125, 0.75]


def test_backoff_is_capped(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """With cap 0.75 s and five attempts the waits are 0.5, 0.75, 0.75, 0.75."""
    client = make_client(backoff_cap=0.75, max_attempts=5)
    api.inject("/clusters", 503, times=4)
    client.clusters()
    assert len(api.requests) == 5
    assert waits == [0.5, 0.75, 0.75, 0.75]


def test_a_wait_past_the_deadline_stops_the_retries(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """With 0.75 s left, the 0.5 s wait is taken and the 1.0 s one is not: two requests."""
    client = make_client(deadline=time.monotonic() + 0.75)
    api.inject("/clusters", 503, times=3)
    with pytest.raises(ServerError, match="would pass the run deadline; gave up after 2"):
        client.clusters()
    assert len(api.requests) == 2
    assert waits == [0.5]


def test_retry_after_past_the_deadline_is_rate_limited(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """A Retry-After under the cap but past the deadline raises RateLimitedError at once."""
    client = make_client(deadline=time.monotonic() + 2)
    api.inject("/clusters", 429, retry_after=5)
    with pytest.raises(RateLimitedError, match="deadline"):
        client.clusters()
    assert len(api.requests) == 1
    assert waits == []


def test_a_passed_deadline_sends_nothing(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient]
) -> None:
    """Once the deadline has passed no request is sent."""
    client = make_client(deadline=time.monotonic() - 1)
    with pytest.raises(TransportError, match="deadline"):
        client.clusters()
    assert api.requests == []


# --- errors that are not retried -------------------------------------------------------------


def test_404_is_not_found_without_retry(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """An unknown id is one request and a NotFoundError naming the path and 404."""
    with pytest.raises(NotFoundError, match=r"^GET /clusters/nope/info: 404 Not Found") as excinfo:
        client.cluster_info("nope")
    assert (excinfo.value.endpoint, excinfo.value.status) == ("/clusters/nope/info", 404)
    assert len(api.requests) == 1
    assert waits == []


def test_wrong_key_is_an_authentication_error_with_a_hint(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """A rejected key: one request, AuthenticationError with the hint, the key not quoted."""
    wrong = "sk-wrong-Hd73kq"
    client = make_client(api_key=wrong)
    with pytest.raises(AuthenticationError) as excinfo:
        client.clusters()
    message = str(excinfo.value)
    # the key came from api_key=, so the hint names it (not SHADEFORM_API_KEY)
    assert message == ("GET /clusters: 401 Unauthorized; the API key was rejected, "
                       "check api_key=")
    assert wrong not in message
    assert KEY not in message
    assert excinfo.value.status == 401
    assert len(api.requests) == 1
    assert waits == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_not_retried(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float], status: int
) -> None:
    """Injected 401 and 403 raise AuthenticationError after one request."""
    api.inject("/instances", status)
    with pytest.raises(AuthenticationError, match="check api_key="):
        client.instances()
    assert len(api.requests) == 1
    assert waits == []


def test_other_4xx_is_a_plain_api_error_with_the_error_code_only(
    api: FakeShadeformAPI, client: ShadeformClient
) -> None:
    """A 409 is one request and an ApiError carrying error_code but not the body's text."""
    api.inject("/instances", 409)
    with pytest.raises(ApiError) as excinfo:
        client.instances()
    assert type(excinfo.value) is ApiError
    assert str(excinfo.value) == "GET /instances: 409 Conflict [error_code OUT_OF_STOCK]"
    assert len(api.requests) == 1


# --- transport failures -----------------------------------------------------------------------


def test_hang_every_time_is_a_transport_error(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """Three read timeouts (0.2 s each): three requests, waits 0.5 and 1.0, TransportError."""
    client = make_client(read_timeout=0.2)
    api.inject("/clusters", "hang", times=3)
    with pytest.raises(TransportError, match=r"^GET /clusters: read timeout after 3 attempts$"):
        client.clusters()
    assert len(api.requests) == 3
    assert waits == [0.5, 1.0]


def test_one_hang_is_retried(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """A single read timeout is retried and the second request succeeds."""
    client = make_client(read_timeout=0.2)
    api.inject("/clusters", "hang")
    assert client.clusters() == api.state.clusters
    assert len(api.requests) == 2
    assert waits == [0.5]


def test_connection_refused_is_retried_then_a_transport_error(
    make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """Nothing listening: three attempts, waits 0.5 and 1.0, TransportError."""
    client = make_client(base_url=f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(TransportError, match="connection failed after 3 attempts") as excinfo:
        client.clusters()
    assert waits == [0.5, 1.0]
    assert isinstance(excinfo.value.__cause__, requests.ConnectionError)
    assert excinfo.value.__suppress_context__


@pytest.mark.parametrize("fault", ["truncated", "invalid_json", "html", "empty"])
def test_bad_200_bodies_are_bad_responses_without_retry(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float], fault: Fault
) -> None:
    """A truncated, non-JSON, HTML or empty 200 is one request and a BadResponseError."""
    api.inject("/clusters", fault)
    with pytest.raises(BadResponseError, match=r"^GET /clusters: 200 OK ") as excinfo:
        client.clusters()
    assert (excinfo.value.endpoint, excinfo.value.status) == ("/clusters", 200)
    assert len(api.requests) == 1
    assert waits == []


def test_html_is_named_as_such(api: FakeShadeformAPI, client: ShadeformClient) -> None:
    """An HTML page in a 200 is reported as looking like HTML."""
    api.inject("/instances", "html")
    with pytest.raises(BadResponseError, match="not JSON \\(looks like HTML\\)"):
        client.instances()


def test_bad_json_error_does_not_chain_the_body(
    api: FakeShadeformAPI, client: ShadeformClient
) -> None:
    """The JSON decoder error, which holds the body, is neither cause nor context."""
    api.inject("/clusters", "invalid_json")
    with pytest.raises(BadResponseError) as excinfo:
        client.clusters()
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None


def test_wrong_shapes_are_bad_responses_that_do_not_quote_the_body(
    make_client: Callable[..., ShadeformClient],
) -> None:
    """Valid JSON of the wrong shape names the endpoint and the expectation, not the body."""
    canary = "body-canary-Tq0"
    state = State(
        at=datetime(2026, 1, 1, tzinfo=UTC),
        clusters={"clusters": {"secret": canary}},
        instances=[canary],
        instance_types={"instance_types": canary},
    )
    with FakeShadeformAPI(api_key=KEY, scenario=[state]) as api:
        client = make_client(base_url=api.url)
        calls = [client.clusters, client.instances, client.instance_types]
        for call, key in zip(calls, ["clusters", "instances", "instance_types"], strict=True):
            with pytest.raises(BadResponseError, match=f"a list under '{key}'") as excinfo:
                call()
            assert canary not in str(excinfo.value)
        assert len(api.requests) == 3


def test_info_without_an_id_is_a_bad_response(make_client: Callable[..., ShadeformClient]) -> None:
    """An info body that is not an object with a string id is a BadResponseError."""
    state = State(
        at=datetime(2026, 1, 1, tzinfo=UTC),
        clusters={"clusters": [{"id": "c1", "instances": []}]},
        instances={"instances": [{"id": "i1"}]},
        instance_types={"instance_types": []},
        instance_info_extras={"i1": {"id": 7}},
    )
    with FakeShadeformAPI(api_key=KEY, scenario=[state]) as api:
        client = make_client(base_url=api.url)
        assert client.cluster_info("c1") == {"id": "c1", "instances": []}
        with pytest.raises(BadResponseError, match="an object with a string 'id'"):
            client.instance_info("i1")


# --- redirects --------------------------------------------------------------------------------


def test_off_origin_redirect_is_refused_and_the_key_never_leaves(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """A 302 to another origin: TransportError, and the other server receives nothing."""
    api.inject("/clusters", "redirect")
    with pytest.raises(TransportError, match="refused a 302 Found redirect to another origin"):
        client.clusters()
    assert len(api.requests) == 1
    assert api.other.requests == []
    assert waits == []


def test_same_origin_redirect_is_followed_with_the_key(
    api: FakeShadeformAPI, client: ShadeformClient
) -> None:
    """A 302 to the same origin is followed: two requests, both carrying the key."""
    api.inject("/instances", "redirect_same_origin")
    assert client.instances() == api.state.instances
    assert [r.path for r in api.requests] == ["/v1/instances", "/v1/instances"]
    assert all(r.api_key_present for r in api.requests)


def test_same_origin_redirect_keeps_the_query(
    api: FakeShadeformAPI, client: ShadeformClient
) -> None:
    """A followed redirect asks for what its Location says, the query included, once."""
    api.inject("/instances/types", "redirect_same_origin")
    client.instance_types(cloud="paperspace")
    assert [r.query for r in api.requests] == ["cloud=paperspace", "cloud=paperspace"]


def test_a_redirect_loop_stops_after_five_redirects(
    api: FakeShadeformAPI, client: ShadeformClient, waits: list[float]
) -> None:
    """Endless same-origin redirects: six requests (one plus five followed), TransportError."""
    api.inject("/clusters", "redirect_same_origin", times=10)
    with pytest.raises(TransportError, match="more than 5 redirects"):
        client.clusters()
    assert len(api.requests) == 6
    assert waits == []


# --- secrecy ----------------------------------------------------------------------------------


def test_repr_and_str_hide_the_key(api: FakeShadeformAPI, client: ShadeformClient) -> None:
    """repr shows the base URL and key=***, never the key."""
    assert repr(client) == f"ShadeformClient(base_url={api.url!r}, key=***)"
    assert KEY not in str(client)
    assert KEY not in repr(vars(client).get("base_url"))


def test_the_key_never_reaches_logs_or_errors(
    api: FakeShadeformAPI, client: ShadeformClient, caplog: pytest.LogCaptureFixture
) -> None:
    """With every logger at DEBUG, no log line and no exception (or its cause) holds the key."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    faults: list[Any] = [503, 429, 404, 401, "hang", "truncated", "html", "redirect"]
    for fault in faults:
        api.inject("/clusters", fault, times=3)
        try:
            client.clusters()
        except ApiError as exc:
            errors.append(exc)
    client.instances()
    assert len(errors) == len(faults)
    texts = [caplog.text] + [str(e) for e in errors] + [str(e.__cause__) for e in errors]
    assert all(KEY not in text for text in texts)


def test_one_log_line_per_request(
    api: FakeShadeformAPI, client: ShadeformClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Each HTTP request is one INFO line with path, status, elapsed time and attempt."""
    caplog.set_level(logging.INFO, logger="shadeanalytics.live.client")
    api.inject("/clusters", 503)
    client.clusters()
    lines = [r.getMessage() for r in caplog.records if r.name == "shadeanalytics.live.client"]
    assert len(lines) == len(api.requests) == 2
    assert lines[0].startswith("GET /v1/clusters -> 503 in ")
    assert lines[0].endswith("ms (attempt 1)")
    assert lines[1].startswith("GET /v1/clusters -> 200 in ")
    assert lines[1].endswith("ms (attempt 2)")


def test_the_library_configures_no_log_handlers() -> None:
    """The client's logger has no handlers of its own."""
    assert logging.getLogger("shadeanalytics.live.client").handlers == []


# --- configuration ----------------------------------------------------------------------------


def test_key_and_base_url_from_the_environment(
    api: FakeShadeformAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHADEFORM_API_KEY and SHADEFORM_BASE_URL configure a client built with no arguments."""
    monkeypatch.setenv("SHADEFORM_API_KEY", KEY)
    monkeypatch.setenv("SHADEFORM_BASE_URL", api.url)
    with ShadeformClient() as client:
        assert client.base_url == api.url
        assert client.clusters() == api.state.clusters
    assert api.requests[0].headers["X-API-KEY"] == KEY


def test_arguments_override_the_environment(
    api: FakeShadeformAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """api_key= and base_url= win over the environment variables."""
    monkeypatch.setenv("SHADEFORM_API_KEY", "env-key")
    monkeypatch.setenv("SHADEFORM_BASE_URL", "http://127.0.0.1:9/v1")
    with ShadeformClient(KEY, base_url=api.url + "/") as client:
        assert client.base_url == api.url
        client.instances()
    assert api.requests[0].headers["X-API-KEY"] == KEY


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SHADEFORM_BASE_URL the base URL is the public API."""
    monkeypatch.delenv("SHADEFORM_BASE_URL", raising=False)
    assert ShadeformClient(KEY).base_url == DEFAULT_BASE_URL == "https://api.shadeform.ai/v1"


@pytest.mark.parametrize("env_value", [None, ""], ids=["unset", "empty"])
def test_a_missing_key_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, env_value: str | None
) -> None:
    """No key anywhere raises AuthenticationError telling how to provide one."""
    if env_value is None:
        monkeypatch.delenv("SHADEFORM_API_KEY", raising=False)
    else:
        monkeypatch.setenv("SHADEFORM_API_KEY", env_value)
    with pytest.raises(AuthenticationError, match=r"set SHADEFORM_API_KEY or pass api_key="):
        ShadeformClient()


def test_a_malformed_key_is_refused_without_quoting_it() -> None:
    """A key with a newline is refused before any request, and not echoed."""
    with pytest.raises(AuthenticationError) as excinfo:
        ShadeformClient("sk-abc\nX-Injected: 1")
    assert "sk-abc" not in str(excinfo.value)


@pytest.mark.parametrize(
    "base_url", ["ftp://example.com/v1", "/v1", "https://user:pw@api.example/v1",
                 "http://127.0.0.1:abc/v1", "http://127.0.0.1:99999/v1",
                 "https://api.example/v1?x=1", "https://api.example/v1#f"]
)
def test_bad_base_urls_are_refused(base_url: str) -> None:
    """base_url must be an absolute http(s) URL with a usable port, without credentials."""
    with pytest.raises(ValueError, match=r"^the base URL "):
        ShadeformClient(KEY, base_url=base_url)


def test_a_given_session_is_used_and_left_open(api: FakeShadeformAPI) -> None:
    """A caller's session carries the requests and is not closed by the client."""
    with requests.Session() as session:
        with ShadeformClient(KEY, base_url=api.url,
                             transport=SessionTransport(session)) as client:
            client.clusters()
        assert session.get(api.url + "/instances", headers={"X-API-KEY": KEY}).ok


# --- the policy, the transport seam and the old keywords -----------------------------------


def test_the_default_policy_is_the_documented_one() -> None:
    """ClientPolicy() holds SECURITY.md's numbers: 5 s / 30 s, 3 attempts, 0.5 s..20 s, 60 s."""
    policy = ClientPolicy()
    assert (policy.connect_timeout, policy.read_timeout, policy.max_attempts) == (5.0, 30.0, 3)
    assert policy.retry_statuses == frozenset({429, 500, 502, 503, 504})
    assert (policy.backoff_base, policy.backoff_cap, policy.retry_after_cap) == (0.5, 20.0, 60.0)
    assert (policy.attempt_cap, policy.deadline, policy.max_response_bytes) == (
        60.0, None, 128 * 1024 * 1024)  # fmt: skip
    assert (policy.sleep, policy.jitter, policy.clock) == (time.sleep, random.random,
                                                           time.monotonic)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("max_attempts", 0, "max_attempts must be at least 1"),
     ("attempt_cap", 0.0, "attempt_cap and max_response_bytes must be positive"),
     ("max_response_bytes", 0, "attempt_cap and max_response_bytes must be positive"),
     ("read_timeout", 0.0, "connect_timeout and read_timeout must be positive"),
     ("backoff_cap", -1.0, "backoff_base, backoff_cap and retry_after_cap must not be negative")],
)
def test_a_policy_that_cannot_work_is_refused(field: str, value: Any, message: str) -> None:
    """An impossible policy value raises ValueError naming the field."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        ClientPolicy(**{field: value})


def test_until_keeps_the_earlier_deadline() -> None:
    """policy.until(d) sets d, unless the policy's own deadline comes first."""
    assert ClientPolicy().until(100.0).deadline == 100.0
    assert ClientPolicy(deadline=50.0).until(100.0).deadline == 50.0
    assert ClientPolicy(deadline=150.0).until(100.0).deadline == 100.0


def test_the_injected_clock_decides_the_deadline(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """A clock frozen at 100 with the deadline at 100.75: the 0.5 s wait fits, 1.0 s does not."""
    client = make_client(clock=lambda: 100.0, deadline=100.75)
    api.inject("/clusters", 503, times=3)
    with pytest.raises(ServerError, match="would pass the run deadline; gave up after 2"):
        client.clusters()
    assert waits == [0.5]


class _Recording(SessionTransport):
    """A real session transport that records each exchange's URL and timeouts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[float, float]]] = []
        self.closed = False

    def get(self, url: str, *, params: Any, headers: Any,
            timeout: tuple[float, float]) -> requests.Response:
        self.calls.append((url, timeout))
        return super().get(url, params=params, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.closed = True
        super().close()


def test_every_exchange_goes_through_the_given_transport(api: FakeShadeformAPI) -> None:
    """A given transport carries each attempt with the policy's timeouts and is left open."""
    transport = _Recording()
    policy = ClientPolicy(connect_timeout=1.5, read_timeout=2.5, sleep=lambda s: None)
    api.inject("/clusters", 503, times=1)
    with ShadeformClient(KEY, base_url=api.url, policy=policy, transport=transport) as client:
        assert client.clusters() == api.state.clusters
    assert transport.calls == [(api.url + "/clusters", (1.5, 2.5))] * 2
    assert not transport.closed
    transport.close()


def test_the_old_keywords_still_work_with_a_deprecation_warning(
    api: FakeShadeformAPI, waits: list[float]
) -> None:
    """timeout=, max_attempts=, sleep=, random= warn once and keep their meaning."""
    with pytest.warns(DeprecationWarning) as caught:
        client = ShadeformClient(KEY, base_url=api.url, timeout=(1.0, 2.0), max_attempts=2,
                                 sleep=waits.append, random=lambda: 0.5)
    assert [str(w.message) for w in caught] == [
        "ShadeformClient(max_attempts=, random=, sleep=, timeout=) is deprecated and will be "
        "removed in the next release; pass policy=ClientPolicy(...) (and "
        "transport=SessionTransport(session) for session=)"
    ]
    assert caught[0].filename == __file__
    assert client.policy == ClientPolicy(connect_timeout=1.0, read_timeout=2.0, max_attempts=2,
                                         sleep=waits.append, jitter=client.policy.jitter)
    api.inject("/clusters", 503, times=2)
    with client, pytest.raises(ServerError, match=r"after 2 attempts$"):
        client.clusters()
    assert waits == [0.25]


def test_the_old_session_keyword_still_works(api: FakeShadeformAPI) -> None:
    """session= warns, carries the requests and is left open."""
    with requests.Session() as session:
        with pytest.warns(DeprecationWarning, match=r"^ShadeformClient\(session=\)"):
            client = ShadeformClient(KEY, base_url=api.url, session=session)
        with client:
            client.clusters()
        assert session.get(api.url + "/instances", headers={"X-API-KEY": KEY}).ok


def test_an_unknown_keyword_is_a_type_error() -> None:
    """A keyword neither current nor deprecated raises TypeError naming it."""
    with pytest.raises(TypeError, match=r"^ShadeformClient\(\) got unexpected keyword "
                                        r"arguments: retries$"):
        ShadeformClient(KEY, retries=3)


def test_the_retried_statuses_are_the_policys(
    api: FakeShadeformAPI, make_client: Callable[..., ShadeformClient], waits: list[float]
) -> None:
    """retry_statuses={408}: a 408 is retried (0.5 s, 1.0 s) and a 503 is not."""
    client = make_client(retry_statuses=frozenset({408}))
    api.inject("/clusters", 408, times=3)
    with pytest.raises(ApiError, match=r"^GET /clusters: 408 Request Timeout after 3 attempts$"):
        client.clusters()
    assert waits == [0.5, 1.0]
    api.inject("/instances", 503, times=1)
    with pytest.raises(ServerError, match=r"^GET /instances: 503 Service Unavailable \[error_code"):
        client.instances()
    assert len(api.requests) == 4
