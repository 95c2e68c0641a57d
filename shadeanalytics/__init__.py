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

from . import config as _config
from ._common import usd as format_usd
from ._compat import deprecated as _deprecated
from ._version import __version__ as __version__
from .analytics.alerts import Budget
from .analytics.alerts import parse_budgets as _parse_budgets
from .analytics.billing import Bill, bill_fleet
from .analytics.costs import cluster_summary, cost_breakdown
from .analytics.finops import cost_over_time, month_forecast
from .analytics.inventory import gpu_inventory
from .analytics.lifecycle import boot_stats, instance_lifecycle
from .analytics.market import market_compare, potential_monthly_saving_usd, price_history
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
    "Budget",
    "ClientPolicy",
    "DataWarning",
    "InputError",
    "InvalidJSONError",
    "SchemaError",
    "ShadeanalyticsError",
    "ShadeformClient",
    "Store",
    "Tables",
    "bill_fleet",
    "boot_stats",
    "cluster_summary",
    "collect",
    "cost_breakdown",
    "cost_over_time",
    "fleet_over_time",
    "format_usd",
    "gpu_inventory",
    "instance_lifecycle",
    "load_budgets",
    "market_compare",
    "month_forecast",
    "plot_cost_breakdown",
    "plot_cost_over_time",
    "plot_fleet_over_time",
    "plot_gpu_inventory",
    "plot_provisioning",
    "plot_status_timeline",
    "potential_monthly_saving_usd",
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
]


def sample_path() -> _Path:
    """The bundled sample fleet (four days of snapshots, see data/README.md), shipped inside
    the package: ``sa.read(sa.sample_path())`` works wherever the toolkit is installed."""
    return _Path(__file__).resolve().parent / "sample"


def load_budgets(path: str | _Path) -> list[Budget]:
    """The ``[[budget]]`` rules of the TOML budgets file ``path`` (for ``write_report(...,
    budgets=)`` and ``shadeanalytics check``): read by ``config.read_budgets_file``, checked
    by ``analytics.alerts.parse_budgets``; a ``BudgetFileError`` names the file, the rule and
    the key, never the value."""
    return _parse_budgets(_config.read_budgets_file(path), source=path)


#: Old top-level names, kept for one release (a ``DeprecationWarning`` on use): old -> new.
_RENAMED = {
    "bill": "bill_fleet",
    "lifecycle": "instance_lifecycle",
    "total_monthly_saving": "potential_monthly_saving_usd",
    "usd": "format_usd",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name], __name__), name)
    if name in _RENAMED:
        _deprecated(f"shadeanalytics.{name}", f"shadeanalytics.{_RENAMED[name]}")
        if name == "bill":  # its old signature (as_of positional) warns once more on call
            return _importlib.import_module(".analytics.billing", __name__).bill
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
