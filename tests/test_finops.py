"""Spend over time and the month forecast: hand-computed on a small fleet that crosses a
month's end, and equal to the accrued cost of cost_breakdown on the sample."""

from __future__ import annotations

import csv
import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DIR, envelope, make_instance, volume_history

import shadeanalytics as sa
from shadeanalytics.analytics import finops
from shadeanalytics.analytics.billing import bill_fleet
from shadeanalytics.analytics.costs import cost_breakdown
from shadeanalytics.analytics.finops import (
    FORECAST_COLUMNS,
    ITEM_COLUMNS,
    billed_items,
    cost_over_time,
    month_forecast,
)
from shadeanalytics.analytics.periods import spread
from shadeanalytics.output.htmlreport import headline
from shadeanalytics.output.report import summary_text, write_report

AS_OF = "2026-11-03T06:00:00Z"
POLLS = ["2026-10-31T12:00:00Z", "2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z",
         "2026-11-02T00:00:00Z", "2026-11-02T12:00:00Z", "2026-11-03T00:00:00Z"]
_: None = None  # not listed in that poll

#: status at each poll, and the instance's fields. Billed (by hand):
#: a  crusoe $2/h from Oct 31 18:00 to as_of: Oct 31 6 h $12, Nov 1 $48, Nov 2 $48, Nov 3 $12
#: b  denvr $3/h from Nov 1 06:00 until deleting is seen at Nov 2 00:00: 18 h = $54 on Nov 1
#: c  crusoe spot at its own $1/h (on-demand $2.50) from Nov 2 12:00: Nov 2 $12, Nov 3 $6
FLEET: dict[str, tuple[list[str | None], dict[str, Any]]] = {
    "a": (["pending", "active", "active", "active", "active", "active"],
          {"cloud": "crusoe", "hourly_price": 200, "active_at": "2026-10-31T18:00:00Z",
           "tags": ["team-x"]}),
    "b": ([_, _, "active", "deleting", _, _],
          {"cloud": "denvr", "hourly_price": 300, "active_at": "2026-11-01T06:00:00Z",
           "tags": []}),
    "c": ([_, _, _, _, "active", "active"],
          {"cloud": "crusoe", "hourly_price": 250, "active_at": "2026-11-02T12:00:00Z",
           "rental_terms": {"rental_type": "spot", "hourly_price": "1.00"},
           "tags": ["team-x", "spot"]}),
}
TOTAL = 192.0  # a $120 + b $54 + c $18


def history(fleet: dict[str, tuple[list[str | None], dict[str, Any]]] = FLEET) -> sa.Tables:
    docs = []
    for k, clock in enumerate(POLLS):
        listed = []
        for iid, (statuses, fields) in fleet.items():
            if statuses[k] is None:
                continue
            record = make_instance(iid, status=statuses[k],
                                   **{"created_at": "2026-10-31T00:00:00Z", **fields})
            if statuses[k] == "pending":
                record["active_at"] = None
            listed.append(record)
        docs.append(envelope({"instances": listed}, clock, "/instances"))
    return sa.read(docs)


@pytest.fixture(scope="module")
def fleet() -> sa.Tables:
    return history()


@pytest.fixture(scope="module")
def sample() -> sa.Tables:
    return sa.read(SAMPLE_DIR)


@pytest.fixture(scope="module")
def sample_bills(sample: sa.Tables) -> dict[str, sa.Bill]:
    """The sample billed at each as_of of the period sweep, once for the module."""
    return {at: sa.bill_fleet(sample, as_of=at)
            for at in ("2026-11-18T07:30:00Z", "2026-11-20T00:00:00Z")}


def _rows(df: pd.DataFrame, *keys: str) -> list[tuple[Any, ...]]:
    return [(row.period_start.strftime("%Y-%m-%d"), *(getattr(row, k) for k in keys),
             round(row.cost_usd, 9))
            for row in df.itertuples()]


def test_spend_per_day_by_cloud(fleet: sa.Tables) -> None:
    """Each day's cost by cloud, hand-computed; the days add up to the accrued cost."""
    daily = cost_over_time(fleet, freq="1D", by="cloud", as_of=AS_OF)
    assert list(daily.columns) == ["period_start", "cloud", "billed_hours", "unpriced_hours",
                                   "cost_usd"]
    assert daily.dtypes.astype(str).tolist() == ["datetime64[us, UTC]", "string", "float64",
                                                 "float64", "float64"]
    assert _rows(daily, "cloud") == [
        ("2026-10-31", "crusoe", 12.0), ("2026-11-01", "crusoe", 48.0),
        ("2026-11-01", "denvr", 54.0), ("2026-11-02", "crusoe", 60.0),
        ("2026-11-03", "crusoe", 18.0)]
    assert daily["billed_hours"].tolist() == pytest.approx([6, 24, 18, 36, 12])
    assert daily["unpriced_hours"].sum() == 0.0
    accrued = cost_breakdown(fleet, as_of=AS_OF)["accrued_usd"].sum()
    assert accrued == pytest.approx(TOTAL)
    assert daily["cost_usd"].sum() == pytest.approx(accrued, abs=0.01)


def test_spend_per_month_and_hour(fleet: sa.Tables) -> None:
    """Calendar months split at the month's end; hours hold the per-hour price."""
    monthly = cost_over_time(fleet, freq="MS", by="cloud", as_of=AS_OF)
    assert _rows(monthly, "cloud") == [
        ("2026-10-01", "crusoe", 12.0), ("2026-11-01", "crusoe", 126.0),
        ("2026-11-01", "denvr", 54.0)]
    hourly = cost_over_time(fleet, freq="1h", by=(), as_of=AS_OF)
    assert hourly["period_start"].iloc[0] == pd.Timestamp("2026-10-31T18:00:00Z")
    assert hourly["cost_usd"].iloc[0] == pytest.approx(2.0)
    at_noon = hourly.set_index("period_start").loc[pd.Timestamp("2026-11-02T12:00:00Z")]
    assert at_noon["cost_usd"] == pytest.approx(3.0)  # a $2 + c $1 (spot rate)
    assert at_noon["billed_hours"] == pytest.approx(2.0)
    assert len(hourly) == 60  # a billed every hour of its 60
    assert hourly["cost_usd"].sum() == pytest.approx(TOTAL, abs=0.01)


def test_by_none_is_the_whole_fleet(fleet: sa.Tables) -> None:
    """by=None (as the README says) gives the fleet per period: the same rows as by=()."""
    daily = cost_over_time(fleet, freq="1D", by=None, as_of=AS_OF)
    assert list(daily.columns) == ["period_start", "billed_hours", "unpriced_hours", "cost_usd"]
    pd.testing.assert_frame_equal(daily, cost_over_time(fleet, freq="1D", by=(), as_of=AS_OF))
    # by hand: Oct 31 a $12; Nov 1 a $48 + b $54; Nov 2 a $48 + c $12; Nov 3 a $12 + c $6
    assert _rows(daily) == [("2026-10-31", 12.0), ("2026-11-01", 102.0), ("2026-11-02", 60.0),
                            ("2026-11-03", 18.0)]


def test_spend_by_tag_service_and_resource(fleet: sa.Tables) -> None:
    """By tag an instance counts once per tag; service is compute; resource is the id."""
    by_tag = cost_over_time(fleet, freq="1D", by="tag", as_of=AS_OF)
    assert _rows(by_tag, "tag") == [
        ("2026-10-31", "team-x", 12.0), ("2026-11-01", "(untagged)", 54.0),
        ("2026-11-01", "team-x", 48.0), ("2026-11-02", "spot", 12.0),
        ("2026-11-02", "team-x", 60.0), ("2026-11-03", "spot", 6.0),
        ("2026-11-03", "team-x", 18.0)]
    by_service = cost_over_time(fleet, freq="MS", by=["service", "rental_type"], as_of=AS_OF)
    assert _rows(by_service, "service", "rental_type") == [
        ("2026-10-01", "compute", "(none)", 12.0), ("2026-11-01", "compute", "(none)", 162.0),
        ("2026-11-01", "compute", "spot", 18.0)]
    by_resource = cost_over_time(fleet, freq="MS", by="resource_id", as_of=AS_OF)
    totals = by_resource.groupby("resource_id")["cost_usd"].sum().to_dict()
    assert totals == pytest.approx({"a": 120.0, "b": 54.0, "c": 18.0})


def test_a_window_splits_the_same_dollars(fleet: sa.Tables) -> None:
    """start and end narrow the window; two windows that meet add up to the whole."""
    mid = "2026-11-01T13:30:00Z"
    before = cost_over_time(fleet, freq="1D", by=(), as_of=AS_OF, end=mid)
    after = cost_over_time(fleet, freq="1D", by=(), as_of=AS_OF, start=mid)
    # to 13:30 on Nov 1: a $12 + 13.5 h x $2 = $39; b 7.5 h x $3 = $22.50
    assert before["cost_usd"].sum() == pytest.approx(12.0 + 27.0 + 22.5)
    assert before["cost_usd"].sum() + after["cost_usd"].sum() == pytest.approx(TOTAL)
    assert after["period_start"].iloc[0] == pd.Timestamp("2026-11-01T00:00:00Z")
    with pytest.raises(ValueError, match="end must be after start"):
        cost_over_time(fleet, as_of=AS_OF, start=mid, end=mid)
    with pytest.raises(ValueError, match="cannot group by 'status'"):
        cost_over_time(fleet, by="status", as_of=AS_OF)


def test_unknown_price_is_not_zero() -> None:
    """Time billed at an unknown price counts in unpriced_hours, never in cost_usd."""
    fleet = dict(FLEET)
    fleet["n"] = (["active"] * 6, {"cloud": "denvr", "hourly_price": None,
                                   "active_at": "2026-10-31T00:00:00Z"})
    tables = history(fleet)
    daily = cost_over_time(tables, freq="1D", by="cloud", as_of=AS_OF)
    denvr = daily[daily["cloud"] == "denvr"].set_index("period_start")
    assert denvr["unpriced_hours"].tolist() == pytest.approx([24, 24, 24, 6])
    assert denvr.loc[pd.Timestamp("2026-11-01T00:00:00Z"), "cost_usd"] == pytest.approx(54.0)
    assert daily["cost_usd"].sum() == pytest.approx(TOTAL)


def test_billed_items_are_the_bills_intervals(fleet: sa.Tables) -> None:
    """One row per billed interval and basis, at its billed price, with ITEM_COLUMNS."""
    items = billed_items(fleet, as_of=AS_OF)
    assert list(items.columns) == list(ITEM_COLUMNS)
    # a: active_at Oct 31 18:00, first seen active Nov 1 00:00, newest poll Nov 3 00:00
    # b: active_at Nov 1 06:00, first seen active Nov 1 12:00, deleting seen Nov 2 00:00
    # c: active_at = first sighting Nov 2 12:00
    assert items[["resource_id", "billed_price_usd", "basis"]].to_numpy().tolist() == [
        ["a", 2.0, "inferred"], ["a", 2.0, "observed"], ["a", 2.0, "extrapolated"],
        ["b", 3.0, "inferred"], ["b", 3.0, "observed"],
        ["c", 1.0, "observed"], ["c", 1.0, "extrapolated"]]
    assert items["service"].unique().tolist() == ["compute"]
    assert items["end_at"].tolist() == [pd.Timestamp(t) for t in (
        POLLS[1], POLLS[5], AS_OF, POLLS[2], POLLS[3], POLLS[5], AS_OF)]


def test_spread_sums_each_group_over_its_periods() -> None:
    """spread: hours and weighted sums per (group, period), only where time is billed."""
    hour = 3_600_000_000
    edges = np.array([0, 2, 4, 6]) * hour
    group, period, hours, (cost,) = spread(
        np.array([0, 1, 1]), np.array([1, 0, 5]) * hour, np.array([3, 1, 9]) * hour,
        [np.array([2.0, 10.0, 1.0])], edges)
    assert list(zip(group.tolist(), period.tolist(), strict=True)) == [
        (0, 0), (0, 1), (1, 0), (1, 2)]
    assert hours.tolist() == pytest.approx([1, 1, 1, 1])
    assert cost.tolist() == pytest.approx([2, 2, 10, 1])


@pytest.mark.parametrize("freq", ["1h", "1D", "W", "MS"])
@pytest.mark.parametrize("as_of", ["2026-11-18T07:30:00Z", "2026-11-20T00:00:00Z"])
def test_the_sample_spends_what_it_accrued(sample_bills: dict[str, sa.Bill], freq: str,
                                           as_of: str) -> None:
    """On the sample, every period length adds up to cost_breakdown's accrued, to $0.01."""
    billed = sample_bills[as_of]
    accrued = cost_breakdown(billed, by="cloud")["accrued_usd"].sum()
    spent = cost_over_time(billed, freq=freq, by="cloud")
    assert spent["cost_usd"].sum() == pytest.approx(accrued, abs=0.01)
    by_gpu = cost_over_time(billed, freq=freq, by=["gpu_type", "cluster_id"])
    assert by_gpu["cost_usd"].sum() == pytest.approx(accrued, abs=0.01)


# -- the month forecast -------------------------------------------------------------------------


def test_month_forecast_hand_computed(fleet: sa.Tables) -> None:
    """Month to date, the projection, the 7-day band and last month, by hand."""
    forecast = month_forecast(fleet, as_of=AS_OF)
    assert list(forecast.columns) == list(FORECAST_COLUMNS)
    assert forecast.dtypes.astype(str).to_dict() == {
        c: d for c, d in FORECAST_COLUMNS.items()}
    row = forecast.iloc[0]
    assert row["month_start"] == pd.Timestamp("2026-11-01T00:00:00Z")
    assert row["month_to_date_usd"] == pytest.approx(102 + 60 + 18)
    assert row["hourly_usd"] == pytest.approx(3.0)  # a $2 + c $1 run at as_of
    assert row["hours_left"] == pytest.approx(27 * 24 + 18)  # to Dec 1 00:00
    assert row["forecast_usd"] == pytest.approx(180 + 3 * 666)
    # only two 24-hour windows lie inside the history (it starts Oct 31 12:00):
    # Nov 1 06:00-Nov 2 06:00 a $48 + b $54 = $102 (4.25/h); then a $48 + c $18 (2.75/h)
    assert row["burn_days"] == 2
    assert (row["burn_low_usd"], row["burn_high_usd"]) == pytest.approx((2.75, 4.25))
    assert row["forecast_low_usd"] == pytest.approx(180 + 2.75 * 666)
    assert row["forecast_high_usd"] == pytest.approx(180 + 4.25 * 666)
    assert row["last_month_usd"] == pytest.approx(12.0)
    assert not row["last_month_complete"]  # the history starts on Oct 31
    assert row["change_usd"] == pytest.approx(2178 - 12)
    assert row["change_fraction"] == pytest.approx(2166 / 12)
    assert row["observed_from"] == pd.Timestamp(POLLS[0])


def test_month_forecast_itemizes_only_what_reaches_last_month(fleet: sa.Tables) -> None:
    """The forecast itemizes the intervals ending after last month's start, to the bit."""
    at = "2027-01-10T00:00:00Z"  # last month is December: only a's and c's last spans reach it
    trimmed = finops._items_since(bill_fleet(fleet, as_of=at),
                                  pd.Timestamp("2026-12-01T00:00:00Z"))
    assert sorted(zip(trimmed["resource_id"], trimmed["basis"], strict=True)) == [
        ("a", "extrapolated"), ("c", "extrapolated")]
    itemized = bill_fleet(fleet, as_of=at)
    assert len(billed_items(itemized)) == 7  # kept with the bill: the forecast takes them all
    forecast = month_forecast(bill_fleet(fleet, as_of=at))
    pd.testing.assert_frame_equal(forecast, month_forecast(itemized), check_exact=True)
    # a $2/h and c $1/h, extrapolated: December 31 x 24 h x $3, January 9 days x 24 h x $3
    row = forecast.iloc[0]
    assert (row["last_month_usd"], row["month_to_date_usd"]) == (2232.0, 648.0)


def test_month_forecast_band_holds_the_current_burn(fleet: sa.Tables) -> None:
    """With one day of burn (2.75/h) below the current 3/h, the band still holds the forecast."""
    row = month_forecast(fleet, as_of=AS_OF, days=1).iloc[0]
    assert row["burn_days"] == 1
    assert row["forecast_low_usd"] == pytest.approx(180 + 2.75 * 666)
    assert row["forecast_high_usd"] == pytest.approx(row["forecast_usd"])
    with pytest.raises(ValueError, match="days must be at least 1; got 0"):
        month_forecast(fleet, as_of=AS_OF, days=0)


def test_month_forecast_at_the_month_start_and_in_one_snapshot(fleet: sa.Tables) -> None:
    """At 00:00 on the 1st nothing is spent yet; one snapshot has no burn and no last month."""
    row = month_forecast(fleet, as_of="2026-11-01T00:00:00Z").iloc[0]
    assert row["month_to_date_usd"] == 0.0
    assert row["hours_left"] == 720.0
    assert row["forecast_usd"] == pytest.approx(2.0 * 720)
    assert row["last_month_usd"] == pytest.approx(12.0)
    one = sa.read(envelope({"instances": [make_instance("a", active_at="2026-11-02T00:00:00Z")]},
                           "2026-11-03T00:00:00Z", "/instances"))
    row = month_forecast(one, as_of="2026-11-03T00:00:00Z").iloc[0]
    assert row["month_to_date_usd"] == pytest.approx(24 * 2.10)
    assert row["burn_days"] == 0
    assert pd.isna(row["forecast_low_usd"]) and pd.isna(row["burn_high_usd"])
    assert pd.isna(row["last_month_usd"]) and pd.isna(row["last_month_complete"])
    assert pd.isna(row["change_fraction"])


def test_month_forecast_on_the_sample(sample: sa.Tables) -> None:
    """The sample's month to date is its accrued cost (it all falls in November)."""
    at = "2026-11-20T00:00:00Z"
    row = month_forecast(sample, as_of=at).iloc[0]
    costs = cost_breakdown(sample, by="cloud", as_of=at)
    november = cost_over_time(sample, freq="MS", by=(), as_of=at)
    assert row["month_to_date_usd"] == pytest.approx(
        november.loc[november["period_start"] == pd.Timestamp("2026-11-01T00:00:00Z"),
                     "cost_usd"].sum(), abs=0.01)
    assert row["hourly_usd"] == pytest.approx(costs["hourly_usd"].sum())
    assert row["burn_days"] == 4  # the sample holds four days of snapshots
    assert row["forecast_low_usd"] <= row["forecast_usd"] <= row["forecast_high_usd"]


# -- in the summary and the report --------------------------------------------------------------


def test_summary_shows_the_forecast(fleet: sa.Tables) -> None:
    """Two summary lines: this month and its forecast with the band, then last month."""
    text = summary_text(fleet, as_of=AS_OF)
    assert ("  accrued so far: $192.00\n"
            "    $18.00 of it is extrapolated past the newest successful poll\n"
            "    $30.00 of it is inferred from API timestamps before the first poll that saw "
            "it\n"
            "  Nov 2026: $180.00 so far; forecast $2,178.00 ($2,011.50 to $3,010.50, last 2 "
            "days' burn)\n"
            "  last month: $12.00, partial: history from 2026-10-31 12:00; forecast change "
            "+$2,166.00 (+18050%)\n") in text
    # one snapshot: 1 h at $2.10 so far, 264 h left; no burn to make a band from
    one = sa.read(envelope({"instances": [make_instance("a", active_at="2026-11-19T23:00:00Z")]},
                           "2026-11-20T00:00:00Z", "/instances"))
    text = summary_text(one, as_of="2026-11-20T00:00:00Z")
    assert ("  Nov 2026: $2.10 so far; forecast $556.50 (no band: less than 24 h of observed "
            "history (0.0 h))\n"
            "  last month: unknown (the history starts this month)\n") in text


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_report_writes_spend_and_forecast(fleet: sa.Tables, tmp_path: Path) -> None:
    """costs_daily.csv, costs_monthly.csv and forecast.csv hold the hand-computed dollars;
    the page shows them, the forecast in the headline."""
    files = write_report(fleet, tmp_path, as_of=AS_OF, charts=False)
    assert [f.name for f in files][-6:] == ["forecast.csv", "timeline.csv",
                                            "fleet_over_time.csv", "costs_daily.csv",
                                            "costs_monthly.csv", "index.html"]
    assert _csv(tmp_path / "costs_daily.csv") == [
        ["period_start", "cloud", "cost_usd"],
        ["2026-10-31T00:00:00Z", "crusoe", "12.0"], ["2026-11-01T00:00:00Z", "crusoe", "48.0"],
        ["2026-11-01T00:00:00Z", "denvr", "54.0"], ["2026-11-02T00:00:00Z", "crusoe", "60.0"],
        ["2026-11-03T00:00:00Z", "crusoe", "18.0"]]
    assert _csv(tmp_path / "costs_monthly.csv")[1:] == [
        ["2026-10-01T00:00:00Z", "crusoe", "12.0"], ["2026-11-01T00:00:00Z", "crusoe", "126.0"],
        ["2026-11-01T00:00:00Z", "denvr", "54.0"]]
    header, row = _csv(tmp_path / "forecast.csv")
    assert header == list(FORECAST_COLUMNS)
    assert dict(zip(header, row, strict=True)) == {
        "month_start": "2026-11-01T00:00:00Z", "as_of": "2026-11-03T06:00:00Z",
        "month_to_date_usd": "180.0", "hourly_usd": "3.0", "hours_left": "666.0",
        "forecast_usd": "2178.0", "burn_days": "2", "burn_low_usd": "2.75",
        "burn_high_usd": "4.25", "forecast_low_usd": "2011.5", "forecast_high_usd": "3010.5",
        "last_month_usd": "12.0", "last_month_complete": "false", "change_usd": "2166.0",
        "change_fraction": "180.5", "observed_from": "2026-10-31T12:00:00Z", "band_note": ""}
    figures = {f.label: f.text for f in headline({"forecast": month_forecast(fleet,
                                                                             as_of=AS_OF)})}
    assert figures == {"Month to date": "$180.00", "Month-end forecast": "$2,178.00"}
    page = (tmp_path / "index.html").read_text()
    assert "<dt>Month-end forecast</dt>" in page and "$2,178.00" in page
    for section in ("costs_daily", "costs_monthly"):
        assert f'<section id="{section}"' in page and f'href="{section}.csv"' in page


def test_a_single_snapshot_report_has_a_forecast_and_no_spend_files(tmp_path: Path) -> None:
    """Undated sources: forecast.csv still, no daily or monthly files (no history)."""
    one = sa.read({"instances": [make_instance("a")]}, observed_at=None)
    names = [f.name for f in write_report(one, tmp_path, as_of="2026-11-20T00:00:00Z",
                                          charts=False, html=False)]
    assert "forecast.csv" in names and "costs_daily.csv" not in names


def test_docstring_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The examples in finops' docstrings pass as doctests from any folder (the sample)."""
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(finops, optionflags=doctest.ELLIPSIS)
    assert (result.failed, result.attempted) == (0, 7)


@pytest.mark.hardening
def test_a_generated_month_spends_what_it_accrued() -> None:
    """30 days of 6-hourly polls of a generated fleet: spend over time by every key and every
    period length, the forecast's month to date and the FOCUS rows give the accrued cost."""
    from shadeanalytics.output.focus import focus_problems, focus_rows
    from shadeanalytics.testing import synthetic

    docs = []
    for poll in synthetic.fleet_history(seed=5, polls=120, every_hours=6.0):
        for endpoint, key in (("/clusters", "clusters"), ("/instances", "instances")):
            response = {key: [i for i in poll[key][key] if i["status"] != "deleted"]}
            docs.append(envelope(response, poll["observed_at"], endpoint))
    tables = sa.read(docs)
    as_of = tables.polls["observed_at"].max()
    accrued = cost_breakdown(tables, as_of=as_of)["accrued_usd"].sum()
    assert accrued > 1000
    for key in ("service", "cloud", "region", "gpu_type", "shade_instance_type", "cluster_id",
                "rental_type", "resource_id"):
        for freq in ("1h", "1D", "MS"):
            spent = cost_over_time(tables, freq=freq, by=key, as_of=as_of)["cost_usd"].sum()
            assert spent == pytest.approx(accrued, abs=0.01), (key, freq)
    month_start = as_of.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this_month = cost_over_time(tables, freq="MS", by=(), as_of=as_of, start=month_start)
    row = month_forecast(tables, as_of=as_of).iloc[0]
    assert row["month_to_date_usd"] == pytest.approx(this_month["cost_usd"].sum(), abs=0.01)
    assert row["burn_days"] == 7
    assert row["forecast_low_usd"] <= row["forecast_usd"] <= row["forecast_high_usd"]
    rows = focus_rows(tables, as_of=as_of)
    assert focus_problems(rows) == []
    assert rows["BilledCost"].sum() == pytest.approx(accrued, abs=0.01)


def test_storage_is_a_service() -> None:
    """A 500 GB volume at $0.05/h spreads over the hours beside the instance's $2.10/h; keys
    only instances have show (storage), as in cost_breakdown; the forecast counts it."""
    tables = sa.read(volume_history())
    as_of = "2026-11-20T02:00:00Z"
    hourly = cost_over_time(tables, freq="1h", by="service", as_of=as_of)
    assert [(r.period_start.hour, r.service, round(r.cost_usd, 9))
            for r in hourly.itertuples()] == [
        (0, "compute", 2.1), (0, "storage", 0.05), (1, "compute", 2.1), (1, "storage", 0.05)]
    accrued = cost_breakdown(tables, by="service", as_of=as_of)["accrued_usd"].sum()
    assert hourly["cost_usd"].sum() == pytest.approx(accrued) == pytest.approx(4.30)
    by_gpu = cost_over_time(tables, freq="1D", by=["gpu_type", "cloud"], as_of=as_of)
    assert by_gpu[["gpu_type", "cloud", "cost_usd"]].to_numpy().tolist() == [
        ["(storage)", "aws", pytest.approx(0.10)], ["A6000", "hyperstack", pytest.approx(4.2)]]
    items = billed_items(tables, as_of=as_of)
    assert items[["service", "resource_id", "size_in_gb"]].drop_duplicates().astype(
        object).to_numpy().tolist() == [["compute", "i-1", pd.NA], ["storage", "vol-1", 500]]
    row = month_forecast(tables, as_of=as_of).iloc[0]
    assert row["month_to_date_usd"] == pytest.approx(4.30)
    assert row["hourly_usd"] == pytest.approx(2.15)


def test_billed_items_are_kept_per_bill_and_never_shared() -> None:
    """billed_items of one Bill is built once and kept while the Bill lives: a caller that
    changes its copy changes nothing for the next, another Bill (another as_of) gets its own
    items, and what is kept lives on the Bill (and goes with it)."""
    import dataclasses

    from shadeanalytics.analytics.billing import bill_fleet

    history = sa.read(SAMPLE_DIR)
    early = bill_fleet(history, as_of="2026-11-18T12:00:00Z")
    late = bill_fleet(history, as_of="2026-11-20T00:00:00Z")
    first = finops.billed_items(early)
    assert finops.billed_items(early).equals(first)
    expected = first.copy(deep=True)
    first["billed_price_usd"] = 0.0  # the caller's copy only
    first.loc[first.index[0], "service"] = "changed"
    again = finops.billed_items(early)
    pd.testing.assert_frame_equal(again, expected, check_exact=True)
    other = finops.billed_items(late)
    assert len(other) > 0 and not other.equals(again)  # intervals clipped at another as_of
    assert other["end_at"].max() == pd.Timestamp("2026-11-20T00:00:00Z")
    assert again["end_at"].max() == pd.Timestamp("2026-11-18T12:00:00Z")
    assert early.derived["billed_items"] is not late.derived["billed_items"]
    assert dataclasses.replace(early, as_of=late.as_of).derived == {}  # kept on one Bill only


def test_one_day_of_history_says_last_day_s_burn() -> None:
    """25 hourly polls of one $2.10/h instance (11-19 00:00 to 11-20 00:00): one day of burn,
    in the singular; $50.40 so far + 11 days x $50.40 to Dec 1 = $604.80, a band of one day."""
    polls = pd.date_range("2026-11-19T00:00Z", "2026-11-20T00:00Z", freq="h")
    record = make_instance("a", active_at="2026-11-19T00:00:00Z")
    tables = sa.read([envelope({"instances": [record]}, f"{t:%Y-%m-%dT%H:%M:%SZ}", "/instances")
                      for t in polls])
    text = summary_text(tables, as_of="2026-11-20T00:00:00Z")
    assert ("  Nov 2026: $50.40 so far; forecast $604.80 ($604.80 to $604.80, last day's "
            "burn)\n") in text
