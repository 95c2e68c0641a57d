"""The test kit's renderer: a fleet of :mod:`.fleet` as the Shadeform API shows it.

:func:`node` and :func:`cluster` give an instance or a cluster object at a time (as listed by
``/instances`` and ``/clusters``, and by their ``/info`` endpoints), :func:`poll` one poll of
both lists, :func:`instance_type` an entry of ``/instances/types``, :func:`volume` one of
``/volumes``. Launch configurations carry fake secrets (``sa-fake-secret-<kind>-<serial>``).
Every timestamp is ``t0`` plus the model's milliseconds, with or without milliseconds
(``frac``), as the API writes both.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from .fleet import (
    DAY,
    REGIONS,
    Cluster,
    Node,
    Offering,
    billed_cents,
    cluster_cost_text,
    cost_text,
    display_name,
    price_text,
    volume_cost_text,
)

SECRET = "sa-fake-secret-"


def iso(t0: datetime, ms: int, frac: bool) -> str:
    moment = t0 + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if frac else f"{text}Z"


def maybe_iso(t0: datetime, ms: int | None, frac: bool) -> str | None:
    return None if ms is None else iso(t0, ms, frac)


# ---------------------------------------------------------------------------------------------
# Launch configurations. Every secret value carries "sa-fake-secret-<kind>-<serial>".
# ---------------------------------------------------------------------------------------------

def secret(kind: str, serial: int) -> str:
    return f"{SECRET}{kind}-{serial:04d}"


def _docker_vllm(serial: int) -> dict[str, Any]:
    return {
        "image": "vllm/vllm-openai:latest",
        "args": f"--model meta-llama/Llama-3.1-8B-Instruct --api-key {secret('args', serial)}",
        "shared_memory_in_gb": 16,
        "envs": [{"name": "HUGGING_FACE_HUB_TOKEN", "value": secret("hf", serial)}],
        "port_mappings": [{"host_port": 80, "container_port": 8000}],
        "volume_mounts": [
            {"host_path": "~/.cache/huggingface", "container_path": "/root/.cache/huggingface"}
        ],
    }


def _docker_trainer(serial: int) -> dict[str, Any]:
    return {
        "image": "ghcr.io/acme-ml/trainer:2026.11",
        "args": f"--run-name exp-{serial:04d} --resume-token {secret('args', serial)}",
        "shared_memory_in_gb": 64,
        "envs": [
            {"name": "WANDB_API_KEY", "value": secret("wandb", serial)},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": secret("aws", serial)},
        ],
        "volume_mounts": [{"host_path": "/mnt/data", "container_path": "/data"}],
        "registry_credentials": {
            "username": secret("reguser", serial),
            "password": secret("regpass", serial),
        },
    }


def _docker_jupyter(serial: int) -> dict[str, Any]:
    return {
        "image": "quay.io/jupyter/pytorch-notebook:cuda12-latest",
        "args": f"start-notebook.py --IdentityProvider.token={secret('args', serial)}",
        "envs": [{"name": "JUPYTER_TOKEN", "value": secret("jupyter", serial)}],
        "port_mappings": [{"host_port": 8888, "container_port": 8888}],
    }


def _docker_plain(serial: int) -> dict[str, Any]:
    return {"image": "nvidia/cuda:12.4.1-runtime-ubuntu22.04"}


_DOCKER: dict[str, Callable[[int], dict[str, Any]]] = {
    "vllm": _docker_vllm,
    "trainer": _docker_trainer,
    "jupyter": _docker_jupyter,
    "cuda": _docker_plain,
}

_SCRIPTS: dict[str, str] = {
    "serve": (
        "#!/bin/bash\nset -euo pipefail\nexport HF_TOKEN={secret}\npip install --quiet vllm\n"
        "nohup vllm serve mistralai/Mistral-7B-v0.1 --port 8000 > /var/log/vllm.log 2>&1 &\n"
    ),
    "setup": (
        "#!/bin/bash\nset -euo pipefail\n"
        "echo 'WANDB_API_KEY={secret}' >> /etc/environment\n"
        "apt-get update -qq && apt-get install -y -qq htop nvtop\n"
    ),
    "bootstrap": (
        "#!/bin/bash\nset -euo pipefail\n# join the training cluster\n"
        "echo '{secret}' > /etc/cluster-join-token\nsystemctl restart slurmd\n"
    ),
}


LAUNCH_KINDS = (*_DOCKER, *_SCRIPTS)


def launch_configuration(kind: str, serial: int) -> dict[str, Any]:
    """The launch configuration of ``kind`` (:data:`LAUNCH_KINDS`), its secrets numbered
    ``serial``."""
    if kind in _DOCKER:
        return {"type": "docker", "docker_configuration": _DOCKER[kind](serial)}
    script = _SCRIPTS[kind].format(secret=secret(f"script-{kind}", serial))
    encoded = base64.b64encode(script.encode()).decode()
    return {"type": "script", "script_configuration": {"base64_script": encoded}}


# ---------------------------------------------------------------------------------------------
# Instances and clusters at a time.
# ---------------------------------------------------------------------------------------------


def _configuration(n: Node) -> dict[str, Any]:
    off = n.offering
    config: dict[str, Any] = {
        "memory_in_gb": off.memory,
        "storage_in_gb": off.storage,
        "vcpus": off.vcpus,
        "num_gpus": off.num_gpus,
        "gpu_type": n.gpu_type_override or off.gpu_type,
        "interconnect": off.interconnect,
        "vram_per_gpu_in_gb": off.vram,
        "gpu_manufacturer": off.manufacturer,
        "os": n.os,
    }
    if not n.legacy:
        config["nvlink"] = off.nvlink
    return config


def _rental_terms(n: Node, t0: datetime) -> dict[str, Any]:
    if n.rental == "spot":
        return {"rental_type": "spot", "hourly_price": price_text(n.offering.spot_cents or 0),
                "ending_at": None}
    if n.rental == "commitment":
        return {"rental_type": "commitment",
                "ending_at": iso(t0, n.plan.created + 90 * DAY, n.frac)}
    if n.rental == "on_demand_priced":
        return {"rental_type": "on_demand", "hourly_price": price_text(n.offering.price),
                "ending_at": None}
    return {"rental_type": "on_demand"}


def _port_mappings(n: Node) -> list[dict[str, int]]:
    if n.offering.deployment == "container":
        return [
            {"internal_port": 22, "external_port": n.ssh_port},
            {"internal_port": 8888, "external_port": n.ssh_port + 1},
        ]
    if n.ports is not None:
        return [{"internal_port": i, "external_port": e} for i, e in n.ports]
    if n.launch == "vllm":
        return [{"internal_port": 8000, "external_port": 80}]
    return []


_NODE_DETAILS = {"pending_provider": "waiting for provider", "pending": "booting"}


def _node_details(n: Node, status: str) -> str | None:
    docker = (n.launch in _DOCKER if isinstance(n.launch, str)
              else n.launch is not None and n.launch.get("type") == "docker")
    if status == "pending" and docker:
        return "downloading"
    if status == "error":
        return n.error_detail
    if status in ("deleting", "deleted"):
        return n.end_detail
    return _NODE_DETAILS.get(status)


def node(n: Node, t: int, t0: datetime) -> dict[str, Any]:
    """Instance ``n`` at ``t`` (ms after ``t0``), keys in the API's order."""
    plan, off = n.plan, n.offering
    status = plan.status(t)
    reachable = plan.reached("pending", t)
    item: dict[str, Any] = {
        "id": n.id,
        "cloud": off.cloud,
        "region": n.region,
        "shade_instance_type": off.shade_type,
        "cloud_instance_type": off.cloud_type,
        "cloud_assigned_id": n.cloud_assigned_id,
        "shade_cloud": n.shade_cloud,
        "name": n.name,
        "configuration": _configuration(n),
        "ip": n.ip if reachable else None,
        "ssh_user": "shadeform" if n.shade_cloud else "ubuntu",
        "ssh_port": n.ssh_port if reachable else None,
        "status": status,
        "cost_estimate": cost_text(billed_cents(n, t)),
        "created_at": iso(t0, plan.created, n.frac),
        "deleted_at": maybe_iso(t0, plan.at("deleted", t), n.frac),
        "status_details": _node_details(n, status),
        "hourly_price": off.price,
    }
    if not n.legacy:
        item["rental_terms"] = _rental_terms(n, t0)
    if isinstance(n.launch, str):
        item["launch_configuration"] = launch_configuration(n.launch, n.serial)
    elif n.launch is not None:
        item["launch_configuration"] = n.launch
    if n.tags is not None:
        item["tags"] = list(n.tags)
    if not n.legacy:
        item["port_mappings"] = _port_mappings(n)
    active_at = maybe_iso(t0, plan.at("active", t), n.frac)
    if active_at is not None or not n.legacy:
        item["active_at"] = active_at
    if not n.legacy:
        item["boot_time"] = {"min_boot_in_sec": off.boot[0], "max_boot_in_sec": off.boot[1]}
    for field in n.omit:
        item.pop(field, None)
    return item


CLUSTER_DETAILS = {
    "creating": "Cluster is being created",
    "pending_provider": "Waiting for provider capacity",
    "pending": "Cluster is provisioning",
    "deleting": "Cluster is being deleted",
}


def cluster(c: Cluster, t: int, t0: datetime) -> dict[str, Any]:
    """Cluster ``c`` at ``t``, its members inside; its cost is the sum of theirs."""
    plan = c.plan
    status = plan.status(t)
    active_at = maybe_iso(t0, plan.at("active", t), c.frac)
    cost = sum(billed_cents(m, t) for m in c.members)
    return {
        "id": c.id,
        "cloud": c.cloud,
        "name": c.name,
        "region_info": {
            "region": c.region,
            "display_name": display_name(c.cloud, c.region),
        },
        "status": status,
        "status_details": (
            c.error_detail if status == "error" else CLUSTER_DETAILS.get(status)
        ),
        "created_at": iso(t0, plan.created, c.frac),
        "updated_at": iso(t0, plan.changed_at(t), c.frac),
        "instances": [node(m, t, t0) for m in c.members],
        "hourly_price": c.price_override or sum(m.offering.price for m in c.members),
        "cloud_cluster_id": c.cloud_cluster_id if plan.reached("pending", t) else None,
        "cost_estimate": None if active_at is None else cluster_cost_text(cost),
        "active_at": active_at,
    }


def poll(t0: datetime, t: int, every: int, nodes: Iterable[Node],
         clusters: Iterable[Cluster]) -> dict[str, Any]:
    """One poll at ``t``: ``{"observed_at", "clusters", "instances"}`` with a GET /clusters and a
    GET /instances response (standalone instances only), of what is listed then (see
    :meth:`~.fleet.Plan.visible`; ``every`` is the time between polls)."""
    return {
        "observed_at": iso(t0, t, frac=False),
        "clusters": {"clusters": [cluster(c, t, t0) for c in clusters
                                  if c.plan.visible(t, every)]},
        "instances": {"instances": [node(n, t, t0) for n in nodes
                                    if n.plan.visible(t, every)]},
    }


# ---------------------------------------------------------------------------------------------
# The catalogue and the account.
# ---------------------------------------------------------------------------------------------


def instance_type(off: Offering, on_demand: Callable[[str], bool],
                  spot: Callable[[str], bool]) -> dict[str, Any]:
    """The /instances/types entry of ``off``: one availability entry per region of its cloud,
    on demand (``on_demand(region)`` says whether available), then spot for an offering with
    a spot price (``spot(region)``), in that order of calls."""
    regions = REGIONS[off.cloud]
    entries: list[dict[str, Any]] = [
        {"region": region, "available": on_demand(region), "display_name": display,
         "rental_type": "on_demand"} for region, display in regions]
    if off.spot_cents is not None:
        entries += [{"region": region, "available": spot(region), "display_name": display,
                     "rental_type": "spot", "hourly_price": price_text(off.spot_cents)}
                    for region, display in regions]
    return {
        "cloud": off.cloud,
        "shade_instance_type": off.shade_type,
        "cloud_instance_type": off.cloud_type,
        "configuration": {
            "memory_in_gb": off.memory,
            "storage_in_gb": off.storage,
            "vcpus": off.vcpus,
            "num_gpus": off.num_gpus,
            "gpu_type": off.gpu_type,
            "interconnect": off.interconnect,
            "vram_per_gpu_in_gb": off.vram,
            "gpu_manufacturer": off.manufacturer,
            "os_options": list(off.os_options),
            "nvlink": off.nvlink,
        },
        "hourly_price": off.price,
        "deployment_type": off.deployment,
        "availability": entries,
        "boot_time": {"min_boot_in_sec": off.boot[0], "max_boot_in_sec": off.boot[1]},
    }


def volume(vid: str, name: str, size_gb: int, cloud: str, region: str, price: str,
           hours: float, mounted_by: str | None, multi_mount: bool = False) -> dict[str, Any]:
    """A /volumes entry: ``size_gb`` at ``price`` per GB-hour, billed ``hours`` so far."""
    return {
        "id": vid, "cloud": cloud, "cloud_assigned_id": f"vol-{vid[-6:]}", "region": region,
        "name": name, "fixed_size": True, "size_in_gb": size_gb,
        "cost_estimate": volume_cost_text(size_gb, price, hours),
        "supports_multi_mount": multi_mount, "mounted_by": mounted_by,
    }


def volume_type(cloud: str, region: str, price: str, multi_mount: bool = False
                ) -> dict[str, Any]:
    """A /volumes/types entry."""
    return {"cloud": cloud, "region": region, "supports_multi_mount": multi_mount,
            "fixed_size": True, "price_per_gb_per_hour": price}
