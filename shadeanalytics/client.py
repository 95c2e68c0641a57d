"""Shadeform API client: timeouts, bounded retries, typed errors, a key that never leaks."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import orjson
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

__all__ = ["DEFAULT_BASE_URL", "ShadeformClient"]

DEFAULT_BASE_URL = "https://api.shadeform.ai/v1"

_log = logging.getLogger("shadeanalytics.client")

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_INSTANCE_TYPE_FILTERS = frozenset(
    {"cloud", "region", "num_gpus", "gpu_type", "shade_instance_type", "available", "sort"}
)
# Error bodies are server text and may echo request data; only a machine code of this form
# is safe to put in an exception message.
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Retryable(Exception):
    """One attempt failed in a way RELIABILITY.md says to retry."""

    def __init__(self, error: ApiError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


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
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
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
    """Read-only client of the Shadeform API on one ``requests.Session``.

    Every request has a timeout; GETs are retried at most ``max_attempts`` times on connection
    errors, read timeouts, 429 and 500/502/503/504 with full-jitter exponential backoff, and
    ``Retry-After`` is honoured as a floor up to ``retry_after_cap`` seconds. ``deadline`` is an
    absolute ``time.monotonic()`` value: no wait or request timeout goes past it.

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
        timeout: float | tuple[float, float] = (5, 30),
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        retry_after_cap: float = 60.0,
        deadline: float | None = None,
        sleep: Callable[[float], object] = time.sleep,
        random: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("SHADEFORM_API_KEY", "")
        if not key:
            raise AuthenticationError(
                "no Shadeform API key: set SHADEFORM_API_KEY or pass api_key="
            )
        if not _valid_key(key):
            raise AuthenticationError(
                "the Shadeform API key contains whitespace, control or non-ASCII characters; "
                "check SHADEFORM_API_KEY or api_key="
            )
        url = base_url or os.environ.get("SHADEFORM_BASE_URL") or DEFAULT_BASE_URL
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must not carry credentials, a query or a fragment")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._key = key
        self.base_url = url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_after_cap = retry_after_cap
        self._deadline = deadline
        self._sleep = sleep
        self._random = random
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"ShadeformClient(base_url={self.base_url!r}, key=***)"

    def __enter__(self) -> ShadeformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session, if this client created it."""
        if self._owns_session:
            self._session.close()

    def clusters(self) -> dict[str, Any]:
        """``GET /clusters``: ``{"clusters": [...]}``, the account's non-deleted clusters."""
        return self._get("/clusters", list_key="clusters")

    def cluster_info(self, cluster_id: str) -> dict[str, Any]:
        """``GET /clusters/{id}/info``: one non-deleted cluster; :class:`NotFoundError` if gone."""
        return self._get(f"/clusters/{quote(cluster_id, safe='')}/info")

    def instances(self) -> dict[str, Any]:
        """``GET /instances``: ``{"instances": [...]}``, non-deleted instances (incl. deleting)."""
        return self._get("/instances", list_key="instances")

    def instance_info(self, instance_id: str) -> dict[str, Any]:
        """``GET /instances/{id}/info``: one non-deleted instance (superset of the list shape)."""
        return self._get(f"/instances/{quote(instance_id, safe='')}/info")

    def volumes(self) -> dict[str, Any]:
        """``GET /volumes``: ``{"volumes": [...]}``, the account's storage volumes."""
        return self._get("/volumes", list_key="volumes")

    def volume_info(self, volume_id: str) -> dict[str, Any]:
        """``GET /volumes/{id}/info``: one volume."""
        return self._get(f"/volumes/{quote(volume_id, safe='')}/info")

    def volume_types(self) -> dict[str, Any]:
        """``GET /volumes/types``: ``{"volume_types": [...]}``, storage offers and prices."""
        return self._get("/volumes/types", list_key="volume_types")

    def ssh_keys(self) -> dict[str, Any]:
        """``GET /sshkeys``: ``{"ssh_keys": [...]}``."""
        return self._get("/sshkeys", list_key="ssh_keys")

    def ssh_key_info(self, key_id: str) -> dict[str, Any]:
        """``GET /sshkeys/{id}/info``: one SSH key."""
        return self._get(f"/sshkeys/{quote(key_id, safe='')}/info")

    def templates(self) -> dict[str, Any]:
        """``GET /templates``: ``{"templates": [...]}``, the account's launch templates."""
        return self._get("/templates", list_key="templates")

    def featured_templates(self) -> dict[str, Any]:
        """``GET /templates/featured``: ``{"templates": [...]}``, Shadeform's featured ones."""
        return self._get("/templates/featured", list_key="templates")

    def template_info(self, template_id: str) -> dict[str, Any]:
        """``GET /templates/{id}/info``: one template."""
        return self._get(f"/templates/{quote(template_id, safe='')}/info")

    def cluster_types(self) -> dict[str, Any]:
        """``GET /clusters/types``: ``{"cluster_types": [...]}``, multi-node offerings."""
        return self._get("/clusters/types", list_key="cluster_types")

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
        return self._get("/instances/types", params=params, list_key="instance_types")

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
        if attempt >= self._max_attempts:
            raise type(error)(
                f"{error} after {_plural(attempt)}", endpoint=path, status=error.status
            ) from cause
        wait = self._random() * min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        if failure.retry_after is not None:
            if failure.retry_after > self._retry_after_cap:
                raise type(error)(
                    f"{error}; Retry-After {failure.retry_after:g} s exceeds the "
                    f"{self._retry_after_cap:g} s cap; gave up after {_plural(attempt)}",
                    endpoint=path,
                    status=error.status,
                ) from cause
            wait = max(wait, failure.retry_after)
        if self._deadline is not None and time.monotonic() + wait > self._deadline:
            raise type(error)(
                f"{error}; waiting {wait:g} s would pass the run deadline; "
                f"gave up after {_plural(attempt)}",
                endpoint=path,
                status=error.status,
            ) from cause
        _log.debug("GET %s: retrying in %.3f s (attempt %d failed)", path, wait, attempt)
        self._sleep(wait)

    def _timeout_now(self, path: str) -> tuple[float, float]:
        if self._deadline is None:
            return self._timeout
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError(
                f"GET {path}: the run deadline has passed; no request sent", endpoint=path
            )
        connect, read = self._timeout
        return min(connect, remaining), min(read, remaining)

    def _attempt(
        self, path: str, params: Mapping[str, str] | None, attempt: int
    ) -> tuple[int, bytes]:
        """One attempt, redirects included: the final status and body, or an error."""
        url = self.base_url + path
        for _ in range(_MAX_REDIRECTS + 1):
            timeout = self._timeout_now(path)
            started = time.monotonic()
            hop_path = urlsplit(url).path
            try:
                response = self._session.get(
                    url,
                    params=params,
                    headers={"X-API-KEY": self._key, "Accept": "application/json"},
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.Timeout as exc:
                self._log_request(hop_path, type(exc).__name__, started, attempt)
                kind = (
                    "connect timeout"
                    if isinstance(exc, requests.ConnectTimeout)
                    else "read timeout"
                )
                raise _Retryable(TransportError(f"GET {path}: {kind}", endpoint=path)) from exc
            except requests.ConnectionError as exc:
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
                if status in _RETRY_STATUSES:
                    error_class = RateLimitedError if status == 429 else ServerError
                    raise _Retryable(
                        error_class(_status_line(path, status, body), endpoint=path, status=status),
                        retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                    )
                return status, body
        raise TransportError(
            f"GET {path}: more than {_MAX_REDIRECTS} redirects", endpoint=path, status=status
        )

    def _redirect_target(self, path: str, status: int, url: str, location: str) -> str:
        target = urljoin(url, location)
        if _origin(target) != self._origin:
            # Off-origin redirects are refused rather than followed without the key: nothing
            # Shadeform documents needs one, and refusing cannot leak the key by construction.
            raise TransportError(
                f"GET {path}: refused a {_status_text(status)} redirect to another origin "
                "(the API key is only sent to the API's own origin)",
                endpoint=path,
                status=status,
            )
        return target

    def _read_body(self, path: str, response: requests.Response) -> bytes:
        status = response.status_code
        try:
            return response.content
        except requests.ConnectionError as exc:
            # A timeout or reset in the middle of the body: the same failure as one before it.
            raise _Retryable(
                TransportError(f"GET {path}: connection lost in the body", endpoint=path)
            ) from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            if 200 <= status < 300:
                raise BadResponseError(
                    f"GET {path}: {_status_text(status)} but the body is truncated or undecodable",
                    endpoint=path,
                    status=status,
                ) from None
            return b""

    def _parse(self, path: str, status: int, body: bytes, list_key: str | None) -> dict[str, Any]:
        if not 200 <= status < 300:
            raise self._status_error(path, status, body)
        if not body.strip():
            raise BadResponseError(
                f"GET {path}: {_status_text(status)} with an empty body",
                endpoint=path,
                status=status,
            )
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = _NOT_JSON
        # Raised outside the except clause: the decoder error holds the body, which may carry
        # secrets, and must not ride along as __context__.
        if data is _NOT_JSON:
            raise BadResponseError(
                f"GET {path}: {_status_text(status)} but the body is not JSON{_html_note(body)}",
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

    @staticmethod
    def _status_error(path: str, status: int, body: bytes) -> ApiError:
        text = _status_line(path, status, body)
        if status in (401, 403):
            hint = (
                "the API key was rejected"
                if status == 401
                else "the API key may belong to another account"
            )
            return AuthenticationError(
                f"{text}; {hint}, check SHADEFORM_API_KEY", endpoint=path, status=status
            )
        if status == 404:
            return NotFoundError(
                f"{text}; deleted resources vanish from the API", endpoint=path, status=status
            )
        return ApiError(text, endpoint=path, status=status)

    @staticmethod
    def _log_request(path: str, outcome: int | str, started: float, attempt: int) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        _log.info("GET %s -> %s in %.0f ms (attempt %d)", path, outcome, elapsed_ms, attempt)


_NOT_JSON = object()
