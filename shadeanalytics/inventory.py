"""What the fleet holds: GPUs, VRAM, CPUs and memory by GPU type (or any other grouping)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .costs import (
    RUNNING,
    STOPPED,
    _by,
    _key_column,
    _latest_instances,
    _ratio,
    _require,
    billed_price_usd,
)

__all__ = ["INVENTORY_KEYS", "PENDING", "gpu_inventory"]

#: Columns ``gpu_inventory`` can group by.
INVENTORY_KEYS: tuple[str, ...] = (
    "gpu_type", "gpu_manufacturer", "cloud", "region", "shade_instance_type",
    "cloud_instance_type", "interconnect", "cluster_id", "status", "rental_type",
)
#: Statuses of an instance on its way up: asked for, not running yet.
PENDING: tuple[str, ...] = ("creating", "pending_provider", "pending")

_COLUMNS: dict[str, str] = {
    "instances": "Int64", "gpus": "Int64", "gpus_running": "Int64", "gpus_pending": "Int64",
    "total_vram_gb": "Int64", "vcpus": "Int64", "memory_in_gb": "Int64",
    "hourly_usd": "float64", "usd_per_gpu_hour": "float64", "clouds": "Int64",
    "regions": "Int64",
}


def gpu_inventory(
    instances: pd.DataFrame, by: str | Sequence[str] = ("gpu_type",)
) -> pd.DataFrame:
    """The GPUs (and CPUs, memory, VRAM) the fleet holds, one row per group.

    Example::

        >>> from shadeanalytics import read_clusters
        >>> tables = read_clusters("data/seed/cluster-info-example.json")
        >>> gpu_inventory(tables.instances)[
        ...     ["gpu_type", "gpus", "gpus_running", "total_vram_gb", "usd_per_gpu_hour"]]
          gpu_type  gpus  gpus_running  total_vram_gb  usd_per_gpu_hour
        0     A100     1             1             48               2.1

    A snapshot history is first reduced to the latest row(s) of each instance. Held means
    not in ``deleting``, ``deleted`` or ``error``; a status the API added since (or a missing
    one) counts as held but neither running (``active``) nor pending (``creating``,
    ``pending_provider``, ``pending``). CPU-only instances (``gpu_type`` ``CPU``, 0 GPUs) form
    their own group. ``by`` is one or several of ``INVENTORY_KEYS``; a missing key shows as
    ``(standalone)`` for ``cluster_id`` and ``(none)`` otherwise. Sums skip missing values.

    Returns:
        DataFrame sorted by ``gpus`` descending, then the keys. Columns: the keys (string);
        Int64: ``instances`` (held instance rows), ``gpus`` (sum of ``num_gpus``),
        ``gpus_running``, ``gpus_pending``, ``total_vram_gb``, ``vcpus``, ``memory_in_gb``
        (sums); float64: ``hourly_usd`` (sum of the running instances' ``billed_price_usd``),
        ``usd_per_gpu_hour`` (hourly_usd / gpus_running; NaN when 0); Int64: ``clouds``,
        ``regions`` (distinct values).
    """
    keys = _by(by, INVENTORY_KEYS)
    _require(instances, ["status", "num_gpus", "total_vram_gb", "vcpus", "memory_in_gb",
                         "hourly_price_usd", "cloud", "region", *keys], "instances")
    latest = _latest_instances(instances)
    held = latest[~latest["status"].isin(STOPPED)]
    running = held["status"] == RUNNING
    gpus = held["num_gpus"].astype("Int64")
    work = pd.DataFrame({
        **{key: _key_column(held[key], key) for key in keys},
        "gpus": gpus,
        "gpus_running": gpus.where(running, 0),
        "gpus_pending": gpus.where(held["status"].isin(PENDING), 0),
        "total_vram_gb": held["total_vram_gb"].astype("Int64"),
        "vcpus": held["vcpus"].astype("Int64"),
        "memory_in_gb": held["memory_in_gb"].astype("Int64"),
        "hourly_usd": billed_price_usd(held).where(running, 0.0),
        "cloud_": held["cloud"],
        "region_": held["region"],
    }, index=held.index)
    out = work.groupby(keys, sort=False, dropna=False).agg(
        instances=("gpus", "size"),
        gpus=("gpus", "sum"),
        gpus_running=("gpus_running", "sum"),
        gpus_pending=("gpus_pending", "sum"),
        total_vram_gb=("total_vram_gb", "sum"),
        vcpus=("vcpus", "sum"),
        memory_in_gb=("memory_in_gb", "sum"),
        hourly_usd=("hourly_usd", "sum"),
        clouds=("cloud_", "nunique"),
        regions=("region_", "nunique"),
    ).reset_index()
    out["usd_per_gpu_hour"] = _ratio(out["hourly_usd"], out["gpus_running"])
    out = out.sort_values(["gpus", *keys], ascending=[False, *[True] * len(keys)],
                          kind="stable")
    return out[[*keys, *_COLUMNS]].astype(
        {**dict.fromkeys(keys, "string"), **_COLUMNS}).reset_index(drop=True)
