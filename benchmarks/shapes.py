"""Realistic response shapes, generated independently of ``shadeanalytics.testing``.

On purpose this module shares nothing with the project's own fleet generator (no catalogue,
no renderer, no seed): the loader must not be tuned to the shapes it writes. It follows
the API notes' ``seed-cluster-info.md`` (the canonical ``/clusters/{id}/info``) and
the addendum of ``shadeform-api.md`` (how live responses deviate from the spec):

- instances before ``active`` (``creating``, ``pending_provider``, ``pending``) have null
  ``ip``, ``ssh_port``, ``ssh_user``, ``cloud_assigned_id`` and ``active_at``; some have no
  ``configuration`` and no ``cost_estimate`` at all (an info right after create);
- some ``active`` instances still have a null ``ip`` or ``ssh_port``;
- 0-5 tags, provider port mappings, docker launches (image, args, shared memory, envs,
  port mappings, volume mounts, registry credentials) and script launches;
- clusters of 1-16 instances;
- ``dirty=True`` adds unknown fields (a new top-level field on some instances and clusters, a
  new key in ``configuration``) and a few drifted enum values (a status the spec does not list,
  an unusual ``rental_type``/``interconnect``).

The containers: ``array`` (a JSON array of info responses), ``jsonl`` (one info response a
line), ``wrapper`` (a ``GET /clusters`` response); any of them gzipped.

    python benchmarks/shapes.py 200 /tmp/shapes.json     # write one file (format from name)
"""

from __future__ import annotations

import base64
import gzip
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

__all__ = ["FORMATS", "fleet", "render", "write"]

FORMATS = ("array", "jsonl", "wrapper")

_NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
# (shade type, cloud type, gpu, vram, gpus, vcpus, memory, storage, interconnect, cents)
_TYPES = (
    ("A6000", "gpu_1x_a6000", "A6000", 48, 1, 6, 58, 512, "pcie", 80),
    ("A100", "gpu_1x_a100_sxm4", "A100", 40, 1, 30, 200, 512, "sxm4", 129),
    ("A100_80Gx8", "8x-a100-80gb", "A100_80G", 80, 8, 124, 1800, 6000, "sxm4", 1480),
    ("H100", "gpu_1x_h100_pcie", "H100", 80, 1, 26, 200, 1000, "pcie", 249),
    ("H100x8", "8x-h100-sxm5", "H100", 80, 8, 208, 1800, 24000, "sxm5", 2390),
    ("L40S", "l40s-48gb.1x", "L40S", 48, 1, 16, 128, 750, "pcie", 99),
    ("RTX4090x2", "2x-rtx4090", "RTX4090", 24, 2, 32, 96, 1000, "pcie", 74),
    ("CPU", "c6.2xlarge", "CPU", 0, 0, 8, 16, 100, "pcie", 34),
)
_PLACES = (
    ("hyperstack", "canada-1", "CA, Montreal"), ("lambdalabs", "us-west-1", "US, Arizona"),
    ("denvr", "houston-usa-1", "US, Houston, TX"), ("datacrunch", "FIN-01", "EU, Helsinki"),
    ("massedcompute", "us-central-2", "US, Kansas City"), ("paperspace", "ny2", "US, New York"),
    ("crusoe", "us-east1-a", "US, Virginia"), ("vultr", "ord", "US, Chicago"),
)
_IMAGES = ("vllm/vllm-openai:latest", "nvcr.io/nvidia/pytorch:24.05-py3",
           "ghcr.io/huggingface/text-generation-inference:2.1", "ollama/ollama:0.3.6",
           "registry.example.com/team/trainer:2026.09.1")
_TAGS = ("prod", "dev", "research", "team-nlp", "team-vision", "batch", "eval", "ft",
         "owner:alice", "owner:bob", "cost-center:42", "spot-ok")
_ENV_NAMES = ("HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "MODEL_ID", "NCCL_DEBUG",
              "AWS_SECRET_ACCESS_KEY", "MAX_BATCH")
_SCRIPTS = tuple(base64.b64encode(s.encode()).decode() for s in (
    "#!/bin/bash\napt-get update && apt-get install -y htop\n",
    "#!/bin/bash\npip install -U vllm && vllm serve $MODEL_ID\n",
    "#!/bin/bash\nwhile true; do nvidia-smi >> /var/log/gpu.log; sleep 60; done\n",
))
_BEFORE_ACTIVE = ("creating", "pending_provider", "pending")


def _time(t: datetime, rng: random.Random) -> str:
    # the API writes both whole seconds and milliseconds
    if rng.random() < 0.5:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _launch(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.35:
        return None
    if roll < 0.85:
        docker: dict[str, Any] = {"image": rng.choice(_IMAGES)}
        if rng.random() < 0.6:
            docker["args"] = f"--model org/model-{rng.randrange(100)} --port 8000"
        if rng.random() < 0.5:
            docker["shared_memory_in_gb"] = rng.choice((8, 16, 32, 64))
        docker["envs"] = [{"name": name, "value": f"secret-{rng.getrandbits(64):x}"}
                          for name in rng.sample(_ENV_NAMES, rng.randint(0, 4))]
        if rng.random() < 0.7:
            docker["port_mappings"] = [{"host_port": 80 + k, "container_port": 8000 + k}
                                       for k in range(rng.randint(1, 2))]
        if rng.random() < 0.5:
            docker["volume_mounts"] = [{"host_path": "~/.cache/huggingface",
                                        "container_path": "/root/.cache/huggingface"}]
        if rng.random() < 0.2:
            docker["registry_credentials"] = {"username": "ci",
                                              "password": f"pw-{rng.getrandbits(48):x}"}
        return {"type": "docker", "docker_configuration": docker}
    return {"type": "script", "script_configuration": {"base64_script": rng.choice(_SCRIPTS)}}


def _instance(rng: random.Random, status: str, created: datetime, cloud: str, region: str,
              shape: tuple[Any, ...], dirty: bool) -> dict[str, Any]:
    shade, cloud_type, gpu, vram, gpus, vcpus, memory, storage, interconnect, cents = shape
    placed = status not in _BEFORE_ACTIVE
    active_at = created + timedelta(seconds=rng.randint(120, 900))
    deleted = status in ("deleted", "deleting")
    hours = max((_NOW - active_at).total_seconds() / 3600, 0.0)
    inst: dict[str, Any] = {
        "id": _uuid(rng),
        "cloud": cloud,
        "region": region,
        "shade_instance_type": shade,
        "cloud_instance_type": cloud_type,
        "cloud_assigned_id": _uuid(rng) if placed else None,
        "shade_cloud": rng.random() < 0.8,
        "name": f"{shade.lower()}-{rng.randrange(10_000)}",
        "configuration": {
            "memory_in_gb": memory, "storage_in_gb": storage, "vcpus": vcpus,
            "num_gpus": gpus, "gpu_type": gpu, "interconnect": interconnect,
            "vram_per_gpu_in_gb": vram, "gpu_manufacturer": "nvidia" if gpus else None,
            "os": "ubuntu_22_shade_os", "nvlink": interconnect.startswith("sxm"),
        },
        "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}" if placed else None,
        "ssh_user": "shadeform" if placed else None,
        "ssh_port": rng.choice((22, 22, 22, 2222)) if placed else None,
        "status": status,
        "cost_estimate": f"{hours * cents / 100:.2f}" if placed else "0.00",
        "created_at": _time(created, rng),
        "deleted_at": _time(_NOW - timedelta(hours=rng.randint(1, 48)), rng) if deleted
        else None,
        "status_details": rng.choice((None, None, "downloading", "preempted", "running")),
        "hourly_price": cents,
        "launch_configuration": _launch(rng),
        "tags": rng.sample(_TAGS, rng.randint(0, 5)),
        "port_mappings": [{"internal_port": 8000 + k, "external_port": 30_000 + rng.randrange(999)}
                          for k in range(rng.choice((0, 0, 1, 1, 2)))],
        "active_at": _time(active_at, rng) if placed else None,
        "boot_time": {"min_boot_in_sec": 180, "max_boot_in_sec": rng.choice((300, 600, 900))},
    }
    if rng.random() < 0.3:
        inst["rental_terms"] = {"rental_type": rng.choice(("on_demand", "spot")),
                                "hourly_price": f"{cents / 100 * 0.6:.2f}", "ending_at": None}
    if dirty:
        if status == "active" and rng.random() < 0.04:
            inst["ip"] = None  # active, not yet reachable (addendum)
        if status == "active" and rng.random() < 0.04:
            inst["ssh_port"] = None
        if status in ("pending_provider", "creating") and rng.random() < 0.5:
            del inst["configuration"], inst["cost_estimate"]  # info right after create
        if rng.random() < 0.002:
            inst["maintenance_window"] = {"starts_at": _time(_NOW, rng)}  # unknown field
        if rng.random() < 0.001:
            inst["configuration"] = {**inst.get("configuration", {}), "numa_nodes": 2}
        if rng.random() < 0.002:
            inst["status"] = "stopped"  # drifted enum
        if rng.random() < 0.002:
            inst.setdefault("rental_terms", {"hourly_price": None, "ending_at": None})
            inst["rental_terms"]["rental_type"] = "reserved"  # drifted enum
    return inst


def fleet(n: int, seed: int = 2026, dirty: bool = True) -> list[dict[str, Any]]:
    """``n`` ``/clusters/{id}/info`` responses (about 8.5 instances each).

    ``dirty=False`` gives the same fleet with every instance placed and active, nothing
    unknown and nothing drifted (the reference for the cost of dirty data).
    """
    rng = random.Random(seed)
    out = []
    for k in range(n):
        cloud, region, region_name = rng.choice(_PLACES)
        shape = rng.choice(_TYPES)
        created = _NOW - timedelta(minutes=rng.randint(5, 60 * 24 * 60))
        if dirty:
            status = rng.choices(("active", "pending", "pending_provider", "creating", "error",
                                  "deleting", "deleted"), (70, 8, 6, 3, 2, 2, 9))[0]
        else:
            status = "active"
        size = rng.randint(1, 16)
        members = []
        for _ in range(size):
            member_status = status
            if dirty and status == "active" and rng.random() < 0.1:
                member_status = rng.choice(_BEFORE_ACTIVE)  # a node still being placed
            members.append(_instance(rng, member_status, created, cloud, region, shape, dirty))
        placed = status not in _BEFORE_ACTIVE
        cents = sum(m["hourly_price"] for m in members)
        cluster: dict[str, Any] = {
            "id": _uuid(rng),
            "cloud": cloud,
            "name": f"cluster-{k}",
            "region_info": {"region": region, "display_name": region_name},
            "status": status,
            "created_at": _time(created, rng),
            "updated_at": _time(created + timedelta(minutes=rng.randint(1, 90)), rng),
            "instances": members,
            "hourly_price": cents,
            "cloud_cluster_id": f"cl-{rng.getrandbits(40):x}" if placed else None,
            "status_details": rng.choice((None, "Cluster is provisioning", "ok")),
            "cost_estimate": f"${cents * k % 100_000 / 100:,.2f}",
            "active_at": _time(created + timedelta(minutes=14), rng) if placed else None,
        }
        if dirty and rng.random() < 0.005:
            cluster["placement_group"] = f"pg-{k % 7}"  # unknown field
        out.append(cluster)
    return out


def render(clusters: list[dict[str, Any]], fmt: str, gz: bool = False) -> bytes:
    """``clusters`` as ``array``, ``jsonl`` or ``wrapper`` bytes, gzipped when ``gz``."""
    if fmt == "array":
        data = orjson.dumps(clusters)
    elif fmt == "jsonl":
        data = b"".join(orjson.dumps(c) + b"\n" for c in clusters)
    elif fmt == "wrapper":
        data = orjson.dumps({"clusters": clusters})
    else:
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    return gzip.compress(data, compresslevel=1, mtime=0) if gz else data


def write(path: Path, clusters: list[dict[str, Any]]) -> Path:
    """Write ``clusters`` to ``path``: the suffix says the format (``.json``: array,
    ``.jsonl``, ``.clusters.json``: wrapper; ``.gz`` compressed)."""
    name = path.name
    gz = name.endswith(".gz")
    stem = name[:-3] if gz else name
    fmt = "wrapper" if stem.endswith(".clusters.json") else \
        "jsonl" if stem.endswith(".jsonl") else "array"
    path.write_bytes(render(clusters, fmt, gz))
    return path


if __name__ == "__main__":
    write(Path(sys.argv[2]), fleet(int(sys.argv[1])))
