"""GPU inventory: what the fleet holds, by GPU type or any other grouping, on a small fleet."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shadeanalytics
from shadeanalytics import DataWarning
from shadeanalytics.analytics.inventory import gpu_inventory

EARLY = "2026-11-20T10:00:00Z"
LATE = "2026-11-20T18:00:00Z"
FIGURES = {
    "instances": "Int64", "gpus": "Int64", "gpus_running": "Int64", "gpus_pending": "Int64",
    "total_vram_gb": "Int64", "vcpus": "Int64", "memory_in_gb": "Int64",
    "hourly_usd": "float64", "usd_per_gpu_hour": "float64", "clouds": "Int64",
    "regions": "Int64", "instances_without_configuration": "Int64",
}


def instance(iid: str, *, cloud: str, region: str, type_: str, gpu: str, gpus: int, vram: int,
             vcpus: int, memory: int, price: int = 100, status: str = "active"
             ) -> dict[str, Any]:
    """A complete instance object: every field the API promises, nothing secret."""
    return {
        "id": iid, "name": f"node-{iid}", "cloud": cloud, "region": region,
        "shade_instance_type": type_, "cloud_instance_type": f"{cloud}-{type_}",
        "cloud_assigned_id": f"vm-{iid}", "shade_cloud": True, "status": status,
        "configuration": {
            "gpu_type": gpu, "gpu_manufacturer": "nvidia", "num_gpus": gpus,
            "vram_per_gpu_in_gb": vram, "vcpus": vcpus, "memory_in_gb": memory,
            "storage_in_gb": 500, "interconnect": "pcie", "os": "ubuntu_22_shade_os",
        },
        "hourly_price": price, "cost_estimate": "0", "created_at": "2026-11-20T09:00:00Z",
        "active_at": "2026-11-20T09:05:00Z" if status in ("active", "error") else None,
    }


def hyperstack(iid: str, **fields: Any) -> dict[str, Any]:
    return instance(iid, cloud="hyperstack", region="canada-1", **fields)


def denvr(iid: str, **fields: Any) -> dict[str, Any]:
    return instance(iid, cloud="denvr", region="houston-usa-1", **fields)


A6000 = {"type_": "A6000", "gpu": "A6000", "gpus": 1, "vram": 48, "vcpus": 6, "memory": 12}
H100X8 = {"type_": "H100_sxm5x8", "gpu": "H100", "gpus": 8, "vram": 80, "vcpus": 104,
          "memory": 1800}

# Held = latest row not deleting/deleted/error. By GPU type:
#   H100      b2 (8 GPUs, pending) + s2 (1, running $2.50) + n1 (1, creating)
#   A100_80G  a2 (8, running $16)
#   A10       t1 (1, running $3; its earlier snapshot with 2 GPUs does not count)
#   A6000     a1 (1, running $2.10); e1 (error) and d1 (deleting) are not held
#   CPU       s1 (0 GPUs, running $0.10)
#   --        b1 (deleted) is not held
FLEET = [
    {"observed_at": EARLY, "endpoint": "/instances", "response": {"instances": [
        instance("t1", cloud="lambdalabs", region="us-east-1", type_="A10x2", gpu="A10",
                 gpus=2, vram=24, vcpus=60, memory=400, status="pending"),
    ]}},
    {"observed_at": LATE, "endpoint": "/clusters", "response": {"clusters": [{
        "id": "c-1", "name": "cluster-c-1", "cloud": "hyperstack",
        "region_info": {"region": "canada-1", "display_name": "Canada"}, "status": "active",
        "created_at": "2026-11-20T09:00:00Z", "updated_at": "2026-11-20T09:05:00Z",
        "hourly_price": 1810, "cost_estimate": "$0.00",
        "instances": [
            hyperstack("a1", price=210, **A6000),
            hyperstack("a2", type_="A100_80Gx8", gpu="A100_80G", gpus=8, vram=80, vcpus=96,
                       memory=960, price=1600),
        ],
    }]}},
    {"observed_at": LATE, "endpoint": "/instances", "response": {"instances": [
        denvr("b1", status="deleted", **H100X8),
        denvr("b2", status="pending", **H100X8),
        instance("s1", cloud="datacrunch", region="fin-01", type_="cpu_mini", gpu="CPU",
                 gpus=0, vram=0, vcpus=4, memory=16, price=10),
        instance("s2", cloud="datacrunch", region="fin-01", type_="H100", gpu="H100", gpus=1,
                 vram=80, vcpus=20, memory=180, price=250),
        instance("n1", cloud="nebius", region="eu-north1", type_="H100", gpu="H100", gpus=1,
                 vram=80, vcpus=16, memory=100, status="creating"),
        hyperstack("e1", status="error", **A6000),
        hyperstack("d1", status="deleting", **A6000),
        instance("t1", cloud="lambdalabs", region="us-east-1", type_="A10", gpu="A10", gpus=1,
                 vram=24, vcpus=30, memory=200, price=300),
    ]}},
]


@pytest.fixture
def instances() -> shadeanalytics.Tables:
    """The fleet above, loaded by the real loader (helpers take the Tables of a history)."""
    return shadeanalytics.read(copy.deepcopy(FLEET))


def expected(keys: dict[str, list[str]], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    out = pd.DataFrame({k: pd.array(v, dtype="string") for k, v in keys.items()})
    rows = [(*row, 0) if len(row) == len(FIGURES) - 1 else row for row in rows]
    for (name, dtype), column in zip(FIGURES.items(), zip(*rows, strict=True), strict=True):
        out[name] = pd.array(column, dtype=dtype)
    return out


def test_inventory_by_gpu_type(instances: shadeanalytics.Tables) -> None:
    """Held GPUs per type, latest rows only; the CPU-only SKU keeps its own row."""
    before = instances.instances.copy()
    result = gpu_inventory(instances)
    pd.testing.assert_frame_equal(result, expected({"gpu_type": [
        "H100", "A100_80G", "A10", "A6000", "CPU"]}, [
        # b2 8 x 80 GB + s2 80 + n1 80 = 800 GB; vCPUs 104 + 20 + 16; RAM 1800 + 180 + 100
        (3, 10, 1, 9, 800, 140, 2080, 2.5, 2.5, 3, 3),
        (1, 8, 8, 0, 640, 96, 960, 16.0, 2.0, 1, 1),  # $16/h over 8 running GPUs
        (1, 1, 1, 0, 24, 30, 200, 3.0, 3.0, 1, 1),
        (1, 1, 1, 0, 48, 6, 12, 2.1, 2.1, 1, 1),
        (1, 0, 0, 0, 0, 4, 16, 0.1, np.nan, 1, 1),  # no GPU: no price per GPU-hour
    ]), check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(instances.instances, before)


def test_inventory_by_cloud_sorts_ties_by_key(instances: shadeanalytics.Tables) -> None:
    """Sorted by GPUs held, then by the key."""
    result = gpu_inventory(instances, by="cloud")
    assert result["cloud"].tolist() == ["hyperstack", "denvr", "datacrunch", "lambdalabs",
                                        "nebius"]
    assert result["gpus"].tolist() == [9, 8, 1, 1, 1]
    assert result["gpus_pending"].tolist() == [0, 8, 0, 0, 1]


def test_inventory_two_keys_and_standalone_label(instances: shadeanalytics.Tables) -> None:
    """Several keys at once; instances outside a cluster show as (standalone)."""
    result = gpu_inventory(instances, by=("cluster_id", "gpu_type"))
    assert list(result.columns) == ["cluster_id", "gpu_type", *FIGURES]
    assert list(zip(result["cluster_id"], result["gpu_type"], strict=True)) == [
        ("(standalone)", "H100"), ("c-1", "A100_80G"), ("(standalone)", "A10"),
        ("c-1", "A6000"), ("(standalone)", "CPU"),
    ]


def test_unknown_status_is_held_but_neither_running_nor_pending() -> None:
    """A status the API added since counts in gpus only."""
    doc = {"observed_at": LATE, "endpoint": "/instances", "response": {"instances": [
        denvr("h1", status="hibernating", **H100X8)]}}
    with pytest.warns(DataWarning, match="unknown status 'hibernating'"):
        instances = shadeanalytics.read(doc).instances
    row = gpu_inventory(instances).iloc[0]
    assert (row["instances"], row["gpus"], row["gpus_running"], row["gpus_pending"]) == (
        1, 8, 0, 0)
    assert row["hourly_usd"] == 0.0
    assert np.isnan(row["usd_per_gpu_hour"])


def test_empty_fleet_keeps_columns_and_dtypes() -> None:
    """No instances (or none held): no rows, every column with its dtype."""
    result = gpu_inventory(shadeanalytics.Tables.empty().instances, by=("gpu_type", "cloud"))
    assert result.empty
    assert result.dtypes.astype(str).to_dict() == {"gpu_type": "string", "cloud": "string",
                                                   **FIGURES}


def test_unknown_key_is_refused(instances: shadeanalytics.Tables) -> None:
    """Only the documented keys group."""
    with pytest.raises(ValueError, match="cannot group by 'ip'"):
        gpu_inventory(instances, by="ip")


def test_a_bills_instances_are_deprecated_for_the_bill(instances: shadeanalytics.Tables) -> None:
    """gpu_inventory takes the Bill itself; its instances frame still works, with a warning."""
    billed = shadeanalytics.bill_fleet(instances)
    expected_frame = gpu_inventory(instances)
    pd.testing.assert_frame_equal(gpu_inventory(billed), expected_frame)
    with pytest.warns(DeprecationWarning,
                      match=r"^gpu_inventory\(bill.instances\) is deprecated and will be removed "
                            r"in 0\.3; use gpu_inventory\(bill\)$") as caught:
        old = gpu_inventory(billed.instances)
    assert caught[0].filename == __file__
    pd.testing.assert_frame_equal(old, expected_frame)
