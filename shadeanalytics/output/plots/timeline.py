"""Charts over time: the status of each resource (a Gantt chart of ``status_timeline``) and
the fleet's running GPUs and burn rate (``fleet_over_time``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, StepPatch

from ..._common import TimeLike, usd
from ..._common import as_of_time as _as_of
from ._base import (
    STATUS_COLORS,
    Chart,
    Dollars,
    clamp,
    color_for,
    date_axis,
    key_name,
    new_axes,
    no_data,
    plain,
    rectangles,
    require,
    short,
    utc_naive,
)

# -- status timeline (Gantt) --------------------------------------------------------------------

_TIMELINE_COLUMNS = ("kind", "resource_id", "name", "cluster_id", "status", "start_at",
                     "end_at", "duration_s")


def _timeline_as_of(rows: pd.DataFrame, as_of: TimeLike) -> pd.Timestamp | None:
    """``as_of`` given, else the instant the timeline was computed at, else None (empty)."""
    if as_of is not None:
        return _as_of(as_of)
    current = rows["end_at"].isna()
    if current.any():
        # status_timeline counts a current interval's duration up to its as_of
        ends = rows.loc[current, "start_at"] + pd.to_timedelta(
            rows.loc[current, "duration_s"], unit="s")
        return pd.Timestamp(ends.max())
    latest = rows["end_at"].max()
    return None if pd.isna(latest) else pd.Timestamp(latest)


def _lanes(rows: pd.DataFrame, at: pd.Timestamp, max_lanes: int) -> pd.DataFrame:
    """One row per resource in lane order: cluster by cluster (clusters ordered by their first
    start), a cluster's own lane before its members, each by start; standalone ones last."""
    end = rows["end_at"].where(rows["end_at"].notna() & (rows["end_at"] <= at), at)
    alive = end.where(rows["status"] != "deleted")
    work = rows.assign(_alive=alive)
    lanes = work.groupby(["kind", "resource_id"], sort=False).agg(
        name=("name", "last"), cluster_id=("cluster_id", "first"),
        first=("start_at", "min"), alive=("_alive", "max"),
    ).reset_index()
    if len(lanes) > max_lanes:
        # too many to read: keep the resources that were up most recently
        lanes["alive"] = lanes["alive"].fillna(lanes["first"])
        lanes = lanes.sort_values(["alive", "first", "resource_id"],
                                  ascending=[False, False, True], kind="stable")
        lanes = lanes.iloc[:max_lanes]
    lanes["standalone"] = lanes["cluster_id"].isna()
    lanes["group"] = lanes["cluster_id"].fillna("")
    lanes["group_first"] = lanes.groupby("group")["first"].transform("min")
    lanes["member"] = lanes["kind"] != "cluster"
    lanes = lanes.sort_values(
        ["standalone", "group_first", "group", "member", "first", "resource_id"],
        kind="stable").reset_index(drop=True)
    lanes["lane"] = np.arange(len(lanes))
    return lanes


def _timeline_size(lanes: int) -> tuple[float, float]:
    per_lane = 0.26 if lanes <= 40 else 0.065
    return (11.0, clamp(per_lane * lanes + 2.2, 3.0, 16.0))


def _timeline_rows(timeline: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    require(timeline, _TIMELINE_COLUMNS, "the timeline (a status_timeline result)")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    return timeline[timeline["kind"].isin(kinds)]


def plot_status_timeline(
    timeline: pd.DataFrame,
    *,
    ax: Axes | None = None,
    as_of: TimeLike = None,
    max_lanes: int = 250,
    kinds: Sequence[str] = ("instance",),
) -> Axes:
    """A Gantt chart of a ``status_timeline`` result: one lane per resource, one bar per status.

    Example::

        >>> t = pd.to_datetime(["2026-11-19T00:00Z", "2026-11-19T00:10Z",
        ...                     "2026-11-19T06:00Z"], utc=True)
        >>> timeline = pd.DataFrame({"kind": "instance", "resource_id": ["i-1", "i-1", "i-2"],
        ...     "name": ["a", "a", "b"], "cluster_id": [None, None, None],
        ...     "status": ["pending", "active", "active"], "start_at": t,
        ...     "end_at": [t[1], pd.NaT, pd.NaT], "duration_s": [600.0, 85800.0, 64800.0]})
        >>> ax = plot_status_timeline(timeline)
        >>> [t.get_text() for t in ax.get_yticklabels()]
        ['a', 'b']
        >>> ax.get_legend().get_texts()[-1].get_text()
        'as of 2026-11-20 00:00 UTC'

    ``kinds`` picks ``instance`` and/or ``cluster`` lanes. Lanes are grouped by cluster
    (clusters in the order they started, which reads as a staircase rather than the random
    order of their ids; a cluster's own lane first, its name in bold; thin lines between
    clusters), standalone instances last, below a darker line. A current interval (``end_at``
    NaT) runs to ``as_of``, marked by a dashed line; without ``as_of``, the instant the
    timeline was computed at is used. ``deleted`` intervals are thin bars; a status too short
    to see is widened to 0.3% of the axis. Up to 40 lanes are named; over ``max_lanes``, the
    resources up most recently are kept. A new figure grows with the lanes (at most 16 in).
    """
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    lanes = _status_lanes(timeline, kinds, as_of, max_lanes)
    ax = ax if ax is not None else new_axes(_timeline_size(lanes.lane_count))
    return _draw_status_timeline(ax, lanes, kinds)


def status_chart(timeline: pd.DataFrame, as_of: TimeLike) -> Chart:
    """The report's chart of a ``status_timeline`` result (instance lanes): its lanes laid out
    once, for the figure's size and the drawing."""
    lanes = _status_lanes(timeline, ["instance"], as_of, 250)
    return Chart(_timeline_size(lanes.lane_count),
                 lambda ax: _draw_status_timeline(ax, lanes, ["instance"]))


class _StatusLanes(NamedTuple):
    rows: pd.DataFrame  # the intervals begun by ``at``
    at: pd.Timestamp | None
    total: int  # resources begun by ``at``
    lanes: pd.DataFrame | None  # at most ``max_lanes``; None when nothing to draw

    @property
    def lane_count(self) -> int:
        return 0 if self.lanes is None else len(self.lanes)


def _status_lanes(timeline: pd.DataFrame, kinds: list[str], as_of: TimeLike,
                  max_lanes: int) -> _StatusLanes:
    if max_lanes < 1:
        raise ValueError(f"max_lanes must be at least 1; got {max_lanes}")
    rows = _timeline_rows(timeline, kinds)
    at = _timeline_as_of(rows, as_of)
    if at is not None:
        rows = rows[rows["start_at"] <= at]
    total = len(rows[["kind", "resource_id"]].drop_duplicates())
    lanes = _lanes(rows, at, max_lanes) if at is not None and not rows.empty else None
    return _StatusLanes(rows, at, total, lanes)


def _draw_status_timeline(ax: Axes, prepared: _StatusLanes, kinds: list[str]) -> Axes:
    rows, at, total, lanes = prepared
    count = prepared.lane_count
    heading = "Status of each " + " and ".join(key_name(k) for k in kinds) + " over time"
    if lanes is None or at is None:
        return no_data(ax, heading)
    rows = rows.merge(lanes[["kind", "resource_id", "lane"]], on=["kind", "resource_id"])
    end = rows["end_at"].where(rows["end_at"].notna() & (rows["end_at"] <= at), at)
    left = mdates.date2num(utc_naive(rows["start_at"]))
    right = mdates.date2num(utc_naive(end))
    at_x = float(mdates.date2num(utc_naive(pd.Series([at]))[0]))
    first = float(left.min())
    # a status held for minutes of a days-wide axis would be invisible: draw it at least
    # 0.3% of the axis wide, ending no later than as_of
    least = max(at_x - first, 1 / 24) * 0.003
    narrow = right - left < least
    left = np.where(narrow, np.minimum(left, at_x - least), left)
    width = np.where(narrow, least, right - left)
    statuses = rows["status"].astype("string").fillna("unknown").astype(object)
    # a deleted resource is gone: a thin bar, so that full bars read as what the fleet holds
    heights = np.where(statuses == "deleted", 0.3, 0.8)
    rectangles(ax, left, rows["lane"].to_numpy(dtype="float64") - heights / 2, width, heights,
               [color_for("status", s) for s in statuses], linewidth=0)
    groups = lanes["group"].to_numpy()
    for boundary in np.flatnonzero(groups[1:] != groups[:-1]):
        standalone = bool(lanes["standalone"].iloc[boundary + 1])
        ax.axhline(boundary + 0.5, color="#636363" if standalone else "#d0d0d0",
                   linewidth=1.0 if standalone else 0.5)
    at_text = at.strftime("%Y-%m-%d %H:%M UTC")
    # under the bars: a status begun just before as_of must stay visible
    ax.axvline(at_x, color="black", linestyle="--", linewidth=1.0, label=f"as of {at_text}",
               zorder=0.9)
    ax.set_xlim(first, at_x + max(at_x - first, 1 / 24) * 0.02)
    ax.set_ylim(count - 0.5, -0.5)
    date_axis(ax)
    ax.set_xlabel("Time (UTC)")
    what = key_name(kinds[0], plural=True) if len(kinds) == 1 else "resources"
    if count <= 40:
        names = lanes["name"].astype("string").fillna(lanes["resource_id"]).astype(object)
        ax.set_yticks(lanes["lane"].to_numpy(), [short(str(n), 30) for n in names],
                      fontsize=8)
        for label, kind in zip(ax.get_yticklabels(), lanes["kind"], strict=True):
            if kind == "cluster":
                label.set_fontweight("bold")
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{count} {what} (grouped by cluster, standalone last)")
        # a tall chart: dates on top too, so the reader need not scroll to the bottom
        ax.tick_params(axis="x", top=True, labeltop=True)
    shown = statuses.unique().tolist()
    order = {s: i for i, s in enumerate(STATUS_COLORS)}
    handles: list[Patch | Line2D] = [
        Patch(color=color_for("status", s), label=s)
        for s in sorted(shown, key=lambda s: (order.get(s, len(order)), s))]
    handles.append(Line2D([], [], color="black", linestyle="--", label=f"as of {at_text}"))
    ax.legend(handles=handles, title="status", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, fontsize=9)
    subset = f" (the {count} up most recently of {total})" if count < total else ""
    ax.set_title(f"{heading}\n{count} {what}{subset}, as of {at_text}")
    plain(ax)
    return ax


# -- fleet over time ----------------------------------------------------------------------------

_GPU_LINE = "#1f77b4"
_BURN_LINE = "#d95f02"


#: The most steps a fleet chart draws. A report's chart is 11 in wide at 120 dpi: its plot
#: area is about 1,100 pixels. A year of hourly periods (8,760) would put 8 steps in each
#: pixel column: drawing them took about 1 s (and a 1 MB SVG on the page) for a smear the
#: eye cannot take apart. Past this many, consecutive periods are drawn k at a time (their
#: mean as the step, their least to most as a band), which is what the image can show.
FLEET_MAX_STEPS = 1000


class _Steps(NamedTuple):
    edges: np.ndarray  # one more than the steps: the last step ends at the last edge
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def fleet_steps(values: np.ndarray, edges: np.ndarray, k: int) -> _Steps:
    """``values`` (one per period between ``edges``) drawn ``k`` periods to a step: each
    step's mean (the last step may hold fewer), least and most, and the steps' edges."""
    n = len(values)
    groups = np.arange(0, n, k)
    counts = np.diff(np.append(groups, n))
    return _Steps(np.append(edges[groups], edges[n]),
                  np.add.reduceat(values, groups) / counts,
                  np.minimum.reduceat(values, groups), np.maximum.reduceat(values, groups))


def _fleet_size() -> tuple[float, float]:
    return (11.0, 4.8)


def plot_fleet_over_time(fleet: pd.DataFrame, *, ax: Axes | None = None,
                         max_steps: int = FLEET_MAX_STEPS) -> Axes:
    """Running GPUs (left axis) and the hourly burn rate in dollars (right axis) per period.

    Example::

        >>> fleet = pd.DataFrame({
        ...     "period_start": pd.date_range("2026-11-19", periods=3, freq="1h", tz="UTC"),
        ...     "running_gpus": [8.0, 16.0, 12.0], "hourly_usd": [20.0, 40.0, 30.0],
        ...     "cost_usd": [20.0, 40.0, 30.0]})
        >>> ax = plot_fleet_over_time(fleet)
        >>> ax.get_ylabel(), [a.get_ylabel() for a in ax.get_shared_x_axes().get_siblings(ax)
        ...                   if a is not ax]
        ('Running GPUs (average per period)', ['Burn rate (USD per hour)'])

    Takes a ``fleet_over_time`` result. Each period is drawn as a step over its whole width.
    The burn-rate axis is ``ax``'s twin (``ax.get_shared_x_axes().get_siblings(ax)``). Both
    axes leave headroom at the top, where the one legend sits, so it never covers a line.
    More periods than ``max_steps`` (a year of hours) are drawn ``k`` at a time: each step
    the mean of ``k`` consecutive periods over their span (the area under each line, GPU-hours
    and dollars, is the frame's), over a light band from their least to their most; the
    title says so.
    """
    require(fleet, ["period_start", "running_gpus", "hourly_usd", "cost_usd"],
             "fleet (a fleet_over_time result)")
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1; got {max_steps}")
    ax = ax if ax is not None else new_axes(_fleet_size())
    return _draw_fleet_over_time(ax, fleet, max_steps)


def fleet_chart(fleet: pd.DataFrame) -> Chart:
    """The report's chart of a ``fleet_over_time`` result."""
    return Chart(_fleet_size(), lambda ax: _draw_fleet_over_time(ax, fleet, FLEET_MAX_STEPS))


def _stairs(ax: Axes, values: np.ndarray, edges: np.ndarray, *, color: str,
            fill: bool = False, **props: object) -> StepPatch:
    """``ax.stairs`` (coloured as it colours them; ``edges`` as dates) without its update of
    the data limits, which the chart sets itself: on a long step line that update is most of
    the drawing's time."""
    style: dict[str, object] = ({"facecolor": color, "linewidth": 0} if fill
                                else {"edgecolor": color})
    patch = StepPatch(values, mdates.date2num(edges), fill=fill,
                      **{**style, **props})  # type: ignore[arg-type]
    ax.add_artist(patch)
    return patch


def _draw_fleet_over_time(ax: Axes, fleet: pd.DataFrame, max_steps: int) -> Axes:
    heading = "Fleet over time"
    if fleet.empty:
        return no_data(ax, heading)
    rows = fleet.sort_values("period_start", kind="stable")
    starts = utc_naive(rows["period_start"])
    step = np.median(np.diff(starts)) if len(starts) > 1 else np.timedelta64(1, "h")
    # one more edge so that the last period shows as a step of full width
    edges = np.append(starts, starts[-1] + step)
    gpus = rows["running_gpus"].astype("float64").fillna(0.0).to_numpy()
    burn = rows["hourly_usd"].astype("float64").fillna(0.0).to_numpy()
    k = -(-len(gpus) // max_steps)  # periods per drawn step
    drawn_gpus, drawn_burn = fleet_steps(gpus, edges, k), fleet_steps(burn, edges, k)
    twin = ax.twinx()
    if k > 1:  # the spread inside each drawn step, under its line
        for axes, drawn, colour in ((ax, drawn_gpus, _GPU_LINE), (twin, drawn_burn, _BURN_LINE)):
            _stairs(axes, drawn.high, drawn.edges, baseline=drawn.low, fill=True, color=colour,
                    alpha=0.25)
    # baseline None: no drop to zero at the window's ends, which would read as an outage
    gpus_line = _stairs(ax, drawn_gpus.mean, drawn_gpus.edges, color=_GPU_LINE, linewidth=1.6,
                        baseline=None, label="Running GPUs (left)")
    _stairs(ax, drawn_gpus.mean, drawn_gpus.edges, color=_GPU_LINE, alpha=0.12, fill=True)
    burn_line = _stairs(twin, drawn_burn.mean, drawn_burn.edges, color=_BURN_LINE,
                        linewidth=1.4, baseline=None, label="Burn rate, USD/h (right)")
    headroom = 1.25
    ax.set_ylim(0, max(float(gpus.max()), 1.0) * headroom)
    twin.set_ylim(0, max(float(burn.max()), 1.0) * headroom)
    ax.set_xlim(edges[0], edges[-1])
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    twin.yaxis.set_major_formatter(Dollars())
    date_axis(ax)
    ax.set_xlabel("Time (UTC)")
    ax.set_ylabel("Running GPUs (average per period)", color=_GPU_LINE)
    twin.set_ylabel("Burn rate (USD per hour)", color=_BURN_LINE)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    width = _span(pd.Timedelta(step).total_seconds())
    note = ("" if k == 1 else f"\ndrawn {k} periods to a step of "
             f"{_span(k * pd.Timedelta(step).total_seconds())}: their mean, over a band from "
             "their least to their most")
    cost = float(rows["cost_usd"].astype("float64").sum())
    ax.set_title(f"{heading}\n{len(rows):,} periods of {width} \u00b7 up to "
                 f"{gpus.max():,.0f} GPUs and {usd(float(burn.max()))}/h "
                 f"(period averages) \u00b7 {usd(cost)} accrued{note}")
    # the legend goes on the twin: it is drawn last, so nothing of the twin covers it
    twin.legend(handles=[gpus_line, burn_line], loc="upper left", ncols=2, frameon=False,
                fontsize=9)
    plain(ax)
    plain(twin)
    return ax



def _span(seconds: float) -> str:
    """A period's length as the fleet chart names it: ``5 min``, ``1 h``, ``1 d``."""
    return (f"{seconds / 60:g} min" if seconds < 3600 else f"{seconds / 3600:g} h"
            if seconds < 86400 else f"{seconds / 86400:g} d")
