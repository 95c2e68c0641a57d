"""Know what we know (issue 20): one ``as_of`` rule, the basis of every billed dollar, stale
data said loudly, unknown never zero, and no signal from too little history. Hand-built
histories, the real loader, a real SQLite store and the command line in-process."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SAMPLE_DIR, SEED_PATH, envelope, make_instance, volume_history

import shadeanalytics as sa
from shadeanalytics._common import usd
from shadeanalytics.analytics import alerts, asof
from shadeanalytics.analytics.billing import BASIS_COLUMNS, bill_fleet
from shadeanalytics.analytics.costs import cluster_summary, cost_breakdown
from shadeanalytics.analytics.finops import billed_items, cost_over_time, month_forecast
from shadeanalytics.analytics.inventory import gpu_inventory
from shadeanalytics.analytics.lifecycle import instance_lifecycle
from shadeanalytics.analytics.market import latest_catalog, market_compare, price_history
from shadeanalytics.analytics.quality import quality_checks
from shadeanalytics.analytics.timeline import fleet_over_time, status_timeline
from shadeanalytics.cli import main
from shadeanalytics.errors import DataWarning
from shadeanalytics.live.store import Store
from shadeanalytics.output.focus import focus_rows
from shadeanalytics.output.report import analytics, history_frames, summary_text, write_report

#: One instance at $2.10/h: active_at 00:00, seen active at the hourly polls 01:00-03:00.
POLLS = ["2026-11-20T01:00:00Z", "2026-11-20T02:00:00Z", "2026-11-20T03:00:00Z"]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _history(**fields: Any) -> sa.Tables:
    record = make_instance("a", active_at="2026-11-20T00:00:00Z",
                           created_at="2026-11-19T23:50:00Z", **fields)
    return sa.read([envelope({"instances": [record]}, t, "/instances") for t in POLLS])


@pytest.fixture(scope="module")
def small() -> sa.Tables:
    """Three hourly polls of an instance, a volume and an /instances/types catalog."""
    offer = {"cloud": "hyperstack", "shade_instance_type": "A6000",
             "cloud_instance_type": "gpu_1x_a6000", "hourly_price": 150,
             "configuration": {"memory_in_gb": 12, "storage_in_gb": 256, "vcpus": 6,
                               "num_gpus": 1, "gpu_type": "A6000", "interconnect": "pcie",
                               "vram_per_gpu_in_gb": 48, "gpu_manufacturer": "nvidia",
                               "nvlink": False, "os_options": ["ubuntu_22_shade_os"]},
             "availability": [{"region": "canada-1", "available": True,
                               "display_name": "canada-1", "rental_type": "on_demand"}],
             "boot_time": {"min_boot_in_sec": 60, "max_boot_in_sec": 300},
             "deployment_type": "vm"}
    docs = volume_history(tuple(POLLS)) + [
        envelope({"instance_types": [offer]}, t, "/instances/types") for t in POLLS]
    return sa.read(docs)


# -- 1. one as_of rule ----------------------------------------------------------------------


def test_library_and_cli_give_the_same_accrued_total() -> None:
    """The README's first lines without as_of and `summary data/sample` agree to the cent."""
    total = sa.cost_breakdown(sa.read(sa.sample_path()), by="cloud").accrued_usd.sum()
    code, out, err = _run("summary", str(SAMPLE_DIR))
    assert (code, err) == (0, "")
    assert f"  accrued so far: {usd(total)}\n" in out
    assert usd(total) == "$460,741.71"  # the newest poll, 2026-11-20T00:00Z, not the clock


def test_every_helper_defaults_to_the_newest_poll(small: sa.Tables) -> None:
    """Each public helper taking as_of gives, by default, what it gives at the CLI's as_of."""
    sample = small
    at = asof.resolve_as_of(None, sample)
    assert at == pd.Timestamp(POLLS[-1])
    assert not market_compare(sample).empty and not sample.volumes.empty
    billed = bill_fleet(sample, as_of=at)  # the explicit as_of, billed once
    pd.testing.assert_frame_equal(bill_fleet(sample).instances, billed.instances)
    # (the helper's default, the same helper at the CLI's as_of)
    pairs = [
        (cost_breakdown(sample), cost_breakdown(billed)),
        (cluster_summary(sample), cluster_summary(billed)),
        (gpu_inventory(sample), gpu_inventory(billed)),
        (instance_lifecycle(sample), instance_lifecycle(billed)),
        (quality_checks(sample), quality_checks(billed)),
        (status_timeline(sample), status_timeline(sample, as_of=at)),
        (fleet_over_time(sample), fleet_over_time(billed)),
        (cost_over_time(sample, freq="1D"), cost_over_time(billed, freq="1D")),
        (month_forecast(sample), month_forecast(billed)),
        (billed_items(sample), billed_items(billed)),
        (market_compare(sample), market_compare(billed)),
        (latest_catalog(sample), latest_catalog(sample, as_of=at)),
        (price_history(sample), price_history(sample, as_of=at)),
        (focus_rows(sample), focus_rows(billed)),
        (analytics(sample, only=("costs_by_cloud",))["costs_by_cloud"],
         analytics(billed, only=("costs_by_cloud",))["costs_by_cloud"]),
        (history_frames(sample)["costs_daily"],
         history_frames(billed)["costs_daily"]),
    ]
    for default, explicit in pairs:
        pd.testing.assert_frame_equal(default, explicit)
    assert summary_text(sample) == summary_text(sample, as_of=at)
    assert alerts.evaluate(sample) == alerts.evaluate(sample, as_of=at)


def test_now_only_when_asked_and_from_config(monkeypatch: pytest.MonkeyPatch,
                                             small: sa.Tables) -> None:
    """"now" is SHADEANALYTICS_NOW (config.now), never the wall clock; a later failed poll
    is not the data's time; an undated source asks for as_of."""
    monkeypatch.setenv("SHADEANALYTICS_NOW", "2026-11-21T06:00:00Z")
    assert asof.resolve_as_of("now", small) == pd.Timestamp("2026-11-21T06:00:00Z")
    assert bill_fleet(small, as_of="now").as_of == pd.Timestamp("2026-11-21T06:00:00Z")
    failed = pd.DataFrame({"observed_at": [pd.Timestamp("2026-11-21T00:00:00Z")],
                           "endpoint": ["/instances"], "ok": [False]}).astype(
        small.polls.dtypes.to_dict())
    tables = replace(small, polls=pd.concat([small.polls, failed], ignore_index=True))
    assert asof.resolve_as_of(None, tables) == pd.Timestamp(POLLS[-1])
    seed = sa.read_clusters(SEED_PATH)
    with pytest.raises(asof.UndatedError, match=r"the sources are undated .* pass as_of=\.\.\."):
        cost_breakdown(seed)
    code, out, err = _run("summary", str(SEED_PATH))
    assert (code, out) == (2, "")
    assert err.endswith("Error: the sources are undated (no observed_at: a bare API response, "
                        "not a snapshot or a store), so they have no time of their own: pass "
                        "--as-of TIME, or --as-of now\n")


# -- 2. the basis of every billed interval ----------------------------------------------------


def test_each_interval_carries_its_basis() -> None:
    """Inferred before the first poll, observed between polls, extrapolated after the newest;
    every money table splits accrued_usd by it, to the cent."""
    history = _history()
    billed = bill_fleet(history, as_of="2026-11-20T05:00:00Z")
    assert billed.intervals[["start_at", "end_at", "basis"]].astype(
        {"start_at": str, "end_at": str}).to_numpy().tolist() == [
        ["2026-11-20 00:00:00+00:00", "2026-11-20 01:00:00+00:00", "inferred"],
        ["2026-11-20 01:00:00+00:00", "2026-11-20 03:00:00+00:00", "observed"],
        ["2026-11-20 03:00:00+00:00", "2026-11-20 05:00:00+00:00", "extrapolated"]]
    row = billed.instances.iloc[0]
    # 1 h inferred, 2 h observed, 2 h extrapolated at $2.10/h: 5 h = $10.50
    assert [row[c] for c in ("accrued_usd", *BASIS_COLUMNS)] == pytest.approx(
        [10.5, 4.2, 2.1, 4.2, 0.0])
    for table in (cost_breakdown(billed, by="cloud"), cluster_summary(history, as_of=billed.as_of),
                  cost_breakdown(sa.read(SAMPLE_DIR), by=["gpu_type", "service"])):
        split = table[list(BASIS_COLUMNS)].sum(axis=1, min_count=1)
        assert ((split - table["accrued_usd"]).abs().fillna(0) < 0.005).all()
    by_basis = cost_over_time(billed, freq="1D", by="basis")
    assert dict(zip(by_basis["basis"], by_basis["cost_usd"].round(9), strict=True)) == {
        "extrapolated": 4.2, "inferred": 2.1, "observed": 4.2}


def test_a_record_that_contradicts_itself_is_disputed(tmp_path: Path) -> None:
    """The seed (active with deleted_at): all of its accrued cost is disputed, and the page's
    headline, summary and check say so in words."""
    seed = sa.read_clusters(SEED_PATH)
    at = "2026-11-20T00:00:00Z"
    costs = cost_breakdown(seed, as_of=at)
    assert costs["accrued_disputed_usd"].sum() == costs["accrued_usd"].sum()
    assert usd(costs["accrued_usd"].sum()) == "$188,224.66"
    write_report(seed, tmp_path, as_of=at, charts=False)
    page = (tmp_path / "index.html").read_text()
    headline = page[page.index('<section id="headline"'):page.index("</section>")]
    assert ("$188,224.66 of the accrued total rests on 1 record that contradicts itself: "
            "see Findings") in headline
    assert headline.index("contradicts itself") < headline.index("Accrued so far")
    assert ("  accrued so far: $188,224.66\n    $188,224.66 of it rests on 1 record that "
            "contradicts itself: see the quality findings\n") in summary_text(seed, as_of=at)
    code, out, _ = _run("check", str(SEED_PATH), "--as-of", at)
    assert (code, out) == (0, "note: $188,224.66 of the accrued total rests on 1 record that "
                              "contradicts itself: see the quality findings\n")


# -- 3. stale data is loud --------------------------------------------------------------------


def test_staleness_grace_is_three_poll_intervals_at_least_an_hour() -> None:
    """Hourly polls: grace 3 h; one poll: 1 h; stale only past the grace."""
    history = _history()
    fresh = asof.freshness(history, pd.Timestamp("2026-11-20T06:00:00Z"))
    assert (fresh.grace, fresh.behind, fresh.stale) == (pd.Timedelta(hours=3),
                                                        pd.Timedelta(hours=3), False)
    assert asof.freshness(history, pd.Timestamp("2026-11-20T06:00:01Z")).stale
    one = sa.read(envelope({"instances": [make_instance("a")]}, POLLS[0], "/instances"))
    assert asof.freshness(one, pd.Timestamp("2026-11-20T02:00:00Z")).grace == \
        pd.Timedelta(hours=1)


def test_a_week_old_store_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary --as-of now opens with the staleness and the extrapolated amount; check
    breaches stale_data (exit 10); the FOCUS rows after the newest poll are marked."""
    db = tmp_path / "history.db"
    record = make_instance("a", active_at="2026-11-20T00:00:00Z")
    with Store(db) as store:
        for t in POLLS:
            store.record_poll(t, clusters=None, instances={"instances": [record]},
                              instance_types=None)
        store.record_failed_poll("2026-11-25T03:00:00Z", error="rate limited")
    monkeypatch.setenv("SHADEANALYTICS_NOW", "2026-11-27T03:00:00Z")
    code, out, err = _run("summary", "--store", str(db), "--as-of", "now")
    assert (code, err) == (0, "")
    # 7 days x 24 h x $2.10 after the newest successful poll (03:00)
    assert out.splitlines()[0] == (
        "STALE DATA: the newest successful poll (2026-11-20T03:00:00Z) is 7.0 days before "
        "as_of (grace 3.0 h); $352.80 of the accrued total is extrapolated past it")
    assert "(no band: the data is stale: no observed burn near as_of)" in out
    code, out, _ = _run("check", "--store", str(db), "--as-of", "now")
    assert (code, out.splitlines()[0]) == (10, (
        "stale_data: the newest successful poll (2026-11-20T03:00:00Z) is 7.0 days before "
        "as_of (grace 3.0 h); $352.80 of the accrued total is extrapolated past it"))
    code, out, _ = _run("check", "--store", str(db))  # the data's own time: fresh
    assert (code, out) == (0, "")
    code, out, _ = _run("export", "--store", str(db), "--format", "focus", "--out",
                        str(tmp_path / "focus"), "--as-of", "now")
    assert code == 0 and out.endswith(
        "; $352.80 of it extrapolated after the newest successful poll (x_Basis)\n")
    with Store(db, create=False) as store:
        tables = store.read()
    rows = focus_rows(tables, as_of="now", granularity="daily")
    assert rows.groupby("x_Basis")["BilledCost"].sum().round(2).to_dict() == {
        "extrapolated": 352.8, "inferred": 2.1, "observed": 4.2}
    write_report(tables, tmp_path / "report", as_of="now", charts=False)
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.index("STALE DATA: the newest successful poll") < page.index("Burn rate")


def test_ages_on_stale_data_are_measured_to_the_newest_poll(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """A week past the newest poll, an instance pending since 00:00 (boot estimate 10 min) is
    'pending for 180 min' as the 03:00 poll saw it, not for a week nobody saw."""
    db = tmp_path / "history.db"
    record = make_instance("p", status="pending", active_at=None,
                           boot_time={"min_boot_in_sec": 300, "max_boot_in_sec": 600})
    with Store(db) as store:
        for t in POLLS:
            store.record_poll(t, clusters=None, instances={"instances": [record]},
                              instance_types=None)
    line = ("pending_too_long: instance p pending for 180 min, more than twice its boot "
            "estimate (10 min)")
    code, out, _ = _run("check", "--store", str(db))  # the data's own time
    assert (code, out.splitlines()) == (10, [line])
    monkeypatch.setenv("SHADEANALYTICS_NOW", "2026-11-27T03:00:00Z")
    code, out, _ = _run("check", "--store", str(db), "--as-of", "now")
    assert code == 10 and out.splitlines()[1:] == [line]
    assert out.splitlines()[0].startswith("stale_data: the newest successful poll")


# -- 4. unknown is not zero -------------------------------------------------------------------


def test_a_status_outside_the_enum_is_unknown_not_zero() -> None:
    """accrued NA, counted in instances_without_accrued, finding unknown_status."""
    docs = [envelope({"instances": [make_instance("a", status="hibernating"),
                                    make_instance("b")]}, POLLS[0], "/instances")]
    with pytest.warns(DataWarning):
        tables = sa.read(docs)
    billed = bill_fleet(tables, as_of=POLLS[0])
    accrued = billed.instances.set_index("instance_id")["accrued_usd"]
    assert pd.isna(accrued["a"]) and accrued["b"] == pytest.approx(2.1 * 55 / 60)
    costs = cost_breakdown(billed)
    assert int(costs["instances_without_accrued"].sum()) == 1
    assert costs["accrued_usd"].sum() == pytest.approx(accrued["b"])
    assert cost_over_time(billed, freq="1h", by=())["cost_usd"].sum() == pytest.approx(accrued["b"])
    found = quality_checks(billed)
    assert found[found["check"] == "unknown_status"][["severity", "resource_id", "message"]] \
        .to_numpy().tolist() == [["error", "a", "status 'hibernating' is not in the API's "
                                  "enum: its accrued cost is unknown (NA), not $0"]]


def test_a_volume_first_seen_at_the_only_poll_is_unknown() -> None:
    """Its past is unknown: NA and volumes_without_accrued, never $0; with two polls, known."""
    one = sa.read(volume_history(polls=(POLLS[0],)))
    costs = cost_breakdown(one, by="service", as_of=POLLS[0]).set_index("service")
    assert pd.isna(costs.loc["storage", "accrued_usd"])
    assert costs.loc["storage", "volumes_without_accrued"] == 1
    assert "(unknown for 1 volume)" in summary_text(one, as_of=POLLS[0])
    two = cost_breakdown(sa.read(volume_history(polls=tuple(POLLS[:2]))), by="service",
                         as_of=POLLS[1]).set_index("service")
    assert two.loc["storage", "accrued_usd"] == pytest.approx(0.05)
    assert two.loc["storage", "volumes_without_accrued"] == 0


# -- 5. enough history or no signal -----------------------------------------------------------


def test_no_band_and_no_burn_jump_from_hours() -> None:
    """12 hours of polls: the band is NA with its reason, burn_rate_jump stays quiet."""
    quiet = make_instance("a", active_at="2026-11-19T00:00:00Z")
    big = make_instance("b", hourly_price=8400, active_at="2026-11-20T11:00:00Z")
    times = ["2026-11-20T00:00:00Z", "2026-11-20T06:00:00Z", "2026-11-20T12:00:00Z"]
    tables = sa.read([envelope({"instances": listed}, t, "/instances") for t, listed in
                      zip(times, [[quiet], [quiet], [quiet, big]], strict=True)])
    row = month_forecast(tables).iloc[0]
    assert pd.isna(row["forecast_low_usd"]) and row["burn_days"] == 0
    assert row["band_note"] == "less than 24 h of observed history (12.0 h)"
    assert [b.rule for b in alerts.evaluate(tables)] == []


def test_last_month_comes_from_the_same_billing() -> None:
    """The seed: last month is October's billed cost, as cost_over_time(..., "MS") says."""
    seed = sa.read_clusters(SEED_PATH)
    at = "2026-11-20T00:00:00Z"
    monthly = cost_over_time(seed, freq="MS", by=(), as_of=at)
    october = monthly[monthly["period_start"] == pd.Timestamp("2026-10-01T00:00:00Z")]
    row = month_forecast(seed, as_of=at).iloc[0]
    assert row["last_month_usd"] == pytest.approx(float(october["cost_usd"].iloc[0]))
    assert row["last_month_usd"] == pytest.approx(31 * 24 * 2.10)  # $1,562.40
    assert not row["last_month_complete"]
    assert re.search(r"last month: \$1,562\.40, partial", summary_text(seed, as_of=at))
