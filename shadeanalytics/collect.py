"""One collection run for cron: fetch the three list endpoints and record them in the store.

A run takes a non-blocking lock (``<store>.lock``): when another collector holds it, the run
raises :class:`~shadeanalytics.errors.LockedError` at once and writes nothing. The lock is an
``flock``, released by the kernel when its process dies, so a killed run leaves no stale lock
(the lock file itself stays; removing it could let two runs lock two different files). A run
has a deadline: no request, retry wait or timeout of the client goes past it.

A run is all or nothing: either the three responses are recorded as one successful poll, or
the run is recorded as a failed poll (so an outage is never read as "everything disappeared")
and the error is raised again for the caller to choose an exit code (:func:`exit_code_for`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .client import ShadeformClient
from .errors import (
    ApiError,
    InputError,
    LockedError,
    RateLimitedError,
    ServerError,
    StoreError,
    TransportError,
)
from .locks import exclusive_lock
from .store import Store

__all__ = [
    "EXIT_LOCKED",
    "EXIT_UNAVAILABLE",
    "CollectResult",
    "collect",
    "collector_lock",
    "exit_code_for",
]

#: Exit code when another collector holds the store's lock; this run wrote nothing.
EXIT_LOCKED = 3
#: Exit code when the API is temporarily unavailable (rate limited, 5xx, network, timeout):
#: sysexits' EX_TEMPFAIL, "try again later".
EXIT_UNAVAILABLE = 75


@dataclass(frozen=True)
class CollectResult:
    """What one successful run recorded; ``message`` is its one log line."""

    poll_id: int
    outcome: str
    counts: dict[str, int]
    duration_s: float
    message: str


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error ``collect`` raised.

    :data:`EXIT_LOCKED` for :class:`LockedError`; :data:`EXIT_UNAVAILABLE` for errors worth
    retrying later (:class:`RateLimitedError`, :class:`ServerError`, :class:`TransportError`);
    1 for everything else (a bad API key, a malformed response, a store problem).
    """
    if isinstance(exc, LockedError):
        return EXIT_LOCKED
    if isinstance(exc, RateLimitedError | ServerError | TransportError):
        return EXIT_UNAVAILABLE
    return 1


def _lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".lock")


def collector_lock(store_path: str | os.PathLike[str]) -> AbstractContextManager[None]:
    """Hold ``<store>.lock`` exclusively for the block, or raise ``LockedError`` at once."""
    path = _lock_path(Path(store_path))
    return exclusive_lock(path, f"{store_path}: another collector is running (it holds "
                                f"{path}); this run wrote nothing")


def _make_folder(folder: Path) -> None:
    """Create the store's folder (a first run from cron should just work)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{folder}: cannot create the store's folder ({exc.strerror})") from None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def collect(
    store_path: str | os.PathLike[str],
    *,
    make_client: Callable[..., ShadeformClient] = ShadeformClient,
    deadline_s: float = 240.0,
    now: Callable[[], datetime] = _utc_now,
) -> CollectResult:
    """Poll ``/clusters``, ``/instances`` and ``/instances/types`` once into the store.

    ``make_client(deadline=...)`` builds the client (default: ``ShadeformClient``, configured by
    ``SHADEFORM_API_KEY`` / ``SHADEFORM_BASE_URL``; pass ``functools.partial(ShadeformClient,
    api_key=..., base_url=...)`` to configure it). It is given the run's deadline, an absolute
    ``time.monotonic()`` value ``deadline_s`` after the lock is taken. Every row of the poll is
    dated ``now()`` at the start of the run.

    Raises ``LockedError`` (nothing written) when another run holds the lock; on an
    ``ApiError`` or a response of the wrong shape, records a failed poll and raises the error
    again. Store errors propagate as ``StoreError``.
    """
    if deadline_s <= 0:
        raise ValueError("deadline_s must be positive")
    store_path = Path(store_path).expanduser()
    _make_folder(store_path.parent)
    with collector_lock(store_path):
        began = time.monotonic()
        deadline = began + deadline_s
        # built first and outside the try: a missing key is a configuration error, not a
        # failed poll, and must not leave an empty store behind
        with make_client(deadline=deadline) as client, Store(store_path) as store:
            started = now()
            try:
                responses = _fetch(client)
                finished = now()
                poll_id = store.record_poll(started, started_at=started,
                                            finished_at=finished, **responses)
            except (ApiError, InputError) as exc:
                store.record_failed_poll(started, error=str(exc) or type(exc).__name__,
                                         started_at=started, finished_at=now())
                raise
            row = store.poll(poll_id)
    return _result(row, time.monotonic() - began)


def _fetch(client: ShadeformClient) -> dict[str, Any]:
    return {
        "clusters": client.clusters(),
        "instances": client.instances(),
        "instance_types": client.instance_types(),
    }


def _result(row: dict[str, Any], duration: float) -> CollectResult:
    counts = {name: int(row[name] or 0) for name in
              ("clusters", "instances", "instance_types", "added", "changed", "gone")}
    message = (f"poll {row['poll_id']} {row['outcome']} in {duration:.2f} s: "
               f"{counts['clusters']} clusters, {counts['instances']} instances, "
               f"{counts['instance_types']} instance types; {counts['added']} new, "
               f"{counts['changed']} changed, {counts['gone']} gone")
    return CollectResult(row["poll_id"], row["outcome"], counts, round(duration, 3), message)
