"""The one billing model: hand-computed bills, and every view of one fleet giving the same
dollars (breakdowns, fleet over time, time in status, lifecycle, cluster summary, report CSVs,
summary), on hand-built fleets, the sample and a generated month of history."""

from __future__ import annotations

import copy
import csv
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DIR, envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.analytics import asof
from shadeanalytics.analytics.billing import BILL_COLUMNS, bill_fleet
from shadeanalytics.analytics.costs import cluster_summary, cost_breakdown
from shadeanalytics.analytics.inventory import gpu_inventory
from shadeanalytics.analytics.lifecycle import instance_lifecycle
from shadeanalytics.analytics.quality import quality_checks
from shadeanalytics.analytics.timeline import fleet_over_time, status_timeline, time_in_status
from shadeanalytics.output.report import summary_text, write_report
from shadeanalytics.testing import synthetic


def at(clock: str) -> str:
    return f"2026-11-20T{clock}:00Z"


AS_OF = pd.Timestamp(at("04:00"))
POLLS = ["00:00", "01:00", "02:00", "03:00"]
_: None = None  # not listed in that poll

#: status of each standalone instance at each poll, and its fields
FLEET: dict[str, tuple[list[str | None], dict[str, Any]]] = {
    # running all along since 00:00: 4 h at $2.10 = $8.40
    "a": (["active"] * 4, {"active_at": at("00:00")}),
    # deleting from the 01:00 poll on, then gone: billing stops at 01:00: 1 h = $2.10
    "d": (["active", "deleting", "deleting", _], {"active_at": at("00:00")}),
    # vanishes without a deleting ever seen: billed until the 02:00 poll that no longer
    # lists it: 2 h = $4.20
    "v": (["active", "active", _, _], {"active_at": at("00:00")}),
    # active without active_at, first listed at 01:00: billed from that poll: 3 h = $6.30
    "n": ([_, "active", "active", "active"], {"active_at": None}),
    # a spot rental at its own $1.00/h (on-demand $2.10), active since 02:30: 1.5 h = $1.50
    "s": ([_, _, _, "active"], {"active_at": at("02:30"), "created_at": at("02:20"),
                                 "rental_terms": {"rental_type": "spot",
                                                  "hourly_price": "1.00"}}),
    # active with deleted_at set (as in Shadeform's docs): the status wins: 4 h = $8.40
    "x": (["active"] * 4, {"active_at": at("00:00"), "deleted_at": at("01:30")}),
    # pending, then seen in error with an active_at between the polls: active 01:30-02:00
    "e": (["pending", "pending", "error", "error"], {"active_at": at("01:30")}),
    # never active: nothing billed
    "p": (["pending"] * 4, {"active_at": None}),
}
ACCRUED = {"a": 8.40, "d": 2.10, "v": 4.20, "n": 6.30, "s": 1.50, "x": 8.40, "e": 1.05,
           "p": 0.0}
ENDS = {"a": "as_of", "d": "deleting_observed", "v": "vanished", "n": "as_of", "s": "as_of",
        "x": "as_of", "e": "error_observed", "p": None}
HOURLY = 7.30  # running at 04:00: a $2.10 + n $2.10 + s $1.00 + x $2.10


def _fleet_documents() -> list[dict[str, Any]]:
    docs = []
    for k, clock in enumerate(POLLS):
        listed = []
        for iid, (statuses, fields) in FLEET.items():
            if statuses[k] is None:
                continue
            record = make_instance(iid, status=statuses[k], cost_estimate=str(ACCRUED[iid]),
                                   **{"created_at": at("00:00"), "deleted_at": None, **fields})
            if statuses[k] in ("pending", "creating") or (
                    iid == "e" and statuses[k] == "pending"):
                record["active_at"] = None
            listed.append(record)
        docs.append(envelope({"instances": listed}, at(clock), "/instances"))
    return docs


def history() -> sa.Tables:
    return sa.read(_fleet_documents())


@pytest.fixture(scope="module")
def fleet() -> sa.Tables:
    return history()


def test_the_bill_of_each_instance(fleet: sa.Tables) -> None:
    """Every rule of the billing model, hand-computed."""
    billed = bill_fleet(fleet, as_of=AS_OF).instances.set_index("instance_id")
    assert billed["accrued_usd"].to_dict() == pytest.approx(ACCRUED)
    assert billed["billing_end_source"].to_dict() == ENDS
    assert billed["billed_from_source"].to_dict() == {
        "a": "api", "d": "api", "v": "api", "n": "observed", "s": "api", "x": "api",
        "e": "api", "p": None}
    assert billed.loc["n", "billed_from"] == pd.Timestamp(at("01:00"))
    assert billed.loc["d", "billed_to"] == pd.Timestamp(at("01:00"))
    assert billed.loc["v", "billed_to"] == pd.Timestamp(at("02:00"))
    assert billed["state"].to_dict() == {
        "a": "running", "d": "stopped", "v": "stopped", "n": "running", "s": "running",
        "x": "running", "e": "stopped", "p": "pending"}
    assert billed.loc["s", "billed_price_usd"] == 1.0
    assert billed["status"].astype(str).to_dict()["v"] == "deleted"  # vanished
    assert list(billed.columns[-len(BILL_COLUMNS):]) == list(BILL_COLUMNS)


def test_every_view_gives_the_same_dollars(fleet: sa.Tables) -> None:
    """Breakdown, fleet over time, time in status, lifecycle, cluster and summary agree."""
    costs = cost_breakdown(fleet, as_of=AS_OF)
    assert costs["accrued_usd"].sum() == pytest.approx(sum(ACCRUED.values()))
    assert costs["hourly_usd"].sum() == pytest.approx(HOURLY)
    assert costs["running_instances"].sum() == 4
    fleet_frame = fleet_over_time(fleet, as_of=AS_OF)
    assert fleet_frame["cost_usd"].sum() == pytest.approx(sum(ACCRUED.values()), abs=0.01)
    # nothing starts or stops between 03:00 and 04:00: the period's rate is the breakdown's
    last = fleet_frame.set_index("period_start").loc[pd.Timestamp(at("03:00"))]
    assert last["hourly_usd"] == pytest.approx(HOURLY)
    # active hours x billed price = accrued, instance by instance
    timeline = status_timeline(fleet, as_of=AS_OF)
    hours = time_in_status(timeline, by="resource_id", exclude=())
    active = hours[hours["status"] == "active"].set_index("resource_id")["total_s"] / 3600
    billed = bill_fleet(fleet, as_of=AS_OF).instances.set_index("instance_id")
    assert (active * billed["billed_price_usd"]).dropna().to_dict() == pytest.approx(
        {k: v for k, v in ACCRUED.items() if v})
    assert instance_lifecycle(fleet, as_of=AS_OF)["accrued_usd"].sum() == pytest.approx(31.95)
    text = summary_text(fleet, as_of=AS_OF)
    assert "accrued so far: $31.95\n" in text
    assert "burn rate: $7.30/h" in text


def test_latest_and_frames_follow_the_same_rule(fleet: sa.Tables) -> None:
    """Tables.latest() bills like its history; a multi-snapshot frame is refused with the
    fix, never billed by a second rule."""
    pd.testing.assert_frame_equal(cost_breakdown(fleet.latest(), as_of=AS_OF),
                                  cost_breakdown(fleet, as_of=AS_OF))
    for frame, times in ((fleet.instances, 4), (fleet.latest().instances, 3)):
        with pytest.raises(ValueError) as info:
            cost_breakdown(frame, as_of=AS_OF)
        assert str(info.value) == (
            f"instances holds rows observed at {times} different times (a history, or "
            "Tables.latest() of one); pass the Tables itself, not one of its tables, so that "
            "the one billing rule closes deleting, errored and vanished instances")


def test_two_polls_where_an_instance_vanishes() -> None:
    """The issue's case: a vanishes at the second poll: 1 running, $2.10/h, whichever way."""
    docs = [envelope({"instances": [make_instance("a"), make_instance("b")]}, at("01:00"),
                     "/instances"),
            envelope({"instances": [make_instance("b")]}, at("02:00"), "/instances")]
    tables = sa.read(docs)
    for source in (tables, tables.latest()):
        costs = cost_breakdown(source, as_of=at("03:00"))
        assert costs[["running_instances", "hourly_usd"]].iloc[0].tolist() == [1, 2.10]
        # a: 00:05 -> 02:00 (vanished), b: 00:05 -> 03:00, at $2.10/h
        assert costs["accrued_usd"].iloc[0] == pytest.approx(2.10 * (115 + 175) / 60)


def test_rows_observed_after_as_of_do_not_count(fleet: sa.Tables) -> None:
    """As of 01:30 the 02:00 and 03:00 polls have not happened: v still runs, s unknown."""
    billed = bill_fleet(fleet, as_of=at("01:30")).instances.set_index("instance_id")
    assert "s" not in billed.index
    assert billed.loc["v", "state"] == "running"
    assert billed.loc["v", "accrued_usd"] == pytest.approx(2.10 * 1.5)
    assert billed.loc["d", "accrued_usd"] == pytest.approx(2.10)


def test_unknown_is_never_zero_in_one_snapshot() -> None:
    """One snapshot, active without active_at: accrued NA, counted; summary says unknown."""
    doc = envelope({"instances": [make_instance("k"), make_instance("u", active_at=None),
                                  make_instance("w", cost_estimate=None)]},
                   at("01:00"), "/instances")
    tables = sa.read(doc)
    billed = bill_fleet(tables, as_of=at("02:00")).instances.set_index("instance_id")
    assert np.isnan(billed.loc["u", "accrued_usd"])
    assert pd.isna(billed.loc["u", "billed_from"])
    costs = cost_breakdown(tables, as_of=at("02:00"))
    assert costs["accrued_usd"].iloc[0] == pytest.approx(2 * 2.10 * 115 / 60)
    assert costs[["instances_without_accrued", "instances_without_estimate"]].iloc[0] \
        .tolist() == [1, 1]
    text = summary_text(tables, as_of=at("02:00"))
    assert "accrued so far: $8.05 (unknown for 1 instance)\n" in text
    # the gap only over k, the one with both figures: 4.03 - 10.50
    assert "Shadeform's estimates: $21.00 (unknown for 1 instance); gap -$6.47" in text
    messages = quality_checks(tables, as_of=at("02:00")).set_index("resource_id")["message"]
    assert messages["u"] == ("status is active but active_at is missing: its billed time and "
                             "accrued cost are unknown")


def test_every_member_unknown_is_na_not_zero() -> None:
    """A group whose every estimate is unknown: reported NA (an empty CSV cell), not $0."""
    doc = envelope({"instances": [make_instance("w", cost_estimate=None)]}, at("01:00"),
                   "/instances")
    costs = cost_breakdown(sa.read(doc), as_of=at("02:00"))
    assert pd.isna(costs["reported_cost_usd"].iloc[0])
    assert pd.isna(costs["cost_gap_usd"].iloc[0])


def test_deleted_at_while_active_is_billed_and_found(fleet: sa.Tables) -> None:
    """An active instance with a deleted_at is billed as running and reported by quality."""
    found = quality_checks(fleet, as_of=AS_OF)
    row = found[found["check"] == "deleted_at_while_active"]
    assert row[["severity", "resource_id", "message"]].to_numpy().tolist() == [[
        "warning", "x", "status is active but deleted_at is 2026-11-20T01:30:00Z: billed as "
        "running (the status wins) until it leaves active"]]


def _without_configuration(catalog: bool) -> sa.Tables:
    record = make_instance("c")
    del record["configuration"]
    docs: list[Any] = [envelope({"instances": [record, make_instance("k")]}, at("01:00"),
                                "/instances")]
    if catalog:
        docs.append(envelope({"instance_types": [{
            "cloud": "hyperstack", "shade_instance_type": "A6000",
            "cloud_instance_type": "gpu_1x_a6000", "hourly_price": 210,
            "configuration": {"memory_in_gb": 12, "storage_in_gb": 256, "vcpus": 6,
                              "num_gpus": 1, "gpu_type": "A6000", "interconnect": "pcie",
                              "vram_per_gpu_in_gb": 48, "gpu_manufacturer": "nvidia",
                              "nvlink": False, "os_options": ["ubuntu_22_shade_os"]},
            "availability": [{"region": "canada-1", "available": True,
                              "display_name": "Canada", "rental_type": "on_demand",
                              "hourly_price": 210}],
            "boot_time": {"min_boot_in_sec": 60, "max_boot_in_sec": 300},
            "deployment_type": "vm"}]}, at("01:00"), "/instances/types"))
    return sa.read(docs)


def test_configuration_from_the_catalog() -> None:
    """No configuration, but the catalog has the type: its GPUs count, marked catalog."""
    tables = _without_configuration(catalog=True)
    billed = bill_fleet(tables, as_of=at("02:00")).instances.set_index("instance_id")
    assert billed.loc["c", "configuration_source"] == "catalog"
    assert billed.loc["c", ["gpu_type", "num_gpus", "total_vram_gb"]].tolist() == [
        "A6000", 1, 48]
    inventory = gpu_inventory(tables, as_of=at("02:00"))
    assert inventory[["gpu_type", "instances", "gpus"]].to_numpy().tolist() == [["A6000", 2, 2]]
    found = quality_checks(tables, as_of=at("02:00"))
    assert found.loc[found["check"] == "missing_configuration", "severity"].tolist() == [
        "info"]


def test_no_configuration_and_no_catalog_is_unknown_not_zero_gpus() -> None:
    """Without configuration or catalog, GPUs are unknown (NA), not zero, in every view."""
    tables = _without_configuration(catalog=False)
    inventory = gpu_inventory(tables, as_of=at("02:00")).set_index("gpu_type")
    assert inventory.loc["(unknown)", "instances"] == 1
    assert pd.isna(inventory.loc["(unknown)", "gpus"])
    assert inventory.loc["(unknown)", "instances_without_configuration"] == 1
    costs = cost_breakdown(tables, by="gpu_type", as_of=at("02:00"))
    assert costs["gpu_type"].tolist() == ["(unknown)", "A6000"] or \
        costs["gpu_type"].tolist() == ["A6000", "(unknown)"]
    found = quality_checks(tables, as_of=at("02:00"))
    assert found.loc[found["check"] == "missing_configuration",
                     ["severity", "resource_id"]].to_numpy().tolist() == [["warning", "c"]]


def test_a_cluster_is_billed_from_its_members() -> None:
    """cluster_summary's accrued is its members' bill; a vanished cluster is deleted."""
    members = [make_instance("m1"), make_instance("m2")]
    docs = [envelope({"clusters": [make_cluster("c-1", members)]}, at("01:00")),
            envelope({"clusters": []}, at("02:00"))]
    summary = cluster_summary(sa.read(docs), as_of=at("03:00"))
    assert summary["status"].astype(str).tolist() == ["deleted"]
    # both members: 00:05 -> 02:00, the poll that no longer lists the cluster
    assert summary["accrued_usd"].iloc[0] == pytest.approx(2 * 2.10 * 115 / 60)
    assert summary["running_instances"].iloc[0] == 0


# -- the sample and a generated month: every view, one total ------------------------------------


def _month() -> sa.Tables:
    """30 days of 6-hourly polls of another seed; deleted resources vanish without a
    `deleted` sighting (as the real API does), some estimates and active_at are missing."""
    rng = random.Random(3)
    docs = []
    for poll in synthetic.fleet_history(seed=11, polls=120, every_hours=6.0):
        for endpoint, key in (("/clusters", "clusters"), ("/instances", "instances")):
            response = copy.deepcopy(poll[key])
            items = [i for i in response[key] if i["status"] != "deleted"]
            for item in items:
                if rng.random() < 0.02:
                    item.pop("cost_estimate", None)
                if key == "instances" and rng.random() < 0.01:
                    item["active_at"] = None
            response[key] = items
            docs.append(envelope(response, poll["observed_at"], endpoint))
    return sa.read(docs)


def _views_agree(tables: sa.Tables, as_of: pd.Timestamp, out: Path,
                 report: Path | None = None) -> None:
    """Every view adds up to the one total: the helpers take the fleet billed once (the
    first bills ``tables`` itself), the report is ``report`` (written as of ``as_of``) or
    written into ``out``."""
    costs = cost_breakdown(tables, as_of=as_of)
    total = costs["accrued_usd"].sum()
    billed = bill_fleet(tables, as_of=as_of)
    fleet_frame = fleet_over_time(billed)
    assert fleet_frame["cost_usd"].sum() == pytest.approx(total, abs=0.01)
    storage = billed.volumes["accrued_usd"].sum()
    compute = total - storage  # lifecycle lists instances; volumes.csv the storage
    assert instance_lifecycle(billed)["accrued_usd"].sum() == pytest.approx(compute)
    for by in ("gpu_type", "cluster_id", "region", "rental_type", "status", "service"):
        assert cost_breakdown(billed, by=by)["accrued_usd"].sum() == pytest.approx(total)
    if report is None:
        write_report(tables, out, as_of=as_of, charts=False)
    else:
        out = report
    for name in ("costs_by_cloud", "costs_by_gpu_type", "costs_by_cluster", "costs_by_region",
                 "costs_by_service", "lifecycle", "volumes"):
        with (out / f"{name}.csv").open(newline="") as f:
            cells = [r["accrued_usd"] for r in csv.DictReader(f)]
        expected = {"lifecycle": compute, "volumes": storage}.get(name, total)
        assert sum(float(c) for c in cells if c) == pytest.approx(expected, abs=0.01), name
    with (out / "fleet_over_time.csv").open(newline="") as f:
        assert sum(float(r["cost_usd"]) for r in csv.DictReader(f)) == pytest.approx(
            total, abs=0.01)
    text = summary_text(tables, as_of=as_of)
    assert f"accrued so far: ${total:,.2f}" in text
    assert f"burn rate: ${costs['hourly_usd'].sum():,.2f}/h" in text
    # the clusters' accrued is their members': it equals the breakdown by cluster
    by_cluster = cost_breakdown(billed, by="cluster_id")
    members = by_cluster[~by_cluster["cluster_id"].isin(["(standalone)", "(storage)"])]
    assert cluster_summary(billed)["accrued_usd"].sum() == pytest.approx(
        members["accrued_usd"].sum())


def test_the_sample_gives_one_total(tmp_path: Path,
                                    shared_sample_report: tuple[Path, list[str]]) -> None:
    """On the sample, every view of the cost adds up to the bill's one total (the report: the
    run's shared sample report, as of the same newest poll)."""
    _views_agree(sa.read(SAMPLE_DIR), pd.Timestamp("2026-11-20T00:00:00Z"), tmp_path,
                 report=shared_sample_report[0])


@pytest.mark.hardening
def test_a_generated_month_gives_one_total(tmp_path: Path) -> None:
    """On a generated month with every case, every view adds up to the bill's total."""
    tables = _month()
    as_of = tables.polls["observed_at"].max()
    billed = bill_fleet(tables, as_of=as_of).instances
    # the month has every case: spot, ended by deleting and by vanishing, missing values
    assert {"deleting_observed", "vanished", "as_of"} <= set(billed["billing_end_source"])
    assert (billed["rental_type"] == "spot").any()
    assert billed["cost_estimate_usd"].isna().any()
    _views_agree(tables, as_of, tmp_path)


def test_the_store_bills_as_the_files_do(tmp_path: Path) -> None:
    """The store keeps a row per change and the last sighting; the files a row per poll: the
    same polls give the same bill (deleting observed, vanished, every price)."""
    from shadeanalytics.testing.fakeapi import default_scenario

    scenario = default_scenario()
    docs = []
    with sa.Store(tmp_path / "history.db") as store:
        for state in scenario:
            store.record_poll(state.at, clusters=state.clusters, instances=state.instances,
                              instance_types=state.instance_types)
            stamp = state.at.strftime("%Y-%m-%dT%H:%M:%SZ")
            docs += [envelope(state.clusters, stamp, "/clusters"),
                     envelope(state.instances, stamp, "/instances"),
                     envelope(state.instance_types, stamp, "/instances/types")]
        stored = store.read()
    files = sa.read(docs)
    as_of = pd.Timestamp(scenario[-1].at) + pd.Timedelta(hours=1)
    columns = ["instance_id", "state", "billed_price_usd", "billed_from", "billed_to",
               "billing_end_source", "billed_hours", "accrued_usd"]

    def billed(tables: sa.Tables) -> pd.DataFrame:
        out = bill_fleet(tables, as_of=as_of).instances[columns]
        return out.sort_values("instance_id").drop_duplicates().reset_index(drop=True)

    pd.testing.assert_frame_equal(billed(stored), billed(files))
    assert billed(files)["accrued_usd"].sum() > 0
    pd.testing.assert_frame_equal(cost_breakdown(stored, as_of=as_of),
                                  cost_breakdown(files, as_of=as_of))


@pytest.fixture(scope="module")
def stored_polls(tmp_path_factory: pytest.TempPathFactory) -> tuple[sa.Tables, sa.Tables]:
    """``history()`` from its files and as a store that recorded its polls (read once)."""
    files = history()
    with sa.Store(tmp_path_factory.mktemp("past") / "history.db") as store:
        for k, moment in enumerate(POLLS):
            listed = files.instances[files.instances["observed_at"] == pd.Timestamp(at(moment))]
            docs = [d for d in _fleet_documents() if d["observed_at"] == at(moment)]
            store.record_poll(pd.Timestamp(at(moment)).to_pydatetime(), clusters=None,
                              instances=docs[0]["response"], instance_types=None)
            assert len(listed) == len(docs[0]["response"]["instances"]), k
        return files, store.read()


@pytest.mark.parametrize("clock", ["00:30", "01:00", "02:00", "02:30", "03:00", "04:00"])
def test_a_past_as_of_bills_the_store_as_the_files(stored_polls: tuple[sa.Tables, sa.Tables],
                                                   clock: str) -> None:
    """The store keeps a row per change and the last sighting only: at an as_of between two of
    an instance's rows it was still listed (not vanished), as the files say."""
    files, stored = stored_polls
    columns = ["instance_id", "state", "billed_from", "billed_to", "billing_end_source",
               "accrued_usd"]

    def billed(tables: sa.Tables) -> pd.DataFrame:
        return bill_fleet(tables, as_of=at(clock)).instances[columns].sort_values(
            "instance_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(billed(stored), billed(files))


# -- storage ------------------------------------------------------------------------------------


def _with_a_volume(mounted_by: str | None, *, deleted: bool = False) -> sa.Tables:
    """One instance at $2.10/h and one 500 GB volume at $0.0001/GB/h, polled at 00:00 and
    01:00 (``deleted``: gone from a /volumes poll at 02:00)."""
    volume = {"id": "vol-1", "cloud": "aws", "cloud_assigned_id": "vol-0a1", "region":
              "us-east-1", "name": "datasets", "fixed_size": True, "size_in_gb": 500,
              "cost_estimate": "0.05", "supports_multi_mount": False, "mounted_by": mounted_by}
    types = {"volume_types": [{"cloud": "aws", "region": "us-east-1",
                               "supports_multi_mount": False, "fixed_size": True,
                               "price_per_gb_per_hour": "0.0001"}]}
    docs = []
    for clock in ("00:00", "01:00"):
        docs += [envelope({"instances": [make_instance("i-1", active_at=at("00:00"))]},
                          at(clock), "/instances"),
                 envelope({"volumes": [volume]}, at(clock), "/volumes"),
                 envelope(types, at(clock), "/volumes/types")]
    if deleted:
        docs.append(envelope({"volumes": []}, at("02:00"), "/volumes"))
    return sa.read(docs)


def test_storage_is_part_of_the_bill(tmp_path: Path) -> None:
    """A 500 GB volume at $0.0001/GB/h adds $0.05/h to the burn rate, the month projection,
    costs_by_service and fleet over time; billed from its first sighting (00:00)."""
    tables = _with_a_volume(mounted_by=None)
    as_of = at("02:00")
    volumes = bill_fleet(tables, as_of=as_of).volumes
    assert volumes[["volume_id", "billed_price_usd", "billed_hours", "accrued_usd",
                    "billing_end_source"]].to_numpy().tolist() == [
        ["vol-1", pytest.approx(0.05), 2.0, pytest.approx(0.10), "as_of"]]
    by_service = cost_breakdown(tables, by="service", as_of=as_of).set_index("service")
    assert by_service["hourly_usd"].to_dict() == pytest.approx({"compute": 2.10,
                                                                "storage": 0.05})
    assert by_service["accrued_usd"].to_dict() == pytest.approx({"compute": 4.20,
                                                                 "storage": 0.10})
    assert by_service.loc["storage", ["instances", "volumes"]].tolist() == [0, 1]
    by_gpu = cost_breakdown(tables, by="gpu_type", as_of=as_of).set_index("gpu_type")
    assert by_gpu.loc["(storage)", "hourly_usd"] == pytest.approx(0.05)
    text = summary_text(tables, as_of=as_of)
    assert "burn rate: $2.15/h = $51.60/day = $1,569.50/month (730 h)\n" in text
    assert "    compute $2.10/h, storage $0.05/h (1 volumes)\n" in text
    assert "accrued so far: $4.30\n" in text
    assert fleet_over_time(tables, as_of=as_of)["cost_usd"].sum() == pytest.approx(4.30)
    write_report(tables, tmp_path, as_of=as_of, charts=False, html=False)
    with (tmp_path / "costs_by_service.csv").open(newline="") as f:
        rows = {r["service"]: r for r in csv.DictReader(f)}
    assert float(rows["storage"]["hourly_usd"]) == pytest.approx(0.05)
    assert float(rows["storage"]["monthly_usd"]) == pytest.approx(36.5)
    with (tmp_path / "volumes.csv").open(newline="") as f:
        assert [r["accrued_usd"] for r in csv.DictReader(f)] == ["0.1"]


def test_an_unmounted_volume_is_orphaned_and_a_vanished_one_stops() -> None:
    """An unmounted volume is orphaned; a vanished one is billed until its poll."""
    found = quality_checks(_with_a_volume(mounted_by=None), as_of=at("02:00"))
    assert found.loc[found["check"] == "orphaned_volume", ["resource_id", "message"]] \
        .to_numpy().tolist() == [["vol-1", "billed and mounted by no instance: $36.50/month"]]
    mounted = quality_checks(_with_a_volume(mounted_by="i-1"), as_of=at("02:00"))
    assert "orphaned_volume" not in set(mounted["check"])
    # gone from the 02:00 poll of /volumes: billed until that poll, 00:00 -> 02:00
    volumes = bill_fleet(_with_a_volume(mounted_by="i-1", deleted=True), as_of=at("03:00")).volumes
    assert volumes[["state", "billing_end_source", "accrued_usd"]].to_numpy().tolist() == [
        ["stopped", "vanished", pytest.approx(0.10)]]


def test_distinct_poll_times_in_one_pass_equal_numpy_unique() -> None:
    """The sorted poll times' one-pass distinct equals np.unique; unsorted ones fall back."""
    times = np.array([5, 5, 7, 9, 9, 9, 12], dtype=np.int64)
    assert asof._distinct(times).tolist() == [5, 7, 9, 12]
    assert asof._distinct(times[::-1].copy()).tolist() == [5, 7, 9, 12]
    assert asof._distinct(np.zeros(0, dtype=np.int64)).tolist() == []
    rng = np.random.default_rng(3)
    drawn = np.sort(rng.integers(0, 50, 500))
    assert np.array_equal(asof._distinct(drawn), np.unique(drawn))
