"""The history store: one SQLite file that keeps every version of every resource (SCD type 2).

The Shadeform API forgets deleted resources; the store remembers them. Each collection run is a
row of ``polls``; each *version* of a cluster, instance, instance type, instance detail
(``/instances/{id}/info``), volume, volume type, SSH key, template or cluster type is a row of
``versions``, valid from the first poll that saw it to the first poll that saw it change or
vanish. ``cost_estimate`` changes on every poll, so it is kept out of the version hash and
updated in place on the current version (``last_seen_at``, ``last_cost_estimate``).

Rules that keep the history honest:

- A poll is all or nothing. :meth:`Store.record_poll` writes a successful poll in one
  transaction; a failed run is recorded with :meth:`Store.record_failed_poll`, writes no
  versions and marks nothing gone, so an outage is never read as "everything disappeared".
- A resource is marked gone only by a successful poll of the endpoint that lists it (clusters
  and their member instances by ``/clusters``, standalone instances by ``/instances``, types
  by ``/instances/types``, volumes by ``/volumes``...). An instance's details are not listed
  by any endpoint: their version is closed when the instance is marked gone.
- A request of a poll that failed without failing the poll (an instance's details, an
  account endpoint polled by the way) is a row of ``request_failures`` of that poll.
- Successful polls are recorded in time order; the same poll recorded twice (same
  ``observed_at``, same content) adds nothing.
- Payloads are redacted (:func:`shadeanalytics.ingest.normalize.redact`) before they are hashed or
  written: no secret ever reaches the file or its write-ahead log.
- One bad record never silences the store: every new payload goes through the readers' own
  walker and converter (``rows.refused``) before the poll commits. One the record spec refuses
  is never stored: the poll's ``quarantine`` rows keep its endpoint, id, JSON path and reason
  (never the value), and its resource keeps its current version, seen by the poll (neither
  changed nor gone; a new resource is not stored). A stored record that cannot load all the
  same (kept before this rule, or refused by a newer spec) is set aside by every read with a
  ``DataWarning``.
- Versions compare content, not formatting: the hash is of a canonical form (unordered lists
  sorted, integral floats as ints), so the same content in another order is no new version.
- Every listing is kept, a repeat as ``<id>#2``: the store reads back the rows the same
  responses give when loaded from files (an instance in two clusters is two rows there too).

:meth:`Store.read` gives the history back as the same :class:`~shadeanalytics.ingest.tables.Tables`
the file loaders build, so every analytics helper works on it unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from .._common import progress
from ..errors import DataWarning, SchemaError, StoreError, printable
from ..ingest.load import gc_paused
from ..ingest.normalize import Findings, normalize_records, redact, type_name
from ..ingest.schema import valid_id
from ..ingest.tables import Tables, build_tables
from . import rows as derived
from .endpoints import ACCOUNT_LISTS, ENDPOINTS
from .endpoints import endpoint_of as _endpoint_of

__all__ = ["ACCOUNT_LISTS", "ENDPOINTS", "SCHEMA_VERSION", "Store", "prepare_account_list"]

SCHEMA_VERSION = 4
#: ``PRAGMA application_id`` of a store ("SHAD"): tells a store from any other SQLite file.
APPLICATION_ID = 0x53484144
_KINDS = ("cluster", "instance", "instance_type", "instance_info", "volume", "volume_type",
          "ssh_key", "template", "featured_template", "cluster_type")
#: A writer waits this long for another writer; readers in WAL mode almost never wait.
BUSY_TIMEOUT_MS = 10_000

_VERSIONS = """CREATE TABLE {name} (
    version_id         INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ({kinds})),
    resource_id        TEXT NOT NULL,
    parent_id          TEXT,           -- the cluster of a member instance
    valid_from         INTEGER NOT NULL REFERENCES polls (poll_id),
    valid_to           INTEGER REFERENCES polls (poll_id),  -- NULL while current
    gone               INTEGER NOT NULL DEFAULT 0 CHECK (gone IN (0, 1)),
    status             TEXT,
    payload            TEXT NOT NULL,  -- redacted JSON as first seen (cost_estimate included)
    payload_hash       TEXT NOT NULL,  -- sha256 of the canonical payload minus cost_estimate
    last_seen_poll     INTEGER NOT NULL REFERENCES polls (poll_id),
    last_seen_at       TEXT NOT NULL,
    last_cost_estimate                 -- no declared type: kept exactly as the API sent it
)"""
_VERSION_INDEXES = (
    "CREATE UNIQUE INDEX versions_current ON versions (kind, resource_id) WHERE valid_to IS NULL",
    "CREATE INDEX versions_history ON versions (kind, resource_id, valid_from)",
    "CREATE INDEX versions_valid_from ON versions (valid_from)",
)
#: what schema 2 added to polls: account counts, and the requests that failed in an ok poll
_POLLS_V2 = (
    "ALTER TABLE polls ADD COLUMN volumes INTEGER",   # volumes seen
    "ALTER TABLE polls ADD COLUMN details INTEGER",   # instance details (info) fetched
    "ALTER TABLE polls ADD COLUMN failures INTEGER",  # its rows of request_failures
    """CREATE TABLE request_failures (
    poll_id     INTEGER NOT NULL REFERENCES polls (poll_id),
    endpoint    TEXT NOT NULL,  -- e.g. /instances/{id}/info or /sshkeys
    resource_id TEXT,           -- the instance of an info request
    error       TEXT NOT NULL   -- our own exception text, never a response body
)""",
    "CREATE INDEX request_failures_poll ON request_failures (poll_id)",
)
_ALL_KINDS = ", ".join(f"'{k}'" for k in _KINDS)
_V2_TABLES = (_VERSIONS.format(name="versions", kinds=_ALL_KINDS), *_VERSION_INDEXES,
              *_POLLS_V2)
#: schema 1 -> 2: versions takes the new kinds (SQLite cannot alter a CHECK: the table is
#: copied), polls its new columns
_MIGRATE_V1 = (
    _VERSIONS.format(name="versions_v2", kinds=_ALL_KINDS),
    "INSERT INTO versions_v2 SELECT * FROM versions",
    "DROP TABLE versions",
    "ALTER TABLE versions_v2 RENAME TO versions",
    *_VERSION_INDEXES,
    *_POLLS_V2,
)

#: schema 3: the rows each version loads as, derived once (``rows.py``), in blocks of versions
_ROW_BLOCKS = """CREATE TABLE row_blocks (
    first_version INTEGER PRIMARY KEY,  -- the versions first_version .. last_version
    last_version  INTEGER NOT NULL,
    spec          TEXT NOT NULL,        -- rows.spec_fingerprint(): what the rows derive from
    data          BLOB NOT NULL         -- their typed rows, column by column (rows.encode)
)"""
#: schema 4: the records a poll refused (quarantined at the door: never stored as versions)
_QUARANTINE = (
    "ALTER TABLE polls ADD COLUMN refused INTEGER",  # its rows of quarantine
    """CREATE TABLE quarantine (
    poll_id     INTEGER NOT NULL REFERENCES polls (poll_id),
    endpoint    TEXT NOT NULL,  -- e.g. /instances, or /instances/{id}/info
    kind        TEXT NOT NULL,  -- the version kind it would have been
    resource_id TEXT NOT NULL,
    path        TEXT NOT NULL,  -- the JSON path of the refused value in the response
    reason      TEXT NOT NULL   -- the record spec's words, never the value
)""",
    "CREATE INDEX quarantine_poll ON quarantine (poll_id)",
)
#: how many versions a read derives between two updates of its progress bar
_DERIVE_CHUNK = 5_000
#: how long a read waits for the write lock to keep the rows it derived (else it keeps nothing)
_KEEP_WAIT_MS = 1_000
#: a read of fewer versions walks them again instead (quicker than taking row blocks: their
#: cost is mostly per table, ~50 ms, against ~60 µs per version walked), and keeps nothing
_DERIVED_MIN_VERSIONS = 1_000

_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE polls (
    poll_id        INTEGER PRIMARY KEY,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    observed_at    TEXT NOT NULL,  -- every row of this poll is dated with it (UTC, RFC 3339)
    endpoints      TEXT NOT NULL,  -- comma list of the endpoints polled
    outcome        TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    clusters       INTEGER,        -- resources seen (NULL: endpoint not polled, or failed)
    instances      INTEGER,
    instance_types INTEGER,
    added          INTEGER,        -- versions opened for resources not current before
    changed        INTEGER,        -- versions closed and reopened because the payload changed
    gone           INTEGER,        -- versions closed because the resource vanished
                                   -- (all three count every kind, instance details included)
    digest         TEXT,           -- sha256 of the poll's content: re-ingestion is a no-op
    error          TEXT,           -- our own exception text, never a response body
    CHECK ((outcome = 'ok') = (error IS NULL))
)""",
    "CREATE UNIQUE INDEX polls_ok_observed_at ON polls (observed_at) WHERE outcome = 'ok'",
    *_V2_TABLES,
    _ROW_BLOCKS,
    *_QUARANTINE,
)

_VOLATILE = "cost_estimate"
#: where ``rows.records`` places a record: stripped from the path of a refusal
_RECORD_PREFIX = re.compile(r"^\$(?:\.response\.[a-z_]+\[0\])?")
_WARNING_KEY = "poll_warning:"
_SCALARS = (str, int, float, type(None))
_LIST_KEYS = {"/clusters": "clusters", "/instances": "instances",
              "/instances/types": "instance_types"}
_POLL_COLUMNS = ("poll_id", "started_at", "finished_at", "observed_at", "endpoints", "outcome",
                 "clusters", "instances", "instance_types", "added", "changed", "gone", "error",
                 "volumes", "details", "failures", "refused")
_POLL_TIMES = ("started_at", "finished_at", "observed_at")
_POLL_TEXTS = ("endpoints", "outcome", "error")


def utc_text(value: datetime | str) -> str:
    """``value`` as fixed-width UTC RFC 3339 text (``2026-03-02T10:00:00.000000Z``).

    Fixed width makes text order time order, so SQLite compares instants as strings.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an RFC 3339 timestamp: {value!r}") from None
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class _Seen:
    """One resource as a successful poll saw it, ready to be written."""

    kind: str
    resource_id: str
    parent_id: str | None
    status: str | None
    payload: str
    payload_hash: str
    cost_estimate: Any
    repeat: bool = False  # a second listing of the same id (see _prepare)
    endpoint: str = ""  # where it was listed, and its JSON path there (for a refusal)
    path: str = "$"


#: Lists whose order the API gives no meaning to: sorted before hashing, so that the same
#: members, tags or regions in another order are not a new version.
_UNORDERED = frozenset({"instances", "tags", "availability", "port_mappings", "volume_mounts",
                        "envs"})
_INT64 = (-(2**63), 2**63 - 1)


def _canonical(value: Any, key: str | None = None) -> Any:
    """``value`` with formatting taken out: integral floats as ints (``1432.0`` is ``1432``),
    unordered lists sorted, so that equal content hashes equal."""
    if isinstance(value, dict):
        return {k: _canonical(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if key in _UNORDERED:
            items.sort(key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
        return items
    if type(value) is float and value.is_integer() and _INT64[0] <= value <= _INT64[1]:
        return int(value)
    return value


def _column_value(cost: Any) -> Any:
    """``cost_estimate`` as SQLite can hold it: an integer past 64 bits becomes a float."""
    if not isinstance(cost, _SCALARS):
        return None
    if type(cost) is int and not _INT64[0] <= cost <= _INT64[1]:
        try:
            return float(cost)
        except OverflowError:
            return None
    return cost


#: kinds whose payload carries the volatile cost_estimate
_COSTED = ("cluster", "instance", "instance_info", "volume")


def _items(response: Any, endpoint: str) -> list[Any]:
    key = _LIST_KEYS[endpoint] if endpoint in _LIST_KEYS else \
        next(k for e, k, _ in ACCOUNT_LISTS.values() if e == endpoint)
    if not isinstance(response, dict):
        raise SchemaError(f"found {type_name(response)}, expected an object with a '{key}' list",
                          source=f"GET {endpoint}", path="$")
    items = response.get(key)
    if not isinstance(items, list):
        raise SchemaError(f"found {type_name(items)}, expected a list",
                          source=f"GET {endpoint}", path=f"$.{key}")
    return items


def _text_field(item: Any, key: str, endpoint: str, path: str) -> str:
    if not isinstance(item, dict):
        raise SchemaError(f"found {type_name(item)}, expected an object",
                          source=f"GET {endpoint}", path=path)
    value = item.get(key)
    if not valid_id(value):  # the record spec's rule for an id
        raise SchemaError(f"'{key}' is {type_name(value)}, expected a non-empty string",
                          source=f"GET {endpoint}", path=f"{path}.{key}")
    return value


def _seen(kind: str, rid: str, parent: str | None, payload: dict[str, Any], endpoint: str,
          path: str) -> _Seen:
    cost = payload.get(_VOLATILE)
    stable = {k: v for k, v in payload.items() if k != _VOLATILE}
    try:
        text = orjson.dumps(payload).decode()
        digest = hashlib.sha256(orjson.dumps(_canonical(stable), option=orjson.OPT_SORT_KEYS)
                                ).hexdigest()
    except (orjson.JSONEncodeError, RecursionError):
        raise SchemaError("holds a value JSON cannot represent", source=f"GET {endpoint}",
                          path=path, resource_id=rid) from None
    status = payload.get("status")
    return _Seen(kind, rid, parent, status if isinstance(status, str) else None, text, digest,
                 _column_value(cost), endpoint=endpoint, path=path)


def _put(seen: dict[tuple[str, str], list[_Seen]], item: _Seen) -> None:
    """Add ``item`` to the listings of its id (a second listing is kept: :func:`_numbered`)."""
    seen.setdefault((item.kind, item.resource_id), []).append(item)


def _numbered(seen: dict[tuple[str, str], list[_Seen]]) -> dict[tuple[str, str], _Seen]:
    """Every listing of a poll, the repeats of an id numbered ``<id>#2``, ``#3``...

    The store keeps every listing the API sent, so that it reads back the rows (and the
    ``duplicate_instance`` finding) the same responses give when loaded from files. The
    listings of one id are ordered by content (parent, then payload), not by their place in
    the response, so the same listings in another order are the same versions.
    """
    out: dict[tuple[str, str], _Seen] = {}
    for (kind, rid), items in seen.items():
        if len(items) > 1:
            items.sort(key=lambda s: (s.parent_id or "", s.payload_hash, s.payload))
        out[kind, rid] = items[0]
        n = 1
        for item in items[1:]:
            n += 1
            while (kind, f"{rid}#{n}") in seen:  # an id that is spelled so already
                n += 1
            out[kind, f"{rid}#{n}"] = replace(item, resource_id=f"{rid}#{n}", repeat=True)
    return out


def _account_id(kind: str, item: Any, endpoint: str, path: str) -> str:
    """The resource id of an account list item (the catalogues have none: their key)."""
    if kind == "volume_type":
        return (f"{_text_field(item, 'cloud', endpoint, path)}/"
                f"{_text_field(item, 'region', endpoint, path)}")
    if kind == "cluster_type":
        node = item.get("cluster_type") if isinstance(item, dict) else None
        where = item.get("availability") if isinstance(item, dict) else None
        return "/".join(str(part) for part in (
            _text_field(item, "cloud", endpoint, path),
            _text_field(node, "shade_instance_type", endpoint, f"{path}.cluster_type"),
            item.get("num_instances"),
            where.get("region") if isinstance(where, dict) else ""))
    if kind in ("template", "featured_template") and isinstance(item, dict) \
            and item.get("id") is None:
        # the spec's FeaturedTemplate has no id: its name is its key
        return f"name:{_text_field(item, 'name', endpoint, path)}"
    return _text_field(item, "id", endpoint, path)


def prepare_account_list(argument: str, response: Any) -> dict[tuple[str, str], _Seen]:
    """One account list response (``volumes=``, ``ssh_keys=``... of :meth:`Store.record_poll`)
    validated, redacted and hashed; :class:`SchemaError` when it cannot be recorded."""
    endpoint, key, kind = ACCOUNT_LISTS[argument]
    seen: dict[tuple[str, str], _Seen] = {}
    for i, item in enumerate(_items(response, endpoint)):
        path = f"$.{key}[{i}]"
        rid = _account_id(kind, item, endpoint, path)
        payload = redact(item) if kind in ("ssh_key", "template", "featured_template") else item
        seen.setdefault((kind, rid), _seen(kind, rid, None, payload, endpoint, path))
    return seen


def _prepare_details(details: Mapping[str, Any], seen: dict[tuple[str, str], _Seen]
                     ) -> dict[tuple[str, str], _Seen]:
    """``/instances/{id}/info`` responses by instance id, redacted, with the instance's cluster."""
    out: dict[tuple[str, str], _Seen] = {}
    for iid, info in details.items():
        endpoint = "/instances/{id}/info"
        if not isinstance(info, dict) or info.get("id") != iid:
            raise SchemaError(f"found {type_name(info)} without the instance's id, expected "
                              "the instance object", source=f"GET {endpoint}", path="$",
                              resource_id=iid)
        member = seen.get(("instance", iid))
        parent = member.parent_id if member is not None else None
        out["instance_info", iid] = _seen("instance_info", iid, parent, redact(info), endpoint,
                                          "$")
    return out


def _prepare(clusters: Any, instances: Any, instance_types: Any) -> dict[tuple[str, str], _Seen]:
    """Every resource of one poll, validated, redacted and hashed, keyed by (kind, id).

    A resource listed twice is kept twice (the repeat under ``<id>#2``: see :func:`_numbered`), as
    the file loaders keep it; cluster members are read before ``/instances``, and a member
    also listed there keeps its cluster (the file loaders' rule too).
    """
    seen: dict[tuple[str, str], list[_Seen]] = {}
    if clusters is not None:
        for i, item in enumerate(_items(clusters, "/clusters")):
            path = f"$.clusters[{i}]"
            cid = _text_field(item, "id", "/clusters", path)
            members = item.get("instances")
            if not isinstance(members, list):
                raise SchemaError(f"'instances' is {type_name(members)}, expected a list",
                                  source="GET /clusters", path=f"{path}.instances",
                                  resource_id=cid)
            ids = []
            for j, member in enumerate(members):
                mpath = f"{path}.instances[{j}]"
                mid = _text_field(member, "id", "/clusters", mpath)
                ids.append({"id": mid})
                _put(seen, _seen("instance", mid, cid, redact(member), "/clusters", mpath))
            # members are versioned on their own: the cluster keeps only who they are
            payload = redact({**item, "instances": ids})
            _put(seen, _seen("cluster", cid, None, payload, "/clusters", path))
    if instances is not None:
        for i, item in enumerate(_items(instances, "/instances")):
            path = f"$.instances[{i}]"
            iid = _text_field(item, "id", "/instances", path)
            if any(s.parent_id is not None for s in seen.get(("instance", iid), ())):
                continue  # listed in its cluster too: the cluster's listing is the one kept
            _put(seen, _seen("instance", iid, None, redact(item), "/instances", path))
    if instance_types is not None:
        for i, item in enumerate(_items(instance_types, "/instances/types")):
            path = f"$.instance_types[{i}]"
            tid = (f"{_text_field(item, 'cloud', '/instances/types', path)}/"
                   f"{_text_field(item, 'shade_instance_type', '/instances/types', path)}")
            if "availability" not in item and isinstance(item.get("region"), str):
                tid += f"/{item['region']}"  # the 2024 shape lists a type once per region
            _put(seen, _seen("instance_type", tid, None, item, "/instances/types", path))
    return _numbered(seen)


def _digest(endpoints: Iterable[str], seen: dict[tuple[str, str], _Seen]) -> str:
    lines = sorted(f"{s.kind}\t{s.resource_id}\t{s.parent_id}\t{s.payload_hash}\t"
                   f"{s.cost_estimate!r}" for s in seen.values())
    return hashlib.sha256("\n".join([",".join(endpoints), *lines]).encode()).hexdigest()


class Store:
    """The history store in one SQLite file (created with mode 0600 if missing).

    ::

        with Store("fleet.sqlite") as store:
            store.record_poll(now, clusters=client.clusters(), instances=client.instances(),
                              instance_types=client.instance_types())
            tables = store.read()          # the same Tables the file loaders give

    ``create=False`` refuses to create a missing store (for readers); such a store on a
    read-only file, folder or mount is opened read-only (``mode=ro``, or ``immutable=1`` when
    SQLite cannot even create its shared-memory file there): it reads, and refuses writes with
    a ``StoreError``. One ``Store`` per thread:
    its write connection belongs to the thread that opened it. Every ``sqlite3`` error becomes
    a :class:`~shadeanalytics.errors.StoreError` naming the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._create_file(create)
        #: URI flags of read-only connections ("" while the store is writable)
        self._ro_flags = "" if create or self._writable() else self._read_only_flags()
        with self._errors("cannot open"):
            self._conn = self._connect()
            try:
                self._check_or_create_schema(create)
                if not self._ro_flags:
                    # journal_mode is stored in the file: set it only once it is known ours
                    self._conn.execute("PRAGMA journal_mode = WAL")
            except BaseException:
                self._conn.close()
                self._conn = None
                raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> Store:
        """The store at ``path``; use it as a context manager to close it."""
        return cls(path, create=create)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def close(self) -> None:
        """Close the write connection (the last connection to close checkpoints the WAL)."""
        if self._conn is not None:
            with self._errors("cannot close"):
                self._conn.close()
            self._conn = None

    # -- connections -----------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code == sqlite3.SQLITE_NOTADB:
                raise StoreError(f"{self.path}: not a shadeanalytics store ({exc})") from exc
            if code == sqlite3.SQLITE_FULL or _disk_full(self.path):
                raise StoreError(f"{self.path}: {action}: no space left on device (the store "
                                 "is unchanged)") from exc
            if self._ro_flags and code is not None and code & 0xFF == sqlite3.SQLITE_READONLY:
                raise StoreError(f"{self.path}: {action}: the store is read-only") from exc
            raise StoreError(f"{self.path}: {action}: {exc}") from exc

    def _writable(self) -> bool:
        folder = self.path.parent
        return os.access(self.path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK) \
            and not _read_only_mount(folder)

    def _read_only_flags(self) -> str:
        """``mode=ro``, or ``mode=ro&immutable=1`` when a read-only open fails (a WAL store on
        read-only media: SQLite cannot create its ``-shm`` file there)."""
        try:
            conn = sqlite3.connect(f"{self._uri()}?mode=ro", uri=True, isolation_level=None)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return "mode=ro&immutable=1"
        return "mode=ro"

    def _uri(self) -> str:
        return self.path.resolve().as_uri()

    def _create_file(self, create: bool) -> None:
        if self.path.exists():
            if self.path.is_dir():
                raise StoreError(f"{self.path}: is a folder, not a store file")
            if not self.path.is_file():
                raise StoreError(f"{self.path}: not a regular file (a device, FIFO or socket); "
                                 "refused")
            return
        if not create:
            raise StoreError(f"{self.path}: no such store")
        try:
            # created here, not by SQLite, so that it is never readable by others; SQLite gives
            # the -wal and -shm files the same mode
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it first
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create ({exc.strerror})") from None

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE / BEGIN ... COMMIT)
        if self._ro_flags:
            return sqlite3.connect(f"{self._uri()}?{self._ro_flags}", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # FULL: in WAL mode this is one fsync of the log per poll, so a poll reported as
        # committed survives a power cut too; the store is the only record of what it holds.
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on its own connection: one consistent view, never a partial poll.

        In WAL mode it does not wait for the writer, nor the writer for it.
        """
        with self._errors("cannot read"):
            conn = sqlite3.connect(f"{self._uri()}?{self._ro_flags or 'mode=ro'}", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("BEGIN")
                yield conn
                conn.execute("COMMIT")
            finally:
                conn.close()

    def _check_or_create_schema(self, create: bool) -> None:
        conn = self._db
        app_id, version, tables = self._identity(conn)
        if app_id == APPLICATION_ID:
            self._check_version(version)
            if version < SCHEMA_VERSION and not self._ro_flags:
                self._migrate()
            return
        if app_id != 0 or tables:
            raise StoreError(f"{self.path}: not a shadeanalytics store (an SQLite database of "
                             "another application)")
        if not create:
            raise StoreError(f"{self.path}: not a shadeanalytics store (an empty file)")
        with self._write() as conn:
            if self._identity(conn)[0] == APPLICATION_ID:  # another process just created it
                return
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", utc_text(datetime.now(UTC))),
            ])
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _identity(conn: sqlite3.Connection) -> tuple[int, int, int]:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return app_id, version, tables

    def _migrate(self) -> None:
        """Bring a store of an older schema up to this one, in one transaction."""
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:  # another process migrated it meanwhile
                return
            if version == 1:
                for statement in _MIGRATE_V1:
                    conn.execute(statement)
            if version < 3:
                # 2 -> 3: the derived rows; the first read derives them (a store opened
                # read-only reads without them)
                conn.execute(_ROW_BLOCKS)
            # 3 -> 4: the quarantine of refused records
            for statement in _QUARANTINE:
                conn.execute(statement)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                         (str(SCHEMA_VERSION),))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: made by a newer shadeanalytics (store schema "
                             f"{version}, this version reads {SCHEMA_VERSION}); upgrade")
        if version < 1:
            raise StoreError(f"{self.path}: damaged store (no schema version)")

    # -- writing ---------------------------------------------------------------------------

    def record_poll(
        self,
        observed_at: datetime | str,
        *,
        clusters: dict[str, Any] | None,
        instances: dict[str, Any] | None,
        instance_types: dict[str, Any] | None,
        volumes: dict[str, Any] | None = None,
        volume_types: dict[str, Any] | None = None,
        ssh_keys: dict[str, Any] | None = None,
        templates: dict[str, Any] | None = None,
        featured_templates: dict[str, Any] | None = None,
        cluster_types: dict[str, Any] | None = None,
        instance_details: Mapping[str, dict[str, Any]] | None = None,
        failures: Sequence[tuple[str, str | None, str]] = (),
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
        allow_earlier: bool = False,
    ) -> int:
        """Record one successful poll from the raw list responses; return its ``poll_id``.

        ``None`` means that endpoint was not polled: its resources are neither updated nor
        marked gone. The account lists (``volumes`` of ``GET /volumes``, ``volume_types``,
        ``ssh_keys``, ``templates``, ``featured_templates``, ``cluster_types``) are versioned
        like the rest; ``instance_details`` maps an instance id to its
        ``GET /instances/{id}/info`` response (versioned as its details, closed when the
        instance is gone). ``failures`` lists the ``(endpoint, resource id or None, error)`` of
        requests that failed without failing the poll. Everything is validated, redacted and
        hashed before the one transaction starts. Recording the same poll again (same
        ``observed_at``, same content) returns the existing ``poll_id`` and writes nothing;
        another poll at the same instant, or one older than the newest successful poll, is
        refused with ``StoreError`` (unless ``allow_earlier``: the collector's answer to a clock
        that went backwards, recorded with :meth:`add_poll_warning`). A response of the wrong
        shape raises :class:`~shadeanalytics.errors.SchemaError` and writes nothing.
        """
        account = {"volumes": volumes, "volume_types": volume_types, "ssh_keys": ssh_keys,
                   "templates": templates, "featured_templates": featured_templates,
                   "cluster_types": cluster_types}
        polled = {"/clusters": clusters, "/instances": instances,
                  "/instances/types": instance_types,
                  **{ACCOUNT_LISTS[name][0]: value for name, value in account.items()}}
        endpoints = [e for e in ENDPOINTS if polled[e] is not None]
        if not endpoints:
            raise ValueError("record_poll needs at least one response")
        observed = utc_text(observed_at)
        started = utc_text(started_at) if started_at is not None else observed
        finished = utc_text(finished_at) if finished_at is not None else None
        seen = _prepare(clusters, instances, instance_types)
        for name, value in account.items():
            if value is not None:
                seen.update(prepare_account_list(name, value))
        seen.update(_prepare_details(instance_details or {}, seen))
        failed = [(str(e), None if r is None else str(r), str(x) or "unknown error")
                  for e, r, x in failures]
        digest = _digest(endpoints, seen)
        with self._errors("cannot record poll"), self._write() as conn:
            earlier = conn.execute(
                "SELECT poll_id, digest FROM polls WHERE outcome = 'ok' AND observed_at = ?",
                (observed,)).fetchone()
            if earlier is not None:
                if earlier[1] == digest:
                    return int(earlier[0])
                raise StoreError(f"{self.path}: poll {earlier[0]} observed at {observed} is "
                                 "already recorded with different content")
            newest = conn.execute("SELECT max(observed_at) FROM polls WHERE outcome = 'ok'"
                                  ).fetchone()[0]
            if newest is not None and newest > observed and not allow_earlier:
                raise StoreError(f"{self.path}: cannot record a poll observed at {observed}: "
                                 f"polls must be recorded in time order (newest {newest})")
            return self._apply(conn, observed, started, finished, endpoints, seen, digest,
                               failed)

    def _apply(self, conn: sqlite3.Connection, observed: str, started: str,
               finished: str | None, endpoints: list[str], seen: dict[tuple[str, str], _Seen],
               digest: str, failed: list[tuple[str, str | None, str]]) -> int:
        """Write one poll inside the open transaction: the change-log step of SCD type 2."""
        current = {(kind, rid): (vid, parent, phash) for vid, kind, rid, parent, phash in
                   conn.execute("SELECT version_id, kind, resource_id, parent_id, payload_hash "
                                "FROM versions WHERE valid_to IS NULL")}
        touched, closed, opened = [], [], []
        for key, s in seen.items():
            now = current.get(key)
            if now is not None and s.parent_id is None and "/clusters" not in endpoints:
                # /clusters not polled: a member seen in /instances is still a member
                s = replace(s, parent_id=now[1])
            if now is None:
                opened.append(s)
            elif now[1] == s.parent_id and now[2] == s.payload_hash:
                touched.append((s.cost_estimate, now[0]))
            else:
                opened.append(s)
        # quarantine at the door: a new payload the record spec refuses is never stored. Its
        # resource keeps its current version, seen by this poll (neither changed nor gone)
        refusals = self._refusals(opened)
        held = []
        if refusals:
            opened = [s for n, s in enumerate(opened) if n not in refusals]
            held = [current[k][0] for k in ((refusals[n][0].kind, refusals[n][0].resource_id)
                                            for n in refusals) if k in current]
        closed = [current[s.kind, s.resource_id][0] for s in opened
                  if (s.kind, s.resource_id) in current]
        added = len(opened) - len(closed)
        polled = set(endpoints)
        gone_keys = [(kind, rid) for (kind, rid), (_, parent, _) in current.items()
                     if kind != "instance_info" and (kind, rid) not in seen
                     and _endpoint_of(kind, parent) in polled]
        # an instance's details are listed nowhere: they go with their instance
        gone_instances = {rid for kind, rid in gone_keys if kind == "instance"}
        gone_keys += [("instance_info", rid) for kind, rid in current
                      if kind == "instance_info" and rid in gone_instances]
        gone = [current[key][0] for key in gone_keys]

        def count(kind: str, *by: str) -> int | None:
            return (sum(1 for (k, _), s in seen.items() if k == kind and not s.repeat)
                    if polled.intersection(by) else None)

        counts = (count("cluster", "/clusters"), count("instance", "/clusters", "/instances"),
                  count("instance_type", "/instances/types"))
        details = sum(1 for k, _ in seen if k == "instance_info")
        poll_id = conn.execute(
            "INSERT INTO polls (started_at, finished_at, observed_at, endpoints, outcome, "
            "clusters, instances, instance_types, added, changed, gone, digest, volumes, "
            "details, failures, refused) "
            "VALUES (?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (started, finished, observed, ",".join(endpoints), *counts, added, len(closed),
             len(gone), digest, count("volume", "/volumes"), details, len(failed),
             len(refusals))).lastrowid
        assert poll_id is not None  # set by every INSERT; narrows the type
        conn.executemany("INSERT INTO request_failures (poll_id, endpoint, resource_id, error) "
                         "VALUES (?, ?, ?, ?)", [(poll_id, *f) for f in failed])
        conn.executemany(
            "INSERT INTO quarantine (poll_id, endpoint, kind, resource_id, path, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(poll_id, s.endpoint, s.kind, s.resource_id, path, reason)
             for s, path, reason in refusals.values()])
        conn.executemany("UPDATE versions SET last_seen_poll = ?, last_seen_at = ? "
                         "WHERE version_id = ?", [(poll_id, observed, vid) for vid in held])
        conn.executemany("UPDATE versions SET last_seen_poll = ?, last_seen_at = ?, "
                         "last_cost_estimate = ? WHERE version_id = ?",
                         [(poll_id, observed, cost, vid) for cost, vid in touched])
        conn.executemany("UPDATE versions SET valid_to = ? WHERE version_id = ?",
                         [(poll_id, vid) for vid in closed])
        conn.executemany("UPDATE versions SET valid_to = ?, gone = 1 WHERE version_id = ?",
                         [(poll_id, vid) for vid in gone])
        conn.executemany(
            "INSERT INTO versions (kind, resource_id, parent_id, valid_from, status, payload, "
            "payload_hash, last_seen_poll, last_seen_at, last_cost_estimate) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(s.kind, s.resource_id, s.parent_id, poll_id, s.status, s.payload, s.payload_hash,
              poll_id, observed, s.cost_estimate) for s in opened])
        return poll_id

    def _refusals(self, opened: list[_Seen]) -> dict[int, tuple[_Seen, str, str]]:
        """The payloads of ``opened`` that the record spec refuses, by position: (the
        listing, the JSON path of the refused value in its response, the reason)."""
        if not opened:
            return {}
        found = derived.refused(str(self.path), [
            (n, s.kind, s.parent_id, orjson.loads(s.payload)) for n, s in enumerate(opened)])
        out = {}
        for n, (path, reason) in sorted(found.items()):
            s = opened[n]
            inner = _RECORD_PREFIX.sub("", path, count=1)
            out[n] = (s, printable(s.path + inner), printable(reason))
        return out

    def record_failed_poll(
        self,
        observed_at: datetime | str,
        *,
        error: str,
        endpoints: Iterable[str] = ENDPOINTS[:3],
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
    ) -> int:
        """Record a run that failed (``error``: our own exception text); return its ``poll_id``.

        No version is written or closed: a failed poll says nothing about the fleet.
        """
        observed = utc_text(observed_at)
        names = list(endpoints)
        unknown = set(names) - set(ENDPOINTS)
        if unknown or not names:
            raise ValueError(f"endpoints must be some of {', '.join(ENDPOINTS)}")
        with self._errors("cannot record poll"), self._write() as conn:
            poll_id = conn.execute(
                "INSERT INTO polls (started_at, finished_at, observed_at, endpoints, outcome, "
                "error) VALUES (?, ?, ?, ?, 'failed', ?)",
                (utc_text(started_at) if started_at is not None else observed,
                 utc_text(finished_at) if finished_at is not None else None, observed,
                 ",".join(names), error or "unknown error")).lastrowid
        assert poll_id is not None
        return poll_id

    def add_poll_warning(self, poll_id: int, warning: str) -> None:
        """Keep ``warning`` (our own text) with poll ``poll_id``: :meth:`poll_warnings`."""
        with self._errors("cannot record the warning"), self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (f"{_WARNING_KEY}{poll_id}", warning))

    def poll_warnings(self) -> dict[int, str]:
        """The warnings kept with polls (e.g. a clock that went backwards), by ``poll_id``."""
        with self._snapshot() as conn:
            rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE ?",
                                (f"{_WARNING_KEY}%",)).fetchall()
        return {int(key[len(_WARNING_KEY):]): value for key, value in rows}

    def newest_poll(self) -> tuple[int, datetime] | None:
        """``(poll_id, observed_at)`` of the newest successful poll, or None."""
        with self._snapshot() as conn:
            row = conn.execute("SELECT poll_id, observed_at FROM polls WHERE outcome = 'ok' "
                               "ORDER BY observed_at DESC, poll_id DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), datetime.fromisoformat(row[1]))

    # -- reading ---------------------------------------------------------------------------

    def poll(self, poll_id: int) -> dict[str, Any]:
        """One row of the poll log as a dict (timestamps as UTC text)."""
        with self._snapshot() as conn:
            row = conn.execute(f"SELECT {_poll_select(conn)} FROM polls WHERE poll_id = ?",
                               (poll_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no poll {poll_id}")
        return dict(zip(_POLL_COLUMNS, row, strict=True))

    def polls(self) -> pd.DataFrame:
        """The poll log, oldest first: one row per run, failed ones included.

        Columns: ``poll_id`` and the counts (``clusters``, ``instances``, ``instance_types``,
        ``added``, ``changed``, ``gone``, ``volumes``, ``details``: instance details fetched,
        ``failures``: requests that failed without failing the poll, ``refused``: records
        quarantined, see :meth:`quarantine`; NA before schema 4) Int64; ``started_at``,
        ``finished_at``, ``observed_at`` datetime64[us, UTC]; ``endpoints``, ``outcome``,
        ``error`` string.
        """
        with self._snapshot() as conn:
            rows = conn.execute(f"SELECT {_poll_select(conn)} FROM polls "
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

    def request_failures(self) -> pd.DataFrame:
        """Requests that failed without failing their poll (an instance's details, an account
        list): ``poll_id`` Int64, ``observed_at`` datetime64[us, UTC], ``endpoint``,
        ``resource_id``, ``error`` string; oldest first."""
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT f.poll_id, p.observed_at, f.endpoint, f.resource_id, f.error "
                "FROM request_failures f JOIN polls p USING (poll_id) "
                "ORDER BY f.poll_id, f.rowid").fetchall()
        poll_id, at, endpoint, rid, error = (list(c) for c in zip(*rows, strict=True)) \
            if rows else ([], [], [], [], [])
        return pd.DataFrame({
            "poll_id": pd.array(poll_id, dtype="Int64"),
            "observed_at": pd.to_datetime(at, utc=True, format="ISO8601").as_unit("us"),
            "endpoint": pd.array(endpoint, dtype="string"),
            "resource_id": pd.array(rid, dtype="string"),
            "error": pd.array(error, dtype="string"),
        })

    def quarantine(self) -> pd.DataFrame:
        """The records polls refused at the door (never stored), oldest first: ``poll_id``
        Int64, ``observed_at`` datetime64[us, UTC], ``endpoint``, ``kind``, ``resource_id``,
        ``path`` (the JSON path of the refused value in its response), ``reason`` string.
        Never a value: the record spec's words only."""
        names = ("endpoint", "kind", "resource_id", "path", "reason")
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT q.poll_id, p.observed_at, q.endpoint, q.kind, q.resource_id, q.path, "
                "q.reason FROM quarantine q JOIN polls p USING (poll_id) "
                "ORDER BY q.poll_id, q.rowid").fetchall() if _has_table(conn, "quarantine") \
                else []
        cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(7)]
        return pd.DataFrame({
            "poll_id": pd.array(cols[0], dtype="Int64"),
            "observed_at": pd.to_datetime(cols[1], utc=True, format="ISO8601").as_unit("us"),
            **{name: pd.array(col, dtype="string") for name, col in zip(names, cols[2:],
                                                                       strict=True)},
        })

    def details_seen(self) -> dict[str, str]:
        """Instance id -> when its ``/instances/{id}/info`` was last recorded (UTC text), for
        every instance whose details the store holds."""
        with self._snapshot() as conn:
            return dict(conn.execute("SELECT resource_id, max(last_seen_at) FROM versions "
                                     "WHERE kind = 'instance_info' GROUP BY resource_id"))

    def last_polled(self, endpoint: str) -> str | None:
        """When ``endpoint`` was last part of a successful poll (UTC text), or None."""
        with self._snapshot() as conn:
            return conn.execute(
                "SELECT max(observed_at) FROM polls WHERE outcome = 'ok' "
                "AND instr(',' || endpoints || ',', ?) > 0", (f",{endpoint},",)).fetchone()[0]

    def read(self, *, since: datetime | str | None = None,
             until: datetime | str | None = None, errors: str = "raise",
             progress_bar: bool | None = None) -> Tables:
        """The history as ``Tables``, as if the polls had been loaded from files.

        History means change points, not every poll: each version of a resource gives one row
        dated by the first poll that saw it and, when later polls saw it unchanged, one more
        row dated by the last of them (carrying that poll's ``cost_estimate``). A deleted
        resource keeps its rows, the last one being its final recorded state. ``polls`` lists
        every endpoint of every poll, with ``ok`` False for failed runs, so ``latest()`` tells a
        resource that vanished from a successful poll (status ``deleted``) from one a failed
        poll merely did not see.

        A stored record that cannot load (one kept before the collector refused such records
        at the door, or one a newer record spec refuses) is set aside with a ``DataWarning``
        (``record skipped: ...``), whatever ``errors`` says (it is kept for the signature of
        ``shadeanalytics.read``): one record never makes the store unreadable. Records the
        collector refused are never stored: :meth:`quarantine` lists them.

        ``since`` / ``until`` (inclusive) keep the polls in that window: a version alive
        across an edge is dated by the first / last poll inside the window that saw it; its
        ``cost_estimate`` there is unknown (NA) unless that poll is where it was recorded.
        Rows load as the file loaders load them, with the same ``DataWarning``\\ s.

        The rows of each version are derived once and kept in the store (``rows.py``): a
        read derives only the versions recorded since the last one, and keeps them when the
        store is writable. ``progress_bar``: show a progress bar on standard error while
        versions are derived (None: only when it is a terminal and the work takes seconds).
        """
        lo = utc_text(since) if since is not None else ""
        hi = utc_text(until) if until is not None else "\uffff"
        with self._snapshot() as conn, gc_paused():
            polls = conn.execute("SELECT poll_id, observed_at, endpoints, outcome FROM polls "
                                 "ORDER BY poll_id").fetchall()
            ok = [(p, at, endpoints) for p, at, endpoints, outcome in polls if outcome == "ok"]
            logged = [(at, endpoints, outcome) for _, at, endpoints, outcome in polls
                      if lo <= at <= hi]
            del polls
            until_poll = max((p for p, at, _ in ok if at <= hi), default=0)
            window = ("FROM versions WHERE valid_from <= ? AND last_seen_at >= ? "
                      "ORDER BY version_id", (until_poll, lo))
            versions = derived.Versions.of(conn.execute(
                f"SELECT {derived.Versions.SELECT} {window[0]}", window[1]).fetchall())
            stored: list[derived.RowBlock] = []
            new, frames = None, None
            if versions.vid.size >= _DERIVED_MIN_VERSIONS:
                stored, new = self._row_blocks(conn, progress_bar)
                block = derived.concat([*stored, *([new] if new is not None else [])]
                                       or [derived.empty_block()])
                frames = derived.read_rows(block, versions, ok, lo, hi)
                del block
            if frames is None:  # something to warn about, or to decide as the loaders do
                del versions
                rows = conn.execute(
                    "SELECT version_id, kind, resource_id, parent_id, valid_from, "
                    f"last_seen_poll, payload, last_cost_estimate {window[0]}",
                    window[1]).fetchall()
                records, fixes = _records(str(self.path), rows, ok, lo, hi)
                with progress(len(records), "reading stored versions", enabled=progress_bar,
                              unit=" rows") as bar:
                    # a stored record that cannot load (kept before the door checked it, or
                    # refused by a newer spec) is set aside with a warning whatever
                    # ``errors`` says: one record never makes a store unreadable
                    tables = fixes.apply(build_tables(normalize_records(
                        _counted(records, bar), Findings(errors="skip"))))
                del records, rows
            else:
                tables = Tables(**frames, polls=derived.polls_frame([]))
        if new is not None:
            self._keep_row_blocks(stored, new)
        for message in tables.warnings:
            warnings.warn(printable(message), DataWarning, stacklevel=2)
        return replace(tables, polls=derived.polls_frame(logged))

    def _row_blocks(self, conn: sqlite3.Connection, progress_bar: bool | None
                    ) -> tuple[list[derived.RowBlock], derived.RowBlock | None]:
        """The stored row blocks that still fit (from version 1 on, of this derivation),
        and the block of the versions after them, derived now (None: there are none)."""
        spec = derived.spec_fingerprint()
        stored: list[derived.RowBlock] = []
        covered = 0
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'row_blocks'").fetchone():
            for first, last, data in conn.execute(
                    "SELECT first_version, last_version, data FROM row_blocks WHERE spec = ? "
                    "ORDER BY first_version", (spec,)):
                if first != covered + 1:
                    break
                stored.append(derived.decode(data))
                covered = last
        total = conn.execute("SELECT count(*) FROM versions WHERE version_id > ?",
                             (covered,)).fetchone()[0]
        if not total:
            return stored, None
        parts = []
        cursor = conn.execute("SELECT version_id, kind, parent_id, payload FROM versions "
                              "WHERE version_id > ? ORDER BY version_id", (covered,))
        with progress(total, "deriving stored versions", enabled=progress_bar) as bar:
            while chunk := cursor.fetchmany(_DERIVE_CHUNK):
                parts.append(derived.derive(str(self.path), chunk, covered + 1, chunk[-1][0]))
                covered = chunk[-1][0]
                bar.update(len(chunk))
        return stored, derived.concat(parts)

    def _keep_row_blocks(self, stored: list[derived.RowBlock], new: derived.RowBlock) -> None:
        """Keep ``new`` for the next read, merging it with the last blocks while they are not
        much bigger (so that a store holds a few blocks, and each row is rewritten only a
        few times). Best effort: a read-only store, or a writer holding the lock, keeps
        nothing, and the next read derives these versions again."""
        if self._ro_flags:
            return
        blocks = [b for b in stored if b.versions] + [new]
        merged = [blocks.pop()]
        while blocks and blocks[-1].versions <= 2 * sum(b.versions for b in merged):
            merged.insert(0, blocks.pop())
        block = derived.concat(merged)
        spec = derived.spec_fingerprint()
        data = derived.encode(block)  # before the write lock is taken
        try:
            # a read does not wait long for a collector to keep what it can derive again
            self._db.execute(f"PRAGMA busy_timeout = {_KEEP_WAIT_MS}")
            with self._errors("cannot keep the derived rows"), self._write() as conn:
                if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'row_blocks'").fetchone() is None:
                    return
                kept = conn.execute("SELECT first_version, last_version FROM row_blocks "
                                    "WHERE spec = ? ORDER BY first_version", (spec,)).fetchall()
                chain = [(b.first, b.last) for b in stored if b.versions]
                if kept[:len(chain)] != chain or any(f == new.first for f, _ in kept):
                    return  # another read kept them meanwhile
                # (blocks of another derivation, and any beyond the chain, go)
                conn.execute("DELETE FROM row_blocks WHERE spec != ? OR first_version >= ?",
                             (spec, block.first))
                conn.execute("INSERT INTO row_blocks (first_version, last_version, spec, data) "
                             "VALUES (?, ?, ?, ?)",
                             (block.first, block.last, spec, data))
        except (StoreError, sqlite3.Error):
            pass
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check`` (``integrity_check`` less the index contents, in
        about the time of one read of the file): ``"ok"``, or the first problems, one per
        line. A file damaged past reading gives its error as the problem."""
        try:
            with self._snapshot() as conn:
                return "\n".join(r[0] for r in conn.execute("PRAGMA quick_check(10)"))
        except StoreError as exc:
            code = getattr(exc.__cause__, "sqlite_errorcode", None)
            if code is None or code & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                raise
            return str(exc.__cause__)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"``, or the problems, one per line."""
        with self._snapshot() as conn:
            return "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check"))

    def stats(self) -> dict[str, Any]:
        """Counts (polls; versions, resources, current and gone resources per kind), file size
        (database and write-ahead log) and the write connection's ``settings``."""
        with self._snapshot() as conn:
            outcomes = dict(conn.execute("SELECT outcome, count(*) FROM polls GROUP BY outcome"))
            first, last = conn.execute("SELECT min(observed_at), max(observed_at) FROM polls "
                                       "WHERE outcome = 'ok'").fetchone()
            per_kind = conn.execute(
                "SELECT kind, count(*), count(DISTINCT resource_id), sum(valid_to IS NULL) "
                "FROM versions GROUP BY kind").fetchall()
        size = sum(p.stat().st_size for p in (self.path, self._sidecar("-wal")) if p.exists())
        with self._errors("cannot read settings"):
            settings = {name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
                        for name in ("journal_mode", "synchronous", "busy_timeout")}
        return {
            "path": str(self.path),
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

    def _sidecar(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    # -- alert episodes (shadeanalytics check) ------------------------------------------------
    # One small table, created on demand by the first run that alerts: an open episode per
    # breach key (a breach alerted and not cleared since). Additive: stores without it read
    # as having no open episode.

    _ALERTS_TABLE = """CREATE TABLE IF NOT EXISTS alert_episodes (
    key         TEXT PRIMARY KEY,  -- the breach's stable key (rule and resource, no value)
    rule        TEXT NOT NULL,
    opened_at   TEXT NOT NULL,     -- as_of of the run that alerted it (UTC, RFC 3339)
    last_seen_at TEXT NOT NULL     -- as_of of the last run that still saw it
) WITHOUT ROWID"""

    def alert_episodes(self) -> dict[str, dict[str, str]]:
        """The open alert episodes, by key: ``rule``, ``opened_at``, ``last_seen_at``."""
        with self._snapshot() as conn:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = 'alert_episodes'").fetchone()
            if not exists:
                return {}
            rows = conn.execute("SELECT key, rule, opened_at, last_seen_at FROM "
                                "alert_episodes").fetchall()
        return {key: {"rule": rule, "opened_at": opened, "last_seen_at": seen}
                for key, rule, opened, seen in rows}

    def update_alert_episodes(self, *, opened: Iterable[tuple[str, str]], seen: Iterable[str],
                              closed: Iterable[str], at: datetime | str) -> None:
        """In one transaction: open an episode per ``(key, rule)`` of ``opened``, mark the
        ``seen`` keys seen at ``at``, and close (delete) the ``closed`` ones."""
        when = utc_text(at)
        with self._errors("cannot record alerts"), self._write() as conn:
            conn.execute(self._ALERTS_TABLE)
            conn.executemany("INSERT OR IGNORE INTO alert_episodes (key, rule, opened_at, "
                             "last_seen_at) VALUES (?, ?, ?, ?)",
                             [(key, rule, when, when) for key, rule in opened])
            conn.executemany("UPDATE alert_episodes SET last_seen_at = ? WHERE key = ?",
                             [(when, key) for key in seen])
            conn.executemany("DELETE FROM alert_episodes WHERE key = ?",
                             [(key,) for key in closed])


def _poll_select(conn: sqlite3.Connection) -> str:
    """The columns of ``_POLL_COLUMNS`` to select (a store of schema 3 opened read-only has no
    ``refused``: NULL)."""
    has = conn.execute("SELECT 1 FROM pragma_table_info('polls') WHERE name = 'refused'"
                       ).fetchone()
    return ", ".join(c if c != "refused" or has else "NULL" for c in _POLL_COLUMNS)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def _disk_full(path: Path) -> bool:
    """True when the store's file system has no free block left (SQLite may then say only
    "disk I/O error")."""
    try:
        info = os.statvfs(path.parent)
    except OSError:
        return False
    return info.f_bavail == 0


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


# -- read helpers -----------------------------------------------------------------------------


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
        ids = sightings[_endpoint_of(kind, parent)]
        first = valid_from if at_of[valid_from] >= lo else _first_at_or_after(ids, valid_from)
        last = last_seen if at_of[last_seen] <= hi else _last_at_or_before(ids, last_seen)
        if first is None or last is None or first > last:
            continue
        payload = orjson.loads(payload_text)
        for poll_id in dict.fromkeys((first, last)):
            at = at_of[poll_id]
            value = payload
            if kind in _COSTED and poll_id == last_seen:
                value = {**payload, _VOLATILE: last_cost}
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
