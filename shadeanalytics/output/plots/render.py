"""A report's charts: which are drawn, from which frames, and each drawn once for its PNG file
and the page's SVG."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Collection, Mapping
from functools import partial
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..._common import TimeLike
from ._base import DPI, Chart, agg_axes, save_png, svg_document
from .cost import cost_chart
from .inventory import inventory_chart
from .market import savings_chart
from .provisioning import provisioning_chart
from .spend import spend_chart
from .timeline import fleet_chart, status_chart

#: The chart files of a report, in the order ``write_charts`` writes them.
CHART_FILES = ("costs_by_cloud", "costs_by_gpu_type", "gpu_inventory", "provisioning",
               "status_timeline", "fleet_over_time", "costs_daily", "savings")
#: The keys of the report's GPU inventory chart: GPUs by type, each bar split by cloud.
INVENTORY_BY_CLOUD = ("gpu_type", "cloud")


def write_charts(
    frames: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    latest_instances: pd.DataFrame | None = None,
    timeline: pd.DataFrame | None = None,
    fleet: pd.DataFrame | None = None,
    spend: pd.DataFrame | None = None,
    as_of: TimeLike = None,
    inventory: pd.DataFrame | None = None,
    dpi: int = DPI,
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
    ``gpu_inventory.png`` (split by cloud: ``inventory``, a ``gpu_inventory`` result by
    ``INVENTORY_BY_CLOUD`` when the caller has it, else added up from ``latest_instances``;
    without either, one bar per type from ``frames["gpu_inventory"]``), ``provisioning.png``,
    and, when given,
    ``status_timeline.png`` (lanes of ``timeline``, ``as_of`` marked),
    ``fleet_over_time.png`` and ``costs_daily.png`` (``spend``: a ``cost_over_time`` result,
    drawn by ``plot_cost_over_time``). Each chart draws the frame it is given (a report hands
    over the frames it computed for its CSV files). Figures are drawn without pyplot (no
    global state), each file written atomically; the PNGs carry no software stamp.
    """
    written, _ = render_charts(frames, out_dir, latest_instances=latest_instances,
                               timeline=timeline, fleet=fleet, spend=spend, as_of=as_of,
                               inventory=inventory, dpi=dpi)
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
    inventory: pd.DataFrame | None = None,
    dpi: int = DPI,
    only: Collection[str] | None = None,
) -> tuple[list[Path], dict[str, str]]:
    """Draw each chart of a report once: its PNG file in ``out_dir`` (none when None) and,
    with ``svg``, its SVG document from the same figure; returns (files written, SVG by
    chart name). The arguments are those of ``write_charts``; ``write_charts`` and
    ``chart_svgs`` are its two halves. ``only``: the charts of those names alone (of
    ``CHART_FILES``; a report draws its charts in two processes)."""
    out = None if out_dir is None else Path(out_dir)
    written, svgs = [], {}
    for name, make in _charts(frames, latest_instances, timeline, fleet, spend, as_of,
                              inventory, only):
        chart = make()
        figure = chart.draw(agg_axes(chart.size)).get_figure(root=True)
        assert isinstance(figure, Figure)
        # the PNG's save lays the figure out (constrained layout measures every text); the
        # SVG keeps that layout instead of measuring again (a third of its time): one layout,
        # both images. Without a PNG file the PNG is still drawn, for the same layout.
        if out is not None:
            written.append(save_png(figure, out / f"{name}.png", dpi))
        elif svg:
            figure.savefig(io.BytesIO(), format="png", dpi=dpi)
        if svg:
            figure.set_layout_engine("none")
            svgs[name] = svg_document(figure, name)
    return written, svgs


def _charts(
    frames: Mapping[str, pd.DataFrame],
    latest_instances: pd.DataFrame | None,
    timeline: pd.DataFrame | None,
    fleet: pd.DataFrame | None,
    spend: pd.DataFrame | None,
    as_of: TimeLike,
    inventory: pd.DataFrame | None,
    only: Collection[str] | None = None,
) -> list[tuple[str, Callable[[], Chart]]]:
    """The charts of a report by name, in ``CHART_FILES`` order, each made (its frames
    prepared) when called: the one list that both the PNG files and the HTML page's SVG
    render. Each chart draws the frame it is given; the GPU inventory by cloud, when the
    caller has not got it, is added up from ``latest_instances`` by the chart's own path
    (``plot_gpu_inventory``'s). ``only``: those charts alone (the frames of the others are
    not needed)."""
    needed = {"costs_by_cloud": "costs_by_cloud", "costs_by_gpu_type": "costs_by_gpu_type",
              "gpu_inventory": "gpu_inventory", "provisioning": "lifecycle"}
    if inventory is not None or latest_instances is not None:
        del needed["gpu_inventory"]  # drawn from those
    missing = [frame for chart, frame in needed.items()
               if frame not in frames and (only is None or chart in only)]
    if missing:
        raise ValueError(f"frames is missing {', '.join(missing)}; pass "
                         "shadeanalytics.output.report.analytics(tables, as_of=...)")
    # GPUs by type and cloud: the caller's, else added up from its instances
    stacked = inventory if inventory is not None else latest_instances
    charts: list[tuple[str, Callable[[], Chart]]] = [
        ("costs_by_cloud", lambda: cost_chart(frames["costs_by_cloud"])),
        ("costs_by_gpu_type", lambda: cost_chart(frames["costs_by_gpu_type"])),
        ("gpu_inventory", (lambda: inventory_chart(frames["gpu_inventory"], None))
         if stacked is None else partial(inventory_chart, stacked, "cloud")),
        ("provisioning", lambda: provisioning_chart(frames["lifecycle"])),
    ]
    if timeline is not None:
        charts.append(("status_timeline", partial(status_chart, timeline, as_of)))
    if fleet is not None:
        charts.append(("fleet_over_time", partial(fleet_chart, fleet)))
    if spend is not None:
        charts.append(("costs_daily", partial(spend_chart, spend)))
    if "savings" in frames:
        charts.append(("savings", lambda: savings_chart(frames["savings"])))
    return [(name, make) for name, make in charts if only is None or name in only]


def chart_svgs(
    frames: Mapping[str, pd.DataFrame],
    *,
    latest_instances: pd.DataFrame | None = None,
    timeline: pd.DataFrame | None = None,
    fleet: pd.DataFrame | None = None,
    spend: pd.DataFrame | None = None,
    as_of: TimeLike = None,
    inventory: pd.DataFrame | None = None,
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
                         timeline=timeline, fleet=fleet, spend=spend, as_of=as_of,
                         inventory=inventory)[1]
