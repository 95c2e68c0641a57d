"""The report's ``index.html``: one self-contained page of a report's numbers, for people.

The page is data-driven: ``HEADLINE`` says which figure comes from which column of which
frame, ``SECTIONS`` which frame is shown under which title with which columns, in page order.
A frame that is not there is left out, so a new analytics frame is one line in ``SECTIONS``.

What the page promises (tests/test_htmlreport.py checks it in headless Chromium):

- one file: CSS inline, charts as SVG ``data:`` images, no script, no external URL; a
  Content-Security-Policy that allows nothing but inline styles and ``data:`` images, so a
  browser fetches nothing even if a name slipped through as markup;
- every name is text: Jinja2 autoescapes every value, and values come from the frames, not
  the CSV files, so ``=1+1`` reads as typed (the CSV files carry a leading ``'``);
- its numbers are the CSV files' numbers (the same frames), formatted for people; each table
  links its CSV file in the same folder.

matplotlib is imported only when charts are drawn (``plots.chart_svgs``, by the caller).
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .._common import usd
from .._text import for_page
from .._version import __version__
from .csvout import write_text

__all__ = ["HEADLINE", "SECTIONS", "Figure", "Headline", "Section", "headline", "render_html",
           "write_html"]


@dataclass(frozen=True)
class Headline:
    """A headline figure: ``column`` of ``frame`` summed over its rows."""

    label: str
    frame: str
    column: str
    unit: str = ""  # after the number: "/h", "/month"
    money: bool = True
    unknown: str | None = None  # the frame's count of members whose value is unknown


#: The headline, in page order. A figure whose frame or column is missing is left out.
HEADLINE: tuple[Headline, ...] = (
    Headline("Burn rate", "costs_by_cloud", "hourly_usd", "/h"),
    Headline("Month projection (730 h)", "costs_by_cloud", "monthly_usd", "/month"),
    Headline("Accrued so far", "costs_by_cloud", "accrued_usd",
             unknown="instances_without_accrued"),
    Headline("Month to date", "forecast", "month_to_date_usd"),
    Headline("Month-end forecast", "forecast", "forecast_usd"),
    Headline("Shadeform's estimates", "costs_by_cloud", "reported_cost_usd",
             unknown="instances_without_estimate"),
    Headline("Running instances", "costs_by_cloud", "running_instances", money=False),
    Headline("GPUs running", "gpu_inventory", "gpus_running", money=False),
    Headline("GPUs pending", "gpu_inventory", "gpus_pending", money=False),
)


@dataclass(frozen=True)
class Section:
    """A table of the page: ``columns`` of ``frame`` (those present), under ``title``.

    ``money`` columns read as dollars, ``rates`` as unit prices with all their digits
    (``$0.0001`` per GB-hour); ``chart`` names the chart of ``plots.chart_svgs``
    shown above the table; ``rows`` caps the rows shown (the file has them all; 0: no table,
    the chart and the file only), the last ones when ``newest``; ``note`` is a line under
    the chart.
    """

    frame: str
    title: str
    columns: tuple[str, ...]
    money: tuple[str, ...] = ()
    chart: str | None = None
    rows: int = 200
    newest: bool = False
    note: str = ""
    rates: tuple[str, ...] = ()


_COST_COLUMNS = ("instances", "running_instances", "gpus", "hourly_usd", "monthly_usd",
                 "accrued_usd", "reported_cost_usd", "cost_gap_usd", "usd_per_gpu_hour",
                 "share_of_hourly")
_COST_MONEY = ("hourly_usd", "monthly_usd", "accrued_usd", "reported_cost_usd", "cost_gap_usd",
               "usd_per_gpu_hour")

#: The sections of the page, top to bottom: (frame, title, columns, money columns, ...).
SECTIONS: tuple[Section, ...] = (
    Section("costs_by_cloud", "Costs by cloud", ("cloud", *_COST_COLUMNS), _COST_MONEY,
            chart="costs_by_cloud"),
    Section("costs_by_gpu_type", "Costs by GPU type", ("gpu_type", *_COST_COLUMNS), _COST_MONEY,
            chart="costs_by_gpu_type"),
    Section("costs_by_tag", "Costs by tag", ("tag", *_COST_COLUMNS), _COST_MONEY,
            note="An instance with two tags counts in both rows."),
    Section("costs_by_service", "Costs by service", ("service", *_COST_COLUMNS), _COST_MONEY),
    Section("budgets", "Budgets", ("budget", "measure", "where", "value", "limit",
                                   "share_of_limit", "breached")),
    Section("quality", "Findings", ("severity", "check", "kind", "resource_id", "message")),
    Section("gpu_inventory", "GPU inventory",
            ("gpu_type", "instances", "gpus", "gpus_running", "gpus_pending", "total_vram_gb",
             "hourly_usd", "usd_per_gpu_hour", "clouds", "regions"),
            ("hourly_usd", "usd_per_gpu_hour"), chart="gpu_inventory"),
    Section("savings", "The same GPUs elsewhere",
            ("shade_instance_type", "gpus_running", "usd_per_gpu_hour", "market_usd_per_gpu_hour",
             "market_cloud", "market_region", "monthly_saving_usd", "spot_usd_per_gpu_hour",
             "spot_cloud", "spot_region"),
            ("usd_per_gpu_hour", "market_usd_per_gpu_hour", "monthly_saving_usd",
             "spot_usd_per_gpu_hour"), chart="savings",
            note="The cheapest available offer with the same GPU type and count, any cloud or "
                 "region. A saving is what moving would save (the chart's title sums the "
                 "positive ones, as summary does); a negative saving: we already pay less."),
    Section("market_prices", "Marketplace prices per GPU-hour",
            ("day", "gpu_type", "rental_type", "offers", "share_available",
             "cheapest_usd_per_gpu_hour", "median_usd_per_gpu_hour"),
            ("cheapest_usd_per_gpu_hour", "median_usd_per_gpu_hour"), rows=60, newest=True),
    Section("clusters_summary", "Clusters",
            ("name", "cloud", "region", "status", "instances", "running_instances", "gpus",
             "hourly_price_usd", "instances_hourly_usd", "accrued_usd", "reported_cost_usd"),
            ("hourly_price_usd", "instances_hourly_usd", "accrued_usd", "reported_cost_usd")),
    Section("lifecycle", "Instances",
            ("name", "cloud", "shade_instance_type", "status", "created_at", "provisioning_s",
             "boot_late", "billing_end_source", "billed_hours", "accrued_usd"),
            ("accrued_usd",), chart="provisioning"),
    Section("volumes", "Volumes (storage)",
            ("name", "cloud", "region", "size_in_gb", "mounted_by", "state",
             "price_per_gb_per_hour_usd", "billed_price_usd", "accrued_usd", "cost_estimate_usd"),
            ("billed_price_usd", "accrued_usd", "cost_estimate_usd"),
            rates=("price_per_gb_per_hour_usd",)),
    Section("timeline", "Status timeline",
            ("kind", "name", "cloud", "status", "start_at", "end_at", "duration_s"),
            chart="status_timeline", rows=0),
    Section("fleet_over_time", "Fleet over time",
            ("period_start", "running_instances", "running_gpus", "hourly_usd", "cost_usd"),
            ("hourly_usd", "cost_usd"), chart="fleet_over_time", rows=24, newest=True),
    Section("costs_daily", "Spend per day", ("period_start", "cloud", "cost_usd"),
            ("cost_usd",), chart="costs_daily", rows=40, newest=True),
    Section("costs_monthly", "Spend per month", ("period_start", "cloud", "cost_usd"),
            ("cost_usd",)),
)

#: Column headings for people; any other column shows its name with spaces.
_LABELS = {
    "running_instances": "running", "hourly_usd": "per hour", "monthly_usd": "per month",
    "accrued_usd": "accrued", "reported_cost_usd": "Shadeform estimate", "cost_gap_usd": "gap",
    "usd_per_gpu_hour": "per GPU-hour", "share_of_hourly": "share", "gpus_running": "running",
    "gpus_pending": "pending", "total_vram_gb": "VRAM (GB)", "hourly_price_usd": "price per hour",
    "instances_hourly_usd": "instances per hour", "shade_instance_type": "instance type",
    "provisioning_s": "provisioning", "boot_late": "late boot", "duration_s": "duration",
    "gpu_type": "GPU type", "gpus": "GPUs", "resource_id": "resource id",
    "running_gpus": "running GPUs", "cost_usd": "cost", "period_start": "period (UTC)",
    "market_usd_per_gpu_hour": "cheapest on-demand", "market_cloud": "cloud",
    "market_region": "region", "monthly_saving_usd": "saving per month",
    "spot_usd_per_gpu_hour": "cheapest spot", "spot_cloud": "spot cloud",
    "spot_region": "spot region", "share_available": "available",
    "cheapest_usd_per_gpu_hour": "cheapest per GPU-hour",
    "median_usd_per_gpu_hour": "median per GPU-hour", "day": "day (UTC)",
    "start_at": "from (UTC)", "end_at": "to (UTC)", "created_at": "created (UTC)",
    "size_in_gb": "size (GB)", "price_per_gb_per_hour_usd": "price per GB-hour",
    "billed_price_usd": "billed per hour", "cost_estimate_usd": "Shadeform estimate",
}


# -- formatting ---------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _kind(series: pd.Series, column: str, money: Sequence[str],
          rates: Sequence[str] = ()) -> str:
    dtype = series.dtype
    if column in money:
        return "usd"
    if column in rates:
        return "rate"
    if column.startswith("share_"):
        return "share"
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return "time"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "duration" if column.endswith("_s") else "float"
    return "text"


_FORMATS: dict[str, Callable[[Any], str]] = {
    "usd": usd,
    "rate": lambda v: usd(v, rate=True),
    "share": lambda v: f"{v:.1%}",
    "time": lambda v: v.strftime("%Y-%m-%d %H:%M"),
    "bool": lambda v: "yes" if v else "no",
    "int": lambda v: f"{int(v):,}",
    "float": lambda v: f"{v:,.2f}",
    "duration": _duration,
    "text": str,
}
_NUMERIC = {"usd", "rate", "share", "int", "float", "duration"}


def _cell(value: object, kind: str) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return _FORMATS[kind](value)


# -- the page's content -------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    """A headline figure as shown: the value (the column's sum), its text and unit."""

    label: str
    value: float
    text: str
    unit: str
    frame: str
    column: str
    note: str = ""  # e.g. "unknown for 2 instances"


def headline(frames: Mapping[str, pd.DataFrame]) -> list[Figure]:
    """The page's headline figures: each ``HEADLINE`` entry whose frame and column exist.

    Example::

        >>> costs = pd.DataFrame({"cloud": ["a", "b"], "hourly_usd": [1.5, 2.25]})
        >>> [(f.label, f.text) for f in headline({"costs_by_cloud": costs})]
        [('Burn rate', '$3.75')]

    Each value is the sum of the column over the frame's rows (NA skipped; ``unknown`` when
    every row is NA), the same rows as that frame's CSV file: the one place the page's totals
    come from. Where the frame counts members whose value is unknown, ``note`` says so
    ("unknown for N instances"), as ``summary`` does.
    """
    figures = []
    for item in HEADLINE:
        frame = frames.get(item.frame)
        if frame is None or item.column not in frame.columns:
            continue
        value = float(frame[item.column].astype("float64").sum(min_count=1))
        if math.isnan(value):
            text = "unknown"
        elif item.money:
            text = usd(value)
        else:
            text = f"{value:,.0f}"
        note = ""
        if item.unknown is not None and item.unknown in frame.columns:
            n = int(frame[item.unknown].sum())
            note = f"unknown for {n} instance{'s' * (n != 1)}" if n else ""
        figures.append(Figure(item.label, value, text, item.unit, item.frame, item.column,
                              note))
    return figures


def _table(section: Section, frame: pd.DataFrame) -> dict[str, object]:
    columns = [c for c in section.columns if c in frame.columns]
    shown = frame.tail(section.rows) if section.newest else frame.head(section.rows)
    kinds = [_kind(frame[c], c, section.money, section.rates) for c in columns]
    rows = [[(_cell(v, k), k in _NUMERIC) for v, k in zip(values, kinds, strict=True)]
            for values in shown[columns].itertuples(index=False, name=None)]
    return {
        "headings": [(_LABELS.get(c, c.replace("_", " ")), c, k in _NUMERIC)
                     for c, k in zip(columns, kinds, strict=True)],
        "rows": rows,
        "total": len(frame),
    }


def _page_text(value: object) -> object:
    return for_page(value) if isinstance(value, str) else value


def _environment() -> jinja2.Environment:
    # autoescape everything: every value on the page is a name someone else chose; and every
    # text goes through for_page first (no NUL or ESC in the file, valid XML)
    return jinja2.Environment(loader=jinja2.PackageLoader("shadeanalytics.output", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, finalize=_page_text)


def render_html(frames: Mapping[str, pd.DataFrame], *, as_of: pd.Timestamp,
                charts: Mapping[str, str] | None = None, files: Sequence[str] = (),
                notices: Sequence[str] = ()) -> str:
    """The page for ``frames`` (report frames by name) at ``as_of``, as HTML text.

    ``charts`` maps chart names to SVG documents (``plots.chart_svgs``; None or empty for a
    page without pictures); ``files`` are the names of the report's files in the page's
    folder: a table links its CSV file when it is among them, and the page ends with the list.
    ``notices`` open the headline: what its totals rest on (``report.trust_notes``: the
    staleness first).
    """
    charts = charts or {}
    names = set(files)
    sections = []
    for section in SECTIONS:
        frame = frames.get(section.frame)
        if frame is None:
            continue
        svg = charts.get(section.chart) if section.chart else None
        csv = f"{section.frame}.csv"
        png = f"{section.chart}.png"
        sections.append({
            "id": section.frame, "title": section.title, "note": section.note,
            "csv": csv if csv in names else None,
            "png": png if svg and png in names else None,
            "chart": base64.b64encode(svg.encode("utf-8")).decode("ascii") if svg else None,
            "table": _table(section, frame), "rows": section.rows, "newest": section.newest,
        })
    return _environment().get_template("report.html.j2").render(
        as_of=as_of.strftime("%Y-%m-%d %H:%M UTC"), version=__version__,
        headline=headline(frames), sections=sections, files=list(files),
        notices=list(notices))


def write_html(frames: Mapping[str, pd.DataFrame], out: str | os.PathLike[str], *,
               as_of: pd.Timestamp, charts: Mapping[str, str] | None = None,
               files: Sequence[str | os.PathLike[str]] = (),
               notices: Sequence[str] = ()) -> Path:
    """Write ``out/index.html`` (``render_html``) atomically; returns its path."""
    names = [Path(f).name for f in files]
    return write_text(render_html(frames, as_of=as_of, charts=charts, files=names,
                                  notices=notices),
                      Path(out) / "index.html")
