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
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from msgspec import UNSET

from . import decode
from .decode import TypedList
from .errors import SchemaError

__all__ = [
    "Document",
    "Findings",
    "Normalized",
    "normalize",
    "redact",
    "script_sha256",
    "type_name",
]

# Fields the API documents, per object; anything else is loaded around with one warning.
_CLUSTER_KEYS = frozenset({
    "id", "cloud", "name", "cloud_cluster_id", "region_info", "status", "status_details",
    "created_at", "updated_at", "instances", "hourly_price", "cost_estimate", "active_at",
})
_INSTANCE_KEYS = frozenset({
    "id", "cloud", "region", "shade_instance_type", "cloud_instance_type", "cloud_assigned_id",
    "shade_cloud", "name", "configuration", "ip", "ssh_user", "ssh_port", "status",
    "status_details", "cost_estimate", "hourly_price", "rental_terms", "launch_configuration",
    "tags", "port_mappings", "active_at", "created_at", "deleted_at", "boot_time",
    # the /instances/{id}/info shape adds these
    "volume_ids", "ssh_key_id", "auto_delete", "alert", "volume_mount", "envs",
})
_CONFIG_KEYS = frozenset({
    "memory_in_gb", "storage_in_gb", "vcpus", "num_gpus", "gpu_type", "interconnect", "nvlink",
    "vram_per_gpu_in_gb", "gpu_manufacturer", "os",
})
_TYPE_KEYS = frozenset({
    "cloud", "shade_instance_type", "cloud_instance_type", "configuration", "hourly_price",
    "deployment_type", "availability", "boot_time", "region",
})
_TYPE_CONFIG_KEYS = (_CONFIG_KEYS - {"os"}) | {"os_options"}
_ENVELOPE_KEYS = frozenset({"observed_at", "endpoint", "response"})
_ENDPOINTS = {"clusters": "/clusters", "instances": "/instances",
              "instance_types": "/instances/types"}

#: Raw columns produced for each table, in tuple order. ``_row`` is the parent row number that
#: child tables carry so that a skipped record takes its children with it.
CLUSTER_FIELDS = (
    "cluster_id", "name", "cloud", "region", "region_display_name", "status", "status_details",
    "created_at", "updated_at", "active_at", "hourly_price_cents", "cost_estimate_usd",
    "cloud_cluster_id", "instance_count", "observed_at",
)
INSTANCE_FIELDS = (
    "cluster_id", "instance_id", "name", "cloud", "region", "shade_instance_type",
    "cloud_instance_type", "cloud_assigned_id", "shade_cloud", "status", "status_details",
    "gpu_type", "gpu_manufacturer", "num_gpus", "vram_per_gpu_in_gb", "vcpus", "memory_in_gb",
    "storage_in_gb", "interconnect", "nvlink", "os", "ip", "ssh_user", "ssh_port",
    "hourly_price_cents", "cost_estimate_usd", "rental_type", "rental_hourly_price_usd",
    "rental_ending_at", "created_at", "active_at", "deleted_at", "boot_time_min_s",
    "boot_time_max_s", "launch_type", "docker_image", "has_registry_credentials",
    "script_sha256", "observed_at",
)
INSTANCE_TYPE_FIELDS = (
    "cloud", "shade_instance_type", "cloud_instance_type", "region", "region_display_name",
    "rental_type", "available", "spot_price", "on_demand_price_cents", "gpu_type",
    "gpu_manufacturer", "num_gpus", "vram_per_gpu_in_gb", "vcpus", "memory_in_gb",
    "storage_in_gb", "interconnect", "nvlink", "deployment_type", "boot_time_min_s",
    "boot_time_max_s", "observed_at",
)
CHILD_FIELDS: dict[str, tuple[str, ...]] = {
    "instance_tags": ("_row", "instance_id", "observed_at", "position", "tag"),
    "port_mappings": ("_row", "instance_id", "observed_at", "position", "internal_port",
                      "external_port"),
    "docker_port_mappings": ("_row", "instance_id", "observed_at", "position", "host_port",
                             "container_port"),
    "docker_volume_mounts": ("_row", "instance_id", "observed_at", "position", "host_path",
                             "container_path"),
    "docker_envs": ("_row", "instance_id", "observed_at", "position", "name"),
}


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

    def with_time(self, observed_at: str) -> Document:
        """The same document, dated ``observed_at``."""
        return replace(self, observed_at=observed_at)


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
    instance_origins: list[tuple[int, str]] = field(default_factory=list)
    instance_types: list[tuple[Any, ...]] = field(default_factory=list)
    instance_type_origins: list[tuple[int, str]] = field(default_factory=list)
    #: (observed_at, endpoint) of every dated list response: a complete poll of that endpoint
    polls: list[tuple[str, str]] = field(default_factory=list)
    children: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in CHILD_FIELDS}
    )
    documents: list[Document] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)


def _general(path: str) -> str:
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


_KIND_NAMES = {
    "clusters": "a cluster info response or a /clusters list",
    "instances": "an instance info response or an /instances list",
    "instance_types": "an /instances/types response",
}


def _kind(value: dict[str, Any]) -> tuple[str | None, str | None]:
    """(kind, list key) of a response object: which table it feeds and where its list is."""
    if "clusters" in value:
        return "clusters", "clusters"
    if "instance_types" in value:
        return "instance_types", "instance_types"
    if "id" in value and ("instances" in value or "region_info" in value):
        return "clusters", None
    if "id" in value and ("configuration" in value or "shade_instance_type" in value):
        return "instances", None
    if "instances" in value:
        return "instances", "instances"
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

    # -- documents -------------------------------------------------------------------------

    def document(self, doc: Document) -> None:
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
            self._value(value["response"], f"{path}.response", observed_at, depth)
            return
        kind, key = _kind(value)
        if kind is None:
            self._bad_shape(value, path, "a Shadeform response object")
        elif self.kinds is not None and kind not in self.kinds:
            self._wrong_kind(kind, path)
        elif key is not None:
            self._list(value, key, path, observed_at)
        elif kind == "clusters":
            self.cluster(value, path, observed_at)
        else:
            self.instance(value, path, observed_at, self._doc.parent)

    def _wrong_kind(self, kind: str, path: str) -> None:
        if self._doc.explicit and self.kinds is not None:
            expected = _KIND_NAMES[next(iter(sorted(self.kinds)))]
            self.findings.bad(f"found an object, expected {expected}, not {_KIND_NAMES[kind]}",
                              _general(path), self._doc.source, path, None)

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
        self.findings.bad(problem, _general(f"{path}.observed_at"), self._doc.source,
                          f"{path}.observed_at", None)
        return default

    def _bad_shape(self, value: Any, path: str, expected: str) -> None:
        self.findings.bad(f"found {type_name(value)}, expected {expected}", _general(path),
                          self._doc.source, path, None)

    def _list(self, value: dict[str, Any], key: str, path: str, observed_at: str | None) -> None:
        items = value[key]
        lpath = f"{path}.{key}"
        if type(items) is not list:
            self._bad_shape(items, lpath, "a list")
            return
        self._unknown(value, frozenset({key}), path)
        if observed_at is not None:
            self.out.polls.append((observed_at, _ENDPOINTS[key]))
        if key == "clusters":
            for i, item in enumerate(items):
                self.cluster(item, f"{lpath}[{i}]", observed_at)
        elif key == "instances":
            for i, item in enumerate(items):
                self.instance(item, f"{lpath}[{i}]", observed_at, None)
        else:
            for i, item in enumerate(items):
                self.instance_type(item, f"{lpath}[{i}]", observed_at)

    def _unknown(self, obj: dict[str, Any], known: frozenset[str], path: str,
                 rid: Any = None) -> None:
        extra = obj.keys() - known
        if extra:
            rid = rid if rid is not None else obj.get("id")
            for key in sorted(extra, key=str):
                self.findings.warn("unknown field, loaded around", _general(f"{path}.{key}"),
                                   self._doc.source, f"{path}.{key}", rid)

    def _obj(self, value: Any, path: str, rid: Any) -> dict[str, Any]:
        """A nested object, or ``{}`` (with a finding) when it is not one."""
        if type(value) is dict:
            return value
        if value is not None:
            self.findings.warn(f"found {type_name(value)}, expected an object; ignored",
                               _general(path), self._doc.source, path, rid)
        return {}

    def _items(self, value: Any, path: str, rid: Any) -> list[Any]:
        if type(value) is list:
            return value
        if value is not None:
            self.findings.warn(f"found {type_name(value)}, expected a list; ignored",
                               _general(path), self._doc.source, path, rid)
        return []

    def _required_id(self, rec: dict[str, Any], path: str, key: str = "id") -> bool:
        rid = rec.get(key)
        if type(rid) is str and rid:
            return True
        problem = (f"missing required field '{key}'" if rid is None
                   else f"'{key}' is {type_name(rid)}, expected a non-empty string")
        self.findings.bad(problem, _general(f"{path}.{key}"), self._doc.source,
                          f"{path}.{key}", None)
        return False

    # -- records ---------------------------------------------------------------------------

    def cluster(self, c: Any, path: str, observed_at: str | None) -> None:
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
            self.findings.bad(problem, _general(f"{path}.instances"), self._doc.source,
                              f"{path}.instances", cid)
            return
        if c.keys() - _CLUSTER_KEYS:
            self._unknown(c, _CLUSTER_KEYS, path)
        get = c.get
        region = self._obj(get("region_info"), f"{path}.region_info", cid)
        self.out.clusters.append((
            cid, get("name"), get("cloud"), region.get("region"), region.get("display_name"),
            get("status"), get("status_details"), get("created_at"), get("updated_at"),
            get("active_at"), get("hourly_price"), get("cost_estimate"),
            get("cloud_cluster_id"), len(members), observed_at,
        ))
        self.out.cluster_origins.append((self._doc_no, path))
        for j, member in enumerate(members):
            self.instance(member, f"{path}.instances[{j}]", observed_at, cid)

    def instance(self, r: Any, path: str, observed_at: str | None, cluster_id: str | None) -> None:
        if type(r) is not dict:
            self._bad_shape(r, path, "an instance object")
            return
        if not self._required_id(r, path):
            return
        iid = r["id"]
        if r.keys() - _INSTANCE_KEYS:
            self._unknown(r, _INSTANCE_KEYS, path)
        get = r.get
        cfg = get("configuration")
        if type(cfg) is not dict:
            cfg = self._obj(cfg, f"{path}.configuration", iid)
        elif cfg.keys() - _CONFIG_KEYS:
            self._unknown(cfg, _CONFIG_KEYS, f"{path}.configuration", iid)
        boot = get("boot_time")
        if type(boot) is not dict:
            boot = self._obj(boot, f"{path}.boot_time", iid)
        rental = get("rental_terms")
        if type(rental) is not dict:
            rental = self._obj(rental, f"{path}.rental_terms", iid)
        row_no = len(self.out.instances)
        launch = get("launch_configuration")
        launch_cols = (None, None, None, None)
        if launch is not None:
            launch_cols = self._launch(launch, f"{path}.launch_configuration", iid, row_no,
                                       observed_at)
        cget = cfg.get
        self.out.instances.append((
            cluster_id, iid, get("name"), get("cloud"), get("region"),
            get("shade_instance_type"), get("cloud_instance_type"), get("cloud_assigned_id"),
            get("shade_cloud"), get("status"), get("status_details"),
            cget("gpu_type"), cget("gpu_manufacturer"), cget("num_gpus"),
            cget("vram_per_gpu_in_gb"), cget("vcpus"), cget("memory_in_gb"),
            cget("storage_in_gb"), cget("interconnect"), cget("nvlink"), cget("os"),
            get("ip"), get("ssh_user"), get("ssh_port"), get("hourly_price"),
            get("cost_estimate"), rental.get("rental_type"), rental.get("hourly_price"),
            rental.get("ending_at"), get("created_at"), get("active_at"), get("deleted_at"),
            boot.get("min_boot_in_sec"), boot.get("max_boot_in_sec"), *launch_cols,
            observed_at,
        ))
        self.out.instance_origins.append((self._doc_no, path))
        tags = get("tags")
        if tags:
            rows = self.out.children["instance_tags"]
            for pos, tag in enumerate(self._items(tags, f"{path}.tags", iid)):
                rows.append((row_no, iid, observed_at, pos, tag))
        ports = get("port_mappings")
        if ports:
            rows = self.out.children["port_mappings"]
            for pos, pm in enumerate(self._items(ports, f"{path}.port_mappings", iid)):
                pm = self._obj(pm, f"{path}.port_mappings[{pos}]", iid)
                rows.append((row_no, iid, observed_at, pos, pm.get("internal_port"),
                             pm.get("external_port")))

    def _launch(self, launch: Any, path: str, iid: str, row_no: int,
                observed_at: str | None) -> tuple[Any, Any, Any, Any]:
        """(type, image, has_registry_credentials, script_sha256); secrets are not touched."""
        launch = self._obj(launch, path, iid)
        docker = self._obj(launch.get("docker_configuration"), f"{path}.docker_configuration",
                           iid)
        image = has_credentials = digest = None
        if docker:
            dpath = f"{path}.docker_configuration"
            image = docker.get("image")
            has_credentials = bool(docker.get("registry_credentials"))
            children = self.out.children
            for pos, env in enumerate(self._items(docker.get("envs"), f"{dpath}.envs", iid)):
                env = self._obj(env, f"{dpath}.envs[{pos}]", iid)
                children["docker_envs"].append((row_no, iid, observed_at, pos, env.get("name")))
            for pos, pm in enumerate(self._items(docker.get("port_mappings"),
                                                 f"{dpath}.port_mappings", iid)):
                pm = self._obj(pm, f"{dpath}.port_mappings[{pos}]", iid)
                children["docker_port_mappings"].append(
                    (row_no, iid, observed_at, pos, pm.get("host_port"), pm.get("container_port")))
            for pos, vm in enumerate(self._items(docker.get("volume_mounts"),
                                                 f"{dpath}.volume_mounts", iid)):
                vm = self._obj(vm, f"{dpath}.volume_mounts[{pos}]", iid)
                children["docker_volume_mounts"].append(
                    (row_no, iid, observed_at, pos, vm.get("host_path"), vm.get("container_path")))
        script = self._obj(launch.get("script_configuration"), f"{path}.script_configuration",
                           iid)
        if script:
            digest = self._script_digest(script, f"{path}.script_configuration", iid)
        return launch.get("type"), image, has_credentials, digest

    def _script_digest(self, script: dict[str, Any], path: str, iid: str) -> str | None:
        return self._digest(script.get("base64_script"),
                            script.get("base64_script_sha256", _ABSENT), path, iid)

    def _digest(self, encoded: Any, stored: Any, path: str, iid: str) -> str | None:
        # the nodes of a cluster usually share one script: hash it once per load (the cache
        # lives as long as this load)
        cacheable = stored is _ABSENT and type(encoded) is str
        if cacheable and encoded in self._digests:
            return self._digests[encoded]
        try:
            digest = _script_digest(encoded, stored)
        except ValueError:
            self.findings.warn("not valid base64; script_sha256 left empty",
                               _general(f"{path}.base64_script"), self._doc.source,
                               f"{path}.base64_script", iid)
            return None
        if cacheable:
            self._digests[encoded] = digest
        return digest

    # -- typed records (decode.py): the same rows as above, from structs ---------------------

    def _typed_list(self, typed: TypedList, path: str, observed_at: str | None) -> None:
        if typed.envelope:
            path = f"{path}.response"
            if typed.observed_at is not None:
                observed_at = typed.observed_at
        if self.kinds is not None and typed.kind not in self.kinds:
            self._wrong_kind(typed.kind, path)
            return
        lpath = f"{path}.{typed.kind}"
        if observed_at is not None:
            self.out.polls.append((observed_at, _ENDPOINTS[typed.kind]))
        if typed.kind == "clusters":
            for i, c in enumerate(typed.items):
                self._typed_cluster(c, f"{lpath}[{i}]", observed_at)  # type: ignore[arg-type]
        else:
            for i, r in enumerate(typed.items):
                self._typed_instance(r, f"{lpath}[{i}]", observed_at, None)  # type: ignore[arg-type]

    def _typed_cluster(self, c: decode.Cluster, path: str, observed_at: str | None) -> None:
        cid = c.id
        region = c.region_info or decode.EMPTY_REGION
        members = c.instances
        try:
            row = self._cluster_row(c, region, observed_at, self._intern)
        except TypeError:  # an object where text belongs (loaded around later): not interned
            row = self._cluster_row(c, region, observed_at, _same)
        self.out.clusters.append(row)
        self.out.cluster_origins.append((self._doc_no, path))
        for j, member in enumerate(members):
            self._typed_instance(member, f"{path}.instances[{j}]", observed_at, cid)

    @staticmethod
    def _cluster_row(c: decode.Cluster, region: decode.Region, observed_at: str | None,
                     i: Any) -> tuple[Any, ...]:
        return (
            c.id, c.name, i(c.cloud), i(region.region), i(region.display_name), i(c.status),
            i(c.status_details), i(c.created_at), i(c.updated_at), i(c.active_at),
            c.hourly_price, c.cost_estimate, c.cloud_cluster_id, len(c.instances), observed_at,
        )

    def _typed_instance(self, r: decode.Instance, path: str, observed_at: str | None,
                        cluster_id: str | None) -> None:
        iid = r.id
        row_no = len(self.out.instances)
        launch = r.launch_configuration
        launch_cols: tuple[Any, ...] = (None, None, None, None)
        if launch is not None:
            launch_cols = self._typed_launch(launch, f"{path}.launch_configuration", iid,
                                             row_no, observed_at)
        try:
            row = self._instance_row(r, cluster_id, launch_cols, observed_at, self._intern)
        except TypeError:  # an object where text belongs (loaded around later): not interned
            row = self._instance_row(r, cluster_id, launch_cols, observed_at, _same)
        self.out.instances.append(row)
        self.out.instance_origins.append((self._doc_no, path))
        if r.tags:
            rows = self.out.children["instance_tags"]
            for pos, tag in enumerate(r.tags):
                rows.append((row_no, iid, observed_at, pos, tag))
        if r.port_mappings:
            rows = self.out.children["port_mappings"]
            for pos, pm in enumerate(r.port_mappings):
                rows.append((row_no, iid, observed_at, pos, pm.internal_port, pm.external_port))

    @staticmethod
    def _instance_row(r: decode.Instance, cluster_id: str | None, launch_cols: tuple[Any, ...],
                      observed_at: str | None, i: Any) -> tuple[Any, ...]:
        cfg = r.configuration or decode.EMPTY_CONFIG
        boot = r.boot_time or decode.EMPTY_BOOT
        rental = r.rental_terms or decode.EMPTY_RENTAL
        return (
            cluster_id, r.id, r.name, i(r.cloud), i(r.region), i(r.shade_instance_type),
            i(r.cloud_instance_type), r.cloud_assigned_id, r.shade_cloud, i(r.status),
            i(r.status_details), i(cfg.gpu_type), i(cfg.gpu_manufacturer), cfg.num_gpus,
            cfg.vram_per_gpu_in_gb, cfg.vcpus, cfg.memory_in_gb, cfg.storage_in_gb,
            i(cfg.interconnect), cfg.nvlink, i(cfg.os), r.ip, i(r.ssh_user), r.ssh_port,
            r.hourly_price, i(r.cost_estimate), i(rental.rental_type), i(rental.hourly_price),
            i(rental.ending_at), i(r.created_at), i(r.active_at), i(r.deleted_at),
            boot.min_boot_in_sec, boot.max_boot_in_sec, *map(i, launch_cols), observed_at,
        )

    def _typed_launch(self, launch: decode.Launch, path: str, iid: str, row_no: int,
                      observed_at: str | None) -> tuple[Any, Any, Any, Any]:
        docker = launch.docker_configuration
        image = has_credentials = digest = None
        if docker is not None and not docker.is_empty():
            image = None if docker.image is UNSET else docker.image
            has_credentials = bool(docker.registry_credentials)
            children = self.out.children
            for pos, env in enumerate(docker.envs or ()):
                children["docker_envs"].append((row_no, iid, observed_at, pos, env.name))
            for pos, dp in enumerate(docker.port_mappings or ()):
                children["docker_port_mappings"].append(
                    (row_no, iid, observed_at, pos, dp.host_port, dp.container_port))
            for pos, vm in enumerate(docker.volume_mounts or ()):
                children["docker_volume_mounts"].append(
                    (row_no, iid, observed_at, pos, vm.host_path, vm.container_path))
        script = launch.script_configuration
        if script is not None:
            stored = _ABSENT if script.base64_script_sha256 is UNSET \
                else script.base64_script_sha256
            digest = self._digest(script.base64_script, stored,
                                  f"{path}.script_configuration", iid)
        return launch.type, image, has_credentials, digest

    def instance_type(self, t: Any, path: str, observed_at: str | None) -> None:
        if type(t) is not dict:
            self._bad_shape(t, path, "an instance type object")
            return
        if t.keys() - _TYPE_KEYS:
            self._unknown(t, _TYPE_KEYS, path)
        get = t.get
        name = get("shade_instance_type")
        cfg = self._obj(get("configuration"), f"{path}.configuration", name)
        if cfg.keys() - _TYPE_CONFIG_KEYS:
            self._unknown(cfg, _TYPE_CONFIG_KEYS, f"{path}.configuration", name)
        boot = self._obj(get("boot_time"), f"{path}.boot_time", name)
        cget = cfg.get
        common = (
            get("hourly_price"), cget("gpu_type"), cget("gpu_manufacturer"), cget("num_gpus"),
            cget("vram_per_gpu_in_gb"), cget("vcpus"), cget("memory_in_gb"),
            cget("storage_in_gb"), cget("interconnect"), cget("nvlink"), get("deployment_type"),
            boot.get("min_boot_in_sec"), boot.get("max_boot_in_sec"), observed_at,
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


# -- redaction for storage -------------------------------------------------------------------

_REDACTED = "[redacted]"


def _env_names(envs: Any) -> Any:
    """``[{name, value}]`` -> ``[{name}]``; anything else (an object, a string) -> None."""
    if type(envs) is not list:
        return None
    return [{"name": e.get("name")} if type(e) is dict else None for e in envs]


def _redact_docker(docker: Any) -> Any:
    if type(docker) is not dict:
        return None
    out: dict[str, Any] = {}
    for key in ("image", "shared_memory_in_gb", "port_mappings", "volume_mounts"):
        if key in docker:
            out[key] = docker[key]
    if "envs" in docker:
        out["envs"] = _env_names(docker["envs"])
    if docker.get("registry_credentials"):
        out["registry_credentials"] = _REDACTED
    if "args" in docker:
        out["args"] = _REDACTED
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
    """A copy of a cluster or instance object with every secret removed, for storage.

    Launch configurations keep only an allowlist (type, image, shared memory, ports, volume
    mounts, env *names*, a registry-credentials marker, the script's sha256); top-level
    ``envs`` keep their names. Everything else is kept as it is, so new columns can be derived
    from stored payloads later.
    """
    out = dict(resource)
    if "launch_configuration" in out:
        out["launch_configuration"] = _redact_launch(out["launch_configuration"])
    if "envs" in out:  # names only, whatever the shape: a value is a secret
        out["envs"] = _env_names(out["envs"])
    if type(out.get("instances")) is list:
        out["instances"] = [redact(i) if type(i) is dict else i for i in out["instances"]]
    return out
