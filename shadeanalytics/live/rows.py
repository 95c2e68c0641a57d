"""The history store's versions as table rows: derived once, kept in the store, read in bulk.

A version's payload never changes, so the rows it loads as (its cluster, instance, type or
account row, with the child rows of tags, ports, launch configuration...) are derived once,
through the record spec's own walker and converter (``normalize.normalize_records`` and
``tables.build_tables``: the same code that loads files), and kept in the store as *row
blocks*: typed columns of a range of versions, encoded column by column (numbers as their
bytes, text as codes into a list of distinct values). Reading a year is then one query of
the versions' sighting columns, a decode of a few blocks and one ``take`` per table: the rows
of each version at its first and last sighting, with the sighting's time and cost.

What a version alone cannot say is decided when reading, vectorized: which polls of the window
saw it first and last, the cost estimate of those polls, the details an
``/instances/{id}/info`` response adds to the list row of the same poll. Anything unusual (a
version that loaded with a warning or was skipped, a repeated listing ``<id>#2``, two rows of
one id at one instant, a stored cost that is no dollar amount) is read by the general path
instead: the same walker over every version, so its warnings and ``errors=`` behave exactly as
a load of files does. So is a read of fewer than ``store._DERIVED_MIN_VERSIONS`` versions,
for which walking them is as quick as taking blocks.

A block is kept under a fingerprint of what derived it (:func:`spec_fingerprint`): the record
spec (``schema.TABLES``) and the source of every module that derives rows (:data:`DERIVED_BY`:
the spec, the walker, the converter, this module...), hashed once per process. Any change of
them (a new column, a changed rule in ``normalize`` or ``tables``, a new block encoding)
derives every version again on the next read: nothing to bump by hand.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import marshal
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.abc import InspectLoader
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd

from ..ingest.normalize import DETAIL_FIELDS, RECORD_TABLES, Document, Findings, normalize_records
from ..ingest.schema import STATUSES, TABLES, empty_frame, status_dtype
from ..ingest.tables import ACCOUNT_KEYS, build_tables

__all__ = ["DERIVED_BY", "PollLog", "RowBlock", "code_digest", "decode_frame", "derive",
           "encode_frame", "read_rows", "records", "refused", "spec_fingerprint"]

#: the modules whose code decides the rows a version derives to (and how a block encodes
#: them): their source is part of :func:`spec_fingerprint`
DERIVED_BY = ("shadeanalytics.ingest.schema", "shadeanalytics.ingest.resources",
              "shadeanalytics.ingest.decode", "shadeanalytics.ingest.normalize",
              "shadeanalytics.ingest.tables", "shadeanalytics.ingest.arrowrows",
              "shadeanalytics.live.endpoints", "shadeanalytics.live.rows")
#: the tables a store version can give rows to (polls are the poll log's)
ROW_TABLES = tuple(name for name in TABLES if name != "polls")
#: columns a block does not keep: they are the sighting's
_SIGHTING_COLUMNS = ("observed_at", "details_observed_at")
#: each table's columns, in schema order
TABLES_COLUMNS = {name: [c.name for c in columns] for name, columns in TABLES.items()}


@functools.cache
def spec_fingerprint() -> str:
    """What the derived rows depend on: every table's columns and dtypes, and the source of
    the modules of :data:`DERIVED_BY` (and the versions of the libraries that type and
    encode the columns). Computed once per process; blocks of another fingerprint are derived
    again."""
    spec = [STATUSES, *((name, [(c.name, c.dtype, c.parse) for c in columns])
                        for name, columns in TABLES.items()),
            pd.__version__, np.__version__, msgspec.__version__]
    digest = hashlib.sha256(orjson.dumps(spec))
    for module in DERIVED_BY:
        digest.update(module.encode() + b"\0" + _source(module) + b"\0")
    return digest.hexdigest()[:16]


def code_digest(modules: Sequence[str]) -> str:
    """A digest of the code of ``modules`` (as :func:`spec_fingerprint` hashes it)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.encode() + b"\0" + _source(module) + b"\0")
    return digest.hexdigest()[:16]


def _source(module: str) -> bytes:
    """The code of ``module``: its source file, or (installed without one) its compiled
    code."""
    spec = importlib.util.find_spec(module)
    loader = spec.loader if spec is not None else None
    source = loader.get_source(module) if isinstance(loader, InspectLoader) else None
    if source is not None:
        return source.encode()
    if isinstance(loader, InspectLoader):
        code = loader.get_code(module)
        if code is not None:
            return marshal.dumps(code)
    raise RuntimeError(f"cannot read the code of {module}")


def records(source: str, versions: Iterable[tuple[int, str, str | None, Any, str]],
            ) -> Iterable[tuple[str, Document, str, str | None]]:
    """``(kind, document, path, endpoint)`` of each ``(version_id, kind, parent, payload,
    observed_at)``: what ``normalize_records`` walks. The document names the version."""
    from .endpoints import KIND_ENDPOINTS as _KIND_ENDPOINTS  # the one map of kinds to endpoints

    for vid, kind, parent, payload, at in versions:
        doc = Document(payload, f"{source} (version {vid})", observed_at=at, parent=parent,
                       listed=kind == "instance")
        if kind in RECORD_TABLES:
            # the JSON path a file of that list response would give the item
            path = f"$.response.{_list_key(kind)}[0]"
            yield kind, doc, path, _KIND_ENDPOINTS[kind]
        else:
            yield kind, doc, "$", None


def _list_key(kind: str) -> str:
    from .endpoints import KIND_LIST_KEYS as LIST_KEYS

    return LIST_KEYS[kind]


# -- derivation ------------------------------------------------------------------------------

_VERSION_SOURCE = re.compile(r" \(version (\d+)\)$")


class _Recording(Findings):
    """Findings that also note which versions loaded with a remark (or were skipped)."""

    def __init__(self) -> None:
        super().__init__(errors="skip")
        self.versions: set[int] = set()

    def warn(self, problem: str, general: str, source: str, path: str, rid: Any) -> None:
        match = _VERSION_SOURCE.search(source)
        if match:
            self.versions.add(int(match.group(1)))
        super().warn(problem, general, source, path, rid)


class _Refusals(Findings):
    """Findings that note each record the spec refuses (where and why, never the value)."""

    def __init__(self) -> None:
        super().__init__(errors="skip")
        self.refused: dict[int, tuple[str, str]] = {}

    def bad(self, problem: str, general: str, source: str, path: str, rid: Any) -> None:
        match = _VERSION_SOURCE.search(source)
        if match:
            self.refused.setdefault(int(match.group(1)), (path, problem))
        super().bad(problem, general, source, path, rid)


def refused(source: str, versions: Sequence[tuple[int, str, str | None, Any]]
            ) -> dict[int, tuple[str, str]]:
    """The records among ``(number, kind, parent_id, payload)`` that a read of the store would
    refuse: number -> (JSON path inside the record as :func:`records` places it, the record
    spec's reason). The same walker and converter as every read (``normalize_records`` and
    ``build_tables``), so what passes here always loads."""
    findings = _Refusals()
    docs = ((n, kind, parent, payload, _version_time(n)) for n, kind, parent, payload in versions)
    build_tables(normalize_records(records(source, docs), findings))
    return findings.refused


def _version_time(vid: int) -> str:
    """A distinct instant per version: rows of one derivation never meet one another (the
    de-duplication and the merge of details are decided when reading, per sighting)."""
    return str(pd.Timestamp(vid, unit="us", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _union(parts: Sequence[pd.Series]) -> pd.Categorical:
    """Coded text columns as one, codes renumbered into the union of their values."""
    categories = parts[0].cat.categories
    for part in parts[1:]:
        other = part.cat.categories
        if not other.equals(categories):
            extra = other[~other.isin(categories)]
            categories = pd.Index(np.concatenate([categories.to_numpy(dtype=object),
                                                  extra.to_numpy(dtype=object)]), dtype=object)
    codes = []
    for part in parts:
        own, values = part.cat.categories, part.cat.codes.to_numpy()
        if not own.equals(categories):  # code -1 (NA) maps to the appended -1
            values = np.append(categories.get_indexer(own), -1).astype(np.int32)[values]
        codes.append(values)
    return pd.Categorical.from_codes(np.concatenate(codes), categories=categories)


@dataclass
class RowBlock:
    """The derived rows of versions ``first .. last``: per table a frame with ``_vid``."""

    first: int
    last: int
    frames: dict[str, pd.DataFrame]
    #: versions that loaded with a remark or were skipped: read by the general path
    flagged: frozenset[int] = frozenset()
    #: number of versions derived
    versions: int = 0


def derive(source: str, versions: Sequence[tuple[int, str, str | None, str]],
           first: int, last: int) -> RowBlock:
    """The rows of ``(version_id, kind, parent_id, payload)`` (``first .. last``)."""
    findings = _Recording()
    docs = ((vid, kind, parent, orjson.loads(payload), _version_time(vid))
            for vid, kind, parent, payload in versions)
    tables = build_tables(normalize_records(records(source, docs), findings))
    flagged = frozenset(findings.versions)
    frames = {}
    for name in ROW_TABLES:
        frame = tables.table(name)
        vid = frame["observed_at"].array.asi8  # µs since the epoch: the version id
        frame = _coded(frame.drop(columns=[c for c in _SIGHTING_COLUMNS if c in frame]))
        frame.insert(0, "_vid", vid)
        if flagged:
            frame = frame[~np.isin(vid, np.fromiter(flagged, np.int64))].reset_index(drop=True)
        frames[name] = frame
    return RowBlock(first, last, frames, flagged, len(versions))


def _coded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as codes into their distinct values (an unordered
    categorical): blocks are concatenated, taken from and compared by code; the text columns
    are built once, for the rows a read gives (:func:`_texts`)."""
    out = {}
    for name in frame.columns:
        values = frame[name]
        if isinstance(values.dtype, pd.StringDtype):
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            values = pd.Categorical.from_codes(
                codes, categories=pd.Index(np.asarray(uniques, dtype=object), dtype=object))
        out[name] = values
    return pd.DataFrame(out, copy=False)


def _texts(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns back from codes (``string`` dtype, as the loaders build them)."""
    for name in frame.columns:
        values = frame[name]
        if isinstance(values.dtype, pd.CategoricalDtype) and not values.dtype.ordered:
            codes = values.cat.codes.to_numpy()
            categories = values.cat.categories.to_numpy(dtype=object)
            if categories.size > codes.size:  # (few rows of many values: only theirs)
                used = np.unique(codes[codes >= 0])
                categories = categories[used]
                codes = np.where(codes >= 0, np.searchsorted(used, codes), -1)
            texts = pd.array(categories, dtype="string")
            frame[name] = texts.take(codes, allow_fill=True)
    return frame


# -- encoding --------------------------------------------------------------------------------
# A block is one msgpack map: {"first", "last", "versions", "flagged": int64 bytes,
# "tables": {name: {"n": rows, "columns": {name: encoded}}}}; an encoded column is
# {"t": type, ...}: "i8"/"f8"/"b1" values (+ "m" mask) as bytes, "s" text as int32 codes
# into "u" (NA: -1), "c" the status categorical as codes into "u".


def _encode_column(values: Any) -> dict[str, Any]:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat = pd.Categorical(values)
        return {"t": "c" if cat.ordered else "s", "codes": cat.codes.astype(np.int32).tobytes(),
                "u": [str(c) for c in cat.categories]}
    if isinstance(dtype, pd.DatetimeTZDtype):
        return {"t": "M", "v": values.array.asi8.tobytes()}  # NaT is the smallest int64
    if dtype == "Int64":
        arr = values.array
        return {"t": "I", "v": arr._data.astype(np.int64).tobytes(),
                "m": arr._mask.tobytes()}
    if dtype == "boolean":
        arr = values.array
        return {"t": "B", "v": arr._data.tobytes(), "m": arr._mask.tobytes()}
    if dtype == "float64" or dtype == "int64":
        return {"t": "f8" if dtype == "float64" else "i8", "v": values.to_numpy().tobytes()}
    raise TypeError(f"no block encoding for dtype {dtype}")


def _decode_column(enc: dict[str, Any], n: int, rows: np.ndarray | None = None) -> Any:
    """The column of :func:`_encode_column`'s ``enc`` (``n`` values), or only its ``rows``
    (a boolean mask)."""
    t = enc["t"]

    def values(key: str, dtype: Any) -> np.ndarray:
        array = np.frombuffer(enc[key], dtype=dtype)
        return array.copy() if rows is None else array[rows]

    if t in ("s", "c"):
        codes = np.frombuffer(enc["codes"], dtype=np.int32)
        if rows is not None:
            codes = codes[rows]
        dtype = status_dtype(tuple(c for c in enc["u"] if c not in STATUSES)) if t == "c" \
            else pd.CategoricalDtype(pd.Index(enc["u"], dtype=object))
        return pd.Categorical.from_codes(codes, dtype=dtype)
    if t == "M":
        times = np.frombuffer(enc["v"], dtype=np.int64).view("datetime64[us]")
        return pd.DatetimeIndex(times if rows is None else times[rows]).tz_localize("UTC")
    if t == "I":
        return pd.arrays.IntegerArray(values("v", np.int64), values("m", bool))
    if t == "B":
        return pd.arrays.BooleanArray(values("v", bool), values("m", bool))
    return values("v", np.float64 if t == "f8" else np.int64)


def encode(block: RowBlock) -> bytes:
    tables = {}
    for name, frame in block.frames.items():
        tables[name] = {"n": len(frame),
                        "columns": {c: _encode_column(frame[c]) for c in frame.columns}}
    return msgspec.msgpack.encode({
        "first": block.first, "last": block.last, "versions": block.versions,
        "flagged": np.fromiter(sorted(block.flagged), np.int64).tobytes(), "tables": tables})


def decode(data: bytes, only: np.ndarray | None = None) -> RowBlock:
    """The block of :func:`encode`'s ``data``; with ``only`` (sorted version ids), only the
    rows of those versions (``read_rows`` of those versions gives the same frames)."""
    raw = msgspec.msgpack.decode(data)
    frames = {}
    for name in ROW_TABLES:
        table = raw["tables"][name]
        n = table["n"]
        rows = None
        if only is not None:
            vid = _decode_column(table["columns"]["_vid"], n)
            rows = np.isin(vid, only, assume_unique=False, kind="sort")
            n = int(rows.sum())
        frames[name] = pd.DataFrame({c: _decode_column(enc, n, rows)
                                     for c, enc in table["columns"].items()}, copy=False)
    flagged = frozenset(np.frombuffer(raw["flagged"], dtype=np.int64).tolist())
    return RowBlock(raw["first"], raw["last"], frames, flagged, raw["versions"])


def encode_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """``frame`` (columns of the block dtypes, text as ``string``) as msgpack-ready data."""
    coded = _coded(frame.reset_index(drop=True))
    return {"n": len(coded), "order": list(coded.columns),
            "columns": {c: _encode_column(coded[c]) for c in coded.columns}}


def decode_frame(data: dict[str, Any]) -> pd.DataFrame:
    """The frame of :func:`encode_frame`'s data, text columns as ``string`` again."""
    frame = pd.DataFrame({c: _decode_column(data["columns"][c], data["n"])
                          for c in data["order"]}, index=pd.RangeIndex(data["n"]), copy=False)
    return _texts(frame)


def concat(blocks: Sequence[RowBlock]) -> RowBlock:
    """One block of consecutive ``blocks`` (ascending)."""
    if len(blocks) == 1:
        return blocks[0]
    frames = {}
    for name in ROW_TABLES:
        parts = [b.frames[name] for b in blocks]
        columns = {}
        for column in parts[0].columns:
            values = [p[column] for p in parts]
            dtype = values[0].dtype
            if isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered:
                columns[column] = _union(values)
            else:
                columns[column] = pd.concat(values, ignore_index=True)
        frames[name] = pd.DataFrame(columns, copy=False)
    return RowBlock(blocks[0].first, blocks[-1].last, frames,
                    frozenset().union(*(b.flagged for b in blocks)),
                    sum(b.versions for b in blocks))


def rows_of(block: RowBlock, vids: np.ndarray) -> RowBlock:
    """``block`` with only the rows of the versions ``vids`` (what :func:`decode` with
    ``only`` gives)."""
    frames = {}
    for name, frame in block.frames.items():
        mine = np.isin(frame["_vid"].to_numpy(), vids)
        frames[name] = frame if mine.all() else frame[mine].reset_index(drop=True)
    return RowBlock(block.first, block.last, frames, block.flagged, block.versions)


@functools.cache
def empty_block() -> RowBlock:
    """A block of no versions, every column typed (one, shared: blocks are never changed in
    place)."""
    frames = {}
    for name in ROW_TABLES:
        frame = _coded(empty_frame(name))
        frame = frame.drop(columns=[c for c in _SIGHTING_COLUMNS if c in frame])
        frame.insert(0, "_vid", np.array([], dtype=np.int64))
        frames[name] = frame
    return RowBlock(1, 0, frames)


# -- reading ---------------------------------------------------------------------------------

#: the row tables whose ``cost_estimate_usd`` is the sighting's (the volatile field)
_COSTED_TABLES = ("clusters", "instances", "volumes")
#: de-duplication keys of each table (``tables.build_tables``'s; for instances the shorter of
#: its two): two rows of one key at one instant are for the general path, which warns about
#: them as a load of files does. (Clusters and instances should never meet one: a resource has
#: one version per poll, repeats ``<id>#2`` go to the general path, and an instance's details
#: at the instant of its list row are merged into it; checked all the same, by code.)
_KEYS: dict[str, tuple[str, ...]] = {
    "clusters": ("cluster_id", "observed_at"),
    "instances": ("instance_id", "observed_at"),
    "instance_types": ("cloud", "shade_instance_type", "region", "rental_type", "observed_at"),
    **{name: key for name, (_, key) in ACCOUNT_KEYS.items()},
}
_DETAIL_COLUMNS = (*DETAIL_FIELDS, "has_details")
#: child rows of an instance row that go with it when its details are merged into its list
#: row (``volume_ids`` and ``envs`` move there instead: ``tables._merge_details``)
_INSTANCE_CHILDREN = ("instance_tags", "port_mappings", "docker_port_mappings",
                      "docker_volume_mounts", "docker_envs")


@dataclass
class Versions:
    """The sighting columns of the versions a read covers, as arrays (ascending ids)."""

    vid: np.ndarray
    #: codes into ``kinds``
    kind: np.ndarray
    kinds: list[str]
    #: a repeated listing (``<id>#2``)
    repeat: np.ndarray
    #: a cluster member (or its details)
    member: np.ndarray
    valid_from: np.ndarray
    last_seen: np.ndarray
    last_cost: list[Any]

    #: the columns of ``versions`` :meth:`of` takes, in order
    SELECT = ("version_id, kind, instr(resource_id, '#') > 0, parent_id IS NOT NULL, "
              "valid_from, last_seen_poll, last_cost_estimate")

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> Versions:
        cols = list(zip(*rows, strict=True)) if rows else [()] * 7
        kind, kinds = pd.factorize(np.asarray(cols[1], dtype=object))
        return cls(np.asarray(cols[0], dtype=np.int64), kind.astype(np.int64), list(kinds),
                   np.asarray(cols[2], dtype=bool), np.asarray(cols[3], dtype=bool),
                   np.asarray(cols[4], dtype=np.int64), np.asarray(cols[5], dtype=np.int64),
                   list(cols[6]))


class _Probe:
    """Stands in for a table being built: notes that a value would warn."""

    name = ""
    warned = False

    def warn(self, row: int, source: str, problem: str) -> None:
        self.warned = True


def _to_dollars(values: list[Any]) -> np.ndarray | None:
    """Stored cost estimates as dollars, or None when one would load with a warning."""
    from ..ingest.tables import to_dollars as convert  # the loaders' one rule for dollars

    probe = _Probe()
    out = convert(values, probe, "cost_estimate")  # type: ignore[arg-type]
    return None if probe.warned else out


def sightings(versions: Versions, ok: PollLog, lo: str, hi: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(version index, poll id, poll time in µs, cost action)`` of every row the window
    gives, ordered as the rows load (by poll time, then version id): each version at the
    first and the last successful poll of its endpoint inside [lo, hi] that saw it. Cost
    action: 0 the payload's, 1 the last sighting's, 2 unknown."""
    from .endpoints import ENDPOINTS
    from .endpoints import endpoint_of as _endpoint_of

    poll_ids, times = ok.ids, ok.times
    lo_us = pd.Timestamp(lo).value // 1000 if lo else np.iinfo(np.int64).min  # ns -> µs
    hi_us = pd.Timestamp(hi).value // 1000 if hi != "\uffff" else np.iinfo(np.int64).max
    n = versions.vid.size
    if not n:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty, empty
    size = int(max(poll_ids.max(initial=0), versions.last_seen.max(), versions.valid_from.max()))
    time_of = np.zeros(size + 1, dtype=np.int64)
    time_of[poll_ids] = times
    inside = (times >= lo_us) & (times <= hi_us)
    endpoint_of = np.asarray([ENDPOINTS.index(_endpoint_of(kind, "" if member else None))
                              for kind in versions.kinds for member in (False, True)])
    code = endpoint_of[versions.kind * 2 + versions.member]
    first = versions.valid_from.copy()
    last = versions.last_seen.copy()
    late_start = time_of[first] < lo_us
    early_end = time_of[last] > hi_us
    missing = np.zeros(n, dtype=bool)
    for e, endpoint in enumerate(ENDPOINTS):
        rows = np.flatnonzero((code == e) & (late_start | early_end))
        if not rows.size:
            continue
        ids = poll_ids[inside & ok.polled(endpoint)]
        starts = rows[late_start[rows]]
        at = np.searchsorted(ids, first[starts], side="left")
        missing[starts[at >= ids.size]] = True
        first[starts] = ids[np.minimum(at, max(ids.size - 1, 0))] if ids.size else 0
        ends = rows[early_end[rows]]
        at = np.searchsorted(ids, last[ends], side="right") - 1
        missing[ends[at < 0]] = True
        last[ends] = ids[np.maximum(at, 0)] if ids.size else 0
    keep = np.flatnonzero(~missing & (first <= last))
    twice = keep[first[keep] != last[keep]]
    index = np.concatenate([keep, twice])
    poll = np.concatenate([first[keep], last[twice]])
    order = np.lexsort((versions.vid[index], time_of[poll]))
    index, poll = index[order], poll[order]
    action = np.where(poll == versions.last_seen[index], 1,
                      np.where(poll == versions.valid_from[index], 0, 2))
    return index, poll, time_of[poll], action


def _gather(frame: pd.DataFrame, vids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``frame`` (rows ascending by ``_vid``) of each of ``vids`` in turn, and
    the number of rows each gives."""
    own = frame["_vid"].to_numpy()
    if not own.size:
        return np.zeros(0, dtype=np.int64), np.zeros(vids.size, dtype=np.int64)
    size = int(max(own[-1], vids.max(initial=0))) + 1
    per_version = np.bincount(own, minlength=size)
    first_row = np.cumsum(per_version) - per_version
    start, counts = first_row[vids], per_version[vids]
    offsets = np.repeat(start - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(int(counts.sum()), dtype=np.int64), counts


def read_rows(block: RowBlock, versions: Versions, ok: PollLog, lo: str,
              hi: str) -> dict[str, pd.DataFrame] | None:
    """The row tables of the window from derived rows, or None when the general path must
    read it (see the module docstring)."""
    index, _, at, action = sightings(versions, ok, lo, hi)
    vids = versions.vid[index]
    if block.flagged and np.isin(vids, np.fromiter(block.flagged, np.int64)).any():
        return None
    if versions.repeat[index].any():
        return None  # a repeated listing: its rows share an id (the general path warns)
    last_cost = None
    if (action == 1).any():
        costs = versions.last_cost
        last_cost = _to_dollars([costs[i] for i in index[action == 1].tolist()])
        if last_cost is None:
            return None
    info = versions.kind == (versions.kinds.index("instance_info")
                             if "instance_info" in versions.kinds else -1)
    frames: dict[str, pd.DataFrame] = {}
    #: sightings of an instance's details merged into its list row: their own rows go
    merged = np.zeros(vids.size, dtype=bool)
    for name in ROW_TABLES:
        source = block.frames[name]
        rows, counts = _gather(source, vids)
        if name in _INSTANCE_CHILDREN and merged.any():
            keep = ~np.repeat(merged, counts)
            rows, counts = rows[keep], np.where(merged, 0, counts)
        frame = source.take(rows).reset_index(drop=True)
        row_at = np.repeat(at, counts)
        frame["observed_at"] = pd.DatetimeIndex(row_at.view("datetime64[us]")).tz_localize("UTC")
        if name in _COSTED_TABLES and counts.any():
            row_action = np.repeat(action, counts)
            cost = frame["cost_estimate_usd"].to_numpy(copy=True)
            if last_cost is not None:
                cost[row_action == 1] = np.repeat(last_cost, counts[action == 1])
            unknown = row_action == 2
            if name == "instances":
                frame, dropped = _merge_details(frame, np.repeat(info[index], counts),
                                                row_at, unknown, cost)
                merged[np.repeat(np.arange(vids.size), counts)[dropped]] = True
                cost = frame.pop("_cost").to_numpy()
            elif unknown.any():
                cost[unknown] = np.nan
            frame["cost_estimate_usd"] = cost
        if name == "instances":
            frame["details_observed_at"] = frame["observed_at"].where(
                frame["has_details"].to_numpy(dtype=bool, na_value=False))
        key = _KEYS.get(name)
        if key is not None and frame.duplicated(list(key)).any():
            return None
        frames[name] = _texts(frame[TABLES_COLUMNS[name]].copy(deep=False))
    return frames


def _merge_details(frame: pd.DataFrame, from_info: np.ndarray, at: np.ndarray,
                   unknown: np.ndarray, cost: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """``tables._merge_details`` and the unknown costs of instances, on typed rows: an info
    row's details go onto the list rows of its instance at its instant and it is dropped
    (returned: the rows dropped); a cost unknown for an instance at an instant is unknown for
    every row of it there."""
    frame["_cost"] = cost
    dropped = np.zeros(0, dtype=np.int64)
    if not from_info.any() and not unknown.any():
        return frame, dropped
    keys = pd.DataFrame({"id": frame["instance_id"].cat.codes.to_numpy(), "at": at,
                         "row": np.arange(len(frame))})
    if unknown.any():
        bad = keys[unknown].drop_duplicates(["id", "at"])
        hit = keys.merge(bad[["id", "at"]], on=["id", "at"])["row"].to_numpy()
        frame.loc[hit, "_cost"] = np.nan
    if from_info.any():
        pairs = keys[~from_info].merge(keys[from_info], on=["id", "at"],
                                       suffixes=("", "_info"))
        if len(pairs):
            to, of = pairs["row"].to_numpy(), pairs["row_info"].to_numpy()
            for column in _DETAIL_COLUMNS:
                values = frame[column].array.copy()
                values[to] = values[of]
                frame[column] = values
            dropped = np.unique(of)
            frame = frame.drop(index=dropped).reset_index(drop=True)
    return frame, dropped


def polls_frame(logged: PollLog) -> pd.DataFrame:
    """``Tables.polls`` from the poll log: one row per endpoint of each poll, ordered by
    time, endpoint and outcome (failed first), each once."""
    if not logged.ids.size:
        return empty_frame("polls")
    times, combo_of, combos, ok = logged.times, logged.combo, logged.combos, logged.ok
    names = sorted({e for combo in combos for e in combo.split(",")})
    rank = {e: i for i, e in enumerate(names)}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for c, combo in enumerate(combos):
        rows = np.flatnonzero(combo_of == c)
        for endpoint in combo.split(","):
            parts.append((times[rows], np.full(rows.size, rank[endpoint]), ok[rows]))
    t, e, o = (np.concatenate(p) for p in zip(*parts, strict=True))
    order = np.lexsort((o, e, t))
    t, e, o = t[order], e[order], o[order]
    first = np.ones(t.size, dtype=bool)
    first[1:] = (t[1:] != t[:-1]) | (e[1:] != e[:-1]) | (o[1:] != o[:-1])
    t, e, o = t[first], e[first], o[first]
    return pd.DataFrame({
        "observed_at": pd.DatetimeIndex(t.view("datetime64[us]")).tz_localize("UTC"),
        "endpoint": pd.array(names, dtype="string").take(e),
        "ok": pd.array(o, dtype="boolean"),
    })


def _utc_texts(times: np.ndarray) -> np.ndarray:
    """``storedb.utc_text`` of each time (µs since the epoch), as an object array."""
    text = np.datetime_as_string(times.view("datetime64[us]"), unit="us")
    return np.char.add(text, "Z").astype(object)


@dataclass(frozen=True)
class PollLog:
    """The store's poll log as columns, ascending by poll id: each poll's id, time (µs since
    the epoch), endpoints (``combos[combo]``) and success; ``texts`` its ``observed_at``
    text, None when each is its time's fixed-width UTC text (``storedb.utc_text``), as
    every poll the store records: then it can be kept as numbers (:meth:`encode`)."""

    ids: np.ndarray
    times: np.ndarray
    combo: np.ndarray
    combos: list[str]
    ok: np.ndarray
    texts: np.ndarray | None = None

    _SELECT = "SELECT poll_id, observed_at, endpoints, outcome FROM polls"

    @classmethod
    def fetch(cls, session: Any, after: int = 0) -> PollLog:
        """The polls of ``session``'s store after poll ``after``."""
        return cls.of(session.execute(f"{cls._SELECT} WHERE poll_id > ? ORDER BY poll_id",
                                      (after,)).fetchall())

    @classmethod
    def of(cls, polls: Sequence[tuple[int, str, str, str]]) -> PollLog:
        """The log of ``(poll_id, observed_at, endpoints, outcome)`` rows, ascending."""
        # (columns by itemgetter: unzipping 100,000 tuples makes as many argument tuples)
        ids, ats, lists, outcomes = (list(map(itemgetter(k), polls)) for k in range(4))
        times = pd.to_datetime(ats, utc=True, format="ISO8601").as_unit("us").asi8 \
            if polls else np.zeros(0, dtype=np.int64)
        combo, combos = pd.factorize(np.asarray(lists, dtype=object))
        texts = np.asarray(ats, dtype=object)
        plain = bool((texts == _utc_texts(times)).all()) if polls else True
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(times, dtype=np.int64),
                   np.asarray(combo, dtype=np.int64), [str(c) for c in combos],
                   np.asarray(outcomes, dtype=object) == "ok", None if plain else texts)

    def text(self) -> np.ndarray:
        """Each poll's ``observed_at`` text (an object array)."""
        return self.texts if self.texts is not None else _utc_texts(self.times)

    def between(self, lo: str, hi: str) -> np.ndarray:
        """Which polls' ``observed_at`` text is in [lo, hi] (as text compares)."""
        if not lo and hi == "\uffff":
            return np.ones(self.ids.size, dtype=bool)
        text = self.text()
        return np.asarray((text >= lo) & (text <= hi), dtype=bool)

    def polled(self, endpoint: str) -> np.ndarray:
        """Which polls asked ``endpoint``."""
        asked = np.asarray([endpoint in c.split(",") for c in self.combos], dtype=bool)
        return asked[self.combo] if asked.size else np.zeros(self.ids.size, dtype=bool)

    def select(self, rows: np.ndarray) -> PollLog:
        """The polls of ``rows`` (a boolean mask)."""
        return PollLog(self.ids[rows], self.times[rows], self.combo[rows], self.combos,
                       self.ok[rows], None if self.texts is None else self.texts[rows])

    def rows(self) -> list[tuple[int, str, str]]:
        """``(poll_id, observed_at, endpoints)`` of each poll."""
        return list(zip(self.ids.tolist(), self.text().tolist(),
                        [self.combos[c] for c in self.combo.tolist()], strict=True))

    def plus(self, later: PollLog) -> PollLog:
        """This log and the ``later`` polls after it."""
        combos = list(self.combos)
        combos += [c for c in later.combos if c not in combos]
        code = np.asarray([combos.index(c) for c in later.combos], dtype=np.int64)
        texts = None if self.texts is None and later.texts is None else np.concatenate(
            [self.text(), later.text()])
        return PollLog(np.concatenate([self.ids, later.ids]),
                       np.concatenate([self.times, later.times]),
                       np.concatenate([self.combo, code[later.combo] if code.size
                                       else later.combo]),
                       combos, np.concatenate([self.ok, later.ok]), texts)

    def encode(self) -> dict[str, Any] | None:
        """The log as msgpack-ready data (None: it has texts of other forms)."""
        if self.texts is not None:
            return None
        return {"ids": self.ids.tobytes(), "times": self.times.tobytes(),
                "combo": self.combo.astype(np.int32).tobytes(), "combos": self.combos,
                "ok": self.ok.tobytes()}

    @classmethod
    def decode(cls, data: dict[str, Any]) -> PollLog:
        """The log of :meth:`encode`'s ``data``."""
        return cls(np.frombuffer(data["ids"], dtype=np.int64),
                   np.frombuffer(data["times"], dtype=np.int64),
                   np.frombuffer(data["combo"], dtype=np.int32).astype(np.int64),
                   list(data["combos"]), np.frombuffer(data["ok"], dtype=bool))
