"""The history as Hive-partitioned Parquet, for readers beyond pandas (DuckDB, Spark, Trino).

::

    from shadeanalytics.output.export import export_parquet, read_parquet_history

    export_parquet("history.db", "export/")     # export/<table>/day=YYYY-MM-DD/part-0.parquet
    tables = read_parquet_history("export/")    # the same Tables as Store.read()

Layout: one dataset per table of :data:`~shadeanalytics.ingest.schema.TABLES` (``clusters``,
``instances``, the child tables, ``instance_types``, ``polls``), partitioned by the UTC day of
``observed_at`` (``day=2026-03-02``; rows without an ``observed_at`` go to Hive's
``day=__HIVE_DEFAULT_PARTITION__``, which readers give as a NULL day). One file per day.
The rows are those of :meth:`Store.read() <shadeanalytics.live.store.Store.read>`: each version of a
resource at its first poll and at its last sighting, plus ``polls`` (every endpoint of every
poll, ``ok`` false for a failed one).

Columns are the schema's, in its order, and nothing else (an allowlist); ``ip``, ``ssh_user``
and ``ssh_port`` only with ``include_network=True``, as in reports. Types: ``timestamp[us,
tz=UTC]``, ``int64`` (nullable), ``double``, ``bool``, ``string``; ``status`` is a plain
string (readers other than pandas do not keep pandas categoricals), its category order kept in
the field's metadata so that :func:`read_parquet_history` restores the ordered categorical.

Every export replaces the whole dataset of each table (a version's last-sighting row moves to
the day of its newest poll, so older days change too). The new tables are written next to the
old ones (``.<table>.tmp-*``) and each swapped in by two renames, so a killed export leaves
each table whole: the previous export or the new one (:func:`read_parquet_history` and the next
export also find a previous table set aside by a run killed between the two renames). One
export writes to a folder at a time (a lock on the folder itself: no lock file is left in it);
an existing table folder that does not look like an export is never replaced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._common import progress
from .._files import atomic_write, fsync_dir
from ..errors import StoreError
from ..ingest.schema import STATUSES, TABLES, TIMESTAMP, Column, empty_frame, status_dtype
from ..ingest.tables import Tables
from ..live.locks import directory_lock
from .report import NETWORK_COLUMNS

__all__ = ["DEFAULT_PARTITION", "FORMAT_VERSION", "export_parquet", "read_parquet_history",
           "write_parquet"]

#: Bumped when the layout or the column types change; kept in every file's metadata.
FORMAT_VERSION = "1"
#: Hive's partition of rows whose key is NULL (``observed_at`` NaT).
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"

_MISSING_PYARROW = "Parquet export needs pyarrow: pip install 'shadeanalytics[parquet]'"
_STATUS = "category (ordered)"
_CATEGORIES_KEY = b"shadeanalytics.categories"
_DAY = re.compile(r"day=(\d{4}-\d{2}-\d{2}|" + DEFAULT_PARTITION + ")")
_PART = re.compile(r"part-\d+\.parquet")
_US_PER_DAY = 86_400_000_000


def _pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a ``StoreError`` saying how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise StoreError(_MISSING_PYARROW) from None
    return pa, pq


def _arrow_type(pa: Any, column: Column) -> Any:
    return {
        "string": pa.string(),
        "Int64": pa.int64(),
        "float64": pa.float64(),
        "boolean": pa.bool_(),
        TIMESTAMP: pa.timestamp("us", tz="UTC"),
        _STATUS: pa.string(),
    }[column.dtype]


def _columns(table: str, include_network: bool) -> list[Column]:
    return [c for c in TABLES[table] if include_network or c.name not in NETWORK_COLUMNS]


# -- writing ------------------------------------------------------------------------------------


def export_parquet(
    store_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    include_network: bool = False,
    compression: str = "zstd",
) -> list[Path]:
    """Export the history store at ``store_path`` to ``out_dir``; return the files written.

    ``since`` / ``until`` (inclusive) export only the polls in that window, as
    :meth:`Store.read() <shadeanalytics.live.store.Store.read>` reads them; a window without
    a poll is a ``StoreError`` (an earlier export in ``out_dir`` is left as it was). A missing
    store is a ``StoreError`` naming it (nothing is created). See :func:`write_parquet` for
    the rest.
    """
    _pyarrow()  # fail before reading the whole history
    from ..live.store import Store, utc_text

    if since is not None and until is not None and utc_text(since) > utc_text(until):
        raise ValueError("since is later than until: nothing to export (out_dir is left as "
                         "it was)")

    with Store(store_path, create=False) as store:
        tables = store.read(since=since, until=until)
    if (since is not None or until is not None) and tables.polls.empty:
        # an empty window is a mistake (a --since after the last poll), not an empty history:
        # replacing an earlier export with nothing would destroy it
        raise StoreError(f"{store.path}: no poll between since and "
                         "until: nothing to export (out_dir is left as it was)")
    return write_parquet(tables, out_dir, include_network=include_network,
                         compression=compression)


def write_parquet(
    tables: Tables,
    out_dir: str | os.PathLike[str],
    *,
    include_network: bool = False,
    compression: str = "zstd",
) -> list[Path]:
    """Write ``tables`` as Hive-partitioned Parquet under ``out_dir``; return the files, sorted.

    Any ``Tables`` works (``Store.read()``, or ``shadeanalytics.read()`` of dated snapshots).
    Each table's folder is replaced whole; an empty table is an empty folder. ``compression``
    is any codec pyarrow knows (``zstd``, ``snappy``, ``none``...). Raises ``StoreError`` when
    pyarrow is missing, when ``out_dir`` is a file, or when a table folder there is not an
    export; ``LockedError`` when another export is writing to ``out_dir``.
    """
    pa, pq = _pyarrow()
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    rows = sum(len(frame) for _, frame in tables.frames())
    with _export_lock(out), progress(rows, "exporting", unit=" rows") as bar:
        _recover(out)
        for name in TABLES:
            target = out / name
            if target.exists() and not _looks_like_export(target):
                raise StoreError(f"{target}: exists and is not a shadeanalytics Parquet export; "
                                 "not replacing it (choose another --out)")
        written: list[Path] = []
        staged: dict[str, Path] = {}
        try:
            for name in TABLES:
                staged[name] = _fresh_folder(out, f".{name}.tmp-")
                staged[name].mkdir()
                frame = tables.table(name)
                arrow = _to_arrow(pa, name, frame, include_network)
                order, days = _days(frame)
                # rows day by day (one take, none when already so): each day is then a slice
                arrow = arrow.combine_chunks()
                if (order != np.arange(len(order))).any():
                    arrow = arrow.take(order)
                for day, start, stop in days:
                    folder = staged[name] / f"day={day}"
                    folder.mkdir()
                    sink = pa.BufferOutputStream()
                    pq.write_table(arrow.slice(start, stop - start), sink,
                                   compression=compression)
                    atomic_write(folder / "part-0.parquet", sink.getvalue().to_pybytes(),
                                 private=include_network)
                    fsync_dir(folder)
                    written.append(out / name / f"day={day}" / "part-0.parquet")
                    bar.update(stop - start)
                fsync_dir(staged[name])
            # every table is staged: swap them in one after the other (a few renames)
            for name, folder in staged.items():
                _swap(out, name, folder)
        finally:
            for folder in staged.values():
                shutil.rmtree(folder, ignore_errors=True)  # left only when something failed
        return sorted(written)


def _to_arrow(pa: Any, name: str, frame: pd.DataFrame, include_network: bool) -> Any:
    """The schema's columns of ``frame`` (and only those) as an Arrow table."""
    columns = _columns(name, include_network)
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise ValueError(f"the {name} table is missing the column(s) {', '.join(missing)}")
    fields, arrays = [], []
    for column in columns:
        values = frame[column.name]
        metadata = None
        if column.dtype == _STATUS:
            dtype = values.dtype
            categories = ([str(c) for c in dtype.categories]
                          if isinstance(dtype, pd.CategoricalDtype) else list(STATUSES))
            metadata = {_CATEGORIES_KEY: json.dumps(categories).encode()}
            values = values.astype("string")
        elif column.dtype == TIMESTAMP:
            values = values.dt.tz_convert("UTC").dt.as_unit("us")
        arrow_type = _arrow_type(pa, column)
        arrays.append(pa.array(values, type=arrow_type, from_pandas=True))
        fields.append(pa.field(column.name, arrow_type, nullable=True, metadata=metadata))
    schema = pa.schema(fields, metadata={b"shadeanalytics.table": name.encode(),
                                         b"shadeanalytics.format": FORMAT_VERSION.encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


def _days(frame: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Rows grouped by the UTC day of ``observed_at``: ``(order, [(day, start, stop)...])``.

    ``order`` lists the row positions day by day (rows keep their order within a day), and
    ``order[start:stop]`` are the rows of ``day``; days are in order, undated rows last.
    """
    us = pd.DatetimeIndex(frame["observed_at"]).tz_convert("UTC").as_unit("us").asi8
    undated = np.iinfo(np.int64).max
    day = np.where(us == np.iinfo(np.int64).min, undated, us // _US_PER_DAY)  # NaT: last
    order = np.argsort(day, kind="stable")
    keys, starts = np.unique(day[order], return_index=True)
    stops = [*starts[1:].tolist(), len(order)] if len(order) else []
    labels = [DEFAULT_PARTITION if key == undated else str(np.datetime64(int(key), "D"))
              for key in keys]
    return order, list(zip(labels, starts.tolist(), stops, strict=True))


def _fresh_folder(out: Path, prefix: str) -> Path:
    """An unused name in ``out`` (folders made under it follow the umask, as exports should)."""
    return out / f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _swap(out: Path, name: str, staged: Path) -> None:
    """Put ``staged`` in place of ``out/name``; the old folder is set aside, then removed."""
    target = out / name
    aside = None
    if target.exists():
        aside = _fresh_folder(out, f".{name}.old-")
        os.rename(target, aside)
    os.rename(staged, target)
    fsync_dir(out)
    if aside is not None:
        shutil.rmtree(aside)


def _recover(out: Path) -> None:
    """Undo what a killed export left: restore a table set aside, remove staged folders."""
    for name in TABLES:
        target = out / name
        asides = sorted(out.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
        if not target.exists() and asides:
            os.rename(asides.pop(), target)
        for leftover in [*asides, *out.glob(f".{name}.tmp-*")]:
            shutil.rmtree(leftover, ignore_errors=True)


def _looks_like_export(folder: Path) -> bool:
    """``folder`` holds only ``day=.../part-N.parquet`` files: safe to replace."""
    if not folder.is_dir():
        return False
    for day in folder.iterdir():
        if not (day.is_dir() and _DAY.fullmatch(day.name)):
            return False
        if not all(f.is_file() and _PART.fullmatch(f.name) for f in day.iterdir()):
            return False
    return True


def _export_lock(out: Path) -> AbstractContextManager[None]:
    return directory_lock(out, f"{out}: another export is writing there (it holds the folder's "
                               "lock)")


# -- reading ------------------------------------------------------------------------------------


def read_parquet_history(path: str | os.PathLike[str]) -> Tables:
    """The ``Tables`` of an export written by :func:`export_parquet` or :func:`write_parquet`.

    Columns come back with the schema's dtypes (``status`` as the ordered categorical, with any
    status the API added since as a category after ``deleted``); network columns the export
    left out are NA. Rows come back in day order, in the order they were written within a day.
    A missing table folder reads as an empty table, but a folder with none of them is a
    ``StoreError`` naming it.
    """
    pa, pq = _pyarrow()
    root = Path(path)
    if not root.is_dir():
        raise StoreError(f"{root}: no such export folder")
    folders = {name: _table_folder(root, name) for name in TABLES}
    if all(folder is None for folder in folders.values()):
        raise StoreError(f"{root}: not a shadeanalytics Parquet export (no table folders "
                         f"such as {root / 'instances'})")
    return Tables(**{name: _read_table(pa, pq, name, folder)
                     for name, folder in folders.items()})


def _table_folder(root: Path, name: str) -> Path | None:
    target = root / name
    if target.is_dir():
        return target
    # an export killed between its two renames set the previous table aside
    asides = sorted(root.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
    return asides[-1] if asides else None


def _categories(field: Any) -> list[str]:
    """The status categories an export kept in the field's metadata (none if unreadable)."""
    try:
        known = json.loads((field.metadata or {}).get(_CATEGORIES_KEY, b"[]"))
    except ValueError:
        return []
    return [c for c in known if isinstance(c, str)] if isinstance(known, list) else []


def _read_table(pa: Any, pq: Any, name: str, folder: Path | None) -> pd.DataFrame:
    files = [] if folder is None else sorted(
        f for day in folder.iterdir() if day.is_dir() and _DAY.fullmatch(day.name)
        for f in day.iterdir() if _PART.fullmatch(f.name))
    if not files:
        return empty_frame(name)
    columns = TABLES[name]
    parts, categories = [], list(STATUSES)
    for file in files:
        try:
            part = pq.read_table(file)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"{file}: cannot read ({exc})") from None
        arrays = []
        for column in columns:
            arrow_type = _arrow_type(pa, column)
            index = part.schema.get_field_index(column.name)
            if index < 0:
                if column.name not in NETWORK_COLUMNS:
                    raise StoreError(f"{file}: has no column {column.name}")
                arrays.append(pa.nulls(part.num_rows, type=arrow_type))
                continue
            field = part.schema.field(index)
            if column.dtype == _STATUS:
                categories += [c for c in _categories(field) if c not in categories]
            try:
                arrays.append(part.column(index).cast(arrow_type))
            except pa.ArrowException as exc:
                raise StoreError(f"{file}: column {column.name} is {field.type}, expected "
                                 f"{arrow_type} ({exc})") from None
        parts.append(pa.Table.from_arrays(arrays, names=[c.name for c in columns]))
    mapper = {pa.string(): pd.StringDtype(), pa.int64(): pd.Int64Dtype(),
              pa.bool_(): pd.BooleanDtype()}.get
    frame = pa.concat_tables(parts).to_pandas(types_mapper=mapper)
    for column in columns:
        if column.dtype == _STATUS:
            values = frame[column.name]
            unknown = sorted(set(values.dropna()) - set(categories))
            extra = tuple(c for c in [*categories, *unknown] if c not in STATUSES)
            frame[column.name] = values.astype(status_dtype(extra))
        elif column.dtype == TIMESTAMP:
            frame[column.name] = frame[column.name].dt.as_unit("us")
        elif column.dtype == "float64":
            frame[column.name] = frame[column.name].astype("float64")
    return frame
