"""When each cluster and instance was in which status; how big the running fleet was over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._common import TimeLike, as_of_time, group_keys, instant, key_column
from .._compat import old_spellings
from ..ingest.schema import STATUSES, TIMESTAMP
from ..ingest.tables import Tables
from .asof import resolve_as_of
from .intervals import status_intervals as _intervals
from .periods import as_times as _times
from .periods import as_us as _us
from .periods import integral, period_edges

if TYPE_CHECKING:
    from .billing import Bill

__all__ = [
    "FLEET_COLUMNS",
    "TIMELINE_COLUMNS",
    "TIMELINE_KEYS",
    "fleet_over_time",
    "status_timeline",
    "time_in_status",
]

#: Columns of ``status_timeline``'s result and their dtypes, in order.
TIMELINE_COLUMNS: dict[str, str] = {
    "kind": "string",
    "resource_id": "string",
    "name": "string",
    "cluster_id": "string",
    "cloud": "string",
    "shade_instance_type": "string",
    "status": "string",
    "start_at": TIMESTAMP,
    "end_at": TIMESTAMP,
    "duration_s": "float64",
    "start_source": "string",
}

#: Columns ``time_in_status`` can group by (columns of ``status_timeline``'s result).
TIMELINE_KEYS: tuple[str, ...] = ("kind", "cloud", "shade_instance_type", "cluster_id",
                                  "resource_id")

#: Columns of ``fleet_over_time``'s result and their dtypes, in order.
FLEET_COLUMNS: dict[str, str] = {
    "period_start": TIMESTAMP,
    "running_instances": "float64",
    "running_gpus": "float64",
    "hourly_usd": "float64",
    "cost_usd": "float64",
    "peak_running_instances": "Int64",
}

_STATS_COLUMNS: dict[str, str] = {
    "intervals": "Int64", "total_s": "float64", "median_s": "float64", "mean_s": "float64",
}

_NAT = np.iinfo(np.int64).min  # what NaT is as int64 microseconds
_US_PER_HOUR = 3_600_000_000

_NEEDS = {
    "clusters": ("cluster_id", "name", "cloud", "status", "created_at", "active_at",
                 "observed_at"),
    "instances": ("instance_id", "name", "cluster_id", "cloud", "shade_instance_type", "status",
                  "created_at", "active_at", "deleted_at", "observed_at", "num_gpus",
                  "hourly_price_usd"),
    "polls": ("observed_at", "endpoint", "ok"),
}


# -- helpers ------------------------------------------------------------------------------------


def _require(history: Tables) -> None:
    for table, columns in _NEEDS.items():
        missing = [c for c in columns if c not in getattr(history, table).columns]
        if missing:
            raise ValueError(f"the {table} table is missing the column(s) {', '.join(missing)}; "
                             "pass the Tables of shadeanalytics.read() or of the history store")


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in columns.items()})


# -- status_timeline ----------------------------------------------------------------------------

_SOURCES = pd.array(["observed", "api"], dtype="string")


@old_spellings(renamed={"history": "fleet"})
def status_timeline(fleet: Tables | Bill, *, as_of: TimeLike = None) -> pd.DataFrame:
    """One row per status interval of every cluster and instance in a snapshot history.

    Example::

        >>> import shadeanalytics as sa
        >>> history = sa.read(sa.sample_path())
        >>> timeline = status_timeline(history, as_of="2026-11-20T00:00:00Z")
        >>> timeline.loc[timeline["name"] == "sd-train-125",
        ...              ["status", "start_at", "duration_s", "start_source"]]
              status                      start_at  duration_s start_source
        150   active 2026-11-18 12:53:14.779+00:00   37884.936          api
        151  deleted 2026-11-18 23:24:39.715+00:00   88520.285          api

    ``fleet`` is a ``Tables`` of dated rows (or a ``Bill``, for the ``Tables`` it was billed
    from): one row per poll (``read`` of snapshot
    envelopes), or only a row where something changed plus the last sighting of each version
    (the history store); both give the same timeline. Consecutive rows of one status make one
    interval, which ends when the next one starts.

    Where an interval starts:

    - at the API's own timestamp (``start_source`` ``api``): ``active_at`` for ``active``,
      ``deleted_at`` for ``deleted``, and ``created_at`` for a first status that comes before
      ``active`` (a resource first seen already ``active``, ``error`` or ``deleting`` went
      through earlier statuses, so its creation is not when that status began);
    - but only when that timestamp lies between the last poll that still showed the previous
      status and the first poll that showed this one. Outside that window it contradicts the
      polls (a clock skew, or an ``active_at`` kept from an earlier ``active`` spell), so the
      interval starts at the first poll that showed it (``observed``), like every status
      without an API timestamp.

    A resource missing from a later successful poll of the list it was last seen in
    (``/clusters`` for clusters and their members, ``/instances`` for standalone instances),
    and not last seen ``deleted``, gets a final ``deleted`` interval starting at that poll
    (``observed``, or its ``deleted_at`` when that falls between the two polls). A poll with
    ``ok`` False is never a vanish, and neither is an absence followed by a later sighting.
    Undated rows (``observed_at`` NaT) are left out.

    ``as_of`` (tz-aware; default: the newest poll): intervals starting after it are dropped;
    ``end_at`` stays as observed (it may lie after ``as_of``), and ``duration_s`` counts up to
    ``as_of``.

    Returns:
        DataFrame sorted by ``kind``, ``resource_id``, ``start_at``. Columns: ``kind``
        (``cluster`` or ``instance``), ``resource_id``, then the resource's newest ``name``,
        ``cluster_id`` (an instance's cluster, NA for a standalone instance; a cluster's own
        id, so that grouping by it gathers a cluster with its members), ``cloud``,
        ``shade_instance_type`` (NA for clusters), ``status`` (all string); ``start_at``,
        ``end_at`` (UTC; ``end_at`` NaT for the current interval); ``duration_s`` (float64,
        ``min(end_at, as_of) - start_at``, or ``as_of - start_at`` while current);
        ``start_source`` (string, ``api`` or ``observed``).
    """
    from .billing import tables_of  # billing builds on the timeline

    history = tables_of(fleet, "status_timeline")
    _require(history)
    at = resolve_as_of(as_of, history).value // 1_000
    found = _intervals(history, at)
    if found is None:
        return _empty(TIMELINE_COLUMNS)
    out = found.resources.take(found.resource).reset_index(drop=True)
    # cluster_id of a cluster is its own id: grouping by it gathers a cluster and its members
    out["cluster_id"] = out["cluster_id"].where(out["kind"] == "instance", out["resource_id"])
    out["status"] = pd.array(found.statuses, dtype="string").take(found.status)
    out["start_at"] = _times(found.start)
    out["end_at"] = _times(found.end)
    out["duration_s"] = durations_s(found.start, found.end, at)
    out["start_source"] = _SOURCES.take(found.api.astype(np.int64))
    return out


def durations_s(start: np.ndarray, end: np.ndarray, at: int) -> np.ndarray:
    """``duration_s`` of status intervals from ``start`` to ``end`` (int64 µs, ``end`` NaT
    while current) as of ``at`` (µs): ``min(end, at) - start``, or ``at - start`` while
    current, in seconds."""
    until = np.where((end == _NAT) | (end > at), at, end)
    seconds: np.ndarray = (until - start) / 1e6
    return seconds


# -- time_in_status -----------------------------------------------------------------------------


@old_spellings(positional=("by",))
def time_in_status(
    timeline: pd.DataFrame,
    *,
    by: str | Sequence[str] = ("cloud",),
    kind: str | None = "instance",
    exclude: Sequence[str] = ("deleted",),
) -> pd.DataFrame:
    """Total, median and mean time spent in each status, by cloud, instance type, ...

    Example::

        >>> import shadeanalytics as sa
        >>> history = sa.read(sa.sample_path())
        >>> timeline = status_timeline(history, as_of="2026-11-20T00:00:00Z")
        >>> time_in_status(timeline, by="cloud")[["cloud", "status", "intervals",
        ...                                       "median_s"]].head(3)
            cloud    status  intervals  median_s
        0  crusoe   pending          2  1057.000
        1  crusoe    active         39  841657.000
        2  crusoe  deleting          6  6462.196

    ``timeline`` is a result of ``status_timeline``. ``by`` is zero, one or several of
    ``TIMELINE_KEYS``; a missing key shows as ``(standalone)`` for ``cluster_id`` and
    ``(none)`` otherwise. ``kind`` keeps ``instance`` or ``cluster`` intervals (None keeps
    both). ``exclude`` drops statuses: by default ``deleted``, whose duration is the time since
    deletion, not time spent in a phase. A current interval counts up to the timeline's
    ``as_of`` (it is still running, so its true length is at least that).

    Returns:
        DataFrame sorted by the keys, then status in lifecycle order (unknown statuses last,
        by name). Columns: the keys (string), ``status`` (string), ``intervals`` (Int64),
        ``total_s``, ``median_s``, ``mean_s`` (float64 seconds).
    """
    keys = group_keys(by, TIMELINE_KEYS, required=False)  # none: time per status alone
    missing = [c for c in (*keys, "kind", "status", "duration_s") if c not in timeline.columns]
    if missing:
        raise ValueError(f"timeline is missing the column(s) {', '.join(missing)}; pass the "
                         "result of status_timeline()")
    columns = {**dict.fromkeys(keys, "string"), "status": "string", **_STATS_COLUMNS}
    status = timeline["status"].astype("string")
    chosen = ~status.isin(list(exclude)).to_numpy(dtype=bool)
    if kind is not None:
        chosen &= (timeline["kind"] == kind).fillna(False).to_numpy(dtype=bool)
    picked = timeline[chosen]
    if picked.empty:
        return _empty(columns)
    work = pd.DataFrame({
        **{k: key_column(picked[k], k) for k in keys},
        "status": picked["status"].astype("string"),
        "duration_s": picked["duration_s"].astype("float64"),
    })
    out = work.groupby([*keys, "status"], sort=False)["duration_s"].agg(
        intervals="size", total_s="sum", median_s="median", mean_s="mean").reset_index()
    rank = {s: i for i, s in enumerate(STATUSES)}
    out["_rank"] = out["status"].map(rank).fillna(len(STATUSES))
    out = out.sort_values([*keys, "_rank", "status"], kind="stable")
    return out[list(columns)].astype(columns).reset_index(drop=True)


# -- fleet_over_time ----------------------------------------------------------------------------


def _peaks(bounds: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Most intervals running at once in each [bounds[j], bounds[j + 1])."""
    if not starts.size:
        return np.zeros(bounds.size - 1, dtype=np.int64)
    times = np.r_[ends, starts]
    delta = np.r_[np.full(ends.size, -1), np.ones(starts.size, dtype=np.int64)]
    order = np.lexsort((delta, times))  # at one instant, ends first: [s, e) intervals touch
    times, level = times[order], np.cumsum(delta[order])
    # only the level after the last event of an instant is real
    final = np.r_[times[1:] != times[:-1], True]
    times, level = times[final], level[final]
    before = np.searchsorted(times, bounds[:-1], side="right") - 1
    peak = np.where(before >= 0, level[np.maximum(before, 0)], 0)
    inside = (times >= bounds[0]) & (times < bounds[-1])
    where = np.searchsorted(bounds, times[inside], side="right") - 1
    np.maximum.at(peak, where, level[inside])
    return peak


@old_spellings(renamed={"history": "fleet"})
def fleet_over_time(
    fleet: Tables | Bill,
    *,
    freq: str = "1h",
    as_of: TimeLike = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> pd.DataFrame:
    """Running instances, GPUs and dollars per period, from the instances' ``active`` intervals.

    Example::

        >>> import shadeanalytics as sa
        >>> history = sa.read(sa.sample_path())
        >>> fleet = fleet_over_time(history, freq="1D", as_of="2026-11-20T00:00:00Z")
        >>> fleet[["running_instances", "hourly_usd", "cost_usd"]].tail(2).round(2)
            running_instances  hourly_usd  cost_usd
        14             105.75     1749.76  41994.15
        15             105.81     1773.43  42562.28

    ``fleet`` is a ``Tables`` (billed at ``as_of``) or a ``Bill`` (its own ``as_of``).
    An instance runs during each of its billed intervals (``billing.bill_fleet(fleet,
    as_of=as_of).intervals``: the ``active`` intervals of the status timeline, a current one until
    ``as_of``), with its ``num_gpus`` and billed price at ``as_of`` (a spot rental at its own
    rate), so that the periods' ``cost_usd`` add up to the accrued cost of ``cost_breakdown``
    at the same ``as_of``. A missing GPU count or price adds nothing (an unknown price is not
    a zero one: ``cost_breakdown`` counts such instances). Storage (``Bill.volumes``, billed
    from each volume's first sighting) adds to ``hourly_usd`` and ``cost_usd``, not to the
    counts. Periods are ``freq`` bins
    (a pandas offset alias: ``5min``, ``1h``, ``1D``, ``W``, ``MS``), aligned to the clock or
    calendar, covering [``start``, ``end``): by default from the first ``active`` start to
    ``as_of``. The first and last period may be partial; their averages are over the part
    inside [``start``, ``end``). No ``active`` interval and no ``start``: no rows.

    Returns:
        DataFrame sorted by ``period_start`` (UTC, the period's aligned start). Columns:
        float64 ``running_instances``, ``running_gpus`` (time-weighted averages),
        ``hourly_usd`` (time-weighted average burn rate, USD/hour), ``cost_usd`` (active
        instance-hours in the period times their hourly price: what the period accrued);
        ``peak_running_instances`` (Int64, most instances running at once).
    """
    from .billing import Bill, bill_fleet  # the billed intervals (billing builds on the timeline)

    if isinstance(fleet, Bill):
        at = fleet.as_of if as_of is None else as_of_time(as_of)
    else:
        at = resolve_as_of(as_of, fleet)
    window_start = None if start is None else instant(start, "start").value // 1_000
    window_end = (at if end is None else instant(end, "end")).value // 1_000
    if window_start is not None and window_end <= window_start:
        raise ValueError("end must be after start")
    if not isinstance(fleet, Bill):
        _require(fleet)
    billed = bill_fleet(fleet, as_of=at)
    spans = billed.intervals
    starts, ends = _us(spans["start_at"]), _us(spans["end_at"])
    sizes = billed.instances.drop_duplicates("instance_id").set_index("instance_id")["num_gpus"]
    gpus = sizes.reindex(spans["instance_id"]).to_numpy(dtype="float64", na_value=np.nan)
    price = spans["billed_price_usd"].to_numpy(dtype="float64", na_value=np.nan)
    # storage adds to the dollars (not to the instance and GPU counts): each volume's interval
    volumes = billed.volumes
    v_starts, v_ends = _us(volumes["billed_from"]), _us(volumes["billed_to"])
    v_price = volumes["billed_price_usd"].to_numpy(dtype="float64", na_value=np.nan)
    if window_start is None:
        if not starts.size and not v_starts.size:
            return _empty(FLEET_COLUMNS)
        window_start = int(np.r_[starts, v_starts].min())
    if window_end <= window_start:
        return _empty(FLEET_COLUMNS)
    starts = np.maximum(starts, window_start)
    ends = np.minimum(ends, window_end)
    inside = ends > starts
    starts, ends = starts[inside], ends[inside]
    gpus, price = np.nan_to_num(gpus[inside]), np.nan_to_num(price[inside])
    v_starts, v_ends = np.maximum(v_starts, window_start), np.minimum(v_ends, window_end)
    v_inside = v_ends > v_starts
    v_starts, v_ends, v_price = v_starts[v_inside], v_ends[v_inside], np.nan_to_num(
        v_price[v_inside])

    edges = period_edges(window_start, window_end, freq)
    bounds = np.clip(edges, window_start, window_end)
    hours = (bounds - window_start) / _US_PER_HOUR
    s_h, e_h = (starts - window_start) / _US_PER_HOUR, (ends - window_start) / _US_PER_HOUR
    span = np.diff(hours)
    instance_hours = np.diff(integral(hours, s_h, e_h, np.ones(starts.size)))
    gpu_hours = np.diff(integral(hours, s_h, e_h, gpus))
    cost = np.diff(integral(hours, s_h, e_h, price))
    if v_starts.size:
        cost += np.diff(integral(hours, (v_starts - window_start) / _US_PER_HOUR,
                                  (v_ends - window_start) / _US_PER_HOUR, v_price))
    out = pd.DataFrame({
        "period_start": _times(edges[:-1]),
        "running_instances": instance_hours / span,
        "running_gpus": gpu_hours / span,
        "hourly_usd": cost / span,
        "cost_usd": cost,
        "peak_running_instances": _peaks(bounds, starts, ends),
    })
    return out.astype(FLEET_COLUMNS)
