"""What the fleet holds: GPUs, VRAM, CPUs and memory by GPU type (or any other grouping)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .._common import TimeLike, group_keys, key_column, ratio, require
from .._compat import deprecated, old_spellings
from .billing import BILL_COLUMNS, PENDING, Fleet, bill_fleet

__all__ = ["INVENTORY_KEYS", "PENDING", "billed_inventory", "gpu_inventory"]

#: Columns ``gpu_inventory`` can group by.
INVENTORY_KEYS: tuple[str, ...] = (
    "gpu_type", "gpu_manufacturer", "cloud", "region", "shade_instance_type",
    "cloud_instance_type", "interconnect", "cluster_id", "status", "rental_type",
)

_COLUMNS: dict[str, str] = {
    "instances": "Int64", "gpus": "Int64", "gpus_running": "Int64", "gpus_pending": "Int64",
    "total_vram_gb": "Int64", "vcpus": "Int64", "memory_in_gb": "Int64",
    "hourly_usd": "float64", "usd_per_gpu_hour": "float64", "clouds": "Int64",
    "regions": "Int64", "instances_without_configuration": "Int64",
}


@old_spellings(positional=("by",), renamed={"source": "fleet"})
def gpu_inventory(
    fleet: Fleet,
    *,
    by: str | Sequence[str] = ("gpu_type",),
    as_of: TimeLike = None,
) -> pd.DataFrame:
    """The GPUs (and CPUs, memory, VRAM) the fleet holds, one row per group.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> gpu_inventory(tables, as_of="2026-11-20T00:00Z")[
        ...     ["gpu_type", "gpus", "gpus_running", "total_vram_gb", "usd_per_gpu_hour"]
        ... ].round(2).head(3)
           gpu_type  gpus  gpus_running  total_vram_gb  usd_per_gpu_hour
        0      H100   323           291          25840              3.06
        1  A100_80G   203           203          16240              1.80
        2      H200   120           104          16920              3.41

    ``fleet`` (a ``Tables``, a ``Bill``, or an instances DataFrame of one snapshot) is billed
    at ``as_of`` (default: the newest poll) by the billing model; a ``Bill`` made at that
    instant is used as it is. (The ``instances`` of a ``Bill`` are still taken, with a
    ``DeprecationWarning``: pass the ``Bill``.)
    Held means in any state but ``stopped`` (``error``, ``deleting``, ``deleted``, vanished);
    running is ``active``, pending ``creating``, ``pending_provider`` or ``pending``; a status
    the API added since (or a missing one) counts as held but neither running nor pending.
    An instance whose response has no ``configuration`` takes it from the ``/instances/types``
    catalog of the same sources; without a catalog its GPU fields are unknown: it counts under
    gpu_type ``(unknown)``, adding nothing to the sums (never 0 GPUs), and ``quality_checks``
    reports it. CPU-only instances (``gpu_type`` ``CPU``, 0 GPUs) form their own group. ``by``
    is one or several of ``INVENTORY_KEYS``; a missing key shows as ``(standalone)`` for
    ``cluster_id`` and ``(none)`` otherwise. Sums add the known values; NA when none is known.

    Returns:
        DataFrame sorted by ``gpus`` descending (unknown last), then the keys. Columns: the
        keys (string); Int64: ``instances`` (held instance rows), ``gpus`` (sum of
        ``num_gpus``), ``gpus_running``, ``gpus_pending``, ``total_vram_gb``, ``vcpus``,
        ``memory_in_gb`` (sums); float64: ``hourly_usd`` (sum of the running instances'
        ``billed_price_usd``), ``usd_per_gpu_hour`` (hourly_usd / gpus_running; NaN when 0);
        Int64: ``clouds``, ``regions`` (distinct values), ``instances_without_configuration``.
    """
    if isinstance(fleet, pd.DataFrame) and all(c in fleet.columns for c in BILL_COLUMNS):
        deprecated("gpu_inventory(bill.instances)", "gpu_inventory(bill)", stacklevel=4)
        return billed_inventory(fleet, by=by)
    return billed_inventory(bill_fleet(fleet, as_of=as_of).instances, by=by)


def billed_inventory(latest: pd.DataFrame, *, by: str | Sequence[str] = ("gpu_type",)
                     ) -> pd.DataFrame:
    """``gpu_inventory`` of the ``instances`` of a ``Bill`` (billed already): for callers
    that hold the rows only, such as a chart handed them by the report."""
    keys = group_keys(by, INVENTORY_KEYS)
    require(latest, ["num_gpus", "total_vram_gb", "vcpus", "memory_in_gb", "cloud", "region",
                     *keys], "instances")
    held = latest[(latest["state"] != "stopped").to_numpy(dtype=bool)]
    running = (held["state"] == "running").to_numpy(dtype=bool)
    pending = (held["state"] == "pending").to_numpy(dtype=bool)
    unknown = (held["configuration_source"] == "missing").to_numpy(dtype=bool)
    gpus = held["num_gpus"].astype("Int64")
    work = pd.DataFrame({
        **{key: key_column(held[key], key, pd.Series(unknown, index=held.index))
           for key in keys},
        "gpus": gpus,
        "gpus_running": gpus.where(running, 0),
        "gpus_pending": gpus.where(pending, 0),
        "total_vram_gb": held["total_vram_gb"].astype("Int64"),
        "vcpus": held["vcpus"].astype("Int64"),
        "memory_in_gb": held["memory_in_gb"].astype("Int64"),
        "hourly_usd": held["billed_price_usd"].where(running, 0.0),
        "instances_without_configuration": unknown.astype("int64"),
        "cloud_": held["cloud"],
        "region_": held["region"],
    }, index=held.index)
    grouped = work.groupby(keys, sort=False, dropna=False)
    summed = ["gpus", "gpus_running", "gpus_pending", "total_vram_gb", "vcpus", "memory_in_gb",
              "hourly_usd"]
    out = pd.concat([
        grouped.size().rename("instances"),
        grouped[summed].sum().where(grouped[summed].count() > 0),
        grouped[["instances_without_configuration"]].sum(),
        grouped["cloud_"].nunique().rename("clouds"),
        grouped["region_"].nunique().rename("regions"),
    ], axis=1).reset_index()
    out["usd_per_gpu_hour"] = ratio(out["hourly_usd"], out["gpus_running"])
    out = out.sort_values(["gpus", *keys], ascending=[False, *[True] * len(keys)],
                          na_position="last", kind="stable")
    return out[[*keys, *_COLUMNS]].astype(
        {**dict.fromkeys(keys, "string"), **_COLUMNS}).reset_index(drop=True)
