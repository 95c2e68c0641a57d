"""Moving a history store between backends (``shadeanalytics store copy SRC DST``): every
poll, version, failed request, quarantined record, poll warning and open alert episode, with
their ids, resumable and verified.

A copy is one transaction on the destination, from one snapshot of the source: it copies all
or nothing. The destination must hold a beginning of the source's history (nothing, or the
same polls up to its newest: an earlier copy); a re-run copies only what is new since (polls
and versions past the destination's newest, and the versions still open there, whose
``valid_to``/``last_seen_*`` the source has moved on), so it never duplicates. Then both are
counted and checksummed (sha256 over every poll and version row, in id order) and must agree.
The derived rows (``row_blocks``) are not copied: the first read derives them again.
The database is reached through :class:`~shadeanalytics.live.storedb.Backend` sessions only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import StoreError
from .storedb import POLL_WARNING_KEY, Backend, Session

__all__ = ["CopyResult", "copy", "verify"]

_POLLS = (
    "poll_id",
    "started_at",
    "finished_at",
    "observed_at",
    "endpoints",
    "outcome",
    "clusters",
    "instances",
    "instance_types",
    "added",
    "changed",
    "gone",
    "digest",
    "error",
    "volumes",
    "details",
    "failures",
    "refused",
)
_VERSIONS = (
    "version_id",
    "kind",
    "resource_id",
    "parent_id",
    "valid_from",
    "valid_to",
    "gone",
    "status",
    "payload",
    "payload_hash",
    "last_seen_poll",
    "last_seen_at",
    "last_cost_estimate",
)
#: the columns of a version a later poll may change (the rest never changes)
_MOVING = ("valid_to", "gone", "last_seen_poll", "last_seen_at", "last_cost_estimate")
_FAILURES = ("poll_id", "endpoint", "resource_id", "error")
_QUARANTINE = ("poll_id", "endpoint", "kind", "resource_id", "path", "reason")
_EPISODES = ("key", "rule", "opened_at", "last_seen_at")
#: rows a statement writes at a time
_BATCH = 5_000


@dataclass(frozen=True)
class CopyResult:
    """What a copy did, and the verification of both stores."""

    #: rows copied by this run, by table
    copied: dict[str, int]
    #: rows each store holds after it, by table (equal: verified)
    counts: dict[str, int]
    #: sha256 of every poll and version row, in id order (equal in both stores)
    checksum: str


def _cost(session: Session, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*row[:-1], session.cost(row[-1]))


def _select(columns: tuple[str, ...], table: str, where: str = "", order: str = "") -> str:
    return f"SELECT {', '.join(columns)} FROM {table} {where} {order}".strip()


def copy(src: Backend, dst: Backend) -> CopyResult:
    """Copy what ``src`` holds and ``dst`` does not yet, in one transaction on ``dst``; then
    :func:`verify` both. ``StoreError`` when ``dst`` holds polls ``src`` does not."""
    copied: dict[str, int] = {}
    with (
        src.errors("cannot read the source"),
        src.snapshot() as source,
        dst.errors("cannot copy into the destination"),
        dst.write() as target,
    ):
        mine = target.execute(
            "SELECT poll_id, observed_at, outcome, digest FROM polls ORDER BY poll_id DESC"
        ).fetchone()
        start = 0
        if mine is not None:
            theirs = source.execute(
                "SELECT poll_id, observed_at, outcome, digest FROM polls WHERE poll_id = ?",
                (mine[0],),
            ).fetchone()
            if theirs is None or tuple(theirs) != tuple(mine):
                raise StoreError(
                    f"{dst.name}: holds poll {mine[0]}, which {src.name} does "
                    "not: it is not a copy of that store (copy into an empty "
                    "store)"
                )
            start = int(mine[0])
        last_version = target.execute("SELECT max(version_id) FROM versions").fetchone()[0] or 0
        held = {
            r[-1]: tuple(r)
            for r in target.execute(
                _select((*_MOVING, "version_id"), "versions", "WHERE valid_to IS NULL")
            )
        }
        open_ids = sorted(held)

        def put(table: str, columns: tuple[str, ...], rows: Any, cost: bool = False) -> None:
            n = 0
            while chunk := rows.fetchmany(_BATCH):
                values = [_cost(target, tuple(r)) if cost else tuple(r) for r in chunk]
                target.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                    f"({', '.join('?' for _ in columns)})",
                    values,
                )
                n += len(values)
            copied[table] = n

        # polls first (what versions refer to), then the versions open here moved on (closed
        # before their successors open: one current version per resource), then new versions
        put(
            "polls",
            _POLLS,
            source.execute(
                _select(_POLLS, "polls", "WHERE poll_id > ?", "ORDER BY poll_id"), (start,)
            ),
        )
        moved = 0
        for at in range(0, len(open_ids), _BATCH):
            ids = open_ids[at : at + _BATCH]
            rows = [
                tuple(r)
                for r in source.execute(
                    _select(
                        (*_MOVING, "version_id"),
                        "versions",
                        f"WHERE version_id IN ({', '.join('?' * len(ids))})",
                    ),
                    ids,
                )
            ]
            rows = [r for r in rows if r != held[r[-1]]]
            target.executemany(
                f"UPDATE versions SET {', '.join(f'{c} = ?' for c in _MOVING)} "
                "WHERE version_id = ?",
                [(*r[:4], target.cost(r[4]), r[5]) for r in rows],
            )
            moved += len(rows)
        copied["versions updated"] = moved
        put(
            "versions",
            _VERSIONS,
            source.execute(
                _select(_VERSIONS, "versions", "WHERE version_id > ?", "ORDER BY version_id"),
                (last_version,),
            ),
            cost=True,
        )
        order = source.insertion_order
        put(
            "request_failures",
            _FAILURES,
            source.execute(
                _select(
                    _FAILURES, "request_failures", "WHERE poll_id > ?", f"ORDER BY poll_id, {order}"
                ),
                (start,),
            ),
        )
        if source.has_table("quarantine"):
            put(
                "quarantine",
                _QUARANTINE,
                source.execute(
                    _select(
                        _QUARANTINE, "quarantine", "WHERE poll_id > ?", f"ORDER BY poll_id, {order}"
                    ),
                    (start,),
                ),
            )
        warnings = source.execute(
            "SELECT key, value FROM meta WHERE key LIKE ?", (f"{POLL_WARNING_KEY}%",)
        ).fetchall()
        target.upsert("meta", ("key", "value"), [tuple(r) for r in warnings])
        copied["poll warnings"] = len(warnings)
        if source.has_table("alert_episodes"):
            episodes = [tuple(r) for r in source.execute(_select(_EPISODES, "alert_episodes"))]
            target.ensure_table("alert_episodes")
            target.execute("DELETE FROM alert_episodes")
            target.executemany(
                f"INSERT INTO alert_episodes ({', '.join(_EPISODES)}) VALUES (?, ?, ?, ?)", episodes
            )
            copied["alert episodes"] = len(episodes)
        target.sync_ids()
    counts, checksum = verify(src, dst)
    return CopyResult(copied, counts, checksum)


def _summary(backend: Backend) -> tuple[dict[str, int], str]:
    """Rows by table, and the sha256 of every poll and version row in id order."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    with backend.errors("cannot verify"), backend.snapshot() as session:
        for table, columns, key in (
            ("polls", _POLLS, "poll_id"),
            ("versions", _VERSIONS, "version_id"),
        ):
            n = 0
            cursor = session.execute(_select(columns, table, order=f"ORDER BY {key}"))
            while chunk := cursor.fetchmany(_BATCH):
                for row in chunk:
                    digest.update(orjson.dumps(list(row)))
                    digest.update(b"\n")
                n += len(chunk)
            counts[table] = n
        for table in ("request_failures", "quarantine"):
            counts[table] = (
                session.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if session.has_table(table)
                else 0
            )
    return counts, digest.hexdigest()


def verify(src: Backend, dst: Backend) -> tuple[dict[str, int], str]:
    """The counts and checksum of ``dst``, once they equal ``src``'s; else ``StoreError``."""
    theirs, source_sum = _summary(src)
    mine, checksum = _summary(dst)
    if (mine, checksum) != (theirs, source_sum):
        differ = ", ".join(f"{t} {theirs[t]} vs {mine[t]}" for t in theirs if theirs[t] != mine[t])
        raise StoreError(
            f"{dst.name}: the copy differs from {src.name} ("
            f"{differ or 'same counts, different checksum'})"
        )
    return mine, checksum
