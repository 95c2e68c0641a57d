"""GPU inventory charts: GPUs held by type, each bar split by cloud (or another key)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes

from ..._common import key_column
from ...analytics.billing import Bill
from ...analytics.inventory import INVENTORY_KEYS, billed_inventory, gpu_inventory
from ...ingest.tables import Tables
from ._base import (
    STATUS_COLORS,
    Chart,
    clamp,
    color_for,
    key_name,
    new_axes,
    no_data,
    plain,
    require,
    short,
    stack_legend,
)

# -- GPU inventory -------------------------------------------------------------------------------


def _inventory_pivot(data: Tables | Bill | pd.DataFrame,
                     stack: str | None) -> tuple[pd.DataFrame, int]:
    """GPUs by type (rows, most first) x ``stack`` value (columns); instances without GPUs."""
    if stack is not None and (stack not in INVENTORY_KEYS or stack == "gpu_type"):
        raise ValueError(f"stack must be None or one of "
                         f"{', '.join(k for k in INVENTORY_KEYS if k != 'gpu_type')}; "
                         f"got {stack!r}")
    keys = ["gpu_type"] if stack is None else ["gpu_type", stack]
    if not isinstance(data, pd.DataFrame):
        inventory = gpu_inventory(data, by=keys)
    elif "billing_end_source" in data.columns:  # the instances of a Bill, handed by the report
        inventory = billed_inventory(data, by=keys)
    elif "instance_id" in data.columns:
        inventory = gpu_inventory(data, by=keys)
    else:
        require(data, ["gpu_type", "gpus", "instances"], "the inventory")
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
    return (clamp(0.7 * types + 4.5, 7.0, 14.0), 5.0)


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
    ax = ax if ax is not None else new_axes(_inventory_size(len(table)))
    return _draw_gpu_inventory(ax, table, no_gpu, stack)


def inventory_chart(inventory: Tables | Bill | pd.DataFrame, stack: str | None) -> Chart:
    """The report's chart of GPUs held (what ``plot_gpu_inventory`` takes): its bars added up
    once, for the figure's size and the drawing."""
    table, no_gpu = _inventory_pivot(inventory, stack)
    return Chart(_inventory_size(len(table)),
                 lambda ax: _draw_gpu_inventory(ax, table, no_gpu, stack))


def _draw_gpu_inventory(ax: Axes, table: pd.DataFrame, no_gpu: int, stack: str | None) -> Axes:
    by = "" if stack is None else f" and {key_name(stack)}"
    heading = f"GPUs held by type{by}"
    cpu_note = (f" \u00b7 + {no_gpu} CPU-only instance{'s' * (no_gpu != 1)} (no GPUs)"
                if no_gpu else "")
    if table.empty:
        return no_data(ax, f"{heading}\nno GPUs held{cpu_note}")
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
    ax.set_xticks(positions, [short(str(t), 20) for t in table.index],
                  rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("GPU type")
    ax.set_ylabel("GPUs held (count)")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    total = int(bottom.sum())
    ax.set_title(f"{heading}\n{total:,} GPU{'s' * (total != 1)}{cpu_note}")
    if stack is not None:
        stack_legend(ax, stack)
    plain(ax)
    return ax

