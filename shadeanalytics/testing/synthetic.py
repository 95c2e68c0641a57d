"""Deterministic synthetic Shadeform API responses: fleet history, instance types, big payloads."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

__all__ = ["big_clusters_response", "fleet_history", "instance_types"]

# All simulated moments are integer milliseconds relative to the first poll.
_SECOND = 1_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

_SECRET = "sa-fake-secret-"

# ---------------------------------------------------------------------------------------------
# Catalogue: clouds, regions and the offerings every response is built from.
# ---------------------------------------------------------------------------------------------

_REGIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "hyperstack": (
        ("canada-1", "Canada, Montreal"),
        ("norway-1", "Norway, Oslo"),
        ("us-1", "US, Seattle, WA"),
    ),
    "denvr": (("houston-usa-1", "US, Houston, TX"), ("calgary-canada-1", "Canada, Calgary, AB")),
    "lambdalabs": (
        ("us-west-1", "US, San Francisco, CA"),
        ("us-east-1", "US, Ashburn, VA"),
        ("us-south-1", "US, Dallas, TX"),
    ),
    "datacrunch": (
        ("helsinki-finland-1", "Finland, Helsinki"),
        ("helsinki-finland-2", "Finland, Helsinki"),
        ("reykjanesbaer-iceland-1", "Iceland, Reykjanesbær"),
    ),
    "nebius": (("eu-north1", "Finland, Mäntsälä"), ("us-central1", "US, Kansas City, MO")),
    "crusoe": (
        ("us-east1-a", "US, Virginia"),
        ("us-northcentral1-a", "US, North Dakota"),
        ("eu-iceland1-a", "Iceland, Reykjavik"),
    ),
    "vultr": (
        ("ewr", "US, Piscataway, NJ"),
        ("lax", "US, Los Angeles, CA"),
        ("ams", "Netherlands, Amsterdam"),
    ),
    "massedcompute": (("us-central-1", "US, Wichita, KS"),),
    "paperspace": (("ny2", "US, New York, NY"), ("ams1", "Netherlands, Amsterdam")),
    "scaleway": (("fr-par-2", "France, Paris"), ("pl-waw-2", "Poland, Warsaw")),
}

# gpu_type -> (vram_per_gpu_in_gb, gpu_manufacturer); CPU-only SKUs have neither.
_GPUS: dict[str, tuple[int, str]] = {
    "A6000": (48, "nvidia"),
    "A100": (40, "nvidia"),
    "A100_80G": (80, "nvidia"),
    "H100": (80, "nvidia"),
    "H200": (141, "nvidia"),
    "L40S": (48, "nvidia"),
    "RTX6000Ada": (48, "nvidia"),
    "MI300X": (192, "amd"),
    "CPU": (0, ""),
}

_GPU_OS = (
    "ubuntu22.04_cuda12.4_shade_os",
    "ubuntu22.04_cuda12.2_shade_os",
    "ubuntu20.04_cuda12.0_shade_os",
    "ubuntu_22_shade_os",
)
_CPU_OS = ("ubuntu22.04", "ubuntu20.04")


@dataclass(frozen=True)
class _Offering:
    """One (cloud, shade_instance_type) offering; prices are fixed, only availability is random."""

    cloud: str
    shade_type: str
    cloud_type: str
    gpu_type: str
    num_gpus: int
    vcpus: int
    memory: int
    storage: int
    interconnect: str
    price: int  # on-demand, integer US cents per hour
    spot_ratio: float | None  # spot price / on-demand price; None = no spot market
    boot: tuple[int, int]  # (min, max) seconds
    deployment: str = "vm"

    @property
    def vram(self) -> int:
        return _GPUS[self.gpu_type][0]

    @property
    def manufacturer(self) -> str:
        return _GPUS[self.gpu_type][1]

    @property
    def nvlink(self) -> bool:
        return self.interconnect.startswith("sxm") and self.num_gpus > 1

    @property
    def os_options(self) -> tuple[str, ...]:
        return _CPU_OS if self.num_gpus == 0 else _GPU_OS

    @property
    def spot_cents(self) -> int | None:
        return None if self.spot_ratio is None else round(self.price * self.spot_ratio)


_OFFERINGS: tuple[_Offering, ...] = (
    # cloud, shade_instance_type, cloud_instance_type,
    #     gpu_type, num_gpus, vcpus, memory GB, storage GB, interconnect, cents/h, spot ratio,
    #     (min, max boot seconds)[, deployment_type]
    _Offering("hyperstack", "A6000", "n3-RTX-A6000x1",
              "A6000", 1, 8, 58, 200, "pcie", 65, 0.5, (180, 420)),
    _Offering("hyperstack", "A6000x4", "n3-RTX-A6000x4",
              "A6000", 4, 28, 232, 800, "pcie", 260, None, (240, 600)),
    _Offering("hyperstack", "H100", "n3-H100x1",
              "H100", 1, 28, 180, 750, "pcie", 199, 0.5, (240, 480)),
    _Offering("hyperstack", "H100_sxm5x8", "n3-H100-SXM5x8",
              "H100", 8, 192, 1800, 32000, "sxm5", 2072, None, (600, 1200)),
    _Offering("hyperstack", "cpu_mini", "n1-cpu-small",
              "CPU", 0, 4, 16, 100, "", 8, None, (60, 180)),
    _Offering("denvr", "A100", "A100_40GB_PCIe_1x",
              "A100", 1, 14, 112, 500, "pcie", 129, None, (300, 600)),
    _Offering("denvr", "A100_80Gx8", "A100_80GB_SXM_8x",
              "A100_80G", 8, 120, 960, 8000, "sxm4", 1432, None, (900, 1800), "baremetal"),
    _Offering("denvr", "H100_sxm5x8", "H100_80GB_SXM_8x",
              "H100", 8, 208, 1800, 16000, "sxm5", 2320, None, (900, 1800), "baremetal"),
    _Offering("lambdalabs", "A6000", "gpu_1x_a6000",
              "A6000", 1, 14, 46, 512, "pcie", 80, None, (120, 300)),
    _Offering("lambdalabs", "A100", "gpu_1x_a100_sxm4",
              "A100", 1, 30, 200, 512, "sxm4", 129, None, (120, 300)),
    _Offering("lambdalabs", "A100_80Gx8", "gpu_8x_a100_80gb_sxm4",
              "A100_80G", 8, 240, 1800, 20000, "sxm4", 1432, None, (300, 900)),
    _Offering("lambdalabs", "H100", "gpu_1x_h100_pcie",
              "H100", 1, 26, 200, 1000, "pcie", 249, None, (180, 420)),
    _Offering("lambdalabs", "H100_sxm5x8", "gpu_8x_h100_sxm5",
              "H100", 8, 208, 1800, 24000, "sxm5", 2392, None, (300, 900)),
    _Offering("datacrunch", "H100_sxm5", "1H100.80S.30V",
              "H100", 1, 30, 120, 800, "sxm5", 279, 0.4, (120, 360)),
    _Offering("datacrunch", "A100_80G", "1A100.80S.22V",
              "A100_80G", 1, 22, 120, 500, "sxm4", 179, 0.45, (120, 360)),
    _Offering("datacrunch", "H200_sxm5x8", "8H200.141S.176V",
              "H200", 8, 176, 1480, 8000, "sxm5", 2984, 0.45, (300, 900)),
    _Offering("datacrunch", "RTX6000Ada", "1RTX6000ADA.10V",
              "RTX6000Ada", 1, 10, 60, 200, "pcie", 99, 0.5, (120, 300)),
    _Offering("datacrunch", "cpu_mini", "CPU.4V.16G",
              "CPU", 0, 4, 16, 50, "", 12, None, (60, 180)),
    _Offering("nebius", "H100_sxm5x8", "gpu-h100-sxm.8gpu-128vcpu-1600gb",
              "H100", 8, 128, 1600, 1280, "sxm5", 2360, 0.5, (600, 1200)),
    _Offering("nebius", "H200_sxm5x8", "gpu-h200-sxm.8gpu-128vcpu-1600gb",
              "H200", 8, 128, 1600, 1280, "sxm5", 2800, 0.5, (600, 1200)),
    _Offering("nebius", "L40S", "gpu-l40s-a.1gpu-8vcpu-32gb",
              "L40S", 1, 8, 32, 200, "pcie", 145, None, (180, 420)),
    _Offering("nebius", "cpu_medium", "cpu-d3.8vcpu-32gb",
              "CPU", 0, 8, 32, 100, "", 18, None, (60, 180)),
    _Offering("crusoe", "H100_sxm5x8", "h100-80gb-sxm-ib.8x",
              "H100", 8, 176, 1440, 1000, "sxm5", 2480, None, (600, 1500)),
    _Offering("crusoe", "A100_80Gx8", "a100-80gb-sxm-ib.8x",
              "A100_80G", 8, 176, 1440, 1000, "sxm4", 1560, None, (600, 1500)),
    _Offering("crusoe", "L40Sx4", "l40s-48gb.4x",
              "L40S", 4, 32, 588, 1000, "pcie", 580, None, (300, 600)),
    _Offering("crusoe", "MI300Xx8", "mi300x-192gb-ib.8x",
              "MI300X", 8, 160, 2048, 8000, "pcie", 2760, None, (900, 1800)),
    _Offering("vultr", "A100_80G", "vcg-a100-12c-120g-80vram",
              "A100_80G", 1, 12, 120, 1400, "pcie", 189, None, (120, 420)),
    _Offering("vultr", "L40S", "vcg-l40s-16c-180g-48vram",
              "L40S", 1, 16, 180, 1200, "pcie", 167, None, (120, 420)),
    _Offering("vultr", "H100_sxm5x8", "vbm-112c-2048gb-8-h100-gpu",
              "H100", 8, 112, 2048, 30720, "sxm5", 2392, None, (1200, 2400), "baremetal"),
    _Offering("vultr", "cpu_mini", "vc2-4c-8gb",
              "CPU", 0, 4, 8, 160, "", 6, None, (30, 120)),
    _Offering("massedcompute", "A6000", "gpu_1x_a6000",
              "A6000", 1, 6, 48, 256, "pcie", 62, None, (30, 120), "container"),
    _Offering("massedcompute", "A6000x4", "gpu_4x_a6000",
              "A6000", 4, 24, 192, 1024, "pcie", 248, None, (30, 120), "container"),
    _Offering("massedcompute", "RTX6000Ada", "gpu_1x_rtx6000ada",
              "RTX6000Ada", 1, 10, 64, 256, "pcie", 95, None, (30, 120), "container"),
    _Offering("paperspace", "A6000", "A6000",
              "A6000", 1, 8, 45, 100, "pcie", 89, None, (120, 360)),
    _Offering("paperspace", "A100_80G", "A100-80G",
              "A100_80G", 1, 12, 90, 100, "pcie", 318, None, (120, 360)),
    _Offering("paperspace", "H100", "H100",
              "H100", 1, 20, 250, 100, "pcie", 299, None, (180, 420)),
    _Offering("paperspace", "cpu_mini", "C5",
              "CPU", 0, 4, 8, 50, "", 8, None, (60, 180)),
    _Offering("scaleway", "H100", "H100-1-80G",
              "H100", 1, 24, 240, 3000, "pcie", 273, None, (180, 420)),
    _Offering("scaleway", "H100_sxm5x8", "H100-SXM-8-80G",
              "H100", 8, 128, 960, 12800, "sxm5", 2540, None, (600, 1200)),
    _Offering("scaleway", "L40S", "L40S-1-48G",
              "L40S", 1, 8, 96, 1600, "pcie", 154, None, (180, 420)),
    _Offering("scaleway", "L40Sx8", "L40S-8-48G",
              "L40S", 8, 64, 768, 12800, "pcie", 1232, None, (300, 600)),
    _Offering("scaleway", "cpu_mini", "PRO2-XS",
              "CPU", 0, 4, 16, 50, "", 11, None, (60, 180)),
)

# Multi-GPU nodes are what clusters are made of.
_CLUSTER_OFFERINGS = tuple(o for o in _OFFERINGS if o.num_gpus >= 4)
# The one offering listed as launchable only on the spot market (see data/README.md).
_SPOT_ONLY = ("datacrunch", "H200_sxm5x8")


def _offering(cloud: str, shade_type: str) -> _Offering:
    return next(o for o in _OFFERINGS if (o.cloud, o.shade_type) == (cloud, shade_type))


def _display_name(cloud: str, region: str) -> str:
    return dict(_REGIONS[cloud])[region]


# ---------------------------------------------------------------------------------------------
# Formatting helpers.
# ---------------------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _iso(t0: datetime, ms: int, frac: bool) -> str:
    moment = t0 + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if frac else f"{text}Z"


def _maybe_iso(t0: datetime, ms: int | None, frac: bool) -> str | None:
    return None if ms is None else _iso(t0, ms, frac)


def _price(cents: int) -> str:
    """Cents as a decimal dollar string with two decimals, e.g. 120 -> "1.20"."""
    return f"{cents // 100}.{cents % 100:02d}"


def _cost(cents: int) -> str:
    """Instance cost_estimate: dollars, no symbol, trailing zero dropped ("103.4", "0.0")."""
    text = _price(cents)
    return text[:-1] if text.endswith("0") else text


def _cluster_cost(cents: int) -> str:
    """Cluster cost_estimate: "$"-prefixed dollars with thousands separators ("$1,234.50")."""
    return f"${cents // 100:,}.{cents % 100:02d}"


def _accrued_cents(rate_cents: int, ms: int) -> int:
    """rate (cents/hour) over ms milliseconds, rounded half up to whole cents."""
    return (2 * rate_cents * ms + _HOUR) // (2 * _HOUR)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ip(rng: random.Random) -> str:
    """A public-looking address from the documentation ranges (RFC 5737)."""
    net = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{net}.{rng.randint(1, 254)}"


def _cloud_assigned_id(rng: random.Random, cloud: str) -> str:
    if cloud == "hyperstack":
        return str(rng.randint(100_000, 999_999))
    if cloud == "lambdalabs":
        return f"{rng.getrandbits(128):032x}"
    if cloud == "nebius":
        return f"computeinstance-e00{rng.getrandbits(64):016x}"
    if cloud == "massedcompute":
        return f"mc-{rng.getrandbits(32):08x}"
    if cloud == "paperspace":
        return f"ps{rng.getrandbits(32):08x}"
    return _uuid(rng)


# ---------------------------------------------------------------------------------------------
# Launch configurations. Every secret value carries "sa-fake-secret-<kind>-<serial>".
# ---------------------------------------------------------------------------------------------


def _secret(kind: str, serial: int) -> str:
    return f"{_SECRET}{kind}-{serial:04d}"


def _docker_vllm(serial: int) -> dict[str, Any]:
    return {
        "image": "vllm/vllm-openai:latest",
        "args": f"--model meta-llama/Llama-3.1-8B-Instruct --api-key {_secret('args', serial)}",
        "shared_memory_in_gb": 16,
        "envs": [{"name": "HUGGING_FACE_HUB_TOKEN", "value": _secret("hf", serial)}],
        "port_mappings": [{"host_port": 80, "container_port": 8000}],
        "volume_mounts": [
            {"host_path": "~/.cache/huggingface", "container_path": "/root/.cache/huggingface"}
        ],
    }


def _docker_trainer(serial: int) -> dict[str, Any]:
    return {
        "image": "ghcr.io/acme-ml/trainer:2026.11",
        "args": f"--run-name exp-{serial:04d} --resume-token {_secret('args', serial)}",
        "shared_memory_in_gb": 64,
        "envs": [
            {"name": "WANDB_API_KEY", "value": _secret("wandb", serial)},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": _secret("aws", serial)},
        ],
        "volume_mounts": [{"host_path": "/mnt/data", "container_path": "/data"}],
        "registry_credentials": {
            "username": _secret("reguser", serial),
            "password": _secret("regpass", serial),
        },
    }


def _docker_jupyter(serial: int) -> dict[str, Any]:
    return {
        "image": "quay.io/jupyter/pytorch-notebook:cuda12-latest",
        "args": f"start-notebook.py --IdentityProvider.token={_secret('args', serial)}",
        "envs": [{"name": "JUPYTER_TOKEN", "value": _secret("jupyter", serial)}],
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


def _launch_configuration(kind: str, serial: int) -> dict[str, Any]:
    if kind in _DOCKER:
        return {"type": "docker", "docker_configuration": _DOCKER[kind](serial)}
    script = _SCRIPTS[kind].format(secret=_secret(f"script-{kind}", serial))
    encoded = base64.b64encode(script.encode()).decode()
    return {"type": "script", "script_configuration": {"base64_script": encoded}}


# ---------------------------------------------------------------------------------------------
# Lifecycle plans: when each status starts. Rendering a poll only reads these moments.
# ---------------------------------------------------------------------------------------------

_PLAN_ORDER = ("deleted", "deleting", "error", "active", "pending", "pending_provider")


@dataclass
class _Plan:
    created: int
    pending_provider: int
    pending: int | None
    active: int | None
    error: int | None = None
    deleting: int | None = None
    deleted: int | None = None

    def status(self, t: int) -> str:
        for name in _PLAN_ORDER:
            moment = getattr(self, name)
            if moment is not None and moment <= t:
                return name
        return "creating"

    def moments(self) -> list[int]:
        later = (getattr(self, name) for name in _PLAN_ORDER)
        return [self.created, *(m for m in later if m is not None)]

    def changed_at(self, t: int) -> int:
        return max(m for m in self.moments() if m <= t)

    def at(self, name: str, t: int) -> int | None:
        """When `name` started, if it had by time t."""
        moment: int | None = getattr(self, name)
        return moment if moment is not None and moment <= t else None

    def reached(self, name: str, t: int) -> bool:
        return self.at(name, t) is not None

    def visible(self, t: int, every: int) -> bool:
        """Listed from creation; shown once as `deleted`, at the first poll after deletion."""
        return self.created <= t and (self.deleted is None or t < self.deleted + every)


@dataclass
class _Node:
    """An instance: standalone (listed by /instances) or a cluster member."""

    serial: int
    id: str
    offering: _Offering
    region: str
    name: str
    plan: _Plan
    cloud_assigned_id: str
    ip: str
    ssh_port: int
    os: str
    frac: bool
    shade_cloud: bool = True
    legacy: bool = False  # older shape: no rental_terms, boot_time, nvlink; active_at absent
    rental: str = "on_demand"  # on_demand | on_demand_priced | spot | commitment
    launch: str | None = None
    tags: tuple[str, ...] | None = None
    error_detail: str | None = None
    end_detail: str | None = None
    gpu_type_override: str | None = None
    omit: tuple[str, ...] = ()  # fields the API left out of this instance's responses

    @property
    def rate_cents(self) -> int:
        """What the instance accrues per hour: the spot rate for spot rentals."""
        spot = self.offering.spot_cents
        return spot if self.rental == "spot" and spot is not None else self.offering.price


@dataclass
class _Cluster:
    id: str
    name: str
    cloud: str
    region: str
    plan: _Plan
    members: list[_Node]
    frac: bool
    cloud_cluster_id: str | None
    error_detail: str | None = None
    price_override: int | None = None


# ---------------------------------------------------------------------------------------------
# Rendering one poll.
# ---------------------------------------------------------------------------------------------


def _billed_cents(node: _Node, t: int) -> int:
    """Cost so far: from active_at until now or until the delete request (billing stops)."""
    plan = node.plan
    active = plan.at("active", t)
    if not node.shade_cloud or active is None:
        return 0
    end = t if plan.deleting is None else min(t, plan.deleting)
    return _accrued_cents(node.rate_cents, end - active)


def _configuration(node: _Node) -> dict[str, Any]:
    off = node.offering
    config: dict[str, Any] = {
        "memory_in_gb": off.memory,
        "storage_in_gb": off.storage,
        "vcpus": off.vcpus,
        "num_gpus": off.num_gpus,
        "gpu_type": node.gpu_type_override or off.gpu_type,
        "interconnect": off.interconnect,
        "vram_per_gpu_in_gb": off.vram,
        "gpu_manufacturer": off.manufacturer,
        "os": node.os,
    }
    if not node.legacy:
        config["nvlink"] = off.nvlink
    return config


def _rental_terms(node: _Node, t0: datetime) -> dict[str, Any]:
    if node.rental == "spot":
        return {"rental_type": "spot", "hourly_price": _price(node.offering.spot_cents or 0),
                "ending_at": None}
    if node.rental == "commitment":
        return {"rental_type": "commitment",
                "ending_at": _iso(t0, node.plan.created + 90 * _DAY, node.frac)}
    if node.rental == "on_demand_priced":
        return {"rental_type": "on_demand", "hourly_price": _price(node.offering.price),
                "ending_at": None}
    return {"rental_type": "on_demand"}


def _port_mappings(node: _Node) -> list[dict[str, int]]:
    if node.offering.deployment == "container":
        return [
            {"internal_port": 22, "external_port": node.ssh_port},
            {"internal_port": 8888, "external_port": node.ssh_port + 1},
        ]
    if node.launch == "vllm":
        return [{"internal_port": 8000, "external_port": 80}]
    return []


_NODE_DETAILS = {"pending_provider": "waiting for provider", "pending": "booting"}


def _node_details(node: _Node, status: str) -> str | None:
    if status == "pending" and node.launch in _DOCKER:
        return "downloading"
    if status == "error":
        return node.error_detail
    if status in ("deleting", "deleted"):
        return node.end_detail
    return _NODE_DETAILS.get(status)


def _render_node(node: _Node, t: int, t0: datetime) -> dict[str, Any]:
    plan, off = node.plan, node.offering
    status = plan.status(t)
    reachable = plan.reached("pending", t)
    item: dict[str, Any] = {
        "id": node.id,
        "cloud": off.cloud,
        "region": node.region,
        "shade_instance_type": off.shade_type,
        "cloud_instance_type": off.cloud_type,
        "cloud_assigned_id": node.cloud_assigned_id,
        "shade_cloud": node.shade_cloud,
        "name": node.name,
        "configuration": _configuration(node),
        "ip": node.ip if reachable else None,
        "ssh_user": "shadeform" if node.shade_cloud else "ubuntu",
        "ssh_port": node.ssh_port if reachable else None,
        "status": status,
        "cost_estimate": _cost(_billed_cents(node, t)),
        "created_at": _iso(t0, plan.created, node.frac),
        "deleted_at": _maybe_iso(t0, plan.at("deleted", t), node.frac),
        "status_details": _node_details(node, status),
        "hourly_price": off.price,
    }
    if not node.legacy:
        item["rental_terms"] = _rental_terms(node, t0)
    if node.launch is not None:
        item["launch_configuration"] = _launch_configuration(node.launch, node.serial)
    if node.tags is not None:
        item["tags"] = list(node.tags)
    if not node.legacy:
        item["port_mappings"] = _port_mappings(node)
    active_at = _maybe_iso(t0, plan.at("active", t), node.frac)
    if active_at is not None or not node.legacy:
        item["active_at"] = active_at
    if not node.legacy:
        item["boot_time"] = {"min_boot_in_sec": off.boot[0], "max_boot_in_sec": off.boot[1]}
    for field in node.omit:
        item.pop(field, None)
    return item


_CLUSTER_DETAILS = {
    "creating": "Cluster is being created",
    "pending_provider": "Waiting for provider capacity",
    "pending": "Cluster is provisioning",
    "deleting": "Cluster is being deleted",
}


def _render_cluster(cluster: _Cluster, t: int, t0: datetime) -> dict[str, Any]:
    plan = cluster.plan
    status = plan.status(t)
    active_at = _maybe_iso(t0, plan.at("active", t), cluster.frac)
    cost = sum(_billed_cents(m, t) for m in cluster.members)
    return {
        "id": cluster.id,
        "cloud": cluster.cloud,
        "name": cluster.name,
        "region_info": {
            "region": cluster.region,
            "display_name": _display_name(cluster.cloud, cluster.region),
        },
        "status": status,
        "status_details": (
            cluster.error_detail if status == "error" else _CLUSTER_DETAILS.get(status)
        ),
        "created_at": _iso(t0, plan.created, cluster.frac),
        "updated_at": _iso(t0, plan.changed_at(t), cluster.frac),
        "instances": [_render_node(m, t, t0) for m in cluster.members],
        "hourly_price": cluster.price_override or sum(m.offering.price for m in cluster.members),
        "cloud_cluster_id": cluster.cloud_cluster_id if plan.reached("pending", t) else None,
        "cost_estimate": None if active_at is None else _cluster_cost(cost),
        "active_at": active_at,
    }


# ---------------------------------------------------------------------------------------------
# The scenario: a random fleet plus scripted entities that guarantee coverage and anomalies.
# ---------------------------------------------------------------------------------------------

_GPU_NAMES = ("llm-finetune", "vllm-serve", "jupyter", "sd-train", "eval-runner", "rl-sweep",
              "embeddings", "whisper-batch", "notebook")
_CPU_NAMES = ("bastion", "ci-runner", "data-prep", "monitoring")
_CLUSTER_NAMES = ("llama-pretrain", "moe-sft", "diffusion-train", "rlhf", "eval-farm",
                  "inference-pool", "vision-ft", "speech-asr")
_TAGS = ("team-nlp", "team-vision", "team-speech", "prod", "dev", "research", "owner-alice",
         "owner-bob", "cost-center-4217", "experiment-17")
_CLUSTER_SIZES = (1, 2, 2, 3, 4, 4, 4, 6, 8, 8, 8, 12, 16)
_NO_CLUSTER_ID = ("massedcompute", "paperspace", "vultr")
_OUT_OF_CAPACITY = "out of capacity"
_BOOT_FAILED = "boot failed: instance did not become reachable"


# Standalone instances are mostly small; 8-GPU nodes are three times rarer.
_STANDALONE_WEIGHTS = tuple(1 if o.num_gpus >= 8 else 3 for o in _OFFERINGS)


class _FleetBuilder:
    """Plans every instance and cluster of the scenario; rendering happens later, per poll."""

    def __init__(self, rng: random.Random, every: int, polls: int) -> None:
        self.rng = rng
        self.every = every
        self.last = every * (polls - 1)
        self.serial = 0
        self.nodes: list[_Node] = []
        self.clusters: list[_Cluster] = []

    def build(self) -> tuple[list[_Node], list[_Cluster]]:
        self._initial_fleet()
        self._arrivals()
        self._scripted_instances()
        self._scripted_clusters()
        self._scripted_unknowns()
        self.nodes.sort(key=lambda n: (n.plan.created, n.id))
        self.clusters.sort(key=lambda c: (c.plan.created, c.id))
        return self.nodes, self.clusters

    # -- lifecycle -------------------------------------------------------------------------

    def _lifecycle(
        self, created: int, boot: tuple[int, int], *, late: bool = False,
        wait_long: bool = False, fail: str | None = None,
    ) -> _Plan:
        """creating -> pending_provider -> pending -> active, or -> error when `fail` is given."""
        rng = self.rng
        pending_provider = created + rng.randint(2 * _SECOND, 20 * _SECOND)
        if wait_long:
            waiting = rng.randint(_HOUR, 6 * _HOUR)
        else:
            waiting = rng.randint(5 * _SECOND, max(10 * _SECOND, boot[0] * _SECOND // 3))
        pending = pending_provider + waiting
        if fail == _OUT_OF_CAPACITY:
            return _Plan(created, pending_provider, None, None, error=pending)
        provisioning = rng.randint(boot[0] * _SECOND, boot[1] * _SECOND)
        if late:
            provisioning = int(provisioning * rng.uniform(1.3, 3.0))
        active = max(pending + 10 * _SECOND, created + provisioning)
        if fail is not None:
            return _Plan(created, pending_provider, pending, None, error=active)
        return _Plan(created, pending_provider, pending, active)

    def _teardown(self, slow: bool) -> int:
        if slow:
            return self.rng.randint(_HOUR, 4 * _HOUR)
        return self.rng.randint(30 * _SECOND, 10 * _MINUTE)

    @staticmethod
    def _delete_after(plan: _Plan, at: int) -> int:
        """A delete request at `at`, but never before the last transition has happened."""
        return max(at, max(plan.moments()) + 5 * _MINUTE)

    def _end(self, plan: _Plan, at: int, *, slow: bool = False) -> None:
        plan.deleting = self._delete_after(plan, at)
        plan.deleted = plan.deleting + self._teardown(slow)

    # -- instances -------------------------------------------------------------------------

    def _next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def _node(self, off: _Offering, region: str, plan: _Plan, **attrs: Any) -> _Node:
        rng = self.rng
        serial = self._next_serial()
        pool = _CPU_NAMES if off.num_gpus == 0 else _GPU_NAMES
        node = _Node(
            serial=serial,
            id=_uuid(rng),
            offering=off,
            region=region,
            name=f"{rng.choice(pool)}-{serial:03d}",
            plan=plan,
            cloud_assigned_id=_cloud_assigned_id(rng, off.cloud),
            ip=_ip(rng),
            ssh_port=rng.randint(20_000, 40_000) if off.deployment == "container" else 22,
            os=rng.choice(off.os_options),
            frac=rng.random() < 0.5,
        )
        for key, value in attrs.items():
            setattr(node, key, value)
        return node

    def _random_tags(self) -> tuple[str, ...] | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.3:
            return ()
        return tuple(rng.sample(_TAGS, 1 if roll < 0.65 else rng.randint(2, 3)))

    def _random_launch(self, off: _Offering) -> str | None:
        if off.num_gpus == 0:
            return self.rng.choice((None, None, "setup"))
        return self.rng.choice((None, None, None, "vllm", "trainer", "jupyter", "cuda", "serve",
                                "setup"))

    def _random_rental(self, off: _Offering, shade_cloud: bool) -> str:
        rng = self.rng
        if off.spot_cents is not None and shade_cloud and rng.random() < 0.45:
            return "spot"
        if off.num_gpus > 0 and rng.random() < 0.06:
            return "commitment"
        return rng.choice(("on_demand", "on_demand_priced"))

    def _standalone(self, created: int, lifetime: int | None) -> _Node:
        """A random standalone instance created at `created`, deleted `lifetime` after (if any)."""
        rng = self.rng
        off = rng.choices(_OFFERINGS, weights=_STANDALONE_WEIGHTS)[0]
        region = rng.choice(_REGIONS[off.cloud])[0]
        roll = rng.random()
        fail = _OUT_OF_CAPACITY if roll < 0.06 else _BOOT_FAILED if roll < 0.08 else None
        plan = self._lifecycle(created, off.boot, late=rng.random() < 0.15,
                               wait_long=rng.random() < 0.06, fail=fail)
        shade_cloud = rng.random() < 0.88
        legacy = rng.random() < 0.15  # no rental_terms: on-demand, as before they existed
        node = self._node(
            off, region, plan,
            shade_cloud=shade_cloud,
            legacy=legacy,
            rental="on_demand" if legacy else self._random_rental(off, shade_cloud),
            launch=self._random_launch(off),
            tags=self._random_tags(),
            error_detail=fail,
        )
        if fail is not None:
            lifetime = rng.randint(_HOUR, 20 * _HOUR) if rng.random() < 0.7 else None
        elif node.rental == "spot" and lifetime is not None and rng.random() < 0.4:
            node.end_detail = "preempted"
        if lifetime is not None:
            self._end(plan, created + lifetime, slow=rng.random() < 0.15)
        self.nodes.append(node)
        return node

    def _arrival_lifetime(self) -> int | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            return rng.randint(2 * _HOUR, 12 * _HOUR)
        if roll < 0.85:
            return rng.randint(12 * _HOUR, 3 * _DAY)
        return None

    # -- clusters --------------------------------------------------------------------------

    def _member_plan(self, base: _Plan, failed: bool) -> _Plan:
        """A member follows its cluster's plan, a few seconds apart."""
        jitter = self.rng.randint
        created = base.created + jitter(0, 1_500)
        pending_provider = base.pending_provider + jitter(0, 20 * _SECOND)
        if base.error is not None:
            error = base.error + jitter(0, 5 * _SECOND) if failed else None
            return _Plan(created, pending_provider, None, None, error=error)
        assert base.pending is not None and base.active is not None
        pending = base.pending + jitter(0, 60 * _SECOND)
        active = max(pending + 5 * _SECOND, base.active + jitter(-2 * _MINUTE, 0))
        return _Plan(created, pending_provider, pending, active)

    def _cluster(
        self, off: _Offering, region: str, size: int, base: _Plan, *, name: str | None = None,
        delete_at: int | None = None, slow_teardown: bool = False, **attrs: Any,
    ) -> _Cluster:
        """A cluster of `size` nodes following `base`; its own plan aggregates its members'."""
        rng = self.rng
        failed = set(rng.sample(range(size), rng.randint(1, size))) if base.error else set()
        legacy = rng.random() < 0.15
        rental = "commitment" if rng.random() < 0.1 else "on_demand"
        launch = "bootstrap" if rng.random() < 0.3 else None
        name = name or f"{rng.choice(_CLUSTER_NAMES)}-{rng.randint(1, 99):02d}"
        frac = rng.random() < 0.5
        members = [
            self._node(off, region, self._member_plan(base, i in failed), name=f"{name}-node-{i}",
                       frac=frac, legacy=legacy, rental=rental, launch=launch,
                       error_detail=_OUT_OF_CAPACITY if i in failed else None)
            for i in range(size)
        ]
        cluster_id = None if off.cloud in _NO_CLUSTER_ID else f"cluster-{rng.getrandbits(24):06x}"
        cluster = _Cluster(_uuid(rng), name, off.cloud, region, base, members, frac, cluster_id)
        for key, value in attrs.items():
            setattr(cluster, key, value)
        if base.error is not None:
            cluster.error_detail = f"{_OUT_OF_CAPACITY}: {len(failed)} of {size} instances failed"
        self._aggregate(cluster, delete_at, slow_teardown)
        self.clusters.append(cluster)
        return cluster

    def _aggregate(self, cluster: _Cluster, delete_at: int | None, slow: bool) -> None:
        """Derive the cluster's plan from its members' (and delete them all, if asked)."""
        plans = [m.plan for m in cluster.members]
        base = cluster.plan
        errors = [p.error for p in plans if p.error is not None]
        pendings = [p.pending for p in plans if p.pending is not None]
        actives = [p.active for p in plans if p.active is not None]
        cluster.plan = _Plan(
            created=base.created,
            pending_provider=min(p.pending_provider for p in plans),
            pending=min(pendings) if pendings else None,
            active=None if errors else max(actives),
            error=min(errors) if errors else None,
        )
        if delete_at is None:
            return
        deleting = self._delete_after(cluster.plan, delete_at)
        teardown = self._teardown(slow)
        last_deleted = deleting
        for plan in plans:
            plan.deleting = deleting + self.rng.randint(200, 3 * _SECOND)
            plan.deleted = plan.deleting + self.rng.randint(teardown // 2, teardown)
            last_deleted = max(last_deleted, plan.deleted)
        cluster.plan.deleting = deleting
        cluster.plan.deleted = last_deleted + self.rng.randint(1, 5) * _SECOND

    def _random_cluster(self, created: int, lifetime: int | None) -> _Cluster:
        rng = self.rng
        off = rng.choice(_CLUSTER_OFFERINGS)
        region = rng.choice(_REGIONS[off.cloud])[0]
        fail = _OUT_OF_CAPACITY if rng.random() < 0.1 else None
        base = self._lifecycle(created, off.boot, late=rng.random() < 0.15,
                               wait_long=rng.random() < 0.1, fail=fail)
        if fail is not None and rng.random() < 0.8:
            lifetime = rng.randint(_HOUR, 12 * _HOUR)
        delete_at = None if lifetime is None else created + lifetime
        return self._cluster(off, region, rng.choice(_CLUSTER_SIZES), base, delete_at=delete_at,
                             slow_teardown=rng.random() < 0.2)

    # -- the scenario ----------------------------------------------------------------------

    def _initial_fleet(self) -> None:
        """What already runs at the first poll; about half of it is deleted during the run."""
        rng = self.rng
        for _ in range(21):
            created = -rng.randint(_HOUR, 12 * _DAY)
            lifetime = rng.randint(0, self.last) - created if rng.random() < 0.5 else None
            self._standalone(created, lifetime)
        for _ in range(12):
            created = -rng.randint(6 * _HOUR, 10 * _DAY)
            lifetime = rng.randint(0, self.last) - created if rng.random() < 0.45 else None
            self._random_cluster(created, lifetime)

    def _arrivals(self) -> None:
        """New launches between polls, some just before a poll so early statuses are seen."""
        rng = self.rng
        for start in range(0, self.last, self.every):
            for _ in range(rng.randint(1, 2)):
                self._standalone(start + rng.randint(0, self.every), self._arrival_lifetime())
            if rng.random() < 0.3:
                created = start + self.every - rng.randint(10 * _SECOND, 15 * _MINUTE)
                self._standalone(created, self._arrival_lifetime())
            if rng.random() < 0.5:
                lifetime = rng.randint(6 * _HOUR, 3 * _DAY) if rng.random() < 0.6 else None
                self._random_cluster(start + rng.randint(0, self.every), lifetime)

    def _at_poll(self, fraction: float) -> int:
        """The poll time closest to `fraction` of the run."""
        return round(fraction * self.last / self.every) * self.every

    def _scripted_instances(self) -> None:
        """Statuses every sample must show, and the deliberate anomalies (see data/README.md)."""
        rng, last = self.rng, self.last
        a6000 = _offering("hyperstack", "A6000")
        # Still creating / waiting for the provider / booting at the last poll.
        creating = _Plan(last - 15 * _SECOND, last + 10 * _SECOND, last + _MINUTE, last + _HOUR)
        self.nodes.append(self._node(a6000, "canada-1", creating, tags=("dev",)))
        h100 = _offering("lambdalabs", "H100_sxm5x8")
        waiting = self._lifecycle(last - 40 * _MINUTE, h100.boot, wait_long=True)
        self.nodes.append(self._node(h100, "us-east-1", waiting, legacy=True,
                                     tags=("team-nlp", "prod")))
        l40s = _offering("nebius", "L40S")
        booting = _Plan(last - 3 * _MINUTE, last - 170 * _SECOND, last - 2 * _MINUTE, last + _HOUR)
        self.nodes.append(self._node(l40s, "eu-north1", booting, launch="vllm"))
        # Out of capacity, seen as `error` for a few polls, then deleted.
        h200 = _offering("nebius", "H200_sxm5x8")
        failed = self._lifecycle(self._at_poll(0.5) - 3 * _HOUR, h200.boot, wait_long=True,
                                 fail=_OUT_OF_CAPACITY)
        self._end(failed, self._at_poll(0.7) + _HOUR)
        self.nodes.append(self._node(h200, "us-central1", failed, error_detail=_OUT_OF_CAPACITY,
                                     tags=("research",)))
        # A spot instance reclaimed by the provider: `deleting` then `deleted`, both "preempted".
        spot = _offering("datacrunch", "H100_sxm5")
        reclaimed = self._lifecycle(-30 * _HOUR, spot.boot)
        preempt_poll = self._at_poll(0.3)
        reclaimed.deleting = preempt_poll - 20 * _MINUTE
        reclaimed.deleted = preempt_poll + 40 * _MINUTE
        self.nodes.append(self._node(spot, "helsinki-finland-1", reclaimed, rental="spot",
                                     end_detail="preempted", tags=("team-vision", "spot-ok")))
        # Deleted slowly: `deleting` at the last poll.
        cpu = _offering("vultr", "cpu_mini")
        slow = self._lifecycle(-2 * _DAY, cpu.boot)
        slow.deleting, slow.deleted = last - 10 * _MINUTE, last + 2 * _HOUR
        self.nodes.append(self._node(cpu, "ewr", slow))
        # A late boot: active well after max_boot_in_sec.
        late = self._lifecycle(self._at_poll(0.25) - 5 * _HOUR, a6000.boot, wait_long=True)
        self.nodes.append(self._node(a6000, "norway-1", late, tags=("team-nlp",)))
        # Anomalies: type/config mismatch like the seed, spreadsheet-formula name and tag, unicode.
        long_lived = [self._lifecycle(-rng.randint(_DAY, 9 * _DAY), (120, 300)) for _ in range(4)]
        self.nodes += [
            self._node(a6000, "canada-1", long_lived[0], gpu_type_override="A100",
                       launch="vllm", tags=("tag1",)),
            self._node(_offering("paperspace", "cpu_mini"), "ny2", long_lived[1],
                       name='=HYPERLINK("http://x")', tags=("dev",)),
            self._node(_offering("lambdalabs", "A6000"), "us-west-1", long_lived[2],
                       tags=("team-nlp", "@SUM(1+1)")),
            self._node(_offering("scaleway", "L40S"), "fr-par-2", long_lived[3],
                       name="équipe-vision-01", tags=("team-vision", "prod", "research")),
        ]

    def _scripted_unknowns(self) -> None:
        """Instances whose responses leave out what billing needs (see data/README.md):
        active without active_at, no cost_estimate, no configuration (the catalog has it)."""
        last = self.last
        a100 = _offering("denvr", "A100")
        for omit, tags in ((("active_at",), ("team-speech",)), (("cost_estimate",), ("dev",)),
                           (("configuration",), ("research",))):
            plan = self._lifecycle(self._at_poll(0.4), a100.boot)
            if omit == ("configuration",):
                plan = self._lifecycle(last - 50 * _MINUTE, a100.boot)
            self.nodes.append(self._node(a100, "houston-usa-1", plan, omit=omit, tags=tags))

    def _scripted_clusters(self) -> None:
        """Cluster sizes 1 and 16, every cluster status, and the two deliberate anomalies."""
        rng, last = self.rng, self.last

        def plan(created: int, off: _Offering, **kwargs: Any) -> _Plan:
            return self._lifecycle(created, off.boot, **kwargs)

        crusoe = _offering("crusoe", "H100_sxm5x8")
        self._cluster(crusoe, "us-east1-a", 16, plan(-6 * _DAY, crusoe), name="llama-pretrain-70b")
        scaleway = _offering("scaleway", "L40Sx8")
        self._cluster(scaleway, "fr-par-2", 1, plan(-2 * _DAY, scaleway),
                      delete_at=self._at_poll(0.6) - 3 * _HOUR)
        lambda_a100 = _offering("lambdalabs", "A100_80Gx8")
        # Anomaly: the cluster price is the per-node price, not the sum over its 4 nodes.
        self._cluster(lambda_a100, "us-west-1", 4, plan(-3 * _DAY, lambda_a100),
                      price_override=lambda_a100.price, name="+cluster-finetune")
        # Anomaly (like the seed): one member runs in another cloud and region than its cluster.
        denvr = _offering("denvr", "H100_sxm5x8")
        mixed = self._cluster(denvr, "houston-usa-1", 2, plan(-4 * _DAY, denvr))
        stray = mixed.members[1]
        stray.offering, stray.region = _offering("hyperstack", "H100_sxm5x8"), "canada-1"
        stray.cloud_assigned_id = _cloud_assigned_id(rng, "hyperstack")
        # Early statuses at the last poll, a failed cluster and a slow teardown.
        h200 = _offering("datacrunch", "H200_sxm5x8")
        just_created = _Plan(last - 10 * _SECOND, last + 8 * _SECOND, last + _MINUTE, last + _HOUR)
        self._cluster(h200, "helsinki-finland-2", 2, just_created)
        vultr = _offering("vultr", "H100_sxm5x8")
        self._cluster(vultr, "lax", 3, plan(last - 12 * _MINUTE, vultr))
        nebius = _offering("nebius", "H100_sxm5x8")
        self._cluster(nebius, "eu-north1", 8,
                      plan(self._at_poll(0.4) - 2 * _HOUR, nebius, wait_long=True,
                           fail=_OUT_OF_CAPACITY),
                      delete_at=self._at_poll(0.55) + _HOUR)
        l40s = _offering("crusoe", "L40Sx4")
        self._cluster(l40s, "us-northcentral1-a", 6, plan(-_DAY, l40s),
                      delete_at=self._at_poll(0.8) - 30 * _MINUTE, slow_teardown=True)


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


def fleet_history(
    seed: int = 7,
    start: str = "2026-11-16T00:00:00Z",
    polls: int = 17,
    every_hours: float = 6.0,
) -> list[dict[str, Any]]:
    """Simulate a fleet; one {"observed_at", "clusters", "instances"} dict per poll.

    "clusters" is a GET /clusters response, "instances" a GET /instances response holding only
    standalone instances. Unlike the real API, a deleted resource is shown once more, with
    status "deleted", at the first poll after its deletion, then disappears.
    """
    t0 = _parse_time(start)
    every = round(every_hours * _HOUR)
    nodes, clusters = _FleetBuilder(random.Random(seed), every, polls).build()
    history = []
    for t in range(0, every * polls, every):
        history.append({
            "observed_at": _iso(t0, t, frac=False),
            "clusters": {"clusters": [_render_cluster(c, t, t0) for c in clusters
                                      if c.plan.visible(t, every)]},
            "instances": {"instances": [_render_node(n, t, t0) for n in nodes
                                        if n.plan.visible(t, every)]},
        })
    return history


def _availability(rng: random.Random, off: _Offering) -> list[dict[str, Any]]:
    spot_only = (off.cloud, off.shade_type) == _SPOT_ONLY
    entries: list[dict[str, Any]] = []
    for region, display_name in _REGIONS[off.cloud]:
        entries.append({"region": region, "available": not spot_only and rng.random() < 0.6,
                        "display_name": display_name, "rental_type": "on_demand"})
    if off.spot_cents is not None:
        for region, display_name in _REGIONS[off.cloud]:
            entries.append({"region": region, "available": spot_only or rng.random() < 0.7,
                            "display_name": display_name, "rental_type": "spot",
                            "hourly_price": _price(off.spot_cents)})
    return entries


def _instance_type(rng: random.Random, off: _Offering) -> dict[str, Any]:
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
        "availability": _availability(rng, off),
        "boot_time": {"min_boot_in_sec": off.boot[0], "max_boot_in_sec": off.boot[1]},
    }


def volume_history(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                          dict[str, Any]]:
    """Volumes beside a ``fleet_history``: a GET /volumes response per poll, and the GET
    /volumes/types catalogue. Derived from the history alone (no randomness), so the fleet's
    files stay as they are: two volumes mounted by the two oldest standalone instances still
    running at the last poll, one never mounted (an orphan, from the fourth poll on), and one
    deleted midway (listed from the second poll to the ninth)."""
    last = history[-1]["instances"]["instances"]
    running = sorted((i for i in last if i["status"] == "active"),
                     key=lambda i: (i["created_at"], i["id"]))[:2]
    polls = [_parse_time(p["observed_at"]) for p in history]
    plans = [  # (id, name, size, cloud, region, mounted_by, first poll, last poll)
        *[(f"5a1e0000-0000-4000-8000-00000000000{k}", f"data-{i['name']}", 1000 * (k + 1),
           i["cloud"], i["region"], i["id"], 0, len(history) - 1)
          for k, i in enumerate(running)],
        ("5a1e0000-0000-4000-8000-000000000002", "scratch-orphan", 2000, running[0]["cloud"],
         running[0]["region"], None, 3, len(history) - 1),
        ("5a1e0000-0000-4000-8000-000000000003", "old-checkpoints", 500, running[-1]["cloud"],
         running[-1]["region"], None, 1, 8),
    ]
    price = {(cloud, region): ("0.00012" if k % 2 else "0.0001")
             for k, (cloud, region) in enumerate(dict.fromkeys((p[3], p[4]) for p in plans))}
    responses = []
    for n, at in enumerate(polls):
        listed = []
        for vid, name, size, cloud, region, mounter, first, end in plans:
            if not first <= n <= end:
                continue
            hours = (at - polls[first]).total_seconds() / 3600
            listed.append({
                "id": vid, "cloud": cloud, "cloud_assigned_id": f"vol-{vid[-6:]}",
                "region": region, "name": name, "fixed_size": True, "size_in_gb": size,
                "cost_estimate": f"{size * float(price[(cloud, region)]) * hours:.2f}",
                "supports_multi_mount": False, "mounted_by": mounter,
            })
        responses.append({"volumes": listed})
    types = {"volume_types": [
        {"cloud": cloud, "region": region, "supports_multi_mount": False, "fixed_size": True,
         "price_per_gb_per_hour": value} for (cloud, region), value in price.items()]}
    return responses, types


def instance_types(seed: int = 7) -> dict[str, Any]:
    """A GET /instances/types response: fixed catalogue and prices, seeded availability."""
    rng = random.Random(seed)
    return {"instance_types": [_instance_type(rng, off) for off in _OFFERINGS]}


# ---------------------------------------------------------------------------------------------
# Big payloads for the benchmark: templates copied and varied cheaply.
# ---------------------------------------------------------------------------------------------

_BIG_OBSERVED = datetime(2026, 11, 20, tzinfo=UTC)
_BIG_STATUSES = ("active",) * 17 + ("creating", "pending", "deleting", "error")


def _big_template(off: _Offering) -> dict[str, Any]:
    """A member of `off` with every per-member field left as None, keys in API order."""
    node = _Node(0, "", off, "", "", _Plan(0, 0, 0, 0), "", "", 22, off.os_options[0], False,
                 launch="bootstrap")
    item = _render_node(node, 0, _BIG_OBSERVED)
    for key in ("id", "region", "cloud_assigned_id", "name", "ip", "status", "cost_estimate",
                "created_at", "status_details", "launch_configuration", "active_at"):
        item[key] = None
    return item


def _big_cluster(
    rng: random.Random, index: int, templates: list[tuple[_Offering, dict[str, Any]]]
) -> dict[str, Any]:
    off, template = rng.choice(templates)
    region, display_name = rng.choice(_REGIONS[off.cloud])
    status = rng.choice(_BIG_STATUSES)
    size = rng.randint(1, 16)
    age = rng.randint(10 * _MINUTE, 20 * _DAY)
    created = _iso(_BIG_OBSERVED, -age, frac=True)
    running = status in ("active", "deleting")
    boot = rng.randint(off.boot[0], off.boot[1]) * _SECOND
    active_at = _iso(_BIG_OBSERVED, boot - age, frac=True) if running else None
    member_cost = _accrued_cents(off.price, age - boot) if running else 0
    launch = _launch_configuration("bootstrap", index) if index % 6 else None
    name = f"{_CLUSTER_NAMES[index % len(_CLUSTER_NAMES)]}-{index:05d}"
    instances = []
    for i in range(size):
        member = dict(template)
        member.update(
            id=_uuid(rng), region=region, cloud_assigned_id=_uuid(rng),
            name=f"{name}-node-{i}", status=status, cost_estimate=_cost(member_cost),
            created_at=created, active_at=active_at,
            ip=f"10.{index // 250 % 256}.{index % 250}.{i + 1}" if running else None,
            status_details=_OUT_OF_CAPACITY if status == "error" else None,
            launch_configuration=launch,
        )
        if launch is None:
            del member["launch_configuration"]
        instances.append(member)
    return {
        "id": _uuid(rng),
        "cloud": off.cloud,
        "name": name,
        "region_info": {"region": region, "display_name": display_name},
        "status": status,
        "status_details": _CLUSTER_DETAILS.get(status),
        "created_at": created,
        "updated_at": active_at or created,
        "instances": instances,
        "hourly_price": off.price * size,
        "cloud_cluster_id": f"cluster-{index:06d}",
        "cost_estimate": _cluster_cost(member_cost * size) if running else None,
        "active_at": active_at,
    }


def big_clusters_response(n_clusters: int, seed: int = 1) -> bytes:
    """A GET /clusters response with `n_clusters` clusters of 1..16 nodes, as JSON bytes."""
    rng = random.Random(seed)
    templates = [(off, _big_template(off)) for off in _CLUSTER_OFFERINGS]
    clusters = [_big_cluster(rng, i, templates) for i in range(n_clusters)]
    return orjson.dumps({"clusters": clusters})
