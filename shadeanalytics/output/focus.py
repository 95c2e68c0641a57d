"""The FOCUS 1.3 (or 1.2) cost and usage dataset: one row per billed resource per charge
period.

FOCUS (the FinOps Foundation's FinOps Open Cost and Usage Specification) is the format FinOps
tools read. ``focus_rows`` spreads the billing model's billed intervals (``finops.billed_items``:
compute, the instances, and storage, the volumes) over hourly or daily charge periods with
``finops.cost_over_time``, so ``BilledCost`` adds up to the report's accrued total at the same
``as_of``. ``write_focus`` writes them as CSV and Parquet, a run of charge periods at a time
(``finops.cost_over_time_chunks``): any size, in bounded memory.

``FOCUS_COLUMNS`` is the column spec, written from the specification (the cost and usage
dataset's column pages, FOCUS 1.3): every mandatory column, the conditional and recommended
ones that apply to GPU rentals, each with its data type, whether it may be null and its
allowed values; then the ``x_`` columns of this export. ``FOCUS_1_3_CHANGES`` lists the
columns 1.3 added; without them it is the 1.2 spec (``focus_columns``). ``focus_problems``
checks a dataset against it, with the FinOps Foundation validator's rules it implements (the
hardening tier runs the validator itself: ``.ci/focus-validate``). The mapping of
Shadeform's fields is in docs/finops.md (FOCUS export).

Only allowlisted fields reach a row: names, ids, cloud, region, instance type, GPU
configuration, tags and dollars; never an IP, an SSH detail or anything of a launch
configuration.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from .._common import TimeLike, progress
from .._files import atomic_file, cannot_write
from ..analytics.billing import Bill, bill_fleet
from ..analytics.finops import billed_items, cost_over_time, cost_over_time_chunks
from ..errors import ReportError, StoreError
from ..ingest.schema import TIMESTAMP
from ..ingest.tables import Tables
from .csvout import csv_header, csv_lines

__all__ = [
    "CHUNK_ROWS",
    "FOCUS_1_3_CHANGES",
    "FOCUS_COLUMNS",
    "FOCUS_VERSION",
    "FOCUS_VERSIONS",
    "GRANULARITIES",
    "KEPT_ROWS",
    "REQUIRED_COLUMNS",
    "ROW_GROUP_ROWS",
    "SERVICE_SUBCATEGORIES",
    "FocusColumn",
    "FocusExport",
    "focus_arrow",
    "focus_columns",
    "focus_problems",
    "focus_row_bound",
    "focus_rows",
    "write_focus",
]

#: The FOCUS versions ``focus_rows`` writes (``--focus-version``), oldest first.
FOCUS_VERSIONS: tuple[str, ...] = ("1.2", "1.3")
#: The default: the newest.
FOCUS_VERSION = FOCUS_VERSIONS[-1]
#: ``--granularity`` and the length of its charge periods (a pandas offset alias).
GRANULARITIES: dict[str, str] = {"hourly": "1h", "daily": "1D"}
#: About how many rows ``write_focus`` makes and writes at a time (a run of whole charge
#: periods: memory stays bounded whatever the export's size).
CHUNK_ROWS = 100_000
#: The rows of a Parquet row group: pyarrow's own default (``write_table``), so a file written
#: a piece at a time is byte for byte the one written at once.
ROW_GROUP_ROWS = 1024 * 1024
#: The most rows ``write_focus`` keeps in memory for ``FocusExport.rows``.
KEPT_ROWS = 500_000
_FILE = "focus_cost_and_usage"


@dataclass(frozen=True)
class FocusColumn:
    """A column of the dataset: FOCUS data type (``Decimal``, ``String``, ``DateTime``,
    ``JSON``; ``Integer`` and ``Boolean`` for ``x_`` columns), feature level (``Mandatory``,
    ``Conditional``, ``Recommended``, ``Custom``), whether it may be null, its allowed values
    (empty: any)."""

    name: str
    type: str
    level: str
    nullable: bool
    allowed: tuple[str, ...] = ()


_CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
_SERVICE_CATEGORIES = (
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
)
#: Allowed ServiceSubcategory values of the service categories this export writes.
SERVICE_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "Compute": ("Containers", "End User Computing", "Quantum Compute", "Serverless Compute",
                "Virtual Machines", "Other (Compute)"),
    "Storage": ("Backup Storage", "Block Storage", "File Storage", "Object Storage",
                "Storage Platforms", "Other (Storage)"),
}

_M, _C, _R, _X = "Mandatory", "Conditional", "Recommended", "Custom"

#: The dataset's columns in order: FOCUS columns (alphabetical), then the ``x_`` ones.
FOCUS_COLUMNS: tuple[FocusColumn, ...] = (
    FocusColumn("BilledCost", "Decimal", _M, False),
    FocusColumn("BillingAccountId", "String", _M, False),
    FocusColumn("BillingAccountName", "String", _M, True),
    FocusColumn("BillingCurrency", "String", _M, False),
    FocusColumn("BillingPeriodEnd", "DateTime", _M, False),
    FocusColumn("BillingPeriodStart", "DateTime", _M, False),
    FocusColumn("ChargeCategory", "String", _M, False, _CHARGE_CATEGORIES),
    FocusColumn("ChargeClass", "String", _M, True, ("Correction",)),
    FocusColumn("ChargeDescription", "String", _M, True),
    FocusColumn("ChargeFrequency", "String", _R, False, ("One-Time", "Recurring", "Usage-Based")),
    FocusColumn("ChargePeriodEnd", "DateTime", _M, False),
    FocusColumn("ChargePeriodStart", "DateTime", _M, False),
    # no commitments on Shadeform: null on every row (the spec: null when CommitmentDiscountId
    # is); present because FOCUS's ConsumedQuantity rule reads it
    FocusColumn("CommitmentDiscountStatus", "String", _C, True, ("Used", "Unused")),
    FocusColumn("ConsumedQuantity", "Decimal", _C, True),
    FocusColumn("ConsumedUnit", "String", _C, True),
    FocusColumn("ContractedCost", "Decimal", _M, False),
    FocusColumn("ContractedUnitPrice", "Decimal", _C, True),
    FocusColumn("EffectiveCost", "Decimal", _M, False),
    FocusColumn("HostProviderName", "String", _M, False),
    FocusColumn("InvoiceId", "String", _R, True),  # the API has no invoices: null
    FocusColumn("InvoiceIssuerName", "String", _M, False),
    FocusColumn("ListCost", "Decimal", _M, False),
    FocusColumn("ListUnitPrice", "Decimal", _C, True),
    FocusColumn("PricingCategory", "String", _C, True, ("Standard", "Dynamic", "Committed",
                                                        "Other")),
    FocusColumn("PricingCurrency", "String", _C, False),
    FocusColumn("PricingCurrencyContractedUnitPrice", "Decimal", _C, True),
    FocusColumn("PricingCurrencyEffectiveCost", "Decimal", _C, False),
    FocusColumn("PricingCurrencyListUnitPrice", "Decimal", _C, True),
    FocusColumn("PricingQuantity", "Decimal", _M, True),
    FocusColumn("PricingUnit", "String", _M, True),
    FocusColumn("ProviderName", "String", _M, False),  # deprecated in 1.3, still mandatory
    FocusColumn("PublisherName", "String", _M, False),  # deprecated in 1.3, still mandatory
    FocusColumn("RegionId", "String", _C, True),
    FocusColumn("RegionName", "String", _C, True),
    FocusColumn("ResourceId", "String", _C, True),
    FocusColumn("ResourceName", "String", _C, True),
    FocusColumn("ResourceType", "String", _C, True),
    FocusColumn("ServiceCategory", "String", _M, False, _SERVICE_CATEGORIES),
    FocusColumn("ServiceName", "String", _M, False),
    FocusColumn("ServiceProviderName", "String", _M, False),
    FocusColumn("ServiceSubcategory", "String", _R, False,
                tuple(v for values in SERVICE_SUBCATEGORIES.values() for v in values)),
    FocusColumn("SkuId", "String", _C, True),
    FocusColumn("SkuMeter", "String", _C, True),
    FocusColumn("SkuPriceDetails", "JSON", _C, True),
    FocusColumn("SkuPriceId", "String", _C, True),
    FocusColumn("Tags", "JSON", _C, True),
    FocusColumn("x_ClusterId", "String", _X, True),
    FocusColumn("x_CloudInstanceType", "String", _X, True),
    FocusColumn("x_RentalType", "String", _X, True),
    FocusColumn("x_GpuType", "String", _X, True),
    FocusColumn("x_NumGpus", "Integer", _X, True),
    FocusColumn("x_VramPerGpuGb", "Integer", _X, True),
    FocusColumn("x_Interconnect", "String", _X, True),
    FocusColumn("x_Nvlink", "Boolean", _X, True),
    FocusColumn("x_GpuHours", "Decimal", _X, True),
    FocusColumn("x_VolumeSizeGb", "Integer", _X, True),
    FocusColumn("x_Basis", "String", _X, True),
)

#: What FOCUS 1.3 changed in the columns of ``FOCUS_COLUMNS`` (which is the 1.3 list): each
#: column 1.3 added, with the 1.2 column it renames (kept, deprecated: still mandatory in 1.3)
#: or None for a new one. A 1.2 dataset is ``FOCUS_COLUMNS`` without these.
FOCUS_1_3_CHANGES: dict[str, str | None] = {
    "HostProviderName": None,
    "ServiceProviderName": "ProviderName",
}


def focus_columns(version: str = FOCUS_VERSION) -> tuple[FocusColumn, ...]:
    """The column spec of FOCUS ``version`` (one of ``FOCUS_VERSIONS``), in order."""
    if version not in FOCUS_VERSIONS:
        raise ValueError(f"FOCUS version must be one of {', '.join(FOCUS_VERSIONS)}; "
                         f"got {version!r}")
    if version == "1.3":
        return FOCUS_COLUMNS
    return tuple(c for c in FOCUS_COLUMNS if c.name not in FOCUS_1_3_CHANGES)


_DTYPES = {"Decimal": "float64", "String": "string", "DateTime": TIMESTAMP, "JSON": "string",
           "Integer": "Int64", "Boolean": "boolean"}

#: What each service's rows say: ServiceName, ServiceCategory, ServiceSubcategory.
_SERVICES: dict[str, tuple[str, str, str]] = {
    "compute": ("GPU Instances", "Compute", "Virtual Machines"),
    "storage": ("Volumes", "Storage", "Block Storage"),
}


@dataclass(frozen=True)
class FocusExport:
    """What ``write_focus`` wrote: the files, how many rows and dollars, and the resources
    left out because their price is unknown (a FOCUS cost cannot be null)."""

    files: list[Path]
    #: rows written, the sum of their ``BilledCost``, and of it what is ``x_Basis``
    #: extrapolated (billed past the newest successful poll)
    row_count: int
    billed_usd: float
    extrapolated_usd: float
    unpriced: list[str]
    #: volumes Shadeform has charged for (a cost estimate above zero) that the billing model
    #: cannot place in time: first seen in an undated snapshot, their billing start is
    #: unknown, so they accrue nothing and have no row
    start_unknown: list[str] = field(default_factory=list)
    #: the rows, when ``write_focus`` kept them (``rows``)
    kept_rows: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def rows(self) -> pd.DataFrame:
        """The rows written (``focus_rows``), when kept: ``write_focus(keep_rows=True)``, the
        default, keeps up to ``KEPT_ROWS``; else a ``ReportError`` saying to read the files."""
        if self.kept_rows is None:
            raise ReportError(
                f"the {self.row_count:,} FOCUS rows were written, not kept in memory (more "
                f"than {KEPT_ROWS:,}, or keep_rows=False): read {self.files[-1]}")
        return self.kept_rows


def _tags(billed: Bill) -> dict[str, str]:
    """Each instance's tags as a FOCUS Tags object: Shadeform tags have no values, and FOCUS
    gives a valueless tag the value true."""
    tags = billed.instance_tags[["instance_id", "tag"]].dropna().drop_duplicates()
    return {str(iid): json.dumps(dict.fromkeys(sorted(map(str, group["tag"])), True),
                                 ensure_ascii=False, separators=(",", ":"))
            for iid, group in tags.groupby("instance_id", sort=False)}


#: What each service's SKUs meter (``SkuMeter``), and the unit its price and usage are in:
#: the catalogue prices an instance type per hour (``/instances/types``) and storage per GB
#: per hour (``/volumes/types``).
_METERS: dict[str, tuple[str, str]] = {
    "compute": ("Instance Usage", "Hours"),
    "storage": ("Storage Usage", "GB-Hours"),
}


def _price_details(billed: Bill, items: pd.DataFrame) -> dict[str, str]:
    """Each compute resource's ``SkuPriceDetails`` (``items``: one row per service and
    resource): the offer's hardware as a JSON object, FOCUS's property names (``CoreCount``,
    ``GpuCount``, ``InstanceType``, ``MemorySize``) and ``x_`` ones for the rest; properties
    the instance does not say are left out. Storage is priced per GB-hour whatever the
    volume: no details (null)."""
    config = billed.instances.drop_duplicates("instance_id", keep="first").set_index(
        "instance_id").reindex(columns=["vcpus", "memory_in_gb"])
    details: dict[str, str] = {}
    keys = ("CoreCount", "GpuCount", "InstanceType", "MemorySize", "x_GpuType",
            "x_VramPerGpuGb")
    compute = items[items["service"] == "compute"].drop_duplicates("resource_id")
    hardware = config.reindex(compute["resource_id"].astype(object))
    for rid, *values in zip(compute["resource_id"], hardware["vcpus"].astype(object),
                            compute["num_gpus"].astype(object),
                            compute["shade_instance_type"].astype(object),
                            hardware["memory_in_gb"].astype(object),
                            compute["gpu_type"].astype(object),
                            compute["vram_per_gpu_in_gb"].astype(object), strict=True):
        found = {k: (v if isinstance(v, str) else int(v)) for k, v in zip(keys, values,
                                                                            strict=True)
                 if v is not None and v is not pd.NA and not (isinstance(v, float)
                                                              and np.isnan(v))}
        details[str(rid)] = json.dumps(found, ensure_ascii=False, separators=(",", ":"))
    return details


def _text(values: pd.Series) -> np.ndarray:
    return values.astype("string").to_numpy(dtype=object, na_value=None)


def _description(items: pd.DataFrame) -> list[str]:
    """What was billed, in words: ``8 x H100 (H100x8) on crusoe, us-east-1, spot``, or
    ``500 GB volume on aws, us-east-1``."""
    out = []
    for service, gpus, gpu, kind, cloud, region, rental, size in zip(
            _text(items["service"]), items["num_gpus"].astype("object"),
            _text(items["gpu_type"]), _text(items["shade_instance_type"]),
            _text(items["cloud"]), _text(items["region"]), _text(items["rental_type"]),
            items["size_in_gb"].astype("object"), strict=True):
        where = ", ".join(v for v in (cloud, region) if v is not None) or "unknown cloud"
        if service == "storage":
            out.append(f"{'' if size is pd.NA else f'{size} GB '}volume on {where}")
            continue
        size_text = f"{gpus} x {gpu}" if gpu is not None and gpus is not pd.NA else "instance"
        what = f" ({kind})" if kind is not None else ""
        out.append(f"{size_text}{what} on {where}, "
                   f"{'spot' if rental == 'spot' else 'on demand'}")
    return out


def focus_rows(
    source: Tables | Bill,
    *,
    as_of: TimeLike = None,
    granularity: str = "hourly",
    billing_account: str = "shadeform",
    focus_version: str = FOCUS_VERSION,
) -> pd.DataFrame:
    """The FOCUS cost and usage rows of ``source`` billed at ``as_of`` (default: the newest poll).

    One row per billed resource per ``granularity`` (``hourly`` or ``daily``) charge period
    it was billed in: ``ChargePeriodStart`` (inclusive) and ``ChargePeriodEnd`` (exclusive)
    are the period's bounds in UTC, ``BilledCost`` (= ``ListCost`` = ``ContractedCost`` =
    ``EffectiveCost``: Shadeform has no discounts or commitments) the hours billed inside it
    at the billed price; so the ``BilledCost`` of all rows adds up to ``cost_breakdown``'s
    accrued total. ``PricingQuantity`` and ``ConsumedQuantity`` are those hours for an
    instance (``PricingUnit`` ``Hours``, ``ListUnitPrice`` its hourly price) and GB-hours for
    a volume (``GB-Hours``, its price per GB-hour), as the catalogue prices them. The billing
    period is the calendar month. ``billing_account`` names the account (the API has none).
    A resource billed at an unknown price has no row (a FOCUS cost is never null):
    ``write_focus`` counts them. ``focus_version`` (``FOCUS_VERSIONS``) picks the columns:
    ``focus_columns(focus_version)``.

    Returns:
        DataFrame with the columns of ``focus_columns(focus_version)``, in order (dtypes:
        Decimal float64,
        DateTime UTC, String and JSON string, Integer Int64, Boolean boolean), sorted by
        ``ChargePeriodStart`` then ``ResourceId``.
    """
    context = _context(source, as_of=as_of, granularity=granularity,
                       billing_account=billing_account, focus_version=focus_version)
    return _frame(context, cost_over_time(context.billed, freq=context.freq, by=_BY))


#: The keys the spend is spread by: one row per basis too (time after the newest successful
#: poll is marked extrapolated).
_BY = ("service", "resource_id", "basis")


@dataclass(frozen=True)
class _Context:
    """What every piece of an export shares: the bill and each resource's fields."""

    billed: Bill
    spec: tuple[FocusColumn, ...]
    freq: str
    billing_account: str
    items: pd.DataFrame  # one row per (service, resource_id), its index
    tags: dict[str, str]
    details: dict[str, str]


def _context(source: Tables | Bill, *, as_of: TimeLike, granularity: str,
             billing_account: str, focus_version: str) -> _Context:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; "
                         f"got {granularity!r}")
    spec = focus_columns(focus_version)
    billed = bill_fleet(source, as_of=as_of)
    items = billed_items(billed).drop_duplicates(["service", "resource_id"])
    return _Context(billed=billed, spec=spec, freq=GRANULARITIES[granularity],
                    billing_account=billing_account,
                    items=items.set_index(["service", "resource_id"]), tags=_tags(billed),
                    details=_price_details(billed, items))


def _frame(context: _Context, spent: pd.DataFrame) -> pd.DataFrame:
    """The FOCUS rows of ``spent`` (``cost_over_time`` by ``_BY``, or a piece of it)."""
    spec, freq, billing_account = context.spec, context.freq, context.billing_account
    spent = spent[spent["unpriced_hours"] == 0].reset_index(drop=True)
    rows = context.items.reindex(pd.MultiIndex.from_frame(spent[["service", "resource_id"]]))
    rows = rows.reset_index()
    service = [_SERVICES[s] for s in rows["service"]]
    start = spent["period_start"]
    month = start.dt.tz_convert(None).dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
    hours = spent["billed_hours"].to_numpy(dtype="float64")
    cost = spent["cost_usd"].to_numpy(dtype="float64")
    price = rows["billed_price_usd"].to_numpy(dtype="float64")
    storage = (rows["service"] == "storage").to_numpy(dtype=bool)
    # a volume's hourly price is its size times the catalogue's price per GB-hour: FOCUS
    # prices it per GB-hour, so the unit price and quantity multiply back to the same cost
    size = rows["size_in_gb"].astype("float64").to_numpy(na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_price = np.where(storage, price / size, price)
    quantity = np.where(storage, hours * size, hours)
    meter = np.array([_METERS[s] for s in rows["service"]], dtype=object).reshape(-1, 2)
    spot = (rows["rental_type"] == "spot").fillna(False).to_numpy(dtype=bool)
    gpus = rows["num_gpus"].astype("Int64")
    resource_type = np.where(storage, "Volume", np.where(
        gpus.isna().to_numpy(), "Instance",
        np.where(gpus.fillna(0).to_numpy() > 0, "GPU Instance", "CPU Instance")))
    cloud = rows["cloud"].astype("string")
    sku = cloud + ":" + rows["shade_instance_type"].astype("string").where(~storage, "volume")
    price_id = sku + pd.Series(np.where(spot, ":spot", ":on-demand"), index=rows.index).where(
        ~storage, ":" + rows["region"].astype("string"))
    sku_text = _text(sku)
    tags, details = context.tags, context.details
    n = len(rows)
    columns: dict[str, Any] = {
        "BilledCost": cost,
        "BillingAccountId": [billing_account] * n,
        "BillingAccountName": [billing_account] * n,
        "BillingCurrency": ["USD"] * n,
        "BillingPeriodEnd": month + pd.offsets.MonthBegin(1),
        "BillingPeriodStart": month,
        "ChargeCategory": ["Usage"] * n,
        "ChargeClass": [None] * n,
        "ChargeDescription": _description(rows),
        "ChargeFrequency": ["Usage-Based"] * n,
        "ChargePeriodEnd": start + pd.tseries.frequencies.to_offset(freq),
        "ChargePeriodStart": start,
        "CommitmentDiscountStatus": [None] * n,
        "ConsumedQuantity": quantity,
        "ConsumedUnit": meter[:, 1],
        "ContractedCost": cost,
        "ContractedUnitPrice": unit_price,
        "EffectiveCost": cost,
        "HostProviderName": _text(rows["cloud"]),
        "InvoiceId": [None] * n,
        "InvoiceIssuerName": ["Shadeform"] * n,
        "ListCost": cost,
        "ListUnitPrice": unit_price,
        "PricingCategory": np.where(spot, "Dynamic", "Standard"),
        # prices are in the billing currency: the PricingCurrency columns repeat them
        "PricingCurrency": ["USD"] * n,
        "PricingCurrencyContractedUnitPrice": unit_price,
        "PricingCurrencyEffectiveCost": cost,
        "PricingCurrencyListUnitPrice": unit_price,
        "PricingQuantity": quantity,
        "PricingUnit": meter[:, 1],
        "ProviderName": ["Shadeform"] * n,
        "PublisherName": _text(rows["cloud"]),
        "RegionId": _text(rows["region"]),
        "RegionName": _text(rows["region"]),
        "ResourceId": _text(rows["resource_id"]),
        "ResourceName": _text(rows["name"]),
        "ResourceType": resource_type,
        "ServiceCategory": [s[1] for s in service],
        "ServiceName": [s[0] for s in service],
        "ServiceProviderName": ["Shadeform"] * n,
        "ServiceSubcategory": [s[2] for s in service],
        "SkuId": sku_text,
        # null exactly where the SKU (price) id is, as FOCUS wants
        "SkuMeter": [None if s is None else m for s, m in zip(sku_text, meter[:, 0],
                                                              strict=True)],
        "SkuPriceDetails": [None if p is None or v != "compute" else details.get(str(r))
                            for p, v, r in zip(_text(price_id), rows["service"],
                                               rows["resource_id"], strict=True)],
        "SkuPriceId": _text(price_id),
        "Tags": [tags.get(str(r)) for r in rows["resource_id"]],
        "x_ClusterId": _text(rows["cluster_id"]),
        "x_CloudInstanceType": _text(rows["cloud_instance_type"]),
        "x_RentalType": _text(rows["rental_type"]),
        "x_GpuType": _text(rows["gpu_type"]),
        "x_NumGpus": gpus.to_numpy(),
        "x_VramPerGpuGb": rows["vram_per_gpu_in_gb"].astype("Int64").to_numpy(),
        "x_Interconnect": _text(rows["interconnect"]),
        "x_Nvlink": rows["nvlink"].astype("boolean").to_numpy(),
        "x_GpuHours": gpus.astype("float64").to_numpy(na_value=np.nan) * hours,
        "x_VolumeSizeGb": rows["size_in_gb"].astype("Int64").to_numpy(),
        "x_Basis": _text(spent["basis"]),
    }
    frame = pd.DataFrame({c.name: columns[c.name] for c in spec})
    frame = frame.astype({c.name: _DTYPES[c.type] for c in spec})
    return frame.sort_values(["ChargePeriodStart", "ResourceId"], kind="stable").reset_index(
        drop=True)


# -- checking a dataset against the spec --------------------------------------------------------

_CURRENCY = re.compile(r"[A-Z]{3}")
_UNIT_PRICES = ("ListUnitPrice", "ContractedUnitPrice", "PricingCurrencyListUnitPrice",
                "PricingCurrencyContractedUnitPrice")
#: Conditional columns a Shadeform dataset must have: the FOCUS 1.2 conditions of these
#: columns apply to it (a public price list with unit prices, usage measured, regions,
#: resources with types, tags, several pricing categories), and the validator wants
#: ``CommitmentDiscountStatus`` (null here) and the ``PricingCurrency`` prices whatever
#: the conditions.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "CommitmentDiscountStatus", "ConsumedQuantity", "ConsumedUnit", "ListUnitPrice",
    "PricingCategory", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "RegionId", "RegionName", "ResourceId", "ResourceName",
    "ResourceType", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "Tags",
)


def _is_utc(series: pd.Series) -> bool:
    dtype = series.dtype
    return isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"


def _type_problem(column: FocusColumn, values: pd.Series) -> str | None:
    """Why the non-null ``values`` are not of the column's type, or None."""
    if column.type == "DateTime":
        return None if _is_utc(values) else f"is {values.dtype}, not UTC date/times"
    if column.type in ("Decimal", "Integer"):
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
                values.dtype):
            return f"is {values.dtype}, not numeric"
        numbers = values.dropna().astype("float64")
        if not np.isfinite(numbers.to_numpy()).all():
            return "holds a non-finite number"
        if column.type == "Integer" and not (numbers == numbers.round()).all():
            return "holds a fraction"
        return None
    if column.type == "Boolean":
        # pandas reads a nullable Parquet bool back as object: True/False and None
        if pd.api.types.is_bool_dtype(values.dtype) or all(
                isinstance(v, bool | np.bool_) for v in values):
            return None
        return f"is {values.dtype}"
    texts = values.dropna()
    # a string column holds text only; another is looked at value by value
    if not isinstance(texts.dtype, pd.StringDtype) and not all(
            isinstance(v, str) for v in texts):
        return "holds a value that is not text"
    if column.type == "JSON":
        # each distinct text once, in the order of first appearance (the same first problem)
        for text in pd.unique(texts.to_numpy(dtype=object)):
            try:
                parsed = json.loads(text)
            except ValueError:
                return "holds text that is not JSON"
            if not isinstance(parsed, dict):
                return "holds JSON that is not an object"
    return None


def focus_problems(frame: pd.DataFrame,
                   spec: tuple[FocusColumn, ...] = FOCUS_COLUMNS) -> list[str]:
    """What in ``frame`` breaks the FOCUS column spec (empty: nothing).

    Checks every mandatory column is present, FOCUS columns come before ``x_`` ones, each
    column's type, nulls and allowed values, and the rules between columns this dataset
    relies on: a charge period ends after it starts, ``BillingCurrency`` is an ISO 4217 code,
    ``PricingUnit`` is null exactly when ``PricingQuantity`` is (and ``ConsumedUnit`` when
    ``ConsumedQuantity`` is), ``SkuMeter`` and ``SkuPriceDetails`` are null where ``SkuId``
    and ``SkuPriceId`` are, a ``ServiceSubcategory`` belongs to its ``ServiceCategory``,
    ``SkuPriceId``, ``PricingCategory``, ``ConsumedQuantity`` and the unit prices are set on
    usage, unit prices are not negative, and ``ListUnitPrice * PricingQuantity == ListCost``
    (to $0.000001). Each of these rules is one of the FinOps Foundation validator's (its FOCUS
    1.2 rules; the hardening tier runs it), which also wants the columns of
    ``REQUIRED_COLUMNS`` present.
    """
    problems = []
    names = list(frame.columns)
    missing = [c.name for c in spec if c.level == _M and c.name not in names]
    if missing:
        problems.append(f"missing mandatory column(s): {', '.join(missing)}")
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        problems.append(f"missing column(s) this dataset's criteria require: "
                        f"{', '.join(missing)}")
    custom = [i for i, n in enumerate(names) if n.startswith("x_")]
    if custom and any(not n.startswith("x_") for n in names[custom[0]:]):
        problems.append("a FOCUS column comes after an x_ column")
    for column in spec:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        nulls = values.isna()
        if not column.nullable and nulls.any():
            problems.append(f"{column.name}: {int(nulls.sum())} null value(s)")
        present = values[~nulls.to_numpy(dtype=bool)]
        why = _type_problem(column, present) if len(present) else None
        if why:
            problems.append(f"{column.name}: {why} (FOCUS type {column.type})")
        if column.allowed:
            bad = sorted(set(map(str, present)) - set(column.allowed))
            if bad:
                problems.append(f"{column.name}: {len(bad)} value(s) not allowed")
    problems += _row_rules(frame)
    return problems


def _row_rules(frame: pd.DataFrame) -> list[str]:
    problems = []

    def has(*names: str) -> bool:
        return all(n in frame.columns for n in names)

    if (has("ChargePeriodStart", "ChargePeriodEnd") and _is_utc(frame["ChargePeriodStart"])
            and _is_utc(frame["ChargePeriodEnd"])
            and (frame["ChargePeriodEnd"] <= frame["ChargePeriodStart"]).any()):
        problems.append("ChargePeriodEnd: not after ChargePeriodStart")
    if has("BillingCurrency"):
        codes = frame["BillingCurrency"].dropna().astype(str)
        if not codes.map(lambda c: bool(_CURRENCY.fullmatch(c))).all():
            problems.append("BillingCurrency: not an ISO 4217 code")
    if has("PricingQuantity", "PricingUnit") and (
            frame["PricingQuantity"].isna() != frame["PricingUnit"].isna()).any():
        problems.append("PricingUnit: null where PricingQuantity is not, or the reverse")
    for quantity, unit in (("ConsumedQuantity", "ConsumedUnit"), ("SkuId", "SkuMeter"),
                           ("SkuPriceId", "SkuPriceDetails")):
        if has(quantity, unit) and (frame[quantity].isna() & frame[unit].notna()).any():
            problems.append(f"{unit}: set where {quantity} is null")
    if has("ConsumedQuantity", "ConsumedUnit") and (
            frame["ConsumedQuantity"].notna() & frame["ConsumedUnit"].isna()).any():
        problems.append("ConsumedUnit: null where ConsumedQuantity is not")
    for name in _UNIT_PRICES:
        if has(name) and pd.api.types.is_numeric_dtype(frame[name].dtype) and (
                frame[name] < 0).fillna(False).any():
            problems.append(f"{name}: negative")
    if has("ServiceCategory", "ServiceSubcategory"):
        pairs = zip(frame["ServiceCategory"].astype(object), frame["ServiceSubcategory"],
                    strict=True)
        if any(sub not in SERVICE_SUBCATEGORIES.get(str(cat), ()) for cat, sub in pairs):
            problems.append("ServiceSubcategory: not a subcategory of its ServiceCategory")
    if has("ChargeCategory", "ChargeClass"):
        usage = ((frame["ChargeCategory"] == "Usage") & frame["ChargeClass"].isna()).fillna(
            False).to_numpy(dtype=bool)
        for name in ("SkuPriceId", "PricingCategory", "ConsumedQuantity", *_UNIT_PRICES):
            if has(name) and frame[name][usage].isna().any():
                problems.append(f"{name}: null on a usage charge")
    if has("ListUnitPrice", "PricingQuantity", "ListCost"):
        product = frame["ListUnitPrice"].astype("float64") * frame["PricingQuantity"].astype(
            "float64")
        off = (product - frame["ListCost"].astype("float64")).abs() > 1e-6
        if off.fillna(False).any():
            problems.append("ListCost: not ListUnitPrice x PricingQuantity")
    return problems


# -- writing ------------------------------------------------------------------------------------


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise StoreError("the FOCUS export writes Parquet with pyarrow: pip install "
                         "'shadeanalytics[parquet]'") from None
    return pa, pq


def focus_arrow(frame: pd.DataFrame, focus_version: str = FOCUS_VERSION) -> Any:
    """``frame`` (``focus_rows``, or a piece of them) as the ``pyarrow.Table`` the Parquet
    file holds: FOCUS types as Arrow's (``Decimal`` float64, ``DateTime`` timestamp[us, UTC],
    ``String`` and ``JSON`` string, ``Integer`` int64, ``Boolean`` bool), every column
    nullable, ``focus_version`` in the schema's metadata."""
    pa, _ = _pyarrow()
    schema = _schema(focus_version)
    arrays = [pa.array(frame[f.name], type=f.type, from_pandas=True) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _schema(focus_version: str) -> Any:
    pa, _ = _pyarrow()
    types = {"Decimal": pa.float64(), "String": pa.string(), "JSON": pa.string(),
             "DateTime": pa.timestamp("us", tz="UTC"), "Integer": pa.int64(),
             "Boolean": pa.bool_()}
    fields = [pa.field(c.name, types[c.type], nullable=True)
              for c in focus_columns(focus_version)]
    return pa.schema(fields, metadata={b"focus_version": focus_version.encode()})


class _ParquetParts:
    """A Parquet file written a piece at a time: row groups of ``ROW_GROUP_ROWS`` (pyarrow's
    own default), so the file is byte for byte what ``pyarrow.parquet.write_table`` writes
    of all the rows at once. A group's rows are held as Arrow arrays (about 0.9 KB a row)
    and made contiguous a column at a time when it is written (a writer fed chunked columns
    falls back from dictionary encoding at other rows: other bytes)."""

    def __init__(self, handle: BinaryIO, focus_version: str) -> None:
        self._pa, pq = _pyarrow()
        self._version = focus_version
        self._schema = _schema(focus_version)
        self._writer = pq.ParquetWriter(handle, self._schema, compression="zstd")
        self._columns: list[list[Any]] = [[] for _ in self._schema]
        self._held = 0
        self._written = False

    def add(self, frame: pd.DataFrame) -> None:
        while len(frame):
            take = min(len(frame), ROW_GROUP_ROWS - self._held)
            piece = focus_arrow(frame.iloc[:take] if take < len(frame) else frame,
                                self._version)
            for parts, column in zip(self._columns, piece.columns, strict=True):
                parts.extend(column.chunks)
            self._held += take
            frame = frame.iloc[take:]
            if self._held == ROW_GROUP_ROWS:
                self._flush()

    def _flush(self) -> None:
        arrays = []
        for i, spec in enumerate(self._schema):
            parts, self._columns[i] = self._columns[i], []
            arrays.append(self._pa.concat_arrays(parts) if parts
                          else self._pa.array([], type=spec.type))
            del parts
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema),
                                 row_group_size=ROW_GROUP_ROWS)
        self._held = 0
        self._written = True

    def abandon(self) -> None:
        """Close the writer of a file that will not be kept (its bytes are thrown away)."""
        with contextlib.suppress(Exception):
            self._writer.close()

    def close(self) -> None:
        if self._held or not self._written:  # an empty dataset is one empty row group
            self._flush()
        self._writer.close()


def write_focus(
    source: Tables | Bill,
    out_dir: str | os.PathLike[str],
    *,
    as_of: TimeLike = None,
    granularity: str = "hourly",
    billing_account: str = "shadeform",
    focus_version: str = FOCUS_VERSION,
    keep_rows: bool = True,
) -> FocusExport:
    """Write the FOCUS rows of ``source`` (``focus_rows``) to ``out_dir``.

    ``focus_cost_and_usage.parquet`` (needs pyarrow: ``StoreError`` naming the extra when it
    is missing, before anything is written) and ``focus_cost_and_usage.csv`` (dates as
    ``2026-11-20T00:00:00Z``, formula-safe cells as every CSV of the toolkit), each written
    atomically: a crash leaves the previous file or the new one. ``focus_version``: the FOCUS
    version of the columns (kept in the Parquet's ``focus_version`` metadata).

    Any size: the rows are made and written a run of charge periods at a time (about
    ``CHUNK_ROWS`` rows; ``finops.cost_over_time_chunks``), so memory stays bounded; the files
    are byte for byte those of the whole frame written at once. A progress bar shows on a
    terminal when it takes long. ``keep_rows``: keep the rows in ``FocusExport.rows`` when
    there are at most ``KEPT_ROWS`` of them (the command line keeps none).
    """
    _pyarrow()  # before anything is read or written
    context = _context(source, as_of=as_of, granularity=granularity,
                       billing_account=billing_account, focus_version=focus_version)
    billed = context.billed
    out = Path(out_dir)
    csv_path, parquet_path = out / f"{_FILE}.csv", out / f"{_FILE}.parquet"
    columns = [c.name for c in context.spec]
    kept: list[pd.DataFrame] | None = [] if keep_rows else None
    count, costs, extrapolated = 0, [], []
    unpriced: set[str] = set()  # billed at an unknown price: no row
    with (progress(focus_row_bound(billed, granularity), f"{granularity} FOCUS rows",
                   unit="row") as bar,
          atomic_file(csv_path) as csv_file, atomic_file(parquet_path) as parquet_file):
        parquet = _ParquetParts(parquet_file, focus_version)
        try:
            _write(csv_file, csv_header(columns), csv_path)
            for spent in cost_over_time_chunks(billed, freq=context.freq, by=_BY,
                                               max_rows=CHUNK_ROWS):
                unpriced.update(spent.loc[spent["unpriced_hours"] > 0, "resource_id"])
                rows = _frame(context, spent)
                _write(csv_file, csv_lines(rows, columns), csv_path)
                parquet.add(rows)
                count += len(rows)
                cost = rows["BilledCost"].to_numpy(dtype="float64")
                costs.append(math.fsum(cost))
                extrapolated.append(math.fsum(cost[(rows["x_Basis"] == "extrapolated").fillna(
                    False).to_numpy(dtype=bool)]))
                if kept is not None:
                    kept.append(rows)
                    if count > KEPT_ROWS:
                        kept = None
                bar.update(len(rows))
        except BaseException:
            parquet.abandon()
            raise
        parquet.close()
    volumes = billed.volumes
    unplaced = (volumes["billed_hours"].fillna(0) <= 0) & (
        volumes["cost_estimate_usd"].fillna(0) > 0)
    start_unknown = sorted(set(volumes.loc[unplaced.to_numpy(dtype=bool), "volume_id"].astype(
        str)))
    whole = None
    if kept is not None:
        whole = (pd.concat(kept, ignore_index=True) if kept
                 else _frame(context, cost_over_time(billed, freq=context.freq, by=_BY)))
    return FocusExport(files=[csv_path, parquet_path], row_count=count,
                       billed_usd=math.fsum(costs), extrapolated_usd=math.fsum(extrapolated),
                       unpriced=sorted(unpriced), start_unknown=start_unknown,
                       kept_rows=whole)


def _write(handle: BinaryIO, text: str, path: Path) -> None:
    """``text`` (UTF-8) to one of several files open at once, a failure naming ``path``."""
    try:
        handle.write(text.encode("utf-8"))
    except OSError as exc:
        raise cannot_write(path, exc) from None


def focus_row_bound(billed: Bill, granularity: str = "hourly") -> int:
    """At most how many rows ``focus_rows`` gives for ``billed``: the charge periods each
    billed instance interval and volume touches, summed (an instance billed in two
    intervals within one period counts it twice). Cheap: no row is built."""
    step = pd.Timedelta(GRANULARITIES[granularity])
    volumes = billed.volumes
    starts = pd.concat([billed.intervals["start_at"], volumes["billed_from"]],
                       ignore_index=True)
    ends = pd.concat([billed.intervals["end_at"], volumes["billed_to"]], ignore_index=True)
    known = (starts.notna() & ends.notna()).to_numpy(dtype=bool)
    if not known.any():
        return 0
    first = starts[known].dt.floor(step)
    spans = ((ends[known] - first) / step).to_numpy(dtype="float64")
    return int(np.ceil(np.clip(spans, 0, None)).sum())
