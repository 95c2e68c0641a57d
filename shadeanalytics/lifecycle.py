"""How each instance came up and how long it ran: provisioning time, boot estimates, billed time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .costs import (
    TimeLike,
    _as_of,
    _by,
    _key_column,
    _latest_instances,
    _ratio,
    _require,
    billed_price_usd,
)
from .costs import billed_hours as _billed_hours

__all__ = ["BOOT_KEYS", "boot_stats", "lifecycle"]

#: Columns ``boot_stats`` can group by (columns of ``lifecycle``'s result).
BOOT_KEYS: tuple[str, ...] = ("cloud", "shade_instance_type", "cluster_id", "status")

_PASSED = ("cluster_id", "instance_id", "name", "cloud", "shade_instance_type", "status",
           "created_at", "active_at")


def lifecycle(instances: pd.DataFrame, *, as_of: TimeLike = None) -> pd.DataFrame:
    """One row per instance: how long it took to come up, and how long it has been billed.

    Example::

        >>> from shadeanalytics import read_clusters
        >>> tables = read_clusters("data/seed/cluster-info-example.json")
        >>> lifecycle(tables.instances, as_of="2026-11-20T00:00Z")[
        ...     ["status", "provisioning_s", "boot_time_max_s", "boot_late", "billed_hours"]]
           status  provisioning_s  boot_time_max_s  boot_late  billed_hours
        0  active             0.0              300      False           0.0

    A snapshot history is first reduced to the latest row(s) of each instance.

    Returns:
        DataFrame sorted by ``created_at`` (unknown last), then ``instance_id``. Columns, as in
        the instances table: ``cluster_id`` (NA for standalone instances), ``instance_id``,
        ``name``, ``cloud``, ``shade_instance_type`` (string), ``status`` (ordered
        categorical), ``created_at``, ``active_at`` (UTC); then ``provisioning_s`` (float64,
        active_at - created_at in seconds; NaN without active_at), ``boot_time_min_s``,
        ``boot_time_max_s`` (Int64, the API's estimate), ``boot_late`` (boolean:
        provisioning_s > boot_time_max_s; NA when either is unknown), ``billed_hours``,
        ``accrued_usd`` (float64, see ``costs.billed_hours``), ``age_s`` (float64, as_of -
        created_at in seconds; negative for an instance created after as_of).
    """
    _require(instances, [*_PASSED, "boot_time_min_s", "boot_time_max_s", "deleted_at",
                         "hourly_price_usd", "observed_at"], "instances")
    at = _as_of(as_of)
    latest = _latest_instances(instances)
    out = latest[list(_PASSED)].copy()
    provisioning = (latest["active_at"] - latest["created_at"]).dt.total_seconds()
    out["provisioning_s"] = provisioning.astype("float64")
    boot_max = latest["boot_time_max_s"].astype("Int64")
    out["boot_time_min_s"] = latest["boot_time_min_s"].astype("Int64")
    out["boot_time_max_s"] = boot_max
    limit = boot_max.to_numpy(dtype="float64", na_value=np.nan)
    seconds = out["provisioning_s"].to_numpy()
    unknown = np.isnan(seconds) | np.isnan(limit)
    late = pd.arrays.BooleanArray(np.where(unknown, False, seconds > limit), unknown)
    out["boot_late"] = pd.Series(late, index=latest.index)
    hours = _billed_hours(latest, at)
    out["billed_hours"] = hours
    # costs.accrued_usd, without computing the billed hours a second time
    out["accrued_usd"] = (hours * billed_price_usd(latest)).rename("accrued_usd")
    out["age_s"] = (at - latest["created_at"]).dt.total_seconds().astype("float64")
    out = out.sort_values(["created_at", "instance_id"], na_position="last", kind="stable")
    return out.reset_index(drop=True)


_STATS_COLUMNS: dict[str, str] = {
    "count": "Int64", "median_provisioning_s": "float64", "p90_provisioning_s": "float64",
    "share_late": "float64",
}


def boot_stats(
    instances_or_lifecycle: pd.DataFrame,
    by: str | Sequence[str] = ("cloud",),
    *,
    as_of: TimeLike = None,
) -> pd.DataFrame:
    """Provisioning time by group, and how often it overran the API's own boot estimate.

    Example::

        >>> from shadeanalytics import read_clusters
        >>> tables = read_clusters("data/seed/cluster-info-example.json")
        >>> boot_stats(tables.instances, by="cloud", as_of="2026-11-20T00:00Z")
                cloud  count  median_provisioning_s  p90_provisioning_s  share_late
        0  hyperstack      1                    0.0                 0.0         0.0

    Takes the instances table (``lifecycle`` is applied first, at ``as_of``) or a result of
    ``lifecycle``. ``by`` is one or several of ``BOOT_KEYS``; a missing key shows as
    ``(standalone)`` for ``cluster_id`` and ``(none)`` otherwise. Every group of the input has
    a row, also one where no instance has become active yet (count 0, NaN statistics).

    Returns:
        DataFrame sorted by the keys. Columns: the keys (string); ``count`` (Int64, instances
        with a provisioning time); float64: ``median_provisioning_s``, ``p90_provisioning_s``
        (90th percentile, linear interpolation), ``share_late`` (late instances / those with
        both a provisioning time and a ``boot_time_max_s``, 0..1; NaN when there are none).
    """
    keys = _by(by, BOOT_KEYS)
    if "provisioning_s" in instances_or_lifecycle.columns:
        _as_of(as_of)
        table = instances_or_lifecycle
    else:
        table = lifecycle(instances_or_lifecycle, as_of=as_of)
    _require(table, ["provisioning_s", "boot_late", *keys], "lifecycle")
    late = table["boot_late"].astype("boolean")
    work = pd.DataFrame({
        **{key: _key_column(table[key], key) for key in keys},
        "provisioning_s": table["provisioning_s"].astype("float64"),
        "late": late.fillna(False).astype("int64"),
        "judged": late.notna().astype("int64"),
    }, index=table.index)
    grouped = work.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(
        count=("provisioning_s", "count"),
        median_provisioning_s=("provisioning_s", "median"),
        late=("late", "sum"),
        judged=("judged", "sum"),
    )
    out["p90_provisioning_s"] = grouped["provisioning_s"].quantile(0.9)
    out["share_late"] = _ratio(out["late"], out["judged"])
    out = out.reset_index()
    return out[[*keys, *_STATS_COLUMNS]].astype(
        {**dict.fromkeys(keys, "string"), **_STATS_COLUMNS}).reset_index(drop=True)
