"""Spend over time and the month forecast, spread from the billing model's billed intervals.

Every dollar here is a billed interval of ``billing.bill_fleet`` at its billed price, spread over
periods by ``periods.spread`` (the maths ``fleet_over_time`` uses), so that the periods of
``cost_over_time`` add up to the accrued cost of ``cost_breakdown`` at the same ``as_of``.

What is billed comes in *services*: ``compute`` (the instances: ``Bill.intervals``) and
``storage`` (the volumes: ``Bill.volumes``). ``SERVICES`` maps each service to the function
that lists its billed intervals with their dimensions (``ITEM_COLUMNS``); another service
billed through the same ``Bill`` is one more entry there, and every view here and the FOCUS
export follow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from .._common import TimeLike, group_keys, instant, key_column
from .._compat import old_spellings
from ..ingest.schema import TIMESTAMP
from ..ingest.tables import Tables
from .billing import Bill, Fleet, as_bill, bill_fleet, with_billed
from .costs import STORAGE_LABEL, cost_breakdown
from .periods import US_PER_HOUR, as_times, as_us, period_edges, spread, spread_chunks

__all__ = [
    "COST_TIME_KEYS",
    "FORECAST_COLUMNS",
    "ITEM_COLUMNS",
    "MIN_BAND_HOURS",
    "SERVICES",
    "billed_cost_between",
    "billed_items",
    "cost_over_time",
    "cost_over_time_chunks",
    "month_forecast",
]

#: Columns of ``billed_items``: one row per billed interval of any service, with the
#: billed resource's dimensions (the cost keys) and what FOCUS rows need.
ITEM_COLUMNS: dict[str, str] = {
    "service": "string",
    "resource_id": "string",
    "start_at": TIMESTAMP,
    "end_at": TIMESTAMP,
    "billed_price_usd": "float64",
    "basis": "string",
    "name": "string",
    "cloud": "string",
    "region": "string",
    "cluster_id": "string",
    "shade_instance_type": "string",
    "cloud_instance_type": "string",
    "rental_type": "string",
    "gpu_type": "string",
    "num_gpus": "Int64",
    "vram_per_gpu_in_gb": "Int64",
    "interconnect": "string",
    "nvlink": "boolean",
    "size_in_gb": "Int64",
    "configuration_missing": "boolean",
}

#: What ``cost_over_time`` can group by.
COST_TIME_KEYS: tuple[str, ...] = (
    "service", "cloud", "region", "gpu_type", "shade_instance_type", "cluster_id",
    "rental_type", "tag", "resource_id", "basis",
)

_COST_TIME_COLUMNS: dict[str, str] = {
    "billed_hours": "float64", "unpriced_hours": "float64", "cost_usd": "float64",
}


def _compute(billed: Bill) -> pd.DataFrame:
    """The instances' billed intervals (service ``compute``) with each instance's dimensions
    (its newest row: the one its billed price came from). Columns are taken as their arrays
    (``.array``): typed, so that no time or text goes through Python objects."""
    spans = billed.intervals
    # only the columns an item takes are reindexed to the intervals (not every column)
    wanted = [name for name in ITEM_COLUMNS if name in billed.instances.columns
              and name not in ("size_in_gb", "instance_id")]
    instances = billed.instances[["instance_id", *wanted, "configuration_source"]
                                 ].drop_duplicates("instance_id", keep="first").set_index(
        "instance_id")
    rows = instances.reindex(spans["instance_id"].array)
    columns = {name: rows[name].array for name in wanted}
    return pd.DataFrame({
        **columns,
        "service": "compute",
        "resource_id": spans["instance_id"].array,
        "start_at": spans["start_at"].array,
        "end_at": spans["end_at"].array,
        "billed_price_usd": spans["billed_price_usd"].array,
        "basis": spans["basis"].array,
        "configuration_missing": (rows["configuration_source"] == "missing").fillna(
            False).to_numpy(dtype=bool),
    })


def _storage(billed: Bill) -> pd.DataFrame:
    """The volumes' billed intervals (service ``storage``, ``Bill.volume_intervals``): from
    a volume's first sighting to the poll that no longer listed it or ``as_of``, cut by
    basis; a volume whose billing start is unknown has none."""
    spans = billed.volume_intervals
    spans = spans[(spans["end_at"] > spans["start_at"]).to_numpy(dtype=bool)]
    volumes = billed.volumes.drop_duplicates("volume_id", keep="first").set_index("volume_id")
    v = volumes.reindex(spans["volume_id"].array)
    return pd.DataFrame({
        "service": "storage",
        "resource_id": spans["volume_id"].array,
        "start_at": spans["start_at"].array,
        "end_at": spans["end_at"].array,
        "billed_price_usd": spans["billed_price_usd"].array,
        "basis": spans["basis"].array,
        "name": v["name"].array,
        "cloud": v["cloud"].array,
        "region": v["region"].array,
        "size_in_gb": v["size_in_gb"].array,
        "configuration_missing": np.zeros(len(spans), dtype=bool),
    })


#: Each billed service and the function listing its billed intervals (``ITEM_COLUMNS``).
SERVICES: dict[str, Callable[[Bill], pd.DataFrame]] = {
    "compute": _compute,
    "storage": _storage,
}
#: The keys a storage item has; any other shows ``costs.STORAGE_LABEL``, as in
#: ``cost_breakdown``.
_STORAGE_KEYS = ("service", "cloud", "region", "resource_id", "basis")


@old_spellings(renamed={"source": "fleet"})
def billed_items(fleet: Fleet, *, as_of: TimeLike = None) -> pd.DataFrame:
    """Every billed interval of every service at ``as_of``, with its resource's dimensions.

    ``fleet`` is what ``billing.bill_fleet`` takes (a ``Tables``, a ``Bill``, or an instances
    DataFrame of one snapshot). Returns ``ITEM_COLUMNS`` (the ``compute`` rows: one per
    ``Bill.intervals`` row, at its ``billed_price_usd``; NaN where the price is unknown),
    sorted by service, resource and start.
    """
    billed = bill_fleet(fleet, as_of=as_of)

    def itemize() -> pd.DataFrame:
        frames = [make(billed) for make in SERVICES.values()]
        # each typed before they are put together: a column one service lacks is then
        # typed NA, not objects to convert a cell at a time
        items = pd.concat([f.reindex(columns=list(ITEM_COLUMNS)).astype(ITEM_COLUMNS)
                           for f in frames], ignore_index=True)
        items = items.astype(ITEM_COLUMNS)
        return items.sort_values(["service", "resource_id", "start_at"],
                                 kind="stable").reset_index(drop=True)

    # kept with the Bill: a report asks once per view (spend per day and per month, the
    # forecast, budgets) of one Bill
    items = billed.frame_once("billed_items", itemize)
    return items.copy(deep=False)  # copy-on-write: the kept frame never changes


def _with_tags(items: pd.DataFrame, billed: Bill) -> pd.DataFrame:
    """``items`` with one row per (item, distinct tag) of its resource; untagged: NA."""
    tags = billed.instance_tags[["instance_id", "tag"]].drop_duplicates()
    tagged = items.assign(_row=np.arange(len(items))).merge(
        tags.rename(columns={"instance_id": "resource_id"}), on="resource_id", how="left")
    return tagged.sort_values("_row", kind="stable").drop(columns="_row").reset_index(
        drop=True)


@old_spellings(positional=("freq", "by"), renamed={"source": "fleet"})
def cost_over_time(
    fleet: Fleet,
    *,
    freq: str = "1D",
    by: str | Sequence[str] | None = ("cloud",),
    as_of: TimeLike = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> pd.DataFrame:
    """What each period cost, by any cost dimension: spend per day, week or month.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> daily = cost_over_time(tables, freq="1D", by="cloud", as_of="2026-11-20T00:00Z",
        ...                        start="2026-11-19T00:00Z")
        >>> daily[["period_start", "cloud", "billed_hours", "cost_usd"]].round(
        ...     {"billed_hours": 2, "cost_usd": 2}).head(3)
                       period_start       cloud  billed_hours  cost_usd
        0 2026-11-19 00:00:00+00:00      crusoe        521.71  11667.47
        1 2026-11-19 00:00:00+00:00  datacrunch        403.13  11238.32
        2 2026-11-19 00:00:00+00:00       denvr        262.95   2522.50

    Each billed interval of ``billed_items`` (the billing model's, at ``as_of``, default the
    newest poll) is spread over the ``freq`` periods (a pandas offset alias: ``1h``, ``1D``,
    ``W``, ``MS`` for calendar months), aligned to the clock or calendar, at its billed price;
    so the periods from the first billed instant to ``as_of`` add up to ``cost_breakdown``'s accrued
    cost at the same ``as_of`` (an instance listed in two clusters of one snapshot, which the
    breakdown counts twice, is billed here once). ``start`` and ``end`` (default: the first
    billed instant and ``as_of``) narrow the window; its first and last periods may be
    partial.

    ``by`` is zero (None or ``[]``: the fleet), one or several of ``COST_TIME_KEYS``:
    ``service`` (``compute`` for instances, ``storage`` for volumes; a key only instances
    have shows ``(storage)`` for a volume, as in ``cost_breakdown``), ``cloud``, ``region``,
    ``gpu_type``,
    ``shade_instance_type``, ``cluster_id``, ``rental_type``, ``tag`` (an instance with two
    tags counts in both groups, so the groups of one period can add up to more than it cost),
    ``resource_id`` and ``basis`` (``observed``, ``inferred``, ``extrapolated``,
    ``disputed``: what the billed time rests on, ``billing.bill_fleet``); a missing key is labelled
    as in ``cost_breakdown`` (``(standalone)``, ``(untagged)``, ``(unknown)``, ``(none)``).
    Unknown is not zero: time billed at an unknown price adds to ``unpriced_hours``, never to
    ``cost_usd``.

    Returns:
        DataFrame, one row per period and group that holds billed time, sorted by
        ``period_start`` then the keys. Columns: ``period_start`` (UTC, the period's aligned
        start), the keys (string), float64 ``billed_hours`` (resource-hours billed in the
        period), ``unpriced_hours`` (of them, at an unknown price), ``cost_usd``.
    """
    return next(cost_over_time_chunks(fleet, freq=freq, by=by, as_of=as_of, start=start,
                                      end=end))


def cost_over_time_chunks(
    fleet: Fleet,
    *,
    freq: str = "1D",
    by: str | Sequence[str] | None = ("cloud",),
    as_of: TimeLike = None,
    start: TimeLike = None,
    end: TimeLike = None,
    max_rows: int | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`cost_over_time` in pieces of whole periods, oldest first, each of about
    ``max_rows`` rows at most (``periods.spread_chunks``; ``None``: one piece). Concatenated,
    the pieces are ``cost_over_time``'s frame, to the bit: a long history's hourly spend can
    be written out in bounded memory (the FOCUS export)."""
    keys = [] if by is None else group_keys(by, COST_TIME_KEYS, required=False)
    billed = bill_fleet(fleet, as_of=as_of)
    window_end = (billed.as_of if end is None else instant(end, "end")).value // 1_000
    window_start = None if start is None else instant(start, "start").value // 1_000
    if window_start is not None and window_end <= window_start:
        raise ValueError("end must be after start")
    columns = {"period_start": TIMESTAMP, **dict.fromkeys(keys, "string"),
               **_COST_TIME_COLUMNS}
    items = billed_items(billed)
    if "tag" in keys:
        items = _with_tags(items, billed)
    starts, ends = as_us(items["start_at"]), as_us(items["end_at"])
    if window_start is None:
        window_start = int(starts.min()) if starts.size else window_end
    if window_end <= window_start or not starts.size:
        yield pd.DataFrame({c: pd.Series([], dtype=d) for c, d in columns.items()})
        return
    labels = pd.DataFrame({k: key_column(items[k], k, items["configuration_missing"])
                           for k in keys}, index=items.index)
    storage = (items["service"] == "storage").to_numpy(dtype=bool)
    for key in keys:
        if key not in _STORAGE_KEYS and storage.any():
            labels[key] = labels[key].mask(storage, STORAGE_LABEL)
    if len(keys) == 1:  # the same codes, in order of first appearance, without tuples
        codes, distinct = pd.factorize(labels[keys[0]])
        groups = pd.MultiIndex.from_arrays([distinct], names=keys)
    elif keys:
        codes, groups = pd.factorize(pd.MultiIndex.from_frame(labels))
    else:
        codes, groups = np.zeros(len(items), dtype=np.int64), None
    price = items["billed_price_usd"].to_numpy(dtype="float64", na_value=np.nan)
    unknown = np.isnan(price)
    edges = period_edges(window_start, window_end, freq)
    for group, period, hours, (cost, unpriced) in spread_chunks(
            np.asarray(codes, dtype=np.int64), starts, ends,
            [np.where(unknown, 0.0, price), unknown.astype("float64")],
            np.clip(edges, window_start, window_end), max_rows):
        out = pd.DataFrame({"period_start": as_times(edges[:-1][period])})
        for position, key in enumerate(keys):
            assert groups is not None
            out[key] = pd.array(groups.get_level_values(position)[group], dtype="string")
        out["billed_hours"] = hours
        out["unpriced_hours"] = unpriced
        out["cost_usd"] = cost
        out = out.sort_values(["period_start", *keys], kind="stable")
        yield out.astype(columns).reset_index(drop=True)


# -- the month forecast -------------------------------------------------------------------------

#: Columns of ``month_forecast``'s result, in order, with their dtypes.
FORECAST_COLUMNS: dict[str, str] = {
    "month_start": TIMESTAMP,
    "as_of": TIMESTAMP,
    "month_to_date_usd": "float64",
    "hourly_usd": "float64",
    "hours_left": "float64",
    "forecast_usd": "float64",
    "burn_days": "Int64",
    "burn_low_usd": "float64",
    "burn_high_usd": "float64",
    "forecast_low_usd": "float64",
    "forecast_high_usd": "float64",
    "last_month_usd": "float64",
    "last_month_complete": "boolean",
    "change_usd": "float64",
    "change_fraction": "float64",
    "observed_from": TIMESTAMP,
    "band_note": "string",
}
#: The forecast band needs at least one whole 24-hour window of observed history (between
#: the first observation and the newest successful poll); with less it is NA, never a rate
#: read off a few hours.
MIN_BAND_HOURS = 24


def _first_observation(history: Tables, at: pd.Timestamp) -> pd.Timestamp:
    """The first instant the history saw the fleet (undated rows: ``at``), by ``at``."""
    times = []
    for df in (history.clusters, history.instances, history.polls):
        if df.empty:
            continue
        observed = df["observed_at"].fillna(at)
        observed = observed[observed <= at]
        if not observed.empty:
            times.append(observed.min())
    return min(times) if times else at


def _items_since(billed: Bill, start: pd.Timestamp) -> pd.DataFrame:
    """``billed_items(billed)`` less the items that end by ``start``: the same costs in any
    window from ``start`` on, to the bit (``spread`` leaves those out itself, and the rest
    keep their order). A year's history itemizes its last month or two, not the year."""
    kept = billed.derived.get("billed_items")
    if isinstance(kept, pd.DataFrame):  # itemized already (a report): no new items
        return kept
    lo = start.as_unit("us")

    def later(spans: pd.DataFrame) -> pd.DataFrame:
        end = spans["end_at"]
        return spans[((end > lo) | end.isna()).to_numpy(dtype=bool)]

    return billed_items(replace(billed, intervals=later(billed.intervals),
                                volume_intervals=later(billed.volume_intervals)))


def _window_costs(items: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """The known cost of ``items`` in each [edges[j], edges[j + 1]), edges increasing."""
    price = items["billed_price_usd"].to_numpy(dtype="float64", na_value=np.nan)
    _, period, _, (cost,) = spread(np.zeros(len(items), dtype=np.int64),
                                   as_us(items["start_at"]), as_us(items["end_at"]),
                                   [np.nan_to_num(price)], edges)
    out = np.zeros(edges.size - 1)
    np.add.at(out, period, cost)
    return out


@old_spellings(positional=("start", "end"), renamed={"source": "fleet"})
def billed_cost_between(fleet: Fleet, *, start: TimeLike, end: TimeLike,
                        resource_ids: Sequence[str] | pd.Series | None = None,
                        as_of: TimeLike = None) -> float:
    """The billed cost in [``start``, ``end``) of the fleet billed at ``as_of`` (USD).

    The billed intervals of ``billed_items`` inside the window at their billed prices (unknown
    prices add nothing), over the resources ``resource_ids`` (default: all): what
    ``cost_over_time`` gives for that window, summed. The month forecast and the budgets of
    ``alerts`` take their month to date from here.
    """
    items = billed_items(bill_fleet(fleet, as_of=as_of))
    if resource_ids is not None:
        items = items[items["resource_id"].isin(list(resource_ids)).to_numpy(dtype=bool)]
    lo, hi = instant(start, "start").value // 1_000, instant(end, "end").value // 1_000
    if hi <= lo or items.empty:
        return 0.0
    return float(_window_costs(items, np.array([lo, hi], dtype=np.int64))[0])


@old_spellings(renamed={"history": "fleet"})
def month_forecast(fleet: Fleet, *, as_of: TimeLike = None, days: int = 7,
                   billed: Bill | None = None, hourly: float | None = None) -> pd.DataFrame:
    """Where this month's bill ends: month to date, the projection, its band, last month.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> month_forecast(tables, as_of="2026-11-20T00:00Z")[
        ...     ["month_to_date_usd", "hourly_usd", "hours_left", "forecast_usd"]].round(2)
           month_to_date_usd  hourly_usd  hours_left  forecast_usd
        0          460741.71     1669.42       264.0     901468.59

    All from the billing model at ``as_of`` (default: the newest poll), in the calendar month
    (UTC) that holds ``as_of``:

    - ``month_to_date_usd``: the billed intervals' cost from the month's start to ``as_of``
      (``cost_over_time``'s maths; unknown prices add nothing);
    - ``hourly_usd``: the current burn, ``cost_breakdown``'s ``hourly_usd`` summed (the billed
      prices of the running instances); ``hours_left`` to the month's end;
    - ``forecast_usd = month_to_date_usd + hourly_usd * hours_left``;
    - the band: the burn rate (cost / hours) of each of the last ``days`` 24-hour windows
      ending at ``as_of`` that lie inside the observed history
      (``burn_days`` says how many), ``burn_low_usd`` and ``burn_high_usd`` their min and
      max; ``forecast_low_usd`` and ``forecast_high_usd`` the month to date plus hours left
      at the lower and higher of (that min or max, the current burn), so the band always
      holds the forecast. NA, with the reason in ``band_note``, with less than
      ``MIN_BAND_HOURS`` of observed history or when the data is stale at ``as_of``
      (``asof.freshness``);
    - ``last_month_usd``: the previous calendar month's billed cost, from the same billing
      as ``cost_over_time(..., "MS")`` (inferred time included); ``last_month_complete``
      False when the observed history starts after last month's start; NA only when the
      history starts this month and bills no time in last month;
      ``change_usd = forecast_usd - last_month_usd``, ``change_fraction`` its share of last
      month (NaN when last month is 0 or NA).

    ``observed_from`` is the first observation of the history (its first snapshot).

    ``fleet`` is a ``Tables`` or a ``Bill`` (used as it is when ``as_of`` is None or its own:
    a report bills once); ``billed=`` is the deprecated spelling of the latter. ``hourly``:
    the current burn when the caller has it (``cost_breakdown``'s ``hourly_usd`` summed).

    Returns:
        DataFrame of one row with ``FORECAST_COLUMNS``.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1; got {days}")
    billed, history = as_bill(with_billed(fleet, billed, "month_forecast"), as_of)
    at = billed.as_of
    month_start = pd.Timestamp(year=at.year, month=at.month, day=1, tz="UTC").as_unit("us")
    month_end = month_start + pd.offsets.MonthBegin(1)
    last_start = month_start - pd.offsets.MonthBegin(1)
    observed_from = _first_observation(history, at)
    items = _items_since(billed, last_start)

    # windows: last month, this month to date, then the burn windows (newest last)
    day = pd.Timedelta(hours=24)
    fresh = billed.freshness
    windows = [at - day * k for k in range(days, -1, -1)]
    full = [w for w in windows if w >= observed_from]
    edges_t = [last_start, month_start, at]
    costs = _window_costs(items, np.array([t.value // 1_000 for t in edges_t], dtype=np.int64))
    last_month, to_date = float(costs[0]), float(costs[1])
    note: object = pd.NA
    if fresh is not None and fresh.stale:
        note = "the data is stale: no observed burn near as_of"
    elif len(full) < 2:
        seen = max(pd.Timedelta(0), at - observed_from) / pd.Timedelta(hours=1)
        note = (f"less than {MIN_BAND_HOURS} h of observed history ({seen:,.1f} h)")
    if note is pd.NA:
        burn_edges = np.array([t.value // 1_000 for t in full], dtype=np.int64)
        rates = _window_costs(items, burn_edges) / (np.diff(burn_edges) / US_PER_HOUR)
        burn_low, burn_high = float(rates.min()), float(rates.max())
    else:
        rates, burn_low, burn_high = np.zeros(0), np.nan, np.nan

    if hourly is None:
        hourly = float(cost_breakdown(billed, by="cloud")["hourly_usd"].sum())
    hours_left = (month_end - at) / pd.Timedelta(hours=1)
    forecast = to_date + hourly * hours_left
    low = to_date + min(burn_low, hourly) * hours_left if rates.size else np.nan
    high = to_date + max(burn_high, hourly) * hours_left if rates.size else np.nan
    known_last = observed_from < month_start or last_month > 0
    last = last_month if known_last else np.nan
    change = forecast - last
    row = {
        "month_start": [month_start], "as_of": [at], "month_to_date_usd": [to_date],
        "hourly_usd": [hourly], "hours_left": [hours_left], "forecast_usd": [forecast],
        "burn_days": [int(rates.size)], "burn_low_usd": [burn_low],
        "burn_high_usd": [burn_high], "forecast_low_usd": [low], "forecast_high_usd": [high],
        "last_month_usd": [last],
        "last_month_complete": [pd.NA if not known_last else bool(observed_from <= last_start)],
        "change_usd": [change],
        "change_fraction": [change / last if known_last and last else np.nan],
        "observed_from": [observed_from],
        "band_note": [note],
    }
    return pd.DataFrame(row).astype(FORECAST_COLUMNS)
