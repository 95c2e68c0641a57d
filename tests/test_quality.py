"""Data-quality checks: each one trips on a record made to trip it, and only on that record."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest

import shadeanalytics
from shadeanalytics import DataWarning
from shadeanalytics.analytics.quality import CHECKS, gpu_matches_type, quality_checks

AS_OF = pd.Timestamp("2026-11-20T20:00:00Z")
EARLY = "2026-11-20T10:00:00Z"
LATE = "2026-11-20T18:00:00Z"
COLUMNS = ["severity", "check", "kind", "resource_id", "message"]
SECRET = "sa-fake-secret-name-0001"


def instance(iid: str, **overrides: Any) -> dict[str, Any]:
    """A consistent instance: A6000 at $2.10/h, active since 17:30, so 2.5 h and $5.25 at 20:00.

    Its name carries a secret-like marker: no message may repeat it.
    """
    record: dict[str, Any] = {
        "id": iid, "name": f"{SECRET}-{iid}", "cloud": "hyperstack", "region": "canada-1",
        "shade_instance_type": "A6000", "cloud_instance_type": "gpu_1x_a6000",
        "cloud_assigned_id": f"vm-{iid}", "shade_cloud": True, "status": "active",
        "configuration": {
            "gpu_type": "A6000", "gpu_manufacturer": "nvidia", "num_gpus": 1,
            "vram_per_gpu_in_gb": 48, "vcpus": 6, "memory_in_gb": 12, "storage_in_gb": 256,
            "interconnect": "pcie", "os": "ubuntu_22_shade_os",
        },
        "hourly_price": 210, "cost_estimate": "5.25", "created_at": "2026-11-20T17:27:00Z",
        "active_at": "2026-11-20T17:30:00Z", "deleted_at": None,
    }
    for key, value in overrides.items():
        if key in record["configuration"]:
            record["configuration"][key] = value
        else:
            record[key] = value
    return record


def cluster(cid: str, members: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A consistent cluster: its price is the sum of its members'."""
    return {
        "id": cid, "name": f"{SECRET}-{cid}", "cloud": "hyperstack",
        "region_info": {"region": "canada-1", "display_name": "Canada"}, "status": "active",
        "created_at": "2026-11-20T17:00:00Z", "updated_at": "2026-11-20T17:30:00Z",
        "active_at": "2026-11-20T17:30:00Z", "cost_estimate": "$5.25",
        "hourly_price": sum(m.get("hourly_price") or 0 for m in members),
        "instances": copy.deepcopy(members), **overrides,
    }


def load(clusters: Sequence[dict[str, Any]] = (), instances: Sequence[dict[str, Any]] = (),
         at: str = LATE) -> shadeanalytics.Tables:
    """The records as one snapshot of /clusters and /instances, through the real loader."""
    return shadeanalytics.read([
        {"observed_at": at, "endpoint": "/clusters", "response": {"clusters": list(clusters)}},
        {"observed_at": at, "endpoint": "/instances", "response": {"instances": list(instances)}},
    ])


def found(tables: shadeanalytics.Tables, check: str, **kwargs: Any) -> list[tuple[str, ...]]:
    """(severity, kind, resource_id) of the findings of ``check``."""
    result = quality_checks(tables, as_of=AS_OF, **kwargs)
    rows = result[result["check"] == check]
    return list(rows[["severity", "kind", "resource_id"]].itertuples(index=False, name=None))


def messages(tables: shadeanalytics.Tables, check: str) -> list[str]:
    result = quality_checks(tables, as_of=AS_OF)
    return result.loc[result["check"] == check, "message"].tolist()


def test_consistent_fleet_has_no_findings() -> None:
    """A consistent fleet: an empty frame with the five string columns."""
    tables = load([cluster("c-1", [instance("i-1"), instance("i-2")])], [instance("s-1")])
    result = quality_checks(tables, as_of=AS_OF)
    assert result.empty
    assert result.dtypes.astype(str).to_dict() == dict.fromkeys(COLUMNS, "string")


def test_empty_tables_have_no_findings() -> None:
    """Nothing loaded: an empty frame with the five string columns."""
    result = quality_checks(shadeanalytics.Tables.empty(), as_of=AS_OF)
    assert list(result.columns) == COLUMNS
    assert result.empty
    assert result.dtypes.astype(str).tolist() == ["string"] * 5


def test_cluster_price_mismatch() -> None:
    """$15/h listed over $2.10/h of instances trips; a matching cluster does not."""
    tables = load([cluster("c-bad", [instance("i-1")], hourly_price=1500),
                   cluster("c-ok", [instance("i-2")])])
    assert found(tables, "cluster_price_mismatch") == [("warning", "cluster", "c-bad")]
    assert messages(tables, "cluster_price_mismatch") == [
        "hourly price $15.00/h differs from the $2.10/h summed over its 1 listed instance "
        "(gap +$12.90/h)"]


def test_cluster_price_mismatch_counts_every_listed_instance() -> None:
    """A cluster's price covers its pending instances too, and 1 cent is within tolerance."""
    pending = instance("i-2", status="pending", active_at=None, cost_estimate="0")
    tables = load([cluster("c-1", [instance("i-1"), pending]),  # $4.20 = $2.10 + $2.10
                   cluster("c-cent", [instance("i-3")], hourly_price=211)])
    assert found(tables, "cluster_price_mismatch") == []
    assert found(tables, "cluster_price_mismatch", tolerance_usd=0) == [
        ("warning", "cluster", "c-cent")]


@pytest.mark.parametrize(("gpu", "kind", "matches"), [
    ("A100", "A6000", False),
    ("H100", "H100_sxm5x8", True),
    ("A100_80G", "A100_80Gx8", True),
    ("A100", "A100_80Gx8", True),
    ("CPU", "cpu_mini", True),
    ("A100-80GB", "A100_sxm4_80GBx8", True),  # separators and GB/G spelled differently
    ("MI300X", "MI300Xx8", True),
    ("RTX6000Ada", "RTX6000_Ada", True),
    ("B300", "excesssupply_B300_sxm6x8", True),
    ("H100", "8xH100", True),
    ("A10", "A100x8", False),  # parts compare whole: A10 is not A100
    ("L40", "L40S", False),
    ("L4", "L40x8", False),
    ("A100_80G", "A100", False),  # the type does not say 80G
    ("", "A100", False),
])
def test_gpu_matches_type(gpu: str, kind: str, matches: bool) -> None:
    """The rule of gpu_type_mismatch on the names the API and its integrators show."""
    assert gpu_matches_type(gpu, kind) is matches


def test_gpu_type_mismatch() -> None:
    """An A6000 type with an A100 GPU trips (as in the docs' example); true pairs do not."""
    tables = load(instances=[
        instance("i-bad", gpu_type="A100"),
        instance("i-h100", shade_instance_type="H100_sxm5x8", gpu_type="H100", num_gpus=8),
        instance("i-a100", shade_instance_type="A100_80Gx8", gpu_type="A100", num_gpus=8),
        instance("i-cpu", shade_instance_type="cpu_mini", gpu_type="CPU", num_gpus=0),
    ])
    assert found(tables, "gpu_type_mismatch") == [("warning", "instance", "i-bad")]
    assert messages(tables, "gpu_type_mismatch") == [
        "gpu_type A100 does not match shade_instance_type A6000"]


def test_cloud_mismatch() -> None:
    """A hyperstack member of a denvr cluster trips; a denvr member and a standalone do not."""
    tables = load([cluster("c-1", [instance("i-bad"), instance("i-ok", cloud="denvr")],
                           cloud="denvr")], [instance("s-1", cloud="vultr")])
    assert found(tables, "cloud_mismatch") == [("warning", "instance", "i-bad")]
    assert messages(tables, "cloud_mismatch") == [
        "instance cloud hyperstack differs from the cloud denvr of its cluster c-1"]


def test_timestamps_out_of_order() -> None:
    """Each reversed pair is named; one finding per resource; ordered times pass."""
    tables = load(
        [cluster("c-bad", [instance("i-ok")], active_at="2026-11-20T16:00:00Z")],
        [instance("i-early", active_at="2026-11-20T17:00:00Z"),
         instance("i-deleted", status="deleted", deleted_at="2026-11-20T17:00:00Z")])
    assert found(tables, "timestamps_out_of_order") == [
        ("error", "cluster", "c-bad"), ("error", "instance", "i-deleted"),
        ("error", "instance", "i-early")]
    assert messages(tables, "timestamps_out_of_order") == [
        "active_at 2026-11-20T16:00:00Z is before created_at 2026-11-20T17:00:00Z",
        "deleted_at 2026-11-20T17:00:00Z is before active_at 2026-11-20T17:30:00Z; "
        "deleted_at 2026-11-20T17:00:00Z is before created_at 2026-11-20T17:27:00Z",
        "active_at 2026-11-20T17:00:00Z is before created_at 2026-11-20T17:27:00Z",
    ]


def test_active_without_active_at() -> None:
    """Active with no active_at trips (cluster or instance); pending with none does not."""
    tables = load(
        [cluster("c-bad", [instance("i-ok")], active_at=None)],
        [instance("i-bad", active_at=None),
         instance("i-pending", status="pending", active_at=None, cost_estimate="0")])
    assert found(tables, "active_without_active_at") == [
        ("error", "cluster", "c-bad"), ("error", "instance", "i-bad")]


def test_missing_price() -> None:
    """A running instance without a price is an error, a $0 one a warning; others pass."""
    tables = load(instances=[
        instance("i-none", hourly_price=None),
        instance("i-zero", hourly_price=0, cost_estimate="0"),
        instance("i-negative", hourly_price=-5, cost_estimate="0"),
        instance("i-pending", status="pending", hourly_price=None, active_at=None,
                 cost_estimate="0"),
        instance("i-ok"),
    ])
    assert found(tables, "missing_price") == [
        ("error", "instance", "i-negative"), ("error", "instance", "i-none"),
        ("warning", "instance", "i-zero")]
    assert messages(tables, "missing_price") == [
        "running instance has an hourly price of -$0.05/h",
        "running instance has no hourly price: its run rate and accrued cost are unknown",
        "running instance has an hourly price of $0.00/h",
    ]


def test_cost_gap() -> None:
    """Only a gap above both 10 % of accrued and $1 trips; own-account instances are info."""
    tables = load(instances=[
        # 10 h at $2.10/h = $21.00 accrued vs $10.00 reported: $11 > $2.10 and > $1
        instance("i-gap", active_at="2026-11-20T10:00:00Z", cost_estimate="10.00"),
        # 2.5 h at $2.10/h = $5.25 vs $5.00: $0.25 is under $1
        instance("i-small", cost_estimate="5.00"),
        # 100 h at $2.10/h = $210 vs $200: $10 is over $1 but under 10 % ($21)
        instance("i-share", created_at="2026-11-16T15:00:00Z",
                 active_at="2026-11-16T16:00:00Z", cost_estimate="200.00"),
        # billed by the provider: the API shows $0
        instance("i-own", shade_cloud=False, cost_estimate="0.0"),
    ])
    assert found(tables, "cost_gap") == [("warning", "instance", "i-gap"),
                                         ("info", "instance", "i-own")]
    assert messages(tables, "cost_gap") == [
        "accrued $21.00 (10.00 h at $2.10/h) vs the API's cost_estimate $10.00: gap +$11.00",
        "accrued $5.25 (2.50 h at $2.10/h) vs the API's cost_estimate $0.00: gap +$5.25 "
        "(launched in the user's own cloud account: billed by the provider)",
    ]


def test_duplicate_instance() -> None:
    """One id in two clusters of one snapshot trips; a move between snapshots does not."""
    with pytest.warns(DataWarning, match="appears twice in one snapshot"):
        tables = load([cluster("c-1", [instance("i-dup"), instance("i-ok")]),
                       cluster("c-2", [instance("i-dup")])])
    assert found(tables, "duplicate_instance") == [("error", "instance", "i-dup")]
    assert messages(tables, "duplicate_instance") == [
        "listed 2 times in its newest snapshot (clusters: c-1, c-2): it counts more than once "
        "in costs and inventory"]
    moved = shadeanalytics.read([
        {"observed_at": EARLY, "endpoint": "/clusters",
         "response": {"clusters": [cluster("c-1", [instance("i-moved")])]}},
        {"observed_at": LATE, "endpoint": "/clusters",
         "response": {"clusters": [cluster("c-2", [instance("i-moved")])]}},
    ])
    assert found(moved, "duplicate_instance") == []


def test_future_timestamp() -> None:
    """created_at or active_at after as_of trips; times before it do not."""
    tables = load([cluster("c-future", [instance("i-ok")], created_at="2026-11-20T21:00:00Z",
                           active_at="2026-11-20T21:05:00Z", updated_at="2026-11-20T21:05:00Z")],
                  [instance("i-future", active_at="2026-11-20T20:30:00Z")])
    assert found(tables, "future_timestamp") == [("warning", "cluster", "c-future"),
                                                 ("warning", "instance", "i-future")]
    assert messages(tables, "future_timestamp") == [
        "created_at 2026-11-20T21:00:00Z is after as_of 2026-11-20T20:00:00Z; "
        "active_at 2026-11-20T21:05:00Z is after as_of 2026-11-20T20:00:00Z",
        "active_at 2026-11-20T20:30:00Z is after as_of 2026-11-20T20:00:00Z",
    ]


def test_findings_sorted_and_free_of_names() -> None:
    """Errors first, then warnings, then info; by check and id; no message repeats a name."""
    tables = load([cluster("c-1", [instance("i-1", gpu_type="A100")], hourly_price=999)],
                  [instance("i-2", hourly_price=None), instance("i-3", shade_cloud=False,
                                                                cost_estimate="0")])
    before = {name: df.copy() for name, df in tables.frames()}
    result = quality_checks(tables, as_of=AS_OF)
    assert list(zip(result["severity"], result["check"], result["resource_id"],
                    strict=True)) == [
        ("error", "missing_price", "i-2"),
        ("warning", "cluster_price_mismatch", "c-1"),
        ("warning", "gpu_type_mismatch", "i-1"),
        ("info", "cost_gap", "i-3"),
    ]
    assert not result["message"].str.contains(SECRET).any()
    for name, df in tables.frames():
        pd.testing.assert_frame_equal(df, before[name])


def test_only_latest_rows_are_checked() -> None:
    """A problem fixed in the newest snapshot is not reported."""
    tables = shadeanalytics.read([  # seen active (since 17:30) at 17:40 without a price
        {"observed_at": "2026-11-20T17:40:00Z", "endpoint": "/instances",
         "response": {"instances": [instance("i-1", hourly_price=None)]}},
        {"observed_at": LATE, "endpoint": "/instances",
         "response": {"instances": [instance("i-1")]}},
    ])
    assert quality_checks(tables, as_of=AS_OF).empty


def test_registry_lists_every_check() -> None:
    """CHECKS names each check once, with a known severity and a one-line rule."""
    assert [c.name for c in CHECKS] == [
        "cluster_price_mismatch", "gpu_type_mismatch", "cloud_mismatch",
        "timestamps_out_of_order", "active_without_active_at", "deleted_at_while_active",
        "unknown_status", "missing_configuration", "missing_price", "cost_gap",
        "duplicate_instance",
        "future_timestamp", "orphaned_volume", "volume_without_price", "no_auto_delete",
        "past_auto_delete_date", "over_alert_spend", "over_auto_delete_spend"]
    assert all(c.severity in ("error", "warning", "info") and c.rule for c in CHECKS)


def test_bad_arguments() -> None:
    """A DataFrame instead of Tables, a negative tolerance or a naive as_of: refused."""
    tables = load(instances=[instance("i-1")])
    with pytest.raises(TypeError, match="needs a Tables"):
        quality_checks(tables.instances, as_of=AS_OF)
    with pytest.raises(ValueError, match="tolerance_usd must be a number >= 0"):
        quality_checks(tables, as_of=AS_OF, tolerance_usd=-1)
    with pytest.raises(ValueError) as info:
        quality_checks(tables, as_of="2026-11-20 20:00")
    assert str(info.value) == ("as_of must be timezone-aware, e.g. '2026-11-21T12:00:00Z' or "
                               "pd.Timestamp.now(tz='UTC')")


def _details_polls(active_at: str) -> shadeanalytics.Tables:
    """Two hourly polls (2026-11-09 00:00 and 01:00) of one running instance, its list row and
    its /instances/{id}/info details (no auto-delete threshold), $2.10/h."""
    from conftest import envelope, make_instance

    record = make_instance("i-1", active_at=active_at, created_at=active_at)
    polls = ["2026-11-09T00:00:00Z", "2026-11-09T01:00:00Z"]
    return shadeanalytics.read(
        [envelope({"instances": [record]}, at, "/instances") for at in polls]
        + [envelope(record, at, "/instances/i-1/info") for at in polls])


def test_no_auto_delete_counts_days_running_without_a_threshold() -> None:
    """Active since 11-01 00:00, seen at 11-09 01:00: running 8.0 days (> 7) with no auto-delete
    date or spend threshold: warned with its monthly cost, 730 h x $2.10 = $1,533.00."""
    tables = _details_polls("2026-11-01T00:00:00Z")
    result = quality_checks(tables, as_of="2026-11-09T01:00:00Z")
    rows = result[result["check"] == "no_auto_delete"]
    assert rows[["severity", "resource_id", "message"]].to_numpy().tolist() == [[
        "warning", "i-1", "running for 8.0 days with no auto-delete date or spend threshold: "
        "$1,533.00/month"]]


def test_no_auto_delete_on_stale_data_measures_to_the_newest_poll() -> None:
    """Active since 11-05: 4.0 days at the newest poll (11-09 01:00). Asked at 11-20, the data
    is stale: the age is what the poll saw (no finding), not 15 days nobody saw."""
    tables = _details_polls("2026-11-05T00:00:00Z")
    fresh = quality_checks(tables, as_of="2026-11-09T01:00:00Z")
    stale = quality_checks(tables, as_of="2026-11-20T00:00:00Z")
    assert "no_auto_delete" not in set(fresh["check"]) | set(stale["check"])
    from shadeanalytics.analytics.asof import freshness

    assert freshness(tables, pd.Timestamp("2026-11-20T00:00:00Z")).stale
