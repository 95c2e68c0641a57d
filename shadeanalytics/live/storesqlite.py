"""The store's one backend: an SQLite file (opening, schema, migrations, connections, dialect).

Every ``sqlite3`` call and every statement SQLite spells its own way is here (PRAGMAs, the
schema's DDL, ``INSERT OR IGNORE``, ``sqlite_master``, ``rowid``); the store's logic reaches it
through :class:`~shadeanalytics.live.storedb.Backend` and its sessions only.

A store is told from any other SQLite file by its ``application_id`` and versioned by its
``user_version``; an older schema is migrated in one transaction when the store is opened
writable. The file is created with mode 0600, the write connection runs in WAL mode with
``synchronous = FULL``; readers take their own connection (a snapshot that never waits for the
writer). A store on a read-only file, folder or mount is opened read-only (``mode=ro``, or
``immutable=1`` when SQLite cannot even create its shared-memory file there).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .storedb import SCHEMA_VERSION, utc_text

__all__ = ["APPLICATION_ID", "BUSY_TIMEOUT_MS", "SQLiteBackend", "writable"]

#: ``PRAGMA application_id`` of a store ("SHAD"): tells a store from any other SQLite file.
APPLICATION_ID = 0x53484144
#: A writer waits this long for another writer; readers in WAL mode almost never wait.
BUSY_TIMEOUT_MS = 10_000

_VERSIONS = """CREATE TABLE {name} (
    version_id         INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL,  -- checked in Python (storewrite: ingest/resources.py)
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
_V2_TABLES = (_VERSIONS.format(name="versions"), *_VERSION_INDEXES, *_POLLS_V2)
#: versions without the CHECK on its kinds that schemas 1 to 4 had (SQLite cannot drop a
#: CHECK: the table is copied, ids and all)
_VERSIONS_REBUILT = (
    _VERSIONS.format(name="versions_new"),
    "INSERT INTO versions_new SELECT * FROM versions",
    "DROP TABLE versions",
    "ALTER TABLE versions_new RENAME TO versions",
    *_VERSION_INDEXES,
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

#: made on demand by the first run that alerts (``alertstate.py``): an open episode per breach
#: key. Additive: stores without it read as having no open episode.
_ON_DEMAND = {"alert_episodes": """CREATE TABLE IF NOT EXISTS alert_episodes (
    key         TEXT PRIMARY KEY,  -- the breach's stable key (rule and resource, no value)
    rule        TEXT NOT NULL,
    opened_at   TEXT NOT NULL,     -- as_of of the run that alerted it (UTC, RFC 3339)
    last_seen_at TEXT NOT NULL     -- as_of of the last run that still saw it
) WITHOUT ROWID""",
    # made by the first read that settles instances (``settled.py``): their kept bill
    "settled_bills": """CREATE TABLE IF NOT EXISTS settled_bills (
    spec            TEXT NOT NULL,      -- settled.fingerprint(): the code that billed them
    part            INTEGER NOT NULL,   -- 0, 1...: each read that settles more adds a part
    through_version INTEGER NOT NULL,   -- the newest version the read that kept it saw
    data            BLOB NOT NULL,      -- their bill's rows (settled._encode)
    PRIMARY KEY (spec, part)
)"""}


def writable(path: Path) -> bool:
    """True when the store file at ``path`` and its folder can be written (then it opens
    read-write; else read-only)."""
    folder = path.parent
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK) \
        and not _read_only_mount(folder)


class _Session:
    """A transaction of one SQLite connection (:class:`~shadeanalytics.live.storedb.Session`)."""

    insertion_order = "rowid"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        row_id = self._conn.execute(sql, params).lastrowid
        assert row_id is not None  # set by every INSERT; narrows the type
        return row_id

    def insert_ignore(self, table: str, columns: Sequence[str],
                      rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' for _ in columns)})", rows)

    def upsert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' for _ in columns)})", rows)

    def has_table(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = ?", (name,)).fetchone() is not None

    def has_column(self, table: str, column: str) -> bool:
        return self._conn.execute(f"SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?",
                                  (column,)).fetchone() is not None

    def ensure_table(self, name: str) -> None:
        self._conn.execute(_ON_DEMAND[name])

    def contains(self, text_sql: str) -> str:
        return f"instr({text_sql}, ?) > 0"

    def blob(self, value: Any) -> bytes:
        return bytes(value) if not isinstance(value, bytes) else value

    def cost(self, value: Any) -> Any:
        return value  # the column has no declared type: SQLite keeps the value as it is

    def sync_ids(self) -> None:
        pass  # an INTEGER PRIMARY KEY takes the largest id + 1 by itself


class SQLiteBackend:
    """One store file, open (:class:`~shadeanalytics.live.storedb.Backend`): created if missing
    and ``create``, migrated if older; read-only when ``writable()`` says the file cannot be
    written (asked only of an existing store). Every ``sqlite3`` error becomes a
    :class:`~shadeanalytics.errors.StoreError` naming the file."""

    def __init__(self, path: Path, *, create: bool, writable: Callable[[], bool]) -> None:
        self.path = path
        self.name = str(path)
        self._conn: sqlite3.Connection | None = None
        self._create_file(create)
        #: URI flags of read-only connections ("" while the store is writable)
        self._ro_flags = "" if create or writable() else self._read_only_flags()
        self.read_only = bool(self._ro_flags)
        with self.errors("cannot open"):
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

    def close(self) -> None:
        """Close the write connection (the last connection to close checkpoints the WAL)."""
        if self._conn is not None:
            with self.errors("cannot close"):
                self._conn.close()
            self._conn = None

    # -- connections -----------------------------------------------------------------------

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
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
    def connection(self) -> sqlite3.Connection:
        """The write connection (a ``StoreError`` once closed)."""
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
        conn = self.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[_Session]:
        """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
        with self._transaction() as conn:
            yield _Session(conn)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        with self.errors("cannot read"):
            conn = sqlite3.connect(f"{self._uri()}?{self._ro_flags or 'mode=ro'}", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("BEGIN")
                yield conn
                conn.execute("COMMIT")
            finally:
                conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[_Session]:
        """A read transaction on its own connection: one consistent view, never a partial poll.

        In WAL mode it does not wait for the writer, nor the writer for it.
        """
        with self._snapshot() as conn:
            yield _Session(conn)

    def best_effort_write(self, action: str, wait_ms: int,
                          work: Callable[[_Session], None]) -> None:
        try:
            self.connection.execute(f"PRAGMA busy_timeout = {wait_ms}")
            with self.errors(action), self.write() as session:
                work(session)
        except (StoreError, sqlite3.Error):
            pass
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    # -- schema ----------------------------------------------------------------------------

    def _check_or_create_schema(self, create: bool) -> None:
        conn = self.connection
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
        with self._transaction() as conn:
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
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:  # another process migrated it meanwhile
                return
            if version == 1:  # 1 -> 2: polls' new columns (versions: rebuilt below)
                for statement in _POLLS_V2:
                    conn.execute(statement)
            if version < 3:
                # 2 -> 3: the derived rows; the first read derives them (a store opened
                # read-only reads without them)
                conn.execute(_ROW_BLOCKS)
            if version < 4:  # 3 -> 4: the quarantine of refused records
                for statement in _QUARANTINE:
                    conn.execute(statement)
            # 4 -> 5: the version kinds are checked in Python, from the resource table
            for statement in _VERSIONS_REBUILT:
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

    # -- checks ----------------------------------------------------------------------------

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check``: ``"ok"``, or the first problems, one per line; a
        file damaged past reading gives its error as the problem."""
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

    def settings(self) -> dict[str, Any]:
        """The write connection's ``journal_mode``, ``synchronous`` and ``busy_timeout``."""
        with self.errors("cannot read settings"):
            return {name: self.connection.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("journal_mode", "synchronous", "busy_timeout")}

    def size_bytes(self) -> int:
        """The database file and its write-ahead log, in bytes."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())


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
