"""Webhook delivery: one alert POSTed as JSON with a timeout, bounded retries and a
whole-send deadline (``shadeanalytics check``'s transport).

``send_webhook`` retries connection errors, timeouts, 429 and 5xx with full-jitter
exponential backoff (as the collector's client does) and ends every send, attempts and waits
included, within ``WEBHOOK_DEADLINE_S``: a watchdog shuts the socket at the deadline, since a
socket timeout bounds one wait for a byte, not a server that trickles one byte a second. The
retry loop is kept by hand rather than urllib3's ``Retry``: that one has no whole-send
deadline and reads a response's body, which a hostile server may trickle forever. Errors name
the host only (the path of a Slack webhook is its secret).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import ShadeanalyticsError

__all__ = [
    "MAX_WEBHOOK_URL",
    "WEBHOOK_BACKOFF_S",
    "WEBHOOK_DEADLINE_S",
    "WebhookError",
    "check_webhook_url",
    "send_webhook",
]

#: The webhook's first backoff (seconds; doubles per attempt, full jitter).
WEBHOOK_BACKOFF_S = 0.5
#: The most one alert may take, every attempt and backoff included (seconds): a server that
#: trickles its answer cannot keep ``check`` (and its alert lock) past it.
WEBHOOK_DEADLINE_S = 30.0
#: The longest webhook URL taken (characters).
MAX_WEBHOOK_URL = 2048


class WebhookError(ShadeanalyticsError):
    """The webhook did not accept the alert after every attempt (or its URL is unusable).

    Raised by ``run_check``, ``breaches`` holds what the run found (the command line still
    prints them); empty otherwise.
    """

    breaches: Sequence[Any] = ()


def check_webhook_url(url: str) -> str:
    """``url`` checked as a webhook address: ``http://`` or ``https://``, a host, a valid port,
    no whitespace or control character, at most ``MAX_WEBHOOK_URL`` characters. Raises
    ``WebhookError`` naming the host at most (the path of a Slack webhook is its secret)."""
    if len(url) > MAX_WEBHOOK_URL:
        raise WebhookError(f"the webhook URL is longer than {MAX_WEBHOOK_URL:,} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise WebhookError("the webhook URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is no port
    except ValueError:
        raise WebhookError(
            "the webhook URL cannot be parsed (e.g. an unclosed '[' or a port that is not a number)"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError("the webhook must be an http:// or https:// URL")
    if not host:
        raise WebhookError("the webhook URL has no host")
    return url


def _host(url: str) -> str:
    """What an error may say about a webhook address: its host (the path of a Slack webhook
    is its secret)."""
    return urlsplit(url).hostname or "?"


class _DeadlinePassed(Exception):
    """The watchdog cut a request at the send's deadline."""


def _post(url: str, data: bytes, timeout: float, give_up_at: float) -> int:
    """One POST of ``data`` to ``url``; its status. A watchdog shuts the socket at
    ``give_up_at`` (``time.monotonic``): a socket timeout bounds one wait for a byte, not a
    server that trickles one byte a second."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    cut = threading.Event()

    def shut() -> None:
        cut.set()
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv()

    watchdog = threading.Timer(max(0.0, give_up_at - time.monotonic()), shut)
    watchdog.daemon = True
    watchdog.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(
            "POST",
            target,
            body=data,
            headers={"Content-Type": "application/json", "User-Agent": "shadeanalytics"},
        )
        # the status is the answer: its body is never read (a server may trickle it forever)
        status = conn.getresponse().status
        if cut.is_set():  # the headers ended at the cut, not at the server's blank line
            raise _DeadlinePassed
        return status
    except (OSError, http.client.HTTPException):
        if cut.is_set():
            raise _DeadlinePassed from None
        raise
    finally:
        watchdog.cancel()
        conn.close()


def send_webhook(
    url: str,
    body: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff_base: float | None = None,
    backoff_cap: float = 10.0,
    deadline: float | None = None,
) -> int:
    """POST ``body`` as JSON to ``url``; returns the number of attempts it took.

    Retries connection errors, timeouts, 429 and 5xx with full-jitter exponential backoff
    (the collector's client does the same), at most ``attempts`` times in all; any other
    4xx is final. The whole send, every attempt and wait included, ends within ``deadline``
    seconds (default ``WEBHOOK_DEADLINE_S``), however slowly the server answers. Raises
    ``WebhookError`` naming the host only (a webhook's path is a secret) after the last
    failure. No proxy settings of the environment are used.
    """
    check_webhook_url(url)
    base = WEBHOOK_BACKOFF_S if backoff_base is None else backoff_base
    limit = WEBHOOK_DEADLINE_S if deadline is None else deadline
    give_up_at = time.monotonic() + limit
    late = f"no complete answer within the {limit:g} s deadline"
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    why = ""
    attempt = 0
    for attempt in range(1, attempts + 1):
        try:
            left = give_up_at - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed
            status = _post(url, data, min(timeout, left), give_up_at)
            if 200 <= status < 300:
                return attempt
            why = f"HTTP {status}"
            if status != 429 and status < 500:
                break
        except _DeadlinePassed:
            why = late
            break
        except TimeoutError:  # socket.timeout: one wait for a byte
            why = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            why = f"connection failed ({type(exc).__name__})"
        if attempt < attempts:
            wait = random.random() * min(backoff_cap, base * 2 ** (attempt - 1))
            if time.monotonic() + wait >= give_up_at:
                why = f"{why}, then {late}"
                break
            time.sleep(wait)
    raise WebhookError(
        f"webhook at {_host(url)}: {why} after {attempt} attempt"
        f"{'s' * (attempt != 1)}; the alert state is unchanged, the next run "
        "sends again"
    )
