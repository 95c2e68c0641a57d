"""Provisioning charts: each instance's time from created to active against the API's boot
estimate (an ``instance_lifecycle`` result)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes

from ..._common import key_column
from ._base import LATE, NEUTRAL, Chart, clamp, key_name, new_axes, no_data, plain, require, short

# -- provisioning --------------------------------------------------------------------------------

_GOLDEN = (math.sqrt(5) - 1) / 2
_PROVISIONING_KEYS = ("cloud", "shade_instance_type", "cluster_id", "status")


def _jitter(count: int, width: float = 0.6) -> np.ndarray:
    """Offsets that spread ``count`` points evenly across ``width``, the same every run."""
    return ((np.arange(count) * _GOLDEN) % 1.0 - 0.5) * width


def _provisioning_groups(lifecycle: pd.DataFrame, by: str) -> list[str]:
    if by not in _PROVISIONING_KEYS:
        raise ValueError(f"by must be one of {', '.join(_PROVISIONING_KEYS)}; got {by!r}")
    require(lifecycle, [by, "provisioning_s", "boot_time_min_s", "boot_time_max_s",
                         "boot_late"], "lifecycle (a lifecycle result)")
    return sorted(key_column(lifecycle[by], by).astype(object).unique())


def _provisioning_size(groups: int) -> tuple[float, float]:
    return (clamp(0.75 * groups + 4.0, 7.0, 15.0), 5.2)


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

    Takes an ``instance_lifecycle`` result; ``by`` is ``cloud``, ``shade_instance_type``,
    ``cluster_id`` or ``status``. One column of points per group (spread sideways, the same
    every run) over a shaded bar from the group's smallest ``boot_time_min_s`` to its largest
    ``boot_time_max_s``. Late instances (over their own ``boot_time_max_s``) are red; those
    without an estimate hollow. Instances that never became active are counted in the
    subtitle. The minutes axis is logarithmic when the times span over two decades.
    """
    groups = _provisioning_groups(lifecycle, by)
    ax = ax if ax is not None else new_axes(_provisioning_size(len(groups)))
    return _draw_provisioning(ax, lifecycle, groups, by)


def provisioning_chart(lifecycle: pd.DataFrame) -> Chart:
    """The report's chart of an ``instance_lifecycle`` result, by cloud: its groups found once,
    for the figure's size and the drawing."""
    groups = _provisioning_groups(lifecycle, "cloud")
    return Chart(_provisioning_size(len(groups)),
                 lambda ax: _draw_provisioning(ax, lifecycle, groups, "cloud"))


def _draw_provisioning(ax: Axes, lifecycle: pd.DataFrame, groups: list[str], by: str) -> Axes:
    heading = f"Provisioning time by {key_name(by)}"
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
        return no_data(ax, heading, "no instance has become active")
    position = {g: i for i, g in enumerate(groups)}
    ticks = []
    kinds = {  # legend label: (face, edge)
        "on time": (NEUTRAL, NEUTRAL), "late (over max estimate)": (LATE, LATE),
        "no estimate": ("none", "#666666"),
    }
    points: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for group in groups:
        members = timed[timed["group"] == group].sort_values("minutes", kind="stable")
        i = position[group]
        low, high = work.loc[work["group"] == group, ["low", "high"]].agg(
            {"low": "min", "high": "max"})
        if not (pd.isna(low) or pd.isna(high)):
            ax.bar(i, high - low, bottom=low, width=0.8, color="#2ca02c", alpha=0.15,
                   linewidth=0, label="API boot estimate (min to max)")
        x = i + _jitter(len(members))
        minutes = members["minutes"].to_numpy()
        late = members["late"]
        for mask, name in zip((late.eq(False).fillna(False), late.fillna(False), late.isna()),
                              kinds, strict=True):
            chosen = mask.to_numpy(dtype=bool)
            if chosen.any():
                xs, ys = points.setdefault(name, ([], []))
                xs.append(x[chosen])
                ys.append(minutes[chosen])
        ticks.append(f"{short(str(group), 18)} (n={len(members)})")
    # one collection per kind, every group's points in it: each collection costs its own pass
    # over its points at every save. Rasterized: in an SVG a fleet's tens of thousands of
    # points are one image, not a path each (5 MB and a second for a year's 41,000 instances)
    for name, (face, edge) in kinds.items():
        if name in points:
            ax.scatter(np.concatenate(points[name][0]), np.concatenate(points[name][1]), s=16,
                       facecolors=face, edgecolors=edge, linewidths=0.8, zorder=3, label=name,
                       rasterized=True)
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
    ax.set_xlabel(key_name(by).capitalize())
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
    plain(ax)
    return ax

