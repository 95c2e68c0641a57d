"""Shadeform API client: timeouts, bounded retries, typed errors, a key that never leaks."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import socket
import sys
import threading
import time
import warnings
import weakref
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.client import HTTPException
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import orjson
import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from shadeanalytics import config
from shadeanalytics.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    printable,
)
from shadeanalytics.ingest.resources import BY_NAME, Resource

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_RESPONSE_BYTES",
    "ClientPolicy",
    "SessionTransport",
    "ShadeformClient",
    "Transport",
    "check_base_url",
]

DEFAULT_BASE_URL = "https://api.shadeform.ai/v1"

_log = logging.getLogger("shadeanalytics.live.client")

#: The statuses retried by default, and the ones named rate-limited / server errors
_TRANSIENT = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_INSTANCE_TYPE_FILTERS = frozenset(
    {"cloud", "region", "num_gpus", "gpu_type", "shade_instance_type", "available", "sort"}
)
# Error bodies are server text and may echo request data; only a machine code of this form
# is safe to put in an exception message.
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: The largest response body read, on the wire and once decompressed (gzip / deflate): a
#: fleet of 40,000 instances fits; a compression bomb or an endless body stops here.
MAX_RESPONSE_BYTES = 128 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ClientPolicy:
    """How a :class:`ShadeformClient` waits, retries and gives up: one value to pass around.

    The defaults are the project's (SECURITY.md): a 5 s connect and 30 s read timeout; GETs
    tried at most ``max_attempts`` times on connection errors, read timeouts and the
    ``retry_statuses``, waiting ``jitter() * min(backoff_cap, backoff_base * 2 ** (n - 1))``
    seconds after failed attempt ``n`` (full jitter); a ``Retry-After`` is a floor on that
    wait, and one past ``retry_after_cap`` seconds stops the retries at once. Each attempt
    (redirects included) is cut after ``attempt_cap`` seconds, whatever the server trickles;
    ``deadline`` is an absolute ``clock()`` value no wait or request goes past (``None``: no
    deadline; ``collect`` sets its run's). Bodies larger than ``max_response_bytes`` (on the
    wire or decompressed) are refused. ``sleep``, ``jitter`` and ``clock`` are the hooks tests
    inject to assert retry schedules exactly.

    >>> ClientPolicy(max_attempts=5).backoff_cap
    20.0
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    retry_statuses: frozenset[int] = _TRANSIENT
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    retry_after_cap: float = 60.0
    attempt_cap: float = 60.0
    deadline: float | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    sleep: Callable[[float], object] = time.sleep
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not self.attempt_cap > 0 or self.max_response_bytes < 1:
            raise ValueError("attempt_cap and max_response_bytes must be positive")
        if not (self.connect_timeout > 0 and self.read_timeout > 0):
            raise ValueError("connect_timeout and read_timeout must be positive")
        if not (self.backoff_base >= 0 and self.backoff_cap >= 0 and self.retry_after_cap >= 0):
            raise ValueError("backoff_base, backoff_cap and retry_after_cap must not be negative")

    def until(self, deadline: float) -> ClientPolicy:
        """This policy with ``deadline`` (a ``clock()`` value), or its own if that is earlier."""
        if self.deadline is not None and self.deadline <= deadline:
            return self
        return dataclasses.replace(self, deadline=deadline)


class Transport(Protocol):
    """What performs one HTTP exchange for a :class:`ShadeformClient` (the seam for tests).

    ``get`` sends one GET and returns the response unread (``stream=True``) without following
    redirects; ``abort`` is called from another thread to cut any exchange in flight (the
    attempt cap or the deadline has come); ``reset`` drops pooled connections after an abort;
    ``close`` releases what the transport holds.
    """

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
    ) -> requests.Response: ...

    def abort(self) -> None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class SessionTransport:
    """The default :class:`Transport`: a ``requests.Session`` whose sockets can be cut.

    Socket timeouts bound one wait for a byte, not a whole response, so every socket this
    transport opens is known and ``abort`` shuts them down (a trickling response ends there).
    A given ``session`` is used (its adapters replaced) and left open by ``close``.
    """

    def __init__(self, session: requests.Session | None = None) -> None:
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        adapter = _WatchedAdapter(self._sockets)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
    ) -> requests.Response:
        """One GET, streamed, redirects not followed."""
        return self.session.get(
            url,
            params=params,
            headers=dict(headers),
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )

    def abort(self) -> None:
        """Shut down every socket this transport opened (wakes a blocked ``recv()``)."""
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        """Close the pools: their sockets may have been shut down."""
        for adapter in self.session.adapters.values():
            adapter.close()

    def close(self) -> None:
        """Close the session, if this transport created it."""
        if self._owns_session:
            self.session.close()


#: The keyword arguments ``ShadeformClient`` took before ``policy=``: the policy field each
#: sets (``timeout`` sets both timeouts; ``session`` becomes the transport's session).
_OLD_KEYWORDS = {
    "timeout": "connect_timeout",
    "max_attempts": "max_attempts",
    "backoff_base": "backoff_base",
    "backoff_cap": "backoff_cap",
    "retry_after_cap": "retry_after_cap",
    "deadline": "deadline",
    "attempt_cap": "attempt_cap",
    "max_response_bytes": "max_response_bytes",
    "sleep": "sleep",
    "random": "jitter",
    "session": "session",
}


def _resource(name: str) -> Resource:
    """The resource ``name`` (``ingest/resources.py``), or ``ValueError`` naming the known."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown resource {name!r} (known: {', '.join(BY_NAME)})") from None


def _outside_the_package() -> int:
    """The ``stacklevel`` of the first caller outside this package, for a warning raised by
    the function calling this one: a ``partial(ShadeformClient, sleep=...)`` called by
    ``collect`` is the user's code, not ``collect``'s."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    level, frame = 2, sys._getframe(2)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package
    ):
        level, frame = level + 1, frame.f_back
    return level


def _from_old_keywords(
    policy: ClientPolicy | None, transport: Transport | None, old: dict[str, Any]
) -> tuple[ClientPolicy, Transport | None]:
    """The policy and transport the deprecated keywords ``old`` describe, on top of ``policy``."""
    unknown = sorted(set(old) - set(_OLD_KEYWORDS))
    if unknown:
        raise TypeError(f"ShadeformClient() got unexpected keyword arguments: {', '.join(unknown)}")
    if not old:
        return policy or ClientPolicy(), transport
    warnings.warn(
        f"ShadeformClient({', '.join(f'{name}=' for name in sorted(old))}) is deprecated and "
        "will be removed in the next release; pass policy=ClientPolicy(...) (and "
        "transport=SessionTransport(session) for session=)",
        DeprecationWarning,
        stacklevel=_outside_the_package(),
    )
    session = old.pop("session", None)
    if session is not None:
        if transport is not None:
            raise TypeError("pass transport= or the deprecated session=, not both")
        transport = SessionTransport(session)
    changes = {_OLD_KEYWORDS[name]: value for name, value in old.items()}
    if "connect_timeout" in changes:
        timeout = changes.pop("connect_timeout")
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        changes.update(connect_timeout=connect, read_timeout=read)
    return dataclasses.replace(policy or ClientPolicy(), **changes), transport


class _Retryable(Exception):
    """One attempt failed in a way RELIABILITY.md says to retry."""

    def __init__(self, error: ApiError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``; ``ValueError`` when its port is not a port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def check_base_url(url: str) -> str:
    """``url`` without a trailing ``/`` if it can be the API's base URL, else ``ValueError``.

    It must be an absolute ``http(s)`` URL with a host and a usable port, and carry no
    credentials, query or fragment (the key is the only credential sent).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("the base URL has an unusable host or port") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("the base URL must be an absolute http(s) URL with a host")
    if port == 0:
        raise ValueError("the base URL has an unusable host or port")
    if parts.username or parts.password or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("the base URL must not carry credentials, a query or a fragment")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ValueError("the base URL contains whitespace or control characters")
    return url.rstrip("/")


def _plural(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _status_text(status: int) -> str:
    # Our own reason phrases: the server's reason line is free text we do not control.
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delay-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is None:
                return None
            seconds = (when - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, OverflowError, IndexError):
            # a date that is no date, or one no datetime can hold (year 99999999999)
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _error_code(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    code = data.get("error_code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


def _status_line(path: str, status: int, body: bytes) -> str:
    code = _error_code(body)
    suffix = f" [error_code {code}]" if code else ""
    return f"GET {path}: {_status_text(status)}{suffix}"


def _html_note(body: bytes) -> str:
    return " (looks like HTML)" if body.lstrip()[:1] == b"<" else ""


def _valid_key(key: str) -> bool:
    # requests and http.client echo a rejected header value in their exceptions,
    # so a key they would reject must be refused here, without quoting it.
    return bool(key) and all(33 <= ord(char) <= 126 for char in key)


class ShadeformClient:
    """Read-only client of the Shadeform API.

    ``policy`` (a :class:`ClientPolicy`, default ``ClientPolicy()``) says how it waits, retries
    and gives up: every request has a timeout; GETs are retried on connection errors, read
    timeouts, 429 and 500/502/503/504 with full-jitter exponential backoff, ``Retry-After``
    honoured as a floor up to a cap; no wait or request goes past the policy's deadline.
    ``transport`` performs each HTTP exchange (default: a :class:`SessionTransport` the client
    closes; a given one is left open). ``key_source`` names where the key came from, for the
    messages that ask to check it. The keywords taken before ``policy=`` (``timeout``,
    ``max_attempts``, ``sleep``, ``random``, ``deadline``, ``session``...) still work, with a
    ``DeprecationWarning``, until the next release.

    Redirects are followed by hand, at most five: a redirect to the API's own origin keeps the
    ``X-API-KEY`` header; a redirect to any other origin (another host, port or scheme) is
    refused with :class:`TransportError`, so the key is never sent anywhere but the API.
    The key never appears in ``repr``, logs or exception messages.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        policy: ClientPolicy | None = None,
        transport: Transport | None = None,
        key_source: str | None = None,
        **deprecated: Any,
    ) -> None:
        owns_transport = transport is None
        policy, transport = _from_old_keywords(policy, transport, deprecated)
        key, source = config.api_key(api_key)  # the one rule for a key, wherever it comes from
        # where the key came from, for the messages that ask the user to check it
        self._key_source = key_source or source
        if not key:
            raise AuthenticationError(
                f"no Shadeform API key: set {config.API_KEY_ENV} or pass api_key="
            )
        if not _valid_key(key):
            raise AuthenticationError(
                "the Shadeform API key contains whitespace, control or non-ASCII characters; "
                f"check {self._key_source}"
            )
        url = check_base_url(config.base_url(base_url or None)[0] or DEFAULT_BASE_URL)
        self._key = key
        self.base_url = url
        self._origin = _origin(self.base_url)
        #: How this client waits, retries and gives up; replace it (``policy.until(...)``,
        #: ``dataclasses.replace``) to change that for the requests that follow.
        self.policy = policy
        self._owns_transport = owns_transport
        self._transport: Transport = transport if transport is not None else SessionTransport()
        self._expired: str | None = None  # "deadline" or "attempt" once the watchdog cut

    def __repr__(self) -> str:
        return f"ShadeformClient(base_url={self.base_url!r}, key=***)"

    def __enter__(self) -> ShadeformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the transport, if this client created it."""
        if self._owns_transport:
            self._transport.close()

    def clusters(self) -> dict[str, Any]:
        """``GET /clusters``: ``{"clusters": [...]}``, the account's non-deleted clusters."""
        return self._list("clusters")

    def cluster_info(self, cluster_id: str) -> dict[str, Any]:
        """``GET /clusters/{id}/info``: one non-deleted cluster; :class:`NotFoundError` if gone."""
        return self._info("clusters", cluster_id)

    def instances(self) -> dict[str, Any]:
        """``GET /instances``: ``{"instances": [...]}``, non-deleted instances (incl. deleting)."""
        return self._list("instances")

    def instance_info(self, instance_id: str) -> dict[str, Any]:
        """``GET /instances/{id}/info``: one non-deleted instance (superset of the list shape)."""
        return self._info("instances", instance_id)

    def volumes(self) -> dict[str, Any]:
        """``GET /volumes``: ``{"volumes": [...]}``, the account's storage volumes."""
        return self._list("volumes")

    def volume_info(self, volume_id: str) -> dict[str, Any]:
        """``GET /volumes/{id}/info``: one volume."""
        return self._info("volumes", volume_id)

    def volume_types(self) -> dict[str, Any]:
        """``GET /volumes/types``: ``{"volume_types": [...]}``, storage offers and prices."""
        return self._list("volume_types")

    def ssh_keys(self) -> dict[str, Any]:
        """``GET /sshkeys``: ``{"ssh_keys": [...]}``."""
        return self._list("ssh_keys")

    def ssh_key_info(self, key_id: str) -> dict[str, Any]:
        """``GET /sshkeys/{id}/info``: one SSH key."""
        return self._info("ssh_keys", key_id)

    def templates(self) -> dict[str, Any]:
        """``GET /templates``: ``{"templates": [...]}``, the account's launch templates."""
        return self._list("templates")

    def featured_templates(self) -> dict[str, Any]:
        """``GET /templates/featured``: ``{"templates": [...]}``, Shadeform's featured ones."""
        return self._list("featured_templates")

    def template_info(self, template_id: str) -> dict[str, Any]:
        """``GET /templates/{id}/info``: one template."""
        return self._info("templates", template_id)

    def cluster_types(self) -> dict[str, Any]:
        """``GET /clusters/types``: ``{"cluster_types": [...]}``, multi-node offerings."""
        return self._list("cluster_types")

    def instance_types(self, **filters: str | int | bool) -> dict[str, Any]:
        """``GET /instances/types``: ``{"instance_types": [...]}``, optionally filtered.

        Filters: ``cloud``, ``region``, ``num_gpus``, ``gpu_type``, ``shade_instance_type``,
        ``available`` (bool) and ``sort`` (``"price"``).
        """
        unknown = sorted(set(filters) - _INSTANCE_TYPE_FILTERS)
        if unknown:
            raise TypeError(f"instance_types() got unknown filters: {', '.join(unknown)}")
        params = {
            name: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for name, value in filters.items()
        }
        return self._list("instance_types", params)

    def fetch_list(self, name: str) -> dict[str, Any]:
        """``GET`` the list endpoint of resource ``name`` (``ingest/resources.py``: e.g.
        ``"volumes"``): the response, ``{list key: [...]}``. The named methods
        (:meth:`volumes`, ...) are this for one resource each."""
        return self._list(name)

    def fetch_info(self, name: str, resource_id: str) -> dict[str, Any]:
        """``GET`` the info endpoint of resource ``name`` for ``resource_id`` (e.g.
        ``fetch_info("volumes", id)`` is ``GET /volumes/{id}/info``); ``ValueError`` for a
        resource the API serves no single object of."""
        return self._info(name, resource_id)

    def _list(self, name: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``GET`` the list endpoint of resource ``name`` (``ingest/resources.py``)."""
        resource = _resource(name)
        return self._get(resource.endpoint, params=params, list_key=resource.list_key)

    def _info(self, name: str, resource_id: str) -> dict[str, Any]:
        """``GET`` the info endpoint of resource ``name`` for ``resource_id``."""
        path = _resource(name).info
        if path is None:
            raise ValueError(f"the API has no info endpoint for {name}")
        return self._get(path.replace("{id}", quote(resource_id, safe="")))

    def _get(
        self, path: str, *, params: Mapping[str, str] | None = None, list_key: str | None = None
    ) -> dict[str, Any]:
        attempt = 1
        while True:
            try:
                status, body = self._attempt(path, params, attempt)
            except _Retryable as failure:
                self._wait_before_retry(path, attempt, failure)  # raises when none is left
                attempt += 1
                continue
            return self._parse(path, status, body, list_key)

    def _wait_before_retry(self, path: str, attempt: int, failure: _Retryable) -> None:
        # Each raise keeps the requests exception (if any) as the cause and hides the internal
        # _Retryable from the traceback.
        error, cause = failure.error, failure.__cause__
        policy = self.policy
        if attempt >= policy.max_attempts:
            raise type(error)(
                f"{error} after {_plural(attempt)}", endpoint=path, status=error.status
            ) from cause
        wait = policy.jitter() * min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
        if failure.retry_after is not None:
            if failure.retry_after > policy.retry_after_cap:
                raise type(error)(
                    f"{error}; Retry-After {failure.retry_after:g} s exceeds the "
                    f"{policy.retry_after_cap:g} s cap; gave up after {_plural(attempt)}",
                    endpoint=path,
                    status=error.status,
                ) from cause
            wait = max(wait, failure.retry_after)
        if policy.deadline is not None and policy.clock() + wait > policy.deadline:
            raise type(error)(
                f"{error}; waiting {wait:g} s would pass the run deadline; "
                f"gave up after {_plural(attempt)}",
                endpoint=path,
                status=error.status,
            ) from cause
        _log.debug("GET %s: retrying in %.3f s (attempt %d failed)", path, wait, attempt)
        policy.sleep(wait)

    def _timeout_now(self, path: str) -> tuple[float, float]:
        policy = self.policy
        timeout = (policy.connect_timeout, policy.read_timeout)
        if policy.deadline is None:
            return timeout
        remaining = policy.deadline - policy.clock()
        if remaining <= 0:
            raise TransportError(
                f"GET {path}: the run deadline has passed; no request sent", endpoint=path
            )
        connect, read = timeout
        return min(connect, remaining), min(read, remaining)

    def _arm(self) -> threading.Timer:
        """A watchdog that cuts this attempt at its cap or at the run deadline."""
        policy = self.policy
        now = policy.clock()
        limit, why = now + policy.attempt_cap, "attempt"
        if policy.deadline is not None and policy.deadline <= limit:
            limit, why = policy.deadline, "deadline"
        self._expired = None
        timer = threading.Timer(max(0.0, limit - now), self._cut, args=(why,))
        timer.daemon = True
        timer.start()
        return timer

    def _cut(self, why: str) -> None:
        self._expired = why
        self._transport.abort()  # wakes the blocked recv() in the caller

    def _attempt(
        self, path: str, params: Mapping[str, str] | None, attempt: int
    ) -> tuple[int, bytes]:
        """One attempt, redirects included: the final status and body, or an error."""
        timeout = self._timeout_now(path)  # raises when the deadline has passed
        timer = self._arm()
        try:
            result = self._hops(path, params, attempt, timeout)
            if self._expired is not None:  # cut: what arrived may end anywhere
                raise _Retryable(TransportError(f"GET {path}: cut", endpoint=path))
            return result
        except (_Retryable, ApiError):
            if self._expired is None:
                raise
            # the watchdog cut this attempt: its sockets are gone, so is the pool
            self._transport.reset()
            if self._expired == "deadline":
                # not retried: no time is left, and the run must end now
                raise TransportError(f"GET {path}: the run deadline passed before the "
                                     "response was complete; gave up", endpoint=path) from None
            raise _Retryable(TransportError(
                f"GET {path}: no complete response within {self.policy.attempt_cap:g} s",
                endpoint=path)) from None
        finally:
            timer.cancel()

    def _hops(
        self, path: str, params: Mapping[str, str] | None, attempt: int,
        timeout: tuple[float, float]
    ) -> tuple[int, bytes]:
        url = self.base_url + path
        for hop in range(_MAX_REDIRECTS + 1):
            if hop:
                timeout = self._timeout_now(path)
            started = self.policy.clock()
            hop_path = urlsplit(url).path
            try:
                response = self._transport.get(
                    url,
                    params=params,
                    headers={"X-API-KEY": self._key, "Accept": "application/json",
                             "Accept-Encoding": "gzip, deflate"},
                    timeout=timeout,
                )
            except requests.Timeout as exc:
                self._log_request(hop_path, type(exc).__name__, started, attempt)
                kind = (
                    "connect timeout"
                    if isinstance(exc, requests.ConnectTimeout)
                    else "read timeout"
                )
                raise _Retryable(TransportError(f"GET {path}: {kind}", endpoint=path)) from exc
            except ValueError as exc:
                # requests parses a redirect's Location even when it does not follow it; a
                # Location no URL parser takes ("http://[::1/") fails there
                self._log_request(hop_path, type(exc).__name__, started, attempt)
                raise TransportError(f"GET {path}: refused a redirect to an unusable URL",
                                     endpoint=path) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, HTTPException,
                    OSError) as exc:
                self._log_request(hop_path, type(exc).__name__, started, attempt)
                raise _Retryable(
                    TransportError(f"GET {path}: connection failed", endpoint=path)
                ) from exc
            with response:
                status = response.status_code
                self._log_request(hop_path, status, started, attempt)
                if status in _REDIRECT_STATUSES and "Location" in response.headers:
                    url = self._redirect_target(path, status, url, response.headers["Location"])
                    params = None  # the Location carries the query it wants
                    continue
                body = self._read_body(path, response)
                if status in self.policy.retry_statuses:
                    error_class = (
                        RateLimitedError if status == 429 else ServerError if status >= 500
                        else ApiError
                    )
                    raise _Retryable(
                        error_class(_status_line(path, status, body), endpoint=path, status=status),
                        retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                    )
                return status, body
        raise TransportError(
            f"GET {path}: more than {_MAX_REDIRECTS} redirects", endpoint=path, status=status
        )

    def _redirect_target(self, path: str, status: int, url: str, location: str) -> str:
        try:
            target = urljoin(url, location)
            origin = _origin(target)
            check_base_url(target.split("?", 1)[0].split("#", 1)[0])
        except ValueError:
            # a Location with a port that is no port, controls, credentials...: not followed
            # (and not quoted: it is server text)
            raise TransportError(
                f"GET {path}: refused a {_status_text(status)} redirect to an unusable URL",
                endpoint=path,
                status=status,
            ) from None
        if origin != self._origin:
            # Off-origin redirects are refused rather than followed without the key: nothing
            # Shadeform documents needs one, and refusing cannot leak the key by construction.
            raise TransportError(
                f"GET {path}: refused a {_status_text(status)} redirect to another origin "
                "(the API key is only sent to the API's own origin)",
                endpoint=path,
                status=status,
            )
        return target

    def _too_big(self, path: str, status: int, what: str) -> BadResponseError:
        return BadResponseError(
            f"GET {path}: {_status_text(status)} but the response is larger than "
            f"{self.policy.max_response_bytes:,} bytes {what}; refused",
            endpoint=path,
            status=status,
        )

    def _read_body(self, path: str, response: requests.Response) -> bytes:
        """The body, read in chunks and decoded here: at most ``max_response_bytes`` on the
        wire and after decompression, whatever ``Content-Length`` or the gzip stream claim."""
        status = response.status_code
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            decoder = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
        else:
            raise BadResponseError(
                f"GET {path}: {_status_text(status)} with an unsupported Content-Encoding",
                endpoint=path, status=status)
        max_bytes = self.policy.max_response_bytes
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise self._too_big(path, status, "(Content-Length)")
        chunks: list[bytes] = []
        wire = size = 0
        try:
            while True:
                chunk = response.raw.read(_CHUNK, decode_content=False)
                if not chunk:
                    break
                wire += len(chunk)
                if wire > max_bytes:
                    raise self._too_big(path, status, "on the wire")
                while decoder is not None and chunk:
                    out = decoder.decompress(chunk, max_bytes - size + 1)
                    size += len(out)
                    if size > max_bytes:
                        raise self._too_big(path, status, "once decompressed")
                    chunks.append(out)
                    chunk = decoder.unconsumed_tail
                    if decoder.eof and decoder.unused_data:  # another gzip member follows
                        chunk = decoder.unused_data
                        decoder = zlib.decompressobj(wbits=47)
                if decoder is None:
                    size += len(chunk)
                    chunks.append(chunk)
            if decoder is not None and not decoder.eof and wire:
                raise zlib.error("truncated")
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            # A timeout in the middle of the body: the same failure as one before it.
            raise _Retryable(
                TransportError(f"GET {path}: connection lost in the body", endpoint=path)
            ) from exc
        except (urllib3.exceptions.HTTPError, HTTPException, OSError, zlib.error):
            # shorter than its Content-Length, a broken chunk, a reset, a bad gzip stream
            if 200 <= status < 300:
                raise BadResponseError(
                    f"GET {path}: {_status_text(status)} but the body is truncated or undecodable",
                    endpoint=path,
                    status=status,
                ) from None
            return b""
        return b"".join(chunks)

    def _parse(self, path: str, status: int, body: bytes, list_key: str | None) -> dict[str, Any]:
        if not 200 <= status < 300:
            raise self._status_error(path, status, body)
        if not body.strip():
            raise BadResponseError(
                f"GET {path}: {_status_text(status)} with an empty body",
                endpoint=path,
                status=status,
            )
        problem = "is not JSON"
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            data = _NOT_JSON
            if "infinity" in str(exc):  # valid JSON: a number like 1e400
                problem = "holds a number no double can hold"
            elif "recursion" in str(exc) or "depth" in str(exc):
                problem = "is nested too deeply to be a Shadeform response"
        # Raised outside the except clause: the decoder error holds the body, which may carry
        # secrets, and must not ride along as __context__.
        if data is _NOT_JSON:
            raise BadResponseError(
                f"GET {path}: {_status_text(status)} but the body {problem}{_html_note(body)}",
                endpoint=path,
                status=status,
            )
        if list_key is not None:
            shape_ok = isinstance(data, dict) and isinstance(data.get(list_key), list)
            expected = f"an object with a list under {list_key!r}"
        else:
            shape_ok = isinstance(data, dict) and isinstance(data.get("id"), str)
            expected = "an object with a string 'id'"
        if not shape_ok:
            raise BadResponseError(
                f"GET {path}: {_status_text(status)} but the body is not {expected}",
                endpoint=path,
                status=status,
            )
        return data

    def _status_error(self, path: str, status: int, body: bytes) -> ApiError:
        text = _status_line(path, status, body)
        if status in (401, 403):
            hint = (
                "the API key was rejected"
                if status == 401
                else "the API key may belong to another account"
            )
            return AuthenticationError(
                f"{text}; {hint}, check {self._key_source}", endpoint=path, status=status
            )
        if status == 404:
            return NotFoundError(
                f"{text}; deleted resources vanish from the API", endpoint=path, status=status
            )
        if status in _TRANSIENT:  # not retried: the policy leaves it out
            error_class = RateLimitedError if status == 429 else ServerError
            return error_class(text, endpoint=path, status=status)
        return ApiError(text, endpoint=path, status=status)

    def _log_request(self, path: str, outcome: int | str, started: float, attempt: int) -> None:
        elapsed_ms = (self.policy.clock() - started) * 1000
        _log.info("GET %s -> %s in %.0f ms (attempt %d)", printable(path), outcome, elapsed_ms,
                  attempt)


_NOT_JSON = object()


class _WatchedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections add their socket to ``sockets`` once connected."""

    def __init__(self, sockets: weakref.WeakSet[socket.socket]) -> None:
        self._watched = sockets
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        sockets = self._watched

        class _Conn(HTTPConnection):
            def connect(self) -> None:
                super().connect()
                sockets.add(self.sock)

        class _TLSConn(HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                sockets.add(self.sock)

        class _Pool(HTTPConnectionPool):
            ConnectionCls = _Conn

        class _TLSPool(HTTPSConnectionPool):
            ConnectionCls = _TLSConn

        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}

    def __getstate__(self) -> dict[str, Any]:  # pragma: no cover - requests pickles adapters
        state = super().__getstate__()
        state.pop("_watched", None)
        return state
