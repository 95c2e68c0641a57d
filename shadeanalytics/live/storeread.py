"""Reading the history store: the poll log, its failures and quarantine, and the history as
the same ``Tables`` the file loaders build, from row blocks derived once (``rows.py``).

The rules are the store's (``store.py`` states them); the database is reached through a
:class:`~shadeanalytics.live.storedb.Backend` only.
"""

from __future__ import annotations

import functools
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd

from .._common import progress
from ..errors import DataWarning, StoreError, printable
from ..ingest.load import gc_paused
from ..ingest.normalize import Findings, normalize_records
from ..ingest.tables import Tables, build_tables
from . import rows as derived
from .endpoints import ENDPOINTS, endpoint_of
from .storedb import POLL_WARNING_KEY, SCHEMA_VERSION, VOLATILE, Backend, Session, utc_text

__all__ = ["details_seen", "last_polled", "newest_poll", "poll", "poll_warnings", "polls",
           "quarantine", "read", "request_failures", "stats"]

#: kinds whose payload carries the volatile cost_estimate
_COSTED = ("cluster", "instance", "instance_info", "volume")
_POLL_COLUMNS = ("poll_id", "started_at", "finished_at", "observed_at", "endpoints", "outcome",
                 "clusters", "instances", "instance_types", "added", "changed", "gone", "error",
                 "volumes", "details", "failures", "refused")
_POLL_TIMES = ("started_at", "finished_at", "observed_at")
_POLL_TEXTS = ("endpoints", "outcome", "error")

#: how many versions a read derives between two updates of its progress bar
_DERIVE_CHUNK = 5_000
#: how long a read waits for the write lock to keep the rows it derived (else it keeps nothing)
_KEEP_WAIT_MS = 1_000


def poll_warnings(backend: Backend) -> dict[int, str]:
    """The warnings kept with polls (e.g. a clock that went backwards), by ``poll_id``."""
    with backend.snapshot() as session:
        rows = session.execute("SELECT key, value FROM meta WHERE key LIKE ?",
                               (f"{POLL_WARNING_KEY}%",)).fetchall()
    return {int(key[len(POLL_WARNING_KEY):]): value for key, value in rows}


def newest_poll(backend: Backend) -> tuple[int, datetime] | None:
    """``(poll_id, observed_at)`` of the newest successful poll, or None."""
    with backend.snapshot() as session:
        row = session.execute("SELECT poll_id, observed_at FROM polls WHERE outcome = 'ok' "
                              "ORDER BY observed_at DESC, poll_id DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), datetime.fromisoformat(row[1]))


def poll(backend: Backend, poll_id: int) -> dict[str, Any]:
    """One row of the poll log as a dict (timestamps as UTC text)."""
    with backend.snapshot() as session:
        row = session.execute(f"SELECT {_poll_select(session)} FROM polls WHERE poll_id = ?",
                              (poll_id,)).fetchone()
    if row is None:
        raise StoreError(f"{backend.name}: no poll {poll_id}")
    return dict(zip(_POLL_COLUMNS, row, strict=True))


def polls(backend: Backend) -> pd.DataFrame:
    """The poll log, oldest first (:meth:`Store.polls
    <shadeanalytics.live.store.Store.polls>`)."""
    with backend.snapshot() as session:
        rows = session.execute(f"SELECT {_poll_select(session)} FROM polls "
                               "ORDER BY poll_id").fetchall()
    values = [list(column) for column in zip(*rows, strict=True)] if rows else \
        [[] for _ in _POLL_COLUMNS]
    columns: dict[str, Any] = {}
    for name, column in zip(_POLL_COLUMNS, values, strict=True):
        if name in _POLL_TIMES:
            columns[name] = pd.to_datetime(column, utc=True, format="ISO8601").as_unit("us")
        elif name in _POLL_TEXTS:
            columns[name] = pd.array(column, dtype="string")
        else:
            columns[name] = pd.array(column, dtype="Int64")
    return pd.DataFrame(columns)


def request_failures(backend: Backend) -> pd.DataFrame:
    """Requests that failed without failing their poll (:meth:`Store.request_failures
    <shadeanalytics.live.store.Store.request_failures>`)."""
    with backend.snapshot() as session:
        rows = session.execute(
            "SELECT f.poll_id, p.observed_at, f.endpoint, f.resource_id, f.error "
            "FROM request_failures f JOIN polls p USING (poll_id) "
            f"ORDER BY f.poll_id, f.{session.insertion_order}").fetchall()
    poll_id, at, endpoint, rid, error = (list(c) for c in zip(*rows, strict=True)) \
        if rows else ([], [], [], [], [])
    return pd.DataFrame({
        "poll_id": pd.array(poll_id, dtype="Int64"),
        "observed_at": pd.to_datetime(at, utc=True, format="ISO8601").as_unit("us"),
        "endpoint": pd.array(endpoint, dtype="string"),
        "resource_id": pd.array(rid, dtype="string"),
        "error": pd.array(error, dtype="string"),
    })


def quarantine(backend: Backend) -> pd.DataFrame:
    """The records polls refused at the door (:meth:`Store.quarantine
    <shadeanalytics.live.store.Store.quarantine>`)."""
    names = ("endpoint", "kind", "resource_id", "path", "reason")
    with backend.snapshot() as session:
        rows = session.execute(
            "SELECT q.poll_id, p.observed_at, q.endpoint, q.kind, q.resource_id, q.path, "
            "q.reason FROM quarantine q JOIN polls p USING (poll_id) "
            f"ORDER BY q.poll_id, q.{session.insertion_order}").fetchall() \
            if session.has_table("quarantine") else []
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(7)]
    return pd.DataFrame({
        "poll_id": pd.array(cols[0], dtype="Int64"),
        "observed_at": pd.to_datetime(cols[1], utc=True, format="ISO8601").as_unit("us"),
        **{name: pd.array(col, dtype="string") for name, col in zip(names, cols[2:],
                                                                   strict=True)},
    })


def details_seen(backend: Backend) -> dict[str, str]:
    """Instance id -> when its ``/instances/{id}/info`` was last recorded (UTC text)."""
    with backend.snapshot() as session:
        return dict(session.execute("SELECT resource_id, max(last_seen_at) FROM versions "
                                    "WHERE kind = 'instance_info' GROUP BY resource_id"))


def last_polled(backend: Backend, endpoint: str) -> str | None:
    """When ``endpoint`` was last part of a successful poll (UTC text), or None."""
    with backend.snapshot() as session:
        found = session.contains("',' || endpoints || ','")
        return session.execute(
            f"SELECT max(observed_at) FROM polls WHERE outcome = 'ok' AND {found}",
            (f",{endpoint},",)).fetchone()[0]


#: ``read``'s ``pick``: (session, columns, until_poll, lo) -> the rows of the versions read
Pick = Callable[[Session, str, int, str], "list[tuple[Any, ...]] | None"]


@dataclass
class OpenRows:
    """Where a picked read (``pick``) takes its versions' derived rows from, besides the row
    blocks: ``get(session, vids)`` gives a block of the rows of exactly the versions
    ``vids`` (ascending), or None; then the row blocks are read (and the versions past them
    derived), and ``took`` is set to the block of those versions' rows (for the caller to
    keep), with ``vids``."""

    get: Callable[[Session, np.ndarray], derived.RowBlock | None]
    took: derived.RowBlock | None = None
    vids: np.ndarray | None = None


def read(backend: Backend, *, since: datetime | str | None = None,
         until: datetime | str | None = None, progress_bar: bool | None = None,
         min_versions: int,
         pick: Pick | None = None, open_rows: OpenRows | None = None,
         poll_log: Callable[[Session], derived.PollLog] | None = None) -> Tables:
    """:meth:`Store.read <shadeanalytics.live.store.Store.read>` on ``backend``; a window of
    at least ``min_versions`` versions is read from row blocks (fewer are walked again).
    ``pick(session, columns, until_poll, lo)``, called inside the read's snapshot, gives the
    rows (those ``columns``, ascending ids) of the versions of the window the read covers,
    or None for every one (``settled.py``: all but those of instances whose bill is kept);
    ``open_rows`` may then give those versions' derived rows instead of the row blocks;
    ``poll_log(session)`` the store's poll log (else it is fetched whole)."""
    lo = utc_text(since) if since is not None else ""
    hi = utc_text(until) if until is not None else "\uffff"
    with backend.snapshot() as session, gc_paused():
        polls = poll_log(session) if poll_log is not None else \
            derived.PollLog.fetch(session)
        ok = polls.select(polls.ok)
        logged = polls.select(polls.between(lo, hi))
        del polls
        # (ids ascend: without an end, the last one; an end walks the polls)
        until_poll = (int(ok.ids[-1]) if ok.ids.size else 0) if until is None else \
            int(ok.ids[ok.between("", hi)].max(initial=0))
        window = ("FROM versions WHERE valid_from <= ? AND last_seen_at >= ? "
                  "ORDER BY version_id", (until_poll, lo))
        picked = pick(session, derived.Versions.SELECT, until_poll, lo) \
            if pick is not None else None
        versions = derived.Versions.of(picked if picked is not None else session.execute(
            f"SELECT {derived.Versions.SELECT} {window[0]}", window[1]).fetchall())
        covered = set(versions.vid.tolist()) if picked is not None else None
        del picked
        stored: list[derived.RowBlock] = []
        new, frames = None, None
        if versions.vid.size >= min_versions:
            only = np.sort(versions.vid) if covered is not None else None
            block = open_rows.get(session, only) \
                if open_rows is not None and only is not None else None
            if block is None:
                stored, new, replacing = _row_blocks(backend.name, session, progress_bar,
                                                     only)
                block = derived.concat([*stored, *([new] if new is not None else [])]
                                       or [derived.empty_block()])
                if open_rows is not None and only is not None:
                    took = block if new is None else derived.rows_of(block, only)
                    open_rows.took, open_rows.vids = took, only
            frames = derived.read_rows(block, versions, ok, lo, hi)
            del block
        if frames is None:  # something to warn about, or to decide as the loaders do
            del versions
            rows = session.execute(
                "SELECT version_id, kind, resource_id, parent_id, valid_from, "
                f"last_seen_poll, payload, last_cost_estimate {window[0]}",
                window[1]).fetchall()
            if covered is not None:
                rows = [row for row in rows if row[0] in covered]
            records, fixes = _records(backend.name, rows, ok.rows(), lo, hi)
            with progress(len(records), "reading stored versions", enabled=progress_bar,
                          unit=" rows") as bar:
                # a stored record that cannot load (kept before the door checked it, or
                # refused by a newer spec) is set aside with a warning whatever
                # ``errors`` says: one record never makes a store unreadable
                tables = fixes.apply(build_tables(normalize_records(
                    _counted(records, bar), Findings(errors="skip"))))
            del records, rows
        else:
            tables = Tables(**frames, polls=derived.polls_frame(derived.PollLog.of([])))
        polls_frame = derived.polls_frame(logged)
        del logged
    if new is not None:
        _keep_row_blocks(backend, stored, new, replacing=replacing)
    for message in tables.warnings:
        # stacklevel 3: the caller of Store.read
        warnings.warn(printable(message), DataWarning, stacklevel=3)
    return replace(tables, polls=polls_frame)


_T = TypeVar("_T")


def undamaged(source: str, what: str, decode: Callable[[], _T]) -> _T | None:
    """``decode()``, or None (with a ``DataWarning`` naming the store and what it kept)
    where what the store kept cannot be decoded (damaged, or written by a broken build):
    what is kept is derived from the versions again, and never makes a store unreadable."""
    try:
        return decode()
    except MemoryError:
        raise  # not damage: reading around it would take more memory still
    except Exception as exc:  # msgpack, a missing key, a wrong type, Arrow: all damage
        warnings.warn(f"{source}: the {what} kept in the store cannot be read "
                      f"({type(exc).__name__}): read from the versions instead (a writable "
                      "store keeps it again)", DataWarning, stacklevel=2)
        return None


def _row_blocks(source: str, session: Session, progress_bar: bool | None,
                only: np.ndarray | None = None,
                ) -> tuple[list[derived.RowBlock], derived.RowBlock | None, bool]:
    """The stored row blocks that still fit (from version 1 on, of this derivation),
    and the block of the versions after them, derived now (None: there are none). With
    ``only`` (sorted version ids: the versions read), the stored blocks hold only their
    rows when no version is derived now (else whole: they are kept again, merged); and
    whether a stored block could not be decoded (its versions and those after it are
    derived now, and kept in its place)."""
    spec = derived.spec_fingerprint()
    kept: list[tuple[int, bytes]] = []
    covered = 0
    if session.has_table("row_blocks"):
        for first, last, data in session.execute(
                "SELECT first_version, last_version, data FROM row_blocks WHERE spec = ? "
                "ORDER BY first_version", (spec,)):
            if first != covered + 1:
                break
            kept.append((first, session.blob(data)))
            covered = last
    total = session.execute("SELECT count(*) FROM versions WHERE version_id > ?",
                            (covered,)).fetchone()[0]
    stored: list[derived.RowBlock] = []
    replacing = False
    filtered = only is not None and not total
    for first, data in kept:
        block = undamaged(source, "derived rows", functools.partial(
            derived.decode, data, only if filtered else None))
        if block is None:  # derived again from here on (and kept again, in its place)
            covered = first - 1
            total = session.execute("SELECT count(*) FROM versions WHERE version_id > ?",
                                    (covered,)).fetchone()[0]
            if filtered:  # the blocks before it whole: they are kept again, merged
                stored = [derived.decode(data) for _, data in kept[:len(stored)]]
            replacing = True
            break
        stored.append(block)
    del kept
    if not total:
        return stored, None, False
    parts = []
    cursor = session.execute("SELECT version_id, kind, parent_id, payload FROM versions "
                             "WHERE version_id > ? ORDER BY version_id", (covered,))
    with progress(total, "deriving stored versions", enabled=progress_bar) as bar:
        while chunk := cursor.fetchmany(_DERIVE_CHUNK):
            parts.append(derived.derive(source, chunk, covered + 1, chunk[-1][0]))
            covered = chunk[-1][0]
            bar.update(len(chunk))
    return stored, derived.concat(parts), replacing


def _keep_row_blocks(backend: Backend, stored: list[derived.RowBlock],
                     new: derived.RowBlock, *, replacing: bool = False) -> None:
    """Keep ``new`` for the next read, merging it with the last blocks while they are not
    much bigger (so that a store holds a few blocks, and each row is rewritten only a
    few times). Best effort: a read-only store, or a writer holding the lock, keeps
    nothing, and the next read derives these versions again."""
    if backend.read_only:
        return
    blocks = [b for b in stored if b.versions] + [new]
    merged = [blocks.pop()]
    while blocks and blocks[-1].versions <= 2 * sum(b.versions for b in merged):
        merged.insert(0, blocks.pop())
    block = derived.concat(merged)
    spec = derived.spec_fingerprint()
    data = derived.encode(block)  # before the write lock is taken

    def keep(session: Session) -> None:
        if not session.has_table("row_blocks"):
            return
        kept = session.execute("SELECT first_version, last_version FROM row_blocks "
                               "WHERE spec = ? ORDER BY first_version", (spec,)).fetchall()
        chain = [(b.first, b.last) for b in stored if b.versions]
        if kept[:len(chain)] != chain or (
                not replacing and any(f == new.first for f, _ in kept)):
            return  # another read kept them meanwhile (or, ``replacing`` a block that
            # could not be decoded, the blocks after the chain go)
        # (blocks of another derivation, and any beyond the chain, go)
        session.execute("DELETE FROM row_blocks WHERE spec != ? OR first_version >= ?",
                        (spec, block.first))
        session.execute("INSERT INTO row_blocks (first_version, last_version, spec, data) "
                        "VALUES (?, ?, ?, ?)", (block.first, block.last, spec, data))

    # a read does not wait long for a collector to keep what it can derive again
    backend.best_effort_write("cannot keep the derived rows", _KEEP_WAIT_MS, keep)


def stats(backend: Backend) -> dict[str, Any]:
    """:meth:`Store.stats <shadeanalytics.live.store.Store.stats>` of ``backend``."""
    with backend.snapshot() as session:
        outcomes = dict(session.execute("SELECT outcome, count(*) FROM polls "
                                        "GROUP BY outcome"))
        first, last = session.execute("SELECT min(observed_at), max(observed_at) FROM polls "
                                      "WHERE outcome = 'ok'").fetchone()
        per_kind = session.execute(
            "SELECT kind, count(*), count(DISTINCT resource_id), "
            "sum(CASE WHEN valid_to IS NULL THEN 1 ELSE 0 END) "
            "FROM versions GROUP BY kind").fetchall()
    size = backend.size_bytes()
    settings = backend.settings()
    return {
        "path": backend.name,
        "schema_version": SCHEMA_VERSION,
        "polls": sum(outcomes.values()),
        "polls_ok": outcomes.get("ok", 0),
        "polls_failed": outcomes.get("failed", 0),
        "first_poll_at": first,
        "last_poll_at": last,
        "versions": {kind: n for kind, n, _, _ in per_kind},
        "resources": {kind: n for kind, _, n, _ in per_kind},
        "current": {kind: n for kind, _, _, n in per_kind},
        "gone": {kind: total - cur for kind, _, total, cur in per_kind},
        "size_bytes": size,
        "settings": settings,
    }


def _poll_select(session: Session) -> str:
    """The columns of ``_POLL_COLUMNS`` to select (a store of schema 3 opened read-only has no
    ``refused``: NULL)."""
    has = session.has_column("polls", "refused")
    return ", ".join(c if c != "refused" or has else "NULL" for c in _POLL_COLUMNS)


@dataclass
class _Fixes:
    """What a stored version cannot say by itself: the rows at a window edge, where the cost
    estimate of that poll is not known, masked by (id, observed_at) once the tables are built."""

    unknown_cost: dict[str, set[tuple[str, pd.Timestamp]]] = field(
        default_factory=lambda: {kind: set() for kind in _COSTED})

    def apply(self, tables: Tables) -> Tables:
        unknown = self.unknown_cost
        unknown["instance"] |= unknown["instance_info"]
        out = {}
        for kind, name, key in (("cluster", "clusters", "cluster_id"),
                                ("instance", "instances", "instance_id"),
                                ("volume", "volumes", "volume_id")):
            frame = getattr(tables, name)
            if unknown[kind]:
                keys = list(zip(frame[key], frame["observed_at"], strict=True))
                frame = frame.assign(cost_estimate_usd=frame["cost_estimate_usd"].mask(
                    [k in unknown[kind] for k in keys]))
            out[name] = frame
        return replace(tables, **out)


def _records(source: str, rows: list[tuple[Any, ...]], ok: list[tuple[int, str, str]],
             lo: str, hi: str) -> tuple[list[Any], _Fixes]:
    """Each version at its first and last sighting inside [lo, hi], oldest first, as the
    records ``normalize_records`` walks (the last sighting with that poll's cost estimate)."""
    at_of = {poll_id: at for poll_id, at, _ in ok}
    # the successful polls of each endpoint inside the window: a version was seen by every
    # one of them between its first and its last sighting
    sightings: dict[str, list[int]] = {e: [] for e in ENDPOINTS}
    for poll_id, at, endpoints in ok:
        if lo <= at <= hi:
            for endpoint in endpoints.split(","):
                sightings[endpoint].append(poll_id)
    dated: list[tuple[str, int, tuple[Any, ...]]] = []
    fixes = _Fixes()
    for vid, kind, rid, parent, valid_from, last_seen, payload_text, last_cost in rows:
        ids = sightings[endpoint_of(kind, parent)]
        first = valid_from if at_of[valid_from] >= lo else _first_at_or_after(ids, valid_from)
        last = last_seen if at_of[last_seen] <= hi else _last_at_or_before(ids, last_seen)
        if first is None or last is None or first > last:
            continue
        payload = orjson.loads(payload_text)
        for poll_id in dict.fromkeys((first, last)):
            at = at_of[poll_id]
            value = payload
            if kind in _COSTED and poll_id == last_seen:
                value = {**payload, VOLATILE: last_cost}
            elif kind in _COSTED and poll_id != valid_from:
                fixes.unknown_cost[kind].add((rid, pd.Timestamp(at)))
            dated.append((at, vid, (vid, kind, parent, value, at)))
    dated.sort(key=lambda d: (d[0], d[1]))
    return list(derived.records(source, (d[2] for d in dated))), fixes


def _counted(items: list[Any], bar: Any) -> Iterator[Any]:
    for item in items:
        yield item
        bar.update(1)


def _first_at_or_after(ids: list[int], poll_id: int) -> int | None:
    i = bisect_left(ids, poll_id)
    return ids[i] if i < len(ids) else None


def _last_at_or_before(ids: list[int], poll_id: int) -> int | None:
    i = bisect_right(ids, poll_id)
    return ids[i - 1] if i else None
