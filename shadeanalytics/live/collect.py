"""One collection run for cron: fetch the list endpoints and record them in the store.

A run takes a non-blocking lock on the store file itself: when another collector holds it,
the run raises :class:`~shadeanalytics.errors.LockedError` at once and writes nothing. The lock
is an ``flock`` on the file (its device and inode, not its name), so a hard link or a symlink to
the same store is the same lock; the kernel releases it when its process dies, so a killed run
leaves no stale lock. A run has a deadline that holds whatever the server does: no request,
retry wait or timeout of the client goes past it, and a watchdog cuts a response still
trickling in at the deadline; the run then records a failed poll.

A clock that went backwards (a poll recorded while the clock was ahead, then the clock fixed) is
detected: the poll is recorded at the run's own time with a warning, kept in the store
(:meth:`~shadeanalytics.live.store.Store.poll_warnings`) and printed; collection never stops
until the clock catches up with the bad date.

Before anything is asked, the store must pass SQLite's quick check: a damaged store raises
:class:`~shadeanalytics.errors.DamagedStoreError` and nothing is written. A record the record
spec refuses (a wrong type, a bad date, a number out of range) is quarantined by
:meth:`~shadeanalytics.live.store.Store.record_poll`, not stored; the result's ``refused``
names each one (endpoint, JSON path, id and reason, never the value).

A run is all or nothing for its core, ``/clusters``, ``/instances`` and ``/instances/types``:
either they are recorded as one successful poll, or the run is recorded as a failed poll (so an
outage is never read as "everything disappeared") and the error is raised again for the caller
to choose an exit code (the command line's ``cli.exit_code_for``).

The rest of the account rides along and never fails a poll: ``/volumes`` and
``/volumes/types`` every run; ``/sshkeys``, ``/templates``, ``/templates/featured`` and
``/clusters/types`` when their last successful poll is a day old (``account_every_s``); and
instance details from ``/instances/{id}/info``: at once for an instance the store has no
details of, otherwise when its details are older than ``info_max_age_s``, at most
``info_budget`` requests a run, new ones first, then oldest first, and none started once less
than a quarter of the run's deadline is left. A request among these that fails (or answers
something that cannot be recorded) is a row of the store's ``request_failures``; its endpoint
is left out of the poll, so nothing it lists is marked gone, and it is asked again next run.
``/instances/types`` is read last, after the details, so a fake API that advances after it
(``advance_on``) shows one state per run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import config
from .._common import progress
from .._storeurl import redact, target
from ..errors import (
    ApiError,
    BadResponseError,
    DamagedStoreError,
    InputError,
    LockedError,
    RateLimitedError,
    ServerError,
    ShadeanalyticsError,
    StoreError,
    TransportError,
    printable,
)
from ..ingest.resources import BY_NAME, RESOURCES
from .client import ShadeformClient
from .locks import store_lock
from .store import Store, prepare_account_list

__all__ = [
    "TEMPORARY_ERRORS",
    "CollectResult",
    "PollAbandoned",
    "PollLog",
    "Schedule",
    "StopSignals",
    "collect",
    "collect_every",
    "collector_lock",
]

#: Errors worth retrying later (rate limited, 5xx, network, timeout, the run's deadline); the
#: command line exits 75 (``cli.EXIT_UNAVAILABLE``) on them.
TEMPORARY_ERRORS = (RateLimitedError, ServerError, TransportError)


@dataclass(frozen=True)
class CollectResult:
    """What one successful run recorded; ``message`` is its one log line."""

    poll_id: int
    outcome: str
    counts: dict[str, int]
    duration_s: float
    message: str
    warnings: tuple[str, ...] = ()
    #: the records the poll refused (quarantined, never stored): one line each, no value
    refused: tuple[str, ...] = ()


def collector_lock(store_path: str | os.PathLike[str]) -> AbstractContextManager[None]:
    """Hold the store file itself (created ``0600`` if missing) exclusively for the block, or
    raise ``LockedError`` at once. Any path to the same file (a hard link, a symlink) is the
    same lock; a PostgreSQL store's lock is its advisory lock (``locks.store_lock``)."""
    return store_lock(store_path, f"{redact(store_path)}: another collector is running (it "
                                  "holds the store's lock); this run wrote nothing")


def _make_folder(folder: Path) -> None:
    """Create the store's folder (a first run from cron should just work)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{folder}: cannot create the store's folder ({exc.strerror})") from None


def collect(
    store_path: str | os.PathLike[str],
    *,
    make_client: Callable[..., ShadeformClient] = ShadeformClient,
    deadline_s: float = 240.0,
    now: Callable[[], datetime] = config.now,
    info_max_age_s: float = 24 * 3600.0,
    info_budget: int = 50,
    account_every_s: float = 24 * 3600.0,
    fetching: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> CollectResult:
    """Poll ``/clusters``, ``/instances`` and ``/instances/types`` once into the store, with
    the rest of the account as the module docstring says.

    ``make_client()`` builds the client (default: ``ShadeformClient``, configured by
    ``SHADEFORM_API_KEY`` / ``SHADEFORM_BASE_URL``; pass ``functools.partial(ShadeformClient,
    api_key=..., base_url=..., policy=...)`` to configure it). Its policy is then given the
    run's deadline (``policy.until``), an absolute ``time.monotonic()`` value ``deadline_s``
    after the lock is taken (the policy's own deadline, if earlier, holds). Every row of the poll is
    dated ``now()`` at the start of the run (default: ``config.now``, the wall clock or
    ``SHADEANALYTICS_NOW``).

    ``fetching()`` wraps the requests of the run (not the store's writes): ``collect_every``
    passes :meth:`StopSignals.fetching`, so that a stop request abandons a poll still
    fetching (nothing written) and lets a poll being written commit.

    Raises ``LockedError`` (nothing written) when another run holds the lock; on an
    ``ApiError`` or a response of the wrong shape, records a failed poll and raises the error
    again. Store errors propagate as ``StoreError``.
    """
    if not deadline_s > 0:
        raise ValueError("deadline_s must be positive")
    if info_budget < 0 or info_max_age_s < 0 or account_every_s < 0:
        raise ValueError("info_budget, info_max_age_s and account_every_s must not be negative")
    where = target(store_path)
    name = redact(where)
    # built first, before the lock and the store: a missing key or a bad base URL is a
    # configuration error, not a failed poll, and must leave no file behind. The lock is
    # taken at once (non-blocking), so the deadline can start here.
    began = time.monotonic()
    deadline = began + deadline_s
    with make_client() as client:
        client.policy = client.policy.until(deadline)
        if isinstance(where, Path):
            _make_folder(where.parent)
        with collector_lock(where), Store(where) as store:
            _check_integrity(store)
            started = now()
            warnings: list[str] = []
            try:
                plan = _Plan(started, deadline - deadline_s / 4, info_max_age_s, info_budget,
                             account_every_s)
                with fetching():
                    responses = _fetch(client, store, plan)
                finished = now()
                newest = store.newest_poll()
                if newest is not None and newest[1] > started:
                    warnings.append(_clock_warning(newest, started))
                poll_id = store.record_poll(started, started_at=started, finished_at=finished,
                                            allow_earlier=bool(warnings), **responses)
                for warning in warnings:
                    store.add_poll_warning(poll_id, warning)
            except (ApiError, InputError, StoreError) as exc:
                _record_failure(store, started, now, str(exc) or type(exc).__name__)
                raise
            except (ValueError, OverflowError, TypeError, RecursionError) as exc:
                # a value no check above foresaw: still a recorded failed poll, never a
                # traceback (the text is ours, never the value)
                error = StoreError(f"{name}: cannot record the poll: a response holds a "
                                   f"value the store cannot keep ({type(exc).__name__})")
                _record_failure(store, started, now, str(error))
                raise error from None
            row = store.poll(poll_id)
            refused = store.quarantine() if row["refused"] else None
    return _result(row, time.monotonic() - began, tuple(warnings), _refusal_lines(
        refused, poll_id))


def _check_integrity(store: Store) -> None:
    """Refuse (``DamagedStoreError``, nothing written) a store that fails SQLite's quick check:
    a poll recorded there could be lost, or hide the damage."""
    problems = store.quick_check()
    if problems != "ok":
        lines = [line for line in problems.splitlines() if not line.startswith("***")]
        first = printable(lines[0] if lines else "unknown problem")
        raise DamagedStoreError(f"{store.path}: the store fails SQLite's integrity check "
                                f"({first}); this run wrote nothing: restore it from a backup "
                                "or move it aside")


def _refusal_lines(refused: Any, poll_id: int) -> tuple[str, ...]:
    if refused is None:
        return ()
    rows = refused[refused["poll_id"] == poll_id]
    return tuple(f"quarantined: GET {r.endpoint} at {r.path} (id {r.resource_id}): {r.reason}; "
                 "not stored (the resource keeps its last good version)"
                 for r in rows.itertuples())


def _record_failure(store: Store, started: datetime, now: Callable[[], datetime],
                    error: str) -> None:
    """Record the failed poll; a store that cannot even take that keeps the original error."""
    with contextlib.suppress(StoreError):
        store.record_failed_poll(started, error=printable(error), started_at=started,
                                 finished_at=now())


def _clock_warning(newest: tuple[int, datetime], started: datetime) -> str:
    return (f"the clock went backwards: this run started at {_text(started)}, before poll "
            f"{newest[0]} observed at {_text(newest[1])}; recorded at this run's time (the "
            "earlier poll was dated by a clock that was ahead)")


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class _Plan:
    """What one run asks for beside its core: when, how many details, until when."""

    started: datetime
    info_until: float  # time.monotonic(): no detail request starts after it
    info_max_age_s: float
    info_budget: int
    account_every_s: float


#: account lists polled once a day, and every run: record_poll argument -> the name
#: ``client.fetch_list`` takes (the same name: the resource's, ``ingest/resources.py``)
_DAILY = {r.name: r.name for r in RESOURCES if r.collect == "daily"}
_EVERY_RUN = {r.name: r.name for r in RESOURCES if r.collect == "every-run"}
_ENDPOINT_OF = {r.name: r.endpoint for r in RESOURCES if r.collect != "core"}
_INSTANCE_INFO = BY_NAME["instances"].info or ""


def _fetch(client: ShadeformClient, store: Store, plan: _Plan) -> dict[str, Any]:
    clusters = client.clusters()
    instances = client.instances()
    failures: list[tuple[str, str | None, str]] = []
    account: dict[str, Any] = {}
    due = dict(_EVERY_RUN)
    for name, method in _DAILY.items():
        last = store.last_polled(_ENDPOINT_OF[name])
        if last is None or _age_s(plan.started, last) >= plan.account_every_s:
            due[name] = method
    for name, method in due.items():
        account[name] = _optional(
            functools.partial(_checked, name, functools.partial(client.fetch_list, method)),
            _ENDPOINT_OF[name], None,
            failures)
    details = {}
    due_ids = _details_due(clusters, instances, store, plan)
    with progress(len(due_ids), "instance details", unit=" instances") as bar:
        for iid in due_ids:
            if time.monotonic() >= plan.info_until:
                break
            info = _optional(functools.partial(_checked_info, iid, client.instance_info),
                             _INSTANCE_INFO, iid, failures)
            if info is not None:
                details[iid] = info
            bar.update(1)
    return {
        "clusters": clusters,
        "instances": instances,
        **account,
        "instance_details": details,
        "failures": failures,
        # last: a fake API that advances after it shows one state per run
        "instance_types": client.instance_types(),
    }


def _optional(fetch: Callable[[], Any], endpoint: str, resource_id: str | None,
              failures: list[tuple[str, str | None, str]]) -> Any:
    """``fetch()``, or None with the failure noted: these requests never fail the poll."""
    try:
        return fetch()
    except (ApiError, InputError) as exc:
        failures.append((endpoint, resource_id, str(exc) or type(exc).__name__))
        return None


def _checked(name: str, fetch: Callable[[], Any]) -> Any:
    """The response of ``fetch()`` when the store can record it (else its ``SchemaError``)."""
    response = fetch()
    prepare_account_list(name, response)
    return response


def _checked_info(iid: str, fetch: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """``fetch(iid)``, the instance's info response, when it is that instance's."""
    info = fetch(iid)
    if info.get("id") != iid:
        raise BadResponseError(f"GET /instances/{{id}}/info: the response is not instance {iid}",
                               endpoint=_INSTANCE_INFO)
    return info


def _age_s(now: datetime, then: str) -> float:
    return (now - datetime.fromisoformat(then)).total_seconds()


def _items(response: Any, key: str) -> list[Any]:
    """``response[key]`` when it is a list (a malformed one is the store's to refuse, with
    its path and id), else nothing."""
    items = response.get(key) if isinstance(response, dict) else None
    return items if isinstance(items, list) else []


def _details_due(clusters: Any, instances: Any, store: Store, plan: _Plan) -> list[str]:
    """Instances whose details to fetch this run: those the store has none of (in list
    order), then those older than ``info_max_age_s`` (oldest first), at most ``info_budget``."""
    listed: list[str] = []
    for cluster in _items(clusters, "clusters"):
        listed += [m["id"] for m in _items(cluster, "instances")
                   if isinstance(m, dict) and isinstance(m.get("id"), str)]
    listed += [i["id"] for i in _items(instances, "instances")
               if isinstance(i, dict) and isinstance(i.get("id"), str)]
    seen = store.details_seen()
    fresh = [iid for iid in dict.fromkeys(listed) if iid not in seen]
    stale = sorted((seen[iid], iid) for iid in dict.fromkeys(listed)
                   if iid in seen and _age_s(plan.started, seen[iid]) >= plan.info_max_age_s)
    return (fresh + [iid for _, iid in stale])[:plan.info_budget]


def _result(row: dict[str, Any], duration: float,
            warnings: tuple[str, ...], refused: tuple[str, ...] = ()) -> CollectResult:
    counts = {name: int(row[name] or 0) for name in
              ("clusters", "instances", "instance_types", "added", "changed", "gone",
               "volumes", "details", "failures", "refused")}
    duration = round(duration, 3)  # one figure: the message shows the result's duration_s
    message = (f"poll {row['poll_id']} {row['outcome']} in {duration:.2f} s: "
               f"{counts['clusters']} clusters, {counts['instances']} instances, "
               f"{counts['instance_types']} instance types; {counts['added']} new, "
               f"{counts['changed']} changed, {counts['gone']} gone; {counts['volumes']} "
               f"volumes, {counts['details']} instance details, {counts['failures']} "
               "failed requests"
               + (f"; {counts['refused']} records refused (quarantined)" if refused else ""))
    return CollectResult(row["poll_id"], row["outcome"], counts, round(duration, 3), message,
                         warnings, refused)


# ---------------------------------------------------------------------------------------------
# collect --every: one process polling on a fixed schedule
# ---------------------------------------------------------------------------------------------


class PollAbandoned(BaseException):
    """A stop request abandoned the poll while it was fetching: nothing of it was written."""


class StopSignals:
    """SIGTERM and SIGINT as a request to stop, SIGHUP as a request to re-read the settings,
    while :meth:`installed` (signal handlers belong to the main thread).

    A stop request during :meth:`fetching` abandons the poll at once (``PollAbandoned``:
    nothing is written, the store is as the last committed poll left it); outside it (the
    store's writes, the wait between polls) it is noted and the loop ends after the write
    commits. A second request is no different: a poll being written always commits.
    """

    def __init__(self) -> None:
        self.stop_requested: str | None = None  # the signal's name once one arrived
        self.reload_requested = False
        self._fetching = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle the three signals for the block, then restore the previous handlers."""
        wanted = {signal.SIGTERM: self._stop, signal.SIGINT: self._stop,
                  signal.SIGHUP: self._reload}
        previous = {number: signal.signal(number, handler) for number, handler in wanted.items()}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def request_stop(self, reason: str = "stop") -> None:
        """Ask the loop to stop (what SIGTERM and SIGINT do), as a test or a caller may."""
        self.stop_requested = reason
        if self._fetching:
            self._fetching = False
            raise PollAbandoned(reason)

    def _stop(self, number: int, frame: object) -> None:
        self.request_stop(signal.Signals(number).name)

    def _reload(self, number: int, frame: object) -> None:
        self.reload_requested = True

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        """The requests of a poll: a stop request abandons them."""
        if self.stop_requested:
            raise PollAbandoned(self.stop_requested)
        self._fetching = True
        try:
            yield
        finally:
            self._fetching = False


@dataclass(frozen=True)
class Schedule:
    """Polls aligned to the interval: at the multiples of ``every_s`` in Unix time (every
    5 minutes: at :00, :05, :10...) plus a fixed ``jitter_s``, so that collectors started at
    different moments still poll at the same slots, and many collectors with random jitters
    do not all hit the API at the same second."""

    every_s: float
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ValueError("every_s must be positive")
        if not 0 <= self.jitter_s < self.every_s:
            raise ValueError("jitter_s must be at least 0 and less than every_s")

    @classmethod
    def jittered(cls, every_s: float, rng: random.Random | None = None) -> Schedule:
        """A schedule with a random jitter of up to a tenth of the interval (at most 30 s)."""
        return cls(every_s, (rng or random.Random()).uniform(0, min(every_s / 10, 30.0)))

    def next_after(self, t: float) -> float:
        """The first slot strictly after the Unix time ``t``."""
        return (math.floor((t - self.jitter_s) / self.every_s) + 1) * self.every_s \
            + self.jitter_s


@dataclass(frozen=True)
class PollLog:
    """One poll of ``collect_every``: what it recorded, or why not; :meth:`line` is its log."""

    number: int  # 1 for the process's first poll
    at: datetime  # when it started (the wall clock)
    outcome: str  # "ok", "failed", "locked", "abandoned"
    duration_s: float
    result: CollectResult | None = None
    error: ShadeanalyticsError | None = None

    def line(self, fmt: str = "text") -> str:
        """The poll's one log line: text, or a JSON object with ``fmt="json"``."""
        if fmt == "json":
            record: dict[str, Any] = {"time": _text(self.at), "poll": self.number,
                                      "outcome": self.outcome, "duration_s": self.duration_s}
            if self.result is not None:
                record.update(poll_id=self.result.poll_id, **self.result.counts,
                              warnings=list(self.result.warnings))
            if self.error is not None:
                record.update(error=printable(str(self.error)),
                              error_type=type(self.error).__name__)
            return json.dumps(record, ensure_ascii=True)
        stamp = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.result is not None:
            return f"{stamp} {self.result.message}"
        what = {"abandoned": "abandoned (stop requested; nothing written)"}.get(
            self.outcome, self.outcome)
        error = f": {printable(str(self.error))}" if self.error is not None else ""
        return f"{stamp} poll {what} after {self.duration_s:.2f} s{error}"


def collect_every(
    schedule: Schedule,
    configure: Callable[[], tuple[Path | str, dict[str, Any]]],
    *,
    signals: StopSignals | None = None,
    max_polls: int | None = None,
    on_poll: Callable[[PollLog], None] = lambda log: None,
    on_reload: Callable[[str | None], None] = lambda error: None,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], object] = time.sleep,
) -> PollLog | None:
    """Poll on ``schedule`` until a stop request (``signals``) or ``max_polls`` polls; return
    the last poll's log (None when none ran).

    ``configure()`` gives the store's path and the keyword arguments of :func:`collect`
    (``make_client``, ``deadline_s``, ``info_budget``...); it is called once at the start and
    again before the next poll after a reload request (SIGHUP): an error then is passed to
    ``on_reload`` and the previous settings stay (``on_reload(None)`` on success). The first
    poll runs at once, the next ones at the schedule's slots, never less than half an
    interval after the previous poll began (started a moment before a slot, the collector
    does not poll twice in that moment); a poll that runs past slots skips them. Each poll
    is one :func:`collect` run (its deadline, its retries and backoff on 429 and 5xx, its
    lock, taken for that poll only and released between polls); a failed, locked or
    abandoned poll is logged and the next slot tried. ``on_poll`` gets each poll's log once
    it is over.
    """
    signals = signals or StopSignals()
    settings = [configure()]

    def reload() -> None:
        signals.reload_requested = False
        try:
            settings[0] = configure()
        except ShadeanalyticsError as exc:
            on_reload(str(exc))
        else:
            on_reload(None)

    last: PollLog | None = None
    number = 0
    while not signals.stop_requested and (max_polls is None or number < max_polls):
        if signals.reload_requested:
            reload()
        number += 1
        last = _one_poll(number, *settings[0], signals, wall)
        on_poll(last)
        if signals.stop_requested or (max_polls is not None and number >= max_polls):
            break
        due = schedule.next_after(max(wall(), last.at.timestamp() + schedule.every_s / 2))
        while not signals.stop_requested and wall() < due:
            if signals.reload_requested:
                reload()  # at once, then wait for the slot with the new settings
            sleep(max(0.0, min(due - wall(), 0.1)))  # a signal is seen within 0.1 s
    return last


def _one_poll(number: int, store_path: Path | str, options: dict[str, Any], signals: StopSignals,
              wall: Callable[[], float]) -> PollLog:
    at = datetime.fromtimestamp(wall(), UTC)
    began = time.monotonic()

    def log(outcome: str, **kwargs: Any) -> PollLog:
        return PollLog(number, at, outcome, round(time.monotonic() - began, 3), **kwargs)

    try:
        result = collect(store_path, fetching=signals.fetching, **options)
    except PollAbandoned:
        return log("abandoned")
    except LockedError as exc:
        return log("locked", error=exc)
    except ShadeanalyticsError as exc:
        return log("failed", error=exc)
    return log(result.outcome, result=result)
