"""Charts of a fleet: costs, GPUs held, status timeline, fleet over time, provisioning times.

Example::

    >>> color_for("cloud", "crusoe"), color_for("status", "active")
    ('#1f77b4', '#2ca02c')

One module per chart family, each taking the frame its chart draws: ``cost``
(``plot_cost_breakdown``), ``inventory`` (``plot_gpu_inventory``), ``timeline``
(``plot_status_timeline``, ``plot_fleet_over_time``), ``provisioning``
(``plot_provisioning``), ``spend`` (``plot_cost_over_time``), ``market`` (``plot_savings``);
``render`` draws a report's charts (``render_charts``), each once for its PNG and the page's
SVG, from the frames the report computed; ``_base`` holds what they share (colours, text,
figures, saving). The names below are importable from here, as ``shadeanalytics.output.plots.X``.
"""

# The only package that imports matplotlib: nothing else in shadeanalytics imports it (the
# report only inside write_report, when charts are asked for), so a scheduled run that writes
# CSV files never loads it.

from __future__ import annotations

from ._base import CLOUD_COLORS, GPU_COLORS, STATUS_COLORS, agg_axes, color_for
from .cost import plot_cost_breakdown
from .inventory import plot_gpu_inventory
from .market import plot_savings
from .provisioning import plot_provisioning
from .render import (
    CHART_FILES,
    INVENTORY_BY_CLOUD,
    chart_svgs,
    render_charts,
    write_charts,
)
from .spend import plot_cost_over_time
from .timeline import plot_fleet_over_time, plot_status_timeline

__all__ = [
    "CHART_FILES",
    "CLOUD_COLORS",
    "GPU_COLORS",
    "INVENTORY_BY_CLOUD",
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
    "write_charts",
]

#: A figure outside pyplot (kept for the tests and notebooks that drew on one).
_agg_axes = agg_axes
