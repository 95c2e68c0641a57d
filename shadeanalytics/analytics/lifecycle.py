"""How each instance came up and how long it ran: provisioning time, boot estimates, billed time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._common import TimeLike, as_of_time, group_keys, key_column, ratio, require
from .._compat import deprecated, old_spellings, renamed
from .billing import BASIS_COLUMNS, Fleet, bill_fleet

__all__ = ["BOOT_KEYS", "boot_stats", "instance_lifecycle", "lifecycle"]

#: Columns ``boot_stats`` can group by (columns of ``instance_lifecycle``'s result).
BOOT_KEYS: tuple[str, ...] = ("cloud", "shade_instance_type", "cluster_id", "status")

_PASSED = ("cluster_id", "instance_id", "name", "cloud", "shade_instance_type", "status",
           "created_at", "active_at")
_BILLED = ("billed_from", "billed_from_source", "billed_to", "billing_end_source",
           "billed_hours", "accrued_usd", *BASIS_COLUMNS)


@old_spellings(renamed={"source": "fleet"})
def instance_lifecycle(fleet: Fleet, *, as_of: TimeLike = None) -> pd.DataFrame:
    """One row per instance: how long it took to come up, and when and why it was billed.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> instance_lifecycle(tables, as_of="2026-11-20T00:00Z")[
        ...     ["status", "provisioning_s", "boot_late", "billed_from_source",
        ...      "billing_end_source"]].head(3)
            status  provisioning_s  boot_late billed_from_source billing_end_source
        0   active         478.341      False                api              as_of
        1   active         199.168      False                api              as_of
        2  deleted        1429.000       <NA>                api         deleted_at

    ``fleet`` (a ``Tables``, a ``Bill``, or an instances DataFrame of one snapshot) is billed
    at ``as_of`` by the billing model, which reduces a history to each instance's state then.

    Returns:
        DataFrame sorted by ``created_at`` (unknown last), then ``instance_id``. Columns, as in
        the instances table: ``cluster_id`` (NA for standalone instances), ``instance_id``,
        ``name``, ``cloud``, ``shade_instance_type`` (string), ``status`` (ordered
        categorical), ``created_at``, ``active_at`` (UTC); then ``provisioning_s`` (float64,
        active_at - created_at in seconds; NaN without active_at), ``boot_time_min_s``,
        ``boot_time_max_s`` (Int64, the API's estimate), ``boot_late`` (boolean:
        provisioning_s > boot_time_max_s; NA when either is unknown); from the billing model:
        ``billed_from`` (UTC, when billing started; NaT when never or unknown),
        ``billed_from_source`` (``api``: active_at; ``observed``: the first poll that saw it
        active), ``billed_to`` (UTC, when billing ended, or as_of while it runs),
        ``billing_end_source`` (``as_of``, ``deleting_observed``, ``error_observed``,
        ``deleted_at``, ``vanished``, ...), ``billed_hours``, ``accrued_usd`` (float64, NaN
        when unknown) and its split by basis (``billing.BASIS_COLUMNS``); ``age_s`` (float64,
        as_of - created_at in seconds; negative for an instance created after as_of).
    """
    billed = bill_fleet(fleet, as_of=as_of)
    latest = billed.instances
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
    for column in _BILLED:
        out[column] = latest[column]
    out["age_s"] = (billed.as_of - latest["created_at"]).dt.total_seconds().astype("float64")
    out = out.sort_values(["created_at", "instance_id"], na_position="last", kind="stable")
    return out.reset_index(drop=True)


_STATS_COLUMNS: dict[str, str] = {
    "count": "Int64", "median_provisioning_s": "float64", "p90_provisioning_s": "float64",
    "share_late": "float64",
}


@old_spellings(positional=("by",), renamed={"instances_or_lifecycle": "fleet"})
def boot_stats(
    fleet: Fleet | None = None,
    *,
    by: str | Sequence[str] = ("cloud",),
    as_of: TimeLike = None,
    lifecycle: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Provisioning time by group, and how often it overran the API's own boot estimate.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> boot_stats(tables, by="cloud", as_of="2026-11-20T00:00Z").round(2).head(3)
                cloud  count  median_provisioning_s  p90_provisioning_s  share_late
        0      crusoe     39                1152.00             1267.49        0.05
        1  datacrunch     20                 681.50              798.00        0.00
        2       denvr     23                1376.76             1456.52        0.33

    Takes what ``instance_lifecycle`` takes (it is applied first, at ``as_of``), or, as
    ``lifecycle=``, a result of ``instance_lifecycle`` (then without ``fleet``). ``by`` is one
    or several of ``BOOT_KEYS``; a missing key shows as
    ``(standalone)`` for ``cluster_id`` and ``(none)`` otherwise. Every group of the input has
    a row, also one where no instance has become active yet (count 0, NaN statistics).

    Returns:
        DataFrame sorted by the keys. Columns: the keys (string); ``count`` (Int64, instances
        with a provisioning time); float64: ``median_provisioning_s``, ``p90_provisioning_s``
        (90th percentile, linear interpolation), ``share_late`` (late instances / those with
        both a provisioning time and a ``boot_time_max_s``, 0..1; NaN when there are none).
    """
    keys = group_keys(by, BOOT_KEYS)
    if isinstance(fleet, pd.DataFrame) and "provisioning_s" in fleet.columns:
        # the old spelling, a lifecycle result as the fleet: one release more
        deprecated("boot_stats(<a lifecycle result>)", "boot_stats(lifecycle=...)",
                   stacklevel=4)  # the caller, past the old_spellings wrapper
        fleet, lifecycle = None, fleet
    if (fleet is None) == (lifecycle is None):
        raise TypeError("boot_stats() takes a fleet (Tables, Bill or instances) or "
                        "lifecycle= (a result of instance_lifecycle), one of the two")
    if lifecycle is not None:
        if as_of is not None:
            as_of_time(as_of)  # a naive time is refused here too
        table = lifecycle
    else:
        assert fleet is not None
        table = instance_lifecycle(fleet, as_of=as_of)
    require(table, ["provisioning_s", "boot_late", *keys], "lifecycle")
    late = table["boot_late"].astype("boolean")
    work = pd.DataFrame({
        **{key: key_column(table[key], key) for key in keys},
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
    out["share_late"] = ratio(out["late"], out["judged"])
    out = out.reset_index()
    return out[[*keys, *_STATS_COLUMNS]].astype(
        {**dict.fromkeys(keys, "string"), **_STATS_COLUMNS}).reset_index(drop=True)


#: Deprecated: ``instance_lifecycle`` (the module is ``lifecycle``; kept for one release).
lifecycle = renamed(instance_lifecycle, "lifecycle")
