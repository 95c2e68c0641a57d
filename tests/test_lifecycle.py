"""Instance lifecycles (provisioning, boot estimates, billed time) and boot statistics."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shadeanalytics
from shadeanalytics.analytics.lifecycle import boot_stats, instance_lifecycle

AS_OF = pd.Timestamp("2026-11-20T20:00:00Z")
EARLY = "2026-11-20T10:25:00Z"
LATE = "2026-11-20T19:45:00Z"
UTC = "datetime64[us, UTC]"
DTYPES = {
    "cluster_id": "string", "instance_id": "string", "name": "string", "cloud": "string",
    "shade_instance_type": "string", "status": "category", "created_at": UTC,
    "active_at": UTC, "provisioning_s": "float64", "boot_time_min_s": "Int64",
    "boot_time_max_s": "Int64", "boot_late": "boolean", "billed_from": UTC,
    "billed_from_source": "string", "billed_to": UTC, "billing_end_source": "string",
    "billed_hours": "float64", "accrued_usd": "float64", "accrued_observed_usd": "float64",
    "accrued_inferred_usd": "float64", "accrued_extrapolated_usd": "float64",
    "accrued_disputed_usd": "float64", "age_s": "float64",
}
STATS = {"count": "Int64", "median_provisioning_s": "float64",
         "p90_provisioning_s": "float64", "share_late": "float64"}


def instance(iid: str, *, cloud: str, created: str, active: str | None = None,
             deleted: str | None = None, boot: tuple[int, int] | None = None,
             status: str = "active", price: int = 210, type_: str = "A6000"
             ) -> dict[str, Any]:
    """A complete instance object: every field the API promises, nothing secret."""
    record: dict[str, Any] = {
        "id": iid, "name": f"node-{iid}", "cloud": cloud, "region": "r-1",
        "shade_instance_type": type_, "cloud_instance_type": f"{cloud}-{type_}",
        "cloud_assigned_id": f"vm-{iid}", "shade_cloud": True, "status": status,
        "configuration": {
            "gpu_type": "A6000", "gpu_manufacturer": "nvidia", "num_gpus": 1,
            "vram_per_gpu_in_gb": 48, "vcpus": 6, "memory_in_gb": 12, "storage_in_gb": 256,
            "interconnect": "pcie", "os": "ubuntu_22_shade_os",
        },
        "hourly_price": price, "cost_estimate": "0", "created_at": f"2026-11-20T{created}Z",
        "active_at": active and f"2026-11-20T{active}Z",
        "deleted_at": deleted and f"2026-11-20T{deleted}Z",
    }
    if boot is not None:
        record["boot_time"] = {"min_boot_in_sec": boot[0], "max_boot_in_sec": boot[1]}
    return record


# Provisioning (active_at - created_at) against the boot estimate, and billed time at 20:00:
#   t1  lambdalabs  10:20 -> 10:30   600 s  max 600  on time   9.5 h at $3.00   = $28.50
#   a2  hyperstack  11:50 -> 12:00   600 s  max 480  late      8 h   at $16.00  = $128.00
#   b1  denvr       13:45 -> 14:00   900 s  no est.  NA        2 h (deleted 16:00) at $20
#   s1  datacrunch  15:59 -> 16:00    60 s  max 30   late      4 h   at $0.10   = $0.40
#   e1  hyperstack  16:58 -> 17:00   120 s  max 60   late   2.75 h (error, seen 19:45) $5.775
#   a1  hyperstack  17:27 -> 17:30   180 s  max 300  on time   2.5 h at $2.10   = $5.25
#   s2  datacrunch  18:55 -> 19:00   300 s  max 300  on time   1 h   at $2.50   = $2.50
#   b2  denvr       19:30 -> pending  NaN   max 600  NA        0 h
FLEET = [
    {"observed_at": EARLY, "endpoint": "/instances", "response": {"instances": [
        instance("t1", cloud="lambdalabs", created="10:20:00", status="pending", type_="A10",
                 boot=(300, 600))]}},
    {"observed_at": LATE, "endpoint": "/clusters", "response": {"clusters": [
        {"id": cid, "name": f"cluster-{cid}", "cloud": cloud,
         "region_info": {"region": "r-1", "display_name": "R 1"}, "status": "active",
         "created_at": "2026-11-20T09:00:00Z", "updated_at": "2026-11-20T09:00:00Z",
         "hourly_price": price, "cost_estimate": "$0.00", "instances": members}
        for cid, cloud, price, members in [
            ("c-1", "hyperstack", 1810, [
                instance("a1", cloud="hyperstack", created="17:27:00", active="17:30:00",
                         boot=(120, 300)),
                instance("a2", cloud="hyperstack", created="11:50:00", active="12:00:00",
                         boot=(300, 480), price=1600, type_="A100_80Gx8"),
            ]),
            ("c-2", "denvr", 4000, [
                instance("b1", cloud="denvr", created="13:45:00", active="14:00:00",
                         deleted="16:00:00", status="deleted", price=2000,
                         type_="H100_sxm5x8"),
                instance("b2", cloud="denvr", created="19:30:00", status="pending",
                         boot=(300, 600), price=2000, type_="H100_sxm5x8"),
            ]),
        ]]}},
    {"observed_at": LATE, "endpoint": "/instances", "response": {"instances": [
        instance("s1", cloud="datacrunch", created="15:59:00", active="16:00:00",
                 boot=(10, 30), price=10, type_="cpu_mini"),
        instance("s2", cloud="datacrunch", created="18:55:00", active="19:00:00",
                 boot=(120, 300), price=250, type_="H100"),
        instance("e1", cloud="hyperstack", created="16:58:00", active="17:00:00",
                 boot=(30, 60), status="error"),
        instance("t1", cloud="lambdalabs", created="10:20:00", active="10:30:00",
                 boot=(300, 600), price=300, type_="A10"),
    ]}},
]


@pytest.fixture
def instances() -> shadeanalytics.Tables:
    """The fleet above, loaded by the real loader (helpers take the Tables of a history)."""
    return shadeanalytics.read(copy.deepcopy(FLEET))


def test_lifecycle_rows(instances: shadeanalytics.Tables) -> None:
    """One row per latest instance, sorted by created_at, every figure hand-computed."""
    before = instances.instances.copy()
    result = instance_lifecycle(instances, as_of=AS_OF)
    assert result.dtypes.astype(str).to_dict() == DTYPES
    assert result["instance_id"].tolist() == ["t1", "a2", "b1", "s1", "e1", "a1", "s2", "b2"]
    assert result["cluster_id"].tolist() == [pd.NA, "c-1", "c-2", pd.NA, pd.NA, "c-1", pd.NA,
                                             "c-2"]
    np.testing.assert_array_equal(result["provisioning_s"],
                                  [600, 600, 900, 60, 120, 180, 300, np.nan])
    assert result["boot_late"].tolist() == [False, True, pd.NA, True, True, False, False, pd.NA]
    assert result["boot_time_max_s"].tolist() == [600, 480, pd.NA, 30, 60, 300, 300, 600]
    assert result["billed_hours"].tolist() == [9.5, 8.0, 2.0, 4.0, 2.75, 2.5, 1.0, 0.0]
    assert result["accrued_usd"].tolist() == pytest.approx(
        [28.5, 128.0, 40.0, 0.4, 5.775, 5.25, 2.5, 0.0])  # e.g. a1: 2.5 h at $2.10/h
    # why billing ended: still running at as_of; b1's deleted_at; e1 first seen in error
    assert result["billing_end_source"].tolist() == [
        "as_of", "as_of", "deleted_at", "as_of", "error_observed", "as_of", "as_of", pd.NA]
    assert result["billed_from_source"].tolist() == ["api"] * 7 + [pd.NA]
    assert result["billed_from"].iloc[4] == pd.Timestamp("2026-11-20T17:00Z")
    assert result["billed_to"].tolist()[2:5] == [pd.Timestamp("2026-11-20T16:00Z"), AS_OF,
                                                 pd.Timestamp(LATE)]
    # age at 20:00: t1 created 10:20 -> 9 h 40 min = 34,800 s ... b2 19:30 -> 1,800 s
    assert result["age_s"].tolist() == [34800.0, 29400.0, 22500.0, 14460.0, 10920.0, 9180.0,
                                        3900.0, 1800.0]
    assert result["status"].astype(str).tolist() == ["active", "active", "deleted", "active",
                                                     "error", "active", "active", "pending"]
    pd.testing.assert_frame_equal(instances.instances, before)


def test_lifecycle_naive_as_of_is_refused(instances: shadeanalytics.Tables) -> None:
    """A time without a zone is ambiguous."""
    with pytest.raises(ValueError) as info:
        instance_lifecycle(instances, as_of="2026-11-20T20:00:00")
    assert str(info.value) == ("as_of must be timezone-aware, e.g. '2026-11-21T12:00:00Z' or "
                               "pd.Timestamp.now(tz='UTC')")


def test_lifecycle_empty() -> None:
    """No instances: no rows, every column with its dtype."""
    result = instance_lifecycle(shadeanalytics.Tables.empty().instances, as_of=AS_OF)
    assert result.empty
    assert result.dtypes.astype(str).to_dict() == DTYPES


def stats(keys: dict[str, list[str]], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    out = pd.DataFrame({k: pd.array(v, dtype="string") for k, v in keys.items()})
    for (name, dtype), column in zip(STATS.items(), zip(*rows, strict=True), strict=True):
        out[name] = pd.array(column, dtype=dtype)
    return out


def test_boot_stats_by_cloud(instances: shadeanalytics.Tables) -> None:
    """Median, linear 90th percentile, and share of late boots among those with an estimate."""
    before = instances.instances.copy()
    result = boot_stats(instances, as_of=AS_OF)
    pd.testing.assert_frame_equal(result, stats(
        {"cloud": ["datacrunch", "denvr", "hyperstack", "lambdalabs"]}, [
            # 60, 300: median 180; p90 = 60 + 0.9 x 240 = 276; s1 late of 2
            (2, 180.0, 276.0, 0.5),
            # b1 900 s without an estimate; b2 never active: share NaN
            (1, 900.0, 900.0, np.nan),
            # 120, 180, 600: p90 at position 1.8 = 180 + 0.8 x 420 = 516; a2, e1 late of 3
            (3, 180.0, 516.0, 2 / 3),
            (1, 600.0, 600.0, 0.0),  # 600 s is not later than a 600 s estimate
        ]), check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(instances.instances, before)


def test_boot_stats_keeps_groups_without_provisioning(instances: shadeanalytics.Tables) -> None:
    """A group where nothing became active shows count 0 and NaN statistics."""
    result = boot_stats(instances, by="status", as_of=AS_OF)
    pd.testing.assert_frame_equal(result, stats(
        {"status": ["active", "deleted", "error", "pending"]}, [
            # 60, 180, 300, 600, 600: p90 at position 3.6 = 600; a2 and s1 late of 5
            (5, 300.0, 600.0, 0.4),
            (1, 900.0, 900.0, np.nan),
            (1, 120.0, 120.0, 1.0),
            (0, np.nan, np.nan, np.nan),
        ]), check_exact=False, rtol=1e-12)


def test_boot_stats_takes_a_lifecycle(instances: shadeanalytics.Tables) -> None:
    """A lifecycle result (lifecycle=) gives the same statistics as the instances it came from."""
    table = instance_lifecycle(instances, as_of=AS_OF)
    by = ("cloud", "cluster_id")
    pd.testing.assert_frame_equal(boot_stats(lifecycle=table, by=by),
                                  boot_stats(instances, by=by, as_of=AS_OF))
    assert boot_stats(lifecycle=table, by=by)["cluster_id"].tolist() == [
        "(standalone)", "c-2", "(standalone)", "c-1", "(standalone)"]


def test_boot_stats_empty() -> None:
    """No instances: no rows, every column with its dtype."""
    result = boot_stats(shadeanalytics.Tables.empty().instances, as_of=AS_OF)
    assert result.empty
    assert result.dtypes.astype(str).to_dict() == {"cloud": "string", **STATS}
