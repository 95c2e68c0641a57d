"""A fake Shadeform API on loopback: a scripted fleet, key checks, fault injection, request log."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeAlias, get_args
from urllib.parse import parse_qs, urlsplit

import orjson

from ..ingest.resources import RESOURCES
from . import render
from .fleet import MINUTE, from_spec, offering

__all__ = [
    "DEFAULT_FLEET",
    "DEFAULT_SECRETS",
    "FAULTS",
    "LIVE_STATUS",
    "SCENARIOS",
    "FakeShadeformAPI",
    "Fault",
    "HostileServer",
    "RecordedRequest",
    "Scenario",
    "State",
    "default_scenario",
    "live_scenario",
    "scenario_named",
    "strict_scenario",
]

_FaultName: TypeAlias = Literal[
    "hang", "truncated", "invalid_json", "html", "empty", "redirect", "redirect_same_origin"
]
Fault: TypeAlias = int | _FaultName
FAULTS: tuple[str, ...] = get_args(_FaultName)


@dataclass(frozen=True)
class State:
    """One moment of the scripted fleet: the list responses, as the API would send them.

    ``at`` is the nominal UTC time the state is observed at: every timestamp inside it is at or
    before ``at``. The bodies are plain JSON values, deliberately untyped so that a test can
    script a malformed response. ``instance_info_extras`` maps an instance id to the fields that
    only ``/instances/{id}/info`` adds (``envs``, ``auto_delete``...). The account lists
    (``volumes``, ``volume_types``, ``ssh_keys``, ``templates``, ``featured_templates``,
    ``cluster_types``) are served as empty lists when None; ``lists`` holds the list bodies
    of any other account resource by its name (``ingest/resources.py``): a resource declared
    later needs no field here. Every account resource's list and info endpoints are served
    from the resource table.
    """

    at: datetime
    clusters: Any
    instances: Any
    instance_types: Any
    instance_info_extras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    volumes: Any = None
    volume_types: Any = None
    ssh_keys: Any = None
    templates: Any = None
    featured_templates: Any = None
    cluster_types: Any = None
    #: instance id -> the fields ``/instances/{id}/info`` leaves out (as the live API does
    #: right after a create: no ``configuration``, no ``cost_estimate``)
    instance_info_without: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: resource name -> its list body, for account resources without a field above
    lists: Mapping[str, Any] = field(default_factory=dict)


Scenario: TypeAlias = Sequence[State]
_FIELDS = frozenset(f.name for f in fields(State))


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    api_key_present: bool
    time: float


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    delay: float = 0.0


@dataclass
class _Injection:
    path: str | None
    fault: Fault
    remaining: int
    retry_after: str | None


_FAULT_BODIES: dict[int, dict[str, str]] = {
    401: {"message": "Invalid API key"},
    403: {"message": "Forbidden"},
    404: {"error_code": "NOT_FOUND", "error": "Not found"},
    409: {"error_code": "OUT_OF_STOCK", "error": "Out of stock"},
    429: {"error_code": "RATE_LIMITED", "error": "Too many requests"},
}
_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><p>upstream unavailable</p></body></html>\n"
)


class FakeShadeformAPI:
    """A real HTTP server on 127.0.0.1 (free port) serving a scripted Shadeform fleet.

    ::

        with FakeShadeformAPI(api_key="test-key") as api:
            api.url                         # "http://127.0.0.1:PORT/v1"
            api.inject("/clusters", 503, times=2)
            ...
            len(api.requests)               # every request received, faults included

    Serves GET ``/v1/clusters``, ``/v1/clusters/{id}/info``, ``/v1/instances``,
    ``/v1/instances/{id}/info``, ``/v1/instances/types`` (with its query filters),
    ``/v1/clusters/types``, ``/v1/volumes``, ``/v1/volumes/{id}/info``, ``/v1/volumes/types``,
    ``/v1/sshkeys``, ``/v1/sshkeys/{id}/info``, ``/v1/templates``, ``/v1/templates/featured``
    and ``/v1/templates/{id}/info`` from the current state of ``scenario`` (default:
    :func:`default_scenario`). Info endpoints answer 404 for any id absent from the current
    state, as the API does for deleted resources; cluster nodes are found by
    ``/instances/{id}/info`` too.

    Advancing: the fleet starts at state 0 and moves to the next state on :meth:`advance`, or,
    with ``advance_on="/instances/types"`` (any API path), after each 200 served from the
    scripted data on that path, i.e. after each full poll that reads that path last. Faulted
    requests never advance. The last state is sticky: advancing past it stays there.

    Order of checks for each request: it is recorded; a non-GET gets 405; a missing or wrong
    ``X-API-KEY`` gets 401 ``{"message": "Invalid API key"}``; an injected fault whose path
    matches is consumed; otherwise the scripted data is served.

    Times are served as scripted: a collector in a subprocess is dated by the state's ``at``
    through ``SHADEANALYTICS_NOW`` (see ``shadeanalytics.config.now``).

    A clock instead: with ``clock`` (a callable giving an aware datetime, such as
    ``config.fast_clock(start, 3600)``, an hour a second), each request is served from the
    last state whose ``at`` is at or before ``clock()`` (the first state before that): the
    fleet lives on its own, and a collector dated by the same clock sees it as the API would.
    """

    def __init__(
        self,
        api_key: str = "test-key",
        scenario: Scenario | str | None = None,
        *,
        advance_on: str | None = None,
        hang_seconds: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        if isinstance(scenario, str):
            scenario = scenario_named(scenario)
        self.scenario: Scenario = scenario if scenario is not None else default_scenario()
        if not self.scenario:
            raise ValueError("a scenario needs at least one state")
        self.advance_on = advance_on
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._index = 0
        self._injections: list[_Injection] = []
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._other: FakeShadeformAPI | None = None
        self._redirect_origin = ""

    def __enter__(self) -> FakeShadeformAPI:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the fake API is already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # close() waits up to one interval
            name=f"FakeShadeformAPI:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, end hanging and idle connections, join every thread."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = None
        self._thread = None
        if self._other is not None:
            self._other.close()
            self._other = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the fake API is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """Base URL to give the client: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.origin}/v1"

    @property
    def other(self) -> FakeShadeformAPI:
        """A second fake on another port (another origin), started on first use.

        ``"redirect"`` faults point there; its :attr:`requests` show whether the key arrived.
        """
        if self._other is None:
            other = FakeShadeformAPI(self.api_key, self.scenario)
            other.start()
            self._other = other
        return self._other

    @property
    def state_index(self) -> int:
        with self._lock:
            return self._index

    @property
    def state(self) -> State:
        with self._lock:
            return self.scenario[self._index]

    def advance(self) -> int:
        """Move to the next state (the last one is sticky); return the new index."""
        with self._lock:
            return self._advance_locked()

    def _advance_locked(self) -> int:
        self._index = min(self._index + 1, len(self.scenario) - 1)
        return self._index

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def inject(
        self,
        path: str | None,
        fault: Fault,
        times: int = 1,
        *,
        retry_after: float | str | datetime | None = None,
    ) -> None:
        """Answer the next ``times`` requests for ``path`` (an API path such as ``"/clusters"``;
        ``None`` for any path) with ``fault`` instead of the scripted data.

        Faults: an HTTP status (``401``, ``403``, ``404``, ``429``, ``500``, ``502``, ``503``,
        ``504``... with a JSON error body in Shadeform's styles); ``"hang"`` (wait
        ``hang_seconds``, or until the server stops, before answering normally); ``"truncated"``
        (a ``Content-Length`` larger than the body sent, then the connection closes);
        ``"invalid_json"``, ``"html"``, ``"empty"`` (each a 200); ``"redirect"`` (302 to the
        same path on :attr:`other`, another origin); ``"redirect_same_origin"`` (302 to the
        same path on this server, as a relative ``Location``). ``retry_after`` adds a
        ``Retry-After`` header: seconds, an HTTP-date string, or an aware datetime.
        Injections queue in order; each matching request consumes one use of the first match.
        """
        if isinstance(fault, bool) or not (
            (isinstance(fault, int) and 300 <= fault <= 599) or fault in FAULTS
        ):
            raise ValueError(f"unknown fault {fault!r}; use an HTTP status or one of {FAULTS}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if fault == "redirect":
            self._redirect_origin = self.other.origin
        header = _retry_after_header(retry_after)
        with self._lock:
            self._injections.append(_Injection(path, fault, times, header))

    def _take_injection(self, path: str) -> _Injection | None:
        for injection in self._injections:
            if injection.path is None or injection.path == path:
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return injection
        return None

    def _reply(
        self, method: str, target: str, headers: Mapping[str, str], key: str | None
    ) -> _Reply:
        parts = urlsplit(target)
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=parts.path,
                    query=parts.query,
                    headers=dict(headers),
                    api_key_present=key is not None,
                    time=time.monotonic(),
                )
            )
            if method != "GET":
                return _json_reply(405, {"error": "Method not allowed"})
            if key != self.api_key:
                return _json_reply(401, {"message": "Invalid API key"})
            if not (parts.path == "/v1" or parts.path.startswith("/v1/")):
                return _json_reply(404, {"error": "Not found"})
            path = parts.path[len("/v1") :]
            if self.clock is not None:
                moment = self.clock()
                self._index = max(0, sum(1 for state in self.scenario if state.at <= moment) - 1)
            injection = self._take_injection(path)
            if injection is None:
                reply = self._route(path, parts.query)
                if reply.status == 200 and path == self.advance_on:
                    self._advance_locked()
            elif injection.fault == "hang":
                reply = self._route(path, parts.query)
                reply.delay = self.hang_seconds
            else:
                reply = self._fault_reply(injection, target, path, parts.query)
        return reply

    def _fault_reply(self, injection: _Injection, target: str, path: str, query: str) -> _Reply:
        fault = injection.fault
        if isinstance(fault, int):
            reply = _json_reply(fault, _FAULT_BODIES.get(fault) or _default_fault_body(fault))
        elif fault == "truncated":
            reply = self._route(path, query)
            reply.truncate = True
        elif fault == "invalid_json":
            reply = _Reply(200, b'{"clusters": [{"id": "8eda86fe", ]')
        elif fault == "html":
            reply = _Reply(200, _HTML_PAGE, content_type="text/html; charset=utf-8")
        elif fault == "empty":
            reply = _Reply(200)
        elif fault == "redirect":
            reply = _Reply(302, headers={"Location": f"{self._redirect_origin}{target}"})
        else:
            reply = _Reply(302, headers={"Location": target})
        if injection.retry_after is not None:
            reply.headers["Retry-After"] = injection.retry_after
        return reply

    def _route(self, path: str, query: str) -> _Reply:
        reply, body = self._scripted(path, query)
        if reply is not None:
            return reply
        return _json_reply(200, body)

    def _scripted(self, path: str, query: str) -> tuple[_Reply | None, Any]:
        """The scripted body for ``path`` in the current state, or a 404 reply."""
        state = self.scenario[self._index]
        segments = path.strip("/").split("/")
        if segments == ["clusters"]:
            return None, state.clusters
        if segments == ["instances"]:
            return None, state.instances
        if segments == ["instances", "types"]:
            return None, _filter_types(state.instance_types, query)
        account = _account_lists(state)
        if "/".join(segments) in account:
            return None, account["/".join(segments)]
        if len(segments) == 3 and segments[2] == "info":
            found: Any = None
            if segments[0] == "clusters":
                found = _find(_items(state.clusters, "clusters"), segments[1])
            elif segments[0] == "instances":
                found = _find(_all_instances(state), segments[1])
                if found is not None:
                    found = {**found, **state.instance_info_extras.get(segments[1], {})}
                    for name in state.instance_info_without.get(segments[1], ()):
                        found.pop(name, None)
            elif segments[0] in _ACCOUNT_INFO:
                listed = _ACCOUNT_INFO[segments[0]]
                found = _find(_items(account[listed.endpoint.strip("/")], listed.list_key),
                              segments[1])
            if found is not None:
                return None, found
        return _json_reply(404, {"error_code": "NOT_FOUND", "error": "Not found"}), None


def _default_fault_body(status: int) -> dict[str, str]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if status >= 500:
        return {"error_code": "INTERNAL_SERVER_ERROR", "error": phrase}
    return {"error": phrase}


def _json_reply(status: int, body: Any) -> _Reply:
    try:
        return _Reply(status, orjson.dumps(body))
    except TypeError:  # an integer past 64 bits (a scripted hostile value): the stdlib writes it
        return _Reply(status, json.dumps(body).encode())


def _retry_after_header(value: float | str | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_datetime(value.astimezone(UTC), usegmt=True)
    return f"{value:g}"


def _items(body: Any, key: str) -> list[Any]:
    items = body.get(key) if isinstance(body, dict) else None
    return items if isinstance(items, list) else []


def _find(items: list[Any], resource_id: str) -> Any:
    return next((i for i in items if isinstance(i, dict) and i.get("id") == resource_id), None)


#: first segment of an account resource's info endpoint -> the resource
_ACCOUNT_INFO = {r.info.strip("/").split("/")[0]: r for r in RESOURCES
                 if r.info is not None and r.collect != "core"}


def _account_lists(state: State) -> dict[str, Any]:
    """The account list bodies of ``state`` by path (an empty list for what it leaves None)."""
    def body(name: str, key: str) -> Any:
        # a State field named as the resource (ingest/resources.py), else its entry in lists
        value = getattr(state, name, None)
        value = state.lists.get(name) if value is None else value
        return {key: []} if value is None else value

    return {r.endpoint.strip("/"): body(r.name, r.list_key)
            for r in RESOURCES if r.collect != "core"}


def _all_instances(state: State) -> list[Any]:
    nodes = [
        node
        for cluster in _items(state.clusters, "clusters")
        for node in _items(cluster, "instances")
    ]
    return _items(state.instances, "instances") + nodes


def _filter_types(body: Any, query: str) -> Any:
    """Apply ``/instances/types`` filters as documented: ``available``/``region`` filter the
    availability entries, and a type left with none is dropped."""
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    types = _items(body, "instance_types")
    if not params or not types:
        return body
    for name in ("cloud", "shade_instance_type"):
        if name in params:
            types = [t for t in types if str(t.get(name)) == params[name]]
    for name in ("gpu_type", "num_gpus"):
        if name in params:
            types = [t for t in types if str(t["configuration"].get(name)) == params[name]]
    if "region" in params or params.get("available") == "true":
        kept = []
        for instance_type in types:
            entries = [
                entry
                for entry in instance_type["availability"]
                if entry["region"] == params.get("region", entry["region"])
                and (entry["available"] or params.get("available") != "true")
            ]
            if entries:
                kept.append({**instance_type, "availability": entries})
        types = kept
    if params.get("sort") == "price":
        types = sorted(types, key=lambda t: t["hourly_price"])
    return {"instance_types": types}


class _Server(ThreadingHTTPServer):
    """Tracks connections and their threads so that closing ends and joins every one of them.

    The stdlib joins only non-daemon handler threads; daemon threads are kept here (a fake left
    open must not block interpreter exit) and joined by :meth:`close_connections`.
    """

    daemon_threads = True

    def __init__(self, fake: FakeShadeformAPI) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        handler = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._open_lock:
            self._open.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()]
            self._handlers.append(handler)
        handler.start()

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive and hanging connections, then join their threads."""
        with self._open_lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            handlers = list(self._handlers)
        for handler in handlers:
            handler.join()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out hang up mid-response, which some faults are there to cause.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK and every request takes ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line: tests read :attr:`FakeShadeformAPI.requests`."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        fake = self.server.fake
        reply = fake._reply(
            self.command, self.path, dict(self.headers.items()), self.headers.get("X-API-KEY")
        )
        if reply.delay and fake._stopping.wait(reply.delay):
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body) + (64 if reply.truncate else 0)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.truncate:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(reply.body)


# ---------------------------------------------------------------------------------------------
# The default scenario
# ---------------------------------------------------------------------------------------------

DEFAULT_SECRETS: tuple[str, ...] = (
    "canary-hf-token-7f3a9c",
    "canary-registry-password-91c2e4",
    "canary-wandb-key-5d0e11",
)
"""Every secret value in :func:`default_scenario`, for leak (canary) tests."""

_LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"
_SCRIPT = base64.b64encode(
    b"#!/bin/bash\nset -eu\ncd /workspace\npython train.py --epochs 3\n"
).decode()


def _members(prefix: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{n:04d}-4000-8000-00000000000{n}", "name": f"{prefix}-node-{n}",
             "cloud_assigned_id": f"{prefix}-vm-{n}", "ip": f"198.18.0.{10 + n}"}
            for n in range(2)]


#: The fleet of :func:`default_scenario`, as data (see :func:`.fleet.from_spec`): seven polls
#: ten minutes apart; ``types`` lists the served catalogue entries with the states in which
#: their on-demand capacity is taken (``busy``) and their spot capacity open (``spot_open``).
DEFAULT_FLEET: dict[str, Any] = {
    "start": "2026-03-02T10:00:00Z",
    "every_minutes": 10,
    "polls": 7,
    "instances": [
        {"id": _LLM, "name": "llm-serve", "offering": "hyperstack/A6000",
         "region": "canada-1", "cloud_assigned_id": "13b057d7-e266-4869-985f-760fe75a78b3",
         "ip": "203.0.113.10", "tags": ["prod", "vllm"], "ports": [[8000, 80]],
         "rental": "on_demand_priced",
         "launch": {"type": "docker", "docker_configuration": {
             "image": "vllm/vllm-openai:latest",
             "args": "--model mistralai/Mistral-7B-v0.1",
             "shared_memory_in_gb": 8,
             "envs": [{"name": "HUGGING_FACE_HUB_TOKEN", "value": DEFAULT_SECRETS[0]}],
             "port_mappings": [{"host_port": 80, "container_port": 8000}],
             "volume_mounts": [{"host_path": "~/.cache/huggingface",
                                "container_path": "/root/.cache/huggingface"}],
             "registry_credentials": {"username": "deploy-bot",
                                      "password": DEFAULT_SECRETS[1]}}},
         "life": {"created": "2026-02-27T07:52:10Z", "active": "2026-02-27T08:00:00Z"}},
        {"id": "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40", "name": "train-h100",
         "offering": "nebius/H100_sxm5x8", "region": "eu-north1",
         "cloud_assigned_id": "computeinstance-e00h100train", "ip": "198.51.100.24",
         "tags": ["training"], "rental": "on_demand_priced",
         "launch": {"type": "script", "script_configuration": {"base64_script": _SCRIPT}},
         "life": {"created": "2026-03-02T09:58:30Z", "pending_provider": "2026-03-02T10:05:00Z",
                  "pending": "2026-03-02T10:15:00Z", "active": "2026-03-02T10:24:45Z",
                  "deleting": "2026-03-02T10:36:00Z", "deleted": "2026-03-02T10:44:20Z"}},
        {"id": "a41e0d7c-3f52-4b8e-8c19-5e7d2a9b6f01", "name": "spot-rtx6000",
         "offering": "datacrunch/RTX6000Ada", "region": "helsinki-finland-1",
         "cloud_assigned_id": "dc-rtx-7781", "ip": "192.0.2.77", "rental": "spot",
         "error_detail": "provider out of capacity",
         "life": {"created": "2026-03-02T10:07:05Z", "pending_provider": "2026-03-02T10:15:00Z",
                  "error": "2026-03-02T10:25:00Z"}},
        {"id": "c7b3e2f9-1d64-4a0b-b5e8-9f2c4d6a8e12", "name": "batch-a6000",
         "offering": "lambdalabs/A6000", "region": "us-east-1",
         "cloud_assigned_id": "0920582c7ff041399e34823a0be62549", "ip": "192.0.2.15",
         "tags": ["batch"], "rental": "on_demand_priced",
         "life": {"created": "2026-03-02T06:40:00Z", "active": "2026-03-02T06:45:30Z",
                  "gone": "2026-03-02T10:25:00Z"}},  # vanishes, never deleting nor deleted
        {"id": "e58a9c13-7b2f-4d6e-a0c4-3b1f9e8d7c25", "name": "notebook-a6000",
         "offering": "paperspace/A6000", "region": "ny2",
         "cloud_assigned_id": "ps-nb-a6000-0042", "ip": "203.0.113.88", "ports": [[8888, 8888]],
         "rental": "on_demand_priced",
         "launch": {"type": "docker",
                    "docker_configuration": {"image": "jupyter/base-notebook:latest"}},
         "life": {"created": "2026-03-02T10:38:00Z", "pending": "2026-03-02T10:45:00Z",
                  "active": "2026-03-02T10:55:10Z"}},
    ],
    "clusters": [
        {"id": "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb", "name": "denvr-a100-cluster",
         "offering": "denvr/A100_80Gx8", "region": "houston-usa-1",
         "cloud_cluster_id": "cluster-abc123", "nodes": _members("1a2b3c4d"),
         "life": {"created": "2026-02-20T11:47:00Z", "active": "2026-02-20T12:00:00Z"}},
        {"id": "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f", "name": "h100-burst",
         "offering": "crusoe/H100_sxm5x8", "region": "us-east1-a",
         "cloud_cluster_id": "crusoe-cl-5521", "nodes": _members("5e6f7a8b"),
         "life": {"created": "2026-03-02T10:14:00Z", "pending": "2026-03-02T10:25:00Z",
                  "active": "2026-03-02T10:33:00Z", "deleting": "2026-03-02T10:46:00Z",
                  "gone": "2026-03-02T10:55:00Z"}},  # vanishes without showing deleted
    ],
    "types": {
        "hyperstack/A6000": {},
        "nebius/H100_sxm5x8": {"busy": [2, 3, 4]},
        "datacrunch/RTX6000Ada": {"spot_open": [0, 1]},
        "lambdalabs/A6000": {"busy": [0, 1, 2]},
        "paperspace/A6000": {"busy": [5, 6]},
        "vultr/cpu_mini": {},
        "denvr/A100_80Gx8": {},
        "crusoe/H100_sxm5x8": {"busy": [2, 3, 4, 5]},
    },
}


def _instance_types(index: int) -> dict[str, Any]:
    """The default scenario's /instances/types in state ``index`` (the same in every region)."""
    def everywhere(available: bool) -> Callable[[str], bool]:
        return lambda region: available

    return {"instance_types": [
        render.instance_type(offering(*key.split("/")),
                             everywhere(index not in states.get("busy", ())),
                             everywhere(index in states.get("spot_open", ())))
        for key, states in DEFAULT_FLEET["types"].items()]}


_SSH_KEY_ID = "78a0dbbd-3b5e-4d0b-b3e1-0f5a2a1c9d10"
_HF_CACHE = "f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190"
_DATASETS = "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13"
_VOLUMES_SINCE = datetime(2026, 3, 1, 10, tzinfo=UTC)


def _account(at: datetime) -> dict[str, Any]:
    """The account lists of the default scenario at ``at``: two volumes (one mounted by
    llm-serve, one by nobody: 500 GB at $0.0001/GB/h, $0.05/h), their volume types (one as the
    docs spell it), an SSH key, a template, a featured template and a cluster type."""
    hours = (at - _VOLUMES_SINCE).total_seconds() / 3600
    return {
        "volumes": {"volumes": [
            render.volume(_HF_CACHE, "hf-cache", 100, "hyperstack", "canada-1", "0.000097",
                          hours, _LLM, multi_mount=True),
            render.volume(_DATASETS, "datasets", 500, "datacrunch", "helsinki-finland-1",
                          "0.0001", hours, None),
        ]},
        "volume_types": {"volume_types": [
            {"cloud": "hyperstack", "region": "canada-1", "supports_multiple_mounts": True,
             "fixed_size": True, "price_per_gb_per_hour": ".000097"},
            render.volume_type("datacrunch", "helsinki-finland-1", "0.0001"),
        ]},
        "ssh_keys": {"ssh_keys": [
            {"id": _SSH_KEY_ID, "name": "team key", "is_default": True,
             "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBU"
                           "WFxgZGhscHR4f alice@laptop"},
        ]},
        "templates": {"templates": [
            {"id": "5b1d3f5a-7c9e-4b0d-8f2a-4c6e8a0c2e46", "name": "vllm-serve",
             "description": "vLLM behind port 80", "public": False,
             "launch_configuration": {"type": "docker", "docker_configuration": {
                 "image": "vllm/vllm-openai:latest",
                 "port_mappings": [{"host_port": 80, "container_port": 8000}]}},
             "auto_delete": {"spend_threshold": "500"}, "tags": ["vllm"],
             "envs": [{"name": "HF_HOME", "value": "/workspace/hf"}],
             "networking": {"ufw_rules": [{"rule": "allow", "from_ip": None, "to_ip": None,
                                           "port": "80", "proto": "tcp"}]}},
        ]},
        "featured_templates": {"templates": [
            {"id": "f3a7b5c1-0d2e-4f68-9a1b-3c5d7e9f1a24", "name": "Jupyter",
             "description": "A notebook server", "author": "Shadeform", "public": True,
             "launch_configuration": {"type": "docker", "docker_configuration": {
                 "image": "jupyter/base-notebook:latest"}}},
        ]},
        "cluster_types": {"cluster_types": [
            {"cloud": "denvr", "num_instances": 2,
             "availability": {"region": "houston-usa-1", "display_name": "US, Houston, TX",
                              "available": True},
             "cluster_type": {
                 **render.instance_type(offering("denvr", "A100_80Gx8"), bool, bool),
                 "availability": [{"region": "houston-usa-1", "available": True,
                                   "display_name": "US, Houston, TX"}]}},
        ]},
    }


def default_scenario() -> list[State]:
    """Seven polls, ten minutes apart from 2026-03-02T10:00Z, of the small fleet
    :data:`DEFAULT_FLEET`, rendered by the kit's one renderer.

    ========  =====  ===========================================================================
    state     at     what happens
    ========  =====  ===========================================================================
    0         10:00  llm-serve (A6000, docker with secrets) and batch-a6000 active; train-h100
                     ``creating``; cluster denvr-a100-cluster active (cost over $1,000)
    1         10:10  train-h100 ``pending_provider``; spot-rtx6000 ``creating``
    2         10:20  train-h100 ``pending`` ("booting"); spot-rtx6000 ``pending_provider``;
                     cluster h100-burst ``creating`` (no cloud_cluster_id yet)
    3         10:30  train-h100 ``active``; spot-rtx6000 ``error``; batch-a6000 vanishes without
                     ever showing deleting/deleted; h100-burst ``pending``
    4         10:40  train-h100 ``deleting`` (billing stopped 10:36); h100-burst ``active``;
                     notebook-a6000 ``creating``
    5         10:50  train-h100 ``deleted`` with ``deleted_at``; h100-burst ``deleting``;
                     notebook-a6000 ``pending``
    6         11:00  train-h100 and h100-burst gone (info endpoints 404); notebook-a6000
                     ``active``; spot-rtx6000 still ``error``
    ========  =====  ===========================================================================

    Cluster nodes appear only inside their cluster, not in ``/instances``. Instance-type
    availability follows the fleet (the H100 and A6000 capacity is taken while in use). The
    account lists (volumes, volume types, SSH keys, templates, cluster types) are those of
    ``_account``: the same in every state but for the volumes' growing cost estimates.
    """
    start, nodes, clusters = from_spec(DEFAULT_FLEET)
    every = DEFAULT_FLEET["every_minutes"] * MINUTE
    extras: dict[str, Mapping[str, Any]] = {
        n.id: {"ssh_key_id": _SSH_KEY_ID, "volume_ids": []} for n in nodes}
    extras[_LLM] = {
        "volume_ids": [_HF_CACHE],
        "ssh_key_id": _SSH_KEY_ID,
        "auto_delete": {"date_threshold": "2026-04-01T00:00:00-07:00", "spend_threshold": "500"},
        "alert": {"date_threshold": "2026-03-25T00:00:00-07:00", "spend_threshold": "400"},
        "volume_mount": {"auto": True},
        "envs": [{"name": "WANDB_API_KEY", "value": DEFAULT_SECRETS[2]}],
    }
    states = []
    for index in range(DEFAULT_FLEET["polls"]):
        at = start + timedelta(milliseconds=index * every)
        poll = render.poll(start, index * every, every, nodes, clusters)
        account = _account(at)
        # a resource without a State field of its own (declared later) goes to lists
        lists = {name: account.pop(name) for name in list(account) if name not in _FIELDS}
        states.append(State(at=at, clusters=poll["clusters"], instances=poll["instances"],
                            instance_types=_instance_types(index),
                            instance_info_extras=extras, lists=lists, **account))
    return states


# ---------------------------------------------------------------------------------------------
# The two dialects: strict (every body as Shadeform's OpenAPI document says) and live (every
# documented deviation of the real API; the reference's addendum of 2026-11-29)
# ---------------------------------------------------------------------------------------------

#: Instance fields the OpenAPI document requires and does not let be null, and the value the
#: strict dialect sends instead of null (``deleted_at``: the creation time, as the docs'
#: examples show a live instance with a deletion time; the status says it is live)
_STRICT_INSTANCE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "deleted_at": lambda item: item.get("created_at"),
    "ip": lambda item: "0.0.0.0",
    "ssh_port": lambda item: 0,
    "ssh_user": lambda item: "shadeform",
    "cloud_assigned_id": lambda item: "",
}


def _strict_instance(item: Any) -> Any:
    """An instance object with no null where the document forbids one: a required field gets
    :data:`_STRICT_INSTANCE`'s value, an optional one is left out."""
    if not isinstance(item, dict):
        return item
    out = {}
    for key, value in item.items():
        if value is None and key in _STRICT_INSTANCE:
            value = _STRICT_INSTANCE[key](item)
        elif value is None:
            continue
        out[key] = value
    return out


def _map_list(body: Any, key: str, change: Callable[[Any], Any]) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        return body
    return {**body, key: [change(item) for item in body[key]]}


def _strict_cluster(item: Any) -> Any:
    return _map_list(item, "instances", _strict_instance)


def _strict_volume(item: Any) -> Any:
    return {**item, "mounted_by": item.get("mounted_by") or ""}


def _strict_volume_type(item: Any) -> Any:
    item = dict(item)
    if "supports_multiple_mounts" in item:
        item["supports_multi_mount"] = item.pop("supports_multiple_mounts")
    price = item.get("price_per_gb_per_hour")
    if isinstance(price, str) and price.startswith("."):
        item["price_per_gb_per_hour"] = f"0{price}"
    return item


def _strict_cluster_type(item: Any) -> Any:
    node = item["cluster_type"]
    entries = [{"rental_type": "on_demand", **entry} for entry in node["availability"]]
    return {**item, "cluster_type": {**node, "availability": entries}}


def strict_scenario() -> list[State]:
    """:func:`default_scenario` in the *strict* dialect: every body validates against
    Shadeform's OpenAPI document (``tests/fixtures/shadeform-openapi.yaml``). No null where
    the document forbids one (an instance's ``deleted_at`` is its ``created_at`` until it is
    deleted, an unassigned ``ip`` ``0.0.0.0``, ``ssh_port`` 0; an optional null is left out;
    an unmounted volume's ``mounted_by`` is empty), ``supports_multi_mount`` spelled as the
    document spells it, and ``/clusters/types`` availability with its required
    ``rental_type``. The same fleet, polls and times otherwise."""
    states = []
    for state in default_scenario():
        extras = {iid: {k: v for k, v in fields.items() if v is not None}
                  for iid, fields in state.instance_info_extras.items()}
        states.append(replace(
            state,
            clusters=_map_list(state.clusters, "clusters", _strict_cluster),
            instances=_map_list(state.instances, "instances", _strict_instance),
            volumes=_map_list(state.volumes, "volumes", _strict_volume),
            volume_types=_map_list(state.volume_types, "volume_types", _strict_volume_type),
            cluster_types=_map_list(state.cluster_types, "cluster_types",
                                    _strict_cluster_type),
            instance_info_extras=extras))
    return states


#: the hardware fields real catalogue responses repeat beside ``configuration``
_TOP_COPIES = ("memory_in_gb", "storage_in_gb", "vcpus", "num_gpus", "gpu_type",
               "interconnect", "nvlink")
#: the status outside the document's enum that the live dialect shows (spot-rtx6000, last
#: state: instead of ``error``)
LIVE_STATUS = "stopped"
#: the 2024-era catalogue entry the live dialect adds to ``/instances/types``
_LIVE_2024_TYPE = ("vultr", "A100_80G")


def _live_types(body: Any) -> Any:
    """``/instances/types`` as the live API sends it: top-level copies of the hardware
    fields, the first NVLink type with its nested ``nvlink`` false (the copy says true), and
    a 2024-era entry (a top-level ``region``; availability only ``{region, available}``; no
    ``deployment_type``, ``boot_time`` or ``gpu_manufacturer``)."""
    types, conflicted = [], False
    for item in body["instance_types"]:
        config = dict(item["configuration"])
        item = {**item, **{k: config[k] for k in _TOP_COPIES if k in config}}
        if config.get("nvlink") is True and not conflicted:
            config["nvlink"] = False
            conflicted = True
        types.append({**item, "configuration": config})
    legacy = render.instance_type(offering(*_LIVE_2024_TYPE), bool, bool)
    region = legacy["availability"][0]["region"]
    config = {k: v for k, v in legacy["configuration"].items() if k != "gpu_manufacturer"}
    types.append({
        "cloud": legacy["cloud"], "shade_instance_type": legacy["shade_instance_type"],
        "cloud_instance_type": legacy["cloud_instance_type"], "configuration": config,
        "hourly_price": legacy["hourly_price"], "region": region,
        "availability": [{"region": region, "available": True}]})
    return {"instance_types": types}


def _live_instance(item: Any, last: bool) -> Any:
    """An instance as the live API shows it: one still ``creating`` has no
    ``cloud_assigned_id`` nor ``ssh_user`` yet (null); spot-rtx6000's ``error`` is
    :data:`LIVE_STATUS` in the last state."""
    if not isinstance(item, dict):
        return item
    if item.get("status") == "creating":
        item = {**item, "cloud_assigned_id": None, "ssh_user": None}
    if last and item.get("status") == "error":
        item = {**item, "status": LIVE_STATUS}
    return item


def live_scenario() -> list[State]:
    """:func:`default_scenario` in the *live* dialect: the default's live nulls (``ip``,
    ``deleted_at``, ``mounted_by``), ``supports_multiple_mounts`` and ``.000097``, plus every
    other documented deviation: top-level catalogue copies and an ``nvlink`` conflict in
    ``/instances/types`` and a 2024-era entry there (:func:`_live_types`);
    ``/instances/{id}/info`` without ``configuration`` or ``cost_estimate`` for an instance
    still ``creating`` or ``pending_provider``; a null ``ssh_user`` and ``cloud_assigned_id``
    (:func:`_live_instance`); a status outside the enum (:data:`LIVE_STATUS`); and
    ``/clusters/types`` availability without ``rental_type``."""
    base = default_scenario()
    states = []
    for n, state in enumerate(base):
        last = n == len(base) - 1

        live = functools.partial(_live_instance, last=last)
        instances = _map_list(state.instances, "instances", live)
        clusters = _map_list(state.clusters, "clusters",
                             functools.partial(_map_list, key="instances", change=live))
        young = {i["id"]: ("configuration", "cost_estimate")
                 for i in _items(instances, "instances")
                 if i.get("status") in ("creating", "pending_provider")}
        states.append(replace(state, instances=instances, clusters=clusters,
                              instance_types=_live_types(state.instance_types),
                              instance_info_without=young))
    return states


#: The scenarios by name (``FakeShadeformAPI(scenario="strict")``).
SCENARIOS: dict[str, Callable[[], list[State]]] = {
    "default": default_scenario, "strict": strict_scenario, "live": live_scenario}


def scenario_named(name: str) -> list[State]:
    """The scenario ``name`` of :data:`SCENARIOS`."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]()


# ---------------------------------------------------------------------------------------------
# A hostile server: raw HTTP on loopback that misbehaves on purpose
# ---------------------------------------------------------------------------------------------

#: One behaviour of :class:`HostileServer`: writes a (mis)response to the socket; ``stop`` is set
#: when the server closes, and long behaviours must return soon after.
Behaviour: TypeAlias = Callable[[socket.socket, threading.Event], None]

_GZIP_BOMBS: dict[int, bytes] = {}


class HostileServer:
    """A raw HTTP/1.1 server on 127.0.0.1 for the hardening tests: each request path is
    answered by a :data:`Behaviour` (trickled bytes, compression bombs, odd headers, raw JSON
    bytes no encoder would write), paths without one by ``default``.

    ::

        with HostileServer({"/v1/instances": HostileServer.trickle_body(b"{}")}) as server:
            collect(..., base_url=server.url)

    ``requests`` lists the paths asked, in order. Closing stops every behaviour and joins the
    connection threads.
    """

    def __init__(self, routes: Mapping[str, Behaviour], default: Behaviour | None = None) -> None:
        self._routes = dict(routes)
        self._default = default or HostileServer.json(200, b'{"clusters": [], "instances": [], '
                                                           b'"instance_types": []}')
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def url(self) -> str:
        """The base URL to give the client (``<origin>/v1``)."""
        return f"{self.origin}/v1"

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in [self._acceptor, *threads]:
            thread.join(timeout=10)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._open.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            while not self._stop.is_set():
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                target = head.split(b" ", 2)[1].decode("latin-1") if b" " in head else "/"
                path = urlsplit(target).path
                self.requests.append(path)
                behaviour = self._routes.get(path, self._default)
                behaviour(conn, self._stop)
                return  # one response per connection: every reply says Connection: close
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    # -- behaviours ------------------------------------------------------------------------

    @staticmethod
    def json(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Behaviour:
        """A plain response of ``body`` bytes (sent as they are: any number, any escape)."""
        def reply(conn: socket.socket, stop: threading.Event) -> None:
            conn.sendall(_head(status, {"Content-Type": "application/json",
                                        "Content-Length": str(len(body)), **(headers or {})})
                         + body)
        return reply

    @staticmethod
    def trickle_body(body: bytes, interval: float = 1.0) -> Behaviour:
        """A 200 whose ``body`` comes one byte per ``interval`` seconds (then more spaces for
        as long as the client listens): each byte resets a socket timeout."""
        def reply(conn: socket.socket, stop: threading.Event) -> None:
            conn.sendall(_head(200, {"Content-Type": "application/json",
                                     "Content-Length": str(len(body) + 100_000)}))
            data = iter(body)
            while not stop.wait(interval):
                conn.sendall(bytes([next(data, 0x20)]))
        return reply

    @staticmethod
    def trickle_headers(interval: float = 1.0) -> Behaviour:
        """A status line, then header bytes one per ``interval`` seconds, never ending."""
        def reply(conn: socket.socket, stop: threading.Event) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(interval):
                conn.sendall(b"a")
        return reply

    @staticmethod
    def gzip_bomb(expanded: int = 1024**3) -> Behaviour:
        """A 200 with ``Content-Encoding: gzip`` whose body expands to ``expanded`` bytes of
        JSON whitespace (1 GiB from about 1 MB)."""
        def reply(conn: socket.socket, stop: threading.Event) -> None:
            body = gzip_bomb(expanded)
            conn.sendall(_head(200, {"Content-Type": "application/json",
                                     "Content-Encoding": "gzip",
                                     "Content-Length": str(len(body))}))
            view = memoryview(body)
            for start in range(0, len(body), 65536):
                if stop.is_set():
                    return
                conn.sendall(view[start:start + 65536])
        return reply

    @staticmethod
    def endless_body() -> Behaviour:
        """A 200 without ``Content-Length`` that sends spaces until the client hangs up."""
        def reply(conn: socket.socket, stop: threading.Event) -> None:
            conn.sendall(_head(200, {"Content-Type": "application/json"}, length=False))
            chunk = b" " * 65536
            while not stop.is_set():
                conn.sendall(chunk)
        return reply


def gzip_bomb(expanded: int) -> bytes:
    """gzip of ``expanded`` spaces (made once per size, in 1 MiB steps)."""
    if expanded not in _GZIP_BOMBS:
        import zlib

        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        block, parts, left = b" " * 1024**2, [], expanded
        while left > 0:
            parts.append(packer.compress(block[:min(left, len(block))]))
            left -= len(block)
        parts.append(packer.flush())
        _GZIP_BOMBS[expanded] = b"".join(parts)
    return _GZIP_BOMBS[expanded]


def _head(status: int, headers: Mapping[str, str], length: bool = True) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Odd"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


if __name__ == "__main__":  # python -m shadeanalytics.testing.fakeapi: serve until stopped
    from .demo import main as _serve_main

    sys.exit(_serve_main())
