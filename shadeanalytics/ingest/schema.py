"""Every table's columns: name, dtype, unit, source JSON path and meaning — the single source.

The loaders build their DataFrames from these definitions, the report writes columns in this
order, and ``docs/data-dictionary.md`` is generated from this module
(``shadeanalytics columns > docs/data-dictionary.md``; a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

import pandas as pd

__all__ = [
    "CATALOG_RULE",
    "CLUSTERS",
    "CLUSTER_RECORD",
    "CLUSTER_TYPES",
    "INSTANCES",
    "INSTANCE_RECORD",
    "INSTANCE_TYPES",
    "POLLS",
    "PRE_ACTIVE",
    "RECORDS",
    "SSH_KEYS",
    "STATUSES",
    "TABLES",
    "TEMPLATES",
    "TIMESTAMP",
    "VOLUMES",
    "VOLUME_TYPES",
    "Column",
    "Node",
    "Record",
    "data_dictionary",
    "empty_frame",
    "shape",
    "status_dtype",
    "valid_id",
]

TIMESTAMP = "datetime64[us, UTC]"

#: Lifecycle order of instance (and cluster) statuses, as the API's enum lists them.
STATUSES: tuple[str, ...] = (
    "creating",
    "pending_provider",
    "pending",
    "active",
    "error",
    "deleting",
    "deleted",
)

#: Statuses before ``active``: an instance there has no configuration or cost estimate yet in
#: some responses (a just-created instance's info), so their absence is not worth a warning.
PRE_ACTIVE: frozenset[str] = frozenset({"creating", "pending_provider", "pending"})


def status_dtype(extra: tuple[str, ...] = ()) -> pd.CategoricalDtype:
    """The ordered status dtype; ``extra`` are statuses the API added since (appended last)."""
    return pd.CategoricalDtype([*STATUSES, *extra], ordered=True)


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``parse`` says how the raw JSON value becomes the column: ``str``, ``int``, ``bool``,
    ``time`` (RFC 3339 -> UTC), ``time_or_na`` (the same, for a date the API does not check:
    anything else loads as NaT with a warning, not as a bad record), ``cents`` (integer cents),
    ``dollars`` (a dollar string such as ``"$1,234.50"``), ``status`` (ordered categorical), or
    ``derived`` (computed from other columns). ``required`` columns that are missing or null
    in the JSON load as NA with a warning: the API promises them. ``lifecycle`` columns are
    null by lifecycle: the API leaves them null until the resource is placed (and sometimes a
    while after), so a null is normal data and never warns.
    """

    name: str
    dtype: str
    source: str
    unit: str
    meaning: str
    parse: str = "str"
    required: bool = False
    lifecycle: bool = False


_S, _I, _F, _B = "string", "Int64", "float64", "boolean"
_STATUS = "category (ordered)"

CLUSTERS: tuple[Column, ...] = (
    Column("cluster_id", _S, "id", "", "Shadeform cluster id (uuid)", required=True),
    Column("name", _S, "name", "", "cluster name given by the user", required=True),
    Column("cloud", _S, "cloud", "", "underlying provider key, e.g. `denvr`", required=True),
    Column("region", _S, "region_info.region", "", "provider region code", required=True),
    Column("region_display_name", _S, "region_info.display_name", "", "human label of the region"),
    Column("status", _STATUS, "status", "", "cluster status, lifecycle-ordered", "status", True),
    Column("status_details", _S, "status_details", "", "free-text context for the status"),
    Column("created_at", TIMESTAMP, "created_at", "UTC", "creation time", "time", True),
    Column("updated_at", TIMESTAMP, "updated_at", "UTC", "last update time", "time", True),
    Column("active_at", TIMESTAMP, "active_at", "UTC", "when the cluster became active", "time",
           lifecycle=True),
    Column("hourly_price_cents", _I, "hourly_price", "US cents/hour", "price of the cluster",
           "cents", True),
    Column("hourly_price_usd", _F, "hourly_price", "USD/hour", "hourly_price_cents / 100",
           "derived"),
    Column("cost_estimate_usd", _F, "cost_estimate", "USD",
           "Shadeform's estimated cost so far (`$` and `,` stripped)", "dollars"),
    Column("cloud_cluster_id", _S, "cloud_cluster_id", "", "provider-assigned cluster id",
           lifecycle=True),
    Column("instance_count", _I, "instances", "count", "number of instances listed in the cluster",
           "derived"),
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the response was captured; NaT when the source does not say", "derived"),
)

def _thresholds(meaning: str) -> tuple[Column, ...]:
    """``auto_delete`` / ``alert`` and ``volume_mount`` of an instance info or a template."""
    return (
        Column("auto_delete_at", TIMESTAMP, "auto_delete.date_threshold", "UTC",
               f"{meaning} is deleted automatically at this time; NaT when not set",
               "time_or_na"),
        Column("auto_delete_spend_threshold_usd", _F, "auto_delete.spend_threshold", "USD",
               f"{meaning} is deleted automatically once it has cost this much", "dollars"),
        Column("alert_at", TIMESTAMP, "alert.date_threshold", "UTC",
               "an e-mail alert is sent at this time", "time_or_na"),
        Column("alert_spend_threshold_usd", _F, "alert.spend_threshold", "USD",
               "an e-mail alert is sent once it has cost this much", "dollars"),
        Column("volume_mount_auto", _B, "volume_mount.auto", "",
               "unmounted disks are mounted automatically", "bool"),
    )


# the fields only `GET /instances/{id}/info` carries (volume_ids and envs: child tables)
_DETAILS: tuple[Column, ...] = (
    Column("ssh_key_id", _S, "ssh_key_id", "", "the SSH key the instance was launched with"),
    *_thresholds("the instance"),
)

INSTANCES: tuple[Column, ...] = (
    Column("cluster_id", _S, "(parent cluster) id", "",
           "the cluster the instance is listed in; NA for standalone instances", "derived"),
    Column("instance_id", _S, "id", "", "Shadeform instance id (uuid)", required=True),
    Column("name", _S, "name", "", "instance name given by the user", required=True),
    Column("cloud", _S, "cloud", "", "underlying provider key, e.g. `hyperstack`", required=True),
    Column("region", _S, "region", "", "provider region code", required=True),
    Column("shade_instance_type", _S, "shade_instance_type", "",
           "Shadeform's normalised type, e.g. `A6000`", required=True),
    Column("cloud_instance_type", _S, "cloud_instance_type", "", "the provider's own type name",
           required=True),
    Column("cloud_assigned_id", _S, "cloud_assigned_id", "",
           "the provider's id for the VM", lifecycle=True),
    Column("shade_cloud", _B, "shade_cloud", "",
           "launched in Shadeform's accounts (True) or the user's linked account", "bool", True),
    Column("status", _STATUS, "status", "", "instance status, lifecycle-ordered", "status", True),
    Column("status_details", _S, "status_details", "", "free-text context, e.g. `preempted`"),
    # configuration.*: not `required` column by column: an instance whose response has no
    # configuration (a just-created one) is one finding (`missing_configuration`), not a
    # warning per field; the billing model takes it from the catalog where it can
    Column("gpu_type", _S, "configuration.gpu_type", "", "GPU model; `CPU` for CPU-only"),
    Column("gpu_manufacturer", _S, "configuration.gpu_manufacturer", "", "e.g. `nvidia`"),
    Column("num_gpus", _I, "configuration.num_gpus", "count", "GPUs (0 for CPU-only)", "int"),
    Column("vram_per_gpu_in_gb", _I, "configuration.vram_per_gpu_in_gb", "GB", "VRAM of one GPU",
           "int"),
    Column("total_vram_gb", _I, "configuration", "GB", "num_gpus * vram_per_gpu_in_gb", "derived"),
    Column("vcpus", _I, "configuration.vcpus", "count", "virtual CPUs", "int"),
    Column("memory_in_gb", _I, "configuration.memory_in_gb", "GB", "system RAM (not VRAM)", "int"),
    Column("storage_in_gb", _I, "configuration.storage_in_gb", "GB", "disk", "int"),
    Column("interconnect", _S, "configuration.interconnect", "", "GPU interconnect, e.g. `pcie`"),
    Column("nvlink", _B, "configuration.nvlink", "", "NVLink present", "bool"),
    Column("os", _S, "configuration.os", "", "OS image, e.g. `ubuntu_22_shade_os`"),
    Column("ip", _S, "ip", "", "public address (sensitive: reports omit it by default)",
           lifecycle=True),
    Column("ssh_user", _S, "ssh_user", "", "SSH login (reports omit it by default)",
           lifecycle=True),
    Column("ssh_port", _I, "ssh_port", "", "SSH port (reports omit it by default)", "int",
           lifecycle=True),
    Column("hourly_price_cents", _I, "hourly_price", "US cents/hour", "on-demand price", "cents"),
    Column("hourly_price_usd", _F, "hourly_price", "USD/hour", "hourly_price_cents / 100",
           "derived"),
    Column("cost_estimate_usd", _F, "cost_estimate", "USD",
           "Shadeform's cost incurred so far (absent for a just-created instance: counted "
           "in `instances_without_estimate`, never as $0)", "dollars"),
    Column("rental_type", _S, "rental_terms.rental_type", "",
           "`on_demand`, `spot` or `commitment`; NA when the response has no rental_terms"),
    Column("rental_hourly_price_usd", _F, "rental_terms.hourly_price", "USD/hour",
           "the rental's own rate (spot shows its discounted rate)", "dollars"),
    Column("rental_ending_at", TIMESTAMP, "rental_terms.ending_at", "UTC",
           "promised end of the rental; NaT when open-ended", "time"),
    Column("created_at", TIMESTAMP, "created_at", "UTC", "creation time", "time", True),
    Column("active_at", TIMESTAMP, "active_at", "UTC", "when the instance became active", "time",
           lifecycle=True),
    Column("deleted_at", TIMESTAMP, "deleted_at", "UTC", "deletion time; NaT while live", "time",
           lifecycle=True),
    Column("boot_time_min_s", _I, "boot_time.min_boot_in_sec", "s", "boot-time estimate, low",
           "int"),
    Column("boot_time_max_s", _I, "boot_time.max_boot_in_sec", "s", "boot-time estimate, high",
           "int"),
    Column("launch_type", _S, "launch_configuration.type", "", "`docker`, `script` or NA"),
    Column("docker_image", _S, "launch_configuration.docker_configuration.image", "",
           "container image of a docker launch"),
    Column("docker_shared_memory_in_gb", _I,
           "launch_configuration.docker_configuration.shared_memory_in_gb", "GB",
           "shared memory (`/dev/shm`) of a docker launch's container", "int"),
    Column("has_registry_credentials", _B,
           "launch_configuration.docker_configuration.registry_credentials", "",
           "the docker launch carries registry credentials (the credentials are never loaded)",
           "derived"),
    Column("script_sha256", _S, "launch_configuration.script_configuration.base64_script", "",
           "sha256 of the decoded startup script (the script is never loaded)", "derived"),
    *_DETAILS,
    Column("has_details", _B, "(info shape)", "",
           "the detail columns are known: the row comes from `GET /instances/{id}/info` (or, "
           "after `Tables.latest()`, carries the newest details seen); NA in a detail column "
           "then means not set", "derived"),
    Column("details_observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the detail columns were observed (the info response's snapshot time); NaT "
           "without details", "derived"),
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the response was captured; NaT when the source does not say", "derived"),
)

INSTANCE_TYPES: tuple[Column, ...] = (
    Column("cloud", _S, "cloud", "", "provider key", required=True),
    Column("shade_instance_type", _S, "shade_instance_type", "", "Shadeform's normalised type",
           required=True),
    Column("cloud_instance_type", _S, "cloud_instance_type", "", "the provider's type name",
           required=True),
    Column("region", _S, "availability[].region", "", "region code", required=True),
    Column("region_display_name", _S, "availability[].display_name", "", "human label"),
    Column("rental_type", _S, "availability[].rental_type", "",
           "`on_demand` or `spot` (`on_demand` when older responses do not say)"),
    Column("available", _B, "availability[].available", "", "can be launched now", "bool", True),
    Column("hourly_price_usd", _F, "hourly_price | availability[].hourly_price", "USD/hour",
           "on-demand: the type's hourly_price / 100; spot: the entry's dollar price", "derived"),
    Column("on_demand_price_cents", _I, "hourly_price", "US cents/hour",
           "the type's on-demand price", "cents", True),
    Column("gpu_type", _S, "configuration.gpu_type", "", "GPU model; `CPU` for CPU-only",
           required=True),
    Column("gpu_manufacturer", _S, "configuration.gpu_manufacturer", "", "e.g. `nvidia`"),
    Column("num_gpus", _I, "configuration.num_gpus", "count", "GPUs", "int", True),
    Column("vram_per_gpu_in_gb", _I, "configuration.vram_per_gpu_in_gb", "GB", "VRAM of one GPU",
           "int", True),
    Column("total_vram_gb", _I, "configuration", "GB", "num_gpus * vram_per_gpu_in_gb", "derived"),
    Column("vcpus", _I, "configuration.vcpus", "count", "virtual CPUs", "int"),
    Column("memory_in_gb", _I, "configuration.memory_in_gb", "GB", "system RAM", "int"),
    Column("storage_in_gb", _I, "configuration.storage_in_gb", "GB", "disk", "int"),
    Column("interconnect", _S, "configuration.interconnect", "", "GPU interconnect"),
    Column("nvlink", _B, "configuration.nvlink", "", "NVLink present", "bool"),
    Column("deployment_type", _S, "deployment_type", "", "`vm`, `container` or `baremetal`"),
    Column("boot_time_min_s", _I, "boot_time.min_boot_in_sec", "s", "boot-time estimate, low",
           "int"),
    Column("boot_time_max_s", _I, "boot_time.max_boot_in_sec", "s", "boot-time estimate, high",
           "int"),
    Column("catalog_conflicts", _S, "configuration.* vs top-level copies", "",
           "hardware fields whose top-level copy disagrees with `configuration` (comma list, "
           "e.g. `nvlink`); NA when they agree. See `CATALOG_RULE`", "derived"),
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the response was captured; NaT when the source does not say", "derived"),
)

#: How the top-level hardware copies of an instance type (``gpu_type``, ``interconnect``,
#: ``memory_in_gb``, ``num_gpus``, ``nvlink``, ``storage_in_gb``, ``vcpus`` beside
#: ``configuration``, in real ``/instances/types`` and ``/clusters/types`` responses) are read.
CATALOG_RULE = (
    "The nested `configuration` value wins; a top-level copy fills a field `configuration` "
    "lacks (missing or null); for `nvlink`, `true` in either place wins (NVLink types show a "
    "nested `false` beside a top-level `true`). Every field where both are given and differ is "
    "listed in `catalog_conflicts`."
)


def _child(value_columns: tuple[Column, ...], parent: str = "instance") -> tuple[Column, ...]:
    return (
        Column(f"{parent}_id", _S, f"(parent {parent}) id", "", f"the {parent}", "derived"),
        Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
               "snapshot time of the parent row", "derived"),
        Column("position", _I, "[index]", "", "position in the JSON list", "derived"),
        *value_columns,
    )


INSTANCE_TAGS = _child((Column("tag", _S, "tags[]", "", "a user tag"),))
PORT_MAPPINGS = _child((
    Column("internal_port", _I, "port_mappings[].internal_port", "", "port on the VM", "int"),
    Column("external_port", _I, "port_mappings[].external_port", "", "port exposed", "int"),
))
DOCKER_PORT_MAPPINGS = _child((
    Column("host_port", _I, "launch_configuration.docker_configuration.port_mappings[].host_port",
           "", "port on the host", "int"),
    Column("container_port", _I,
           "launch_configuration.docker_configuration.port_mappings[].container_port", "",
           "port in the container", "int"),
))
DOCKER_VOLUME_MOUNTS = _child((
    Column("host_path", _S,
           "launch_configuration.docker_configuration.volume_mounts[].host_path", "",
           "path on the host"),
    Column("container_path", _S,
           "launch_configuration.docker_configuration.volume_mounts[].container_path", "",
           "path in the container"),
))
DOCKER_ENVS = _child((
    Column("name", _S, "launch_configuration.docker_configuration.envs[].name", "",
           "environment variable NAME only — values are secrets and are never loaded"),
))

INSTANCE_VOLUMES = _child((
    Column("volume_id", _S, "volume_ids[]", "", "a volume attached to the instance (info shape)"),
))
INSTANCE_ENVS = _child((
    Column("name", _S, "envs[].name", "",
           "environment variable NAME added to the instance (info shape) — values are secrets "
           "and are never loaded"),
))

_OBSERVED = Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
                   "when the response was captured; NaT when the source does not say", "derived")

VOLUMES: tuple[Column, ...] = (
    Column("volume_id", _S, "id", "", "Shadeform volume id", required=True),
    Column("name", _S, "name", "", "volume name given by the user", required=True),
    Column("cloud", _S, "cloud", "", "provider key", required=True),
    Column("region", _S, "region", "", "region code", required=True),
    Column("cloud_assigned_id", _S, "cloud_assigned_id", "", "the provider's id for the volume"),
    Column("fixed_size", _B, "fixed_size", "", "fixed in size (False: scales elastically)",
           "bool"),
    Column("size_in_gb", _I, "size_in_gb", "GB", "size", "int", True),
    Column("supports_multi_mount", _B, "supports_multi_mount", "",
           "several instances can mount it at once", "bool"),
    Column("mounted_by", _S, "mounted_by", "",
           "the instance mounting it; NA when unmounted (the API sends null)"),
    Column("cost_estimate_usd", _F, "cost_estimate", "USD", "Shadeform's cost incurred so far",
           "dollars", True),
    Column("gone", _B, "(poll log)", "",
           "after `Tables.latest()`: a later successful `/volumes` poll no longer listed it "
           "(deleted, billing stopped); False in raw snapshots", "derived"),
    _OBSERVED,
)

VOLUME_TYPES: tuple[Column, ...] = (
    Column("cloud", _S, "cloud", "", "provider key", required=True),
    Column("region", _S, "region", "", "region code", required=True),
    Column("supports_multi_mount", _B, "supports_multi_mount", "",
           "several instances can mount one volume (the docs spell the key "
           "`supports_multiple_mounts`; both are read)", "bool"),
    Column("fixed_size", _B, "fixed_size", "", "volumes are fixed in size", "bool"),
    Column("price_per_gb_per_hour_usd", _F, "price_per_gb_per_hour", "USD/GB/hour",
           "storage price (a dollar string such as `\".000097\"`)", "dollars", True),
    _OBSERVED,
)

SSH_KEYS: tuple[Column, ...] = (
    Column("ssh_key_id", _S, "id", "", "Shadeform SSH key id", required=True),
    Column("name", _S, "name", "", "key name given by the user", required=True),
    Column("is_default", _B, "is_default", "", "the account's default key", "bool", True),
    Column("key_type", _S, "public_key", "", "the key's algorithm, e.g. `ssh-ed25519`",
           "derived"),
    Column("public_key_sha256", _S, "public_key", "",
           "OpenSSH SHA256 fingerprint of the key (`SHA256:...`, as `ssh-keygen -l` prints it); "
           "the key itself is never loaded", "derived"),
    _OBSERVED,
)

TEMPLATES: tuple[Column, ...] = (
    Column("template_id", _S, "id", "", "Shadeform template id", required=True),
    Column("name", _S, "name", "", "template name", required=True),
    Column("description", _S, "description", "", "what the template is for"),
    Column("author", _S, "author", "", "who wrote it"),
    Column("logo", _S, "logo", "", "URL of its logo"),
    Column("public", _B, "public", "", "publicly available", "bool"),
    Column("featured", _B, "(envelope) endpoint", "",
           "listed by `/templates/featured` (True) or `/templates` (False); NA when the source "
           "does not say", "derived"),
    Column("launch_type", _S, "launch_configuration.type", "", "`docker`, `script` or NA"),
    Column("docker_image", _S, "launch_configuration.docker_configuration.image", "",
           "container image of a docker launch"),
    Column("has_registry_credentials", _B,
           "launch_configuration.docker_configuration.registry_credentials", "",
           "the docker launch carries registry credentials (never loaded)", "derived"),
    Column("script_sha256", _S, "launch_configuration.script_configuration.base64_script", "",
           "sha256 of the decoded startup script (the script is never loaded)", "derived"),
    *_thresholds("an instance launched from it"),
    Column("ufw_rule_count", _I, "networking.ufw_rules", "count", "firewall rules", "derived"),
    _OBSERVED,
)
TEMPLATE_TAGS = _child((Column("tag", _S, "tags[]", "", "a tag"),), "template")
TEMPLATE_ENVS = _child((
    Column("scope", _S, "envs | launch_configuration.docker_configuration.envs", "",
           "`instance` (the template's `envs`) or `docker` (its docker launch's `envs`)",
           "derived"),
    Column("name", _S, "envs[].name", "",
           "environment variable NAME only — values are secrets and are never loaded"),
), "template")

CLUSTER_TYPES: tuple[Column, ...] = (
    Column("cloud", _S, "cloud", "", "provider key", required=True),
    Column("shade_instance_type", _S, "cluster_type.shade_instance_type", "",
           "Shadeform's type of one node", required=True),
    Column("cloud_instance_type", _S, "cluster_type.cloud_instance_type", "",
           "the provider's type name of one node"),
    Column("num_instances", _I, "num_instances", "count", "nodes in the cluster", "int", True),
    Column("region", _S, "availability.region", "", "region code", required=True),
    Column("region_display_name", _S, "availability.display_name", "", "human label"),
    Column("available", _B, "availability.available", "", "can be launched now", "bool", True),
    Column("hourly_price_cents", _I, "cluster_type.hourly_price", "US cents/hour",
           "the offering's price as the API gives it (per node or per cluster is not "
           "documented)", "cents"),
    Column("hourly_price_usd", _F, "cluster_type.hourly_price", "USD/hour",
           "hourly_price_cents / 100", "derived"),
    Column("gpu_type", _S, "cluster_type.configuration.gpu_type", "", "GPU model of one node"),
    Column("gpu_manufacturer", _S, "cluster_type.configuration.gpu_manufacturer", "",
           "e.g. `nvidia`"),
    Column("num_gpus", _I, "cluster_type.configuration.num_gpus", "count", "GPUs per node",
           "int"),
    Column("vram_per_gpu_in_gb", _I, "cluster_type.configuration.vram_per_gpu_in_gb", "GB",
           "VRAM of one GPU", "int"),
    Column("vcpus", _I, "cluster_type.configuration.vcpus", "count", "virtual CPUs per node",
           "int"),
    Column("memory_in_gb", _I, "cluster_type.configuration.memory_in_gb", "GB",
           "system RAM per node", "int"),
    Column("storage_in_gb", _I, "cluster_type.configuration.storage_in_gb", "GB",
           "disk per node", "int"),
    Column("interconnect", _S, "cluster_type.configuration.interconnect", "",
           "GPU interconnect"),
    Column("nvlink", _B, "cluster_type.configuration.nvlink", "", "NVLink present", "bool"),
    Column("catalog_conflicts", _S, "cluster_type.configuration.* vs top-level copies", "",
           "as in `instance_types`", "derived"),
    _OBSERVED,
)

POLLS: tuple[Column, ...] = (
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the list endpoint was polled", "derived"),
    Column("endpoint", _S, "(envelope) endpoint", "",
           "the list endpoint: `/clusters`, `/instances`, `/instances/types`, `/volumes`, ...",
           "derived"),
    Column("ok", _B, "", "", "the poll succeeded: a resource missing from it is gone",
           "derived"),
)

#: table name -> columns, in the order the loaders and reports use.
TABLES: dict[str, tuple[Column, ...]] = {
    "clusters": CLUSTERS,
    "instances": INSTANCES,
    "instance_tags": INSTANCE_TAGS,
    "port_mappings": PORT_MAPPINGS,
    "docker_port_mappings": DOCKER_PORT_MAPPINGS,
    "docker_volume_mounts": DOCKER_VOLUME_MOUNTS,
    "docker_envs": DOCKER_ENVS,
    "instance_types": INSTANCE_TYPES,
    "instance_volumes": INSTANCE_VOLUMES,
    "instance_envs": INSTANCE_ENVS,
    "volumes": VOLUMES,
    "volume_types": VOLUME_TYPES,
    "ssh_keys": SSH_KEYS,
    "templates": TEMPLATES,
    "template_tags": TEMPLATE_TAGS,
    "template_envs": TEMPLATE_ENVS,
    "cluster_types": CLUSTER_TYPES,
    "polls": POLLS,
}

# -- records: the JSON objects rows come from -----------------------------------------------------


@dataclass(frozen=True)
class Record:
    """The JSON object the rows of ``table`` come from, declared once.

    Its fields are the source paths of the table's columns (derived columns aside), the source
    paths of its ``children`` tables, its ``secrets`` and its ``known`` fields: nothing else.
    The typed decoder's structs (``decode.py``), the row builder and the unknown-field report
    (``normalize.py``), the data dictionary and the store's validation derive from it, so that
    a new field of the API is one ``Column`` above.

    ``secrets`` are ``(path, how)``: ``raw`` is never decoded (a view of the input bytes at
    most), ``presence`` is read only as set or not, ``digest`` only through its sha256; none
    reaches a table. ``known`` are documented fields no column reads (they are not reported as
    unknown). ``info`` are the top-level fields only ``GET /instances/{id}/info`` carries, and
    ``absent`` the objects (or fields) where an absent field is told from a null one; both
    decode as ``msgspec.UNSET`` when absent.
    """

    table: str
    children: tuple[str, ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()
    known: tuple[str, ...] = ()
    info: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    #: the field that names the resource: a non-empty string, or the record cannot load
    id: str = "id"


def valid_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` can name a record (``Record.id``): a non-empty string. A record without
    one cannot be loaded (the typed decoder's ``min_length=1`` string, the walker's check) nor
    stored (the history store's validation)."""
    return type(value) is str and value != ""


_DOCKER = "launch_configuration.docker_configuration"

INSTANCE_RECORD = Record(
    "instances",
    children=("instance_tags", "port_mappings", "docker_port_mappings", "docker_volume_mounts",
              "docker_envs", "instance_volumes", "instance_envs"),
    secrets=((f"{_DOCKER}.envs[].value", "raw"),
             (f"{_DOCKER}.registry_credentials", "presence"), (f"{_DOCKER}.args", "raw"),
             ("launch_configuration.script_configuration.base64_script", "digest"),
             ("envs[].value", "raw")),
    # what the store keeps of a script instead of the script (``normalize.redact``)
    known=("launch_configuration.script_configuration.base64_script_sha256",),
    info=("volume_ids", "ssh_key_id", "auto_delete", "alert", "volume_mount", "envs"),
    absent=(_DOCKER, "launch_configuration.script_configuration.base64_script_sha256"),
)
CLUSTER_RECORD = Record("clusters", known=("instances",))
#: table -> its record, for the resources the typed decoder reads
RECORDS: dict[str, Record] = {"clusters": CLUSTER_RECORD, "instances": INSTANCE_RECORD}


@dataclass(frozen=True)
class Node:
    """One field of a record's JSON shape: ``kind`` is ``value`` (a scalar), ``object``,
    ``list`` (of scalars, or of objects when ``fields``), or a secret's ``how``."""

    kind: str
    fields: dict[str, Node] | None = None
    absent: bool = False


def _paths(record: Record) -> list[tuple[str, str]]:
    """(path, kind) of every field of ``record``: column sources, child sources, secrets."""
    out: list[tuple[str, str]] = []
    for table in (record.table, *record.children):
        for c in TABLES[table]:
            if c.parse != "derived" and not c.source.startswith("("):
                out.append((c.source, "value"))
    out += [(path, how) for path, how in record.secrets]
    out += [(path, "value") for path in record.known]
    return out


def shape(record: Record) -> dict[str, Node]:
    """The JSON shape of ``record``: field name -> :class:`Node`, nested, in declaration
    order (``a.b`` is field ``b`` of object ``a``; ``a[].b`` of each item of list ``a``)."""
    root: dict[str, Node] = {}
    absent = set(record.absent) | set(record.info)
    for path, kind in _paths(record):
        parts = path.split(".")
        level, prefix = root, ""
        for n, part in enumerate(parts):
            listed = part.endswith("[]")
            name = part[:-2] if listed else part
            prefix = f"{prefix}.{name}" if prefix else name
            last = n == len(parts) - 1
            gone = prefix in absent or any(prefix.startswith(f"{a}.") for a in absent)
            if last and not listed:
                level.setdefault(name, Node(kind, absent=gone))
                break
            node = level.get(name)
            if node is None or (node.fields is None and not last):
                node = Node("list" if listed else "object", None if last else {}, gone)
                level[name] = node
            if last:
                break
            level = node.fields  # type: ignore[assignment]
    return root


_TABLE_NOTES = {
    "clusters": "One row per cluster per snapshot (`GET /clusters`, `GET /clusters/{id}/info`).",
    "instances": "One row per instance per snapshot: cluster members (from the cluster's "
    "`instances[]`) and standalone instances (`GET /instances`, `GET /instances/{id}/info`).",
    "instance_tags": "`tags[]` of each instance row.",
    "port_mappings": "`port_mappings[]` of each instance row (ports the provider mapped).",
    "docker_port_mappings": "Port mappings of each docker launch configuration.",
    "docker_volume_mounts": "Volume mounts of each docker launch configuration.",
    "docker_envs": "Environment variable names of each docker launch configuration.",
    "instance_types": "The marketplace (`GET /instances/types`): one row per (cloud, "
    "shade_instance_type, region, rental_type). " + CATALOG_RULE,
    "instance_volumes": "`volume_ids[]` of each instance row from `GET /instances/{id}/info` "
    "(the list shape has none).",
    "instance_envs": "Top-level `envs[]` names of each instance row from "
    "`GET /instances/{id}/info`.",
    "volumes": "One row per storage volume per snapshot (`GET /volumes`, "
    "`GET /volumes/{id}/info`). Its hourly price is "
    "`shadeanalytics.analytics.storage.volume_prices` (size x the volume type's price).",
    "volume_types": "Storage offerings (`GET /volumes/types`): one row per (cloud, region).",
    "ssh_keys": "One row per SSH key per snapshot (`GET /sshkeys`, `GET /sshkeys/{id}/info`); "
    "the public key is kept only as its fingerprint.",
    "templates": "One row per launch template per snapshot (`GET /templates`, "
    "`/templates/featured`, `/templates/{id}/info`); launch configurations are redacted as "
    "for instances.",
    "template_tags": "`tags[]` of each template row.",
    "template_envs": "Environment variable names of each template row (its `envs` and its "
    "docker launch's `envs`).",
    "cluster_types": "Multi-node offerings (`GET /clusters/types`): one row per (cloud, "
    "shade_instance_type, num_instances, region); hardware read by the `instance_types` rule.",
    "polls": "One row per dated list response (a snapshot envelope, or a collector poll in the "
    "history store): what was polled when, and whether it succeeded. Status timelines use it "
    "to tell when a resource vanished.",
}


def _pandas_dtype(column: Column) -> object:
    return status_dtype() if column.dtype == _STATUS else column.dtype


#: each table's empty frame, built once per spec (a Tables of a few resources builds dozens)
_EMPTY: dict[str, tuple[tuple[Column, ...], pd.DataFrame]] = {}


def empty_frame(table: str) -> pd.DataFrame:
    """An empty DataFrame of ``table`` with every column and dtype (a new one each call)."""
    spec = TABLES[table]
    cached = _EMPTY.get(table)
    if cached is None or cached[0] is not spec:
        cached = _EMPTY[table] = (spec, pd.DataFrame(
            {c.name: pd.Series([], dtype=_pandas_dtype(c)) for c in spec}
        ))
    return cached[1].copy()


def data_dictionary() -> str:
    """The data dictionary as Markdown: one section per table, one row per column."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from `shadeanalytics/ingest/schema.py` by `shadeanalytics columns`; do not "
        "edit by hand. Source paths are relative to the JSON object a row comes from. Money: "
        "`_cents` columns are the API's exact integers, `_usd` columns are float dollars. "
        "Timestamps are UTC. Secrets (env values, registry credentials, scripts, docker args) "
        "are never loaded.",
    ]
    for table, columns in TABLES.items():
        lines += ["", f"## {table}", "", _TABLE_NOTES[table], ""]
        lines += ["| column | dtype | unit | source | meaning |", "|---|---|---|---|---|"]
        for c in columns:
            source = f"`{c.source}`" if not c.source.startswith("(") else c.source
            meaning = c.meaning + (" (required by the API)" if c.required else "") + (
                " (null by lifecycle: null until placed, never a warning)" if c.lifecycle
                else "")
            lines.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {source} | {meaning} |")
    return "\n".join(lines) + "\n"

