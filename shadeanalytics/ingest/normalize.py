"""Shadeform JSON documents -> raw column lists, in plain Python; secrets are never read.

This is the hot path of every load: one pass over the parsed JSON builds a tuple per row, with
no pandas and no per-row DataFrame work. Type conversion happens afterwards, vectorized, in
``tables``. Secret subtrees (env values, registry credentials, the startup script, docker args)
are never copied: only a presence flag and a sha256 of the script leave this module, and
``redact`` gives the store a payload with the same guarantee.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import mmap
import os
import pickle
import signal
import sys
import warnings
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET

from ..errors import SchemaError
from .arrowrows import from_ipc, ipc_into, rows_to_arrow, struct_type, to_ipc, to_rows
from .decode import (
    UNREADABLE,
    CheckedCluster,
    CheckedInstance,
    Cluster,
    Instance,
    LazyItems,
    LenientCluster,
    LenientInstance,
    TypedList,
)
from .resources import BY_NAME, BY_TABLE, RESOURCES, TOP_COPIES, TYPE_KEYS, Resource
from .schema import (
    CLUSTER_RECORD,
    CLUSTERS,
    INSTANCE_RECORD,
    INSTANCES,
    RECORDS,
    TABLES,
    Column,
    Node,
    shape,
    valid_id,
)

__all__ = [
    "SPLIT_MAX_LOAD",
    "SPLIT_MIN_BYTES",
    "Document",
    "Findings",
    "Lines",
    "Normalized",
    "normalize",
    "normalize_records",
    "redact",
    "script_sha256",
    "splits",
    "ssh_fingerprint",
    "type_name",
]

# Fields the API documents, per object; anything else is loaded around with one warning. The
# cluster and instance shapes come from the record spec (schema.RECORDS).
_INSTANCE_SHAPE = shape(INSTANCE_RECORD)
_CLUSTER_SHAPE = shape(CLUSTER_RECORD)
#: the fields only the /instances/{id}/info shape carries
_INFO_KEYS = frozenset(INSTANCE_RECORD.info)
_CONFIG_KEYS = frozenset(_INSTANCE_SHAPE["configuration"].fields or ())
#: hardware fields that real catalogue responses repeat beside ``configuration``
#: (``schema.CATALOG_RULE`` says how they are read)
_TOP_COPIES = TOP_COPIES
_TYPE_KEYS = TYPE_KEYS
_TYPE_CONFIG_KEYS = (_CONFIG_KEYS - {"os"}) | {"os_options"}
# the fields each account resource documents (resources.RESOURCES)
_VOLUME_KEYS = BY_TABLE["volumes"].known or frozenset()
_VOLUME_TYPE_KEYS = BY_TABLE["volume_types"].known or frozenset()
_SSH_KEY_KEYS = BY_TABLE["ssh_keys"].known or frozenset()
_TEMPLATE_KEYS = BY_TABLE["templates"].known or frozenset()
_CLUSTER_TYPE_KEYS = BY_TABLE["cluster_types"].known or frozenset()
_ENVELOPE_KEYS = frozenset({"observed_at", "endpoint", "response"})
#: list key of each list response -> (its table, its endpoint)
_LISTS: dict[str, tuple[str, str]] = {r.list_key: (r.table, r.endpoint) for r in RESOURCES
                                      if r.primary}
_ENDPOINTS = {key: endpoint for key, (_, endpoint) in _LISTS.items()}
FEATURED_TEMPLATES = BY_NAME["featured_templates"].endpoint
#: list key -> the other endpoints whose lists have that key (the envelope tells them apart)
_SHARED_KEY = {key: frozenset(r.endpoint for r in RESOURCES
                              if r.list_key == key and not r.primary) for key in _LISTS}
#: envelope endpoints of single-object (info) responses -> their table
_INFO_ENDPOINTS = {r.info.strip("/").split("/")[0]: r.table for r in RESOURCES
                   if r.info is not None}
#: list keys told before the single objects of the record spec (clusters first)
_ACCOUNT_LIST_KEYS = tuple(r.list_key for r in RESOURCES if r.primary and r.table not in RECORDS)
#: fields only a single object of a table carries -> that table; fewer marks are checked first
#: (an SSH key's two before a volume's four)
_MARKS = tuple(sorted(((r.marks, r.table) for r in RESOURCES if r.marks),
                      key=lambda pair: len(pair[0])))

#: Raw columns produced for each table, in tuple order. ``_row`` is the parent row number that
#: child tables carry so that a skipped record takes its children with it.
#: columns ``tables`` computes from other columns (no raw field)
_TABLE_DERIVED = frozenset({"hourly_price_usd", "total_vram_gb", "details_observed_at"})
CLUSTER_FIELDS = tuple(c.name for c in CLUSTERS if c.name not in _TABLE_DERIVED)
#: the detail columns: the ones read from the info shape's own fields
DETAIL_FIELDS = tuple(c.name for c in INSTANCES
                      if c.source.split(".")[0] in INSTANCE_RECORD.info)
INSTANCE_FIELDS = (
    *(c.name for c in INSTANCES if c.name not in _TABLE_DERIVED and c.name != "observed_at"),
    "has_configuration", "from_info", "observed_at",
)
INSTANCE_TYPE_FIELDS = (
    "cloud", "shade_instance_type", "cloud_instance_type", "region", "region_display_name",
    "rental_type", "available", "spot_price", "on_demand_price_cents", "gpu_type",
    "gpu_manufacturer", "num_gpus", "vram_per_gpu_in_gb", "vcpus", "memory_in_gb",
    "storage_in_gb", "interconnect", "nvlink", "deployment_type", "boot_time_min_s",
    "boot_time_max_s", "catalog_conflicts", "observed_at",
)
#: the raw columns of the account tables (one flat row per object): their record-spec columns
ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    r.table: tuple(c.name for c in TABLES[r.table] if c.name not in _TABLE_DERIVED)
    for r in RESOURCES if r.primary and r.collect != "core"
}
#: the raw columns of the child tables: ``_row`` (the parent's row number), then their columns
CHILD_FIELDS: dict[str, tuple[str, ...]] = {
    name: ("_row", *(c.name for c in TABLES[name])) for name in BY_NAME["instances"].children}
#: child tables of templates (``_row`` is a template row number)
TEMPLATE_CHILD_FIELDS: dict[str, tuple[str, ...]] = {
    name: ("_row", *(c.name for c in TABLES[name])) for name in BY_NAME["templates"].children}


@dataclass(frozen=True)
class Document:
    """One parsed JSON value and where it came from.

    ``source`` names the file (``data/x.jsonl line 3``, ``<dict>``...), ``path`` is the JSON
    path of ``value`` inside it (``$`` or ``$.response``), ``observed_at`` the capture time.
    """

    value: Any
    source: str
    path: str = "$"
    observed_at: str | None = None
    #: False for files found in a folder or glob: a document of another kind is passed over
    #: there, while one given directly is an error.
    explicit: bool = True
    #: the cluster an instance document belongs to (the store keeps members separately)
    parent: str | None = None
    #: a single instance object that was a list item (the store's instance versions), not an
    #: ``/instances/{id}/info`` response
    listed: bool = False

    def with_time(self, observed_at: str) -> Document:
        """The same document, dated ``observed_at``."""
        return replace(self, observed_at=observed_at)


@dataclass
class Lines:
    """The lines of a big JSONL file, each read into its document when the walk reaches it
    (``document(line, source, explicit)``): a batch the walk may split between two processes
    (``splits``) by blocks of whole lines, each process cutting its own blocks into lines."""

    data: bytes
    name: str
    explicit: bool
    document: Callable[[bytes, str, bool], Document]
    #: the documents the lines gave (counted once walked: the progress bar's)
    count: int = 0

    #: blocks the lines are cut into for a split: its share is met to about 1 %
    BLOCKS = 128

    def bounds(self) -> list[int]:
        """The offset of each block's first byte (each right after a line feed, or a carriage
        return in a file without line feeds), then the end of the data."""
        data, size = self.data, len(self.data)
        end = b"\n" if b"\n" in data else b"\r"
        bounds = [0]
        for k in range(1, self.BLOCKS):
            cut = data.find(end, k * size // self.BLOCKS) + 1
            if bounds[-1] < cut < size:
                bounds.append(cut)
        return [*bounds, size]

    def first_line(self, offset: int) -> int:
        """The number of the line starting at ``offset`` (right after a line end), as
        ``bytes.splitlines`` counts them: ends of lines are LF, CR LF and CR."""
        if not offset:
            return 1
        data = self.data
        returns = data.count(b"\r", 0, offset)  # (none in most files: CR LF is not counted)
        return 1 + data.count(b"\n", 0, offset) + returns \
            - (data.count(b"\r\n", 0, offset) if returns else 0)


#: the fewest bytes of records a load splits between two processes (``splits``): below it,
#: starting the second process costs about what it saves
SPLIT_MIN_BYTES = 20 * 1024**2
#: the share of the records' bytes the first process (the loader's own) walks: both convert
#: their instance rows to Arrow after their walk, the second also encodes the rest of what
#: it added (``_Part``), so both end together
_SPLIT_SHARE = 0.55


#: the most runnable processes besides this one, per other core (the 1-minute load average),
#: at which a load still splits: on a machine busy with other work the second process waits
#: for a core, and the split costs time rather than saves it
SPLIT_MAX_LOAD = 1.0


def splits(size: int) -> bool:
    """Whether records of ``size`` bytes are walked by two processes: at least
    ``SPLIT_MIN_BYTES`` of them, on Linux (``fork``: the second process starts with the
    loaded modules and the input in memory) with two cores or more for this process, one of
    them idle (``SPLIT_MAX_LOAD``)."""
    if size < SPLIT_MIN_BYTES or not sys.platform.startswith("linux") \
            or not hasattr(os, "fork"):
        return False
    cores = len(os.sched_getaffinity(0))
    return cores > 1 and os.getloadavg()[0] - 1 <= SPLIT_MAX_LOAD * (cores - 1)


@dataclass
class Findings:
    """Warnings (one per problem and generalised JSON path) and skipped records of one load."""

    errors: str = "raise"
    skipped: int = 0
    _warnings: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def warn(self, problem: str, general: str, source: str, path: str, rid: Any) -> None:
        """Count one occurrence of ``problem`` at ``general`` (a path with ``[*]``)."""
        seen = self._warnings.get((problem, general))
        if seen is None:
            self._warnings[(problem, general)] = [1, source, path, rid]
        else:
            seen[0] += 1

    def bad(self, problem: str, general: str, source: str, path: str, rid: Any) -> None:
        """A record that cannot load: raise, or (``errors="skip"``) count it and warn."""
        if self.errors == "raise":
            raise SchemaError(problem, source=source, path=path, resource_id=_id_text(rid))
        self.skipped += 1
        self.warn(f"record skipped: {problem}", general, source, path, rid)

    def messages(self) -> list[str]:
        """One line per distinct warning, naming where it was first seen and how often."""
        out = []
        for (problem, general), (count, source, path, rid) in self._warnings.items():
            where = f"{source} at {path}" + (f" (id {_id_text(rid)})" if _id_text(rid) else "")
            times = f"; {count} records" if count > 1 else ""
            out.append(f"{general}: {problem} (first at {where}{times})")
        return out


def _id_text(rid: Any) -> str | None:
    # Only a string id is named: anything else may be a misplaced value.
    return rid if isinstance(rid, str) and len(rid) <= 100 else None


@dataclass
class Normalized:
    """Raw rows of every table, plus where each row came from (for error paths)."""

    clusters: list[tuple[Any, ...]] = field(default_factory=list)
    cluster_origins: list[tuple[int, str]] = field(default_factory=list)
    instances: list[tuple[Any, ...]] = field(default_factory=list)
    #: (document number, JSON path: a ``member_path``)
    instance_origins: list[tuple[int, Any]] = field(default_factory=list)
    instance_types: list[tuple[Any, ...]] = field(default_factory=list)
    instance_type_origins: list[tuple[int, str]] = field(default_factory=list)
    #: (observed_at, endpoint) of every dated list response: a complete poll of that endpoint
    polls: list[tuple[str, str]] = field(default_factory=list)
    #: the child tables' rows, column by column (``CHILD_FIELDS`` order): a tuple per row
    #: would double their memory
    children: dict[str, list[list[Any]]] = field(
        default_factory=lambda: {name: [[] for _ in fields] for name, fields in
                                 (CHILD_FIELDS | TEMPLATE_CHILD_FIELDS).items()}
    )
    #: the instances' child tables are kept per list, not per item: ``_row`` holds the parent
    #: row of each non-empty list and this its length; ``instance_id``, ``observed_at`` and
    #: ``position`` stay empty (``tables`` derives them from the parent rows, vectorized)
    child_counts: dict[str, list[int]] = field(
        default_factory=lambda: {name: [] for name in CHILD_FIELDS}
    )
    #: rows and origins of the account tables (volumes, volume_types, ssh_keys, templates,
    #: cluster_types)
    account: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in ACCOUNT_FIELDS}
    )
    account_origins: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: {name: [] for name in ACCOUNT_FIELDS}
    )
    documents: list[Document] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    #: the first instance rows, as Arrow struct arrays (``arrowrows``), before those of
    #: ``instances``: what a walk split in two processes read (both parts converted while
    #: the processes ran; turned back into tuples only where a rare path reads whole rows)
    instance_blocks: list[Any] = field(default_factory=list)
    #: the rows in ``instance_blocks``: an instance's row number is this + its index
    blocked: int = 0

    def unblock(self) -> None:
        """Every instance row in ``instances``, as tuples (the blocks' first)."""
        if self.instance_blocks:
            self.instances[:0] = [row for block in self.instance_blocks
                                  for row in to_rows(block)]
            self.instance_blocks, self.blocked = [], 0


def general_path(path: str) -> str:
    """``$.clusters[3].instances[0]`` -> ``$.clusters[*].instances[*]``."""
    out, depth = [], 0
    for ch in path:
        if ch == "[":
            depth += 1
            out.append("[*]")
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer",
               float: "a number", bool: "a boolean", type(None): "null"}


def type_name(value: Any) -> str:
    """The JSON type of ``value`` in words (never the value itself)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_ABSENT: Any = object()


def script_sha256(script: dict[str, Any]) -> str | None:
    """sha256 of the decoded ``base64_script``; ValueError when it is not valid base64."""
    return _script_digest(script.get("base64_script"),
                          script.get("base64_script_sha256", _ABSENT))


def _script_digest(encoded: Any, stored: Any = _ABSENT) -> str | None:
    if stored is not _ABSENT:  # a payload the store already redacted
        return stored if type(stored) is str else None
    if encoded is None:
        return None
    if type(encoded) is not str:
        raise ValueError("base64_script is not a string")
    try:
        return hashlib.sha256(base64.b64decode(encoded, validate=True)).hexdigest()
    except binascii.Error as exc:
        raise ValueError("base64_script is not valid base64") from exc


_KIND_NAMES = {r.table: r.described for r in RESOURCES if r.primary}


def _kind(value: dict[str, Any], endpoint: str | None = None) -> tuple[str | None, str | None]:
    """(kind, list key) of a response object: which table it feeds and where its list is.

    A list response is told by its list key; a single object by the envelope's endpoint when
    there is one (``/volumes/{id}/info``...), else by the fields only its kind has.
    """
    if "clusters" in value:
        return "clusters", "clusters"
    for key in _ACCOUNT_LIST_KEYS:
        if key in value:
            return key, key
    if "id" in value and ("instances" in value or "region_info" in value):
        return "clusters", None
    if "id" in value and ("configuration" in value or "shade_instance_type" in value):
        return "instances", None
    if "instances" in value:
        return "instances", "instances"
    if endpoint is not None:
        parts = endpoint.strip("/").split("/")
        if len(parts) == 3 and parts[2] == "info" and parts[0] in _INFO_ENDPOINTS:
            return _INFO_ENDPOINTS[parts[0]], None
    if "id" in value:
        for marks, table in _MARKS:
            if any(mark in value for mark in marks):
                return table, None
    return None, None


class _Interned(dict[Any, Any]):
    """Text values, each kept once. Only ``str`` (and None) is stored: 1, 1.0 and True are
    equal as keys, and must not come back as one another."""

    def __init__(self) -> None:
        super().__init__({None: None})

    def __missing__(self, key: Any) -> Any:
        if type(key) is str:
            self[key] = key
        return key


def _same(value: Any) -> Any:
    return value


def member_path(path: str | tuple[str, int]) -> str:
    """The JSON path of a record: ``path`` as it is, or ``(cluster path, j)`` as
    ``<cluster path>.instances[j]`` (a cluster's members are spelled out only when a message
    needs them)."""
    return path if type(path) is str else f"{path[0]}.instances[{path[1]}]"


def _add(columns: list[list[Any]], row: tuple[Any, ...]) -> None:
    """Append ``row`` to a child table kept column by column."""
    for column, value in zip(columns, row, strict=True):
        column.append(value)


# -- the row builders, derived from the record spec ------------------------------------------
#
# One builder per record (cluster, instance), generated once from ``schema`` as Python source
# and compiled: a row is a tuple of the table's raw fields in ``*_FIELDS`` order, each read
# from the struct (typed bytes, or a parsed object converted with ``msgspec.convert``) along
# its column's JSON path; a column derived from a secret reads it only as the secret's kind
# allows (``presence``: set or not; ``digest``: its sha256); the child tables' rows are read
# along their sources' list paths. Generated code costs no interpretation per row: the
# builders are the hot loop of every load.

#: text columns whose values repeat across rows: kept once per load (``_Interned``)
_INTERNED = frozenset({"str", "status", "time"})
#: text columns unique per row: interning them would only cost
_UNIQUE = frozenset({"cluster_id", "instance_id", "name", "cloud_assigned_id", "ip",
                     "cloud_cluster_id"})
_SECRET_KINDS = frozenset({"raw", "presence", "digest"})


def _empty(fields: dict[str, Node]) -> Any:
    """An absent object: every field at its default (``UNSET`` where absence is told)."""
    return type("Absent", (), {k: UNSET if n.absent else None for k, n in fields.items()})()


class _Source:
    """Python source of one builder: locals for the objects along the paths it reads."""

    def __init__(self, record_shape: dict[str, Node]) -> None:
        self.shape = record_shape
        self.lines: list[str] = []
        self.local: dict[tuple[str, ...], str] = {}
        #: local -> the name of the stand-in it holds when its object is absent
        self.empties: dict[str, str] = {}
        self.env: dict[str, Any] = {"UNSET": UNSET, "Raw": msgspec.Raw}

    def obj(self, path: tuple[str, ...]) -> tuple[str, dict[str, Node]]:
        """The local holding the object at ``path`` (an absent one: a stand-in), its fields."""
        fields, var = self.shape, "r"
        for n, part in enumerate(path):
            fields = fields[part].fields or {}
            key = path[:n + 1]
            if key not in self.local:
                empty = f"E{len(self.env)}"
                self.env[empty] = _empty(fields)
                self.local[key] = f"o{len(self.local)}"
                self.empties[self.local[key]] = empty
                self.lines.append(f"    {self.local[key]} = {var}.{part} or {empty}")
            var = self.local[key]
        return var, fields

    def value(self, path: str) -> tuple[str, Node]:
        *parents, leaf = path.split(".")
        var, fields = self.obj(tuple(parents))
        return f"{var}.{leaf}", fields[leaf]

    def compile(self, name: str, params: str, body: list[str]) -> Any:
        source = f"def {name}({params}):\n" + "\n".join([*self.lines, *body]) + "\n"
        exec(compile(source, f"<{name} from the record spec>", "exec"), self.env)
        self.env[name].source = source  # to read what was generated
        return self.env[name]


def _absent_test(var: str, fields: dict[str, Node]) -> str:
    """Source: True when the object in ``var`` is ``{}`` (every field absent)."""
    tests = [f"{var}.{k} is UNSET" if n.kind != "raw"
             else f"({var}.{k} is UNSET or (type({var}.{k}) is Raw and not {var}.{k}))"
             for k, n in fields.items()]
    return " and ".join(tests)


def _row_source(src: _Source, columns: tuple[Column, ...], fields: tuple[str, ...],
                extra: dict[str, str]) -> tuple[list[str], list[str]]:
    """(statements computing the secrets' derived columns, the row's expressions)."""
    by_name = {c.name: c for c in columns}
    before, exprs = [], []
    for field_name in fields:
        column = by_name.get(field_name)
        if field_name in extra:
            exprs.append(extra[field_name])
            continue
        if column is None or column.source.startswith("("):
            raise ValueError(f"no way to build raw field {field_name}")
        expr, node = src.value(column.source)
        parent = src.obj(tuple(column.source.split(".")[:-1]))[0]
        parent_fields = src.obj(tuple(column.source.split(".")[:-1]))[1]
        if node.kind == "presence":  # only whether it is set, when its object is given
            before.append(f"    {field_name} = None if {_absent_test(parent, parent_fields)} "
                          f"else bool({expr})")
            expr = field_name
        elif node.kind == "digest":  # only its sha256 (warned about when not base64)
            before.append(f"    {field_name} = digest({parent}, path, rid) "
                          f"if {parent} is not {src.empties[parent]} else None")
            expr = field_name
        elif node.kind in _SECRET_KINDS or column.parse == "derived":
            raise ValueError(f"no way to build raw field {field_name}")
        else:
            if node.absent:
                expr = f"(None if {expr} is UNSET else {expr})"
            if column.parse in _INTERNED and field_name not in _UNIQUE:
                expr = f"i({expr})"
        exprs.append(expr)
    return before, exprs


def _children_source(src: _Source, children: tuple[str, ...]) -> list[str]:
    """Statements appending the rows of each child table (``C[n]``: the ``append`` of its
    ``_row`` column, of its list lengths, and of each of its value columns; text values
    interned): the parent row and length once per list, the values once per item
    (``Normalized.child_counts``)."""
    body = []
    for n, table in enumerate(children):
        columns = [c for c in TABLES[table] if c.parse != "derived"]
        listed = columns[0].source.split("[]")[0]
        items = [c.source.split("[].", 1)[1] if "[]." in c.source else "" for c in columns]
        expr, _ = src.value(listed)
        adds = [f"a{k}" for k in range(len(items))]
        body += [f"    v = {expr}",
                 "    if v:",
                 f"        p, n, {', '.join(adds)} = C[{n}]",
                 "        p(row_no); n(len(v))",
                 "        for x in v:"]
        for k, (item, column) in enumerate(zip(items, columns, strict=True)):
            value = f"x.{item}" if item else "x"
            if column.parse in _INTERNED:
                value = f"i(w) if type(w := {value}) is str else w"
            body.append(f"            {adds[k]}({value})")
    return body


def _compile_cluster() -> Any:
    """``cluster_row(r, instance_count, observed_at, i)``: the clusters row of struct ``r``."""
    src = _Source(_CLUSTER_SHAPE)
    extra = {"instance_count": "instance_count", "observed_at": "observed_at"}
    before, exprs = _row_source(src, CLUSTERS, CLUSTER_FIELDS, extra)
    return src.compile("cluster_row", "r, instance_count, observed_at, i",
                       [*before, "    return (", *(f"        {e}," for e in exprs), "    )"])


def _compile_instance() -> Any:
    """``instance_row(r, cluster_id, info, observed_at, row_no, path, i, digest, C)``: the
    instances row of struct ``r`` (its children appended to the lists ``C``, in
    ``INSTANCE_RECORD.children`` order). ``i`` interns text (``_same`` when a value is
    unhashable), ``digest(script, path)`` hashes a script."""
    src = _Source(_INSTANCE_SHAPE)
    info = " and ".join(f"r.{k} is UNSET" for k in INSTANCE_RECORD.info)
    extra = {"cluster_id": "cluster_id", "from_info": "info", "observed_at": "observed_at",
             # the info shape: an info response, or any of its own fields in a list item
             "has_details": f"info or not ({info})",
             "has_configuration": "r.configuration is not None"}
    before, exprs = _row_source(src, INSTANCES, INSTANCE_FIELDS, extra)
    row = ["(", *(f"    {e}," for e in exprs), ")"]
    body = ["    rid = r.id", *before, "    try:",
            f"        row = {row[0]}", *(f"        {line}" for line in row[1:]),
            "    except TypeError:  # an object where text belongs: built without interning",
            "        i = _same",
            f"        row = {row[0]}", *(f"        {line}" for line in row[1:]),
            *_children_source(src, INSTANCE_RECORD.children), "    return row"]
    src.env["_same"] = _same
    return src.compile("instance_row",
                       "r, cluster_id, info, observed_at, row_no, path, i, digest, C", body)


#: id of a shape -> (its field names, its object and list fields)
_KNOWN: dict[int, tuple[frozenset[str], list[tuple[str, Node]]]] = {}


def _structured(fields: dict[str, Node]) -> list[tuple[str, Node]]:
    """The object and list fields of a shape (what the walker checks the shape of)."""
    return [(k, n) for k, n in fields.items() if n.kind in ("object", "list")]


_cluster_row = _compile_cluster()
_instance_row = _compile_instance()


class _Normalizer:
    def __init__(self, out: Normalized, kinds: frozenset[str] | None = None) -> None:
        self.out = out
        self.kinds = kinds
        self._digests: dict[str, str | None] = {}
        # one object per distinct value of a load: a cloud, status or time that 85,000 rows
        # repeat is kept once, and hashed once for every later lookup (a C-level call per
        # field; an unhashable value raises TypeError and its row is built without it)
        self._intern = _Interned().__getitem__
        self.findings = out.findings
        self._doc_no = 0
        self._doc: Document = Document(None, "")
        #: the envelope's endpoint of the response being walked (None when it does not say)
        self._endpoint: str | None = None
        #: a list is being walked in two processes (``_in_two``)
        self._split = False
        self._child_rows = [(out.children[t][0].append, out.child_counts[t].append,
                             *(column.append for column in out.children[t][4:]))
                            for t in INSTANCE_RECORD.children]

    # -- documents -------------------------------------------------------------------------

    def document(self, doc: Document) -> None:
        if type(doc.value) is Lines:
            self._lines(doc.value, doc.observed_at)
            return
        self.out.documents.append(doc)
        self._doc_no = len(self.out.documents) - 1
        self._doc = doc
        self._value(doc.value, doc.path, doc.observed_at)

    def _value(self, value: Any, path: str, observed_at: str | None, depth: int = 0) -> None:
        if type(value) is TypedList:
            self._typed_list(value, path, observed_at)
            return
        if type(value) is list and depth < 2:
            for i, item in enumerate(value):
                self._value(item, f"{path}[{i}]", observed_at, depth + 1)
            return
        if type(value) is not dict:
            self._bad_shape(value, path, "a Shadeform response object")
            return
        if "response" in value and value.keys() <= _ENVELOPE_KEYS:
            observed_at = self._envelope_time(value, path, observed_at)
            endpoint = value.get("endpoint")
            outer, self._endpoint = self._endpoint, endpoint if type(endpoint) is str else None
            try:
                self._value(value["response"], f"{path}.response", observed_at, depth)
            finally:
                self._endpoint = outer
            return
        kind, key = _kind(value, self._endpoint)
        if kind is None:
            self._bad_shape(value, path, "a Shadeform response object")
        elif self.kinds is not None and kind not in self.kinds:
            self._wrong_kind(kind, path)
        elif key is not None:
            self._list(value, key, path, observed_at)
        elif kind == "clusters":
            self.cluster(value, path, observed_at)
        elif kind == "instances":
            # a single instance object is an /instances/{id}/info response
            self.instance(value, path, observed_at, self._doc.parent, not self._doc.listed)
        else:
            self._walker(kind)(value, path, observed_at)

    def _walker(self, table: str) -> Any:
        # each table's row builder is named after its kind (``volume``, ``ssh_key``...); a
        # resource without one of its own is read by ``_declared``, from its columns' sources
        resource = BY_TABLE[table]
        if callable(getattr(type(self), resource.kind, None)):
            return getattr(self, resource.kind)
        return functools.partial(self._declared, resource)

    def record(self, kind: str, doc: Document, path: str, endpoint: str | None) -> None:
        """One record whose kind is known (a history store version): no guessing, no envelope.

        ``kind`` is a store kind (``cluster``: its members are not walked, ``instance``,
        ``instance_info``, or one of :data:`RECORD_TABLES`); ``endpoint`` is the list endpoint
        it was polled from (it tells a featured template).
        """
        self.out.documents.append(doc)
        self._doc_no = len(self.out.documents) - 1
        self._doc = doc
        self._endpoint = endpoint
        if kind == "cluster":
            self.cluster(doc.value, path, doc.observed_at, members_too=False)
        elif kind in ("instance", "instance_info"):
            self.instance(doc.value, path, doc.observed_at, doc.parent, kind == "instance_info")
        elif kind in RECORD_TABLES:
            self._walker(RECORD_TABLES[kind])(doc.value, path, doc.observed_at)
        else:  # stored by a later version that declares more resources (the kind is ours)
            self.findings.warn(f"a record of kind '{kind}', which this version of "
                               "shadeanalytics does not know; left out", general_path(path),
                               doc.source, path, None)

    def _wrong_kind(self, kind: str, path: str) -> None:
        if self._doc.explicit and self.kinds is not None:
            expected = _KIND_NAMES[next(iter(sorted(self.kinds)))]
            self.findings.bad(f"found an object, expected {expected}, not {_KIND_NAMES[kind]}",
                              general_path(path), self._doc.source, path, None)

    def _envelope_time(self, env: dict[str, Any], path: str, default: str | None) -> str | None:
        obs = env.get("observed_at")
        if obs is None:
            return default
        if type(obs) is str:
            try:
                datetime.fromisoformat(obs)
                return obs
            except ValueError:
                problem = "observed_at is not an RFC 3339 timestamp"
        else:
            problem = f"observed_at is {type_name(obs)}, expected an RFC 3339 string"
        self.findings.bad(problem, general_path(f"{path}.observed_at"), self._doc.source,
                          f"{path}.observed_at", None)
        return default

    def _bad_shape(self, value: Any, path: str, expected: str) -> None:
        self.findings.bad(f"found {type_name(value)}, expected {expected}", general_path(path),
                          self._doc.source, path, None)

    def _list(self, value: dict[str, Any], key: str, path: str, observed_at: str | None) -> None:
        items = value[key]
        lpath = f"{path}.{key}"
        if type(items) is not list:
            self._bad_shape(items, lpath, "a list")
            return
        self._unknown(value, frozenset({key}), path)
        if observed_at is not None:
            endpoint = _ENDPOINTS[key]
            shared = self._endpoint
            if shared is not None and shared in _SHARED_KEY[key]:  # /templates/featured
                endpoint = shared
            self.out.polls.append((observed_at, endpoint))
        if key == "clusters":
            for i, item in enumerate(items):
                self.cluster(item, f"{lpath}[{i}]", observed_at)
        elif key == "instances":
            for i, item in enumerate(items):
                self.instance(item, f"{lpath}[{i}]", observed_at, None)
        else:
            walk = self._walker(key)
            for i, item in enumerate(items):
                walk(item, f"{lpath}[{i}]", observed_at)

    def _unknown(self, obj: dict[str, Any], known: frozenset[str], path: str,
                 rid: Any = None) -> None:
        extra = obj.keys() - known
        if extra:
            rid = rid if rid is not None else obj.get("id")
            for key in sorted(extra, key=str):
                self.findings.warn("unknown field, loaded around", general_path(f"{path}.{key}"),
                                   self._doc.source, f"{path}.{key}", rid)

    def _obj(self, value: Any, path: str, rid: Any) -> dict[str, Any]:
        """A nested object, or ``{}`` (with a finding) when it is not one."""
        if type(value) is dict:
            return value
        if value is not None:
            self.findings.warn(f"found {type_name(value)}, expected an object; ignored",
                               general_path(path), self._doc.source, path, rid)
        return {}

    def _items(self, value: Any, path: str, rid: Any) -> list[Any]:
        if type(value) is list:
            return value
        if value is not None:
            self.findings.warn(f"found {type_name(value)}, expected a list; ignored",
                               general_path(path), self._doc.source, path, rid)
        return []

    def _required_id(self, rec: dict[str, Any], path: str, key: str = "id") -> bool:
        rid = rec.get(key)
        if valid_id(rid):
            return True
        problem = (f"missing required field '{key}'" if rid is None
                   else f"'{key}' is {type_name(rid)}, expected a non-empty string")
        self.findings.bad(problem, general_path(f"{path}.{key}"), self._doc.source,
                          f"{path}.{key}", None)
        return False

    # -- records ---------------------------------------------------------------------------

    def cluster(self, c: Any, path: str, observed_at: str | None,
                members_too: bool = True) -> None:
        if type(c) is not dict:
            self._bad_shape(c, path, "a cluster object")
            return
        if not self._required_id(c, path):
            return
        cid = c["id"]
        members = c.get("instances")
        if type(members) is not list:
            problem = ("missing required field 'instances'" if members is None
                       else f"'instances' is {type_name(members)}, expected a list")
            self.findings.bad(problem, general_path(f"{path}.instances"), self._doc.source,
                              f"{path}.instances", cid)
            return
        count = len(members)
        if not members_too:  # the store's clusters: members are records of their own
            c = {**c, "instances": []}  # read (and warned about) as those records only
        try:  # a record as the spec has it needs no walk
            struct = msgspec.convert(c, CheckedCluster)
        except msgspec.ValidationError:
            struct = msgspec.convert(self._conform(c, _CLUSTER_SHAPE, path, None), LenientCluster)
        self._typed_cluster(struct, path, observed_at, general=True, count=count)

    def instance(self, r: Any, path: str, observed_at: str | None, cluster_id: str | None,
                 info: bool = False) -> None:
        if type(r) is not dict:
            self._bad_shape(r, path, "an instance object")
            return
        if not self._required_id(r, path):
            return
        try:  # a record as the spec has it needs no walk
            struct = msgspec.convert(r, CheckedInstance)
        except msgspec.ValidationError:
            struct = msgspec.convert(self._conform(r, _INSTANCE_SHAPE, path, None),
                                     LenientInstance)
        self._typed_instance(struct, path, observed_at, cluster_id, info)

    def _conform(self, obj: dict[str, Any], fields: dict[str, Node], path: str,
                 rid: Any) -> dict[str, Any]:
        """``obj`` as the record spec's ``fields`` can take it: unknown fields reported (and
        loaded around), an object or list of the wrong shape reported and read as absent.
        The problems are named by JSON path and id here; the row builder never sees them."""
        known = _KNOWN.get(id(fields))
        if known is None:
            known = _KNOWN[id(fields)] = (frozenset(fields), _structured(fields))
        rid = obj.get("id") if rid is None else rid
        if obj.keys() - known[0]:
            self._unknown(obj, known[0], path, rid)
            obj = {k: v for k, v in obj.items() if k in known[0]}  # loaded around
        fixed = None
        for key, node in known[1]:
            value = obj.get(key)
            if value is None:
                continue
            vpath = f"{path}.{key}"
            if node.kind == "object":
                if type(value) is not dict:
                    self._obj(value, vpath, rid)
                    new: Any = None
                else:
                    new = self._conform(value, node.fields or {}, vpath, rid)
            elif type(value) is not list:
                self._items(value, vpath, rid)
                new = None
            elif node.fields is not None:
                new = value
                for pos, item in enumerate(value):
                    if type(item) is dict:
                        done = self._conform(item, node.fields, f"{vpath}[{pos}]", rid)
                    else:
                        self._obj(item, f"{vpath}[{pos}]", rid)
                        done = {}
                    if done is not item:
                        new = list(value) if new is value else new
                        new[pos] = done
            else:
                continue
            if new is not value:
                fixed = dict(obj) if fixed is None else fixed
                fixed[key] = new
        return obj if fixed is None else fixed

    def _thresholds(self, r: dict[str, Any], path: str, rid: Any) -> tuple[Any, ...]:
        """``auto_delete`` and ``alert`` thresholds and ``volume_mount.auto`` of ``r``."""
        auto = self._obj(r.get("auto_delete"), f"{path}.auto_delete", rid)
        alert = self._obj(r.get("alert"), f"{path}.alert", rid)
        mount = self._obj(r.get("volume_mount"), f"{path}.volume_mount", rid)
        return (auto.get("date_threshold"), auto.get("spend_threshold"),
                alert.get("date_threshold"), alert.get("spend_threshold"), mount.get("auto"))

    def _template_launch(self, launch: Any, path: str, tid: Any, row_no: int,
                         observed_at: str | None) -> tuple[Any, Any, Any, Any]:
        """(type, image, has_registry_credentials, script_sha256) of a template's launch
        configuration; its docker env names go to ``template_envs``; secrets are not touched."""
        launch = self._obj(launch, path, tid)
        docker = self._obj(launch.get("docker_configuration"), f"{path}.docker_configuration",
                           tid)
        image = has_credentials = digest = None
        if docker:
            dpath = f"{path}.docker_configuration"
            image = docker.get("image")
            has_credentials = bool(docker.get("registry_credentials"))
            envs = self.out.children["template_envs"]
            for pos, env in enumerate(self._items(docker.get("envs"), f"{dpath}.envs", tid)):
                env = self._obj(env, f"{dpath}.envs[{pos}]", tid)
                _add(envs, (row_no, tid, observed_at, pos, "docker", env.get("name")))
        script = self._obj(launch.get("script_configuration"), f"{path}.script_configuration",
                           tid)
        if script:
            digest = self._script_digest(script, f"{path}.script_configuration", tid)
        return launch.get("type"), image, has_credentials, digest

    def _script_digest(self, script: dict[str, Any], path: str, iid: str) -> str | None:
        return self._digest(script.get("base64_script"),
                            script.get("base64_script_sha256", _ABSENT), path, iid)

    def _digest(self, encoded: Any, stored: Any, path: str | tuple[Any, str],
                iid: str) -> str | None:
        """``path``: the script configuration's, or (a ``member_path``, the rest of it)."""
        # the nodes of a cluster usually share one script: hash it once per load (the cache
        # lives as long as this load)
        cacheable = stored is _ABSENT and type(encoded) is str
        if cacheable and encoded in self._digests:
            return self._digests[encoded]
        try:
            digest = _script_digest(encoded, stored)
        except ValueError:
            if type(path) is tuple:
                path = member_path(path[0]) + path[1]
            self.findings.warn("not valid base64; script_sha256 left empty",
                               general_path(f"{path}.base64_script"), self._doc.source,
                               f"{path}.base64_script", iid)
            return None
        if cacheable:
            self._digests[encoded] = digest
        return digest

    # -- records (typed structs, or parsed objects converted): one builder -------------------

    def _typed_list(self, typed: TypedList, path: str, observed_at: str | None) -> None:
        if typed.envelope:
            path = f"{path}.response"
            if typed.observed_at is not None:
                observed_at = typed.observed_at
        if typed.kind == "array":  # a JSON array of cluster info responses
            items = typed.items

            def walk_array(start: int, stop: int) -> None:
                for i, c in _numbered(items, start, stop):
                    ipath = f"{path}[{i}]"
                    if c is UNREADABLE:
                        self.findings.bad("nested too deeply to be a Shadeform response",
                                          general_path(ipath), self._doc.source, ipath, None)
                    elif type(c) is not Cluster:
                        self._value(c, ipath, observed_at, 1)
                    elif self.kinds is not None and "clusters" not in self.kinds:
                        self._wrong_kind("clusters", ipath)
                    else:
                        self._typed_cluster(c, ipath, observed_at)

            self._in_two(_sizes(items), walk_array)
            return
        kind = "clusters" if typed.kind == "cluster" else typed.kind
        if self.kinds is not None and kind not in self.kinds:
            self._wrong_kind(kind, path)
            return
        if typed.kind == "cluster":  # one cluster info response
            self._typed_cluster(typed.items[0], path, observed_at)  # type: ignore[index]
            # read: its structs (and the line they view) can go now, not with the load's
            # documents (kept to name sources): one JSONL line at a time is alive, not all
            typed.items = []
            return
        lpath = f"{path}.{typed.kind}"
        if observed_at is not None:
            self.out.polls.append((observed_at, _ENDPOINTS[typed.kind]))
        if typed.kind == "clusters":
            items = typed.items

            def walk_clusters(start: int, stop: int) -> None:
                for i, c in _numbered(items, start, stop):
                    if type(c) is not Cluster:
                        self.cluster(c, f"{lpath}[{i}]", observed_at)
                    else:
                        self._typed_cluster(c, f"{lpath}[{i}]", observed_at)

            self._in_two(_sizes(items), walk_clusters)
        else:
            for i, r in enumerate(typed.items):
                if type(r) is not Instance:
                    self.instance(r, f"{lpath}[{i}]", observed_at, None)
                else:
                    self._typed_instance(r, f"{lpath}[{i}]", observed_at, None)

    def _lines(self, lines: Lines, observed_at: str | None) -> None:
        """The documents of a JSONL file's lines (``observed_at``: the load's default)."""

        bounds = lines.bounds()

        def walk_lines(start: int, stop: int) -> None:
            begin, end, data = bounds[start], bounds[stop], lines.data
            part = data if begin == 0 and end == len(data) else data[begin:end]
            for number, line in enumerate(part.splitlines(), start=lines.first_line(begin)):
                if line.strip():
                    doc = lines.document(line, f"{lines.name} line {number}", lines.explicit)
                    self.document(doc.with_time(observed_at)
                                  if observed_at and not doc.observed_at else doc)

        before = len(self.out.documents)
        self._in_two([end - begin for begin, end in itertools.pairwise(bounds)], walk_lines)
        lines.count = len(self.out.documents) - before

    # -- two processes: a big list's records split in two (``splits``) ---------------------

    def _in_two(self, sizes: list[int], walk: Callable[[int, int], None]) -> None:
        """``walk(0, n)`` over the ``n`` records of ``sizes`` (bytes each): in two processes
        when ``splits`` says so, else in this one.

        A forked child walks the second part into its copy of the rows and sends what it
        added back (``_Part``) through a pipe, while this process walks the first; its rows,
        origins and findings are then appended as the walk in one process would have
        (row numbers, document numbers, first occurrences and counts of warnings). When the
        child fails (a record that cannot load with ``errors="raise"``, anything else), this
        process walks the second part itself: the error it meets is the one a walk in one
        process meets, with the same file, JSON path and id.
        """
        n = len(sizes)
        if n < 2 or self._split or not splits(sum(sizes)):
            walk(0, n)  # (a big list inside a part: split once)
            return
        self._split = True
        try:
            self._fork_walk(sizes, walk)
        finally:
            self._split = False

    def _fork_walk(self, sizes: list[int], walk: Callable[[int, int], None]) -> None:
        """``_in_two``'s two processes."""
        n = len(sizes)
        ends = list(itertools.accumulate(sizes))
        split = min(max(bisect_left(ends, ends[-1] * _SPLIT_SHARE) + 1, 1), n - 1)
        mark = {key: len(values) for key, values in _lists(self.out).items()}
        try:
            read_fd, write_fd = os.pipe()
        except OSError:  # out of file descriptors: one process
            walk(0, n)
            return
        shared = _shared_memory(int(ends[-1] * _SHARED_PER_BYTE))
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns on fork with threads running (pyarrow's pools): the child
                # runs no thread, takes no lock of theirs and leaves by os._exit
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:  # no process to be had (a limit): one process
            os.close(read_fd)
            os.close(write_fd)
            walk(0, n)
            return
        if pid == 0:  # the child: walk the second part, send what it added
            code = 1
            try:
                os.close(read_fd)
                self.findings._warnings = {}
                self.findings.skipped = 0
                walk(split, n)
                added = self._added(mark)
                # its instance rows as Arrow, written straight into the shared memory
                array, at = _instances_arrow(added["instances"]), 0
                if array is not None and shared is not None:
                    with memoryview(shared) as view:
                        at = ipc_into(array, view)
                payload = _PART.encode(_part(added, array, at))
                del added, array
                start = -(-at // 64) * 64  # (the rest after it, aligned)
                with os.fdopen(write_fd, "wb") as pipe:
                    if shared is not None and start + len(payload) <= len(shared):
                        shared[start:start + len(payload)] = payload  # (none through the pipe)
                        pipe.write(b"S" + start.to_bytes(8, "little")
                                   + len(payload).to_bytes(8, "little"))
                    else:
                        pipe.write(b"P")
                        pipe.write(payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        status = 1
        try:
            walk(0, split)
            # this part's instance rows as Arrow while the child still walks (``tables``
            # then converts none of them; kept only if the child's come as Arrow too)
            head = _instances_arrow(self.out.instances)
            with os.fdopen(read_fd, "rb") as pipe:
                read_fd = -1
                payload = pipe.read()
            status = os.waitpid(pid, 0)[1]
            pid = 0
        finally:
            if pid:  # this part failed (or was interrupted): the child's is not needed
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if read_fd >= 0:
                os.close(read_fd)
        if status == 0 and payload[:1] == b"S" and shared is not None:
            start = int.from_bytes(payload[1:9], "little")
            end = start + int.from_bytes(payload[9:17], "little")
            with memoryview(shared) as view, view[start:end] as used:
                part = _PART_DECODER.decode(used)
        elif status == 0 and payload[:1] == b"P":
            with memoryview(payload) as view, view[1:] as used:
                part = _PART_DECODER.decode(used)
        else:
            part = None
        arrows: memoryview | None = None
        if part is not None and part.shared and shared is not None:
            # the child's instances, viewed where they are (the mmap goes with the last view)
            arrows = memoryview(shared)[:part.shared]
        elif shared is not None:
            shared.close()
        del payload  # (each piece goes as soon as it is read: a large load's peak memory)
        if part is not None:
            added = _added(part, arrows)
            self._append(added, mark)
            tail = added[" tail"]
            if tail is not None and (head is not None or not self.out.instances):
                blocks = [tail] if head is None else [head, tail]  # the part's rows as Arrow
                self.out.instance_blocks += blocks
                self.out.blocked += sum(map(len, blocks))
                self.out.instances.clear()
            elif tail is not None:  # (this part's rows do not convert: all as tuples)
                self.out.instances.extend(to_rows(tail))
        else:
            walk(split, n)

    def _added(self, mark: dict[str, int]) -> dict[str, Any]:
        """What the walk added to every list since ``mark`` (the documents without their
        values: only their names are read later), and its findings."""
        added: dict[str, Any] = {key: values[mark[key]:]
                                 for key, values in _lists(self.out).items()}
        added["documents"] = [replace(doc, value=None) for doc in added["documents"]]
        added[" warnings"] = self.findings._warnings
        added[" skipped"] = self.findings.skipped
        return added

    def _append(self, added: dict[str, Any], mark: dict[str, int]) -> None:
        """The child's ``_added``, appended after this process's part of the walk."""
        lists = _lists(self.out)
        grown = {key: len(lists[key]) - mark[key]
                 for key in ("documents", "instances", "account.templates")}
        first_new_doc = mark["documents"]
        for key, values in lists.items():
            more = added[key]
            if grown["documents"] and key.endswith("origins"):
                more = [(d + grown["documents"] if d >= first_new_doc else d, where)
                        for d, where in more]
            elif key.startswith("children.") and key.endswith(".0"):
                parent = "account.templates" if key.split(".")[1] in TEMPLATE_CHILD_FIELDS \
                    else "instances"
                if grown[parent]:
                    more = [row + grown[parent] for row in more]
            values.extend(more)
        findings = self.findings
        for key, (count, *first) in added[" warnings"].items():
            seen = findings._warnings.get(key)
            if seen is None:
                findings._warnings[key] = [count, *first]
            else:
                seen[0] += count
        findings.skipped += added[" skipped"]

    def _typed_cluster(self, c: Any, path: str, observed_at: str | None,
                       general: bool = False, count: int | None = None) -> None:
        """``count``: the members the response listed, when ``c`` has them left out."""
        cid = c.id
        members = c.instances
        count = len(members) if count is None else count
        try:
            row = _cluster_row(c, count, observed_at, self._intern)
        except TypeError:  # an object where text belongs (loaded around later): not interned
            row = _cluster_row(c, count, observed_at, _same)
        self.out.clusters.append(row)
        self.out.cluster_origins.append((self._doc_no, path))
        if general:
            for j, m in enumerate(members):
                self.instance(m, f"{path}.instances[{j}]", observed_at, cid)
            return
        rows, origins = self.out.instances, self.out.instance_origins
        doc_no, intern, digest, children = self._doc_no, self._intern, self._script, \
            self._child_rows
        blocked = self.out.blocked
        for j, m in enumerate(members):
            # the member's path, spelled out only when a message needs it (member_path)
            mpath = (path, j)
            rows.append(_instance_row(m, cid, False, observed_at, blocked + len(rows), mpath,
                                      intern, digest, children))
            origins.append((doc_no, mpath))

    def _typed_instance(self, r: Any, path: str, observed_at: str | None,
                        cluster_id: str | None, info: bool = False) -> None:
        rows = self.out.instances
        rows.append(_instance_row(r, cluster_id, info, observed_at, self.out.blocked + len(rows),
                                  path, self._intern, self._script, self._child_rows))
        self.out.instance_origins.append((self._doc_no, path))

    def _script(self, script: Any, path: str | tuple[str, int], iid: str) -> str | None:
        """script_sha256 of an instance's script configuration (``path``: the instance's)."""
        stored = _ABSENT if script.base64_script_sha256 is UNSET \
            else script.base64_script_sha256
        return self._digest(script.base64_script, stored,
                            (path, ".launch_configuration.script_configuration"), iid)

    def _hardware(self, t: dict[str, Any], path: str, name: Any) -> tuple[dict[str, Any], Any]:
        """The configuration of an instance type, reconciled with its top-level copies
        (``schema.CATALOG_RULE``), and the fields where the two disagree (or None)."""
        cfg = self._obj(t.get("configuration"), f"{path}.configuration", name)
        if cfg.keys() - _TYPE_CONFIG_KEYS:
            self._unknown(cfg, _TYPE_CONFIG_KEYS, f"{path}.configuration", name)
        if t.keys().isdisjoint(_TOP_COPIES):
            return cfg, None
        merged = dict(cfg)
        conflicts = []
        for key in _TOP_COPIES:
            top, nested = t.get(key), cfg.get(key)
            if top is None:
                continue
            if nested is None:
                merged[key] = top
            elif top != nested or type(top) is not type(nested):
                conflicts.append(key)
                if key == "nvlink" and top is True:
                    merged[key] = True
        return merged, ",".join(conflicts) or None

    def instance_type(self, t: Any, path: str, observed_at: str | None) -> None:
        if type(t) is not dict:
            self._bad_shape(t, path, "an instance type object")
            return
        if t.keys() - _TYPE_KEYS:
            self._unknown(t, _TYPE_KEYS, path)
        get = t.get
        name = get("shade_instance_type")
        cfg, conflicts = self._hardware(t, path, name)
        boot = self._obj(get("boot_time"), f"{path}.boot_time", name)
        cget = cfg.get
        common = (
            get("hourly_price"), cget("gpu_type"), cget("gpu_manufacturer"), cget("num_gpus"),
            cget("vram_per_gpu_in_gb"), cget("vcpus"), cget("memory_in_gb"),
            cget("storage_in_gb"), cget("interconnect"), cget("nvlink"), get("deployment_type"),
            boot.get("min_boot_in_sec"), boot.get("max_boot_in_sec"), conflicts, observed_at,
        )
        head = (get("cloud"), name, get("cloud_instance_type"))
        availability = get("availability")
        if availability is None and "region" in t:
            # the 2024 shape: one region at top level, no availability list
            availability = [{"region": t["region"], "available": True}]
        for pos, entry in enumerate(self._items(availability, f"{path}.availability", name)):
            entry = self._obj(entry, f"{path}.availability[{pos}]", name)
            rental = entry.get("rental_type") or "on_demand"
            self.out.instance_types.append((
                *head, entry.get("region"), entry.get("display_name"), rental,
                entry.get("available"), entry.get("hourly_price"), *common,
            ))
            self.out.instance_type_origins.append((self._doc_no, f"{path}.availability[{pos}]"))

    # -- the rest of the account: volumes, volume types, SSH keys, templates, cluster types --

    def _account_row(self, table: str, row: tuple[Any, ...], path: str) -> int:
        rows = self.out.account[table]
        rows.append(row)
        self.out.account_origins[table].append((self._doc_no, path))
        return len(rows) - 1

    def _record(self, value: Any, path: str, what: str, known: frozenset[str],
                rid_key: str | None = "id") -> dict[str, Any] | None:
        """``value`` as an object with an id (checked when ``rid_key``), or None (a finding)."""
        if type(value) is not dict:
            self._bad_shape(value, path, what)
            return None
        if rid_key is not None and not self._required_id(value, path, rid_key):
            return None
        if value.keys() - known:
            self._unknown(value, known, path)
        return value

    def _declared(self, resource: Resource, value: Any, path: str,
                  observed_at: str | None) -> None:
        """A record of a resource without a row builder of its own: each column read from
        its source (``a.b``: field ``b`` of object ``a``) as the API sends it, a derived
        column left empty; its id column's source is required."""
        reads, rid_key, known = _declared_reads(resource)
        rec = self._record(value, path, f"a {resource.kind.replace('_', ' ')} object", known,
                           rid_key)
        if rec is None:
            return
        row: list[Any] = []
        for read in reads:
            if read is None:
                row.append(None)
            elif not read:
                row.append(observed_at)
            else:
                found: Any = rec
                for part in read:
                    found = found.get(part) if type(found) is dict else None
                row.append(found)
        self._account_row(resource.table, tuple(row), path)

    def volume(self, v: Any, path: str, observed_at: str | None) -> None:
        v = self._record(v, path, "a volume object", _VOLUME_KEYS)
        if v is None:
            return
        get = v.get
        self._account_row("volumes", (
            v["id"], get("name"), get("cloud"), get("region"), get("cloud_assigned_id"),
            get("fixed_size"), get("size_in_gb"), get("supports_multi_mount"),
            get("mounted_by"), get("cost_estimate"), False, observed_at,
        ), path)

    def volume_type(self, t: Any, path: str, observed_at: str | None) -> None:
        t = self._record(t, path, "a volume type object", _VOLUME_TYPE_KEYS, None)
        if t is None:
            return
        get = t.get
        # the docs spell it supports_multiple_mounts: the same field, read without a warning
        multi = get("supports_multi_mount")
        if multi is None:
            multi = get("supports_multiple_mounts")
        self._account_row("volume_types", (
            get("cloud"), get("region"), multi, get("fixed_size"),
            get("price_per_gb_per_hour"), observed_at,
        ), path)

    def ssh_key(self, k: Any, path: str, observed_at: str | None) -> None:
        k = self._record(k, path, "an SSH key object", _SSH_KEY_KEYS)
        if k is None:
            return
        if "public_key" in k:
            key_type, fingerprint = _fingerprint_or_none(k["public_key"])
            if fingerprint is None and k["public_key"] is not None:
                self.findings.warn("not an OpenSSH public key; public_key_sha256 left empty",
                                   general_path(f"{path}.public_key"), self._doc.source,
                                   f"{path}.public_key", k["id"])
        else:  # a payload the store already redacted
            key_type, fingerprint = k.get("public_key_type"), k.get("public_key_sha256")
        self._account_row("ssh_keys", (
            k["id"], k.get("name"), k.get("is_default"), key_type, fingerprint, observed_at,
        ), path)

    def template(self, t: Any, path: str, observed_at: str | None) -> None:
        # featured templates may come without an id (the spec's FeaturedTemplate has none):
        # such a row loads with template_id NA and the usual warning
        t = self._record(t, path, "a template object", _TEMPLATE_KEYS, None)
        if t is None:
            return
        get = t.get
        tid = get("id")
        row_no = len(self.out.account["templates"])
        launch_cols: tuple[Any, ...] = (None, None, None, None)
        if get("launch_configuration") is not None:
            launch_cols = self._template_launch(get("launch_configuration"),
                                                f"{path}.launch_configuration", tid, row_no,
                                                observed_at)
        children = self.out.children
        for pos, tag in enumerate(self._items(get("tags"), f"{path}.tags", tid)):
            _add(children["template_tags"], (row_no, tid, observed_at, pos, tag))
        for pos, env in enumerate(self._items(get("envs"), f"{path}.envs", tid)):
            env = self._obj(env, f"{path}.envs[{pos}]", tid)
            _add(children["template_envs"],
                 (row_no, tid, observed_at, pos, "instance", env.get("name")))
        networking = self._obj(get("networking"), f"{path}.networking", tid)
        rules = networking.get("ufw_rules")
        rules = self._items(rules, f"{path}.networking.ufw_rules", tid) if rules is not None \
            else None
        featured = {FEATURED_TEMPLATES: True, BY_NAME["templates"].endpoint: False}.get(
            self._endpoint or "")
        self._account_row("templates", (
            tid, get("name"), get("description"), get("author"), get("logo"), get("public"),
            featured, *launch_cols, *self._thresholds(t, path, tid),
            None if rules is None else len(rules), observed_at,
        ), path)

    def cluster_type(self, c: Any, path: str, observed_at: str | None) -> None:
        c = self._record(c, path, "a cluster type object", _CLUSTER_TYPE_KEYS, None)
        if c is None:
            return
        node = self._obj(c.get("cluster_type"), f"{path}.cluster_type", None)
        name = node.get("shade_instance_type")
        if node.keys() - _TYPE_KEYS:
            self._unknown(node, _TYPE_KEYS, f"{path}.cluster_type", name)
        cfg, conflicts = self._hardware(node, f"{path}.cluster_type", name)
        cget = cfg.get
        head = (c.get("cloud"), name, node.get("cloud_instance_type"), c.get("num_instances"))
        tail = (node.get("hourly_price"), cget("gpu_type"), cget("gpu_manufacturer"),
                cget("num_gpus"), cget("vram_per_gpu_in_gb"), cget("vcpus"),
                cget("memory_in_gb"), cget("storage_in_gb"), cget("interconnect"),
                cget("nvlink"), conflicts, observed_at)
        availability = c.get("availability")
        # a single object in the spec; a list is read entry by entry
        entries = availability if type(availability) is list else [availability]
        apath = f"{path}.availability"
        for pos, entry in enumerate(entries):
            epath = f"{apath}[{pos}]" if type(availability) is list else apath
            entry = self._obj(entry, epath, name)
            self._account_row("cluster_types", (
                *head, entry.get("region"), entry.get("display_name"), entry.get("available"),
                *tail,
            ), epath)


@functools.cache
def _declared_reads(resource: Resource) -> tuple[tuple[tuple[str, ...] | None, ...], str | None,
                                                 frozenset[str]]:
    """How ``_Normalizer._declared`` reads ``resource``: per raw column its source path
    (``()``: ``observed_at``; None: derived), the field of its id, and its known fields."""
    columns = {c.name: c for c in TABLES[resource.table]}
    reads = tuple(() if name == "observed_at" else None if columns[name].parse == "derived"
                  else tuple(columns[name].source.split("."))
                  for name in ACCOUNT_FIELDS[resource.table])
    rid_key = columns[resource.id_column].source if resource.id_column else None
    known = resource.known if resource.known is not None else frozenset(
        read[0] for read in reads if read)
    return reads, rid_key, known


#: the store's record kinds read by a table walker -> their table
RECORD_TABLES = {r.kind: r.table for r in RESOURCES if r.table not in RECORDS}


def _lists(out: Normalized) -> dict[str, list[Any]]:
    """Every list of ``out`` that a walk appends to, by name (a child table's columns as
    ``children.<table>.<k>``)."""
    lists: dict[str, list[Any]] = {
        "clusters": out.clusters, "cluster_origins": out.cluster_origins,
        "instances": out.instances, "instance_origins": out.instance_origins,
        "instance_types": out.instance_types,
        "instance_type_origins": out.instance_type_origins,
        "polls": out.polls, "documents": out.documents,
    }
    for name, columns in out.children.items():
        lists.update((f"children.{name}.{k}", column) for k, column in enumerate(columns))
    lists.update((f"counts.{name}", counts) for name, counts in out.child_counts.items())
    lists.update((f"account.{name}", rows) for name, rows in out.account.items())
    lists.update((f"account.{name}.origins", rows) for name, rows in out.account_origins.items())
    return lists


class _Rows(msgspec.Struct, array_like=True):
    """Rows of one table, column by column: a column of text (and nulls) as each distinct
    value once and a code per row (they come back shared, as the walk interned them: a
    large load's peak memory), any other column as it is."""

    width: int
    plain: dict[int, list[Any]]
    codes: dict[int, list[int]]
    values: dict[int, list[str | None]]


_TEXT = frozenset({str, type(None)})


def _to_columns(rows: list[tuple[Any, ...]] | None, columns: Any = None) -> _Rows:
    """``rows`` (or the ``columns`` of a table kept column by column) as ``_Rows``."""
    if columns is None:
        columns = list(zip(*rows or (), strict=True))
    out = _Rows(len(columns), {}, {}, {})
    for k, column in enumerate(columns):
        if set(map(type, column)) <= _TEXT:
            index: dict[str | None, Any] = dict.fromkeys(column)  # (C loops: no Python per row)
            if len(index) <= len(column) // 4:  # repeated text (not ids, names, addresses)
                out.values[k] = list(index)
                index.update(zip(out.values[k], itertools.count()))
                out.codes[k] = list(map(index.__getitem__, column))
                continue
        out.plain[k] = list(column)
    return out


def _column_lists(rows: _Rows) -> list[list[Any]]:
    """The columns of ``_Rows``, as lists."""
    columns: list[Any] = [None] * rows.width
    for k, column in rows.plain.items():
        columns[k] = column
    for k, codes in rows.codes.items():
        values = rows.values[k]
        columns[k] = [values[code] for code in codes]
    return columns


def _from_columns(rows: _Rows) -> list[tuple[Any, ...]]:
    return list(zip(*_column_lists(rows), strict=True))


class _Part(msgspec.Struct, array_like=True):
    """What the child of ``_Normalizer._in_two`` added, as it travels (msgpack: a tenth of
    pickle's time for the rows; strings, numbers, booleans and None come back as they were,
    a JSON list or object in a row as a list or dict; anything else fails the child, whose
    part this process then walks itself)."""

    #: the documents without their values, the findings (pickled: few objects)
    rest: bytes
    #: the lists of tuples (rows and polls), column by column
    rows: dict[str, _Rows]
    #: (document number, JSON path: ``member_path``) of each row
    origins: dict[str, list[tuple[int, str | tuple[str, int]]]]
    #: the child tables' columns and list lengths (each list a one-column ``_Rows``)
    columns: dict[str, _Rows]
    #: the instance rows as Arrow IPC (``arrowrows``; then ``rows`` has none), or empty
    instances: bytes = b""
    #: the bytes of that IPC at the start of the shared memory instead (``arrowrows.ipc_into``)
    shared: int = 0


_PART = msgspec.msgpack.Encoder()
_PART_DECODER = msgspec.msgpack.Decoder(_Part)
_REST = ("documents", " warnings", " skipped")


#: the shared memory a split walk's child may write what it sends into (``_Part``), per byte
#: of the records: virtual until written (more than the child's part ever takes); a larger
#: part goes through the pipe
_SHARED_PER_BYTE = 1.0


def _shared_memory(size: int) -> mmap.mmap | None:
    """``size`` bytes of memory shared with a process forked after (None: none to be had)."""
    try:
        return mmap.mmap(-1, size) if size > 0 else None
    except (OSError, ValueError, OverflowError):
        return None


#: the instances' columns by name: the Arrow struct of an instance row (``arrowrows``)
_INSTANCE_COLUMNS = {c.name: c for c in INSTANCES}


def _instances_arrow(rows: list[tuple[Any, ...]]) -> Any:
    """Instance rows as an Arrow struct array, or None when they do not convert (a value of
    another type than its column's: ``tables`` converts them the general way, naming each)
    or pyarrow cannot be used."""
    struct = struct_type("instances", INSTANCE_FIELDS, _INSTANCE_COLUMNS)
    return rows_to_arrow(rows, struct) if struct is not None and rows else None


def _part(added: dict[str, Any], array: Any = None, shared: int = 0) -> _Part:
    """``_Normalizer._added`` as a ``_Part``: the instance rows as Arrow (``array``: their
    ``_instances_arrow``, None when they do not convert), as IPC bytes or, ``shared``, that
    many bytes of IPC in the shared memory (the loader then converts only its own rows)."""
    rest = pickle.dumps({key: added[key] for key in _REST}, protocol=pickle.HIGHEST_PROTOCOL)
    instances = to_ipc(array) if array is not None and not shared else b""
    if array is not None:
        added = {**added, "instances": []}
    groups: dict[str, dict[str, Any]] = {"rows": {}, "origins": {}, "columns": {}}
    for key, values in added.items():
        if key.endswith("origins"):
            groups["origins"][key] = values
        elif key.startswith(("children.", "counts.")):
            groups["columns"][key] = _to_columns(None, [values])
        elif key not in _REST:
            groups["rows"][key] = _to_columns(values)
    return _Part(rest, **groups, instances=instances, shared=shared)


def _added(part: _Part, shared: memoryview | None = None) -> dict[str, Any]:
    """The ``_Normalizer._added`` of a ``_Part`` (``shared``: its instances' IPC, when it
    was written into the shared memory)."""
    rows = {key: _from_columns(part.rows.pop(key)) for key in list(part.rows)}
    lists = {key: _column_lists(part.columns.pop(key))[0] for key in list(part.columns)}
    tail = from_ipc(part.instances) if part.instances else \
        from_ipc(shared) if shared is not None else None
    return {**rows, **part.origins, **lists, **pickle.loads(part.rest), " tail": tail}


def _sizes(items: Any) -> list[int]:
    """The bytes of each item of a list (0 each when they are parsed already)."""
    return items.sizes() if type(items) is LazyItems else [0] * len(items)


def _numbered(items: Any, start: int, stop: int) -> Iterable[tuple[int, Any]]:
    """(index, item) of ``items[start:stop]``."""
    if type(items) is LazyItems:
        return zip(range(start, stop), items.between(start, stop), strict=True)
    return zip(range(start, stop), items[start:stop], strict=True)


def normalize_records(records: Iterable[tuple[str, Document, str, str | None]],
                      findings: Findings) -> Normalized:
    """The raw rows of records whose kind is known: ``(kind, document, JSON path, endpoint)``
    (see ``_Normalizer.record``); what the history store's versions load through."""
    out = Normalized(findings=findings)
    walker = _Normalizer(out)
    for kind, doc, path, endpoint in records:
        walker.record(kind, doc, path, endpoint)
    return out


def normalize(documents: Iterable[Document], errors: str = "raise",
              kinds: frozenset[str] | None = None) -> Normalized:
    """Walk ``documents`` once and return the raw rows of every table.

    ``kinds`` limits which responses are read (``clusters``, ``instances``,
    ``instance_types``); ``None`` reads all.
    """
    out = Normalized(findings=Findings(errors=errors))
    walker = _Normalizer(out, kinds)
    for doc in documents:
        walker.document(doc)
    return out


# -- SSH keys ---------------------------------------------------------------------------------


def ssh_fingerprint(public_key: str) -> tuple[str, str]:
    """``(key type, "SHA256:...")`` of an OpenSSH public key line, as ``ssh-keygen -l`` prints
    the fingerprint; ValueError when it is not ``TYPE BASE64 [COMMENT]``."""
    parts = public_key.split()
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise ValueError("not an OpenSSH public key") from exc
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return parts[0], f"SHA256:{digest}"


def _fingerprint_or_none(public_key: Any) -> tuple[Any, Any]:
    if type(public_key) is not str:
        return None, None
    try:
        return ssh_fingerprint(public_key)
    except ValueError:
        words = public_key.split()
        return (words[0] if len(words) > 1 and len(words[0]) <= 40 else None), None


# -- redaction for storage -------------------------------------------------------------------

_REDACTED = "[redacted]"


def _env_names(envs: Any) -> Any:
    """``[{name, value}]`` -> ``[{name}]``; anything else (an object, a string) -> None."""
    if type(envs) is not list:
        return None
    return [{"name": e.get("name")} if type(e) is dict else None for e in envs]


#: the docker launch's fields, from the record spec: what ``redact`` keeps of each
_DOCKER_SHAPE = (_INSTANCE_SHAPE["launch_configuration"].fields or {})["docker_configuration"]


def _redact_docker(docker: Any) -> Any:
    if type(docker) is not dict:
        return None
    out: dict[str, Any] = {}
    for key, node in (_DOCKER_SHAPE.fields or {}).items():
        if key not in docker:
            continue
        if node.kind == "presence":  # only whether it is set
            if docker[key]:
                out[key] = _REDACTED
        elif node.kind in _SECRET_KINDS:
            out[key] = _REDACTED
        elif node.fields and any(n.kind in _SECRET_KINDS for n in node.fields.values()):
            out[key] = _env_names(docker[key])  # a list of name/secret pairs: names only
        else:
            out[key] = docker[key]
    return out


def _redact_launch(launch: Any) -> Any:
    """Keep only the launch configuration's known non-secret parts (an allowlist)."""
    if type(launch) is not dict:
        return None
    out: dict[str, Any] = {}
    if "type" in launch:
        out["type"] = launch["type"]
    if "docker_configuration" in launch:
        out["docker_configuration"] = _redact_docker(launch["docker_configuration"])
    script = launch.get("script_configuration")
    if type(script) is dict:
        try:
            digest = script_sha256(script)
        except ValueError:
            digest = None
        out["script_configuration"] = {"base64_script_sha256": digest}
    return out


def redact(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy of a cluster, instance, template or SSH key object with every secret removed.

    Launch configurations keep only an allowlist (type, image, shared memory, ports, volume
    mounts, env *names*, a registry-credentials marker, the script's sha256); top-level
    ``envs`` keep their names; an SSH key's ``public_key`` becomes its type and fingerprint.
    Everything else is kept as it is, so new columns can be derived from stored payloads later.
    """
    out = dict(resource)
    if "public_key" in out:  # an SSH key: only its fingerprint is kept
        key_type, fingerprint = _fingerprint_or_none(out.pop("public_key"))
        out["public_key_type"], out["public_key_sha256"] = key_type, fingerprint
    if "launch_configuration" in out:
        out["launch_configuration"] = _redact_launch(out["launch_configuration"])
    if "envs" in out:  # names only, whatever the shape: a value is a secret
        out["envs"] = _env_names(out["envs"])
    if type(out.get("instances")) is list:
        out["instances"] = [redact(i) if type(i) is dict else i for i in out["instances"]]
    return out
