"""Intervals spread over clock or calendar periods: the maths every view over time shares.

``fleet_over_time`` (timeline), ``cost_over_time`` and ``month_forecast`` (finops) and the
FOCUS export spread the billing model's billed intervals over periods with these functions,
so that a dollar lands in the same period in every view. Times are int64 microseconds since
the epoch (UTC), as the timeline works on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

__all__ = ["US_PER_HOUR", "as_times", "as_us", "integral", "period_edges", "spread",
           "spread_chunks"]

US_PER_HOUR = 3_600_000_000
# below a microsecond: what float sums leave in a period the intervals do not reach
_NO_TIME = 1e-10


def as_us(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC instants as int64 microseconds (NaT as int64 min), whatever the column's unit."""
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("us").asi8


def as_times(us: np.ndarray) -> pd.DatetimeIndex:
    """int64 microseconds as UTC instants."""
    return pd.DatetimeIndex(np.asarray(us, dtype="int64").astype("datetime64[us]")
                            ).tz_localize("UTC")


def _stamp(us: int) -> pd.Timestamp:
    return pd.Timestamp(us, unit="us", tz="UTC")


def period_edges(first: int, last: int, freq: str) -> np.ndarray:
    """Edges (int64 µs) of the ``freq`` periods that cover [first, last).

    ``freq`` is a pandas offset alias (``5min``, ``1h``, ``1D``, ``W``, ``MS``); the periods
    are aligned to the clock (fixed lengths: floored) or the calendar (weeks, months: rolled
    back to the period's start), so the first edge is at or before ``first``.
    """
    offset = pd.tseries.frequencies.to_offset(freq)
    begin = _stamp(first)
    try:
        label = begin.floor(offset)
    except ValueError:  # a calendar offset (week, month) has no fixed length to floor to
        label = offset.rollback(begin.normalize())
    labels = pd.date_range(label, _stamp(last), freq=offset, inclusive="left")
    return np.r_[labels.as_unit("us").asi8, (labels[-1] + offset).as_unit("us").value]


def integral(points: np.ndarray, starts: np.ndarray, ends: np.ndarray,
             weights: np.ndarray) -> np.ndarray:
    """The integral of sum_i w_i * [s_i <= t < e_i] dt from 0 to each point.

    It equals sum_{s_i <= x} w_i (x - s_i) - sum_{e_i <= x} w_i (x - e_i): two prefix sums over
    sorted times and a ``searchsorted``, instead of an intervals-by-periods matrix.
    """
    total = np.zeros(points.size)
    for times, sign in ((starts, 1.0), (ends, -1.0)):
        order = np.argsort(times, kind="stable")
        t, w = times[order], weights[order]
        weight = np.r_[0.0, np.cumsum(w)]
        moment = np.r_[0.0, np.cumsum(w * t)]
        k = np.searchsorted(t, points, side="right")
        total += sign * (points * weight[k] - moment[k])
    return total


def spread(groups: np.ndarray, starts: np.ndarray, ends: np.ndarray,
           weights: Sequence[np.ndarray], edges: np.ndarray,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Each group's intervals spread over the periods [edges[j], edges[j + 1]).

    ``groups`` (int codes), ``starts`` and ``ends`` (int64 µs, ``ends >= starts``) and each
    array of ``weights`` (finite, e.g. an hourly price) describe one interval each; parts outside
    [edges[0], edges[-1]) are left out. Returns ``(group, period, hours, sums)``: one entry per
    (group, period) pair that holds billed time, ``hours`` the time inside the period (summed
    over the group's intervals) and ``sums[k]`` the integral of ``weights[k]`` over it (price
    x hours: the cost). Works in hours from ``edges[0]``, so float sums keep their cents.
    """
    return next(spread_chunks(groups, starts, ends, weights, edges))


def spread_chunks(groups: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  weights: Sequence[np.ndarray], edges: np.ndarray, max_rows: int | None = None,
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]]:
    """:func:`spread`, a run of whole periods at a time: each chunk holds the entries of
    consecutive periods, at most about ``max_rows`` of them (the (group, period) pairs the
    groups' first and last instants span; one period at least); ``None``: one chunk of all.

    The chunks' entries are exactly :func:`spread`'s, bit for bit (every chunk works in
    hours from ``edges[0]``), so a caller can write a long spread piece by piece in bounded
    memory. Each chunk's ``period`` indexes ``edges`` as :func:`spread`'s does.
    """
    first, last = int(edges[0]), int(edges[-1])
    s = np.clip(starts, first, last)
    e = np.clip(ends, first, last)
    inside = e > s
    groups, s, e = groups[inside], s[inside], e[inside]
    weights = [np.asarray(w, dtype="float64")[inside] for w in weights]
    points = (edges - first) / US_PER_HOUR
    s_h, e_h = (s - first) / US_PER_HOUR, (e - first) / US_PER_HOUR
    order = np.argsort(groups, kind="stable")
    codes, at = np.unique(groups[order], return_index=True)
    bounds = np.r_[at, order.size]
    empty = np.zeros(0)
    if not codes.size:
        yield (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty,
               [empty for _ in weights])
        return
    # the periods each group's intervals touch: [lo, hi)
    lo = np.maximum(np.searchsorted(points, np.minimum.reduceat(s_h[order], at),
                                    side="right") - 1, 0)
    hi = np.minimum(np.searchsorted(points, np.maximum.reduceat(e_h[order], at),
                                    side="left"), points.size - 1)
    periods = points.size - 1
    if max_rows is None:
        cuts = [0, periods]
    else:  # consecutive periods until the pairs they may hold reach max_rows
        active = (np.bincount(lo, minlength=periods + 1)
                  - np.bincount(hi, minlength=periods + 1))
        held = np.cumsum(np.cumsum(active[:-1]))
        cuts = [0]
        while cuts[-1] < periods:
            before = held[cuts[-1] - 1] if cuts[-1] else 0
            cut = int(np.searchsorted(held, before + max(max_rows, 1), side="right"))
            cuts.append(min(max(cut, cuts[-1] + 1), periods))
    for begin, end in pairwise(cuts):
        out_group, out_period, out_hours = [], [], []
        out_sums: list[list[np.ndarray]] = [[] for _ in weights]
        for i in np.flatnonzero((lo < end) & (hi > begin)):
            mine = order[bounds[i]:bounds[i + 1]]
            gs, ge = s_h[mine], e_h[mine]
            a, b = max(int(lo[i]), begin), min(int(hi[i]), end)
            here = points[a:b + 1]
            hours = np.diff(integral(here, gs, ge, np.ones(mine.size)))
            held_here = hours > _NO_TIME
            out_group.append(np.full(int(held_here.sum()), codes[i]))
            out_period.append(np.arange(a, b)[held_here])
            out_hours.append(hours[held_here])
            for k, w in enumerate(weights):
                out_sums[k].append(np.diff(integral(here, gs, ge, w[mine]))[held_here])
        if not out_group:
            yield (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty,
                   [empty for _ in weights])
            continue
        yield (np.concatenate(out_group), np.concatenate(out_period),
               np.concatenate(out_hours), [np.concatenate(parts) for parts in out_sums])
