"""When each cluster and instance was in which status; how big the running fleet was over time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._common import TimeLike, as_of_time, group_keys, instant, key_column
from ..ingest.schema import STATUSES, TIMESTAMP
from ..ingest.tables import Tables
from .asof import resolve_as_of
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


def _first_in_run(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The first non-NaT value of ``values[starts[k]:ends[k] + 1]`` for each run k, else NaT."""
    known = np.flatnonzero(values != _NAT)
    if not known.size:
        return np.full(len(starts), _NAT)
    at = np.searchsorted(known, starts)
    pos = known[np.minimum(at, known.size - 1)]
    return np.where((at < known.size) & (pos <= ends), values[pos], _NAT)


# -- status_timeline ----------------------------------------------------------------------------

_ENDPOINTS = np.array(["/clusters", "/instances"], dtype=object)
_ACTIVE, _DELETED = STATUSES.index("active"), STATUSES.index("deleted")
_STOPPED = [STATUSES.index(s) for s in ("error", "deleting", "deleted")]
_SOURCES = pd.array(["observed", "api"], dtype="string")


@dataclass(frozen=True)
class _Intervals:
    """Status intervals as arrays (one entry per interval), and the resources they belong to."""

    resources: pd.DataFrame  # one row per resource (kind ... shade_instance_type), in order
    resource: np.ndarray  # row of ``resources``
    status: np.ndarray  # index into ``statuses``
    statuses: list[str]
    start: np.ndarray  # int64 µs
    end: np.ndarray  # int64 µs, _NAT while current
    api: np.ndarray  # bool: the start is the API's own timestamp
    vanished: np.ndarray  # bool: the final ``deleted`` of a resource gone from a later poll
    first: np.ndarray  # bool: the resource's first observed status (not an implied one)


def _status_codes(values: pd.Series, statuses: list[str]) -> np.ndarray:
    """Status values as indices into ``statuses`` (grown for unknown values); NA is -1."""
    codes, uniques = pd.factorize(values)
    for value in map(str, uniques):
        if value not in statuses:
            statuses.append(value)
    lookup = np.array([statuses.index(str(v)) for v in uniques] + [-1], dtype=np.int64)
    return lookup[codes]


def _fill_within(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Missing (-1) values take the nearest earlier value of their group, else the next one."""
    positions = np.arange(values.size)
    known = values >= 0
    earlier = np.maximum.accumulate(np.where(known, positions, 0))
    later = np.minimum.accumulate(np.where(known, positions, values.size - 1)[::-1])[::-1]
    out = values.copy()
    for source in (later, earlier):  # earlier last, so that it wins
        take = ~known & known[source] & (group[source] == group)
        out[take] = values[source[take]]
    return out


def _vanished(polls: pd.DataFrame, last_seen: np.ndarray, endpoint: np.ndarray) -> np.ndarray:
    """For each resource, the first successful poll of its list after its last sighting."""
    out = np.full(len(last_seen), _NAT)
    ok = polls[polls["ok"].fillna(False).to_numpy(dtype=bool)]
    for name, group in ok.groupby(ok["endpoint"].astype("string"), sort=False):
        times = np.sort(_us(group["observed_at"]))
        mine = endpoint == name
        at = np.searchsorted(times, last_seen[mine], side="right")
        out[mine] = np.where(at < times.size, times[np.minimum(at, times.size - 1)], _NAT)
    return out


def _resources(history: Tables, kind: np.ndarray, row: np.ndarray) -> pd.DataFrame:
    """The attributes of each resource, from its ``row`` in its table (clusters first)."""
    c = history.clusters.iloc[row[kind == 0]]
    i = history.instances.iloc[row[kind == 1]]
    clusters = pd.DataFrame({
        "kind": "cluster",
        "resource_id": c["cluster_id"].astype("string"),
        "name": c["name"].astype("string"),
        "cluster_id": c["cluster_id"].astype("string"),
        "cloud": c["cloud"].astype("string"),
        "shade_instance_type": pd.Series(pd.NA, index=c.index, dtype="string"),
    })
    instances = pd.DataFrame({
        "kind": "instance",
        "resource_id": i["instance_id"].astype("string"),
        "name": i["name"].astype("string"),
        "cluster_id": i["cluster_id"].astype("string"),
        "cloud": i["cloud"].astype("string"),
        "shade_instance_type": i["shade_instance_type"].astype("string"),
    })
    out = pd.concat([clusters, instances], ignore_index=True)
    out["kind"] = out["kind"].astype("string")
    return out


def _intervals(history: Tables, at: int) -> _Intervals | None:
    """The status intervals of ``history`` that start by ``at`` (µs); None when there are none.

    Works on integer codes and int64 microseconds throughout: a year of polls is millions of
    rows, and string columns are only taken for the one row per resource that needs them.
    """
    c, i = history.clusters, history.instances
    statuses = list(STATUSES)
    # clusters sort before instances, and each by id: factorize(sort=True) keeps that order
    c_ids, c_uniques = pd.factorize(c["cluster_id"], sort=True)
    i_ids, _ = pd.factorize(i["instance_id"], sort=True)
    resource = np.r_[c_ids, np.where(i_ids >= 0, i_ids + len(c_uniques), -1)]
    kind = np.r_[np.zeros(len(c), dtype=np.int64), np.ones(len(i), dtype=np.int64)]
    row = np.r_[np.arange(len(c)), np.arange(len(i))]
    observed = np.r_[_us(c["observed_at"]), _us(i["observed_at"])]
    status = np.r_[_status_codes(c["status"], statuses), _status_codes(i["status"], statuses)]
    created = np.r_[_us(c["created_at"]), _us(i["created_at"])]
    active = np.r_[_us(c["active_at"]), _us(i["active_at"])]
    deleted = np.r_[np.full(len(c), _NAT), _us(i["deleted_at"])]  # clusters have no deleted_at
    # a cluster member is listed (and so can vanish) only inside its cluster
    listed_in = np.r_[np.zeros(len(c), dtype=np.int64),
                      i["cluster_id"].isna().to_numpy(dtype=np.int64)]

    # an undated row cannot be placed in time
    dated = np.flatnonzero((observed != _NAT) & (resource >= 0))
    if not dated.size:
        return None
    order = dated[np.lexsort((observed[dated], resource[dated]))]
    resource, observed, status = resource[order], observed[order], status[order]
    # one row per resource and poll (an instance listed in two clusters at once keeps one)
    keep = np.r_[True, (resource[1:] != resource[:-1]) | (observed[1:] != observed[:-1])]
    if (status < 0).any():  # a row without a status is a sighting of the status around it
        status = _fill_within(status, resource)
    keep &= status >= 0
    order, resource, observed, status = order[keep], resource[keep], observed[keep], status[keep]
    n = order.size
    if not n:
        return None

    first_row = np.r_[True, resource[1:] != resource[:-1]]
    run_first = np.flatnonzero(first_row | np.r_[True, status[1:] != status[:-1]])
    run_last = np.r_[run_first[1:], n] - 1
    group_last = np.r_[np.flatnonzero(first_row)[1:], n] - 1
    run_group = (np.cumsum(first_row) - 1)[run_first]
    run_status = status[run_first]
    first_run = first_row[run_first]

    api = np.where(run_status == _ACTIVE, _first_in_run(active[order], run_first, run_last),
                   _NAT)
    deleted = deleted[order]
    api = np.where(run_status == _DELETED, _first_in_run(deleted, run_first, run_last), api)
    api = np.where(first_run & (run_status < _ACTIVE),
                   _first_in_run(created[order], run_first, run_last), api)
    seen = observed[run_first]
    after = np.where(first_run, _NAT, np.r_[_NAT, observed[run_last[:-1]]])

    # the final `deleted` of resources that vanished from a successful poll of their list
    last_seen = observed[group_last]
    gone = _vanished(history.polls, last_seen, _ENDPOINTS[listed_in[order[group_last]]])
    gone[status[group_last] == _DELETED] = _NAT
    vanished = np.flatnonzero(gone != _NAT)
    run_group = np.r_[run_group, vanished]
    run_status = np.r_[run_status, np.full(vanished.size, _DELETED)]
    api = np.r_[api, deleted[group_last[vanished]]]
    seen = np.r_[seen, gone[vanished]]
    after = np.r_[after, last_seen[vanished]]
    is_vanish = np.r_[np.zeros(run_first.size, dtype=bool), np.ones(vanished.size, dtype=bool)]
    is_first = np.r_[first_run, np.zeros(vanished.size, dtype=bool)]

    trusted = (api != _NAT) & (api <= seen) & ((after == _NAT) | (api >= after))
    start = np.where(trusted, api, seen)

    # a resource seen in error, deleting or deleted, never seen active before, but with an
    # active_at after its previous sighting: it was active from active_at until that status
    # began (between two polls, or before the first): an implied `active` interval
    runs = np.arange(run_first.size)
    ran = _first_in_run(active[order], run_first, run_last)
    was_active = (run_status[runs] == _ACTIVE).astype(np.int64)
    before = np.cumsum(was_active) - was_active
    group_first = np.maximum.accumulate(np.where(first_run, runs, 0))
    never_active = (before - before[group_first]) == 0
    implied = runs[np.isin(run_status[runs], _STOPPED) & never_active & (ran != _NAT)
                   & (ran < start[runs]) & ((after[runs] == _NAT) | (ran >= after[runs]))]
    run_group = np.r_[run_group, run_group[implied]]
    run_status = np.r_[run_status, np.full(implied.size, _ACTIVE)]
    start = np.r_[start, ran[implied]]
    trusted = np.r_[trusted, np.ones(implied.size, dtype=bool)]
    is_vanish = np.r_[is_vanish, np.zeros(implied.size, dtype=bool)]
    is_first = np.r_[is_first, np.zeros(implied.size, dtype=bool)]

    # starts never decrease within a resource (each lies after the previous status's last
    # sighting), the vanish rows come last and each implied one just before its status: sort
    # by resource, then by that rank
    rank = np.r_[np.arange(start.size - implied.size, dtype=np.float64), implied - 0.5]
    by_resource = np.lexsort((rank, run_group))
    run_group, run_status = run_group[by_resource], run_status[by_resource]
    start, trusted = start[by_resource], trusted[by_resource]
    is_vanish, is_first = is_vanish[by_resource], is_first[by_resource]
    end = np.where(np.r_[run_group[1:] == run_group[:-1], False], np.r_[start[1:], _NAT], _NAT)
    shown = start <= at
    last_kind, last_row = kind[order[group_last]], row[order[group_last]]
    return _Intervals(
        resources=_resources(history, last_kind, last_row),
        resource=run_group[shown], status=run_status[shown], statuses=statuses,
        start=start[shown], end=end[shown], api=trusted[shown],
        vanished=is_vanish[shown], first=is_first[shown],
    )


def status_timeline(history: Tables, *, as_of: TimeLike = None) -> pd.DataFrame:
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

    ``history`` is a ``Tables`` of dated rows: one row per poll (``read`` of snapshot
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
    _require(history)
    at = resolve_as_of(as_of, history).value // 1_000
    found = _intervals(history, at)
    if found is None:
        return _empty(TIMELINE_COLUMNS)
    until = np.where((found.end == _NAT) | (found.end > at), at, found.end)
    out = found.resources.take(found.resource).reset_index(drop=True)
    # cluster_id of a cluster is its own id: grouping by it gathers a cluster and its members
    out["cluster_id"] = out["cluster_id"].where(out["kind"] == "instance", out["resource_id"])
    out["status"] = pd.array(found.statuses, dtype="string").take(found.status)
    out["start_at"] = _times(found.start)
    out["end_at"] = _times(found.end)
    out["duration_s"] = (until - found.start) / 1e6
    out["start_source"] = _SOURCES.take(found.api.astype(np.int64))
    return out


# -- time_in_status -----------------------------------------------------------------------------


def time_in_status(
    timeline: pd.DataFrame,
    by: str | Sequence[str] = ("cloud",),
    *,
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


def fleet_over_time(
    history: Tables | Bill,
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

    ``history`` is a ``Tables`` (billed at ``as_of``) or a ``Bill`` (its own ``as_of``).
    An instance runs during each of its billed intervals (``billing.bill(history,
    as_of).intervals``: the ``active`` intervals of the status timeline, a current one until
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
    from .billing import Bill, bill  # the billed intervals (billing builds on the timeline)

    if isinstance(history, Bill):
        at = history.as_of if as_of is None else as_of_time(as_of)
    else:
        at = resolve_as_of(as_of, history)
    window_start = None if start is None else instant(start, "start").value // 1_000
    window_end = (at if end is None else instant(end, "end")).value // 1_000
    if window_start is not None and window_end <= window_start:
        raise ValueError("end must be after start")
    if not isinstance(history, Bill):
        _require(history)
    billed = bill(history, at)
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
