"""The seam between the history store and its database: what the store's logic asks of one.

The store's logic (``storewrite.py``, ``storeread.py``, ``alertstate.py``) holds no database
call of its own: it asks a :class:`Backend` for a transaction and runs portable SQL through the
:class:`Session` it gives (``?`` placeholders, standard statements); whatever a database spells
its own way (the connection, opening and migrating the schema, PRAGMAs, ``INSERT OR IGNORE``,
the catalogue, the row order of a table, blobs) is a method of the session or the backend.
``storesqlite.py`` (an SQLite file) and ``storepg.py`` (a PostgreSQL schema) are the backends.
Also here: the stored formats every part of the store shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["POLL_WARNING_KEY", "SCHEMA_VERSION", "VOLATILE", "Backend", "Rows", "Session",
           "utc_text"]

#: The schema of the store's tables (``polls``, ``versions``, ``row_blocks``, ``quarantine``...)
#: that every backend holds and migrates older stores to.
SCHEMA_VERSION = 5
#: The one field of a payload that changes on every poll: kept out of the version hash and
#: updated in place on the current version (``last_cost_estimate``).
VOLATILE = "cost_estimate"
#: ``meta`` key of a warning kept with a poll: the key is this and the poll's id
POLL_WARNING_KEY = "poll_warning:"


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


class Rows(Protocol):
    """The rows of one statement (a DB-API cursor)."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Session(Protocol):
    """One transaction of a backend: portable SQL with ``?`` placeholders, and the few
    statements each database spells its own way."""

    #: the column that orders a table's rows as they were inserted (``f.`` + it in a join)
    insertion_order: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run one ``INSERT`` and return the id of the row it added."""
        ...

    def insert_ignore(self, table: str, columns: Sequence[str],
                      rows: Iterable[Sequence[Any]]) -> None:
        """Insert ``rows``, skipping each whose key the table holds already."""
        ...

    def upsert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert ``rows``, each replacing the row of its key if there is one."""
        ...

    def has_table(self, name: str) -> bool: ...

    def has_column(self, table: str, column: str) -> bool: ...

    def ensure_table(self, name: str) -> None:
        """Create table ``name`` if missing (a table made on demand, e.g. ``alert_episodes``)."""
        ...

    def contains(self, text_sql: str) -> str:
        """An SQL expression true when the text of ``text_sql`` contains the one parameter."""
        ...

    def blob(self, value: Any) -> bytes:
        """A value of a BLOB column as bytes."""
        ...

    def cost(self, value: Any) -> Any:
        """A ``cost_estimate`` (a number, a text or None) as ``last_cost_estimate`` keeps it;
        it reads back as the same value."""
        ...

    def sync_ids(self) -> None:
        """After rows were inserted with their ids (a copy): the next ids follow the largest."""
        ...


class Backend(Protocol):
    """One store's database, open: transactions, error words, and checks of the file."""

    #: how errors and derived rows name the store (its path)
    name: str
    #: True when the store was opened read-only (it reads, and refuses writes)
    read_only: bool

    def errors(self, action: str) -> AbstractContextManager[None]:
        """Turn a database error inside into a ``StoreError`` naming the store and ``action``."""
        ...

    def write(self) -> AbstractContextManager[Session]:
        """One write transaction, taking the write lock up front."""
        ...

    def snapshot(self) -> AbstractContextManager[Session]:
        """One read transaction: a consistent view, never a partial poll."""
        ...

    def best_effort_write(self, action: str, wait_ms: int,
                          work: Callable[[Session], None]) -> None:
        """Run ``work`` in a write transaction that waits at most ``wait_ms`` for the lock;
        a failure (the lock, a read-only file) drops the transaction and is not raised."""
        ...

    def close(self) -> None: ...

    def quick_check(self) -> str: ...

    def integrity_check(self) -> str: ...

    def settings(self) -> dict[str, Any]:
        """The write connection's settings (e.g. journal mode), by name."""
        ...

    def size_bytes(self) -> int:
        """The store's size on disk."""
        ...
