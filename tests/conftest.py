"""Shared fixtures: the seed document and small record builders."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED_PATH = ROOT / "data" / "seed" / "cluster-info-example.json"
SAMPLE_DIR = ROOT / "data" / "sample"
#: every account endpoint as Shadeform's spec and docs show it, deviations included
ACCOUNT_FIXTURES = ROOT / "tests" / "fixtures" / "account"
#: every secret value those fixtures hold (env values, registry password, docker args, script)
FIXTURE_SECRETS = ("fixture-secret-docker-args", "fixture-secret-hf-token",
                   "fixture-secret-registry-password", "fixture-secret-wandb-key",
                   "fixture-secret-info-env", "IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=")
#: the base64 body of the public key in sshkeys.json (never to be stored)
PUBLIC_KEY_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"


def account_fixture(name: str) -> Any:
    """A fresh copy of one file of ``tests/fixtures/account``."""
    return json.loads((ACCOUNT_FIXTURES / name).read_text())


@pytest.fixture
def seed() -> dict[str, Any]:
    """A fresh copy of the seed cluster info response."""
    return json.loads(SEED_PATH.read_text())


def make_instance(iid: str = "i-1", **overrides: Any) -> dict[str, Any]:
    """A complete, valid instance object (list shape) with no secrets; override any field."""
    record: dict[str, Any] = {
        "id": iid,
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "cloud_instance_type": "gpu_1x_a6000",
        "cloud_assigned_id": f"vm-{iid}",
        "shade_cloud": True,
        "name": f"node-{iid}",
        "configuration": {
            "memory_in_gb": 12, "storage_in_gb": 256, "vcpus": 6, "num_gpus": 1,
            "gpu_type": "A6000", "interconnect": "pcie", "vram_per_gpu_in_gb": 48,
            "gpu_manufacturer": "nvidia", "os": "ubuntu_22_shade_os", "nvlink": False,
        },
        "ip": "10.0.0.1",
        "ssh_user": "shadeform",
        "ssh_port": 22,
        "status": "active",
        "cost_estimate": "10.5",
        "created_at": "2026-11-20T00:00:00Z",
        "active_at": "2026-11-20T00:05:00Z",
        "deleted_at": None,
        "hourly_price": 210,
    }
    for key, value in overrides.items():
        if key in record["configuration"]:
            record["configuration"][key] = value
        else:
            record[key] = value
    return record


def make_cluster(cid: str = "c-1", instances: list[dict[str, Any]] | None = None,
                 **overrides: Any) -> dict[str, Any]:
    """A complete, valid cluster object; override any field."""
    members = instances if instances is not None else [make_instance(f"{cid}-i1")]
    record: dict[str, Any] = {
        "id": cid,
        "cloud": "hyperstack",
        "name": f"cluster-{cid}",
        "region_info": {"region": "canada-1", "display_name": "Canada"},
        "status": "active",
        "created_at": "2026-11-20T00:00:00Z",
        "updated_at": "2026-11-20T00:05:00Z",
        "instances": copy.deepcopy(members),
        "hourly_price": sum(m.get("hourly_price", 0) for m in members),
        "cloud_cluster_id": None,
        "status_details": None,
        "cost_estimate": "$10.50",
        "active_at": "2026-11-20T00:05:00Z",
    }
    record.update(overrides)
    return record


def envelope(response: Any, observed_at: str, endpoint: str = "/clusters") -> dict[str, Any]:
    """A snapshot envelope as the collector and the sample data write it."""
    return {"observed_at": observed_at, "endpoint": endpoint, "response": response}


def volume_history(polls: tuple[str, ...] = ("2026-11-20T00:00:00Z", "2026-11-20T01:00:00Z"),
                   ) -> list[dict[str, Any]]:
    """Snapshots of one instance at $2.10/h (active since the first poll) and one 500 GB aws
    volume at $0.0001/GB/h ($0.05/h, billed from its first sighting), at each poll."""
    volume = {"id": "vol-1", "cloud": "aws", "cloud_assigned_id": "vol-0a1", "region":
              "us-east-1", "name": "datasets", "fixed_size": True, "size_in_gb": 500,
              "cost_estimate": "0.05", "supports_multi_mount": False, "mounted_by": "i-1"}
    types = {"volume_types": [{"cloud": "aws", "region": "us-east-1",
                               "supports_multi_mount": False, "fixed_size": True,
                               "price_per_gb_per_hour": "0.0001"}]}
    docs = []
    for clock in polls:
        docs += [envelope({"instances": [make_instance("i-1", active_at=polls[0])]}, clock,
                          "/instances"),
                 envelope({"volumes": [volume]}, clock, "/volumes"),
                 envelope(types, clock, "/volumes/types")]
    return docs
