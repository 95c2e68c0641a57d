"""shadeanalytics: Shadeform GPU fleet responses as typed pandas DataFrames.

One import gives the whole toolkit::

    import shadeanalytics as sa

    tables = sa.read(sa.sample_path())            # or your files, or sa.Store(path).read()
    sa.cost_breakdown(tables, by="cloud", as_of="2026-11-20T00:00:00Z")
    sa.plot_cost_breakdown(sa.cost_breakdown(tables, as_of="2026-11-20T00:00:00Z"))

The plot helpers load matplotlib on first use only, so a cron job that writes CSV files never
imports it.
"""

from __future__ import annotations

import importlib as _importlib
from pathlib import Path as _Path
from typing import Any as _Any

from .billing import Bill, bill
from .costs import cluster_summary, cost_breakdown
from .errors import (
    ApiError,
    DataWarning,
    InputError,
    InvalidJSONError,
    SchemaError,
    ShadeanalyticsError,
)
from .finops import cost_over_time, month_forecast
from .focus import write_focus
from .inventory import gpu_inventory
from .lifecycle import boot_stats, lifecycle
from .load import read, read_clusters, read_instance_types, read_instances
from .market import market_compare, price_history
from .quality import quality_checks
from .report import summary_text, write_report
from .store import Store
from .tables import Tables
from .timeline import fleet_over_time, status_timeline, time_in_status

#: The plot helpers, imported (with matplotlib) on first use.
_PLOTS = ("plot_cost_breakdown", "plot_cost_over_time", "plot_fleet_over_time",
          "plot_gpu_inventory", "plot_provisioning", "plot_status_timeline")

__all__ = sorted([
    "ApiError",
    "Bill",
    "DataWarning",
    "InputError",
    "InvalidJSONError",
    "SchemaError",
    "ShadeanalyticsError",
    "Store",
    "Tables",
    "bill",
    "boot_stats",
    "cluster_summary",
    "cost_breakdown",
    "cost_over_time",
    "fleet_over_time",
    "gpu_inventory",
    "lifecycle",
    "market_compare",
    "month_forecast",
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
    "write_focus",
    "write_report",
    *_PLOTS,
])

__version__ = "0.1.0"


def sample_path() -> _Path:
    """The bundled sample fleet (four days of snapshots, see data/README.md), shipped inside
    the package: ``sa.read(sa.sample_path())`` works wherever the toolkit is installed."""
    return _Path(__file__).resolve().parent / "sample"


def __getattr__(name: str) -> _Any:
    if name in _PLOTS:
        return getattr(_importlib.import_module(".plots", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
