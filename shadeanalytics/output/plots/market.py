"""Marketplace charts: what we pay per GPU-hour against the cheapest offers with the same GPUs
(a ``market_compare`` result)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..._common import usd
from ._base import Chart, Dollars, clamp, new_axes, no_data, plain, require, short

# -- what we pay per GPU-hour against the marketplace ---------------------------------------------

_OURS = "#4a6fa5"
_MARKET = "#2ca02c"
_SPOT = "#ff7f0e"


def _savings_size(types: int) -> tuple[float, float]:
    return (8.0, clamp(0.42 * types + 1.8, 2.8, 9.0))


def savings_chart(savings: pd.DataFrame) -> Chart:
    """The report's chart of a ``market_compare`` result."""
    return Chart(_savings_size(min(len(savings), 15)), lambda ax: plot_savings(savings, ax=ax))


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
    ``monthly_saving_usd`` summed (``market.potential_monthly_saving_usd``), as ``summary`` says.
    """
    from ...analytics.market import potential_monthly_saving_usd

    require(savings, ["shade_instance_type", "gpus_running", "usd_per_gpu_hour",
                       "market_usd_per_gpu_hour", "spot_usd_per_gpu_hour",
                       "monthly_saving_usd"], "savings (a market_compare result)")
    ax = ax if ax is not None else new_axes(_savings_size(min(len(savings), top)))
    heading = "The same GPUs elsewhere"
    rows = savings[savings["usd_per_gpu_hour"].notna().to_numpy(dtype=bool)]
    if rows.empty:
        return no_data(ax, heading)
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
    labels = [f"{short(str(t), 28)} ({int(g)} GPU{'s' * (int(g) != 1)})"
              for t, g in zip(rows["shade_instance_type"], rows["gpus_running"], strict=True)]
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    largest = float(np.nanmax(np.concatenate([ours, market, spot])))
    ax.set_xlim(0, largest * 1.15 if largest > 0 else 1.0)
    ax.xaxis.set_major_formatter(Dollars())
    ax.set_xlabel("USD per GPU-hour")
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    saving = potential_monthly_saving_usd(savings)
    saved = usd(saving, cents=None) if saving else "$0"
    ax.set_title(f"{heading}\n{saved}/month to save at the cheapest "
                 "available on-demand offers")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, frameon=False,
              fontsize=8)
    plain(ax)
    return ax

