"""shadeanalytics: Shadeform GPU fleet responses as typed pandas DataFrames.

One import gives the whole toolkit::

    import shadeanalytics as sa

    tables = sa.read(sa.sample_path())            # or your files, or sa.Store(path).read()
    sa.cost_breakdown(tables, by="cloud", as_of="2026-11-20T00:00:00Z")
    sa.plot_cost_breakdown(sa.cost_breakdown(tables, as_of="2026-11-20T00:00:00Z"))

The plot helpers load matplotlib on first use only, so a cron job that writes CSV files never
imports it; the live client and collector load requests on first use.
"""

from __future__ import annotations

import importlib as _importlib
from pathlib import Path as _Path
from typing import Any as _Any

from ._common import usd
from ._version import __version__ as __version__
from .analytics.billing import Bill, bill
from .analytics.costs import cluster_summary, cost_breakdown
from .analytics.finops import cost_over_time, month_forecast
from .analytics.inventory import gpu_inventory
from .analytics.lifecycle import boot_stats, lifecycle
from .analytics.market import market_compare, price_history, total_monthly_saving
from .analytics.quality import quality_checks
from .analytics.timeline import fleet_over_time, status_timeline, time_in_status
from .errors import (
    ApiError,
    DataWarning,
    InputError,
    InvalidJSONError,
    SchemaError,
    ShadeanalyticsError,
)
from .ingest.load import read, read_clusters, read_instance_types, read_instances
from .ingest.tables import Tables
from .live.store import Store
from .output.focus import write_focus
from .output.report import summary_text, write_report

#: Names imported on first use: the plot helpers (and matplotlib with them), and the live
#: client and collector (and requests with them), so a script that only reads files or the
#: store imports neither.
_LAZY = {
    "ClientPolicy": ".live.client",
    "ShadeformClient": ".live.client",
    "collect": ".live.collect",
    "plot_cost_breakdown": ".output.plots",
    "plot_cost_over_time": ".output.plots",
    "plot_fleet_over_time": ".output.plots",
    "plot_gpu_inventory": ".output.plots",
    "plot_provisioning": ".output.plots",
    "plot_status_timeline": ".output.plots",
}

__all__ = [
    "ApiError",
    "Bill",
    "ClientPolicy",
    "DataWarning",
    "InputError",
    "InvalidJSONError",
    "SchemaError",
    "ShadeanalyticsError",
    "ShadeformClient",
    "Store",
    "Tables",
    "bill",
    "boot_stats",
    "cluster_summary",
    "collect",
    "cost_breakdown",
    "cost_over_time",
    "fleet_over_time",
    "gpu_inventory",
    "lifecycle",
    "market_compare",
    "month_forecast",
    "plot_cost_breakdown",
    "plot_cost_over_time",
    "plot_fleet_over_time",
    "plot_gpu_inventory",
    "plot_provisioning",
    "plot_status_timeline",
    "price_history",
    "quality_checks",
    "read",
    "read_clusters",
    "read_instance_types",
    "read_instances",
    "sample_path",
    "status_timeline",
    "summary_text",
    "time_in_status",
    "total_monthly_saving",
    "usd",
    "write_focus",
    "write_report",
]


def sample_path() -> _Path:
    """The bundled sample fleet (four days of snapshots, see data/README.md), shipped inside
    the package: ``sa.read(sa.sample_path())`` works wherever the toolkit is installed."""
    return _Path(__file__).resolve().parent / "sample"


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
