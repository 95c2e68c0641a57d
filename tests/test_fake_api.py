"""Tests of the fake Shadeform API: the scripted fleet, key checks, faults, shutdown."""

from __future__ import annotations

import http.client
import itertools
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import pytest
import requests

from shadeanalytics.testing.fakeapi import (
    DEFAULT_SECRETS,
    FakeShadeformAPI,
    Fault,
    State,
    default_scenario,
)

KEY = "test-key-fake-api"
H = {"X-API-KEY": KEY}

TRAIN = "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40"
SPOT = "a41e0d7c-3f52-4b8e-8c19-5e7d2a9b6f01"
BATCH = "c7b3e2f9-1d64-4a0b-b5e8-9f2c4d6a8e12"
LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"
BURST = "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f"
STEADY = "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb"

SEED_INSTANCE_KEYS = {
    "id", "cloud", "region", "shade_instance_type", "cloud_instance_type", "cloud_assigned_id",
    "shade_cloud", "name", "configuration", "ip", "ssh_user", "ssh_port", "status",
    "cost_estimate", "created_at", "deleted_at", "status_details", "hourly_price", "tags",
    "port_mappings", "active_at", "boot_time", "rental_terms",
}  # fmt: skip
SEED_CLUSTER_KEYS = {
    "id", "cloud", "name", "region_info", "status", "created_at", "updated_at", "instances",
    "hourly_price", "cloud_cluster_id", "status_details", "cost_estimate", "active_at",
}  # fmt: skip


@pytest.fixture
def api() -> Iterator[FakeShadeformAPI]:
    with FakeShadeformAPI(api_key=KEY, hang_seconds=0.3) as fake:
        yield fake


def _get(api: FakeShadeformAPI, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", H)
    return requests.get(api.url + path, timeout=5, allow_redirects=False, **kwargs)


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _instances_of(state: State) -> list[dict[str, Any]]:
    nodes = [n for c in state.clusters["clusters"] for n in c["instances"]]
    return state.instances["instances"] + nodes


def _status_of(state: State, resource_id: str) -> str | None:
    listed = _instances_of(state) + state.clusters["clusters"]
    return next((r["status"] for r in listed if r["id"] == resource_id), None)


def _history(resource_id: str) -> list[str | None]:
    return [_status_of(state, resource_id) for state in default_scenario()]


def test_default_scenario_has_six_or_more_states_in_time_order() -> None:
    """The default scenario has at least six states with strictly increasing aware times."""
    states = default_scenario()
    assert len(states) >= 6
    assert all(s.at.tzinfo is not None for s in states)
    assert all(a.at < b.at for a, b in itertools.pairwise(states))


def test_timestamps_are_consistent() -> None:
    """Every record has created_at <= active_at <= deleted_at <= the state's time."""
    for state in default_scenario():
        for record in _instances_of(state) + state.clusters["clusters"]:
            moments = [
                _when(record.get(name)) for name in ("created_at", "active_at", "deleted_at")
            ]
            present = [m for m in moments if m is not None]
            assert present == sorted(present), record["id"]
            assert all(m <= state.at for m in present), record["id"]
        for cluster in state.clusters["clusters"]:
            updated = _when(cluster["updated_at"])
            assert updated is not None
            assert _when(cluster["created_at"]) <= updated <= state.at  # type: ignore[operator]


def test_prices_are_cents_and_costs_are_dollar_strings() -> None:
    """hourly_price is integer cents; instance costs are "12.5" strings, clusters "$1,234.50"
    once active (None before)."""
    cluster_costs = []
    for state in default_scenario():
        for record in _instances_of(state):
            assert type(record["hourly_price"]) is int
            assert re.fullmatch(r"\d+(\.\d{1,2})?", record["cost_estimate"])
        for cluster in state.clusters["clusters"]:
            assert type(cluster["hourly_price"]) is int
            assert cluster["hourly_price"] == sum(n["hourly_price"] for n in cluster["instances"])
            if cluster["active_at"] is None:
                assert cluster["cost_estimate"] is None
                continue
            assert re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d\d", cluster["cost_estimate"])
            cluster_costs.append(cluster["cost_estimate"])
        for instance_type in state.instance_types["instance_types"]:
            assert type(instance_type["hourly_price"]) is int
    assert any("," in cost for cost in cluster_costs)


def test_default_scenario_costs_are_the_kits_money_rule_by_hand() -> None:
    """Cost estimates of the default scenario, computed by hand (cents rounded half up)."""
    states = default_scenario()

    def cost(index: int, rid: str) -> str:
        listed = _instances_of(states[index]) + states[index].clusters["clusters"]
        return next(r["cost_estimate"] for r in listed if r["id"] == rid)

    # llm-serve: hyperstack A6000 at $0.65/h since 2026-02-27T08:00, 74 h at 10:00 = $48.10
    assert cost(0, LLM) == "48.1"
    # batch-a6000: lambdalabs A6000 at $0.80/h from 06:45:30 to 10:00: 259.33 -> 259 cents
    assert cost(0, BATCH) == "2.59"
    # train-h100: nebius 8xH100 at $23.60/h, active 10:24:45, deleting 10:36: 442.5 -> 443
    assert [cost(k, TRAIN) for k in range(6)] == ["0.0"] * 3 + ["2.07", "4.43", "4.43"]
    # denvr-a100-cluster: 2 x $14.32/h for 238 h (since 2026-02-20T12:00)
    assert cost(0, STEADY) == "$6,816.32"
    # h100-burst: 2 x $24.80/h from 10:33: 7 min at 10:40, 13 min at the 10:46 delete request
    assert [cost(k, BURST) for k in (2, 3, 4, 5)] == [None, None, "$5.78", "$10.74"]
    # spot-rtx6000 never ran; the prices come from the one catalogue
    assert cost(6, SPOT) == "0.0"
    spot = next(i for i in states[6].instances["instances"] if i["id"] == SPOT)
    assert (spot["hourly_price"], spot["rental_terms"]["hourly_price"]) == (99, "0.50")


def test_costs_grow_while_billed_and_freeze_after_deleting() -> None:
    """cost_estimate never decreases and stops growing once an instance enters deleting."""
    costs = [
        next(i["cost_estimate"] for i in s.instances["instances"] if i["id"] == TRAIN)
        for s in default_scenario()[:6]
    ]
    values = [float(c) for c in costs]
    assert values == sorted(values)
    assert values[4] == values[5] > 0


def test_instance_goes_through_the_whole_lifecycle() -> None:
    """train-h100 is created, provisions, runs, is deleted (with deleted_at), then vanishes."""
    assert _history(TRAIN) == [
        "creating", "pending_provider", "pending", "active", "deleting", "deleted", None,
    ]  # fmt: skip
    for state in default_scenario():
        record = next((i for i in state.instances["instances"] if i["id"] == TRAIN), None)
        if record is not None:
            assert (record["deleted_at"] is not None) == (record["status"] == "deleted")
            assert (record["active_at"] is not None) == (
                record["status"] in ("active", "deleting", "deleted")
            )


def test_one_instance_fails_and_one_vanishes_without_deleted() -> None:
    """spot-rtx6000 ends in error; batch-a6000 disappears without showing deleting or deleted."""
    assert _history(SPOT) == [
        None, "creating", "pending_provider", "error", "error", "error", "error",
    ]  # fmt: skip
    assert _history(BATCH) == ["active", "active", "active", None, None, None, None]


def test_a_cluster_is_created_and_deleted() -> None:
    """h100-burst is created, becomes active, is deleted and vanishes; nodes follow it."""
    assert _history(BURST) == [None, None, "creating", "pending", "active", "deleting", None]
    for state in default_scenario():
        for cluster in state.clusters["clusters"]:
            assert {n["status"] for n in cluster["instances"]} == {cluster["status"]}


def test_records_have_the_seed_shape() -> None:
    """Instances and clusters carry every field of the seed example, incl. launch configs."""
    launch_types = set()
    for state in default_scenario():
        for record in _instances_of(state):
            assert set(record) >= SEED_INSTANCE_KEYS, record["id"]
            assert record["rental_terms"]["rental_type"] in ("on_demand", "spot")
            if "launch_configuration" in record:
                launch_types.add(record["launch_configuration"]["type"])
        for cluster in state.clusters["clusters"]:
            assert set(cluster) == SEED_CLUSTER_KEYS
    assert launch_types == {"docker", "script"}


def test_secrets_sit_in_secret_fields() -> None:
    """Each DEFAULT_SECRETS value is an env value, a registry password or an info env value."""
    state = default_scenario()[0]
    llm = next(i for i in state.instances["instances"] if i["id"] == LLM)
    docker = llm["launch_configuration"]["docker_configuration"]
    assert docker["envs"][0]["value"] == DEFAULT_SECRETS[0]
    assert docker["registry_credentials"]["password"] == DEFAULT_SECRETS[1]
    assert state.instance_info_extras[LLM]["envs"][0]["value"] == DEFAULT_SECRETS[2]


def test_instance_types_have_on_demand_and_spot_entries() -> None:
    """Availability lists one entry per region and rental type; spot entries carry a price."""
    types = default_scenario()[0].instance_types["instance_types"]
    entries = [e for t in types for e in t["availability"]]
    assert {e["rental_type"] for e in entries} == {"on_demand", "spot"}
    assert all(
        re.fullmatch(r"\d+\.\d\d", e["hourly_price"]) for e in entries if "hourly_price" in e
    )
    assert any(t["configuration"]["num_gpus"] == 0 for t in types)


def test_serves_every_endpoint_from_the_current_state(api: FakeShadeformAPI) -> None:
    """The list endpoints return the current state's bodies and info endpoints one record."""
    state = api.state
    assert _get(api, "/clusters").json() == state.clusters
    assert _get(api, "/instances").json() == state.instances
    assert _get(api, "/instances/types").json() == state.instance_types
    assert _get(api, f"/clusters/{STEADY}/info").json() == state.clusters["clusters"][0]
    node = state.clusters["clusters"][0]["instances"][0]
    assert _get(api, f"/instances/{node['id']}/info").json()["id"] == node["id"]
    info = _get(api, f"/instances/{LLM}/info").json()
    assert info["envs"] == [{"name": "WANDB_API_KEY", "value": DEFAULT_SECRETS[2]}]
    assert _get(api, "/instances/no-such-id/info").status_code == 404
    assert _get(api, "/no-such-endpoint").status_code == 404


@pytest.mark.parametrize("headers", [{}, {"X-API-KEY": "wrong"}], ids=["missing", "wrong"])
def test_missing_or_wrong_key_is_401(api: FakeShadeformAPI, headers: dict[str, str]) -> None:
    """A missing or wrong X-API-KEY gets 401 {"message": "Invalid API key"} and is recorded."""
    response = _get(api, "/clusters", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API key"}
    [recorded] = api.requests
    assert recorded.api_key_present is bool(headers)


def test_vanished_resources_are_404_everywhere(api: FakeShadeformAPI) -> None:
    """In the last state the deleted instance and cluster are absent from lists and info."""
    while api.advance() < len(api.scenario) - 1:
        pass
    assert _get(api, f"/instances/{TRAIN}/info").status_code == 404
    assert _get(api, f"/clusters/{BURST}/info").status_code == 404
    assert _get(api, f"/instances/{BATCH}/info").status_code == 404
    listed = {i["id"] for i in _get(api, "/instances").json()["instances"]}
    assert TRAIN not in listed
    assert BATCH not in listed
    assert _get(api, f"/instances/{SPOT}/info").json()["status"] == "error"


def test_advance_is_manual_and_the_last_state_is_sticky(api: FakeShadeformAPI) -> None:
    """advance() moves one state on; past the last state it stays there."""
    last = len(api.scenario) - 1
    assert api.state_index == 0
    assert [api.advance() for _ in range(last + 2)] == [*range(1, last + 1), last, last]
    assert _get(api, "/clusters").json() == api.scenario[last].clusters


def test_advance_on_moves_after_each_full_poll() -> None:
    """With advance_on="/instances/types", only a 200 on that path advances the fleet."""
    with FakeShadeformAPI(api_key=KEY, advance_on="/instances/types") as api:
        _get(api, "/clusters")
        _get(api, "/instances")
        assert api.state_index == 0
        _get(api, "/instances/types", params={"sort": "price"})
        assert api.state_index == 1
        api.inject("/instances/types", 503)
        assert _get(api, "/instances/types").status_code == 503
        assert api.state_index == 1
        _get(api, "/instances/types")
        assert api.state_index == 2


def test_instance_types_query_filters(api: FakeShadeformAPI) -> None:
    """cloud, gpu_type, num_gpus, region, available and sort filter as documented."""

    def names(**params: str) -> list[str]:
        body = _get(api, "/instances/types", params=params).json()
        return [f"{t['cloud']}/{t['shade_instance_type']}" for t in body["instance_types"]]

    assert names(gpu_type="A6000") == ["hyperstack/A6000", "lambdalabs/A6000", "paperspace/A6000"]
    assert names(gpu_type="H100", num_gpus="8") == ["nebius/H100_sxm5x8", "crusoe/H100_sxm5x8"]
    assert names(region="helsinki-finland-1") == ["datacrunch/RTX6000Ada"]
    assert "lambdalabs/A6000" not in names(available="true")  # batch-a6000 holds it
    prices = [
        t["hourly_price"]
        for t in _get(api, "/instances/types", params={"sort": "price"}).json()["instance_types"]
    ]
    assert prices == sorted(prices)
    spot_only = _get(api, "/instances/types", params={"available": "true", "cloud": "nebius"})
    assert [(e["region"], e["rental_type"]) for e in
            spot_only.json()["instance_types"][0]["availability"]] == [
        ("eu-north1", "on_demand"), ("us-central1", "on_demand")]


def test_injected_status_with_retry_after_is_consumed_exactly(api: FakeShadeformAPI) -> None:
    """A status fault answers exactly `times` requests, with its Retry-After header."""
    api.inject("/clusters", 429, times=2, retry_after=2)
    first, second, third = (_get(api, "/clusters") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["Retry-After"] == "2"
    assert first.json() == {"error_code": "RATE_LIMITED", "error": "Too many requests"}
    assert len(api.requests) == 3


def test_retry_after_as_http_date(api: FakeShadeformAPI) -> None:
    """A datetime retry_after is sent as an HTTP-date."""
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    api.inject(None, 503, retry_after=when)
    response = _get(api, "/instances")
    assert response.status_code == 503
    assert parsedate_to_datetime(response.headers["Retry-After"]) == when


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 502, 503, 504])
def test_every_status_fault(api: FakeShadeformAPI, status: int) -> None:
    """Each status fault is served with that status and a JSON error body."""
    api.inject("/instances", status)
    response = _get(api, "/instances")
    assert response.status_code == status
    assert set(response.json()) & {"message", "error"}


def test_path_specific_and_any_path_faults(api: FakeShadeformAPI) -> None:
    """A fault for one path leaves other paths alone; a None path matches the next request."""
    api.inject("/instances", 503)
    assert _get(api, "/clusters").status_code == 200
    assert _get(api, "/instances").status_code == 503
    api.inject(None, 500)
    assert _get(api, "/instances/types").status_code == 500
    assert _get(api, "/instances/types").status_code == 200


def test_truncated_body_is_shorter_than_content_length(api: FakeShadeformAPI) -> None:
    """The truncated fault promises more bytes than it sends, then closes the connection."""
    api.inject("/clusters", "truncated")
    connection = http.client.HTTPConnection("127.0.0.1", int(api.origin.rsplit(":", 1)[1]))
    try:
        connection.request("GET", "/v1/clusters", headers=H)
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        assert (excinfo.value.expected or 0) > 0
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("fault", "content_type"),
    [("invalid_json", "application/json"), ("html", "text/html"), ("empty", "application/json")],
)
def test_bad_body_faults_are_200(api: FakeShadeformAPI, fault: Fault, content_type: str) -> None:
    """invalid_json, html and empty are 200s whose body is not the promised JSON."""
    api.inject("/clusters", fault)
    response = _get(api, "/clusters")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(content_type)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_redirect_points_to_another_origin_that_records_the_key(api: FakeShadeformAPI) -> None:
    """The redirect fault sends a 302 to a second server, whose log shows if the key came."""
    api.inject("/clusters", "redirect")
    response = _get(api, "/clusters", params={"a": "1"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == f"{api.other.origin}/v1/clusters?a=1"
    assert api.other.origin != api.origin
    assert requests.get(location, timeout=5).status_code == 401
    assert requests.get(location, headers=H, timeout=5).status_code == 200
    assert [r.api_key_present for r in api.other.requests] == [False, True]


def test_same_origin_redirect_is_relative(api: FakeShadeformAPI) -> None:
    """The same-origin redirect fault points at the same path on the same server."""
    api.inject("/instances", "redirect_same_origin")
    response = _get(api, "/instances")
    assert response.status_code == 302
    assert response.headers["Location"] == "/v1/instances"


def test_hang_delays_the_answer(api: FakeShadeformAPI) -> None:
    """A hang waits hang_seconds, then answers normally."""
    api.inject("/clusters", "hang")
    started = time.monotonic()
    response = _get(api, "/clusters")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_shutdown_is_prompt_during_a_hang_and_leaks_no_thread() -> None:
    """Exiting while a request hangs returns at once and leaves no thread behind."""
    before = set(threading.enumerate())
    outcome: list[object] = []
    with FakeShadeformAPI(api_key=KEY, hang_seconds=30) as api:
        api.inject(None, "hang")

        def call() -> None:
            try:
                outcome.append(_get(api, "/clusters"))
            except requests.RequestException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        while not api.requests:
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 2
    caller.join(timeout=5)
    assert isinstance(outcome[0], requests.ConnectionError)
    assert set(threading.enumerate()) == before


def test_idle_keep_alive_connections_do_not_block_shutdown() -> None:
    """A client holding a keep-alive connection open does not stop the server from exiting."""
    before = set(threading.enumerate())
    with requests.Session() as session, FakeShadeformAPI(api_key=KEY) as api:
        assert session.get(api.url + "/clusters", headers=H, timeout=5).status_code == 200
        with FakeShadeformAPI(api_key=KEY) as second:
            second.inject("/clusters", "redirect")
            session.get(second.url + "/clusters", headers=H, timeout=5, allow_redirects=False)
    assert set(threading.enumerate()) == before


def test_binds_loopback_on_a_free_port() -> None:
    """Each fake listens on 127.0.0.1 on its own free port and its url ends in /v1."""
    with FakeShadeformAPI() as one, FakeShadeformAPI() as two:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", one.url)
        assert one.url != two.url


def test_every_request_is_recorded(api: FakeShadeformAPI) -> None:
    """Method, path, query, headers, key presence and a monotonic time are recorded."""
    _get(api, "/instances/types", params={"cloud": "aws"})
    assert requests.post(api.url + "/instances/create", headers=H, timeout=5).status_code == 405
    first, second = api.requests
    assert (first.method, first.path, first.query) == ("GET", "/v1/instances/types", "cloud=aws")
    assert first.api_key_present
    assert first.headers["X-API-KEY"] == KEY
    assert (second.method, second.path) == ("POST", "/v1/instances/create")
    assert first.time <= second.time <= time.monotonic()


def test_inject_refuses_unknown_faults(api: FakeShadeformAPI) -> None:
    """An unknown fault name, a 2xx status or times < 1 is refused at once."""
    with pytest.raises(ValueError, match="unknown fault"):
        api.inject(None, "slow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fault"):
        api.inject(None, 200)
    with pytest.raises(ValueError, match="times"):
        api.inject(None, 500, times=0)


def test_custom_scenario_is_served_verbatim() -> None:
    """A hand-written state, even a malformed one, is served as written."""
    state = State(
        at=datetime(2026, 1, 1, tzinfo=UTC),
        clusters={"clusters": "not a list"},
        instances=[1, 2],
        instance_types={},
    )
    with FakeShadeformAPI(api_key=KEY, scenario=[state]) as api:
        assert _get(api, "/clusters").json() == {"clusters": "not a list"}
        assert _get(api, "/instances").json() == [1, 2]
        assert _get(api, "/instances/x/info").status_code == 404


def test_account_endpoints_are_served_with_info_and_faults(api: FakeShadeformAPI) -> None:
    """Volumes, volume types, SSH keys, templates (+ featured), cluster types and their info
    endpoints answer from the state; an unknown id is a 404; faults apply to them too."""
    state = api.state
    lists = {"/volumes": state.volumes, "/volumes/types": state.volume_types,
             "/sshkeys": state.ssh_keys, "/templates": state.templates,
             "/templates/featured": state.featured_templates,
             "/clusters/types": state.cluster_types}
    for path, body in lists.items():
        reply = _get(api, path, headers=H)
        assert (reply.status_code, reply.json()) == (200, orjson.loads(orjson.dumps(body))), path
    volume = state.volumes["volumes"][1]
    assert _get(api, f"/volumes/{volume['id']}/info", headers=H).json() == volume
    key = state.ssh_keys["ssh_keys"][0]
    assert _get(api, f"/sshkeys/{key['id']}/info", headers=H).json() == key
    template = state.templates["templates"][0]
    assert _get(api, f"/templates/{template['id']}/info", headers=H).json() == template
    assert _get(api, "/volumes/nope/info", headers=H).status_code == 404
    api.inject("/volumes/types", 503)
    assert _get(api, "/volumes/types", headers=H).status_code == 503
    assert _get(api, "/volumes/types", headers=H).status_code == 200


def test_a_state_without_account_lists_serves_empty_ones() -> None:
    """A scripted State that leaves the account lists out serves them empty."""
    base = default_scenario()[0]
    bare = State(at=base.at, clusters=base.clusters, instances=base.instances,
                 instance_types=base.instance_types)
    with FakeShadeformAPI(api_key=KEY, scenario=[bare]) as fake:
        assert _get(fake, "/volumes", headers=H).json() == {"volumes": []}
        assert _get(fake, "/templates/featured", headers=H).json() == {"templates": []}
        assert _get(fake, "/clusters/types", headers=H).json() == {"cluster_types": []}
