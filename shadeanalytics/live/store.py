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

The store is split by what changes together, behind this facade: ``storesqlite.py`` opens the
file and migrates its schema (the one backend: every SQLite call and dialect statement),
``storewrite.py`` writes polls, ``storeread.py`` reads them back, ``alertstate.py`` keeps the
alert episodes; they meet the database only through ``storedb.py``'s ``Backend`` seam.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _storeurl as storeurl
from ..analytics.billing import SettledTables
from ..analytics.settledsums import SummedTables
from ..ingest.tables import Tables
from . import alertstate, settled, storecopy, storeread, storesqlite, storewrite
from .endpoints import ACCOUNT_LISTS, ENDPOINTS
from .storedb import SCHEMA_VERSION, Backend
from .storedb import utc_text as utc_text
from .storesqlite import APPLICATION_ID as APPLICATION_ID
from .storesqlite import BUSY_TIMEOUT_MS as BUSY_TIMEOUT_MS
from .storesqlite import SQLiteBackend
from .storewrite import Seen, prepare_account_list, prepare_poll, seen_of

__all__ = ["ACCOUNT_LISTS", "ENDPOINTS", "SCHEMA_VERSION", "Store", "prepare_account_list"]

#: a read of fewer versions walks them again instead (quicker than taking row blocks: their
#: cost is mostly per table, ~50 ms, against ~60 µs per version walked), and keeps nothing
_DERIVED_MIN_VERSIONS = 1_000
# names this module had before the split, kept for tests and benchmarks (so are utc_text,
# APPLICATION_ID and BUSY_TIMEOUT_MS, imported above)
_prepare = prepare_poll
_seen = seen_of


class Store:
    """The history store in one SQLite file (created with mode 0600 if missing), or in a
    PostgreSQL database: ``path`` is a file's path, ``sqlite:///path`` or
    ``postgresql://user@host:5432/db`` (the tables go to the first schema of the
    connection's ``search_path``; the password from the URL, ``PGPASSWORD`` or
    ``~/.pgpass``; ``path`` and ``repr`` show the URL with its password as ``***``).

    ::

        with Store("fleet.sqlite") as store:
            store.record_poll(now, clusters=client.clusters(), instances=client.instances(),
                              instance_types=client.instance_types())
            tables = store.read()          # the same Tables the file loaders give

    ``create=False`` refuses to create a missing store (for readers); such a store on a
    read-only file, folder or mount is opened read-only (``mode=ro``, or ``immutable=1`` when
    SQLite cannot even create its shared-memory file there): it reads, and refuses writes with
    a ``StoreError``. One ``Store`` per thread:
    its write connection belongs to the thread that opened it. Every driver error (``sqlite3``,
    psycopg) becomes a :class:`~shadeanalytics.errors.StoreError` naming the store (a URL with
    its password as ``***``).
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        where = storeurl.target(path)
        #: the SQLite file, or the PostgreSQL URL with its password redacted
        self.path: Path | str
        self._backend: Backend
        if isinstance(where, Path):
            self.path = where
            self._backend = SQLiteBackend(where, create=create, writable=self._writable)
        else:
            from .storepg import PostgresBackend

            self.path = storeurl.redact(where)
            self._backend = PostgresBackend(where, create=create)

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
        self._backend.close()

    @property
    def _db(self) -> sqlite3.Connection:
        """The write connection of an SQLite store (a ``StoreError`` once closed)."""
        backend = self._backend
        assert isinstance(backend, SQLiteBackend), "an SQLite store's connection"
        return backend.connection

    def _writable(self) -> bool:
        """Whether the existing store file can be opened read-write (a seam for tests: file
        modes do not stop root)."""
        return storesqlite.writable(Path(self.path))

    def _refusals(self, opened: list[Seen]) -> dict[int, tuple[Seen, str, str]]:
        """The payloads of ``opened`` that the record spec refuses, by position: (the
        listing, the JSON path of the refused value in its response, the reason). A method,
        so that a test can let poison through the door."""
        return storewrite.refusals(self._backend.name, opened)

    # -- writing ---------------------------------------------------------------------------

    def record_poll(
        self,
        observed_at: datetime | str,
        *,
        clusters: dict[str, Any] | None,
        instances: dict[str, Any] | None,
        instance_types: dict[str, Any] | None,
        instance_details: Mapping[str, dict[str, Any]] | None = None,
        failures: Sequence[tuple[str, str | None, str]] = (),
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
        allow_earlier: bool = False,
        **lists: dict[str, Any] | None,
    ) -> int:
        """Record one successful poll from the raw list responses; return its ``poll_id``.

        ``None`` means that endpoint was not polled: its resources are neither updated nor
        marked gone. The account lists are keywords named as their resource
        (``ingest/resources.py``: ``volumes`` of ``GET /volumes``, ``volume_types``,
        ``ssh_keys``, ``templates``, ``featured_templates``, ``cluster_types``), versioned
        like the rest (an unknown name is a ``TypeError``); ``instance_details`` maps an
        instance id to its ``GET /instances/{id}/info`` response (versioned as its details,
        closed when the instance is gone). ``failures`` lists the ``(endpoint, resource id
        or None, error)`` of requests that failed without failing the poll. Everything is
        validated, redacted and hashed before the one transaction starts. Recording the same
        poll again (same ``observed_at``, same content) returns the existing ``poll_id`` and
        writes nothing; another poll at the same instant, or one older than the newest
        successful poll, is refused with ``StoreError`` (unless ``allow_earlier``: the
        collector's answer to a clock that went backwards, recorded with
        :meth:`add_poll_warning`). A response of the wrong
        shape raises :class:`~shadeanalytics.errors.SchemaError` and writes nothing.
        """
        return storewrite.record_poll(
            self._backend, self._refusals, observed_at, clusters=clusters, instances=instances,
            instance_types=instance_types, instance_details=instance_details, failures=failures,
            started_at=started_at, finished_at=finished_at, allow_earlier=allow_earlier, **lists)

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
        return storewrite.record_failed_poll(self._backend, observed_at, error=error,
                                             endpoints=endpoints, started_at=started_at,
                                             finished_at=finished_at)

    def add_poll_warning(self, poll_id: int, warning: str) -> None:
        """Keep ``warning`` (our own text) with poll ``poll_id``: :meth:`poll_warnings`."""
        storewrite.add_poll_warning(self._backend, poll_id, warning)

    def poll_warnings(self) -> dict[int, str]:
        """The warnings kept with polls (e.g. a clock that went backwards), by ``poll_id``."""
        return storeread.poll_warnings(self._backend)

    def newest_poll(self) -> tuple[int, datetime] | None:
        """``(poll_id, observed_at)`` of the newest successful poll, or None."""
        return storeread.newest_poll(self._backend)

    # -- reading ---------------------------------------------------------------------------

    def poll(self, poll_id: int) -> dict[str, Any]:
        """One row of the poll log as a dict (timestamps as UTC text)."""
        return storeread.poll(self._backend, poll_id)

    def polls(self) -> pd.DataFrame:
        """The poll log, oldest first: one row per run, failed ones included.

        Columns: ``poll_id`` and the counts (``clusters``, ``instances``, ``instance_types``,
        ``added``, ``changed``, ``gone``, ``volumes``, ``details``: instance details fetched,
        ``failures``: requests that failed without failing the poll, ``refused``: records
        quarantined, see :meth:`quarantine`; NA before schema 4) Int64; ``started_at``,
        ``finished_at``, ``observed_at`` datetime64[us, UTC]; ``endpoints``, ``outcome``,
        ``error`` string.
        """
        return storeread.polls(self._backend)

    def request_failures(self) -> pd.DataFrame:
        """Requests that failed without failing their poll (an instance's details, an account
        list): ``poll_id`` Int64, ``observed_at`` datetime64[us, UTC], ``endpoint``,
        ``resource_id``, ``error`` string; oldest first."""
        return storeread.request_failures(self._backend)

    def quarantine(self) -> pd.DataFrame:
        """The records polls refused at the door (never stored), oldest first: ``poll_id``
        Int64, ``observed_at`` datetime64[us, UTC], ``endpoint``, ``kind``, ``resource_id``,
        ``path`` (the JSON path of the refused value in its response), ``reason`` string.
        Never a value: the record spec's words only."""
        return storeread.quarantine(self._backend)

    def details_seen(self) -> dict[str, str]:
        """Instance id -> when its ``/instances/{id}/info`` was last recorded (UTC text), for
        every instance whose details the store holds."""
        return storeread.details_seen(self._backend)

    def last_polled(self, endpoint: str) -> str | None:
        """When ``endpoint`` was last part of a successful poll (UTC text), or None."""
        return storeread.last_polled(self._backend, endpoint)

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
        return storeread.read(self._backend, since=since, until=until,
                              progress_bar=progress_bar, min_versions=_DERIVED_MIN_VERSIONS)

    def read_settled(self, *, progress_bar: bool | None = None) -> SettledTables:
        """The history for billing at its newest poll or later, read without the rows of
        the instances whose billing is over: their bill is kept in the store (``settled.py``)
        and ``bill_fleet`` adds it back, so the ``Bill`` and every view made from it (costs,
        inventory, quality, the month's forecast, the summary) equal those of :meth:`read`.
        The views of history rows themselves (``status_timeline``, ``fleet_over_time``,
        ``instance_lifecycle``) and a bill before the newest poll need :meth:`read`.

        Each read keeps the bill of the instances settled since the last one (when the
        store is writable), so the rows read and billed are those of the open instances.
        """
        return settled.read_settled(self._backend, progress_bar=progress_bar,
                                    min_versions=_DERIVED_MIN_VERSIONS)

    def read_report(self, *, progress_bar: bool | None = None) -> Tables:
        """The history for a report at its newest poll or later (``write_report``): the
        open rows and the kept bill, as :meth:`read_settled`, with the version and timeline
        rows of the settled instances, kept in the store beside their bill
        (``analytics.settledparts.ReportTables``), so that the report's files equal those of
        :meth:`read` while the settled instances' rows are neither read nor decoded. Where no
        parts are kept for a settled instance (the first such read, or the code that derives
        them changed), the whole history (:meth:`read`), which keeps them for the next read.
        """
        return settled.read_report(self._backend, progress_bar=progress_bar,
                                   min_versions=_DERIVED_MIN_VERSIONS)

    def read_summed(self, *, progress_bar: bool | None = None) -> SummedTables | None:
        """For the summary at the newest poll or later: the history without the rows of the
        instances whose billing is over, as :meth:`read_settled`, with the summary's sums of
        their bill in place of their bill (``analytics.settledsums``: kept beside it, made by
        the same helpers), so that ``summary_text`` equals that of :meth:`read` while the
        settled instances' rows are neither read nor decoded. None when no sums of the kept
        bill are kept, or an instance of it was seen again: :meth:`read_settled` then (it
        keeps them). Any other view needs :meth:`read_settled` or :meth:`read`."""
        return settled.read_summed(self._backend, progress_bar=progress_bar,
                                   min_versions=_DERIVED_MIN_VERSIONS)

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check`` (``integrity_check`` less the index contents, in
        about the time of one read of the file): ``"ok"``, or the first problems, one per
        line. A file damaged past reading gives its error as the problem."""
        return self._backend.quick_check()

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"``, or the problems, one per line."""
        return self._backend.integrity_check()

    def stats(self) -> dict[str, Any]:
        """Counts (polls; versions, resources, current and gone resources per kind), file size
        (database and write-ahead log) and the write connection's ``settings``."""
        return storeread.stats(self._backend)

    def copy_from(self, source: Store) -> storecopy.CopyResult:
        """Copy into this store what ``source`` (either backend) holds and it does not yet:
        every poll and version with their ids, failed requests, quarantine, poll warnings and
        alert episodes; in one transaction, resumable (an earlier copy is continued, nothing
        duplicated), then verified (counts and a checksum of both, or ``StoreError``)."""
        return storecopy.copy(source._backend, self._backend)

    # -- alert episodes (shadeanalytics check) ------------------------------------------------

    def alert_episodes(self) -> dict[str, dict[str, str]]:
        """The open alert episodes, by key: ``rule``, ``opened_at``, ``last_seen_at``."""
        return alertstate.alert_episodes(self._backend)

    def update_alert_episodes(self, *, opened: Iterable[tuple[str, str]], seen: Iterable[str],
                              closed: Iterable[str], at: datetime | str) -> None:
        """In one transaction: open an episode per ``(key, rule)`` of ``opened``, mark the
        ``seen`` keys seen at ``at``, and close (delete) the ``closed`` ones."""
        alertstate.update_alert_episodes(self._backend, opened=opened, seen=seen,
                                         closed=closed, at=at)
