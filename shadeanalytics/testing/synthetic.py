"""The bundled sample's fleet (``data/generate.py``) and the benchmarks' payloads: seeded random
fleets of the :mod:`.fleet` model, rendered by :mod:`.render`.

:func:`fleet_history` plays the sample scenario: an initial fleet, random arrivals between
polls, and scripted resources that guarantee every status and the deliberate anomalies of
``data/README.md``; :func:`instance_types` is the catalogue with seeded availability,
:func:`volume_history` the volumes beside a history, :func:`scenario` a history as the fake
API's states, :func:`big_clusters_response` the benchmark's large ``GET /clusters`` body.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from . import render
from .fakeapi import State
from .fleet import (
    CLUSTER_OFFERINGS,
    DAY,
    HOUR,
    MINUTE,
    OFFERINGS,
    REGIONS,
    SECOND,
    SPOT_ONLY,
    Cluster,
    Node,
    Offering,
    Plan,
    accrued_cents,
    cluster_cost_text,
    cost_text,
    offering,
)

__all__ = ["big_clusters_response", "fleet_history", "instance_types", "scenario",
           "volume_history"]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


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
_STANDALONE_WEIGHTS = tuple(1 if o.num_gpus >= 8 else 3 for o in OFFERINGS)


class FleetBuilder:
    """Plans every instance and cluster of the scenario; rendering happens later, per poll."""

    def __init__(self, rng: random.Random, every: int, polls: int) -> None:
        self.rng = rng
        self.every = every
        self.last = every * (polls - 1)
        self.serial = 0
        self.nodes: list[Node] = []
        self.clusters: list[Cluster] = []

    def build(self) -> tuple[list[Node], list[Cluster]]:
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
    ) -> Plan:
        """creating -> pending_provider -> pending -> active, or -> error when `fail` is given."""
        rng = self.rng
        pending_provider = created + rng.randint(2 * SECOND, 20 * SECOND)
        if wait_long:
            waiting = rng.randint(HOUR, 6 * HOUR)
        else:
            waiting = rng.randint(5 * SECOND, max(10 * SECOND, boot[0] * SECOND // 3))
        pending = pending_provider + waiting
        if fail == _OUT_OF_CAPACITY:
            return Plan(created, pending_provider, None, None, error=pending)
        provisioning = rng.randint(boot[0] * SECOND, boot[1] * SECOND)
        if late:
            provisioning = int(provisioning * rng.uniform(1.3, 3.0))
        active = max(pending + 10 * SECOND, created + provisioning)
        if fail is not None:
            return Plan(created, pending_provider, pending, None, error=active)
        return Plan(created, pending_provider, pending, active)

    def _teardown(self, slow: bool) -> int:
        if slow:
            return self.rng.randint(HOUR, 4 * HOUR)
        return self.rng.randint(30 * SECOND, 10 * MINUTE)

    @staticmethod
    def _delete_after(plan: Plan, at: int) -> int:
        """A delete request at `at`, but never before the last transition has happened."""
        return max(at, max(plan.moments()) + 5 * MINUTE)

    def _end(self, plan: Plan, at: int, *, slow: bool = False) -> None:
        plan.deleting = self._delete_after(plan, at)
        plan.deleted = plan.deleting + self._teardown(slow)

    # -- instances -------------------------------------------------------------------------

    def _next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def _node(self, off: Offering, region: str, plan: Plan, **attrs: Any) -> Node:
        rng = self.rng
        serial = self._next_serial()
        pool = _CPU_NAMES if off.num_gpus == 0 else _GPU_NAMES
        node = Node(
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

    def _random_launch(self, off: Offering) -> str | None:
        if off.num_gpus == 0:
            return self.rng.choice((None, None, "setup"))
        return self.rng.choice((None, None, None, "vllm", "trainer", "jupyter", "cuda", "serve",
                                "setup"))

    def _random_rental(self, off: Offering, shade_cloud: bool) -> str:
        rng = self.rng
        if off.spot_cents is not None and shade_cloud and rng.random() < 0.45:
            return "spot"
        if off.num_gpus > 0 and rng.random() < 0.06:
            return "commitment"
        return rng.choice(("on_demand", "on_demand_priced"))

    def _standalone(self, created: int, lifetime: int | None) -> Node:
        """A random standalone instance created at `created`, deleted `lifetime` after (if any)."""
        rng = self.rng
        off = rng.choices(OFFERINGS, weights=_STANDALONE_WEIGHTS)[0]
        region = rng.choice(REGIONS[off.cloud])[0]
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
            lifetime = rng.randint(HOUR, 20 * HOUR) if rng.random() < 0.7 else None
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
            return rng.randint(2 * HOUR, 12 * HOUR)
        if roll < 0.85:
            return rng.randint(12 * HOUR, 3 * DAY)
        return None

    # -- clusters --------------------------------------------------------------------------

    def _member_plan(self, base: Plan, failed: bool) -> Plan:
        """A member follows its cluster's plan, a few seconds apart."""
        jitter = self.rng.randint
        created = base.created + jitter(0, 1_500)
        pending_provider = base.pending_provider + jitter(0, 20 * SECOND)
        if base.error is not None:
            error = base.error + jitter(0, 5 * SECOND) if failed else None
            return Plan(created, pending_provider, None, None, error=error)
        assert base.pending is not None and base.active is not None
        pending = base.pending + jitter(0, 60 * SECOND)
        active = max(pending + 5 * SECOND, base.active + jitter(-2 * MINUTE, 0))
        return Plan(created, pending_provider, pending, active)

    def _cluster(
        self, off: Offering, region: str, size: int, base: Plan, *, name: str | None = None,
        delete_at: int | None = None, slow_teardown: bool = False, **attrs: Any,
    ) -> Cluster:
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
        cluster = Cluster(_uuid(rng), name, off.cloud, region, base, members, frac, cluster_id)
        for key, value in attrs.items():
            setattr(cluster, key, value)
        if base.error is not None:
            cluster.error_detail = f"{_OUT_OF_CAPACITY}: {len(failed)} of {size} instances failed"
        self._aggregate(cluster, delete_at, slow_teardown)
        self.clusters.append(cluster)
        return cluster

    def _aggregate(self, cluster: Cluster, delete_at: int | None, slow: bool) -> None:
        """Derive the cluster's plan from its members' (and delete them all, if asked)."""
        plans = [m.plan for m in cluster.members]
        base = cluster.plan
        errors = [p.error for p in plans if p.error is not None]
        pendings = [p.pending for p in plans if p.pending is not None]
        actives = [p.active for p in plans if p.active is not None]
        cluster.plan = Plan(
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
            plan.deleting = deleting + self.rng.randint(200, 3 * SECOND)
            plan.deleted = plan.deleting + self.rng.randint(teardown // 2, teardown)
            last_deleted = max(last_deleted, plan.deleted)
        cluster.plan.deleting = deleting
        cluster.plan.deleted = last_deleted + self.rng.randint(1, 5) * SECOND

    def _random_cluster(self, created: int, lifetime: int | None) -> Cluster:
        rng = self.rng
        off = rng.choice(CLUSTER_OFFERINGS)
        region = rng.choice(REGIONS[off.cloud])[0]
        fail = _OUT_OF_CAPACITY if rng.random() < 0.1 else None
        base = self._lifecycle(created, off.boot, late=rng.random() < 0.15,
                               wait_long=rng.random() < 0.1, fail=fail)
        if fail is not None and rng.random() < 0.8:
            lifetime = rng.randint(HOUR, 12 * HOUR)
        delete_at = None if lifetime is None else created + lifetime
        return self._cluster(off, region, rng.choice(_CLUSTER_SIZES), base, delete_at=delete_at,
                             slow_teardown=rng.random() < 0.2)

    # -- the scenario ----------------------------------------------------------------------

    def _initial_fleet(self) -> None:
        """What already runs at the first poll; about half of it is deleted during the run."""
        rng = self.rng
        for _ in range(21):
            created = -rng.randint(HOUR, 12 * DAY)
            lifetime = rng.randint(0, self.last) - created if rng.random() < 0.5 else None
            self._standalone(created, lifetime)
        for _ in range(12):
            created = -rng.randint(6 * HOUR, 10 * DAY)
            lifetime = rng.randint(0, self.last) - created if rng.random() < 0.45 else None
            self._random_cluster(created, lifetime)

    def _arrivals(self) -> None:
        """New launches between polls, some just before a poll so early statuses are seen."""
        rng = self.rng
        for start in range(0, self.last, self.every):
            for _ in range(rng.randint(1, 2)):
                self._standalone(start + rng.randint(0, self.every), self._arrival_lifetime())
            if rng.random() < 0.3:
                created = start + self.every - rng.randint(10 * SECOND, 15 * MINUTE)
                self._standalone(created, self._arrival_lifetime())
            if rng.random() < 0.5:
                lifetime = rng.randint(6 * HOUR, 3 * DAY) if rng.random() < 0.6 else None
                self._random_cluster(start + rng.randint(0, self.every), lifetime)

    def _at_poll(self, fraction: float) -> int:
        """The poll time closest to `fraction` of the run."""
        return round(fraction * self.last / self.every) * self.every

    def _scripted_instances(self) -> None:
        """Statuses every sample must show, and the deliberate anomalies (see data/README.md)."""
        rng, last = self.rng, self.last
        a6000 = offering("hyperstack", "A6000")
        # Still creating / waiting for the provider / booting at the last poll.
        creating = Plan(last - 15 * SECOND, last + 10 * SECOND, last + MINUTE, last + HOUR)
        self.nodes.append(self._node(a6000, "canada-1", creating, tags=("dev",)))
        h100 = offering("lambdalabs", "H100_sxm5x8")
        waiting = self._lifecycle(last - 40 * MINUTE, h100.boot, wait_long=True)
        self.nodes.append(self._node(h100, "us-east-1", waiting, legacy=True,
                                     tags=("team-nlp", "prod")))
        l40s = offering("nebius", "L40S")
        booting = Plan(last - 3 * MINUTE, last - 170 * SECOND, last - 2 * MINUTE, last + HOUR)
        self.nodes.append(self._node(l40s, "eu-north1", booting, launch="vllm"))
        # Out of capacity, seen as `error` for a few polls, then deleted.
        h200 = offering("nebius", "H200_sxm5x8")
        failed = self._lifecycle(self._at_poll(0.5) - 3 * HOUR, h200.boot, wait_long=True,
                                 fail=_OUT_OF_CAPACITY)
        self._end(failed, self._at_poll(0.7) + HOUR)
        self.nodes.append(self._node(h200, "us-central1", failed, error_detail=_OUT_OF_CAPACITY,
                                     tags=("research",)))
        # A spot instance reclaimed by the provider: `deleting` then `deleted`, both "preempted".
        spot = offering("datacrunch", "H100_sxm5")
        reclaimed = self._lifecycle(-30 * HOUR, spot.boot)
        preempt_poll = self._at_poll(0.3)
        reclaimed.deleting = preempt_poll - 20 * MINUTE
        reclaimed.deleted = preempt_poll + 40 * MINUTE
        self.nodes.append(self._node(spot, "helsinki-finland-1", reclaimed, rental="spot",
                                     end_detail="preempted", tags=("team-vision", "spot-ok")))
        # Deleted slowly: `deleting` at the last poll.
        cpu = offering("vultr", "cpu_mini")
        slow = self._lifecycle(-2 * DAY, cpu.boot)
        slow.deleting, slow.deleted = last - 10 * MINUTE, last + 2 * HOUR
        self.nodes.append(self._node(cpu, "ewr", slow))
        # A late boot: active well after max_boot_in_sec.
        late = self._lifecycle(self._at_poll(0.25) - 5 * HOUR, a6000.boot, wait_long=True)
        self.nodes.append(self._node(a6000, "norway-1", late, tags=("team-nlp",)))
        # Anomalies: type/config mismatch like the seed, spreadsheet-formula name and tag, unicode.
        long_lived = [self._lifecycle(-rng.randint(DAY, 9 * DAY), (120, 300)) for _ in range(4)]
        self.nodes += [
            self._node(a6000, "canada-1", long_lived[0], gpu_type_override="A100",
                       launch="vllm", tags=("tag1",)),
            self._node(offering("paperspace", "cpu_mini"), "ny2", long_lived[1],
                       name='=HYPERLINK("http://x")', tags=("dev",)),
            self._node(offering("lambdalabs", "A6000"), "us-west-1", long_lived[2],
                       tags=("team-nlp", "@SUM(1+1)")),
            self._node(offering("scaleway", "L40S"), "fr-par-2", long_lived[3],
                       name="équipe-vision-01", tags=("team-vision", "prod", "research")),
        ]

    def _scripted_unknowns(self) -> None:
        """Instances whose responses leave out what billing needs (see data/README.md):
        active without active_at, no cost_estimate, no configuration (the catalog has it)."""
        last = self.last
        a100 = offering("denvr", "A100")
        for omit, tags in ((("active_at",), ("team-speech",)), (("cost_estimate",), ("dev",)),
                           (("configuration",), ("research",))):
            plan = self._lifecycle(self._at_poll(0.4), a100.boot)
            if omit == ("configuration",):
                plan = self._lifecycle(last - 50 * MINUTE, a100.boot)
            self.nodes.append(self._node(a100, "houston-usa-1", plan, omit=omit, tags=tags))

    def _scripted_clusters(self) -> None:
        """Cluster sizes 1 and 16, every cluster status, and the two deliberate anomalies."""
        rng, last = self.rng, self.last

        def plan(created: int, off: Offering, **kwargs: Any) -> Plan:
            return self._lifecycle(created, off.boot, **kwargs)

        crusoe = offering("crusoe", "H100_sxm5x8")
        self._cluster(crusoe, "us-east1-a", 16, plan(-6 * DAY, crusoe), name="llama-pretrain-70b")
        scaleway = offering("scaleway", "L40Sx8")
        self._cluster(scaleway, "fr-par-2", 1, plan(-2 * DAY, scaleway),
                      delete_at=self._at_poll(0.6) - 3 * HOUR)
        lambda_a100 = offering("lambdalabs", "A100_80Gx8")
        # Anomaly: the cluster price is the per-node price, not the sum over its 4 nodes.
        self._cluster(lambda_a100, "us-west-1", 4, plan(-3 * DAY, lambda_a100),
                      price_override=lambda_a100.price, name="+cluster-finetune")
        # Anomaly (like the seed): one member runs in another cloud and region than its cluster.
        denvr = offering("denvr", "H100_sxm5x8")
        mixed = self._cluster(denvr, "houston-usa-1", 2, plan(-4 * DAY, denvr))
        stray = mixed.members[1]
        stray.offering, stray.region = offering("hyperstack", "H100_sxm5x8"), "canada-1"
        stray.cloud_assigned_id = _cloud_assigned_id(rng, "hyperstack")
        # Early statuses at the last poll, a failed cluster and a slow teardown.
        h200 = offering("datacrunch", "H200_sxm5x8")
        just_created = Plan(last - 10 * SECOND, last + 8 * SECOND, last + MINUTE, last + HOUR)
        self._cluster(h200, "helsinki-finland-2", 2, just_created)
        vultr = offering("vultr", "H100_sxm5x8")
        self._cluster(vultr, "lax", 3, plan(last - 12 * MINUTE, vultr))
        nebius = offering("nebius", "H100_sxm5x8")
        self._cluster(nebius, "eu-north1", 8,
                      plan(self._at_poll(0.4) - 2 * HOUR, nebius, wait_long=True,
                           fail=_OUT_OF_CAPACITY),
                      delete_at=self._at_poll(0.55) + HOUR)
        l40s = offering("crusoe", "L40Sx4")
        self._cluster(l40s, "us-northcentral1-a", 6, plan(-DAY, l40s),
                      delete_at=self._at_poll(0.8) - 30 * MINUTE, slow_teardown=True)


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
    every = round(every_hours * HOUR)
    nodes, clusters = FleetBuilder(random.Random(seed), every, polls).build()
    return [render.poll(t0, t, every, nodes, clusters) for t in range(0, every * polls, every)]


def instance_types(seed: int = 7) -> dict[str, Any]:
    """A GET /instances/types response: fixed catalogue and prices, seeded availability."""
    rng = random.Random(seed)

    def listed(off: Offering) -> dict[str, Any]:
        spot_only = (off.cloud, off.shade_type) == SPOT_ONLY
        return render.instance_type(off, lambda r: not spot_only and rng.random() < 0.6,
                                    lambda r: spot_only or rng.random() < 0.7)

    return {"instance_types": [listed(off) for off in OFFERINGS]}


def scenario(seed: int = 7, polls: int = 17) -> list[State]:
    """The sample fleet (:func:`fleet_history`) as states of the fake API, one per poll."""
    types = instance_types(seed)
    return [State(at=_parse_time(p["observed_at"]), clusters=p["clusters"],
                  instances=p["instances"], instance_types=types)
            for p in fleet_history(seed, polls=polls)]


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
    responses = [
        {"volumes": [
            render.volume(vid, name, size, cloud, region, price[(cloud, region)],
                          (at - polls[first]).total_seconds() / 3600, mounter)
            for vid, name, size, cloud, region, mounter, first, end in plans
            if first <= n <= end]}
        for n, at in enumerate(polls)]
    types = {"volume_types": [render.volume_type(cloud, region, value)
                              for (cloud, region), value in price.items()]}
    return responses, types


# Big payloads for the benchmark: templates copied and varied cheaply.
# ---------------------------------------------------------------------------------------------

_BIG_OBSERVED = datetime(2026, 11, 20, tzinfo=UTC)
_BIG_STATUSES = ("active",) * 17 + ("creating", "pending", "deleting", "error")


def _big_template(off: Offering) -> dict[str, Any]:
    """A member of `off` with every per-member field left as None, keys in API order."""
    node = Node(0, "", off, "", "", Plan(0, 0, 0, 0), "", "", 22, off.os_options[0], False,
                 launch="bootstrap")
    item = render.node(node, 0, _BIG_OBSERVED)
    for key in ("id", "region", "cloud_assigned_id", "name", "ip", "status", "cost_estimate",
                "created_at", "status_details", "launch_configuration", "active_at"):
        item[key] = None
    return item


def _big_cluster(
    rng: random.Random, index: int, templates: list[tuple[Offering, dict[str, Any]]]
) -> dict[str, Any]:
    off, template = rng.choice(templates)
    region, display_name = rng.choice(REGIONS[off.cloud])
    status = rng.choice(_BIG_STATUSES)
    size = rng.randint(1, 16)
    age = rng.randint(10 * MINUTE, 20 * DAY)
    created = render.iso(_BIG_OBSERVED, -age, frac=True)
    running = status in ("active", "deleting")
    boot = rng.randint(off.boot[0], off.boot[1]) * SECOND
    active_at = render.iso(_BIG_OBSERVED, boot - age, frac=True) if running else None
    member_cost = accrued_cents(off.price, age - boot) if running else 0
    launch = render.launch_configuration("bootstrap", index) if index % 6 else None
    name = f"{_CLUSTER_NAMES[index % len(_CLUSTER_NAMES)]}-{index:05d}"
    instances = []
    for i in range(size):
        member = dict(template)
        member.update(
            id=_uuid(rng), region=region, cloud_assigned_id=_uuid(rng),
            name=f"{name}-node-{i}", status=status, cost_estimate=cost_text(member_cost),
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
        "status_details": render.CLUSTER_DETAILS.get(status),
        "created_at": created,
        "updated_at": active_at or created,
        "instances": instances,
        "hourly_price": off.price * size,
        "cloud_cluster_id": f"cluster-{index:06d}",
        "cost_estimate": cluster_cost_text(member_cost * size) if running else None,
        "active_at": active_at,
    }


def big_clusters_response(n_clusters: int, seed: int = 1) -> bytes:
    """A GET /clusters response with `n_clusters` clusters of 1..16 nodes, as JSON bytes."""
    rng = random.Random(seed)
    templates = [(off, _big_template(off)) for off in CLUSTER_OFFERINGS]
    clusters = [_big_cluster(rng, i, templates) for i in range(n_clusters)]
    return orjson.dumps({"clusters": clusters})
