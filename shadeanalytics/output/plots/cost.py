"""Cost breakdown charts: one dollar column of a ``cost_breakdown`` result as bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..._common import count_groups, key_column, usd
from ._base import (
    NEUTRAL,
    OTHER,
    PALETTES,
    Chart,
    Dollars,
    clamp,
    color_for,
    key_name,
    new_axes,
    no_data,
    plain,
    require,
    short,
)

# -- cost breakdown ------------------------------------------------------------------------------

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
    if key in PALETTES or value.startswith("("):
        return color_for(key, value)
    return NEUTRAL


def _cost_bars(costs: pd.DataFrame, value: str, top: int) -> pd.DataFrame:
    """The bars to draw, largest first: ``label``, ``value``, ``color``; the rest as one bar."""
    if value not in _COST_VALUES:
        raise ValueError(f"value must be one of {', '.join(_COST_VALUES)}; got {value!r}")
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}")
    keys = _cost_keys(costs)
    require(costs, [value], "costs")
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
                              "value": [rest["value"].sum()], "color": [OTHER]})
        bars = pd.concat([bars.iloc[:top], other], ignore_index=True)
    return bars.reset_index(drop=True)


def _share(fraction: float) -> str:
    """A share as a whole percent; a small non-zero one as ``<1%`` rather than a false 0%."""
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def _cost_size(bars: int) -> tuple[float, float]:
    return (8.0, clamp(0.32 * bars + 1.6, 2.6, 9.0))


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
    ax = ax if ax is not None else new_axes(_cost_size(len(bars)))
    return _draw_cost_breakdown(ax, costs, bars, value, title)


def cost_chart(costs: pd.DataFrame) -> Chart:
    """The report's chart of a ``cost_breakdown`` result (hourly run rate): its bars added up
    once, for the figure's size and the drawing."""
    bars = _cost_bars(costs, "hourly_usd", 15)
    return Chart(_cost_size(len(bars)),
                 lambda ax: _draw_cost_breakdown(ax, costs, bars, "hourly_usd", None))


def _draw_cost_breakdown(ax: Axes, costs: pd.DataFrame, bars: pd.DataFrame, value: str,
                         title: str | None) -> Axes:
    keys = _cost_keys(costs)
    what, unit, suffix = _COST_VALUES[value]
    heading = title if title is not None else (
        f"{what} by {' / '.join(key_name(k) for k in keys)}")
    if bars.empty:
        return no_data(ax, heading)
    total = float(costs[value].sum())
    if "tag" in keys:
        note = "an instance with several tags counts once per tag"
        labels = [usd(v, cents=None) for v in bars["value"]]
    else:
        # (standalone) is no cluster and (storage) no GPU type: counted apart, by name
        real, placeholders = count_groups(costs[keys[-1]])
        note = (f"total {usd(total)}{suffix} over {real} "
                f"{key_name(keys[-1], plural=real != 1)}"
                + "".join(f" + {label}" for label in placeholders))
        labels = [usd(v, cents=None) + (f"  {_share(v / total)}" if total > 0 else "")
                  for v in bars["value"]]
    positions = np.arange(len(bars))
    container = ax.barh(positions, bars["value"], color=list(bars["color"]), height=0.7)
    ax.set_yticks(positions, [short(str(label), 40) for label in bars["label"]])
    ax.invert_yaxis()
    ax.bar_label(container, labels=labels, padding=3, fontsize=8)
    largest = float(bars["value"].max())
    # room on the right for the value label of the longest bar
    ax.set_xlim(0, largest * 1.22 if largest > 0 else 1.0)
    ax.xaxis.set_major_formatter(Dollars())
    ax.set_xlabel(f"{what} ({unit})")
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_title(f"{heading}\n{note}")
    plain(ax)
    return ax

