"""Status intervals: when each cluster and instance was in which status, as arrays.

The one place that turns dated rows into status intervals and decides when a resource vanished
from a later successful poll: ``timeline.status_timeline`` shows them, ``billing.bill_fleet`` bills
the ``active`` ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..ingest.resources import BY_NAME
from ..ingest.schema import STATUSES
from ..ingest.tables import Tables
from .periods import as_us as _us

__all__ = ["ACTIVE", "Intervals", "status_intervals", "vanished_at"]

_NAT = np.iinfo(np.int64).min  # what NaT is as int64 microseconds


def _first_in_run(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The first non-NaT value of ``values[starts[k]:ends[k] + 1]`` for each run k, else NaT."""
    known = np.flatnonzero(values != _NAT)
    if not known.size:
        return np.full(len(starts), _NAT)
    at = np.searchsorted(known, starts)
    pos = known[np.minimum(at, known.size - 1)]
    return np.where((at < known.size) & (pos <= ends), values[pos], _NAT)


_ENDPOINTS = np.array([BY_NAME["clusters"].endpoint, BY_NAME["instances"].endpoint],
                      dtype=object)
ACTIVE, _DELETED = STATUSES.index("active"), STATUSES.index("deleted")
_STOPPED = [STATUSES.index(s) for s in ("error", "deleting", "deleted")]


@dataclass(frozen=True)
class Intervals:
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


def vanished_at(polls: pd.DataFrame, last_seen: np.ndarray, endpoint: np.ndarray) -> np.ndarray:
    """For each resource, the first successful poll of its list after its last sighting."""
    out = np.full(len(last_seen), _NAT)
    ok = polls["ok"].fillna(False).to_numpy(dtype=bool)
    # (by code: a year is 300,000 poll rows, and a group of them a frame each)
    code, names = pd.factorize(polls["endpoint"].astype("string")[ok])
    observed = _us(polls["observed_at"][ok])
    for k, name in enumerate(names):
        times = np.sort(observed[code == k])
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


def status_intervals(history: Tables, at: int) -> Intervals | None:
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

    api = np.where(run_status == ACTIVE, _first_in_run(active[order], run_first, run_last),
                   _NAT)
    deleted = deleted[order]
    api = np.where(run_status == _DELETED, _first_in_run(deleted, run_first, run_last), api)
    api = np.where(first_run & (run_status < ACTIVE),
                   _first_in_run(created[order], run_first, run_last), api)
    seen = observed[run_first]
    after = np.where(first_run, _NAT, np.r_[_NAT, observed[run_last[:-1]]])

    # the final `deleted` of resources that vanished from a successful poll of their list
    last_seen = observed[group_last]
    gone = vanished_at(history.polls, last_seen, _ENDPOINTS[listed_in[order[group_last]]])
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
    was_active = (run_status[runs] == ACTIVE).astype(np.int64)
    before = np.cumsum(was_active) - was_active
    group_first = np.maximum.accumulate(np.where(first_run, runs, 0))
    never_active = (before - before[group_first]) == 0
    implied = runs[np.isin(run_status[runs], _STOPPED) & never_active & (ran != _NAT)
                   & (ran < start[runs]) & ((after[runs] == _NAT) | (ran >= after[runs]))]
    run_group = np.r_[run_group, run_group[implied]]
    run_status = np.r_[run_status, np.full(implied.size, ACTIVE)]
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
    return Intervals(
        resources=_resources(history, last_kind, last_row),
        resource=run_group[shown], status=run_status[shown], statuses=statuses,
        start=start[shown], end=end[shown], api=trusted[shown],
        vanished=is_vanish[shown], first=is_first[shown],
    )
