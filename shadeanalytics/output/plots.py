"""Charts of a fleet: costs, GPUs held, status timeline, fleet over time, provisioning times."""

# The only module that imports matplotlib: nothing else in the package imports this one, so a
# scheduled run that writes CSV files never loads it.

from __future__ import annotations

import io
import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import rc_context, ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .._common import TimeLike, count_groups, key_column, usd
from .._common import as_of_time as _as_of
from .._files import atomic_file
from .._text import for_svg
from ..analytics.billing import Bill
from ..analytics.inventory import INVENTORY_KEYS, gpu_inventory
from ..ingest.tables import Tables

__all__ = [
    "CHART_FILES",
    "CLOUD_COLORS",
    "GPU_COLORS",
    "STATUS_COLORS",
    "chart_svgs",
    "color_for",
    "plot_cost_breakdown",
    "plot_cost_over_time",
    "plot_fleet_over_time",
    "plot_gpu_inventory",
    "plot_provisioning",
    "plot_savings",
    "plot_status_timeline",
    "render_charts",
    "usd",
    "write_charts",
]

# -- colours ------------------------------------------------------------------------------------

#: Fixed colours of the clouds we know, so that a cloud looks the same in every chart.
CLOUD_COLORS: dict[str, str] = {
    "crusoe": "#1f77b4", "lambdalabs": "#ff7f0e", "datacrunch": "#2ca02c",
    "scaleway": "#d62728", "denvr": "#9467bd", "vultr": "#8c564b", "nebius": "#e377c2",
    "hyperstack": "#5254a3", "paperspace": "#bcbd22", "massedcompute": "#17becf",
    "aws": "#aec7e8", "azure": "#ffbb78", "runpod": "#98df8a", "tensordock": "#ff9896",
    "latitude": "#c5b0d5", "oblivus": "#c49c94", "fluidstack": "#f7b6d2",
    "digitalocean": "#637939", "voltagepark": "#dbdb8d", "imwt": "#9edae5",
}
#: Fixed colours of the GPU types we know (CPU-only instances are grey).
GPU_COLORS: dict[str, str] = {
    "H100": "#4e79a7", "H200": "#f28e2b", "A100_80G": "#e15759", "A100": "#76b7b2",
    "A6000": "#59a14f", "L40S": "#edc948", "RTX6000Ada": "#b07aa1", "MI300X": "#ff9da7",
    "B200": "#9c755f", "GH200": "#843c39", "CPU": "#8c8c8c",
}
#: Status colours: on the way up in blues, running green, trouble red/orange, gone grey.
STATUS_COLORS: dict[str, str] = {
    "creating": "#c6dbef", "pending_provider": "#9ecae1", "pending": "#4292c6",
    "active": "#2ca02c", "error": "#d62728", "deleting": "#ff7f0e", "deleted": "#525252",
}
_UNKNOWN_STATUS = "#9467bd"
_PLACEHOLDER = "#9e9e9e"  # "(none)", "(standalone)", "(untagged)": not a real name
_OTHER = "#c8c8c8"
_NEUTRAL = "#4a6fa5"
_LATE = "#d62728"
# Names without a fixed colour pick one of these by a checksum of the name: the same name gets
# the same colour in every chart, every run, every Python (``hash()`` is salted per process).
_FALLBACK = (
    "#393b79", "#6b6ecf", "#9c9ede", "#8ca252", "#b5cf6b", "#8c6d31", "#bd9e39", "#e7ba52",
    "#ad494a", "#d6616b", "#e7969c", "#7b4173", "#a55194", "#ce6dbd", "#de9ed6", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
)
_PALETTES: dict[str, Mapping[str, str]] = {
    "cloud": CLOUD_COLORS, "gpu_type": GPU_COLORS, "status": STATUS_COLORS,
}


def color_for(key: str, value: str) -> str:
    """The colour of ``value`` of column ``key`` (``cloud``, ``gpu_type``, ``status``, ...).

    Example::

        >>> color_for("cloud", "crusoe"), color_for("status", "active")
        ('#1f77b4', '#2ca02c')
        >>> color_for("cloud", "newcloud") == color_for("cloud", "newcloud")
        True

    Known clouds, GPU types and statuses have fixed colours; a status the API added since is
    purple; ``(none)``-style placeholders are grey; any other name gets a colour picked by a
    CRC-32 of its text, the same in every chart and run.
    """
    known = _PALETTES.get(key, {})
    if value in known:
        return known[value]
    if key == "status":
        return _UNKNOWN_STATUS
    if value.startswith("("):
        return _PLACEHOLDER
    return _FALLBACK[zlib.crc32(value.encode("utf-8")) % len(_FALLBACK)]


# -- text ---------------------------------------------------------------------------------------

_KEY_NAMES = {
    "gpu_type": ("GPU type", "GPU types"), "cluster_id": ("cluster", "clusters"),
    "shade_instance_type": ("instance type", "instance types"),
    "cloud_instance_type": ("cloud instance type", "cloud instance types"),
    "rental_type": ("rental type", "rental types"), "gpu_manufacturer": ("GPU maker", "GPU makers"),
    "status": ("status", "statuses"),
}


def _key_name(key: str, plural: bool = False) -> str:
    singular, many = _KEY_NAMES.get(key, (key.replace("_", " "), key.replace("_", " ") + "s"))
    return many if plural else singular


class _Dollars(ticker.Formatter):
    """Dollar tick labels: ``$1,234``; ``$50k`` and ``$1.5M`` from $10,000 up (wider labels
    run into each other); cents on every tick when the ticks are closer than a dollar."""

    def __init__(self) -> None:
        super().__init__()
        self._ticks: list[float] = []

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        self._ticks = [float(t) for t in locs]

    def __call__(self, x: float, pos: int | None = None) -> str:
        amount, sign = abs(x), "-" if x < 0 else ""
        if amount >= 1_000_000:
            return f"{sign}${amount / 1_000_000:,.4g}M"
        if amount >= 10_000:
            return f"{sign}${amount / 1000:,.4g}k"
        # all ticks alike: "$0.50, $1.00, $1.50", not "$0.50, $1, $1.50"
        ticks = self._ticks or [x]
        cents = max(abs(t) for t in ticks) < 100 and any(
            not math.isclose(t, round(t), abs_tol=1e-9) for t in ticks)
        return usd(x, cents=cents)


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _plain(ax: Axes) -> None:
    """Show every text of ``ax`` as typed: a ``$`` in a user's name must not start math mode."""
    texts = [ax.title,
             ax.xaxis.label, ax.yaxis.label, *ax.texts,
             *ax.get_xticklabels(), *ax.get_yticklabels()]
    legend = ax.get_legend()
    if legend is not None:
        texts.extend(legend.get_texts())
    for text in texts:
        text.set_parse_math(False)


def _no_data(ax: Axes, title: str, message: str = "no data") -> Axes:
    ax.set_title(title)
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    _plain(ax)
    return ax


def _stack_legend(ax: Axes, key: str) -> None:
    """The legend of stacked bars, top to bottom as the stack, outside the plot on the right."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title=_key_name(key), loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing the column(s) {', '.join(missing)}")


# -- figures ------------------------------------------------------------------------------------


def _new_axes(figsize: tuple[float, float]) -> Axes:
    """A new pyplot figure, so that a notebook shows it inline; pyplot is loaded only here."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _agg_axes(figsize: tuple[float, float]) -> Axes:
    """A figure outside pyplot (no global state, nothing kept alive after it is saved)."""
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure.add_subplot()


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _utc_naive(values: pd.Series) -> np.ndarray:
    """UTC instants as naive ``datetime64`` (what matplotlib's date units take)."""
    return pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None).to_numpy()


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    # day ticks read "Nov 05" (a bare "05" looks like an hour), hour ticks "Nov 05 14:00"
    formats = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"]
    zero_formats = ["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, formats=formats, zero_formats=zero_formats))


# -- 1. cost breakdown --------------------------------------------------------------------------

#: value column -> (what it is, axis unit, suffix after a dollar amount)
_COST_VALUES: dict[str, tuple[str, str, str]] = {
    "hourly_usd": ("Hourly run rate", "USD per hour", "/h"),
    "daily_usd": ("Daily run rate", "USD per day", "/day"),
    "monthly_usd": ("Monthly run rate", "USD per month (730 h)", "/month"),
    "accrued_usd": ("Accrued cost so far", "USD", ""),
    "reported_cost_usd": ("Shadeform's cost estimate", "USD", ""),
}


def _cost_keys(costs: pd.DataFrame) -> list[str]:
    """The group keys of a ``cost_breakdown`` result: its columns before ``instances``."""
    columns = list(costs.columns)
    if "instances" not in columns or columns.index("instances") == 0:
        raise ValueError("costs must be a result of cost_breakdown(): its key column(s), then "
                         "instances, ..., hourly_usd, ...")
    return columns[: columns.index("instances")]


def _bar_color(key: str, value: str) -> str:
    """A key's own colour where it has a palette; else one colour, placeholders grey."""
    if key in _PALETTES or value.startswith("("):
        return color_for(key, value)
    return _NEUTRAL


def _cost_bars(costs: pd.DataFrame, value: str, top: int) -> pd.DataFrame:
    """The bars to draw, largest first: ``label``, ``value``, ``color``; the rest as one bar."""
    if value not in _COST_VALUES:
        raise ValueError(f"value must be one of {', '.join(_COST_VALUES)}; got {value!r}")
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}")
    keys = _cost_keys(costs)
    _require(costs, [value], "costs")
    labels = key_column(costs[keys[0]], keys[0])
    for key in keys[1:]:
        labels = labels + " / " + key_column(costs[key], key)
    bars = pd.DataFrame({
        "label": labels.astype(object),
        "value": costs[value].astype("float64").fillna(0.0),
        "color": [_bar_color(keys[0], str(v)) for v in key_column(costs[keys[0]], keys[0])],
    }).sort_values(["value", "label"], ascending=[False, True], kind="stable")
    if len(bars) > top:
        rest = bars.iloc[top:]
        other = pd.DataFrame({"label": [f"(other {len(rest)})"],
                              "value": [rest["value"].sum()], "color": [_OTHER]})
        bars = pd.concat([bars.iloc[:top], other], ignore_index=True)
    return bars.reset_index(drop=True)


def _share(fraction: float) -> str:
    """A share as a whole percent; a small non-zero one as ``<1%`` rather than a false 0%."""
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def _cost_size(bars: int) -> tuple[float, float]:
    return (8.0, _clamp(0.32 * bars + 1.6, 2.6, 9.0))


def plot_cost_breakdown(
    costs: pd.DataFrame,
    *,
    ax: Axes | None = None,
    value: str = "hourly_usd",
    top: int = 15,
    title: str | None = None,
) -> Axes:
    """Horizontal bars of one dollar column of a ``cost_breakdown`` result, largest on top.

    Example::

        >>> costs = pd.DataFrame({"cloud": ["crusoe", "denvr", "vultr"], "instances": [3, 2, 1],
        ...                       "hourly_usd": [12.5, 4.0, 0.0]})
        >>> ax = plot_cost_breakdown(costs, top=2)
        >>> ax.get_title()
        'Hourly run rate by cloud\\ntotal $16.50/h over 3 clouds'
        >>> [t.get_text() for t in ax.get_yticklabels()]
        ['crusoe', 'denvr', '(other 1)']

    The bars are labelled by the key column(s) (the columns before ``instances``, several
    joined with `` / ``) and coloured by the first key when it is ``cloud``, ``gpu_type`` or
    ``status``. ``value`` is ``hourly_usd``, ``daily_usd``, ``monthly_usd``, ``accrued_usd``
    or ``reported_cost_usd``. Beyond the ``top`` largest, the rest are summed into one
    ``(other N)`` bar at the bottom. The title's second line gives the total (not for a
    breakdown by ``tag``: an instance with two tags counts in both), counting the groups
    without the placeholders (``(standalone)``, ``(storage)`` ...), which it names apart.
    """
    bars = _cost_bars(costs, value, top)
    ax = ax if ax is not None else _new_axes(_cost_size(len(bars)))
    keys = _cost_keys(costs)
    what, unit, suffix = _COST_VALUES[value]
    heading = title if title is not None else (
        f"{what} by {' / '.join(_key_name(k) for k in keys)}")
    if bars.empty:
        return _no_data(ax, heading)
    total = float(costs[value].sum())
    if "tag" in keys:
        note = "an instance with several tags counts once per tag"
        labels = [usd(v, cents=None) for v in bars["value"]]
    else:
        # (standalone) is no cluster and (storage) no GPU type: counted apart, by name
        real, placeholders = count_groups(costs[keys[-1]])
        note = (f"total {usd(total)}{suffix} over {real} "
                f"{_key_name(keys[-1], plural=real != 1)}"
                + "".join(f" + {label}" for label in placeholders))
        labels = [usd(v, cents=None) + (f"  {_share(v / total)}" if total > 0 else "")
                  for v in bars["value"]]
    positions = np.arange(len(bars))
    container = ax.barh(positions, bars["value"], color=list(bars["color"]), height=0.7)
    ax.set_yticks(positions, [_short(str(label), 40) for label in bars["label"]])
    ax.invert_yaxis()
    ax.bar_label(container, labels=labels, padding=3, fontsize=8)
    largest = float(bars["value"].max())
    # room on the right for the value label of the longest bar
    ax.set_xlim(0, largest * 1.22 if largest > 0 else 1.0)
    ax.xaxis.set_major_formatter(_Dollars())
    ax.set_xlabel(f"{what} ({unit})")
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_title(f"{heading}\n{note}")
    _plain(ax)
    return ax


# -- 2. GPU inventory ---------------------------------------------------------------------------


def _inventory_pivot(data: Tables | Bill | pd.DataFrame,
                     stack: str | None) -> tuple[pd.DataFrame, int]:
    """GPUs by type (rows, most first) x ``stack`` value (columns); instances without GPUs."""
    if stack is not None and (stack not in INVENTORY_KEYS or stack == "gpu_type"):
        raise ValueError(f"stack must be None or one of "
                         f"{', '.join(k for k in INVENTORY_KEYS if k != 'gpu_type')}; "
                         f"got {stack!r}")
    keys = ["gpu_type"] if stack is None else ["gpu_type", stack]
    if not isinstance(data, pd.DataFrame) or "instance_id" in data.columns:
        inventory = gpu_inventory(data, by=keys)
    else:
        _require(data, ["gpu_type", "gpus", "instances"], "the inventory")
        if stack is not None and stack not in data.columns:
            raise ValueError(f"the inventory has no {stack!r} column to stack by: pass the "
                             f"instances table, gpu_inventory(instances, by=['gpu_type', "
                             f"{stack!r}]), or stack=None")
        inventory = data
    types = key_column(inventory["gpu_type"], "gpu_type").astype(object)
    work = pd.DataFrame({
        "gpu_type": types,
        # no stack: one series, its bars in each type's colour
        "part": "GPUs" if stack is None else key_column(inventory[stack], stack).astype(
            object),
        "gpus": inventory["gpus"].astype("float64").fillna(0.0),
        "instances": inventory["instances"].astype("float64").fillna(0.0),
    })
    per_type = work.groupby("gpu_type")["gpus"].sum()
    without = per_type.index[per_type == 0]
    no_gpu_instances = int(work.loc[work["gpu_type"].isin(without), "instances"].sum())
    work = work[~work["gpu_type"].isin(without)]
    table = work.pivot_table(index="gpu_type", columns="part", values="gpus", aggfunc="sum",
                             fill_value=0.0)
    types = sorted(table.index, key=lambda t: (-table.loc[t].sum(), t))
    if stack == "status":
        order = {s: i for i, s in enumerate(STATUS_COLORS)}
        parts = sorted(table.columns, key=lambda s: (order.get(s, len(order)), s))
    else:
        parts = sorted(table.columns, key=lambda p: (-table[p].sum(), p))
    return table.loc[types, parts], no_gpu_instances


def _inventory_size(types: int) -> tuple[float, float]:
    return (_clamp(0.7 * types + 4.5, 7.0, 14.0), 5.0)


def plot_gpu_inventory(
    inventory_or_instances: Tables | Bill | pd.DataFrame,
    *,
    ax: Axes | None = None,
    stack: str | None = "cloud",
) -> Axes:
    """GPUs held by GPU type, each bar split by cloud (or status, or any inventory key).

    Example::

        >>> instances = pd.DataFrame({"instance_id": ["a", "b", "c"], "gpu_type": ["H100"] * 3,
        ...     "cloud": ["crusoe", "denvr", "crusoe"], "status": ["active"] * 3,
        ...     "num_gpus": [8, 8, 1], "total_vram_gb": 80, "vcpus": 8, "memory_in_gb": 64,
        ...     "hourly_price_usd": 2.0, "region": "r1",
        ...     "observed_at": pd.Timestamp("2026-11-20", tz="UTC")})
        >>> ax = plot_gpu_inventory(instances)
        >>> [t.get_text() for t in ax.get_legend().get_texts()]
        ['denvr', 'crusoe']

    Takes what ``gpu_inventory`` takes (a ``Tables``, a ``Bill`` or its ``instances``, or an
    instances table of one snapshot; held means not stopped, as in ``gpu_inventory``) or a
    ``gpu_inventory`` result grouped by ``gpu_type`` and ``stack``. Bars are sorted by total
    GPUs; types without GPUs (CPU-only) are left out and counted in the subtitle. ``stack``
    None draws one bar per type in the type's colour. The legend (top to bottom as the stack)
    sits outside the plot, on the right.
    """
    table, no_gpu = _inventory_pivot(inventory_or_instances, stack)
    ax = ax if ax is not None else _new_axes(_inventory_size(len(table)))
    by = "" if stack is None else f" and {_key_name(stack)}"
    heading = f"GPUs held by type{by}"
    cpu_note = (f" \u00b7 + {no_gpu} CPU-only instance{'s' * (no_gpu != 1)} (no GPUs)"
                if no_gpu else "")
    if table.empty:
        return _no_data(ax, f"{heading}\nno GPUs held{cpu_note}")
    positions = np.arange(len(table))
    bottom = np.zeros(len(table))
    container = None
    for part in table.columns:
        heights = table[part].to_numpy(dtype="float64")
        colour: str | list[str] = (
            color_for(stack, str(part)) if stack is not None
            else [color_for("gpu_type", str(t)) for t in table.index])
        container = ax.bar(positions, heights, bottom=bottom, width=0.7, color=colour,
                           edgecolor="white", linewidth=0.5, label=str(part))
        bottom += heights
    if container is not None:
        ax.bar_label(container, labels=[f"{t:,.0f}" for t in bottom], padding=2, fontsize=9)
    ax.set_ylim(0, bottom.max() * 1.1)
    rotate = len(table) > 10
    ax.set_xticks(positions, [_short(str(t), 20) for t in table.index],
                  rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("GPU type")
    ax.set_ylabel("GPUs held (count)")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    total = int(bottom.sum())
    ax.set_title(f"{heading}\n{total:,} GPU{'s' * (total != 1)}{cpu_note}")
    if stack is not None:
        _stack_legend(ax, stack)
    _plain(ax)
    return ax


# -- 3. status timeline (Gantt) -----------------------------------------------------------------

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
    return (11.0, _clamp(per_lane * lanes + 2.2, 3.0, 16.0))


def _timeline_rows(timeline: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    _require(timeline, _TIMELINE_COLUMNS, "the timeline (a status_timeline result)")
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
    if max_lanes < 1:
        raise ValueError(f"max_lanes must be at least 1; got {max_lanes}")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    rows = _timeline_rows(timeline, kinds)
    at = _timeline_as_of(rows, as_of)
    if at is not None:
        rows = rows[rows["start_at"] <= at]
    total = len(rows[["kind", "resource_id"]].drop_duplicates())
    lanes = _lanes(rows, at, max_lanes) if at is not None and not rows.empty else None
    count = 0 if lanes is None else len(lanes)
    ax = ax if ax is not None else _new_axes(_timeline_size(count))
    heading = "Status of each " + " and ".join(_key_name(k) for k in kinds) + " over time"
    if lanes is None or at is None:
        return _no_data(ax, heading)
    rows = rows.merge(lanes[["kind", "resource_id", "lane"]], on=["kind", "resource_id"])
    end = rows["end_at"].where(rows["end_at"].notna() & (rows["end_at"] <= at), at)
    left = mdates.date2num(_utc_naive(rows["start_at"]))
    right = mdates.date2num(_utc_naive(end))
    at_x = float(mdates.date2num(_utc_naive(pd.Series([at]))[0]))
    first = float(left.min())
    # a status held for minutes of a days-wide axis would be invisible: draw it at least
    # 0.3% of the axis wide, ending no later than as_of
    least = max(at_x - first, 1 / 24) * 0.003
    short = right - left < least
    left = np.where(short, np.minimum(left, at_x - least), left)
    width = np.where(short, least, right - left)
    statuses = rows["status"].astype("string").fillna("unknown").astype(object)
    # a deleted resource is gone: a thin bar, so that full bars read as what the fleet holds
    heights = np.where(statuses == "deleted", 0.3, 0.8)
    ax.barh(rows["lane"].to_numpy(), width, left=left, height=heights, linewidth=0,
            color=[color_for("status", s) for s in statuses])
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
    _date_axis(ax)
    ax.set_xlabel("Time (UTC)")
    what = _key_name(kinds[0], plural=True) if len(kinds) == 1 else "resources"
    if count <= 40:
        names = lanes["name"].astype("string").fillna(lanes["resource_id"]).astype(object)
        ax.set_yticks(lanes["lane"].to_numpy(), [_short(str(n), 30) for n in names],
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
    _plain(ax)
    return ax


# -- 4. fleet over time -------------------------------------------------------------------------

_GPU_LINE = "#1f77b4"
_BURN_LINE = "#d95f02"


def _fleet_size() -> tuple[float, float]:
    return (11.0, 4.8)


def plot_fleet_over_time(fleet: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
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
    """
    _require(fleet, ["period_start", "running_gpus", "hourly_usd", "cost_usd"],
             "fleet (a fleet_over_time result)")
    ax = ax if ax is not None else _new_axes(_fleet_size())
    heading = "Fleet over time"
    if fleet.empty:
        return _no_data(ax, heading)
    rows = fleet.sort_values("period_start", kind="stable")
    starts = _utc_naive(rows["period_start"])
    step = np.median(np.diff(starts)) if len(starts) > 1 else np.timedelta64(1, "h")
    # one more edge so that the last period shows as a step of full width
    edges = np.append(starts, starts[-1] + step)
    gpus = rows["running_gpus"].astype("float64").fillna(0.0).to_numpy()
    burn = rows["hourly_usd"].astype("float64").fillna(0.0).to_numpy()
    # baseline None: no drop to zero at the window's ends, which would read as an outage
    gpus_line = ax.stairs(gpus, edges, color=_GPU_LINE, linewidth=1.6, baseline=None,
                          label="Running GPUs (left)")
    ax.stairs(gpus, edges, color=_GPU_LINE, alpha=0.12, fill=True)
    twin = ax.twinx()
    burn_line = twin.stairs(burn, edges, color=_BURN_LINE, linewidth=1.4, baseline=None,
                            label="Burn rate, USD/h (right)")
    headroom = 1.25
    ax.set_ylim(0, max(float(gpus.max()), 1.0) * headroom)
    twin.set_ylim(0, max(float(burn.max()), 1.0) * headroom)
    ax.set_xlim(edges[0], edges[-1])
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    twin.yaxis.set_major_formatter(_Dollars())
    _date_axis(ax)
    ax.set_xlabel("Time (UTC)")
    ax.set_ylabel("Running GPUs (average per period)", color=_GPU_LINE)
    twin.set_ylabel("Burn rate (USD per hour)", color=_BURN_LINE)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    seconds = pd.Timedelta(step).total_seconds()
    width = (f"{seconds / 60:g} min" if seconds < 3600 else f"{seconds / 3600:g} h"
             if seconds < 86400 else f"{seconds / 86400:g} d")
    cost = float(rows["cost_usd"].astype("float64").sum())
    ax.set_title(f"{heading}\n{len(rows)} periods of {width} \u00b7 up to "
                 f"{gpus.max():,.0f} GPUs and {usd(float(burn.max()))}/h "
                 f"(period averages) \u00b7 {usd(cost)} accrued")
    # the legend goes on the twin: it is drawn last, so nothing of the twin covers it
    twin.legend(handles=[gpus_line, burn_line], loc="upper left", ncols=2, frameon=False,
                fontsize=9)
    _plain(ax)
    _plain(twin)
    return ax


# -- 5. provisioning ----------------------------------------------------------------------------

_GOLDEN = (math.sqrt(5) - 1) / 2
_PROVISIONING_KEYS = ("cloud", "shade_instance_type", "cluster_id", "status")


def _jitter(count: int, width: float = 0.6) -> np.ndarray:
    """Offsets that spread ``count`` points evenly across ``width``, the same every run."""
    return ((np.arange(count) * _GOLDEN) % 1.0 - 0.5) * width


def _provisioning_groups(lifecycle: pd.DataFrame, by: str) -> list[str]:
    if by not in _PROVISIONING_KEYS:
        raise ValueError(f"by must be one of {', '.join(_PROVISIONING_KEYS)}; got {by!r}")
    _require(lifecycle, [by, "provisioning_s", "boot_time_min_s", "boot_time_max_s",
                         "boot_late"], "lifecycle (a lifecycle result)")
    return sorted(key_column(lifecycle[by], by).astype(object).unique())


def _provisioning_size(groups: int) -> tuple[float, float]:
    return (_clamp(0.75 * groups + 4.0, 7.0, 15.0), 5.2)


def plot_provisioning(
    lifecycle: pd.DataFrame, *, ax: Axes | None = None, by: str = "cloud"
) -> Axes:
    """Each instance's provisioning time (minutes) per cloud, against the API's boot estimate.

    Example::

        >>> lc = pd.DataFrame({"cloud": ["crusoe", "crusoe", "denvr"],
        ...     "provisioning_s": [300.0, 2400.0, 60.0], "boot_time_min_s": [300, 300, 60],
        ...     "boot_time_max_s": [900, 900, 120],
        ...     "boot_late": pd.array([False, True, False], dtype="boolean")})
        >>> ax = plot_provisioning(lc)
        >>> ax.get_ylabel()
        'Provisioning time (minutes, created to active)'

    Takes a ``lifecycle`` result; ``by`` is ``cloud``, ``shade_instance_type``, ``cluster_id``
    or ``status``. One column of points per group (spread sideways, the same every run) over a
    shaded bar from the group's smallest ``boot_time_min_s`` to its largest
    ``boot_time_max_s``. Late instances (over their own ``boot_time_max_s``) are red; those
    without an estimate hollow. Instances that never became active are counted in the
    subtitle. The minutes axis is logarithmic when the times span over two decades.
    """
    groups = _provisioning_groups(lifecycle, by)
    ax = ax if ax is not None else _new_axes(_provisioning_size(len(groups)))
    heading = f"Provisioning time by {_key_name(by)}"
    work = pd.DataFrame({
        "group": key_column(lifecycle[by], by).astype(object),
        "minutes": lifecycle["provisioning_s"].astype("float64") / 60,
        "low": lifecycle["boot_time_min_s"].astype("float64") / 60,
        "high": lifecycle["boot_time_max_s"].astype("float64") / 60,
        "late": lifecycle["boot_late"].astype("boolean"),
    })
    timed = work[work["minutes"].notna()]
    never = len(work) - len(timed)
    if timed.empty:
        return _no_data(ax, heading, "no instance has become active")
    position = {g: i for i, g in enumerate(groups)}
    ticks = []
    for group in groups:
        members = timed[timed["group"] == group].sort_values("minutes", kind="stable")
        i = position[group]
        low, high = work.loc[work["group"] == group, ["low", "high"]].agg(
            {"low": "min", "high": "max"})
        if not (pd.isna(low) or pd.isna(high)):
            ax.bar(i, high - low, bottom=low, width=0.8, color="#2ca02c", alpha=0.15,
                   linewidth=0, label="API boot estimate (min to max)")
        x = i + _jitter(len(members))
        late = members["late"]
        kinds = (  # (which, face, edge, legend label)
            (late.eq(False).fillna(False), _NEUTRAL, _NEUTRAL, "on time"),
            (late.fillna(False), _LATE, _LATE, "late (over max estimate)"),
            (late.isna(), "none", "#666666", "no estimate"),
        )
        for mask, face, edge, name in kinds:
            chosen = mask.to_numpy(dtype=bool)
            if chosen.any():
                ax.scatter(x[chosen], members["minutes"].to_numpy()[chosen], s=16,
                           facecolors=face, edgecolors=edge, linewidths=0.8, zorder=3,
                           label=name)
        ticks.append(f"{_short(str(group), 18)} (n={len(members)})")
    positive = timed["minutes"][timed["minutes"] > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
        # 1-2-5 steps: with only powers of ten a reader cannot tell 20 from 50 minutes
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        ax.set_ylim(bottom=0)
    rotate = len(groups) > 6
    ax.set_xticks(range(len(groups)), ticks, rotation=30 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor", fontsize=9)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_xlabel(_key_name(by).capitalize())
    ax.set_ylabel("Provisioning time (minutes, created to active)")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8, which="major")
    ax.set_axisbelow(True)
    late = int(timed["late"].fillna(False).sum())
    judged = int(timed["late"].notna().sum())
    share = f" ({late / judged:.0%} of those with an estimate)" if judged else ""
    waiting = f" \u00b7 {never} not (yet) active" if never else ""
    ax.set_title(f"{heading}\n{len(timed)} instances \u00b7 {late} late{share}{waiting}")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, fontsize=9)
    _plain(ax)
    return ax


# -- 6. spend over time -------------------------------------------------------------------------

_SPEND_VALUES = ("billed_hours", "unpriced_hours", "cost_usd")
_PERIOD_NAMES = ((3600.0, "hour"), (86400.0, "day"), (7 * 86400.0, "week"))


def _spend_key(costs: pd.DataFrame) -> str | None:
    """The group key of a ``cost_over_time`` result (None when it has none)."""
    _require(costs, ["period_start", "cost_usd"], "costs (a cost_over_time result)")
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
    ax = ax if ax is not None else _new_axes(_spend_size())
    starts = _utc_naive(pd.Series(table.index))
    step = (np.median(np.diff(starts)) if len(starts) > 1
            else length if length is not None
            else np.timedelta64(1, "D").astype("timedelta64[us]"))
    seconds = pd.Timedelta(step).total_seconds()
    period = _period_name(seconds)
    heading = title if title is not None else (
        f"Spend per {period}" + (f" by {_key_name(key)}" if key is not None else ""))
    if table.empty:
        return _no_data(ax, heading)
    widths = np.diff(np.append(starts, starts[-1] + step))
    bottom = np.zeros(len(table))
    for part in table.columns:
        heights = table[part].to_numpy(dtype="float64")
        colour = (_OTHER if str(part).startswith("(other ") else
                  color_for(key, str(part)) if key is not None else _NEUTRAL)
        ax.bar(starts, heights, width=widths * 0.9, bottom=bottom, align="edge",
               color=colour, edgecolor="white", linewidth=0.5, label=_short(str(part), 28))
        bottom += heights
    ax.set_ylim(0, max(float(bottom.max()), 1.0) * 1.1)
    ax.set_xlim(starts[0], starts[-1] + step)
    ax.yaxis.set_major_formatter(_Dollars())
    _date_axis(ax)
    ax.set_xlabel("Period start (UTC)")
    ax.set_ylabel(f"Cost per {period} (USD)")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    count = f"{len(table)} {period}{'s' * (len(table) != 1)}"
    note = ("an instance with several tags counts once per tag" if key == "tag"
            else f"total {usd(float(bottom.sum()))} over {count}")
    ax.set_title(f"{heading}\n{note}")
    if key is not None:
        _stack_legend(ax, key)
    _plain(ax)
    return ax


# -- 7. what we pay per GPU-hour against the marketplace -----------------------------------------

_OURS = "#4a6fa5"
_MARKET = "#2ca02c"
_SPOT = "#ff7f0e"


def _savings_size(types: int) -> tuple[float, float]:
    return (8.0, _clamp(0.42 * types + 1.8, 2.8, 9.0))


def plot_savings(savings: pd.DataFrame, *, ax: Axes | None = None, top: int = 15) -> Axes:
    """Per running instance type: what we pay per GPU-hour (bar) beside the cheapest available
    on-demand offer (green tick) and spot offer (orange tick) with the same GPUs.

    Example::

        >>> savings = pd.DataFrame({
        ...     "shade_instance_type": ["H100x8", "A6000"], "gpus_running": [16, 1],
        ...     "usd_per_gpu_hour": [3.0, 0.6], "market_usd_per_gpu_hour": [2.5, 0.7],
        ...     "spot_usd_per_gpu_hour": [1.5, float("nan")],
        ...     "monthly_saving_usd": [5840.0, -73.0]})
        >>> plot_savings(savings).get_title()
        'The same GPUs elsewhere\\n$5,840/month to save at the cheapest available on-demand offers'

    Takes a ``market.market_compare`` result; the ``top`` types with the most GPUs running are
    shown. The title's saving (positive: what moving would save) is the positive
    ``monthly_saving_usd`` summed (``market.potential_monthly_saving_usd``), as ``summary``
    says.
    """
    from ..analytics.market import potential_monthly_saving_usd

    _require(savings, ["shade_instance_type", "gpus_running", "usd_per_gpu_hour",
                       "market_usd_per_gpu_hour", "spot_usd_per_gpu_hour",
                       "monthly_saving_usd"], "savings (a market_compare result)")
    ax = ax if ax is not None else _new_axes(_savings_size(min(len(savings), top)))
    heading = "The same GPUs elsewhere"
    rows = savings[savings["usd_per_gpu_hour"].notna().to_numpy(dtype=bool)]
    if rows.empty:
        return _no_data(ax, heading)
    rows = rows.sort_values(["gpus_running", "shade_instance_type"], ascending=[False, True],
                            kind="stable").head(top)
    positions = np.arange(len(rows))
    ours = rows["usd_per_gpu_hour"].astype("float64").to_numpy()
    market = rows["market_usd_per_gpu_hour"].astype("float64").to_numpy()
    spot = rows["spot_usd_per_gpu_hour"].astype("float64").to_numpy()
    ax.barh(positions, ours, color=_OURS, height=0.6, label="we pay")
    ax.scatter(market, positions, marker="|", s=260, linewidths=3, color=_MARKET,
               label="cheapest on-demand", zorder=3)
    ax.scatter(spot, positions, marker="|", s=260, linewidths=3, color=_SPOT,
               label="cheapest spot", zorder=3)
    labels = [f"{_short(str(t), 28)} ({int(g)} GPU{'s' * (int(g) != 1)})"
              for t, g in zip(rows["shade_instance_type"], rows["gpus_running"], strict=True)]
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    largest = float(np.nanmax(np.concatenate([ours, market, spot])))
    ax.set_xlim(0, largest * 1.15 if largest > 0 else 1.0)
    ax.xaxis.set_major_formatter(_Dollars())
    ax.set_xlabel("USD per GPU-hour")
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    saving = potential_monthly_saving_usd(savings)
    saved = usd(saving, cents=None) if saving else "$0"
    ax.set_title(f"{heading}\n{saved}/month to save at the cheapest "
                 "available on-demand offers")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, frameon=False,
              fontsize=8)
    _plain(ax)
    return ax


# -- 8. write the report's charts ---------------------------------------------------------------

#: The chart files of a report, in the order ``write_charts`` writes them.
CHART_FILES = ("costs_by_cloud", "costs_by_gpu_type", "gpu_inventory", "provisioning",
               "status_timeline", "fleet_over_time", "costs_daily", "savings")
_DPI = 120


def _save_png(figure: Figure, path: Path, dpi: int) -> Path:
    """Save ``figure`` to ``path`` so that a crash leaves the old file or the new one."""
    with atomic_file(path) as handle:  # no address is drawn in a chart: never private
        # no Software/version stamp: the same data gives the same bytes on any install
        figure.savefig(handle, format="png", dpi=dpi, metadata={"Software": None})
    return path


def write_charts(
    frames: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    latest_instances: pd.DataFrame | None = None,
    timeline: pd.DataFrame | None = None,
    fleet: pd.DataFrame | None = None,
    spend: pd.DataFrame | None = None,
    as_of: TimeLike = None,
    dpi: int = _DPI,
) -> list[Path]:
    """Render a report's charts to PNG files in ``out_dir``; returns the files written.

    Example::

        >>> from shadeanalytics.output.report import analytics
        >>> frames = analytics(tables, as_of=at)  # doctest: +SKIP
        >>> write_charts(frames, "report", latest_instances=tables.latest().instances,
        ...              timeline=status_timeline(tables, as_of=at),
        ...              fleet=fleet_over_time(tables, as_of=at), as_of=at)  # doctest: +SKIP

    ``frames`` is the result of ``report.analytics`` (it needs ``costs_by_cloud``,
    ``costs_by_gpu_type``, ``gpu_inventory`` and ``lifecycle``). Writes
    ``costs_by_cloud.png``, ``costs_by_gpu_type.png`` (hourly run rate),
    ``gpu_inventory.png`` (split by cloud when ``latest_instances`` is given, else one bar per
    type from ``frames["gpu_inventory"]``), ``provisioning.png``, and, when given,
    ``status_timeline.png`` (lanes of ``timeline``, ``as_of`` marked),
    ``fleet_over_time.png`` and ``costs_daily.png`` (``spend``: a ``cost_over_time`` result,
    drawn by ``plot_cost_over_time``). Figures are drawn without pyplot (no global state), each file
    written atomically; the PNGs carry no software stamp.
    """
    written, _ = render_charts(frames, out_dir, latest_instances=latest_instances,
                               timeline=timeline, fleet=fleet, spend=spend, as_of=as_of,
                               dpi=dpi)
    return written


def render_charts(
    frames: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str] | None,
    *,
    svg: bool = False,
    latest_instances: pd.DataFrame | None = None,
    timeline: pd.DataFrame | None = None,
    fleet: pd.DataFrame | None = None,
    spend: pd.DataFrame | None = None,
    as_of: TimeLike = None,
    dpi: int = _DPI,
) -> tuple[list[Path], dict[str, str]]:
    """Draw each chart of a report once: its PNG file in ``out_dir`` (none when None) and,
    with ``svg``, its SVG document from the same figure; returns (files written, SVG by
    chart name). The arguments are those of ``write_charts``; ``write_charts`` and
    ``chart_svgs`` are its two halves."""
    out = None if out_dir is None else Path(out_dir)
    written, svgs = [], {}
    for name, size, draw in _charts(frames, latest_instances, timeline, fleet, spend, as_of):
        figure = draw(_agg_axes(size)).get_figure(root=True)
        assert isinstance(figure, Figure)
        # constrained layout starts from the axes' positions: each save starts from the
        # drawn ones, so the PNG and the SVG are those of a figure saved once
        drawn = [(ax, ax.get_position(original=True).frozen(), ax.get_position().frozen())
                 for ax in figure.axes]
        if out is not None:
            written.append(_save_png(figure, out / f"{name}.png", dpi))
        if svg:
            for ax, original, active in drawn:
                ax._set_position(original, which="original")  # type: ignore[attr-defined]
                ax._set_position(active, which="active")  # type: ignore[attr-defined]
            svgs[name] = _svg(figure, name)
    return written, svgs


_Chart = tuple[str, tuple[float, float], Callable[[Axes], Axes]]


def _charts(
    frames: Mapping[str, pd.DataFrame],
    latest_instances: pd.DataFrame | None,
    timeline: pd.DataFrame | None,
    fleet: pd.DataFrame | None,
    spend: pd.DataFrame | None,
    as_of: TimeLike,
) -> list[_Chart]:
    """The charts of a report as (name, figure size, draw on an axes), in ``CHART_FILES``
    order: the one list that both the PNG files and the HTML page's SVG render."""
    needed = ("costs_by_cloud", "costs_by_gpu_type", "gpu_inventory", "lifecycle")
    missing = [name for name in needed if name not in frames]
    if missing:
        raise ValueError(f"frames is missing {', '.join(missing)}; pass "
                         "shadeanalytics.output.report.analytics(tables, as_of=...)")
    stack = "cloud" if latest_instances is not None else None
    # GPUs by type and cloud, added up once for the chart's size and its bars
    inventory = (gpu_inventory(latest_instances, by=["gpu_type", "cloud"])
                 if latest_instances is not None else frames["gpu_inventory"])
    charts: list[_Chart] = [
        ("costs_by_cloud", _cost_size(len(_cost_bars(frames["costs_by_cloud"], "hourly_usd",
                                                     15))),
         lambda ax: plot_cost_breakdown(frames["costs_by_cloud"], ax=ax)),
        ("costs_by_gpu_type",
         _cost_size(len(_cost_bars(frames["costs_by_gpu_type"], "hourly_usd", 15))),
         lambda ax: plot_cost_breakdown(frames["costs_by_gpu_type"], ax=ax)),
        ("gpu_inventory", _inventory_size(len(_inventory_pivot(inventory, stack)[0])),
         lambda ax: plot_gpu_inventory(inventory, ax=ax, stack=stack)),
        ("provisioning",
         _provisioning_size(len(_provisioning_groups(frames["lifecycle"], "cloud"))),
         lambda ax: plot_provisioning(frames["lifecycle"], ax=ax)),
    ]
    if timeline is not None:
        lanes = len(_timeline_rows(timeline, ("instance",))[["resource_id"]].drop_duplicates())
        charts.append(("status_timeline", _timeline_size(min(lanes, 250)),
                       lambda ax: plot_status_timeline(timeline, ax=ax, as_of=as_of)))
    if fleet is not None:
        charts.append(("fleet_over_time", _fleet_size(),
                       lambda ax: plot_fleet_over_time(fleet, ax=ax)))
    if spend is not None:
        charts.append(("costs_daily", _spend_size(),
                       lambda ax: plot_cost_over_time(spend, ax=ax)))
    if "savings" in frames:
        charts.append(("savings", _savings_size(min(len(frames["savings"]), 15)),
                       lambda ax: plot_savings(frames["savings"], ax=ax)))
    return charts


def chart_svgs(
    frames: Mapping[str, pd.DataFrame],
    *,
    latest_instances: pd.DataFrame | None = None,
    timeline: pd.DataFrame | None = None,
    fleet: pd.DataFrame | None = None,
    spend: pd.DataFrame | None = None,
    as_of: TimeLike = None,
) -> dict[str, str]:
    """The charts of ``write_charts`` (same arguments) as SVG documents, by chart name.

    Example::

        >>> svgs = chart_svgs(analytics(tables, as_of=at))  # doctest: +SKIP
        >>> svgs["costs_by_cloud"][:4]  # doctest: +SKIP
        '<svg'

    For the HTML report. Text stays text (``svg.fonttype`` ``none``: a few kilobytes instead
    of a path per glyph); the document starts at ``<svg``: no XML prolog, no DOCTYPE (whose
    DTD address a reader might fetch), no metadata block, no date, so the same data gives the
    same text.
    """
    return render_charts(frames, None, svg=True, latest_instances=latest_instances,
                         timeline=timeline, fleet=fleet, spend=spend, as_of=as_of)[1]


def _svg(figure: Figure, name: str) -> str:
    """``figure`` as the page's SVG document (``chart_svgs``)."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None,
                                                      "Format": None, "Type": None})
    text = buffer.getvalue()
    # a label's NUL or ESC would make the document invalid XML (a broken picture)
    return for_svg(text[text.index("<svg"):])
