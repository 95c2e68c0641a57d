"""Bill where the data is: the store keeps the bill of instances whose billing is over.

An instance gone from every list for good (each of its versions closed: no current one),
``deleted``, its billing ended by evidence, bills the same at every later instant: its
``Bill`` rows (``billing.settle``) are kept in the store (``settled_bills``) with the ids of
the other instances. :func:`read_settled` reads the versions of those others only (and of
every other kind of resource), looked up by id, and hands the kept rows to the one billing
rule (``billing.SettledTables``), which adds them back: the bill, and every view made from
it (the summary's), equals the whole history's, while the read and the bill cover the open
instances only.

Kept like the row blocks (``rows.py``): under a fingerprint of the code that billed them
(:func:`fingerprint`: the row derivation's and the billing modules' source), so a change of
the rule bills everything afresh; best effort (a read-only store, or a writer holding the
lock, keeps nothing). An instance seen again (a new version of it, e.g. it reappeared) is
dropped from the kept rows and billed afresh.

The *open rows* are kept beside the bill too (part -1 of ``settled_bills``, same
fingerprint): the derived rows (``rows.py``) of the versions a read of the other instances
took from the row blocks, and their ids. The next read takes its versions' rows from there
(a few MB: the open instances' and the clusters', not every version's) and derives the
versions recorded since itself; when one of its versions is not there (a settled instance
seen again: its old versions), or more than ``_OPEN_DERIVE_MAX`` are new, it reads the row
blocks, and keeps the open rows again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from ..analytics import settledsums
from ..analytics.billing import Settled, SettledTables, bill_fleet, settle
from ..analytics.settledparts import ReportTables, SettledParts, parts_of
from ..analytics.settledsums import SettledSums, SummedTables
from ..ingest.arrowrows import pyarrow_or_none
from ..ingest.resources import STORE_KINDS
from ..ingest.tables import CHILD_TABLES, Tables
from . import rows as derived
from . import storeread
from .storedb import Backend, Session

__all__ = [
    "BILLED_BY",
    "PARTS_BY",
    "SUMMED_BY",
    "fingerprint",
    "parts_fingerprint",
    "read_report",
    "read_settled",
    "read_summed",
    "sums_fingerprint",
]

#: the modules whose code decides a settled instance's bill: with the row derivation's
#: fingerprint, part of :func:`fingerprint`
BILLED_BY = (
    "shadeanalytics.analytics.billing",
    "shadeanalytics.analytics.intervals",
    "shadeanalytics.analytics.asof",
    "shadeanalytics.analytics.periods",
    "shadeanalytics.analytics.storage",
    "shadeanalytics.live.settled",
)
#: the modules whose code decides the summary's kept sums (part -2 of ``settled_bills``)
SUMMED_BY = (
    "shadeanalytics.analytics.costs",
    "shadeanalytics.analytics.quality",
    "shadeanalytics.analytics.settledsums",
)
#: the modules whose code decides the settled instances' kept report parts (their version
#: and timeline rows): with the kept bill's fingerprint, :func:`parts_fingerprint`
PARTS_BY = (
    "shadeanalytics.analytics.settledparts",
    "shadeanalytics.analytics.timeline",
)
_KINDS = ("instance", "instance_info")
#: the part of ``settled_bills`` that keeps the summary's sums of the kept bill
_SUMS_PART = -2
#: resource ids per query of the open instances' versions (well under any bound on parameters)
_CHUNK = 500
#: a kept bill in more parts than this is kept again in one
_PARTS = 16
#: how long a read waits for the write lock to keep the settled bill (else it keeps nothing)
_KEEP_WAIT_MS = 1_000
#: versions past the kept open rows a read derives itself (more: the row blocks are read)
_OPEN_DERIVE_MAX = 2_000
#: polls past the kept poll log a read fetches itself (more: it keeps the log again)
_POLLS_LATER_MAX = 2_000


@functools.cache
def fingerprint() -> str:
    """What a kept bill depends on: the derived rows' fingerprint and the billing code."""
    return derived.spec_fingerprint() + derived.code_digest(BILLED_BY)


def parts_fingerprint() -> str:
    """What the kept report parts depend on: the kept bill's and the code that derives them."""
    return "parts:" + fingerprint() + _parts_digest()


@functools.cache
def _parts_digest() -> str:
    return derived.code_digest(PARTS_BY)


def sums_fingerprint() -> str:
    """What the kept sums depend on: the kept bill's and the code of the views' sums."""
    return fingerprint() + _sums_digest()


@functools.cache
def _sums_digest() -> str:
    return derived.code_digest(SUMMED_BY)


class _NoSums(Exception):
    """A summed read cannot answer from the kept sums: the caller reads the kept bill
    (``damaged``: the kept sums cannot be decoded, and go)."""

    def __init__(self, damaged: bool = False) -> None:
        super().__init__()
        self.damaged = damaged


@dataclass(frozen=True)
class _Kept:
    """The kept bill, the resource ids of the other instances seen by the read that kept it
    (read again each time) and the newest version that read saw."""

    settled: Settled
    unsettled: frozenset[str]
    through: int
    #: how many parts it is kept in (each read that settles more adds one)
    parts: int = 1
    #: instances left it since it was kept (seen again): it is kept again whole
    changed: bool = False

    def without(self, resource_ids: set[str]) -> _Kept:
        """Without the instances of ``resource_ids`` (seen again): they join the others."""
        if not resource_ids:
            return self
        ids = {_instance_id(rid) for rid in resource_ids}
        settled = self.settled.without(ids)
        return replace(
            self,
            settled=settled,
            unsettled=self.unsettled | resource_ids,
            changed=self.changed or len(settled.instances) != len(self.settled.instances),
        )


def _encode(settled: Settled, unsettled: frozenset[str]) -> bytes:
    return msgspec.msgpack.encode(
        {
            "as_of": settled.as_of.value,
            "times": settled.times.astype(np.int64).tobytes(),
            "unsettled": sorted(unsettled),
            "frames": {
                name: derived.encode_frame(getattr(settled, name))
                for name in ("instances", "instance_tags", "intervals")
            },
        }
    )


def _decode(data: bytes) -> tuple[Settled, frozenset[str]]:
    raw = msgspec.msgpack.decode(data)
    frames = {name: derived.decode_frame(value) for name, value in raw["frames"].items()}
    settled = Settled(
        as_of=pd.Timestamp(raw["as_of"], tz="UTC"),
        times=np.frombuffer(raw["times"], dtype=np.int64).copy(),
        **frames,
    )
    return settled, frozenset(raw["unsettled"])


def _load(session: Session, source: str) -> _Kept | None:
    """The kept bill: its parts 0, 1, ... in turn (the last one lists the other instances
    and the newest version); None when there is none of this fingerprint, a gap, or a part
    that cannot be decoded (the store ``source``'s: a warning)."""
    rows = _bill_parts(session, data=True)
    if rows is None:
        return None
    decoded = [
        storeread.undamaged(
            source, "settled bill", functools.partial(_decode, session.blob(row[2]))
        )
        for row in rows
    ]
    parts = [part for part in decoded if part is not None]
    if len(parts) < len(rows):
        return None
    settled = parts[0][0].plus(*(more for more, _ in parts[1:]))
    return _Kept(settled, parts[-1][1], int(rows[-1][1]), len(rows))


def _bill_parts(session: Session, *, data: bool) -> list[Any] | None:
    """The kept bill's rows of this fingerprint, parts 0, 1, ... in turn: (part,
    through_version[, data]); None when there is none, or a gap."""
    if not _current_shape(session):
        return None
    rows = session.execute(
        f"SELECT part, through_version{', data' if data else ''} FROM settled_bills "
        "WHERE spec = ? AND part >= 0 ORDER BY part",
        (fingerprint(),),
    ).fetchall()
    if not rows or [row[0] for row in rows] != list(range(len(rows))):
        return None
    return rows


def _sums_row(session: Session, columns: str) -> Any:
    """The kept sums' row of this code (``columns`` of it), or None."""
    return session.execute(
        f"SELECT {columns} FROM settled_bills WHERE spec = ? AND part = ?",
        (sums_fingerprint(), _SUMS_PART),
    ).fetchone()


def _current_shape(session: Session) -> bool:
    """The store holds a ``settled_bills`` table of this shape (in parts)."""
    return session.has_table("settled_bills") and session.has_column("settled_bills", "part")


def _instance_id(resource_id: str) -> str:
    """The instance a stored resource id names (a repeated listing is ``<id>#2``)."""
    return resource_id.split("#", 1)[0]


def read_settled(
    backend: Backend, *, progress_bar: bool | None, min_versions: int
) -> SettledTables:
    """:meth:`Store.read_settled <shadeanalytics.live.store.Store.read_settled>`."""
    return _read(backend, progress_bar=progress_bar, min_versions=min_versions, summed=False)


def read_summed(
    backend: Backend, *, progress_bar: bool | None, min_versions: int
) -> SummedTables | None:
    """:meth:`Store.read_summed <shadeanalytics.live.store.Store.read_summed>`: None where
    the kept sums cannot answer (none kept, or an instance of them seen again)."""
    try:
        tables = _read(backend, progress_bar=progress_bar, min_versions=min_versions, summed=True)
    except _NoSums as no:
        if no.damaged and not backend.read_only:  # (the next read of the bill keeps them)

            def forget(session: Session) -> None:
                session.execute("DELETE FROM settled_bills WHERE spec = ? AND part = ?",
                                (sums_fingerprint(), _SUMS_PART))

            backend.best_effort_write("cannot drop the kept sums", _KEEP_WAIT_MS, forget)
        return None
    assert isinstance(tables, SummedTables)
    return tables


@dataclass(frozen=True)
class _Sums:
    """The kept sums: the summary's views of the kept bill (``settledsums``), its instances'
    ids, the bill without their rows (``settledsums.recent``), in how many parts it is kept."""

    sums: SettledSums
    #: the settled instances' ids, as kept (msgpack): decoded only to keep more
    ids: bytes
    light: Settled
    unsettled: frozenset[str]
    parts: int


def _encode_sums(
    settled: Settled, sums: SettledSums, unsettled: frozenset[str], parts: int
) -> bytes:
    return msgspec.msgpack.encode(
        {
            "sums": settledsums.encode(sums),
            "parts": parts,
            "ids": msgspec.msgpack.encode(sorted(settled.ids)),
            "light": _encode(settledsums.recent(settled), unsettled),
        }
    )


def _load_sums(session: Session, source: str) -> tuple[_Sums, int] | None:
    """The kept sums and the newest version of the kept bill they sum, when they sum it as
    it is kept (its parts and newest version); else None. Sums that cannot be decoded
    raise ``_NoSums(damaged=True)`` (with a warning)."""
    parts = _bill_parts(session, data=False)
    row = None if parts is None else _sums_row(session, "through_version, data")
    if parts is None or row is None or int(row[0]) != int(parts[-1][1]):
        return None

    def decode() -> _Sums | None:
        raw = msgspec.msgpack.decode(session.blob(row[1]))
        if raw["parts"] != len(parts):
            return None
        light, unsettled = _decode(raw["light"])
        return _Sums(settledsums.decode(raw["sums"]), raw["ids"], light, unsettled, len(parts))

    # (a 1-tuple: sums kept for other parts, None, differ from sums that cannot be decoded)
    kept = storeread.undamaged(source, "summary's sums", lambda: (decode(),))
    if kept is None:
        raise _NoSums(damaged=True)
    return None if kept[0] is None else (kept[0], int(row[0]))


def _seen_before(session: Session, resource_ids: list[str], through: int) -> bool:
    """Whether an instance of ``resource_ids`` (or of their instance ids) has a version up to
    ``through``: a kept sum's instance (not among the open ones) seen again."""
    names = sorted({*resource_ids, *map(_instance_id, resource_ids)})
    for at in range(0, len(names), _CHUNK):
        chunk = names[at : at + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        if session.execute(
            "SELECT 1 FROM versions WHERE kind IN ('instance', 'instance_info') "
            f"AND resource_id IN ({marks}) AND version_id <= ? LIMIT 1",
            (*chunk, through),
        ).fetchone():
            return True
    return False


def _read(
    backend: Backend,
    *,
    progress_bar: bool | None,
    min_versions: int,
    summed: bool,
    newly: dict[str, Any] | None = None,
) -> SettledTables:
    found: dict[str, Any] = {}

    def pick(session: Session, columns: str, until_poll: int, lo: str) -> list[Any] | None:
        # in the read's own snapshot: what is current, what is new since the kept bill
        found["through"] = session.execute(
            "SELECT coalesce(max(version_id), 0) FROM versions"
        ).fetchone()[0]
        current = session.execute(
            "SELECT kind, resource_id, version_id FROM versions WHERE valid_to IS NULL"
        ).fetchall()
        found["current"] = {_instance_id(rid) for kind, rid, _ in current if kind in _KINDS}
        #: the open versions of the other kinds (their sightings still move)
        moving = [vid for kind, _, vid in current if kind not in _KINDS]
        kept: _Kept | None
        if summed:
            loaded = _load_sums(session, backend.name)
            if loaded is None:
                raise _NoSums
            found["sums"] = sums = loaded[0]
            kept = _Kept(sums.light, sums.unsettled, loaded[1], sums.parts)
        else:
            kept = _load(session, backend.name)
            found["sums_kept"] = kept is not None and _sums_through(session) == kept.through
        if kept is None:  # every version is read: note every instance's resource ids
            found["ids"] = {
                rid
                for (rid,) in session.execute(
                    "SELECT DISTINCT resource_id FROM versions "
                    "WHERE kind IN ('instance', 'instance_info')"
                )
            }
            return None
        again = {
            rid
            for kind, rid in session.execute(
                "SELECT kind, resource_id FROM versions WHERE version_id > ?", (kept.through,)
            )
            if kind in _KINDS
        }
        if summed and _seen_before(
            session, sorted(rid for rid in again if rid not in kept.unsettled), kept.through
        ):
            raise _NoSums  # a settled instance seen again: its sums cannot be taken out
        found["kept"] = kept = kept.without(again)
        found["ids"] = ids = sorted(kept.unsettled | again)
        window = "valid_from <= ? AND last_seen_at >= ?"
        rows: list[Any] = _other_versions(session, found, columns, until_poll, lo, moving)
        # the versions of each open instance (by its resource ids: <id>#2 too), in chunks
        for at in range(0, len(ids), _CHUNK):
            chunk = ids[at : at + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows += session.execute(
                f"SELECT {columns} FROM versions WHERE kind IN ('instance', 'instance_info') "
                f"AND resource_id IN ({marks}) AND {window}",
                (*chunk, until_poll, lo),
            ).fetchall()
        rows.sort(key=itemgetter(0))
        return rows

    open_rows = storeread.OpenRows(functools.partial(_open_rows, backend.name, found))
    tables = storeread.read(
        backend,
        progress_bar=progress_bar,
        min_versions=min_versions,
        pick=pick,
        open_rows=open_rows,
        poll_log=functools.partial(_poll_log, backend.name, found),
    )
    kept: _Kept | None = found.get("kept")
    if open_rows.took is not None and open_rows.vids is not None and not backend.read_only:
        _keep_open_rows(
            backend,
            open_rows.took,
            open_rows.vids,
            int(found["through"]),
            found["polls"],
            found.get("versions"),
        )
    elif (
        found.get("open") is not None
        and (found["keep_polls"] or found.get("keep_versions"))
        and not backend.read_only
    ):
        _keep_polls(backend, found)
    sums: _Sums | None = found.get("sums")
    frames = {f.name: getattr(tables, f.name) for f in fields(Tables)}
    part: SettledTables = (
        SummedTables(**frames, settled=kept.settled if kept is not None else None, sums=sums.sums)
        if sums is not None
        else SettledTables(**frames, settled=kept.settled if kept is not None else None)
    )
    if backend.read_only or tables.warnings or tables.skipped or tables.instances.empty:
        return part
    ids = set(tables.instances["instance_id"].dropna().astype(str)) - found["current"]
    if kept is not None and sums is None:
        ids -= set(kept.settled.ids)
    if not ids and (kept is None or not kept.changed):
        if kept is not None and sums is None and not found["sums_kept"]:
            _keep_sums(backend, kept, tables)  # a bill kept without its sums
        return part
    billed = bill_fleet(part)
    more = settle(billed, ids)
    new = set(more.ids)
    if not new and (kept is None or not kept.changed):
        if kept is not None and sums is None and not found["sums_kept"]:
            _keep_sums(backend, kept, tables)
        return replace(part, billed=billed)
    through = int(found["through"])
    if sums is not None:  # the kept sums plus those of the newly settled, in one part more
        assert kept is not None
        if kept.parts >= _PARTS:
            raise _NoSums  # kept again in one part by a read of the kept bill
        done = {*msgspec.msgpack.decode(sums.ids), *more.ids}
        unsettled = frozenset(rid for rid in found["ids"] if _instance_id(rid) not in done)
        light = kept.settled.plus(settledsums.recent(more))
        total = sums.sums.plus(settledsums.settled_sums(more, tables.clusters))
        data = msgspec.msgpack.encode(
            {
                "sums": settledsums.encode(total),
                "parts": kept.parts + 1,
                "ids": msgspec.msgpack.encode(sorted(done)),
                "light": _encode(light, unsettled),
            }
        )
        _keep(backend, _encode(more, unsettled), through, after=kept, sums=data)
        assert isinstance(part, SummedTables)
        return _leave_out_rows(replace(part, settled=light, sums=total), new)
    settled = kept.settled.plus(more) if kept is not None else more
    done = set(settled.ids)
    unsettled = frozenset(rid for rid in found["ids"] if _instance_id(rid) not in done)
    if kept is not None and not kept.changed and kept.parts < _PARTS:
        parts = kept.parts + 1
        _keep(
            backend,
            _encode(more, unsettled),
            through,
            after=kept,  # one part more
            sums=_encode_sums(
                settled, settledsums.settled_sums(settled, tables.clusters), unsettled, parts
            ),
        )
    else:
        _keep(
            backend,
            _encode(settled, unsettled),
            through,
            after=None,
            sums=_encode_sums(
                settled, settledsums.settled_sums(settled, tables.clusters), unsettled, 1
            ),
        )
    if newly is not None:  # (their rows, for the report's parts of them)
        newly.update(tables=part, ids=new)
    return _leave_out_rows(replace(part, settled=settled, billed=billed), new)


def _sums_through(session: Session) -> int | None:
    """The newest version of the kept bill the kept sums sum, or None. (Called beside a
    loaded kept bill, whose parts are all there: their count needs no second look.)"""
    row = _sums_row(session, "through_version") if _current_shape(session) else None
    return None if row is None else int(row[0])


def _keep_sums(backend: Backend, kept: _Kept, tables: Tables) -> None:
    """Keep the sums of ``kept`` (a kept bill as it is kept) for a summed read. Best effort."""
    data = _encode_sums(
        kept.settled,
        settledsums.settled_sums(kept.settled, tables.clusters),
        kept.unsettled,
        kept.parts,
    )

    def keep(session: Session) -> None:
        if not _current_shape(session):
            return
        last = session.execute(
            "SELECT part, through_version FROM settled_bills WHERE spec = ? AND part >= 0 "
            "ORDER BY part DESC LIMIT 1",
            (fingerprint(),),
        ).fetchall()
        if [tuple(row) for row in last] != [(kept.parts - 1, kept.through)]:
            return  # another read kept its bill meanwhile
        session.execute("DELETE FROM settled_bills WHERE part = ?", (_SUMS_PART,))
        session.execute(
            "INSERT INTO settled_bills (spec, part, through_version, data) VALUES (?, ?, ?, ?)",
            (sums_fingerprint(), _SUMS_PART, kept.through, data),
        )

    backend.best_effort_write("cannot keep the settled sums", _KEEP_WAIT_MS, keep)


def _poll_log(source: str, found: dict[str, Any], session: Session) -> derived.PollLog:
    """The store's poll log: the one kept with the open rows (part -1 of ``settled_bills``,
    read here for :func:`_open_rows`) and the polls after it, or (none kept, or its last
    poll not the store's) every poll."""
    row = (
        session.execute(
            "SELECT through_version, data FROM settled_bills WHERE spec = ? AND part = -1",
            (fingerprint(),),
        ).fetchone()
        if _current_shape(session)
        else None
    )

    def decode(blob: Any) -> tuple[dict[str, Any], derived.PollLog | None]:
        data = msgspec.msgpack.decode(session.blob(blob))
        np.frombuffer(data["vids"], dtype=np.int64)  # (the rows' ids: there, and whole)
        kept = data.get("polls")
        return data, None if kept is None else derived.PollLog.decode(kept)

    opened = (None if row is None else
              storeread.undamaged(source, "open rows", functools.partial(decode, row[1])))
    found["open"] = None if row is None or opened is None else (int(row[0]), opened[0])
    log = None
    if opened is not None and opened[1] is not None:
        log = opened[1]
        # (the poll log only grows: its last poll, still there, vouches for the rest)
        last = (
            session.execute(
                "SELECT observed_at FROM polls WHERE poll_id = ?", (int(log.ids[-1]),)
            ).fetchone()
            if log.ids.size
            else None
        )
        if last is None or last[0] != log.select(log.ids == log.ids[-1]).text()[0]:
            log = None
    later = derived.PollLog.fetch(session, after=0 if log is None else int(log.ids[-1]))
    # (kept again with the open rows when none is kept, or many polls are later)
    found["keep_polls"] = log is None or later.ids.size > _POLLS_LATER_MAX
    found["polls"] = polls = later if log is None else log.plus(later)
    return polls


def _other_versions(
    session: Session,
    found: dict[str, Any],
    columns: str,
    until_poll: int,
    lo: str,
    moving: list[int],
) -> list[Any]:
    """The sighting ``columns`` of the versions of the window of every kind but instances:
    those closed by the read that kept the open rows from there (kept with them: a closed
    version never changes), the others fetched; every one fetched when none are kept (or
    the window has a start), noted in ``found`` to be kept."""
    other = tuple(kind for kind in STORE_KINDS if kind not in _KINDS)
    marks = ", ".join("?" * len(other))
    open_ = found.get("open")
    kept = open_[1].get("versions") if open_ is not None else None
    if kept is not None and not lo and kept["columns"] == columns:
        rows = [tuple(row) for row in kept["closed"] if row[4] <= until_poll]
        vids = np.frombuffer(kept["moving"], dtype=np.int64).tolist()
        for at in range(0, len(vids), _CHUNK):
            chunk = vids[at : at + _CHUNK]
            rows += session.execute(
                f"SELECT {columns} FROM versions WHERE version_id IN "
                f"({', '.join('?' * len(chunk))}) AND valid_from <= ?",
                (*chunk, until_poll),
            ).fetchall()
        rows += session.execute(
            f"SELECT {columns} FROM versions WHERE version_id > ? AND kind IN ({marks}) "
            "AND valid_from <= ?",
            (int(kept["through"]), *other, until_poll),
        ).fetchall()
        found["keep_versions"] = False
        return rows
    rows = session.execute(
        f"SELECT {columns} FROM versions WHERE kind IN ({marks}) "
        "AND valid_from <= ? AND last_seen_at >= ?",
        (*other, until_poll, lo),
    ).fetchall()
    total = session.execute(
        f"SELECT count(*) FROM versions WHERE kind IN ({marks})", other
    ).fetchone()[0]
    found["keep_versions"] = False
    if not lo and len(rows) == total:  # every one of them: kept with the open rows
        still = set(moving)
        found["keep_versions"] = True
        found["versions"] = {
            "columns": columns,
            "through": int(found["through"]),
            "closed": [row for row in rows if row[0] not in still],
            "moving": np.asarray(moving, dtype=np.int64).tobytes(),
        }
    return rows


def _keep_polls(backend: Backend, found: dict[str, Any]) -> None:
    """Keep the read's poll log, and the closed versions of the other kinds, with the kept
    open rows it read (unchanged). Best effort."""
    spec = fingerprint()
    through, raw = found["open"]
    polls = found["polls"].encode()
    if polls is None:
        return
    data = msgspec.msgpack.encode(
        {**raw, "polls": polls, "versions": found.get("versions", raw.get("versions"))}
    )

    def keep(session: Session) -> None:
        if not _current_shape(session):
            return
        session.execute(
            "UPDATE settled_bills SET data = ? WHERE spec = ? AND part = -1 "
            "AND through_version = ?",
            (data, spec, through),
        )

    backend.best_effort_write("cannot keep the poll log", _KEEP_WAIT_MS, keep)


def _open_rows(
    source: str, found: dict[str, Any], session: Session, vids: np.ndarray
) -> derived.RowBlock | None:
    """The derived rows of the versions ``vids`` (ascending) from the kept open rows (part
    -1 of ``settled_bills``: the rows of the versions a read without the settled instances
    took; read by :func:`_poll_log`), the versions after those derived now; None when some
    version is not in them (e.g. a settled instance seen again: its old versions) or too
    many are new."""
    if found.get("open") is None:
        return None
    through, raw = found["open"]
    kept = np.frombuffer(raw["vids"], dtype=np.int64)
    old, later = vids[vids <= through], vids[vids > through]
    # (both ascending and distinct: each of ``old`` found in ``kept`` by bisection)
    at = np.minimum(np.searchsorted(kept, old), max(kept.size - 1, 0))
    if later.size > _OPEN_DERIVE_MAX or (old.size and not (kept[at] == old).all()):
        return None
    # the kept rows are those of ``kept``: all of them when every one is read (no filter)
    block = storeread.undamaged(source, "open rows", functools.partial(
        derived.decode, raw["block"], None if old.size == kept.size else old))
    if block is None:
        return None
    if later.size:
        wanted = set(later.tolist())
        fresh = [
            row
            for row in session.execute(
                "SELECT version_id, kind, parent_id, payload FROM versions "
                "WHERE version_id > ? ORDER BY version_id",
                (through,),
            )
            if row[0] in wanted
        ]
        block = derived.concat([block, derived.derive(source, fresh, through + 1, int(later[-1]))])
    return block


def _keep_open_rows(
    backend: Backend,
    block: derived.RowBlock,
    vids: np.ndarray,
    through: int,
    polls: derived.PollLog,
    versions: dict[str, Any] | None,
) -> None:
    """Keep the rows of the versions ``vids`` (a read's, through version ``through``) as
    the open rows of the kept bill, with the read's poll log and closed versions of the
    other kinds (``_other_versions``), for the next read. Best effort."""
    spec = fingerprint()
    data = msgspec.msgpack.encode(
        {
            "vids": vids.astype(np.int64).tobytes(),
            "block": derived.encode(block),
            "polls": polls.encode() if polls.ids.size else None,
            "versions": versions,
        }
    )

    def keep(session: Session) -> None:
        if not _current_shape(session):
            return
        session.execute("DELETE FROM settled_bills WHERE spec = ? AND part = -1", (spec,))
        session.execute(
            "INSERT INTO settled_bills (spec, part, through_version, data) VALUES (?, -1, ?, ?)",
            (spec, through, data),
        )

    backend.best_effort_write("cannot keep the open rows", _KEEP_WAIT_MS, keep)


def _keep(
    backend: Backend, data: bytes, through: int, *, after: _Kept | None, sums: bytes | None = None
) -> None:
    """Keep ``data`` (a part of the bill through version ``through``) for the next read:
    after the parts of ``after``, else in place of every part; with ``sums``, the kept
    bill's sums in place of the last (``_encode_sums``). Best effort."""
    spec = fingerprint()

    def keep(session: Session) -> None:
        if session.has_table("settled_bills") and not _current_shape(session):
            session.execute("DROP TABLE settled_bills")  # kept by an earlier build: redone
        session.ensure_table("settled_bills")
        kept = session.execute(
            "SELECT part, through_version FROM settled_bills WHERE spec = ? AND part >= 0 "
            "ORDER BY part",
            (spec,),
        ).fetchall()
        if after is not None:
            if [tuple(row) for row in kept[-1:]] != [(after.parts - 1, after.through)]:
                return  # another read kept its bill meanwhile
            part = after.parts
        else:
            if kept and int(kept[-1][1]) > through:
                return  # a read of newer versions kept its bill meanwhile
            # (bills of another fingerprint go too: the code that billed them changed; the
            # report parts of this code stay: they are of instances, checked when read)
            session.execute("DELETE FROM settled_bills WHERE spec <> ?", (parts_fingerprint(),))
            part = 0
        session.execute(
            "INSERT INTO settled_bills (spec, part, through_version, data) VALUES (?, ?, ?, ?)",
            (spec, part, through, data),
        )
        session.execute("DELETE FROM settled_bills WHERE part = ?", (_SUMS_PART,))
        if sums is not None:
            session.execute(
                "INSERT INTO settled_bills (spec, part, through_version, data) VALUES (?, ?, ?, ?)",
                (sums_fingerprint(), _SUMS_PART, through, sums),
            )

    backend.best_effort_write("cannot keep the settled bill", _KEEP_WAIT_MS, keep)


def _leave_out_rows(tables: SettledTables, ids: set[str]) -> SettledTables:
    """``tables`` without the rows of the instances ``ids`` (now in ``tables.settled``)."""
    if not ids:
        return tables
    changes = {}
    for name in ("instances", *CHILD_TABLES):
        frame = getattr(tables, name)
        mine = frame["instance_id"].astype(str).isin(list(ids)).to_numpy(dtype=bool)
        if mine.any():
            changes[name] = frame[~mine].reset_index(drop=True)
    return replace(tables, **changes)


def read_report(backend: Backend, *, progress_bar: bool | None, min_versions: int) -> Tables:
    """:meth:`Store.read_report <shadeanalytics.live.store.Store.read_report>`: the open
    rows and the kept bill (:func:`read_settled`) with the kept report parts of the settled
    instances (``analytics.settledparts``), kept here beside the kept bill (rows of
    ``settled_bills`` of :func:`parts_fingerprint`, parts 0, 1, ...: each lists its instances
    and their newest ``observed_at``; a newer part's instance wins). The parts of instances
    settled by this read are made from its rows and kept in one part more; a settled
    instance of no kept part (first read of this code, or of a read-only store before)
    makes this a whole read (:func:`storeread.read`, returned as it is), which keeps them
    all. Without pyarrow, or nothing settled, the read is that of :func:`read_settled`."""
    if pyarrow_or_none() is None:
        return storeread.read(backend, progress_bar=progress_bar, min_versions=min_versions)
    newly: dict[str, Any] = {}
    tables = _read(
        backend, progress_bar=progress_bar, min_versions=min_versions, summed=False, newly=newly
    )
    settled = tables.settled
    if settled is None or settled.instances.empty:
        return tables  # every row was read
    # each settled instance's newest sighting, which its parts must be of
    want = pd.Index(settled.instances["instance_id"].astype(str).to_numpy(dtype=object))
    want_last = settled.instances["observed_at"].to_numpy(dtype="datetime64[us]").view(np.int64)
    with backend.snapshot() as session:
        rows = (
            session.execute(
                "SELECT part, data FROM settled_bills WHERE spec = ? AND part >= 0 ORDER BY part",
                (parts_fingerprint(),),
            ).fetchall()
            if _current_shape(session)
            else []
        )
        decoded = [
            storeread.undamaged(
                backend.name, "report parts", functools.partial(_decode_parts, session.blob(data))
            )
            for _, data in rows
        ]
    kept = [part for part in decoded if part is not None]
    pieces: list[SettledParts] = []
    have = np.zeros(len(want), dtype=bool)
    stale = len(kept) < len(rows)  # a part that cannot be decoded: all kept again
    for part in reversed(kept):  # the newest part of an instance wins
        at = want.get_indexer(part.ids)
        mine = at >= 0
        mine[mine] = (want_last[at[mine]] == part.last[mine]) & ~have[at[mine]]
        stale |= not mine.all()
        if mine.any():
            pieces.append(part.only(mine))
            have[at[mine]] = True
    missing = set(want[~have])
    fresh: SettledParts | None = None
    if missing and newly and missing <= set(newly["ids"]):
        fresh = parts_of(newly["tables"], missing, settled.as_of)
        if fresh.instances == missing and _of(fresh, want, want_last):
            pieces.append(fresh)
            missing = set()
    if missing:  # parts of instances no read kept: the whole history, which keeps them all
        whole = storeread.read(backend, progress_bar=progress_bar, min_versions=min_versions)
        if not backend.read_only and not whole.warnings and not whole.skipped:
            every = parts_of(whole, set(want), settled.as_of)
            if every.instances == set(want) and _of(every, want, want_last):
                _keep_parts(backend, every, len(rows), whole=True)
        return whole
    parts = pieces[0].plus(*pieces[1:]) if len(pieces) > 1 else pieces[0]
    if not backend.read_only:
        if stale or (fresh is not None and len(rows) >= _PARTS):
            _keep_parts(backend, parts, len(rows), whole=True)  # kept again in one part
        elif fresh is not None:
            _keep_parts(backend, fresh, len(rows), whole=False)
    frames = {f.name: getattr(tables, f.name) for f in fields(SettledTables)}
    return ReportTables(**frames, parts=parts)


def _of(parts: SettledParts, want: pd.Index, last: np.ndarray) -> bool:
    """Whether ``parts`` are of the newest sighting (``last``) of their instances (``want``)."""
    at = want.get_indexer(parts.ids)
    return bool((at >= 0).all() and (last[at] == parts.last).all())


def _keep_parts(backend: Backend, parts: SettledParts, count: int, *, whole: bool) -> None:
    """Keep ``parts``: in place of every kept part (``whole``), else after the ``count``
    kept ones. Best effort."""
    spec = parts_fingerprint()
    data = _encode_parts(parts)

    def keep(session: Session) -> None:
        if session.has_table("settled_bills") and not _current_shape(session):
            return
        session.ensure_table("settled_bills")
        now = session.execute(
            "SELECT count(*) FROM settled_bills WHERE spec = ? AND part >= 0", (spec,)
        ).fetchone()[0]
        if int(now) != count:
            return  # another read kept parts meanwhile
        if whole:  # (the parts of other code go too: that code changed)
            session.execute("DELETE FROM settled_bills WHERE spec LIKE 'parts:%'")
        session.execute(
            "INSERT INTO settled_bills (spec, part, through_version, data) VALUES (?, ?, ?, ?)",
            (spec, 0 if whole else count, 0, data),
        )

    backend.best_effort_write(
        "cannot keep the settled instances' report parts", _KEEP_WAIT_MS, keep
    )


def _encode_parts(parts: SettledParts) -> bytes:
    """``parts`` as kept: msgpack of their Arrow IPC streams (zstd)."""
    pa = pyarrow_or_none()
    ids = pa.table(
        {"id": pa.array(parts.ids.tolist(), pa.string()), "last": parts.last, "rows": parts.rows}
    )
    return msgspec.msgpack.encode(
        {
            "versions": _ipc(parts.versions_of()),
            "timeline": _ipc(pa.Table.from_pandas(parts.timeline_of(), preserve_index=False)),
            "ids": _ipc(ids),
        }
    )


def _decode_parts(data: bytes) -> SettledParts:
    """The parts of :func:`_encode_parts`'s bytes: their instances now, their rows when
    asked for (decoded then)."""
    raw = msgspec.msgpack.decode(data)
    ids = _from_ipc(raw["ids"])
    versions, timeline = raw["versions"], raw["timeline"]
    for stream in (versions, timeline):  # their schemas now: a damaged part is not used
        pyarrow_or_none().ipc.open_stream(stream)  # (reads the stream's schema)
    return SettledParts(
        functools.partial(_from_ipc, versions),
        lambda: _from_ipc(timeline).to_pandas(),
        ids["id"].to_numpy(zero_copy_only=False).astype(object),
        ids["last"].to_numpy(),
        ids["rows"].to_numpy(),
    )


def _ipc(table: Any) -> bytes:
    pa = pyarrow_or_none()
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _from_ipc(data: bytes) -> Any:
    return pyarrow_or_none().ipc.open_stream(data).read_all()
