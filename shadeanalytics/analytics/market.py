"""What we pay for our GPUs beside what the marketplace (``/instances/types``) asks today.

``market_compare`` puts each running instance type's price per GPU-hour (from the one billing
model, ``billing.bill_fleet``) beside the cheapest *available* offer of the catalog with the
same GPU type and GPU count; ``price_history`` follows the catalog over dated polls. Offer
prices are the catalog's own ``hourly_price_usd`` (a spot offer lists its spot rate there);
what we pay is only ever read off the ``Bill``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._common import TimeLike
from .._compat import old_spellings, renamed
from .asof import resolve_as_of
from .billing import Bill, Fleet, as_bill, tables_of, with_billed
from .costs import HOURS_PER_MONTH

__all__ = ["MARKET_COLUMNS", "PRICE_HISTORY_COLUMNS", "latest_catalog", "market_compare",
           "potential_monthly_saving_usd", "price_history", "total_monthly_saving"]

_KEYS = ("shade_instance_type", "gpu_type", "num_gpus")

#: Columns of ``market_compare`` with their dtypes, in order.
MARKET_COLUMNS: dict[str, str] = {
    "shade_instance_type": "string", "gpu_type": "string", "num_gpus": "Int64",
    "running_instances": "Int64", "gpus_running": "Int64", "hourly_usd": "float64",
    "usd_per_gpu_hour": "float64",
    "market_usd_per_gpu_hour": "float64", "market_cloud": "string", "market_region": "string",
    "market_shade_instance_type": "string", "hourly_saving_usd": "float64",
    "monthly_saving_usd": "float64",
    "spot_usd_per_gpu_hour": "float64", "spot_cloud": "string", "spot_region": "string",
    "spot_shade_instance_type": "string", "spot_hourly_saving_usd": "float64",
    "spot_monthly_saving_usd": "float64",
    "offers_available": "Int64", "instances_without_price": "Int64",
}

#: Columns of ``price_history`` with their dtypes, in order.
PRICE_HISTORY_COLUMNS: dict[str, str] = {
    "day": "datetime64[us, UTC]", "gpu_type": "string", "rental_type": "string",
    "offers": "Int64", "offers_available": "Int64", "share_available": "float64",
    "cheapest_usd_per_gpu_hour": "float64", "median_usd_per_gpu_hour": "float64",
}


@old_spellings(positional=("as_of",), renamed={"tables": "fleet"})
def latest_catalog(fleet: Fleet, *, as_of: TimeLike = None) -> pd.DataFrame:
    """The ``/instances/types`` offers of the newest catalog observed by ``as_of``.

    Undated rows count as observed at ``as_of`` (as in the billing model). In a history store
    every offer still listed has a row at the newest poll, so this is the marketplace then.
    """
    tables = tables_of(fleet, "latest_catalog")
    at = resolve_as_of(as_of, tables)
    types = tables.instance_types
    if types.empty:
        return types
    observed = types["observed_at"].fillna(at)
    known = observed <= at
    if not known.any():
        return types.iloc[0:0]
    newest = observed[known].max()
    return types[(observed == newest).to_numpy(dtype=bool)].reset_index(drop=True)


def _cheapest(offers: pd.DataFrame, rental: str) -> pd.DataFrame:
    """The cheapest available offer per (gpu_type, num_gpus) of one rental type."""
    pick = offers[(offers["rental_type"] == rental).fillna(False).to_numpy(dtype=bool)]
    pick = pick.sort_values(["per_gpu", "cloud", "region", "shade_instance_type"],
                            kind="stable", na_position="last")
    counts = pick.groupby(["gpu_type", "num_gpus"]).size().rename("offers_available")
    best = pick.drop_duplicates(["gpu_type", "num_gpus"], keep="first")
    return best.set_index(["gpu_type", "num_gpus"]).join(counts)


@old_spellings(renamed={"tables": "fleet"})
def market_compare(fleet: Fleet, *, as_of: TimeLike = None,
                   billed: Bill | None = None) -> pd.DataFrame:
    """Per running instance type: what we pay per GPU-hour beside the cheapest available offer.

    Example::

        >>> market_compare(tables, as_of="2026-11-20T00:00Z")[  # doctest: +SKIP
        ...     ["shade_instance_type", "usd_per_gpu_hour", "market_usd_per_gpu_hour",
        ...      "market_cloud", "monthly_saving_usd"]]

    Our side comes from ``billing.bill_fleet(fleet, as_of=as_of)`` (a ``Bill`` as ``fleet`` is
    used as it is; ``billed=`` is the deprecated spelling of that): the running instances
    grouped by ``shade_instance_type``,
    ``gpu_type`` and ``num_gpus``; ``hourly_usd`` is the sum of their ``billed_price_usd``
    (a spot rental at its spot rate), ``usd_per_gpu_hour`` = hourly_usd / their GPUs (over the
    instances with a price; ``instances_without_price`` counts the others). The market side is
    ``latest_catalog``: offers with ``available`` true, the same ``gpu_type`` and the same
    ``num_gpus`` (any cloud, region or instance type name), priced per GPU-hour as
    ``hourly_price_usd / num_gpus``; the cheapest on-demand offer in the ``market_*`` columns,
    the cheapest spot offer in the ``spot_*`` columns (ties: cloud, region, type name).

    ``hourly_saving_usd`` = (usd_per_gpu_hour - market_usd_per_gpu_hour) x gpus_running: what
    moving those GPUs to that offer would save per hour (negative: we already pay less);
    ``monthly_saving_usd`` = 730 x hourly. NA where no offer matches. CPU-only types (0 GPUs)
    and instances without a known configuration are left out.

    Returns:
        DataFrame of ``MARKET_COLUMNS``, sorted by ``monthly_saving_usd`` descending (unknown
        last), then ``shade_instance_type``.
    """
    billed, tables = as_bill(with_billed(fleet, billed, "market_compare"), as_of)
    # (only the columns used: a filter takes every column it keeps)
    running = billed.instances[[*_KEYS, "state", "billed_price_usd"]]
    running = running[(running["state"] == "running").fillna(False).to_numpy(dtype=bool)
                      & (running["num_gpus"].fillna(0) > 0).to_numpy(dtype=bool)]
    columns = list(MARKET_COLUMNS)
    if running.empty:
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in MARKET_COLUMNS.items()})
    priced = running["billed_price_usd"].notna()
    work = pd.DataFrame({
        **{k: running[k] for k in _KEYS},
        "running_instances": 1,
        "gpus_running": running["num_gpus"].astype("int64"),
        "hourly_usd": running["billed_price_usd"],
        "priced_gpus": running["num_gpus"].where(priced, 0).astype("int64"),
        "instances_without_price": (~priced).astype("int64"),
    })
    ours = work.groupby(list(_KEYS), dropna=False, sort=True).agg(
        running_instances=("running_instances", "sum"), gpus_running=("gpus_running", "sum"),
        hourly_usd=("hourly_usd", lambda s: s.sum(min_count=1)),
        priced_gpus=("priced_gpus", "sum"),
        instances_without_price=("instances_without_price", "sum")).reset_index()
    ours["usd_per_gpu_hour"] = ours["hourly_usd"] / ours["priced_gpus"].where(
        ours["priced_gpus"] > 0)

    offers = latest_catalog(tables, as_of=billed.as_of)
    offers = offers[offers["available"].fillna(False).to_numpy(dtype=bool)
                    & (offers["num_gpus"].fillna(0) > 0).to_numpy(dtype=bool)
                    & offers["hourly_price_usd"].notna().to_numpy(dtype=bool)]
    offers = offers.assign(per_gpu=offers["hourly_price_usd"]
                           / offers["num_gpus"].astype("float64"))
    out = ours
    for prefix, rental in (("market", "on_demand"), ("spot", "spot")):
        best = _cheapest(offers, rental).reset_index()
        found = ours[["gpu_type", "num_gpus"]].merge(
            best[["gpu_type", "num_gpus", "per_gpu", "cloud", "region", "shade_instance_type",
                  "offers_available"]], how="left", on=["gpu_type", "num_gpus"])
        per_gpu = found["per_gpu"].to_numpy(dtype="float64", na_value=np.nan)
        hourly = (ours["usd_per_gpu_hour"].to_numpy(dtype="float64") - per_gpu) \
            * ours["gpus_running"].to_numpy(dtype="float64")
        out = out.assign(**{
            f"{prefix}_usd_per_gpu_hour": per_gpu,
            f"{prefix}_cloud": found["cloud"].to_numpy(dtype=object),
            f"{prefix}_region": found["region"].to_numpy(dtype=object),
            f"{prefix}_shade_instance_type": found["shade_instance_type"].to_numpy(dtype=object),
            f"{prefix}_hourly_saving_usd": hourly,
            f"{prefix}_monthly_saving_usd": HOURS_PER_MONTH * hourly,
        })
        if rental == "on_demand":
            out["offers_available"] = found["offers_available"].fillna(0).to_numpy()
    out = out.rename(columns={"market_hourly_saving_usd": "hourly_saving_usd",
                              "market_monthly_saving_usd": "monthly_saving_usd"})
    out["_rank"] = out["monthly_saving_usd"].round(9)
    out = out.sort_values(["_rank", "shade_instance_type"], ascending=[False, True],
                          na_position="last", kind="stable")
    return out[columns].astype(MARKET_COLUMNS).reset_index(drop=True)


def potential_monthly_saving_usd(compare: pd.DataFrame) -> float:
    """The monthly saving of moving every type that has a cheaper on-demand offer (the
    positive ``monthly_saving_usd`` of ``market_compare`` summed; 0.0 when none)."""
    savings = compare["monthly_saving_usd"].astype("float64")
    return float(savings[savings > 0].sum())


def _day_numbers(days: pd.Series) -> np.ndarray:
    """Midnights (UTC) as whole days since the epoch."""
    return days.to_numpy(dtype="datetime64[D]").astype(np.int64)


@old_spellings(renamed={"history": "fleet"})
def price_history(fleet: Fleet, *, as_of: TimeLike = None) -> pd.DataFrame:
    """The marketplace per UTC day: cheapest and median price per GPU-hour per GPU type.

    Example::

        >>> price_history(Store("history.db").read())  # doctest: +SKIP

    ``fleet`` holds dated ``/instances/types`` polls (snapshot files or ``Store.read()``, or
    a ``Bill`` of them).
    An offer is one (cloud, shade_instance_type, region, rental_type); each day counts every
    offer as it was at that day's last observation: its newest row observed by the end of the
    day, kept when the offer was observed that day or again later (the store keeps a row per
    version of an offer, at its first and last sighting, not one per poll; a row without a
    later sighting stops counting after its own day). Undated rows count as observed at
    ``as_of`` (default: the newest poll). Prices are ``hourly_price_usd / num_gpus``; CPU-only
    offers are left out.

    Every day from the first observation's to the last's has its rows.

    Returns:
        DataFrame of ``PRICE_HISTORY_COLUMNS``, one row per day, ``gpu_type`` and
        ``rental_type``, sorted by them: ``offers`` (offers listed), ``offers_available``,
        ``share_available`` (0..1), ``cheapest_usd_per_gpu_hour`` and
        ``median_usd_per_gpu_hour`` over the available offers (NaN when none is).
    """
    history = tables_of(fleet, "price_history")
    at = resolve_as_of(as_of, history)
    types = history.instance_types
    empty = pd.DataFrame({c: pd.Series([], dtype=d) for c, d in PRICE_HISTORY_COLUMNS.items()})
    types = types[(types["num_gpus"].fillna(0) > 0).to_numpy(dtype=bool)]
    if types.empty:
        return empty
    offer = ["cloud", "shade_instance_type", "region", "rental_type"]
    rows = types.assign(observed_at=types["observed_at"].fillna(at))
    rows = rows.assign(day=rows["observed_at"].dt.floor("D")).sort_values(
        "observed_at", kind="stable")
    # An offer's row is its state on each day from its own day until the day before the
    # offer's next row (the last of the rows that share a day); the offer's newest row only on
    # its own day. So each row is spread over its days once, not each day's state searched.
    day = _day_numbers(rows["day"])
    following = rows.groupby(offer, dropna=False, sort=False)["day"].shift(-1)
    later = following.notna().to_numpy(dtype=bool)
    until = np.where(later, _day_numbers(following.fillna(rows["day"])), day + 1)
    count = until - day
    picked = np.repeat(np.arange(len(rows)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    days = rows.iloc[picked].reset_index(drop=True)
    days["day"] = days["day"] + pd.to_timedelta(np.arange(picked.size) - first, unit="D")
    days = days.assign(
        per_gpu=days["hourly_price_usd"] / days["num_gpus"].astype("float64"),
        _available=days["available"].fillna(False).astype(bool))
    days["_price"] = days["per_gpu"].where(days["_available"])
    grouped = days.groupby(["day", "gpu_type", "rental_type"], dropna=False, sort=True)
    out = grouped.agg(offers=("per_gpu", "size"), offers_available=("_available", "sum"),
                      cheapest_usd_per_gpu_hour=("_price", "min"),
                      median_usd_per_gpu_hour=("_price", "median")).reset_index()
    out["share_available"] = out["offers_available"] / out["offers"]
    return out[list(PRICE_HISTORY_COLUMNS)].astype(PRICE_HISTORY_COLUMNS).reset_index(drop=True)


#: Deprecated: ``potential_monthly_saving_usd`` (kept for one release).
total_monthly_saving = renamed(potential_monthly_saving_usd, "total_monthly_saving")
