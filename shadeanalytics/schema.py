"""Every table's columns: name, dtype, unit, source JSON path and meaning — the single source.

The loaders build their DataFrames from these definitions, the report writes columns in this
order, and ``docs/data-dictionary.md`` is generated from this module
(``shadeanalytics columns > docs/data-dictionary.md``; a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = [
    "CLUSTERS",
    "INSTANCES",
    "INSTANCE_TYPES",
    "POLLS",
    "STATUSES",
    "TABLES",
    "TIMESTAMP",
    "Column",
    "data_dictionary",
    "empty_frame",
    "status_dtype",
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


def status_dtype(extra: tuple[str, ...] = ()) -> pd.CategoricalDtype:
    """The ordered status dtype; ``extra`` are statuses the API added since (appended last)."""
    return pd.CategoricalDtype([*STATUSES, *extra], ordered=True)


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``parse`` says how the raw JSON value becomes the column: ``str``, ``int``, ``bool``,
    ``time`` (RFC 3339 -> UTC), ``cents`` (integer cents), ``dollars`` (a dollar string such as
    ``"$1,234.50"``), ``status`` (ordered categorical), or ``derived`` (computed from other
    columns). ``required`` columns that are missing or null in the JSON load as NA with a
    warning: the API promises them.
    """

    name: str
    dtype: str
    source: str
    unit: str
    meaning: str
    parse: str = "str"
    required: bool = False


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
    Column("active_at", TIMESTAMP, "active_at", "UTC", "when the cluster became active", "time"),
    Column("hourly_price_cents", _I, "hourly_price", "US cents/hour", "price of the cluster",
           "cents", True),
    Column("hourly_price_usd", _F, "hourly_price", "USD/hour", "hourly_price_cents / 100",
           "derived"),
    Column("cost_estimate_usd", _F, "cost_estimate", "USD",
           "Shadeform's estimated cost so far (`$` and `,` stripped)", "dollars"),
    Column("cloud_cluster_id", _S, "cloud_cluster_id", "", "provider-assigned cluster id"),
    Column("instance_count", _I, "instances", "count", "number of instances listed in the cluster",
           "derived"),
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the response was captured; NaT when the source does not say", "derived"),
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
    Column("cloud_assigned_id", _S, "cloud_assigned_id", "", "the provider's id for the VM",
           required=True),
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
    Column("ip", _S, "ip", "", "public address (sensitive: reports omit it by default)"),
    Column("ssh_user", _S, "ssh_user", "", "SSH login (reports omit it by default)"),
    Column("ssh_port", _I, "ssh_port", "", "SSH port (reports omit it by default)", "int"),
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
    Column("active_at", TIMESTAMP, "active_at", "UTC", "when the instance became active", "time"),
    Column("deleted_at", TIMESTAMP, "deleted_at", "UTC", "deletion time; NaT while live", "time"),
    Column("boot_time_min_s", _I, "boot_time.min_boot_in_sec", "s", "boot-time estimate, low",
           "int"),
    Column("boot_time_max_s", _I, "boot_time.max_boot_in_sec", "s", "boot-time estimate, high",
           "int"),
    Column("launch_type", _S, "launch_configuration.type", "", "`docker`, `script` or NA"),
    Column("docker_image", _S, "launch_configuration.docker_configuration.image", "",
           "container image of a docker launch"),
    Column("has_registry_credentials", _B,
           "launch_configuration.docker_configuration.registry_credentials", "",
           "the docker launch carries registry credentials (the credentials are never loaded)",
           "derived"),
    Column("script_sha256", _S, "launch_configuration.script_configuration.base64_script", "",
           "sha256 of the decoded startup script (the script is never loaded)", "derived"),
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
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the response was captured; NaT when the source does not say", "derived"),
)


def _child(value_columns: tuple[Column, ...]) -> tuple[Column, ...]:
    return (
        Column("instance_id", _S, "(parent instance) id", "", "the instance", "derived"),
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

POLLS: tuple[Column, ...] = (
    Column("observed_at", TIMESTAMP, "(envelope) observed_at", "UTC",
           "when the list endpoint was polled", "derived"),
    Column("endpoint", _S, "(envelope) endpoint", "",
           "`/clusters`, `/instances` or `/instances/types`", "derived"),
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
    "polls": POLLS,
}

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
    "shade_instance_type, region, rental_type).",
    "polls": "One row per dated list response (a snapshot envelope, or a collector poll in the "
    "history store): what was polled when, and whether it succeeded. Status timelines use it "
    "to tell when a resource vanished.",
}


def _pandas_dtype(column: Column) -> object:
    return status_dtype() if column.dtype == _STATUS else column.dtype


def empty_frame(table: str) -> pd.DataFrame:
    """An empty DataFrame of ``table`` with every column and dtype."""
    return pd.DataFrame(
        {c.name: pd.Series([], dtype=_pandas_dtype(c)) for c in TABLES[table]}  # type: ignore[call-overload]
    )


def data_dictionary() -> str:
    """The data dictionary as Markdown: one section per table, one row per column."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from `shadeanalytics/schema.py` by `shadeanalytics columns`; do not "
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
            meaning = c.meaning + (" (required by the API)" if c.required else "")
            lines.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {source} | {meaning} |")
    return "\n".join(lines) + "\n"

