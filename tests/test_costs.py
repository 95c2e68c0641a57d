"""Billed hours, accrued dollars, cost by group and by cluster, on a hand-computed fleet."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shadeanalytics
from shadeanalytics.analytics.billing import bill
from shadeanalytics.analytics.costs import cluster_summary, cost_breakdown

AS_OF = pd.Timestamp("2026-11-20T20:00:00Z")
EARLY = "2026-11-20T10:00:00Z"  # first snapshot
LATE = "2026-11-20T18:00:00Z"  # second snapshot: the one that counts
NAIVE_MESSAGE = ("as_of must be timezone-aware, e.g. '2026-11-21T12:00:00Z' or "
                 "pd.Timestamp.now(tz='UTC')")
COLUMNS = ["instances", "running_instances", "gpus", "hourly_usd", "daily_usd", "monthly_usd",
           "accrued_usd", "reported_cost_usd", "cost_gap_usd", "usd_per_gpu_hour",
           "share_of_hourly", "instances_without_price", "instances_without_accrued",
           "instances_without_estimate", "volumes", "volumes_without_price"]
COUNTS = ("instances", "running_instances", "gpus", "instances_without_price",
          "instances_without_accrued", "instances_without_estimate", "volumes",
          "volumes_without_price")
#: The columns the real result has beyond COLUMNS: accrued_usd split by basis, one count.
BASIS = ["accrued_observed_usd", "accrued_inferred_usd", "accrued_extrapolated_usd",
         "accrued_disputed_usd"]
ALL_COLUMNS = [*COLUMNS[:7], *BASIS, *COLUMNS[7:], "volumes_without_accrued"]
FLEET_HOURLY = 22.45  # running: a1 2.10 + a2 16.00 + s1 0.10 + s2 1.25 (spot) + t1 3.00


def instance(iid: str, *, cloud: str = "hyperstack", region: str = "canada-1",
             type_: str = "A6000", gpu: str = "A6000", gpus: int = 1, price: int | None = 210,
             status: str = "active", created: str, active: str | None = None,
             deleted: str | None = None, cost: str = "0", rental: str | None = "on_demand",
             tags: list[str] | None = None) -> dict[str, Any]:
    """A complete instance object: every field the API promises, nothing secret."""
    record: dict[str, Any] = {
        "id": iid, "name": f"node-{iid}", "cloud": cloud, "region": region,
        "shade_instance_type": type_, "cloud_instance_type": f"{cloud}-{type_}",
        "cloud_assigned_id": f"vm-{iid}", "shade_cloud": True, "status": status,
        "configuration": {
            "gpu_type": gpu, "gpu_manufacturer": "nvidia", "num_gpus": gpus,
            "vram_per_gpu_in_gb": 80, "vcpus": 8, "memory_in_gb": 64, "storage_in_gb": 500,
            "interconnect": "pcie", "os": "ubuntu_22_shade_os",
        },
        "cost_estimate": cost, "created_at": created, "active_at": active,
        "deleted_at": deleted,
    }
    if price is not None:
        record["hourly_price"] = price
    if rental is not None:
        record["rental_terms"] = {"rental_type": rental, "hourly_price": "1.25"}
    if tags is not None:
        record["tags"] = tags
    return record


def cluster(cid: str, members: list[dict[str, Any]], *, cloud: str, region: str, price: int,
            cost: str) -> dict[str, Any]:
    """A complete cluster object listing ``members``."""
    return {
        "id": cid, "name": f"cluster-{cid}", "cloud": cloud,
        "region_info": {"region": region, "display_name": region},
        "status": "active", "created_at": "2026-11-20T09:00:00Z",
        "updated_at": "2026-11-20T09:00:00Z", "hourly_price": price, "cost_estimate": cost,
        "instances": members,
    }


def snapshot(at: str, endpoint: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"observed_at": at, "endpoint": endpoint, "response": response}


# Billed hours at AS_OF (20:00) and accrued dollars, per instance:
#   a1  c-1 hyperstack A6000     1 GPU  $2.10/h  active 17:30->20:00   2.5 h   $5.25  (5.00)
#   a2  c-1 hyperstack A100_80G  8 GPU  $16/h    active 12:00->20:00   8 h   $128.00  (120.00)
#   b1  c-2 denvr      H100      8 GPU  $20/h    deleted 14:00->16:00  2 h    $40.00  (40.00)
#   b2  c-2 denvr      H100      8 GPU  $20/h    pending, no active_at 0 h     $0.00   (0.00)
#   s1  --  datacrunch CPU       0 GPU  $0.10/h  active 16:00->20:00   4 h     $0.40   (0.40)
#   s2  --  datacrunch H100 spot 1 GPU  $1.25/h  active 17:00->20:00   3 h     $3.75   (3.75)
#        (s2 lists $2.50/h on demand; a spot rental is billed at its own rate, $1.25/h)
#   e1  --  hyperstack A6000     1 GPU  $2.10/h  error, seen 18:00: 17:00->18:00 1 h $2.10 (2.10)
#   t1  --  lambdalabs A10       1 GPU  $3/h     active 10:30->20:00   9.5 h  $28.50  (27.00)
#        (t1's first snapshot, pending at $5/h with tag old-tag, must not count)
A1 = instance("a1", created="2026-11-20T17:27:00Z", active="2026-11-20T17:30:00Z", cost="5.00",
              tags=["train", "team-a"])
A2 = instance("a2", type_="A100_80Gx8", gpu="A100_80G", gpus=8, price=1600,
              created="2026-11-20T11:50:00Z", active="2026-11-20T12:00:00Z", cost="120.00",
              tags=["train"])
B1 = instance("b1", cloud="denvr", region="houston-usa-1", type_="H100_sxm5x8", gpu="H100",
              gpus=8, price=2000, status="deleted", created="2026-11-20T13:45:00Z",
              active="2026-11-20T14:00:00Z", deleted="2026-11-20T16:00:00Z", cost="40.00")
B2 = instance("b2", cloud="denvr", region="houston-usa-1", type_="H100_sxm5x8", gpu="H100",
              gpus=8, price=2000, status="pending", created="2026-11-20T19:30:00Z")
S1 = instance("s1", cloud="datacrunch", region="fin-01", type_="cpu_mini", gpu="CPU", gpus=0,
              price=10, created="2026-11-20T15:59:00Z", active="2026-11-20T16:00:00Z",
              cost="0.40", rental=None, tags=["infra"])
S2 = instance("s2", cloud="datacrunch", region="fin-01", type_="H100", gpu="H100", price=250,
              created="2026-11-20T16:55:00Z", active="2026-11-20T17:00:00Z", cost="3.75",
              rental="spot", tags=["team-a"])
E1 = instance("e1", status="error", created="2026-11-20T16:58:00Z",
              active="2026-11-20T17:00:00Z", cost="2.10")
T1_OLD = instance("t1", cloud="lambdalabs", region="us-east-1", type_="A10", gpu="A10",
                  price=500, status="pending", created="2026-11-20T10:20:00Z",
                  tags=["old-tag"])
T1 = instance("t1", cloud="lambdalabs", region="us-east-1", type_="A10", gpu="A10", price=300,
              created="2026-11-20T10:20:00Z", active="2026-11-20T10:30:00Z", cost="27.00",
              tags=["team-b"])


def fleet_documents() -> list[dict[str, Any]]:
    """Two snapshots: c-1 and t1 change between them; the later one counts."""
    old_c1 = cluster("c-1", [instance("a1", status="pending", created="2026-11-20T09:00:00Z")],
                     cloud="hyperstack", region="canada-1", price=1000, cost="$1.00")
    return [
        snapshot(EARLY, "/clusters", {"clusters": [old_c1]}),
        snapshot(EARLY, "/instances", {"instances": [T1_OLD]}),
        snapshot(LATE, "/clusters", {"clusters": [
            cluster("c-1", [A1, A2], cloud="hyperstack", region="canada-1", price=1810,
                    cost="$20.00"),
            cluster("c-2", [B1, B2], cloud="denvr", region="houston-usa-1", price=4000,
                    cost="$45.50"),
        ]}),
        snapshot(LATE, "/instances", {"instances": [S1, S2, E1, T1]}),
    ]


@pytest.fixture
def fleet() -> shadeanalytics.Tables:
    """The fleet above, loaded by the real loader."""
    return shadeanalytics.read(copy.deepcopy(fleet_documents()))


def frame(keys: dict[str, list[str]], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """An expected ``cost_breakdown`` result: string keys, then the figures of ``rows``."""
    rows = [(*row, 0, 0, 0, 0, 0) if len(row) == len(COLUMNS) - 5 else row for row in rows]
    values = list(zip(*rows, strict=True))
    out = pd.DataFrame({k: pd.array(v, dtype="string") for k, v in keys.items()})
    for name, column in zip(COLUMNS, values, strict=True):
        dtype = "Int64" if name in COUNTS else "float64"
        out[name] = pd.array(column, dtype=dtype)
    return out


def assert_same(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = [c for c in expected.columns if c not in COLUMNS]
    assert list(result.columns) == [*keys, *ALL_COLUMNS]
    pd.testing.assert_frame_equal(result[list(expected.columns)], expected, check_exact=False,
                                  rtol=1e-12)
    # the split by basis adds up to the accrued total, to the cent
    split = result[BASIS].sum(axis=1, min_count=1)
    assert ((split - result["accrued_usd"]).abs().fillna(0) < 0.005).all()


def test_bill_hours_and_accrued_per_instance(fleet: shadeanalytics.Tables) -> None:
    """The billing model's figures per instance; a superseded snapshot does not count."""
    billed = bill(fleet, AS_OF).instances.set_index("instance_id")
    assert billed["billed_hours"].dtype == "float64"
    assert billed["billed_hours"].to_dict() == {"a1": 2.5, "a2": 8.0, "b1": 2.0, "b2": 0.0,
                                                "s1": 4.0, "s2": 3.0, "e1": 1.0, "t1": 9.5}
    assert billed["accrued_usd"].to_dict() == pytest.approx({
        "a1": 5.25,  # 2 h 30 min at $2.10/h
        "a2": 128.0, "b1": 40.0, "b2": 0.0,
        "s1": 0.4,  # 4 h at $0.10/h
        "s2": 3.75,  # 3 h at the spot rate $1.25/h
        "e1": 2.1,  # active_at 17:00 until first seen in error at 18:00
        "t1": 28.5,  # 9 h 30 min at $3.00/h
    })
    assert billed["billing_end_source"].to_dict() == {
        "a1": "as_of", "a2": "as_of", "b1": "deleted_at", "b2": None, "s1": "as_of",
        "s2": "as_of", "e1": "error_observed", "t1": "as_of"}
    assert billed["state"].to_dict() == {
        "a1": "running", "a2": "running", "b1": "stopped", "b2": "pending", "s1": "running",
        "s2": "running", "e1": "stopped", "t1": "running"}


def _interval_fleet() -> shadeanalytics.Tables:
    """One instance per rule of the billed interval; the undated ones carry no observed_at."""
    dated = snapshot("2026-11-20T18:00:00Z", "/instances", {"instances": [
        # first seen deleting at 18:00: billed from active_at until then: 17:00 -> 18:00 = 1 h
        instance("deleting-seen", status="deleting", created="2026-11-20T16:00:00Z",
                 active="2026-11-20T17:00:00Z"),
        # active: runs to as_of even though observed at 18:00: 17:00 -> 20:00 = 3 h
        instance("active-seen", created="2026-11-20T16:00:00Z", active="2026-11-20T17:00:00Z"),
        # seen deleted at 18:00 but active_at 19:00, deleted_at 23:00: both contradict the
        # sighting; deleted from 18:00, never billed
        instance("deleted-later", status="deleted", created="2026-11-20T16:00:00Z",
                 active="2026-11-20T19:00:00Z", deleted="2026-11-20T23:00:00Z"),
        # seen active at 18:00 with active_at 21:00 (a skewed clock): billed from the sighting
        instance("future", created="2026-11-20T16:00:00Z", active="2026-11-20T21:00:00Z"),
        # deleted before it became active: no billed time, not negative
        instance("backwards", status="deleted", created="2026-11-20T16:00:00Z",
                 active="2026-11-20T17:00:00Z", deleted="2026-11-20T16:30:00Z"),
        # no price: billed hours known, accrued unknown
        instance("unpriced", price=None, created="2026-11-20T16:00:00Z",
                 active="2026-11-20T17:30:00Z"),
    ]})
    # undated (no envelope): counts as observed at as_of: an error instance first seen then
    # was billed from active_at: 18:30 -> 20:00 = 1.5 h
    undated = {"instances": [instance("error-undated", status="error",
                                      created="2026-11-20T18:00:00Z",
                                      active="2026-11-20T18:30:00Z")]}
    return shadeanalytics.read([dated, undated])


def test_billed_interval_rules() -> None:
    """Billing starts at active_at (or the first sighting) and ends at the first evidence."""
    tables = _interval_fleet()
    before = tables.instances.copy()
    billed = bill(tables, AS_OF).instances.set_index("instance_id")
    assert billed["billed_hours"].to_dict() == {
        "deleting-seen": 1.0, "active-seen": 3.0, "deleted-later": 0.0, "future": 2.0,
        "backwards": 0.0, "unpriced": 2.5, "error-undated": 1.5,
    }
    assert billed["billing_end_source"].to_dict() == {
        "deleting-seen": "deleting_observed", "active-seen": "as_of", "deleted-later": None,
        "future": "as_of", "backwards": None, "unpriced": "as_of",
        "error-undated": "error_observed"}
    assert billed.loc["future", "billed_from_source"] == "observed"
    accrued = billed["accrued_usd"]
    assert np.isnan(accrued["unpriced"])
    assert accrued["error-undated"] == pytest.approx(3.15)  # 1.5 h at $2.10/h
    pd.testing.assert_frame_equal(tables.instances, before)


def test_as_of_string_and_other_zones() -> None:
    """as_of may be text or any time zone; it is the same instant in UTC."""
    tables = _interval_fleet()
    expected = bill(tables, AS_OF).instances
    for other in ("2026-11-20T20:00:00Z", pd.Timestamp("2026-11-20T21:00:00",
                                                         tz="Europe/Paris")):
        pd.testing.assert_frame_equal(bill(tables, other).instances, expected)


@pytest.mark.parametrize("call", [
    lambda t, at: bill(t, at),
    lambda t, at: cost_breakdown(t, as_of=at),
])
@pytest.mark.parametrize("naive", ["2026-11-20T20:00:00", pd.Timestamp("2026-11-20T20:00")])
def test_naive_as_of_is_refused(fleet: shadeanalytics.Tables, call: Any, naive: Any) -> None:
    """A time without a zone is ambiguous: ValueError, with what to pass instead."""
    with pytest.raises(ValueError) as info:
        call(fleet, naive)
    assert str(info.value) == NAIVE_MESSAGE


def test_cost_breakdown_by_cloud(fleet: shadeanalytics.Tables) -> None:
    """One row per cloud, latest snapshot only, sorted by hourly_usd descending."""
    before = fleet.instances.copy()
    result = cost_breakdown(fleet, as_of=AS_OF)
    pd.testing.assert_frame_equal(cost_breakdown(bill(fleet, AS_OF)), result)
    expected = frame({"cloud": ["hyperstack", "lambdalabs", "datacrunch", "denvr"]}, [
        # hyperstack: a1 + a2 running ($2.10 + $16.00), e1 in error; 1 + 8 GPUs running
        # accrued 5.25 + 128 + 2.10 = 135.35; reported 5 + 120 + 2.10 = 127.10
        (3, 2, 9, 18.10, 18.10 * 24, 18.10 * 730, 135.35, 127.10, 135.35 - 127.10,
         18.10 / 9, 18.10 / FLEET_HOURLY),
        # lambdalabs: t1 only (its pending first snapshot does not count)
        (1, 1, 1, 3.0, 72.0, 2190.0, 28.5, 27.0, 1.5, 3.0, 3.0 / FLEET_HOURLY),
        # datacrunch: s1 (CPU, 0 GPUs) + s2 (1 GPU): $0.10 + $1.25 over 1 GPU
        # accrued 0.40 + 3.75 = 4.15; reported 0.40 + 3.75 = 4.15
        (2, 2, 1, 1.35, 1.35 * 24, 1.35 * 730, 4.15, 4.15, 0.0, 1.35, 1.35 / FLEET_HOURLY),
        # denvr: b1 deleted, b2 pending: nothing runs, no GPUs -> NaN per GPU-hour
        (2, 0, 0, 0.0, 0.0, 0.0, 40.0, 40.0, 0.0, np.nan, 0.0),
    ])
    assert_same(result, expected)
    assert result["share_of_hourly"].sum() == pytest.approx(1.0)
    pd.testing.assert_frame_equal(fleet.instances, before)


def test_cost_breakdown_by_tag_counts_each_tag(fleet: shadeanalytics.Tables) -> None:
    """a1 has two tags and counts in both; shares then add up to more than 1."""
    result = cost_breakdown(fleet, by="tag", as_of=AS_OF)
    expected = frame({"tag": ["train", "team-a", "team-b", "infra", "(untagged)"]}, [
        # train: a1 + a2
        (2, 2, 9, 18.10, 18.10 * 24, 18.10 * 730, 133.25, 125.0, 8.25, 18.10 / 9,
         18.10 / FLEET_HOURLY),
        # team-a: a1 + s2: $2.10 + $1.25 over 2 GPUs; accrued 5.25 + 3.75; reported 5 + 3.75
        (2, 2, 2, 3.35, 3.35 * 24, 3.35 * 730, 9.0, 8.75, 0.25, 1.675, 3.35 / FLEET_HOURLY),
        # team-b: t1 (old-tag was its superseded snapshot's)
        (1, 1, 1, 3.0, 72.0, 2190.0, 28.5, 27.0, 1.5, 3.0, 3.0 / FLEET_HOURLY),
        # infra: s1, CPU-only
        (1, 1, 0, 0.1, 2.4, 73.0, 0.4, 0.4, 0.0, np.nan, 0.1 / FLEET_HOURLY),
        # b1, b2, e1
        (3, 0, 0, 0.0, 0.0, 0.0, 42.1, 42.1, 0.0, np.nan, 0.0),
    ])
    assert_same(result, expected)
    assert result["share_of_hourly"].sum() == pytest.approx(24.55 / 22.45)  # > 1


def test_cost_breakdown_by_cluster_labels_standalone(fleet: shadeanalytics.Tables) -> None:
    """Instances outside any cluster form the (standalone) group."""
    result = cost_breakdown(fleet, by=["cluster_id"], as_of=AS_OF)
    expected = frame({"cluster_id": ["c-1", "(standalone)", "c-2"]}, [
        (2, 2, 9, 18.10, 18.10 * 24, 18.10 * 730, 133.25, 125.0, 8.25, 18.10 / 9,
         18.10 / FLEET_HOURLY),
        # s1 + s2 + t1 running ($0.10 + $1.25 + $3.00), e1 not; accrued .4+3.75+2.1+28.5
        (4, 3, 2, 4.35, 4.35 * 24, 4.35 * 730, 34.75, 33.25, 1.5, 2.175, 4.35 / FLEET_HOURLY),
        (2, 0, 0, 0.0, 0.0, 0.0, 40.0, 40.0, 0.0, np.nan, 0.0),
    ])
    assert_same(result, expected)


def test_cost_breakdown_by_rental_type_labels_none(fleet: shadeanalytics.Tables) -> None:
    """An instance without rental terms is in the (none) group."""
    result = cost_breakdown(fleet, by="rental_type", as_of=AS_OF)
    assert result["rental_type"].tolist() == ["on_demand", "spot", "(none)"]
    # on_demand: a1 $2.10 + a2 $16 + t1 $3 running; spot: s2; (none): s1
    assert result["hourly_usd"].tolist() == pytest.approx([21.1, 1.25, 0.1])
    assert result["instances"].tolist() == [6, 1, 1]


def test_cost_breakdown_two_keys_sorts_ties_by_keys(fleet: shadeanalytics.Tables) -> None:
    """Several keys at once; groups with the same hourly_usd are ordered by their keys."""
    result = cost_breakdown(fleet, by=("cloud", "status"), as_of=AS_OF)
    assert list(result.columns) == ["cloud", "status", *ALL_COLUMNS]
    assert result["status"].dtype == "string"
    assert list(zip(result["cloud"], result["status"], strict=True)) == [
        ("hyperstack", "active"), ("lambdalabs", "active"), ("datacrunch", "active"),
        ("denvr", "deleted"), ("denvr", "pending"), ("hyperstack", "error"),
    ]


def test_cost_breakdown_equal_rates_tie_despite_float_noise() -> None:
    """$0.10 + $0.20 is $0.30 (not 0.30000000000000004): the tie goes to the key order."""
    doc = snapshot(LATE, "/instances", {"instances": [
        instance("x1", cloud="zcloud", price=10, created="2026-11-20T17:00:00Z"),
        instance("x2", cloud="zcloud", price=20, created="2026-11-20T17:00:00Z"),
        instance("y1", cloud="acloud", price=30, created="2026-11-20T17:00:00Z"),
    ]})
    result = cost_breakdown(shadeanalytics.read(doc).instances, as_of=AS_OF)
    assert result["cloud"].tolist() == ["acloud", "zcloud"]


def test_cost_breakdown_unknown_is_not_zero() -> None:
    """Unknown prices and estimates: sums of the known ones, a count of the unknown ones, NA
    (not 0.0) for a group whose every member is unknown."""
    doc = snapshot(LATE, "/instances", {"instances": [
        # known: 2 h at $2.10/h, estimate $4.00
        instance("k1", cloud="acloud", created="2026-11-20T17:00:00Z",
                 active="2026-11-20T18:00:00Z", cost="4.00"),
        # no price: its run rate and accrued cost are unknown
        instance("u1", cloud="acloud", price=None, created="2026-11-20T17:00:00Z",
                 active="2026-11-20T18:00:00Z", cost="1.00"),
        # the only member of its group, no price, no estimate
        instance("u2", cloud="bcloud", price=None, created="2026-11-20T17:00:00Z",
                 active="2026-11-20T18:00:00Z"),
    ]})
    tables = shadeanalytics.read(doc)
    tables.instances.loc[tables.instances["instance_id"] == "u2", "cost_estimate_usd"] = np.nan
    result = cost_breakdown(tables, as_of=AS_OF).set_index("cloud")
    assert result.loc["acloud", ["hourly_usd", "accrued_usd", "reported_cost_usd",
                                 "cost_gap_usd"]].tolist() == pytest.approx(
        [2.10, 4.20, 5.00, 0.20])  # the gap only over k1, the one with both figures
    assert result.loc["acloud", ["instances_without_price", "instances_without_accrued",
                                 "instances_without_estimate"]].tolist() == [1, 1, 0]
    assert result.loc["bcloud", ["hourly_usd", "accrued_usd", "reported_cost_usd",
                                 "cost_gap_usd"]].isna().all()
    assert result.loc["bcloud", ["instances_without_price", "instances_without_accrued",
                                 "instances_without_estimate"]].tolist() == [1, 1, 1]
    assert result.index.tolist() == ["acloud", "bcloud"]  # unknown run rate sorts last


def test_cost_breakdown_empty_keeps_columns_and_dtypes() -> None:
    """No instances: no rows, every column with its dtype."""
    empty = shadeanalytics.Tables.empty()
    result = cost_breakdown(empty.instances, by=("cloud", "tag"), as_of=AS_OF,
                            tags=empty.instance_tags)
    assert result.empty
    assert list(result.columns) == ["cloud", "tag", *ALL_COLUMNS]
    assert result.dtypes.astype(str).tolist() == ["string", "string", "Int64", "Int64", "Int64",
                                                  *["float64"] * 12, *["Int64"] * 6]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"by": "colour"}, "cannot group by 'colour'; by takes any of cloud, region, gpu_type, "
                       "shade_instance_type, cluster_id, status, rental_type, tag, service"),
    ({"by": ()}, "by needs at least one of cloud, region, gpu_type, shade_instance_type, "
                 "cluster_id, status, rental_type, tag, service"),
    ({"by": ("cloud", "cloud")}, "by lists a key twice: ['cloud', 'cloud']"),
])
def test_cost_breakdown_refuses_bad_keys(fleet: shadeanalytics.Tables, kwargs: dict[str, Any],
                                         message: str) -> None:
    """Unknown, missing or repeated keys, and tag without the tags table: ValueError."""
    with pytest.raises(ValueError) as info:
        cost_breakdown(fleet, as_of=AS_OF, **kwargs)
    assert str(info.value) == message


CLUSTER_COLUMNS = {
    "cluster_id": "string", "name": "string", "cloud": "string", "region": "string",
    "status": "category", "instances": "Int64", "running_instances": "Int64", "gpus": "Int64",
    "hourly_price_usd": "float64", "instances_hourly_usd": "float64",
    "hourly_gap_usd": "float64", "accrued_usd": "float64",
    **dict.fromkeys(BASIS, "float64"), "reported_cost_usd": "float64",
    "instances_reported_cost_usd": "float64", "instances_without_accrued": "Int64",
    "instances_without_estimate": "Int64",
}


def test_cluster_summary(fleet: shadeanalytics.Tables) -> None:
    """Each cluster's own price and cost beside its instances' sums; latest rows only."""
    before = fleet.clusters.copy(), fleet.instances.copy()
    result = cluster_summary(fleet, as_of=AS_OF)
    assert result.dtypes.astype(str).to_dict() == CLUSTER_COLUMNS
    rows = result.drop(columns=BASIS).astype({"status": "string"}).to_dict("records")
    assert (result[BASIS].sum(axis=1) - result["accrued_usd"]).abs().max() < 0.005
    assert rows == [
        # c-2: $40/h listed; b1 ($20, deleted) + b2 ($20, pending) still add up to it
        {"cluster_id": "c-2", "name": "cluster-c-2", "cloud": "denvr",
         "region": "houston-usa-1", "status": "active", "instances": 2,
         "running_instances": 0, "gpus": 0, "hourly_price_usd": 40.0,
         "instances_hourly_usd": 40.0, "hourly_gap_usd": 0.0, "accrued_usd": 40.0,
         "reported_cost_usd": 45.5, "instances_reported_cost_usd": 40.0,
         "instances_without_accrued": 0, "instances_without_estimate": 0},
        # c-1: its second snapshot ($18.10/h, not the first's $10/h): a1 $2.10 + a2 $16
        {"cluster_id": "c-1", "name": "cluster-c-1", "cloud": "hyperstack",
         "region": "canada-1", "status": "active", "instances": 2, "running_instances": 2,
         "gpus": 9, "hourly_price_usd": 18.1, "instances_hourly_usd": pytest.approx(18.1),
         "hourly_gap_usd": pytest.approx(0.0), "accrued_usd": 133.25,
         "reported_cost_usd": 20.0, "instances_reported_cost_usd": 125.0,
         "instances_without_accrued": 0, "instances_without_estimate": 0},
    ]
    pd.testing.assert_frame_equal(fleet.clusters, before[0])
    pd.testing.assert_frame_equal(fleet.instances, before[1])


def test_cluster_summary_takes_two_frames(fleet: shadeanalytics.Tables) -> None:
    """(clusters, instances) gives the same as the Tables; a Tables plus instances is refused."""
    late = fleet.latest()
    one = (late.clusters[late.clusters["observed_at"] == LATE],
           late.instances[late.instances["observed_at"] == LATE])
    only_late = shadeanalytics.read(copy.deepcopy(fleet_documents()[2:]))
    pd.testing.assert_frame_equal(cluster_summary(one[0], instances=one[1], as_of=AS_OF),
                                  cluster_summary(only_late, as_of=AS_OF))
    with pytest.raises(ValueError, match="pass the Tables itself"):
        cluster_summary(fleet.clusters, instances=fleet.instances, as_of=AS_OF)
    with pytest.raises(ValueError, match="not both"):
        cluster_summary(fleet, instances=fleet.instances, as_of=AS_OF)
    with pytest.raises(ValueError, match="needs the instances"):
        cluster_summary(fleet.clusters, as_of=AS_OF)


def test_cluster_without_instances_shows_zeros() -> None:
    """A cluster listing no instances: counts 0, sums 0.0, the whole price is a gap."""
    doc = snapshot(LATE, "/clusters", {"clusters": [
        cluster("c-9", [], cloud="denvr", region="houston-usa-1", price=500, cost="$0.00")]})
    result = cluster_summary(shadeanalytics.read(doc), as_of=AS_OF)
    assert result.drop(columns=["status"]).iloc[0].tolist() == [
        "c-9", "cluster-c-9", "denvr", "houston-usa-1", 0, 0, 0, 5.0, 0.0, 5.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0]
    empty = cluster_summary(shadeanalytics.Tables.empty(), as_of=AS_OF)
    assert empty.dtypes.astype(str).to_dict() == CLUSTER_COLUMNS
    assert empty.empty
