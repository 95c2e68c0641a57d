"""Raw column lists -> typed DataFrames, built once per table and converted vectorized."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .arrowrows import pyarrow_or_none, rows_to_arrow, struct_type, to_rows
from .normalize import (
    ACCOUNT_FIELDS,
    CHILD_FIELDS,
    CLUSTER_FIELDS,
    DETAIL_FIELDS,
    INSTANCE_FIELDS,
    INSTANCE_TYPE_FIELDS,
    TEMPLATE_CHILD_FIELDS,
    Findings,
    Normalized,
    general_path,
    member_path,
    type_name,
)
from .resources import BY_NAME, BY_TABLE, RESOURCES
from .schema import PRE_ACTIVE, STATUSES, TABLES, Column, empty_frame

__all__ = ["Tables", "build_tables"]

_CLUSTERS, _INSTANCES, _VOLUMES = (BY_NAME[name].endpoint
                                   for name in ("clusters", "instances", "volumes"))

_NONE = type(None)
CHILD_TABLES = tuple(CHILD_FIELDS)
#: child tables that belong to an instance's details (``/instances/{id}/info``)
_DETAIL_CHILDREN = ("instance_volumes", "instance_envs")


@dataclass(frozen=True, init=False)
class Tables:
    """The DataFrames of one load: clusters, instances, their child tables, instance types,
    and the rest of the account (volumes, volume types, SSH keys, templates, cluster types).

    Every row carries ``observed_at`` (when its response was captured); ``polls`` lists the
    dated list responses (complete polls of an endpoint). ``warnings`` lists what
    loaded with a remark (one line per problem and JSON path); ``skipped`` counts records
    dropped under ``errors="skip"``.

    Every table of the schema (``schema.TABLES``) is one: the tables above are attributes, a
    table of a resource declared since (``ingest/resources.py``) is read with
    :meth:`table` (and listed by :meth:`frames`); built without it, it is empty.
    """

    clusters: pd.DataFrame
    instances: pd.DataFrame
    instance_tags: pd.DataFrame
    port_mappings: pd.DataFrame
    docker_port_mappings: pd.DataFrame
    docker_volume_mounts: pd.DataFrame
    docker_envs: pd.DataFrame
    instance_types: pd.DataFrame
    instance_volumes: pd.DataFrame
    instance_envs: pd.DataFrame
    volumes: pd.DataFrame
    volume_types: pd.DataFrame
    ssh_keys: pd.DataFrame
    templates: pd.DataFrame
    template_tags: pd.DataFrame
    template_envs: pd.DataFrame
    cluster_types: pd.DataFrame
    polls: pd.DataFrame
    warnings: tuple[str, ...] = ()
    skipped: int = 0
    #: For the result of ``latest()``: the history it was reduced from. The billing model
    #: bills that history (only it says when an instance entered ``deleting`` or vanished).
    history: Tables | None = field(default=None, repr=False, compare=False)
    #: the tables that are no attribute above, by name (:meth:`table` reads them)
    more: Mapping[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def __init__(self, *, warnings: tuple[str, ...] = (), skipped: int = 0,
                 history: Tables | None = None, more: Mapping[str, pd.DataFrame] | None = None,
                 **frames: pd.DataFrame) -> None:
        unknown = sorted(set(frames) - set(TABLES))
        if unknown:
            raise TypeError(f"Tables() got an unexpected keyword argument {unknown[0]!r}")
        missing = [name for name in TABLES if name in _ATTRIBUTES and name not in frames]
        if missing:
            raise TypeError(f"Tables() missing a keyword argument: {missing[0]!r}")
        extra = dict(more or {})
        for name, frame in frames.items():
            if name in _ATTRIBUTES:
                object.__setattr__(self, name, frame)
            else:
                extra[name] = frame
        for name in TABLES:
            if name not in _ATTRIBUTES and name not in extra:
                extra[name] = empty_frame(name)
        object.__setattr__(self, "warnings", warnings)
        object.__setattr__(self, "skipped", skipped)
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "more", extra)

    @classmethod
    def empty(cls) -> Tables:
        """Tables with every column and dtype and no rows."""
        return cls(**{name: empty_frame(name) for name in TABLES})

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name`` (any table of the schema: ``tables.table("volumes")`` is
        ``tables.volumes``); ``KeyError`` for a name the schema has not."""
        if name in _ATTRIBUTES:
            frame: pd.DataFrame = getattr(self, name)
            return frame
        return self.more[name]

    def frames(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """``(name, DataFrame)`` for every table, in schema order."""
        for name in TABLES:
            yield name, self.table(name)

    def latest(self) -> Tables:
        """The newest state of every resource of the account.

        For each id, the rows of its newest ``observed_at`` are kept (NaT counts as oldest), so
        an instance listed in two clusters in the same snapshot keeps both rows. Child tables
        follow their instances (templates). The API lists no deleted resource, so one whose
        newest row is older than a later successful poll of the endpoint that listed it
        (``/clusters`` for clusters and their members, ``/instances`` for standalone instances)
        has vanished: its status becomes ``deleted`` (its ``observed_at`` stays the last
        sighting); a volume that vanished from a later successful ``/volumes`` poll gets
        ``gone`` True. The billing model applies the same rule; the analytics helpers given
        this result bill the whole history it came from (``history``), so they give the same
        figures as for ``self``.

        An instance's detail columns (from ``/instances/{id}/info``, polled less often than
        the lists) are those of its newest row that has them: a newer list row without
        details takes them over, with ``details_observed_at`` saying when they were seen, and
        ``instance_volumes`` / ``instance_envs`` follow.
        """
        last_ok = self.polls[self.polls["ok"].fillna(False).to_numpy(dtype=bool)] \
            .groupby("endpoint")["observed_at"].max()
        instances = _newest(self.instances, ["instance_id"])
        endpoint = np.where(instances["cluster_id"].isna(), _INSTANCES, _CLUSTERS)
        instances = _mark_vanished(instances, endpoint, last_ok)
        clusters = _newest(self.clusters, ["cluster_id"])
        clusters = _mark_vanished(clusters, np.full(len(clusters), _CLUSTERS), last_ok)
        instances, detail_children = _carry_details(self, instances)
        keys = instances[["instance_id", "observed_at"]].drop_duplicates()
        children = {  # (an empty table has no row to keep: no join)
            name: _rows_of(getattr(self, name), keys, ["instance_id", "observed_at"])
            for name in CHILD_TABLES if name not in _DETAIL_CHILDREN
        }
        volumes = _newest(self.volumes, ["volume_id"])
        if not volumes.empty and _VOLUMES in last_ok.index:
            gone = (volumes["observed_at"] < last_ok[_VOLUMES]).fillna(False)
            volumes = volumes.assign(gone=pd.array(gone.to_numpy(dtype=bool), dtype="boolean"))
        templates = _newest(self.templates, ["template_id"])
        template_keys = templates[["template_id", "observed_at"]].drop_duplicates()
        return replace(
            self,
            history=self.history or self,
            clusters=clusters,
            instances=instances,
            instance_types=_newest(
                self.instance_types, ["cloud", "shade_instance_type", "region", "rental_type"]
            ),
            **children,
            **detail_children,
            volumes=volumes,
            volume_types=_newest(self.volume_types, ["cloud", "region"]),
            ssh_keys=_newest(self.ssh_keys, ["ssh_key_id"]),
            templates=templates,
            template_tags=_rows_of(self.template_tags, template_keys,
                                   ["template_id", "observed_at"]),
            template_envs=_rows_of(self.template_envs, template_keys,
                                   ["template_id", "observed_at"]),
            cluster_types=_newest(self.cluster_types, ["cloud", "shade_instance_type",
                                                       "num_instances", "region"]),
            # a resource declared since: the newest rows of each key (its row key)
            more={name: _newest(frame, [k for k in BY_TABLE[name].row_key if k != "observed_at"])
                  if name in BY_TABLE and BY_TABLE[name].row_key else frame
                  for name, frame in self.more.items()},
        )

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}={len(df)}" for name, df in self.frames())
        extra = f", warnings={len(self.warnings)}" if self.warnings else ""
        extra += f", skipped={self.skipped}" if self.skipped else ""
        return f"Tables({shapes}{extra})"


#: the tables that are attributes of :class:`Tables`
_ATTRIBUTES = frozenset(f.name for f in dataclass_fields(Tables)) & frozenset(TABLES)


def _carry_details(tables: Tables, latest: pd.DataFrame
                   ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """``latest`` instance rows with the details of each instance's newest detailed row, and
    the detail child tables keyed to those rows."""
    history = tables.instances
    with_details = history["has_details"].fillna(False).to_numpy(dtype=bool)
    if with_details.any():  # (no row has details: nothing to carry, no frame to filter)
        detailed = history[with_details]
        newest = detailed.sort_values("observed_at", na_position="first", kind="stable") \
            .drop_duplicates("instance_id", keep="last").set_index("instance_id")
        lacking = ~latest["has_details"].fillna(False).to_numpy(dtype=bool) \
            & latest["instance_id"].isin(newest.index).to_numpy(dtype=bool)
        if lacking.any():
            latest = latest.copy()
            ids = latest.loc[lacking, "instance_id"]
            for column in (*DETAIL_FIELDS, "has_details", "details_observed_at"):
                filled = pd.Series(newest.loc[ids, column].array, index=latest.index[lacking])
                latest[column] = latest[column].where(~lacking, filled)
    children = {}
    keys: pd.DataFrame | None = None
    for name in _DETAIL_CHILDREN:
        if getattr(tables, name).empty:  # no row to keep: the table as it is
            children[name] = getattr(tables, name)
            continue
        if keys is None:
            rows = latest[latest["has_details"].fillna(False).to_numpy(dtype=bool)]
            keys = rows[["instance_id", "observed_at", "details_observed_at"]].drop_duplicates()
        child = getattr(tables, name).rename(columns={"observed_at": "details_observed_at"})
        merged = child.merge(keys, on=["instance_id", "details_observed_at"])
        children[name] = merged[[c.name for c in TABLES[name]]].reset_index(drop=True)
    return latest, children


def _rows_of(child: pd.DataFrame, keys: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    """The rows of ``child`` whose ``on`` columns are a row of ``keys`` (an inner join);
    an empty ``child`` as it is (the join of no row is the table itself)."""
    return child if child.empty else child.merge(keys, on=on)


def _mark_vanished(df: pd.DataFrame, endpoint: np.ndarray, last_ok: pd.Series) -> pd.DataFrame:
    """Rows last seen before a later successful poll of their endpoint: status ``deleted``."""
    if df.empty or last_ok.empty:
        return df
    newest_poll = pd.Series(endpoint, index=df.index).map(last_ok)
    vanished = (df["observed_at"] < newest_poll) & (df["status"] != "deleted")
    vanished = vanished.fillna(False).to_numpy(dtype=bool)
    if not vanished.any():
        return df
    df = df.copy()
    df.loc[vanished, "status"] = "deleted"
    return df


def _newest(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    if df.empty:
        return df
    newest = df.groupby(key, dropna=False, sort=False)["observed_at"].transform("max")
    obs = df["observed_at"]
    keep = (obs == newest) | (newest.isna() & obs.isna())
    return df[keep.to_numpy()].reset_index(drop=True)


# -- building ---------------------------------------------------------------------------------


class _Columns(dict[str, list[Any]]):
    """The columns of a table's rows, each built when first read: a table is converted
    column by column, so that only the rows and a few columns' lists are alive at a time,
    never every column's list at once (a load's peak memory)."""

    def __init__(self, rows: list[tuple[Any, ...]], names: tuple[str, ...],
                 blocks: list[Any] | None = None) -> None:
        """``blocks``: the first rows, as Arrow struct arrays (``Normalized.instance_blocks``),
        before ``rows``."""
        super().__init__()
        self.rows = rows
        self.blocks = blocks or []
        self._index = {name: k for k, name in enumerate(names)}

    def __missing__(self, name: str) -> list[Any]:
        k = self._index[name]
        column: list[Any] = []
        for block in self.blocks:
            column += block.field(k).to_pylist()
        column += [row[k] for row in self.rows]
        self[name] = column
        return column

    def materialize(self) -> list[tuple[Any, ...]]:
        """Every row as a tuple (the blocks' too): what reads whole rows (rarely) reads."""
        if self.blocks:
            self.rows[:0] = [row for block in self.blocks for row in to_rows(block)]
            self.blocks = []
        return self.rows

    def names(self) -> list[str]:
        return list(self._index)


class _Table:
    """One table under construction: raw columns, where each row came from, rows to drop."""

    def __init__(self, name: str, rows: list[tuple[Any, ...]], names: tuple[str, ...],
                 origins: Callable[[int], tuple[str, str]], id_field: str | None,
                 findings: Findings, columns: list[Any] | None = None,
                 blocks: list[Any] | None = None) -> None:
        """``columns``: the raw columns of a child table (lists, or numpy arrays); ``blocks``:
        the first rows as Arrow (``Normalized.instance_blocks``)."""
        self.name = name
        if columns is not None:  # already column by column (a child table)
            self.n = len(columns[0])
            self.raw: dict[str, list[Any]] = dict(zip(names, columns, strict=True))
        else:
            self.n = len(rows) + sum(map(len, blocks or ()))
            self.raw = _Columns(rows, names, blocks)
        self.origin = origins
        self.id_field = id_field
        #: the id of a row's record, when the table has no id column of its own
        self.rid_of: Callable[[int], Any] | None = None
        self.findings = findings
        self.drop: set[int] = set()
        #: rows whose missing required values are expected, by column source (a source
        #: ``configuration`` covers every ``configuration.*`` column)
        self.quiet: dict[str, set[int]] = {}

    def quiet_rows(self, source: str) -> set[int]:
        """Rows where a missing ``source`` value is normal (no warning)."""
        rows = self.quiet.get(source, set())
        if source.startswith("configuration."):
            rows = rows | self.quiet.get("configuration", set())
        return rows

    def where(self, row: int, source: str) -> tuple[str, str, str, Any]:
        """(file, JSON path, generalised path, resource id) of ``source`` in ``row``."""
        file, path = self.origin(row)
        if "[]" in source:  # a value inside a list entry: the origin is that entry
            source = source.split("[]", 1)[1].lstrip(".")
        elif self.name == "instance_types":  # a field of the type, not of its availability
            path = _AVAILABILITY_ENTRY.sub("", path)
        full = f"{path}.{source}" if source else path
        rid = self.rid_of(row) if self.rid_of is not None \
            else self.raw[self.id_field][row] if self.id_field else None
        return file, full, general_path(full), rid

    def bad(self, row: int, source: str, problem: str) -> None:
        file, path, general, rid = self.where(row, source)
        self.findings.bad(problem, general, file, path, rid)
        self.drop.add(row)

    def warn(self, row: int, source: str, problem: str) -> None:
        file, path, general, rid = self.where(row, source)
        self.findings.warn(problem, general, file, path, rid)


_AVAILABILITY_ENTRY = re.compile(r"\.availability\[\d+\]$")
_FAST_TYPES: dict[str, frozenset[type]] = {
    "str": frozenset({str, _NONE}),
    "int": frozenset({int, _NONE}),
    "cents": frozenset({int, _NONE}),
    "bool": frozenset({bool, _NONE}),
    "time": frozenset({str, _NONE}),
    "time_or_na": frozenset({str, _NONE}),
    "status": frozenset({str, _NONE}),
    "dollars": frozenset({str, _NONE}),
}
_INTEGER_TEXT = re.compile(r"\s*-?\d+\s*")
_STATUS_TEXT = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _clean(kind: str, values: list[Any], table: _Table, source: str) -> list[Any]:
    """Values of the expected Python types: coerce what is safe (with a warning), else bad."""
    out = list(values)
    for i, v in enumerate(values):
        t = type(v)
        if t in _FAST_TYPES[kind]:
            continue
        out[i] = None
        if kind in ("int", "cents") and t is float and v.is_integer():
            out[i] = int(v)
        elif kind in ("int", "cents") and t is str and _INTEGER_TEXT.fullmatch(v):
            out[i] = int(v)
            table.warn(i, source, "a numeric string where the API promises an integer; loaded "
                       "as a number")
        elif kind == "str" and t in (int, float, bool):
            out[i] = str(v)
            table.warn(i, source, f"found {type_name(v)}, expected a string; loaded as text")
        elif kind == "dollars" and t in (int, float):
            out[i] = v
        elif kind == "time_or_na":
            table.warn(i, source, f"found {type_name(v)}, expected {_EXPECTED[kind]}; loaded "
                       "as NaT")
        else:
            table.bad(i, source, f"found {type_name(v)}, expected {_EXPECTED[kind]}")
    return out


_EXPECTED = {
    "str": "a string", "int": "an integer", "cents": "an integer number of cents",
    "bool": "a boolean", "time": "an RFC 3339 timestamp string",
    "time_or_na": "an RFC 3339 timestamp string", "status": "a status string",
    "dollars": "a dollar amount string",
}


_INT64_MAX = 2**63 - 1


def _in_range(values: list[Any], table: _Table, source: str) -> list[Any]:
    """Integers that fit an Int64 column; the others are bad records."""
    out = list(values)
    for i, v in enumerate(values):
        if v is not None and not -_INT64_MAX <= v <= _INT64_MAX:
            out[i] = None
            table.bad(i, source, "an integer out of range")
    return out


def _to_time(values: list[Any], table: _Table, source: str,
             soft: bool = False) -> pd.DatetimeIndex:
    """``soft``: a value that is no timestamp loads as NaT with a warning, not a bad record."""
    if len(values) > 1 and values.count(values[0]) == len(values):
        # one value in every row (the snapshot time of one response, or no time): parsed once
        try:
            one = pd.to_datetime(values[:1], utc=True, format="ISO8601").as_unit("us")
        except (ValueError, OverflowError, TypeError):
            pass  # every row is bad: reported row by row below
        else:
            return pd.DatetimeIndex(np.repeat(one.tz_convert(None).to_numpy(), len(values)),
                                    tz="UTC")
    pa = _arrow()
    if pa is not None:
        # RFC 3339 text as the API writes it: parsed by pyarrow (to the same instants); what
        # it refuses (a missing offset, a space, a date only...) goes to pandas' ISO 8601 parser
        try:
            parsed = pa.compute.cast(pa.array(values, pa.string()),
                                     pa.timestamp("us", tz="UTC"))
        except (pa.ArrowException, UnicodeError):
            pass
        else:
            return pd.DatetimeIndex(parsed.to_pandas(), tz="UTC")
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601").as_unit("us")
    except (ValueError, OverflowError, TypeError):
        pass
    clean = list(values)
    for i, v in enumerate(values):
        if v is not None and v != "" and not _is_timestamp(v):
            # reported outside any except block: the parser's error text holds the value
            clean[i] = None
            if soft:
                table.warn(i, source, "not an RFC 3339 timestamp; loaded as NaT")
            else:
                table.bad(i, source, "not an RFC 3339 timestamp")
    return pd.to_datetime(clean, utc=True, format="ISO8601").as_unit("us")


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
        pd.Timestamp(text)
    except (ValueError, OverflowError):
        return False
    return True


def to_dollars(values: list[Any], table: _Table, source: str) -> np.ndarray:
    pa = _arrow()
    if pa is not None:
        # plain numbers in text (the instances' cost_estimate): parsed by pyarrow, correctly
        # rounded as float() is; anything else (a "$", a comma, a non-finite value, a
        # number that is not text) the loop below reads and reports
        # (then the loop's own reading of "$1,234.50" - no "$", no comma, no surrounding
        # space - done by pyarrow too, as the stored clusters' estimates are written)
        compute = pa.compute
        for clean in (lambda a: a, lambda a: compute.utf8_trim_whitespace(
                compute.replace_substring(compute.replace_substring(a, "$", ""), ",", ""))):
            try:
                out = np.array(compute.cast(clean(pa.array(values, pa.string())), pa.float64())
                               .to_numpy(zero_copy_only=False))  # a writable copy
            except (pa.ArrowException, UnicodeError, TypeError):
                continue
            if np.isfinite(out).sum() == len(values) - values.count(None):
                return out
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue
        if type(v) is not str:
            number = float(v)
        else:
            try:
                number = float(v)
            except ValueError:
                text = v.replace("$", "").replace(",", "").strip()
                if not text:
                    continue
                try:
                    number = float(text)
                except ValueError:
                    table.warn(i, source, "not a dollar amount; loaded as NA")
                    continue
        if math.isfinite(number):
            out[i] = number
        else:
            table.warn(i, source, "not a finite dollar amount; loaded as NA")
    return out


def _to_status(values: list[Any], table: _Table, source: str) -> pd.Categorical:
    unknown = sorted(set(values) - set(STATUSES) - {None})
    for value in unknown:
        _unknown_status(table, values.index(value), source, value)
    return pd.Categorical(values, categories=[*STATUSES, *unknown], ordered=True)


def _unknown_status(table: _Table, row: int, source: str, value: str) -> None:
    label = f"'{value}'" if _STATUS_TEXT.fullmatch(value) else "a status value"
    table.warn(row, source, f"unknown status {label}; added as a new category after "
                            f"'{STATUSES[-1]}'")


def _convert(column: Column, values: list[Any], table: _Table) -> Any:
    kind = column.parse
    source = column.source
    if not set(map(type, values)) <= _FAST_TYPES[kind]:
        values = _clean(kind, values, table, source)
    if column.required and None in values:
        quiet = table.quiet_rows(source)
        for i, v in enumerate(values):
            if v is None and i not in table.drop and i not in quiet:
                table.warn(i, source, "missing or null, though the API promises a value; "
                           "loaded as NA")
    if kind == "str":
        return _strings(values)
    if kind in ("int", "cents"):
        try:
            return _ints(values)
        except (OverflowError, TypeError, ValueError):
            return pd.array(_in_range(values, table, source), dtype="Int64")
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    if kind in ("time", "time_or_na"):
        return _to_time(values, table, source, soft=kind == "time_or_na")
    if kind == "dollars":
        return to_dollars(values, table, source)
    return _to_status(values, table, source)


def _arrow() -> Any:
    """pyarrow when installed, else None (``arrowrows.pyarrow_or_none``)."""
    return pyarrow_or_none()


def _strings(values: list[Any]) -> Any:
    """A ``string`` array of ``values`` (str or None)."""
    pa = _arrow()
    if pa is not None and pd.StringDtype().storage == "pyarrow":
        try:
            return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string()))
        except (pa.ArrowException, UnicodeError):  # pd.array says what is wrong
            pass
    return pd.array(values, dtype="string")


def _ints(values: list[Any]) -> Any:
    """An ``Int64`` array of ``values`` (int or None); OverflowError past 64 bits."""
    pa = _arrow()
    if pa is None:
        return pd.array(values, dtype="Int64")
    try:
        array = pa.array(values, type=pa.int64())
    except pa.ArrowException:
        return pd.array(values, dtype="Int64")
    return pd.arrays.IntegerArray(array.fill_null(0).to_numpy().copy(),  # a writable copy
                                  array.is_null().to_numpy(zero_copy_only=False))


def _usd(cents: pd.api.extensions.ExtensionArray) -> np.ndarray:
    return cents.to_numpy(dtype="float64", na_value=np.nan) / 100


def _frame(table: _Table, extra: dict[str, Column] | None = None) -> dict[str, Any]:
    """Convert every raw column that the schema (or ``extra``) describes."""
    out: dict[str, Any] = {}
    described = {c.name: c for c in TABLES.get(table.name, ())} | (extra or {})
    arrow = _arrow_columns(table, described)
    for name in (table.raw.names() if type(table.raw) is _Columns else list(table.raw)):
        column = described.get(name)
        if name in arrow:
            if name == "observed_at":
                out[name] = _arrow_time(arrow.pop(name), table, "")
            elif column is not None:
                out[name] = _from_arrow(column, arrow.pop(name), table)
            else:
                del arrow[name]
            if name != table.id_field and name not in _KEEP_RAW:
                table.raw[name] = []  # never built: nothing reads it
            else:
                table.raw[name]  # built while the rows are there: read later
            continue
        values = table.raw[name]
        if name == "observed_at":
            out[name] = _to_time(values, table, "")
        elif column is None:
            continue
        elif column.parse == "derived":
            out[name] = _strings(values) if column.dtype == "string" \
                else pd.array(values, dtype=column.dtype)
        else:
            out[name] = _convert(column, values, table)
        if name != table.id_field and name not in _KEEP_RAW:
            table.raw[name] = []  # converted: its Python objects can go
    return out


def _arrow_columns(table: _Table, described: dict[str, Column]) -> dict[str, Any]:
    """The raw columns of ``table``'s rows as Arrow arrays, converted in one pass (no Python
    list per column, no check of each value's type in Python; ``arrowrows``), or ``{}``:
    pyarrow missing, a table not in ``ARROW_TABLES``, or a value of an unexpected type
    anywhere (an object where text belongs, a string where a number belongs, an integer past
    64 bits...): then every column takes the general conversion, which reports each such
    value by its path. Rows a split walk converted already (``_Columns.blocks``) are not
    converted again.

    Every value pyarrow accepts here is one the general conversion passes unchanged (a
    float with an integer value in an integer column is the exception: both load it as
    that integer, without a warning)."""
    pa = _arrow()
    raw = table.raw
    if type(raw) is not _Columns or not (raw.rows or raw.blocks):
        return {}
    struct = struct_type(table.name, raw.names(), described)
    if struct is None:
        return {}
    if any(block.type != struct for block in raw.blocks):  # (rows of another spec's)
        raw.materialize()
    parts = list(raw.blocks)
    if raw.rows:
        parts.append(rows_to_arrow(raw.rows, struct))
        if parts[-1] is None:
            return {}
    rows = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
    return {field.name: rows.field(k) for k, field in enumerate(struct)}


def _nulls(array: Any) -> np.ndarray:
    """The rows of ``array`` that are null."""
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _from_arrow(column: Column, array: Any, table: _Table) -> Any:
    """``_convert`` of an Arrow column of
    ``_arrow_columns``: the same values and the same findings, without Python objects. What
    pyarrow cannot parse (a time or dollar text it refuses, an unknown status...) goes to
    the general conversion of the column's Python values."""
    pa = _arrow()
    kind = column.parse if column.parse != "derived" else {
        "string": "str", "boolean": "bool", "Int64": "int"}[column.dtype]
    source = column.source
    if column.required and array.null_count and column.parse != "derived":
        quiet = table.quiet_rows(source)
        for i in np.flatnonzero(_nulls(array)).tolist():
            if i not in table.drop and i not in quiet:
                table.warn(i, source, "missing or null, though the API promises a value; "
                           "loaded as NA")
    if kind == "str":
        return pd.arrays.ArrowStringArray(array)
    if kind in ("int", "cents"):
        return pd.arrays.IntegerArray(array.fill_null(0).to_numpy().copy(), _nulls(array))
    if kind == "bool":
        return pd.arrays.BooleanArray(
            np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool),
            _nulls(array))
    if kind in ("time", "time_or_na"):
        return _arrow_time(array, table, source, soft=kind == "time_or_na")
    if kind == "dollars":
        try:
            out = np.array(pa.compute.cast(array, pa.float64())
                           .to_numpy(zero_copy_only=False))  # a writable copy
        except (pa.ArrowException, UnicodeError):
            pass
        else:
            if np.isfinite(out).sum() == len(array) - array.null_count:
                return out
        return to_dollars(array.to_pylist(), table, source)
    unknown = sorted(set(pa.compute.unique(array).drop_null().to_pylist()) - set(STATUSES))
    for value in unknown:
        row = pa.compute.index(array, pa.scalar(value, pa.large_string())).as_py()
        _unknown_status(table, row, source, value)
    categories = [*STATUSES, *unknown]
    codes = pa.compute.index_in(array, value_set=pa.array(categories, pa.large_string()))
    return pd.Categorical.from_codes(
        np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int32),
        categories=categories, ordered=True)


def _arrow_time(array: Any, table: _Table, source: str, soft: bool = False) -> Any:
    """``_to_time`` of an Arrow text column: pyarrow's RFC 3339 parser, else the general one."""
    pa = _arrow()
    try:
        parsed = pa.compute.cast(array, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowException, UnicodeError):
        parsed = None  # pyarrow's message quotes the value: never chain it to our error
    if parsed is None:
        return _to_time(array.to_pylist(), table, source, soft)
    return pd.DatetimeIndex(parsed.to_pandas(), tz="UTC")


#: raw columns read after their conversion (by name; a table's id column is kept too, to name
#: the record of a later column's problem)
_KEEP_RAW = frozenset({"_row", "position", "has_details", "rental_type"})


def _assemble(name: str, columns: dict[str, Any], keep: np.ndarray | None) -> pd.DataFrame:
    df = pd.DataFrame({c.name: columns[c.name] for c in TABLES[name]}, copy=False)
    if keep is not None:
        df = df[keep].reset_index(drop=True)
    return df


def _keep_mask(table: _Table) -> np.ndarray | None:
    if not table.drop:
        return None
    keep = np.ones(table.n, dtype=bool)
    keep[list(table.drop)] = False
    return keep


class _RowView:
    """Row ``i`` of a table's raw columns, as a tuple (a repeated key's rows are compared)."""

    def __init__(self, raw: dict[str, list[Any]]) -> None:
        self._columns = list(raw.values())

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return tuple(column[i] for column in self._columns)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(zip(*self._columns, strict=True))


def _hashable(value: Any) -> Any:
    return value if type(value) in (str, int, float, bool, _NONE) else repr(value)


def _dedupe(table: _Table, key: tuple[str, ...],
            preferred: Callable[[int], bool] | None = None) -> None:
    """Drop exact repeats of a record (the same file read twice); warn on conflicting ones."""
    raw = table.raw
    if table.id_field in key:  # every id once (one snapshot): no key repeats
        ids = raw[table.id_field]
        try:
            if len(set(ids)) == len(ids):
                return
        except TypeError:  # an id that is a list or an object
            pass
    keys = list(zip(*(raw[k] for k in key), strict=True))  # every key has 2+ fields
    try:
        if len(set(keys)) == len(keys):
            return
    except TypeError:  # a key field holds a list or an object
        keys = [tuple(map(_hashable, k)) for k in keys]
    rows = raw.materialize() if type(raw) is _Columns else _RowView(raw)
    seen: dict[tuple[Any, ...], int] = {}
    for i, row in enumerate(rows):
        if i in table.drop:
            continue
        k = keys[i]
        first = seen.setdefault(k, i)
        if first == i:
            continue
        if rows[first] == row:
            table.drop.add(i)
            table.warn(i, "", "the same record was loaded twice; the repeat was dropped")
        elif preferred is not None and preferred(first) != preferred(i):
            # the same instance from /instances and inside its cluster: keep the cluster row
            table.drop.add(first if preferred(i) else i)
            if preferred(i):
                seen[k] = i
        else:
            table.warn(i, "", "the same id appears twice in one snapshot with different "
                       "content; both rows kept")


def build_tables(norm: Normalized) -> Tables:
    """Typed DataFrames from the raw rows of ``normalize`` (which it consumes: its row lists
    are emptied as they become columns, to keep a load's peak memory low)."""
    findings = norm.findings
    docs = norm.documents

    def origin_of(origins: list[tuple[int, Any]]) -> Callable[[int], tuple[str, str]]:
        return lambda row: (docs[origins[row][0]].source, member_path(origins[row][1]))

    clusters = _Table("clusters", norm.clusters, CLUSTER_FIELDS,
                      origin_of(norm.cluster_origins), "cluster_id", findings)
    merged = _merge_details(norm)
    instances = _Table("instances", norm.instances, INSTANCE_FIELDS,
                       origin_of(norm.instance_origins), "instance_id", findings,
                       blocks=norm.instance_blocks)
    instances.drop.update(merged)
    _quiet_lifecycle(instances)
    types = _Table("instance_types", norm.instance_types, INSTANCE_TYPE_FIELDS,
                   origin_of(norm.instance_type_origins), "shade_instance_type", findings)

    _dedupe(clusters, ("cluster_id", "observed_at"))
    has_cluster = instances.raw["cluster_id"]
    _dedupe(instances, ("cluster_id", "instance_id", "observed_at"))
    _dedupe(instances, ("instance_id", "observed_at"),
            preferred=lambda i: has_cluster[i] is not None)
    _dedupe(types, ("cloud", "shade_instance_type", "region", "rental_type", "observed_at"))

    c = _frame(clusters)
    clusters.raw.rows = norm.clusters = []  # type: ignore[attr-defined]  # _Columns: converted
    c["hourly_price_usd"] = _usd(c["hourly_price_cents"])

    i = _frame(instances)
    instances.raw.rows = norm.instances = []  # type: ignore[attr-defined]  # _Columns: converted
    instances.raw.blocks = norm.instance_blocks = []  # type: ignore[attr-defined]
    i["hourly_price_usd"] = _usd(i["hourly_price_cents"])
    i["total_vram_gb"] = i["num_gpus"] * i["vram_per_gpu_in_gb"]
    detailed = np.asarray(instances.raw["has_details"], dtype=bool)
    i["details_observed_at"] = pd.Series(i["observed_at"]).where(detailed)

    spot = Column("spot_price", "float64", "availability[].hourly_price", "USD/hour", "",
                  "dollars")
    t = _frame(types, {"spot_price": spot})
    is_spot = np.asarray([r == "spot" for r in types.raw["rental_type"]], dtype=bool)
    t["hourly_price_usd"] = np.where(is_spot, t["spot_price"], _usd(t["on_demand_price_cents"]))
    t["total_vram_gb"] = t["num_gpus"] * t["vram_per_gpu_in_gb"]

    children = _children(CHILD_FIELDS, norm, origin_of(norm.instance_origins), "instance_id",
                         instances, findings, i)
    dropped = np.fromiter(instances.drop, dtype=np.int64)

    frames = {
        "clusters": _assemble("clusters", c, _keep_mask(clusters)),
        "instances": _assemble("instances", i, _keep_mask(instances)),
        "instance_types": _assemble("instance_types", t, _keep_mask(types)),
    }
    for name, (converted, parents) in children.items():
        frames[name] = _assemble(name, converted, ~np.isin(parents, dropped) if dropped.size
                                 else None)
    frames.update(_account_frames(norm, origin_of))
    frames["polls"] = _polls(norm.polls)
    return Tables(**frames, warnings=tuple(findings.messages()), skipped=findings.skipped)


#: (id field, dedupe key fields) of each account table
ACCOUNT_KEYS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    r.table: (r.id_column, r.row_key) for r in RESOURCES if r.primary and r.row_key}


def _account_frames(norm: Normalized, origin_of: Callable[[list[tuple[int, str]]], Any]
                    ) -> dict[str, pd.DataFrame]:
    """volumes, volume_types, ssh_keys, templates (+ tags and envs), cluster_types."""
    frames = {}
    built: dict[str, _Table] = {}
    for name, fields in ACCOUNT_FIELDS.items():
        id_field, key = ACCOUNT_KEYS[name]
        rows = norm.account[name]
        table = _Table(name, rows, fields, origin_of(norm.account_origins[name]), id_field,
                       norm.findings)
        _dedupe(table, key)
        columns = _frame(table)
        if name == "cluster_types":
            columns["hourly_price_usd"] = _usd(columns["hourly_price_cents"])
        built[name] = table
        frames[name] = columns
    templates = built["templates"]
    children = _children(TEMPLATE_CHILD_FIELDS, norm, origin_of(norm.account_origins["templates"]),
                         "template_id", templates, norm.findings)
    out = {name: _assemble(name, frames[name], _keep_mask(built[name])) for name in frames}
    dropped = np.fromiter(templates.drop, dtype=np.int64)
    for name, (converted, parents) in children.items():
        out[name] = _assemble(name, converted, ~np.isin(parents, dropped) if dropped.size
                              else None)
    return out


_HAS_DETAILS = INSTANCE_FIELDS.index("has_details")
_FROM_INFO = INSTANCE_FIELDS.index("from_info")
_DETAIL_SLICE = slice(INSTANCE_FIELDS.index(DETAIL_FIELDS[0]), _HAS_DETAILS + 1)


def _merge_details(norm: Normalized) -> set[int]:
    """Fold an instance's info response into its list row of the same snapshot.

    ``/instances/{id}/info`` fetched with ``/instances`` (or the cluster) in one snapshot
    describes the same instance: its details are copied onto the list row (which knows the
    cluster), its ``volume_ids`` and ``envs`` rows follow, and the info row is dropped without
    a warning. Returns the dropped rows.
    """
    if norm.instance_blocks:
        if not any(any(block.field(_FROM_INFO).to_pylist()) for block in norm.instance_blocks) \
                and not any(row[_FROM_INFO] for row in norm.instances):
            return set()
        norm.unblock()  # rows to rewrite: all as tuples
    rows = norm.instances
    infos = [n for n, row in enumerate(rows) if row[_FROM_INFO]]
    if not infos:
        return set()
    obs = INSTANCE_FIELDS.index("observed_at")
    by_key: dict[tuple[Any, Any], list[int]] = {}
    for n, row in enumerate(rows):
        by_key.setdefault((row[1], row[obs]), []).append(n)
    dropped: set[int] = set()
    moved: dict[int, int] = {}
    for n in infos:
        plain = [m for m in by_key.get((rows[n][1], rows[n][obs]), ())
                 if not rows[m][_FROM_INFO]]
        if not plain or n in dropped:
            continue
        details = rows[n][_DETAIL_SLICE]
        for m in plain:
            row = rows[m]
            rows[m] = (*row[:_DETAIL_SLICE.start], *details, *row[_DETAIL_SLICE.stop:])
        # the cluster's row survives the later de-duplication: the details' children go there
        moved[n] = next((m for m in plain if rows[m][0] is not None), plain[0])
        dropped.add(n)
    for name in _DETAIL_CHILDREN:
        parents = norm.children[name][0]
        parents[:] = [moved.get(p, p) for p in parents]
    return dropped


def _quiet_lifecycle(instances: _Table) -> None:
    """No warning for what the API leaves out by lifecycle, nor per hardware column of a
    missing configuration.

    An instance before ``active`` (a just-created instance's info) has no ``configuration``
    and no ``cost_estimate`` yet. A missing configuration is one finding of
    ``quality_checks`` (``missing_configuration``: the billing model takes it from the catalog
    where it can), not a load warning per hardware column.
    """
    status = instances.raw["status"]
    pre = {n for n, s in enumerate(status) if type(s) is str and s in PRE_ACTIVE}
    no_config = {n for n, has in enumerate(instances.raw["has_configuration"]) if not has}
    instances.quiet = {"configuration": no_config, "cost_estimate": pre}


def _polls(polls: list[tuple[str, str]]) -> pd.DataFrame:
    unique = sorted(set(polls))
    df = pd.DataFrame({
        "observed_at": pd.to_datetime([p[0] for p in unique], utc=True, format="ISO8601")
        .as_unit("us"),
        "endpoint": pd.array([p[1] for p in unique], dtype="string"),
        "ok": pd.array([True] * len(unique), dtype="boolean"),
    })
    return df.sort_values(["observed_at", "endpoint"], kind="stable").reset_index(drop=True)


def _children(fields: dict[str, Any], norm: Normalized, parent_origin: Callable[[int], Any],
              id_field: str, parent: _Table, findings: Findings,
              parent_columns: dict[str, Any] | None = None,
              ) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Each child table of ``fields`` (instances' or templates') converted, with the parent row
    of each of its rows; a child value that cannot load takes its parent with it
    (``errors="skip"``). The instances' child tables, kept per list
    (``Normalized.child_counts``), take their id and time from ``parent_columns`` (the
    parent's converted columns)."""
    children = {}
    for name, columns in fields.items():
        counts = norm.child_counts.get(name)
        if counts is None:
            child = _Table(name, [], columns, parent_origin, id_field, findings,
                           columns=norm.children[name])
        else:
            child = _per_item(name, columns, norm.children[name], counts, parent,
                              parent_origin, id_field, findings)
        child.origin = _child_origin(child.raw, parent_origin, TABLES[name])
        parents = np.asarray(child.raw["_row"], dtype=np.int64)
        converted = _frame(child)
        if counts is not None and parent_columns is not None:
            for key in (id_field, "observed_at"):
                converted[key] = parent_columns[key].take(parents)
        parent.drop.update(int(parents[r]) for r in child.drop)
        children[name] = (converted, parents)
    return children


def _per_item(name: str, fields: tuple[str, ...], columns: list[list[Any]], counts: list[int],
              parent: _Table, parent_origin: Callable[[int], Any], id_field: str,
              findings: Findings) -> _Table:
    """A child table kept per list, as one row per item: ``_row`` (the parent row) and
    ``position`` expanded with numpy; its id and time are the parent's (named in messages
    through the parent's raw id column, converted by the caller)."""
    lengths = np.asarray(counts, dtype=np.int64)
    rows = np.repeat(np.asarray(columns[0], dtype=np.int64), lengths)
    position = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths,
                                                                lengths)
    values = columns[4:]
    table = _Table(name, [], (*fields[:1], *fields[3:]), parent_origin, None, findings,
                   columns=[rows, position, *values])
    ids = parent.raw[id_field]
    table.rid_of = lambda row: ids[rows[row]]
    columns[:] = [[] for _ in columns]  # now the table's
    return table


def _child_origin(raw: dict[str, list[Any]], parent: Callable[[int], tuple[str, str]],
                  columns: tuple[Column, ...]) -> Callable[[int], tuple[str, str]]:
    """Paths of child values: the parent instance's path plus the list path at its position."""
    list_path = next(c.source for c in columns if "[]" in c.source).split("[]")[0]
    parents, positions = raw["_row"], raw["position"]

    def origin(row: int) -> tuple[str, str]:
        file, path = parent(parents[row])
        return file, f"{path}.{list_path}[{positions[row]}]"

    return origin

