"""What the fleet costs: billed hours, accrued dollars, hourly run rate by group and by cluster."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

import numpy as np
import pandas as pd

from .tables import Tables, _newest

__all__ = [
    "COST_KEYS",
    "HOURS_PER_DAY",
    "HOURS_PER_MONTH",
    "RUNNING",
    "STOPPED",
    "TimeLike",
    "accrued_usd",
    "billed_hours",
    "billed_price_usd",
    "cluster_summary",
    "cost_breakdown",
]

#: A UTC instant: a tz-aware ``pd.Timestamp``, ``datetime`` or RFC 3339 string; None is now.
TimeLike: TypeAlias = pd.Timestamp | datetime | str | None

HOURS_PER_DAY = 24
#: The billing-industry month: 8,760 hours a year / 12.
HOURS_PER_MONTH = 730

#: Columns ``cost_breakdown`` can group by (``tag`` needs the ``instance_tags`` table).
COST_KEYS: tuple[str, ...] = (
    "cloud", "region", "gpu_type", "shade_instance_type", "cluster_id", "status", "rental_type",
    "tag",
)

RUNNING = "active"
#: Statuses in which billing has stopped: the billed interval ends when the row was observed.
STOPPED: tuple[str, ...] = ("deleting", "deleted", "error")
#: How a missing group key is shown; any other key shows ``(none)``.
_NA_LABELS = {"cluster_id": "(standalone)", "tag": "(untagged)"}
_NA_LABEL = "(none)"


# -- shared helpers (also used by inventory, lifecycle and quality) -----------------------------


def _instant(value: TimeLike, name: str) -> pd.Timestamp:
    """``value`` as a UTC ``pd.Timestamp`` in microseconds; a naive time or NaT is refused."""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"{name} must be a time, not NaT")
    if stamp.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. '2026-11-21T12:00:00Z' or "
                         "pd.Timestamp.now(tz='UTC')")
    return stamp.tz_convert("UTC").as_unit("us")


def _as_of(as_of: TimeLike) -> pd.Timestamp:
    """``as_of`` as a UTC ``pd.Timestamp``; None is now. A naive time is refused."""
    return _instant(pd.Timestamp.now(tz="UTC") if as_of is None else as_of, "as_of")


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing the column(s) {', '.join(missing)}; pass the "
                         f"{what} table of shadeanalytics.read()")


def _by(by: str | Sequence[str], allowed: Sequence[str], *, required: bool = True) -> list[str]:
    """``by`` as a list of group keys, checked against ``allowed`` (at least one if
    ``required``)."""
    keys = [by] if isinstance(by, str) else list(by)
    if required and not keys:
        raise ValueError(f"by needs at least one of {', '.join(allowed)}")
    unknown = [k for k in keys if k not in allowed]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(map(repr, unknown))}; by takes any of "
                         f"{', '.join(allowed)}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"by lists a key twice: {keys}")
    return keys


def _key_column(values: pd.Series, key: str) -> pd.Series:
    """A group key as ``string``, its missing values labelled (``(standalone)``, ``(none)``)."""
    return values.astype("string").fillna(_NA_LABELS.get(key, _NA_LABEL))


def _latest_instances(instances: pd.DataFrame) -> pd.DataFrame:
    """For each ``instance_id``, the row(s) of its newest ``observed_at`` (NaT counts as oldest).

    The rule of ``Tables.latest()``: an instance listed in two clusters of one snapshot keeps
    both rows (``quality_checks`` reports it as ``duplicate_instance``).
    """
    _require(instances, ["instance_id", "observed_at"], "instances")
    return _newest_rows(instances, ["instance_id"])


def _newest_rows(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """``tables._newest(df, key)``: for each key, the rows of its newest ``observed_at``.

    The same rows, index and columns; but when every row is kept (one snapshot: a single
    ``observed_at``; or a key that is already unique, as in ``Tables.latest()``), without the
    grouping and the copy of every column, which the analytics would otherwise pay on every
    call.
    """
    try:
        # nunique, not a comparison with the first value: all-NaT is one snapshot too
        one_snapshot = df["observed_at"].nunique(dropna=False) == 1  # noqa: PD101
        keeps_all = len(df) > 0 and (one_snapshot or not df.duplicated(subset=key).any())
    except TypeError:  # unhashable values: let _newest decide (and complain)
        keeps_all = False
    return df.reset_index(drop=True) if keeps_all else _newest(df, key)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as float64, NaN where the denominator is 0 or missing."""
    den = denominator.astype("float64")
    return (numerator.astype("float64") / den.where(den != 0)).astype("float64")


# -- building blocks ----------------------------------------------------------------------------


def billed_hours(instances: pd.DataFrame, as_of: TimeLike = None) -> pd.Series:
    """Hours each instance row has been billed at ``as_of``, row by row.

    Example::

        >>> def utc(*times): return pd.to_datetime(list(times), utc=True)
        >>> df = pd.DataFrame({
        ...     "status": ["active", "deleted", "pending"],
        ...     "active_at": utc("2026-11-20T17:30Z", "2026-11-20T12:00Z", None),
        ...     "deleted_at": utc(None, "2026-11-20T14:00Z", None),
        ...     "observed_at": utc(None, None, None),
        ...     "hourly_price_usd": [2.10, 16.0, 3.0]})
        >>> billed_hours(df, as_of="2026-11-20T20:00Z")
        0    2.5
        1    2.0
        2    0.0
        Name: billed_hours, dtype: float64

    The billed interval runs from ``active_at`` to its end: ``deleted_at`` when known, else,
    for an instance in ``deleting``, ``deleted`` or ``error`` (billing has stopped), the row's
    ``observed_at`` when known, else ``as_of``; the end is capped at ``as_of``. No
    ``active_at``: 0 hours. A negative interval counts 0. Rows are not reduced to the latest
    snapshot here (``cost_breakdown`` does that).

    Returns:
        float64 Series named ``billed_hours``, aligned to ``instances``' index.
    """
    _require(instances, ["status", "active_at", "deleted_at", "observed_at"], "instances")
    at = _as_of(as_of)
    stopped = instances["status"].isin(STOPPED)
    end = instances["deleted_at"].fillna(instances["observed_at"].where(stopped)).fillna(at)
    end = end.where(end <= at, at)
    seconds = (end - instances["active_at"]).dt.total_seconds()
    hours = seconds.clip(lower=0).fillna(0.0) / 3600
    return hours.astype("float64").rename("billed_hours")


def billed_price_usd(instances: pd.DataFrame) -> pd.Series:
    """The hourly rate each instance is billed at, in USD.

    For a spot rental, its own discounted rate (``rental_hourly_price_usd``) where the API
    gives one; for everything else (and a spot rental without a rate) the on-demand
    ``hourly_price_usd``. The API documents the spot rate as what a spot instance costs:
    pricing it at the on-demand rate would overstate it (often twice over).

    Returns:
        float64 Series named ``billed_price_usd``, aligned to ``instances``' index.
    """
    _require(instances, ["hourly_price_usd"], "instances")
    price = instances["hourly_price_usd"].astype("float64")
    if "rental_hourly_price_usd" in instances and "rental_type" in instances:
        spot = (instances["rental_type"] == "spot").fillna(False).to_numpy(dtype=bool)
        rental = instances["rental_hourly_price_usd"].astype("float64")
        price = price.where(~spot | rental.isna(), rental)
    return price.rename("billed_price_usd")


def accrued_usd(instances: pd.DataFrame, as_of: TimeLike = None) -> pd.Series:
    """Dollars each instance row has accrued at ``as_of``: billed hours x ``billed_price_usd``.

    Example::

        >>> def utc(*times): return pd.to_datetime(list(times), utc=True)
        >>> df = pd.DataFrame({
        ...     "status": ["active", "deleted", "active"],
        ...     "active_at": utc("2026-11-20T17:30Z", "2026-11-20T12:00Z", "2026-11-20T19:00Z"),
        ...     "deleted_at": utc(None, "2026-11-20T14:00Z", None),
        ...     "observed_at": utc(None, None, None),
        ...     "hourly_price_usd": [2.10, 16.0, None]})
        >>> accrued_usd(df, as_of="2026-11-20T20:00Z")  # 2.5 h at $2.10/h, 2 h at $16/h
        0     5.25
        1    32.00
        2      NaN
        Name: accrued_usd, dtype: float64

    Per second, no rounding, no minimum charge. A row without a price accrues NaN (not 0: the
    cost is unknown); group sums skip it.

    Returns:
        float64 Series named ``accrued_usd``, aligned to ``instances``' index.
    """
    return (billed_hours(instances, as_of) * billed_price_usd(instances)).rename("accrued_usd")


def _money(latest: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """Per latest instance row: the running flag and the figures the summaries add up."""
    running = latest["status"] == RUNNING
    price = billed_price_usd(latest)
    return pd.DataFrame({
        "running": running.astype("int64"),
        "gpus": latest["num_gpus"].astype("Int64").where(running, 0),
        "hourly_usd": price.where(running, 0.0),
        "price_usd": price,
        "accrued_usd": accrued_usd(latest, at),
        "reported_cost_usd": latest["cost_estimate_usd"].astype("float64"),
    }, index=latest.index)


# -- cost by group ------------------------------------------------------------------------------

_BREAKDOWN_COLUMNS: dict[str, str] = {
    "instances": "Int64", "running_instances": "Int64", "gpus": "Int64",
    "hourly_usd": "float64", "daily_usd": "float64", "monthly_usd": "float64",
    "accrued_usd": "float64", "reported_cost_usd": "float64", "cost_gap_usd": "float64",
    "usd_per_gpu_hour": "float64", "share_of_hourly": "float64",
}
_INSTANCE_COLUMNS = ("instance_id", "status", "num_gpus", "hourly_price_usd",
                     "cost_estimate_usd", "active_at", "deleted_at", "observed_at")


def _tag_rows(work: pd.DataFrame, latest: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """``work`` with one row per (instance row, distinct tag); untagged rows get an NA tag."""
    _require(tags, ["instance_id", "observed_at", "tag"], "instance_tags")
    # a tag listed twice, or an instance listed in two clusters, must not count twice
    distinct = tags[["instance_id", "observed_at", "tag"]].drop_duplicates()
    keys = latest[["instance_id", "observed_at"]].assign(_row=np.arange(len(latest)))
    tagged = keys.merge(distinct, on=["instance_id", "observed_at"], how="left")
    return work.iloc[tagged["_row"].to_numpy()].assign(
        tag=tagged["tag"].to_numpy()).reset_index(drop=True)


def cost_breakdown(
    instances: pd.DataFrame,
    by: str | Sequence[str] = ("cloud",),
    *,
    as_of: TimeLike = None,
    tags: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Run rate and cost so far of the fleet, one row per group.

    Example::

        >>> from shadeanalytics import read_clusters
        >>> tables = read_clusters("data/seed/cluster-info-example.json")
        >>> cost_breakdown(tables.instances, by="gpu_type", as_of="2026-11-20T00:00Z")[
        ...     ["gpu_type", "running_instances", "hourly_usd", "monthly_usd", "cost_gap_usd"]]
          gpu_type  running_instances  hourly_usd  monthly_usd  cost_gap_usd
        0     A100                  1         2.1       1533.0        -103.4

    A snapshot history is first reduced to the latest row(s) of each instance. ``by`` is one
    or several of ``COST_KEYS``: ``cloud``, ``region``, ``gpu_type``, ``shade_instance_type``,
    ``cluster_id``, ``status``, ``rental_type``, ``tag``. A missing key forms its own group,
    shown as ``(standalone)`` for ``cluster_id`` (instances outside any cluster), ``(untagged)``
    for ``tag`` and ``(none)`` otherwise. ``tag`` needs ``tags=tables.instance_tags``; an
    instance with two tags counts in both groups, so with ``tag`` the ``share_of_hourly``
    column can add up to more than 1 (it stays a share of the whole fleet's run rate).

    An instance is running when its status is ``active``. An instance without a price adds
    nothing to ``hourly_usd`` and ``accrued_usd`` (its accrued cost is unknown, and sums skip
    unknowns: a group of only such instances shows 0.0). An instance listed in two clusters of
    one snapshot counts twice (``quality_checks`` reports it).

    Returns:
        DataFrame sorted by ``hourly_usd`` descending, then the keys. Columns: the keys
        (string); ``instances`` (Int64, latest rows), ``running_instances`` (Int64), ``gpus``
        (Int64, GPUs of running instances); float64: ``hourly_usd`` (sum of the running
        instances' ``hourly_price_usd``), ``daily_usd`` (x 24), ``monthly_usd`` (x 730),
        ``accrued_usd`` (billed hours x price, see ``billed_hours``), ``reported_cost_usd``
        (sum of the API's ``cost_estimate_usd``), ``cost_gap_usd`` (accrued - reported),
        ``usd_per_gpu_hour`` (hourly_usd / gpus; NaN without GPUs), ``share_of_hourly``
        (hourly_usd / the fleet's hourly_usd, 0..1; NaN when the fleet's is 0).
    """
    keys = _by(by, COST_KEYS)
    if "tag" in keys and tags is None:
        raise ValueError("by='tag' needs the instance_tags table: pass "
                         "tags=tables.instance_tags")
    plain = [k for k in keys if k != "tag"]
    _require(instances, [*_INSTANCE_COLUMNS, *plain], "instances")
    at = _as_of(as_of)
    latest = _latest_instances(instances)
    money = _money(latest, at)
    work = pd.concat([latest[plain], money], axis=1).reset_index(drop=True)
    if tags is not None and "tag" in keys:
        work = _tag_rows(work, latest, tags)
    for key in keys:
        work[key] = _key_column(work[key], key)
    out = work.groupby(keys, sort=False, dropna=False).agg(
        instances=("running", "size"),
        running_instances=("running", "sum"),
        gpus=("gpus", "sum"),
        hourly_usd=("hourly_usd", "sum"),
        accrued_usd=("accrued_usd", "sum"),
        reported_cost_usd=("reported_cost_usd", "sum"),
    ).reset_index()
    out["daily_usd"] = HOURS_PER_DAY * out["hourly_usd"]
    out["monthly_usd"] = HOURS_PER_MONTH * out["hourly_usd"]
    out["cost_gap_usd"] = out["accrued_usd"] - out["reported_cost_usd"]
    out["usd_per_gpu_hour"] = _ratio(out["hourly_usd"], out["gpus"])
    fleet_hourly = float(money["hourly_usd"].sum())
    out["share_of_hourly"] = out["hourly_usd"] / fleet_hourly if fleet_hourly else np.nan
    # float sums of cent prices carry ~1e-15 of noise: equal run rates must tie on the keys
    out["_rate"] = out["hourly_usd"].round(9)
    out = out.sort_values(["_rate", *keys], ascending=[False, *[True] * len(keys)],
                          kind="stable")
    return out[[*keys, *_BREAKDOWN_COLUMNS]].astype(
        {**dict.fromkeys(keys, "string"), **_BREAKDOWN_COLUMNS}).reset_index(drop=True)


# -- cost by cluster ----------------------------------------------------------------------------

_CLUSTER_COLUMNS: dict[str, str] = {
    "instances": "Int64", "running_instances": "Int64", "gpus": "Int64",
    "hourly_price_usd": "float64", "instances_hourly_usd": "float64",
    "hourly_gap_usd": "float64", "accrued_usd": "float64", "reported_cost_usd": "float64",
    "instances_reported_cost_usd": "float64",
}


def cluster_summary(
    tables_or_clusters: Tables | pd.DataFrame,
    instances: pd.DataFrame | None = None,
    *,
    as_of: TimeLike = None,
) -> pd.DataFrame:
    """Each cluster's own price and cost beside the sums over the instances it lists.

    Example::

        >>> from shadeanalytics import read_clusters
        >>> tables = read_clusters("data/seed/cluster-info-example.json")
        >>> cluster_summary(tables, as_of="2026-11-20T00:00Z")[
        ...     ["name", "hourly_price_usd", "instances_hourly_usd", "hourly_gap_usd"]]
                     name  hourly_price_usd  instances_hourly_usd  hourly_gap_usd
        0  devnr-cluster1              15.0                   2.1            12.9

    Takes a ``Tables`` (its ``clusters`` and ``instances``) or the two DataFrames. Both are
    reduced to their latest snapshot; a cluster with two rows in its newest snapshot keeps the
    last one loaded. Instances whose cluster is not in ``clusters`` are left out.

    Returns:
        DataFrame, one row per cluster, sorted by ``hourly_price_usd`` descending (unknown
        last), then ``cluster_id``. Columns: ``cluster_id``, ``name``, ``cloud``, ``region``
        (string), ``status`` (the clusters table's ordered categorical); Int64: ``instances``
        (latest instance rows listing the cluster), ``running_instances``, ``gpus`` (of running
        instances); float64: ``hourly_price_usd`` (the cluster's own), ``instances_hourly_usd``
        (sum of ``hourly_price_usd`` over ALL its listed instances, running or not: what the
        cluster's price should add up to), ``hourly_gap_usd`` (hourly_price_usd -
        instances_hourly_usd), ``accrued_usd`` (sum over its instances, see ``billed_hours``),
        ``reported_cost_usd`` (the cluster's own ``cost_estimate_usd``),
        ``instances_reported_cost_usd`` (sum of its instances' ``cost_estimate_usd``).
    """
    if isinstance(tables_or_clusters, Tables):
        if instances is not None:
            raise ValueError("pass either a Tables or (clusters, instances), not both")
        clusters, instances = tables_or_clusters.clusters, tables_or_clusters.instances
    elif instances is None:
        raise ValueError("cluster_summary needs the instances: cluster_summary(tables) or "
                         "cluster_summary(clusters, instances)")
    else:
        clusters = tables_or_clusters
    _require(clusters, ["cluster_id", "name", "cloud", "region", "status", "hourly_price_usd",
                        "cost_estimate_usd", "observed_at"], "clusters")
    _require(instances, ["cluster_id", *_INSTANCE_COLUMNS], "instances")
    at = _as_of(as_of)
    latest = _latest_instances(instances)
    money = _money(latest, at)
    members = money.assign(cluster_id=latest["cluster_id"]).dropna(subset=["cluster_id"])
    sums = members.groupby("cluster_id", sort=False).agg(
        instances=("running", "size"),
        running_instances=("running", "sum"),
        gpus=("gpus", "sum"),
        instances_hourly_usd=("price_usd", "sum"),
        accrued_usd=("accrued_usd", "sum"),
        instances_reported_cost_usd=("reported_cost_usd", "sum"),
    )
    own = _newest_rows(clusters, ["cluster_id"]).drop_duplicates("cluster_id", keep="last")
    out = own[["cluster_id", "name", "cloud", "region", "status", "hourly_price_usd",
               "cost_estimate_usd"]].rename(columns={"cost_estimate_usd": "reported_cost_usd"})
    out = out.merge(sums, how="left", left_on="cluster_id", right_index=True)
    zero = {"instances": 0, "running_instances": 0, "gpus": 0, "instances_hourly_usd": 0.0,
            "accrued_usd": 0.0, "instances_reported_cost_usd": 0.0}
    out = out.fillna(zero)
    out["hourly_gap_usd"] = out["hourly_price_usd"] - out["instances_hourly_usd"]
    out = out.sort_values(["hourly_price_usd", "cluster_id"], ascending=[False, True],
                          na_position="last", kind="stable")
    return out[["cluster_id", "name", "cloud", "region", "status", *_CLUSTER_COLUMNS]].astype(
        _CLUSTER_COLUMNS).reset_index(drop=True)
