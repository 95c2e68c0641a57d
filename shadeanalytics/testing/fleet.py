"""The test kit's fleet model: one catalogue, one money rule, resources with lifecycles.

Everything the kit serves or writes (the bundled sample, the fake API's scenarios, the
benchmarks' fleets) is built from these parts and turned into API responses by
:mod:`.render`:

- the **catalogue**: clouds and their regions (:data:`REGIONS`), GPU models, and the
  :class:`Offering` of each (cloud, shade instance type) with its fixed hourly price in cents;
- the **money rule**: :func:`accrued_cents` (a rate over a span, rounded half up to whole
  cents) and the texts the API writes money as (:func:`price_text`, :func:`cost_text`,
  :func:`cluster_cost_text`, :func:`volume_cost_text`);
- **lifecycles**: a :class:`Plan` holds when each status starts, in integer milliseconds from
  the fleet's first poll; a :class:`Node` (an instance) and a :class:`Cluster` follow one;
  :func:`billed_cents` is what a node has accrued at a time (from ``active`` until now or the
  delete request);
- **scenarios as data**: :func:`from_spec` builds the nodes and clusters of a hand-written
  fleet (a dict of ISO times and catalogue keys), as the fake API's default scenario is.

>>> accrued_cents(199, 90 * MINUTE)  # $1.99/h for 1.5 h = 298.5 cents, half up
299
>>> cost_text(299), cost_text(300), cluster_cost_text(123450)
('2.99', '3.0', '$1,234.50')
>>> Plan(0, 10 * SECOND, MINUTE, 5 * MINUTE).status(2 * MINUTE)
'pending'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# All simulated moments are integer milliseconds relative to the first poll.
SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# ---------------------------------------------------------------------------------------------
# The catalogue: clouds, regions and the offerings every response is built from.
# ---------------------------------------------------------------------------------------------

REGIONS: dict[str, tuple[tuple[str, str], ...]] = {
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
GPUS: dict[str, tuple[int, str]] = {
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

GPU_OS = (
    "ubuntu22.04_cuda12.4_shade_os",
    "ubuntu22.04_cuda12.2_shade_os",
    "ubuntu20.04_cuda12.0_shade_os",
    "ubuntu_22_shade_os",
)
CPU_OS = ("ubuntu22.04", "ubuntu20.04")


@dataclass(frozen=True)
class Offering:
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
        return GPUS[self.gpu_type][0]

    @property
    def manufacturer(self) -> str:
        return GPUS[self.gpu_type][1]

    @property
    def nvlink(self) -> bool:
        return self.interconnect.startswith("sxm") and self.num_gpus > 1

    @property
    def os_options(self) -> tuple[str, ...]:
        return CPU_OS if self.num_gpus == 0 else GPU_OS

    @property
    def spot_cents(self) -> int | None:
        return None if self.spot_ratio is None else round(self.price * self.spot_ratio)


OFFERINGS: tuple[Offering, ...] = (
    # cloud, shade_instance_type, cloud_instance_type,
    #     gpu_type, num_gpus, vcpus, memory GB, storage GB, interconnect, cents/h, spot ratio,
    #     (min, max boot seconds)[, deployment_type]
    Offering("hyperstack", "A6000", "n3-RTX-A6000x1",
              "A6000", 1, 8, 58, 200, "pcie", 65, 0.5, (180, 420)),
    Offering("hyperstack", "A6000x4", "n3-RTX-A6000x4",
              "A6000", 4, 28, 232, 800, "pcie", 260, None, (240, 600)),
    Offering("hyperstack", "H100", "n3-H100x1",
              "H100", 1, 28, 180, 750, "pcie", 199, 0.5, (240, 480)),
    Offering("hyperstack", "H100_sxm5x8", "n3-H100-SXM5x8",
              "H100", 8, 192, 1800, 32000, "sxm5", 2072, None, (600, 1200)),
    Offering("hyperstack", "cpu_mini", "n1-cpu-small",
              "CPU", 0, 4, 16, 100, "", 8, None, (60, 180)),
    Offering("denvr", "A100", "A100_40GB_PCIe_1x",
              "A100", 1, 14, 112, 500, "pcie", 129, None, (300, 600)),
    Offering("denvr", "A100_80Gx8", "A100_80GB_SXM_8x",
              "A100_80G", 8, 120, 960, 8000, "sxm4", 1432, None, (900, 1800), "baremetal"),
    Offering("denvr", "H100_sxm5x8", "H100_80GB_SXM_8x",
              "H100", 8, 208, 1800, 16000, "sxm5", 2320, None, (900, 1800), "baremetal"),
    Offering("lambdalabs", "A6000", "gpu_1x_a6000",
              "A6000", 1, 14, 46, 512, "pcie", 80, None, (120, 300)),
    Offering("lambdalabs", "A100", "gpu_1x_a100_sxm4",
              "A100", 1, 30, 200, 512, "sxm4", 129, None, (120, 300)),
    Offering("lambdalabs", "A100_80Gx8", "gpu_8x_a100_80gb_sxm4",
              "A100_80G", 8, 240, 1800, 20000, "sxm4", 1432, None, (300, 900)),
    Offering("lambdalabs", "H100", "gpu_1x_h100_pcie",
              "H100", 1, 26, 200, 1000, "pcie", 249, None, (180, 420)),
    Offering("lambdalabs", "H100_sxm5x8", "gpu_8x_h100_sxm5",
              "H100", 8, 208, 1800, 24000, "sxm5", 2392, None, (300, 900)),
    Offering("datacrunch", "H100_sxm5", "1H100.80S.30V",
              "H100", 1, 30, 120, 800, "sxm5", 279, 0.4, (120, 360)),
    Offering("datacrunch", "A100_80G", "1A100.80S.22V",
              "A100_80G", 1, 22, 120, 500, "sxm4", 179, 0.45, (120, 360)),
    Offering("datacrunch", "H200_sxm5x8", "8H200.141S.176V",
              "H200", 8, 176, 1480, 8000, "sxm5", 2984, 0.45, (300, 900)),
    Offering("datacrunch", "RTX6000Ada", "1RTX6000ADA.10V",
              "RTX6000Ada", 1, 10, 60, 200, "pcie", 99, 0.5, (120, 300)),
    Offering("datacrunch", "cpu_mini", "CPU.4V.16G",
              "CPU", 0, 4, 16, 50, "", 12, None, (60, 180)),
    Offering("nebius", "H100_sxm5x8", "gpu-h100-sxm.8gpu-128vcpu-1600gb",
              "H100", 8, 128, 1600, 1280, "sxm5", 2360, 0.5, (600, 1200)),
    Offering("nebius", "H200_sxm5x8", "gpu-h200-sxm.8gpu-128vcpu-1600gb",
              "H200", 8, 128, 1600, 1280, "sxm5", 2800, 0.5, (600, 1200)),
    Offering("nebius", "L40S", "gpu-l40s-a.1gpu-8vcpu-32gb",
              "L40S", 1, 8, 32, 200, "pcie", 145, None, (180, 420)),
    Offering("nebius", "cpu_medium", "cpu-d3.8vcpu-32gb",
              "CPU", 0, 8, 32, 100, "", 18, None, (60, 180)),
    Offering("crusoe", "H100_sxm5x8", "h100-80gb-sxm-ib.8x",
              "H100", 8, 176, 1440, 1000, "sxm5", 2480, None, (600, 1500)),
    Offering("crusoe", "A100_80Gx8", "a100-80gb-sxm-ib.8x",
              "A100_80G", 8, 176, 1440, 1000, "sxm4", 1560, None, (600, 1500)),
    Offering("crusoe", "L40Sx4", "l40s-48gb.4x",
              "L40S", 4, 32, 588, 1000, "pcie", 580, None, (300, 600)),
    Offering("crusoe", "MI300Xx8", "mi300x-192gb-ib.8x",
              "MI300X", 8, 160, 2048, 8000, "pcie", 2760, None, (900, 1800)),
    Offering("vultr", "A100_80G", "vcg-a100-12c-120g-80vram",
              "A100_80G", 1, 12, 120, 1400, "pcie", 189, None, (120, 420)),
    Offering("vultr", "L40S", "vcg-l40s-16c-180g-48vram",
              "L40S", 1, 16, 180, 1200, "pcie", 167, None, (120, 420)),
    Offering("vultr", "H100_sxm5x8", "vbm-112c-2048gb-8-h100-gpu",
              "H100", 8, 112, 2048, 30720, "sxm5", 2392, None, (1200, 2400), "baremetal"),
    Offering("vultr", "cpu_mini", "vc2-4c-8gb",
              "CPU", 0, 4, 8, 160, "", 6, None, (30, 120)),
    Offering("massedcompute", "A6000", "gpu_1x_a6000",
              "A6000", 1, 6, 48, 256, "pcie", 62, None, (30, 120), "container"),
    Offering("massedcompute", "A6000x4", "gpu_4x_a6000",
              "A6000", 4, 24, 192, 1024, "pcie", 248, None, (30, 120), "container"),
    Offering("massedcompute", "RTX6000Ada", "gpu_1x_rtx6000ada",
              "RTX6000Ada", 1, 10, 64, 256, "pcie", 95, None, (30, 120), "container"),
    Offering("paperspace", "A6000", "A6000",
              "A6000", 1, 8, 45, 100, "pcie", 89, None, (120, 360)),
    Offering("paperspace", "A100_80G", "A100-80G",
              "A100_80G", 1, 12, 90, 100, "pcie", 318, None, (120, 360)),
    Offering("paperspace", "H100", "H100",
              "H100", 1, 20, 250, 100, "pcie", 299, None, (180, 420)),
    Offering("paperspace", "cpu_mini", "C5",
              "CPU", 0, 4, 8, 50, "", 8, None, (60, 180)),
    Offering("scaleway", "H100", "H100-1-80G",
              "H100", 1, 24, 240, 3000, "pcie", 273, None, (180, 420)),
    Offering("scaleway", "H100_sxm5x8", "H100-SXM-8-80G",
              "H100", 8, 128, 960, 12800, "sxm5", 2540, None, (600, 1200)),
    Offering("scaleway", "L40S", "L40S-1-48G",
              "L40S", 1, 8, 96, 1600, "pcie", 154, None, (180, 420)),
    Offering("scaleway", "L40Sx8", "L40S-8-48G",
              "L40S", 8, 64, 768, 12800, "pcie", 1232, None, (300, 600)),
    Offering("scaleway", "cpu_mini", "PRO2-XS",
              "CPU", 0, 4, 16, 50, "", 11, None, (60, 180)),
)

# Multi-GPU nodes are what clusters are made of.
CLUSTER_OFFERINGS = tuple(o for o in OFFERINGS if o.num_gpus >= 4)
# The one offering listed as launchable only on the spot market (see data/README.md).
SPOT_ONLY = ("datacrunch", "H200_sxm5x8")


def offering(cloud: str, shade_type: str) -> Offering:
    return next(o for o in OFFERINGS if (o.cloud, o.shade_type) == (cloud, shade_type))


def display_name(cloud: str, region: str) -> str:
    return dict(REGIONS[cloud])[region]


# ---------------------------------------------------------------------------------------------
# Money: one rounding rule, and the texts the API writes amounts as.
# ---------------------------------------------------------------------------------------------


def accrued_cents(rate_cents: int, ms: int) -> int:
    """rate (cents/hour) over ms milliseconds, rounded half up to whole cents."""
    return (2 * rate_cents * ms + HOUR) // (2 * HOUR)


def price_text(cents: int) -> str:
    """Cents as a decimal dollar string with two decimals, e.g. 120 -> "1.20"."""
    return f"{cents // 100}.{cents % 100:02d}"


def cost_text(cents: int) -> str:
    """Instance cost_estimate: dollars, no symbol, trailing zero dropped ("103.4", "0.0")."""
    text = price_text(cents)
    return text[:-1] if text.endswith("0") else text


def cluster_cost_text(cents: int) -> str:
    """Cluster cost_estimate: "$"-prefixed dollars with thousands separators ("$1,234.50")."""
    return f"${cents // 100:,}.{cents % 100:02d}"


def volume_cost_text(size_gb: int, price_per_gb_hour: str, hours: float) -> str:
    """Volume cost_estimate: size x price x hours in dollars, two decimals ("1.21")."""
    return f"{size_gb * float(price_per_gb_hour) * hours:.2f}"


# ---------------------------------------------------------------------------------------------
# Lifecycles: when each status starts. Rendering a poll only reads these moments.
# ---------------------------------------------------------------------------------------------

PLAN_ORDER = ("deleted", "deleting", "error", "active", "pending", "pending_provider")


@dataclass
class Plan:
    """When each status starts (ms), None for a status never reached. ``gone``: when the
    resource vanishes from the lists without ever showing ``deleted`` (as the API may)."""

    created: int
    pending_provider: int
    pending: int | None
    active: int | None
    error: int | None = None
    deleting: int | None = None
    deleted: int | None = None
    gone: int | None = None

    def status(self, t: int) -> str:
        for name in PLAN_ORDER:
            moment = getattr(self, name)
            if moment is not None and moment <= t:
                return name
        return "creating"

    def moments(self) -> list[int]:
        later = (getattr(self, name) for name in PLAN_ORDER)
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
        return (self.created <= t and (self.deleted is None or t < self.deleted + every)
                and (self.gone is None or t < self.gone))


@dataclass
class Node:
    """An instance: standalone (listed by /instances) or a cluster member."""

    serial: int
    id: str
    offering: Offering
    region: str
    name: str
    plan: Plan
    cloud_assigned_id: str
    ip: str
    ssh_port: int
    os: str
    frac: bool
    shade_cloud: bool = True
    legacy: bool = False  # older shape: no rental_terms, boot_time, nvlink; active_at absent
    rental: str = "on_demand"  # on_demand | on_demand_priced | spot | commitment
    launch: str | Mapping[str, Any] | None = None  # a kind (render.LAUNCH_KINDS) or literal
    ports: tuple[tuple[int, int], ...] | None = None  # (internal, external); None: the rule
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
class Cluster:
    id: str
    name: str
    cloud: str
    region: str
    plan: Plan
    members: list[Node]
    frac: bool
    cloud_cluster_id: str | None
    error_detail: str | None = None
    price_override: int | None = None



def billed_cents(node: Node, t: int) -> int:
    """Cost so far: from active_at until now or until the delete request (billing stops)."""
    plan = node.plan
    active = plan.at("active", t)
    if not node.shade_cloud or active is None:
        return 0
    end = t if plan.deleting is None else min(t, plan.deleting)
    return accrued_cents(node.rate_cents, end - active)


# ---------------------------------------------------------------------------------------------
# Scenarios as data: a hand-written fleet from a dict.
# ---------------------------------------------------------------------------------------------


def _moment(start: datetime, text: str | None) -> int | None:
    if text is None:
        return None
    delta = datetime.fromisoformat(text).astimezone(UTC) - start
    return round(delta.total_seconds() * SECOND)


def _plan(start: datetime, life: Mapping[str, str]) -> Plan:
    moments = {name: _moment(start, life.get(name)) for name in (*PLAN_ORDER, "gone")}
    created = _moment(start, life["created"])
    assert created is not None
    # a skipped pending_provider starts with the next status (never shown then)
    later = [moments[name] for name in reversed(PLAN_ORDER)] + [created]
    pending_provider = next(m for m in later if m is not None)
    return Plan(created, pending_provider, moments["pending"], moments["active"],
                moments["error"], moments["deleting"], moments["deleted"], moments["gone"])


def _node(start: datetime, spec: Mapping[str, Any], serial: int, **defaults: Any) -> Node:
    spec = {**defaults, **spec}
    off = offering(*spec["offering"].split("/"))
    ports = spec.get("ports")
    return Node(
        serial=serial, id=spec["id"], offering=off, region=spec["region"], name=spec["name"],
        plan=spec["plan"] if "plan" in spec else _plan(start, spec["life"]),
        cloud_assigned_id=spec["cloud_assigned_id"], ip=spec["ip"],
        ssh_port=spec.get("ssh_port", 22), os=spec.get("os", off.os_options[0]),
        frac=spec.get("frac", False), rental=spec.get("rental", "on_demand"),
        launch=spec.get("launch"), tags=tuple(spec.get("tags", ())),
        ports=None if ports is None else tuple(tuple(p) for p in ports),
        error_detail=spec.get("error_detail"),
    )


def from_spec(spec: Mapping[str, Any]) -> tuple[datetime, list[Node], list[Cluster]]:
    """``(start, standalone nodes, clusters)`` of a fleet written as data.

    ``spec["start"]`` is the first poll (ISO-8601); ``spec["instances"]`` lists standalone
    instances: ``id``, ``name``, ``offering`` (``"cloud/shade_instance_type"`` of the
    catalogue), ``region``, ``cloud_assigned_id``, ``ip``, ``life`` (ISO times of
    ``created`` and of each later status reached: ``pending_provider``, ``pending``,
    ``active``, ``error``, ``deleting``, ``deleted``, or ``gone`` to vanish unannounced) and
    optionally ``tags``, ``rental``, ``launch`` (a kind or a literal launch configuration),
    ``ports``, ``error_detail``. ``spec["clusters"]`` lists clusters: ``id``, ``name``,
    ``offering``, ``region``, ``cloud_cluster_id``, ``life``, and ``nodes``: the specs of its
    members (their ``offering``, ``region`` and ``life`` are the cluster's).
    """
    start = datetime.fromisoformat(spec["start"]).astimezone(UTC)
    serials = iter(range(1, 1_000_000))
    nodes = [_node(start, item, next(serials)) for item in spec.get("instances", ())]
    clusters = []
    for item in spec.get("clusters", ()):
        plan = _plan(start, item["life"])
        shared = {"offering": item["offering"], "region": item["region"], "plan": plan}
        members = [_node(start, member, next(serials), **shared) for member in item["nodes"]]
        clusters.append(Cluster(item["id"], item["name"], members[0].offering.cloud,
                                item["region"], plan, members, False, item["cloud_cluster_id"]))
    return start, nodes, clusters
