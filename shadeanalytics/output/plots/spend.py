"""Spend charts (FinOps): what each period cost, stacked by group (a ``cost_over_time``
result)."""

from __future__ import annotations

import math

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..._common import usd
from ._base import (
    NEUTRAL,
    OTHER,
    Chart,
    Dollars,
    color_for,
    date_axis,
    key_name,
    new_axes,
    no_data,
    plain,
    rectangles,
    require,
    short,
    stack_legend,
    utc_naive,
)

# -- spend over time -----------------------------------------------------------------------------

_SPEND_VALUES = ("billed_hours", "unpriced_hours", "cost_usd")
_PERIOD_NAMES = ((3600.0, "hour"), (86400.0, "day"), (7 * 86400.0, "week"))


def _spend_key(costs: pd.DataFrame) -> str | None:
    """The group key of a ``cost_over_time`` result (None when it has none)."""
    require(costs, ["period_start", "cost_usd"], "costs (a cost_over_time result)")
    keys = [c for c in costs.columns if c != "period_start" and c not in _SPEND_VALUES]
    if len(keys) > 1:
        raise ValueError(f"plot_cost_over_time stacks the bars by one key; costs has "
                         f"{', '.join(keys)}: pass cost_over_time(..., by=one key)")
    return keys[0] if keys else None


def _period_name(seconds: float) -> str:
    for length, name in _PERIOD_NAMES:
        if math.isclose(seconds, length):
            return name
    if 28 * 86400.0 <= seconds <= 31 * 86400.0:
        return "month"
    return "period"


def _spend_pivot(costs: pd.DataFrame, key: str | None, top: int) -> pd.DataFrame:
    """Cost per period (rows, in time order) x group (columns, largest first; beyond ``top``
    summed as ``(other N)``)."""
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}")
    parts = (costs[key].astype("string").fillna("(none)").astype(object) if key is not None
             else pd.Series("cost", index=costs.index, dtype=object))
    work = pd.DataFrame({"period_start": costs["period_start"], "part": parts,
                         "cost_usd": costs["cost_usd"].astype("float64").fillna(0.0)})
    table = work.pivot_table(index="period_start", columns="part", values="cost_usd",
                             aggfunc="sum", fill_value=0.0).sort_index()
    order = sorted(table.columns, key=lambda p: (-table[p].sum(), str(p)))
    table = table[order]
    if len(order) > top:
        rest = order[top:]
        table = table[order[:top]].assign(**{f"(other {len(rest)})": table[rest].sum(axis=1)})
    return table


def _coarser(table: pd.DataFrame, max_bars: int) -> tuple[pd.DataFrame, np.timedelta64 | None]:
    """``table`` (``_spend_pivot``) with at most ``max_bars`` rows where it can: its periods
    summed into UTC days, then weeks (from Monday), then calendar months, the first of these
    that fits (months when none does); as it is when it fits already. Also the length of one
    new period (None when unchanged): what a single bar spans."""
    if len(table) <= max_bars:
        return table, None
    day = pd.DatetimeIndex(table.index).normalize()
    units = ((day, pd.Timedelta(days=1)),
             (day - pd.to_timedelta(day.day_of_week, unit="D"), pd.Timedelta(days=7)),
             (day - pd.to_timedelta(day.day - 1, unit="D"),
              pd.Timedelta(days=int(day[0].days_in_month))))
    for start, unit in units:
        coarser = table.groupby(start, sort=True).sum()
        length = unit.to_timedelta64().astype("timedelta64[us]")
        if len(coarser) <= max_bars:
            break
    coarser.index.name = table.index.name
    return coarser, length


def _spend_size() -> tuple[float, float]:
    return (11.0, 4.8)


def spend_chart(costs: pd.DataFrame) -> Chart:
    """The report's chart of a ``cost_over_time`` result."""
    return Chart(_spend_size(), lambda ax: plot_cost_over_time(costs, ax=ax))


def plot_cost_over_time(
    costs: pd.DataFrame,
    *,
    ax: Axes | None = None,
    top: int = 8,
    title: str | None = None,
    max_bars: int = 120,
) -> Axes:
    """Stacked bars of what each period cost, split by the key of a ``cost_over_time`` result.

    Example::

        >>> costs = pd.DataFrame({
        ...     "period_start": pd.to_datetime(["2026-11-19", "2026-11-19", "2026-11-20"],
        ...                                    utc=True),
        ...     "cloud": ["crusoe", "denvr", "crusoe"], "cost_usd": [48.0, 12.0, 50.0]})
        >>> ax = plot_cost_over_time(costs)
        >>> ax.get_title()
        'Spend per day by cloud\\ntotal $110.00 over 2 days'
        >>> [t.get_text() for t in ax.get_legend().get_texts()]  # top to bottom, as stacked
        ['denvr', 'crusoe']

    Each bar spans its period (the last one as wide as the others); the groups are stacked
    largest overall at the bottom, coloured as in every chart (``color_for``); beyond the
    ``top`` largest, the rest are one ``(other N)`` part. The title gives the total (not by
    ``tag``: an instance with two tags counts in both). More periods than ``max_bars`` (a year
    of days) are summed into days, weeks (from Monday, UTC) or calendar months, the first that
    gives at most ``max_bars`` bars (the first and last may be partial), and titled so.
    """
    if max_bars < 1:
        raise ValueError(f"max_bars must be at least 1; got {max_bars}")
    key = _spend_key(costs)
    table, length = _coarser(_spend_pivot(costs, key, top), max_bars)
    ax = ax if ax is not None else new_axes(_spend_size())
    starts = utc_naive(pd.Series(table.index))
    step = (np.median(np.diff(starts)) if len(starts) > 1
            else length if length is not None
            else np.timedelta64(1, "D").astype("timedelta64[us]"))
    seconds = pd.Timedelta(step).total_seconds()
    period = _period_name(seconds)
    heading = title if title is not None else (
        f"Spend per {period}" + (f" by {key_name(key)}" if key is not None else ""))
    if table.empty:
        return no_data(ax, heading)
    edges = mdates.date2num(np.append(starts, starts[-1] + step))
    widths = np.diff(edges) * 0.9
    bottom = np.zeros(len(table))
    for part in table.columns:
        heights = table[part].to_numpy(dtype="float64")
        colour = (OTHER if str(part).startswith("(other ") else
                  color_for(key, str(part)) if key is not None else NEUTRAL)
        rectangles(ax, edges[:-1], bottom.copy(), widths, heights, [colour] * len(heights),
                   label=short(str(part), 28), edgecolor="white", linewidth=0.5)
        bottom += heights
    ax.set_ylim(0, max(float(bottom.max()), 1.0) * 1.1)
    ax.set_xlim(starts[0], starts[-1] + step)
    ax.yaxis.set_major_formatter(Dollars())
    date_axis(ax)
    ax.set_xlabel("Period start (UTC)")
    ax.set_ylabel(f"Cost per {period} (USD)")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    count = f"{len(table)} {period}{'s' * (len(table) != 1)}"
    note = ("an instance with several tags counts once per tag" if key == "tag"
            else f"total {usd(float(bottom.sum()))} over {count}")
    ax.set_title(f"{heading}\n{note}")
    if key is not None:
        stack_legend(ax, key)
    plain(ax)
    return ax

