"""Tests of the test kit (the fleet model, its renderer, the seeded sample fleet) and of the
bundled sample data, read as raw JSON."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from shadeanalytics.testing import fleet, render, synthetic

DATA = Path(__file__).resolve().parents[1] / "data"
GENERATED = (
    "seed/cluster-info-example.json",
    "sample/clusters.jsonl",
    "sample/instances.jsonl",
    "sample/instance_types.json",
)
STATUSES = {"creating", "pending_provider", "pending", "active", "error", "deleting", "deleted"}
NOT_YET_ACTIVE = {"creating", "pending_provider", "pending"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
INSTANCE_COST = re.compile(r"^\d+\.\d{1,2}$")
CLUSTER_COST = re.compile(r"^\$\d{1,3}(,\d{3})*\.\d{2}$")
SECRET = re.compile(r"sa-fake-secret-[A-Za-z0-9-]+")

Record = dict[str, Any]


def _read_jsonl(name: str) -> list[Record]:
    with (DATA / "sample" / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def cluster_polls() -> list[Record]:
    return _read_jsonl("clusters.jsonl")


@pytest.fixture(scope="module")
def instance_polls() -> list[Record]:
    return _read_jsonl("instances.jsonl")


@pytest.fixture(scope="module")
def types() -> Record:
    return json.loads((DATA / "sample" / "instance_types.json").read_text(encoding="utf-8"))


def _clusters(cluster_polls: list[Record]) -> Iterator[tuple[str, Record]]:
    for poll in cluster_polls:
        for cluster in poll["response"]["clusters"]:
            yield poll["observed_at"], cluster


@pytest.fixture(scope="module")
def instances(
    cluster_polls: list[Record], instance_polls: list[Record]
) -> list[tuple[str, Record]]:
    """(observed_at, instance) for every standalone instance and cluster member of every poll,
    but the three that leave out a field on purpose (``test_scripted_unknowns``)."""
    return [(at, i) for at, i in _all_instances(cluster_polls, instance_polls)
            if not _leaves_out(i)]


_LEFT_OUT = ("active_at", "cost_estimate", "configuration")


def _leaves_out(item: Record) -> str | None:
    """The field a scripted instance leaves out (an active one without active_at, ...)."""
    if "configuration" not in item:
        return "configuration"
    if "cost_estimate" not in item:
        return "cost_estimate"
    if item["status"] == "active" and "active_at" not in item:
        return "active_at"
    return None


def _all_instances(cluster_polls: list[Record],
                   instance_polls: list[Record]) -> list[tuple[str, Record]]:
    found = [(at, m) for at, cluster in _clusters(cluster_polls) for m in cluster["instances"]]
    for poll in instance_polls:
        found += [(poll["observed_at"], i) for i in poll["response"]["instances"]]
    return found


def test_scripted_unknowns(cluster_polls: list[Record], instance_polls: list[Record]) -> None:
    """Exactly one standalone denvr A100 leaves out each of active_at (while active),
    cost_estimate and configuration (see data/README.md)."""
    left_out: dict[str, set[str]] = {}
    for _, item in _all_instances(cluster_polls, instance_polls):
        field = _leaves_out(item)
        if field is not None:
            left_out.setdefault(field, set()).add(item["id"])
            assert (item["cloud"], item["shade_instance_type"]) == ("denvr", "A100")
    assert sorted(left_out) == sorted(_LEFT_OUT)
    assert all(len(ids) == 1 for ids in left_out.values())


# --- the generator ----------------------------------------------------------------------------


def test_fleet_history_is_deterministic() -> None:
    """The same seed gives identical output; another seed gives another fleet."""
    first = json.dumps(synthetic.fleet_history(3, polls=5))
    assert json.dumps(synthetic.fleet_history(3, polls=5)) == first
    assert json.dumps(synthetic.fleet_history(4, polls=5)) != first


def test_instance_types_is_deterministic() -> None:
    """Availability is seeded: same seed, same catalogue; another seed changes availability."""
    assert synthetic.instance_types(5) == synthetic.instance_types(5)
    assert synthetic.instance_types(5) != synthetic.instance_types(6)


def test_big_clusters_response_is_deterministic_and_well_formed() -> None:
    """big_clusters_response gives identical bytes per seed and n clusters of 1..16 nodes."""
    payload = synthetic.big_clusters_response(300)
    assert synthetic.big_clusters_response(300) == payload
    assert synthetic.big_clusters_response(300, seed=2) != payload
    clusters = json.loads(payload)["clusters"]
    assert len(clusters) == 300
    assert all(1 <= len(c["instances"]) <= 16 for c in clusters)
    assert all(c["hourly_price"] == sum(m["hourly_price"] for m in c["instances"])
               for c in clusters)
    ids = [m["id"] for c in clusters for m in c["instances"]] + [c["id"] for c in clusters]
    assert len(set(ids)) == len(ids)


def test_committed_files_equal_a_fresh_regeneration(tmp_path: Path) -> None:
    """Running data/generate.py reproduces every committed file byte for byte."""
    subprocess.run([sys.executable, str(DATA / "generate.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for relative in GENERATED:
        assert (tmp_path / relative).read_bytes() == (DATA / relative).read_bytes(), relative


def test_seed_example_is_the_docs_example() -> None:
    """The seed file holds the docs' cluster-info example, inconsistencies included."""
    seed = json.loads((DATA / "seed" / "cluster-info-example.json").read_text(encoding="utf-8"))
    assert seed["id"] == "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb"
    assert (seed["hourly_price"], seed["cost_estimate"]) == (1500, "$15.00")
    node = seed["instances"][0]
    assert (node["cloud"], node["shade_instance_type"], node["configuration"]["gpu_type"]) == (
        "hyperstack", "A6000", "A100")
    assert node["deleted_at"] == "2016-08-29T09:12:33.001Z"
    assert node["launch_configuration"]["script_configuration"]["base64_script"].startswith(
        "IyEvYmluL2Jhc2gKCiMgRW5kbGVzcyBsb29w")


# --- the sample: schedule, statuses, counts ---------------------------------------------------


def test_polls_every_six_hours(cluster_polls: list[Record], instance_polls: list[Record],
                               types: Record) -> None:
    """17 polls, 6 h apart, ending 2026-11-20T00:00:00Z, in envelopes naming their endpoint."""
    first = _time("2026-11-16T00:00:00Z")
    expected = [(first + timedelta(hours=6 * k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(17)]
    assert [p["observed_at"] for p in cluster_polls] == expected
    assert [p["observed_at"] for p in instance_polls] == expected
    assert {p["endpoint"] for p in cluster_polls} == {"/clusters"}
    assert {p["endpoint"] for p in instance_polls} == {"/instances"}
    assert (types["observed_at"], types["endpoint"]) == (expected[-1], "/instances/types")


def test_every_status_appears(cluster_polls: list[Record],
                              instances: list[tuple[str, Record]]) -> None:
    """Every instance status and every cluster status is seen in some poll."""
    assert {i["status"] for _, i in instances} == STATUSES
    assert {c["status"] for _, c in _clusters(cluster_polls)} == STATUSES


def test_deleted_resources_are_shown_once_then_vanish(cluster_polls: list[Record],
                                                      instance_polls: list[Record],
                                                      instances: list[tuple[str, Record]]) -> None:
    """Only deleted instances carry deleted_at; deleted top-level resources are then gone."""
    for _, item in instances:
        assert (item["deleted_at"] is not None) == (item["status"] == "deleted")
    standalone = [(p["observed_at"], i) for p in instance_polls for i in p["response"]["instances"]]
    top_level = standalone + list(_clusters(cluster_polls))
    last_seen: dict[str, str] = defaultdict(str)
    for at, item in top_level:
        last_seen[item["id"]] = max(last_seen[item["id"]], at)
    deleted = [(at, item) for at, item in top_level if item["status"] == "deleted"]
    assert deleted and all(last_seen[item["id"]] == at for at, item in deleted)


def test_fleet_size_per_poll(cluster_polls: list[Record], instance_polls: list[Record]) -> None:
    """10-20 live clusters and 15-40 standalone instances per poll; no member is standalone."""
    for clusters, standalone in zip(cluster_polls, instance_polls, strict=True):
        live = [c for c in clusters["response"]["clusters"] if c["status"] != "deleted"]
        assert 10 <= len(live) <= 20
        assert 15 <= len(standalone["response"]["instances"]) <= 40
        members = {m["id"] for c in clusters["response"]["clusters"] for m in c["instances"]}
        assert members.isdisjoint(i["id"] for i in standalone["response"]["instances"])


def test_cluster_sizes_span_1_to_16(cluster_polls: list[Record]) -> None:
    """Clusters hold between 1 and 16 instances, both ends included."""
    sizes = {len(c["instances"]) for _, c in _clusters(cluster_polls)}
    assert min(sizes) == 1 and max(sizes) == 16


def test_ids_are_uuids_with_stable_identity(cluster_polls: list[Record],
                                            instances: list[tuple[str, Record]]) -> None:
    """Ids are UUIDs and an id keeps its created_at, type and name across polls."""
    identity: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for _, item in instances + list(_clusters(cluster_polls)):
        assert str(uuid.UUID(item["id"])) == item["id"]
        identity[item["id"]].add((item["created_at"], item["name"], item.get("cloud", "")))
    assert all(len(seen) == 1 for seen in identity.values())


# --- the sample: hardware, prices, costs -------------------------------------------------------


def test_clouds_and_gpu_types(instances: list[tuple[str, Record]]) -> None:
    """At least 8 clouds and 6 GPU types, CPU-only SKUs having no GPU and no VRAM."""
    configs = [i["configuration"] for _, i in instances]
    assert len({i["cloud"] for _, i in instances}) >= 8
    assert len({c["gpu_type"] for c in configs}) >= 6
    cpu = [c for c in configs if c["gpu_type"] == "CPU"]
    assert cpu and all(c["num_gpus"] == 0 and c["vram_per_gpu_in_gb"] == 0 for c in cpu)
    assert {"pcie", "sxm4", "sxm5"} <= {c["interconnect"] for c in configs}
    assert {"nvidia", "amd"} <= {c["gpu_manufacturer"] for c in configs}


def test_instances_match_their_type_except_one(instances: list[tuple[str, Record]],
                                               types: Record) -> None:
    """Configuration and price follow the catalogue, bar one deliberate gpu_type mismatch."""
    catalogue = {(t["cloud"], t["shade_instance_type"]): t
                 for t in types["response"]["instance_types"]}
    mismatched = set()
    for _, item in instances:
        offer = catalogue[(item["cloud"], item["shade_instance_type"])]
        assert item["hourly_price"] == offer["hourly_price"]
        assert item["cloud_instance_type"] == offer["cloud_instance_type"]
        assert item["configuration"]["os"] in offer["configuration"]["os_options"]
        for key in ("num_gpus", "vram_per_gpu_in_gb", "vcpus", "memory_in_gb", "gpu_type"):
            if item["configuration"][key] != offer["configuration"][key]:
                assert key == "gpu_type"
                mismatched.add(item["id"])
    assert len(mismatched) == 1


def test_prices_are_realistic(instances: list[tuple[str, Record]]) -> None:
    """H100 x8 costs 20-26 $/h, one A6000 0.60-0.90 $/h, CPU-only 0.05-0.20 $/h."""
    for _, item in instances:
        kind, price = item["shade_instance_type"], item["hourly_price"]
        if kind == "H100_sxm5x8":
            assert 2000 <= price <= 2600
        elif kind == "A6000":
            assert 60 <= price <= 90
        elif item["configuration"]["gpu_type"] == "CPU":
            assert 5 <= price <= 20


def test_cluster_price_is_member_sum_except_one(cluster_polls: list[Record]) -> None:
    """Cluster hourly_price is the sum of its members', bar one deliberately wrong cluster."""
    wrong = {c["id"] for _, c in _clusters(cluster_polls)
             if c["hourly_price"] != sum(m["hourly_price"] for m in c["instances"])}
    assert len(wrong) == 1


def test_members_live_in_their_cluster_region_except_one(cluster_polls: list[Record]) -> None:
    """Members share their cluster's cloud and region, bar one deliberate stray member."""
    strays = {m["id"] for _, c in _clusters(cluster_polls) for m in c["instances"]
              if (m["cloud"], m["region"]) != (c["cloud"], c["region_info"]["region"])}
    assert len(strays) == 1


def _rate(item: Record) -> Decimal:
    terms = item.get("rental_terms", {})
    if terms.get("rental_type") == "spot":
        return Decimal(terms["hourly_price"])
    return Decimal(item["hourly_price"]) / 100


def test_instance_cost_estimates(instances: list[tuple[str, Record]]) -> None:
    """Instance costs are bare dollar strings, about rate x hours active for running instances."""
    for at, item in instances:
        assert INSTANCE_COST.match(item["cost_estimate"]), item["cost_estimate"]
        if item["status"] != "active" or not item["shade_cloud"]:
            continue
        hours = Decimal((_time(at) - _time(item["active_at"])).total_seconds()) / 3600
        assert abs(Decimal(item["cost_estimate"]) - _rate(item) * hours) < Decimal("0.02")


def test_cluster_cost_estimates(cluster_polls: list[Record]) -> None:
    """Cluster costs are "$" strings summing the members', null until the cluster is active."""
    costs = []
    for _, cluster in _clusters(cluster_polls):
        cost = cluster["cost_estimate"]
        assert (cost is None) == (cluster["active_at"] is None)
        if cost is None:
            continue
        assert CLUSTER_COST.match(cost), cost
        members = sum(Decimal(m["cost_estimate"]) for m in cluster["instances"])
        assert Decimal(cost[1:].replace(",", "")) == members
        costs.append(cost)
    assert any("," in cost for cost in costs)
    assert any(c["status"] in NOT_YET_ACTIVE for _, c in _clusters(cluster_polls))


# --- the sample: timestamps --------------------------------------------------------------------


def test_timestamps_are_rfc3339_and_ordered(cluster_polls: list[Record],
                                            instances: list[tuple[str, Record]]) -> None:
    """UTC "Z" timestamps, some with milliseconds; created <= active <= deleted <= observed."""
    stamps = []
    for at, item in instances + list(_clusters(cluster_polls)):
        moments = [item["created_at"], item.get("active_at"), item.get("deleted_at"), at]
        present = [m for m in moments if m is not None]
        assert all(TIMESTAMP.match(m) for m in present), present
        assert [_time(m) for m in present] == sorted(_time(m) for m in present)
        stamps += present
    assert any("." in s for s in stamps) and any("." not in s for s in stamps)


def test_active_at_only_once_active(instances: list[tuple[str, Record]]) -> None:
    """active_at is null or absent before active (both forms occur), set once active."""
    forms: Counter[str] = Counter()
    for _, item in instances:
        if item["status"] in NOT_YET_ACTIVE | {"error"}:
            forms["absent" if "active_at" not in item else "null"] += 1
            assert item.get("active_at") is None
        elif item["status"] == "active":
            assert item["active_at"] is not None
    assert forms["absent"] and forms["null"]


def test_some_boots_are_late(instances: list[tuple[str, Record]]) -> None:
    """Some instances took longer than max_boot_in_sec to become active."""
    late = [i for _, i in instances if i.get("active_at") and "boot_time" in i
            and (_time(i["active_at"]) - _time(i["created_at"])).total_seconds()
            > i["boot_time"]["max_boot_in_sec"]]
    assert late


def test_cluster_updated_at_follows_status(cluster_polls: list[Record]) -> None:
    """A cluster's updated_at moves forward exactly when its status changes."""
    history: dict[str, list[Record]] = defaultdict(list)
    for at, cluster in _clusters(cluster_polls):
        assert _time(cluster["created_at"]) <= _time(cluster["updated_at"]) <= _time(at)
        history[cluster["id"]].append(cluster)
    for seen in history.values():
        for before, after in pairwise(seen):
            changed = before["status"] != after["status"]
            assert (after["updated_at"] != before["updated_at"]) == changed
            assert _time(after["updated_at"]) >= _time(before["updated_at"])


# --- the sample: details, rentals, launch configurations, tags --------------------------------


def test_status_details(instances: list[tuple[str, Record]]) -> None:
    """Errors say why (out of capacity); a reclaimed spot instance says "preempted"."""
    errors = [i for _, i in instances if i["status"] == "error"]
    assert all(i["status_details"] for i in errors)
    assert any(i["status_details"] == "out of capacity" for i in errors)
    preempted = [i for _, i in instances if i.get("status_details") == "preempted"]
    assert {i["status"] for i in preempted} == {"deleting", "deleted"}
    assert all(i["rental_terms"]["rental_type"] == "spot" for i in preempted)


def test_rental_terms_variants(instances: list[tuple[str, Record]]) -> None:
    """Spot (dollar string, no end), on-demand, commitment (with end) and missing terms occur."""
    kinds: Counter[str | None] = Counter()
    for _, item in instances:
        terms = item.get("rental_terms")
        kinds[terms["rental_type"] if terms else None] += 1
        if terms and terms["rental_type"] == "spot":
            assert re.match(r"^\d+\.\d\d$", terms["hourly_price"])
            assert terms["ending_at"] is None
            assert Decimal(terms["hourly_price"]) < Decimal(item["hourly_price"]) / 100
        if terms and terms["rental_type"] == "commitment":
            assert TIMESTAMP.match(terms["ending_at"]) and "hourly_price" not in terms
    assert set(kinds) == {"spot", "on_demand", "commitment", None}


def _secret_values(item: Record) -> Iterator[tuple[str, str]]:
    """(field path, value) of every secret in an instance's launch configuration."""
    launch = item.get("launch_configuration") or {}
    docker = launch.get("docker_configuration") or {}
    for env in docker.get("envs", []):
        yield f"envs.{env['name']}", env["value"]
    for key, value in (docker.get("registry_credentials") or {}).items():
        yield f"registry_credentials.{key}", value
    if "args" in docker:
        yield "args", docker["args"]
    script = (launch.get("script_configuration") or {}).get("base64_script")
    if script:
        yield "script", base64.b64decode(script).decode()


def test_launch_configurations_and_secrets(instances: list[tuple[str, Record]]) -> None:
    """Docker, script and no launch configuration occur; every secret has its own marker."""
    kinds = {(i.get("launch_configuration") or {}).get("type") for _, i in instances}
    assert kinds == {"docker", "script", None}
    owners: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for _, item in instances:
        for path, value in _secret_values(item):
            tokens = SECRET.findall(value)
            assert tokens, path
            for token in tokens:
                owners[token].add((item["id"], path))
    assert all(len(owner) == 1 for owner in owners.values())
    docker = [i["launch_configuration"]["docker_configuration"] for _, i in instances
              if (i.get("launch_configuration") or {}).get("type") == "docker"]
    assert any("registry_credentials" in d and "volume_mounts" in d for d in docker)
    assert any("port_mappings" in d and "shared_memory_in_gb" in d for d in docker)


def test_tags_names_and_hostile_values(instances: list[tuple[str, Record]]) -> None:
    """Untagged, single- and multi-tag instances, and spreadsheet-formula-like names and tags."""
    tag_counts = {len(i.get("tags") or []) for _, i in instances}
    assert {0, 1} <= tag_counts and max(tag_counts) >= 2
    texts = [i["name"] for _, i in instances] + [t for _, i in instances for t in i.get("tags", [])]
    assert any(t[0] in "=+-@" for t in texts)


def test_network_and_account_fields(instances: list[tuple[str, Record]]) -> None:
    """Reachable instances have ip and port; both shade_cloud values and port mappings occur."""
    for _, item in instances:
        assert item["cloud_assigned_id"] and item["ssh_user"]
        if item["status"] == "active":
            assert item["ip"] and isinstance(item["ssh_port"], int)
    assert {i["shade_cloud"] for _, i in instances} == {True, False}
    mappings = [m for _, i in instances for m in i.get("port_mappings", [])]
    assert mappings and all(set(m) == {"internal_port", "external_port"} for m in mappings)


# --- the sample: instance types ----------------------------------------------------------------


def test_instance_types_shape(types: Record) -> None:
    """Types carry os_options, boot_time, cents prices, and on-demand plus spot availability."""
    entries = types["response"]["instance_types"]
    for entry in entries:
        assert isinstance(entry["hourly_price"], int)
        assert isinstance(entry["configuration"]["os_options"], list)
        assert "os" not in entry["configuration"]
        assert entry["deployment_type"] in {"vm", "container", "baremetal"}
        assert set(entry["boot_time"]) == {"min_boot_in_sec", "max_boot_in_sec"}
        for where in entry["availability"]:
            assert ("hourly_price" in where) == (where["rental_type"] == "spot")
    spot = [a["hourly_price"] for e in entries for a in e["availability"] if "hourly_price" in a]
    assert spot and all(re.match(r"^\d+\.\d\d$", price) for price in spot)
    spot_only = [e for e in entries
                 if not any(a["available"] for a in e["availability"]
                            if a["rental_type"] == "on_demand")
                 and any(a["available"] for a in e["availability"])]
    assert spot_only


# -- the fleet model and its renderer -------------------------------------------------------------


def test_one_money_rule_and_its_texts() -> None:
    """A rate over a span is rounded half up to whole cents, then written as the API writes it."""
    assert fleet.accrued_cents(199, 90 * fleet.MINUTE) == 299  # 298.5
    assert fleet.accrued_cents(65, 30 * fleet.MINUTE) == 33  # 32.5
    assert fleet.accrued_cents(2360, 11 * fleet.MINUTE + 15 * fleet.SECOND) == 443  # 442.5
    assert fleet.accrued_cents(89, 4 * fleet.MINUTE + 50 * fleet.SECOND) == 7  # 7.17
    assert fleet.accrued_cents(80, 0) == 0
    assert [fleet.cost_text(c) for c in (0, 7, 300, 443, 4810)] == [
        "0.0", "0.07", "3.0", "4.43", "48.1"]
    assert fleet.price_text(2360) == "23.60"
    assert fleet.cluster_cost_text(681632) == "$6,816.32"
    assert fleet.cluster_cost_text(5) == "$0.05"
    assert fleet.volume_cost_text(500, "0.0001", 24 + 10 / 60) == "1.21"  # $1.2083


_SPEC = {
    "start": "2026-01-01T00:00:00Z",
    "instances": [
        {"id": "i-1", "name": "one", "offering": "datacrunch/H100_sxm5", "region":
         "helsinki-finland-1", "cloud_assigned_id": "vm-1", "ip": "192.0.2.1",
         "rental": "spot", "tags": ["a"], "ports": [[8000, 80]],
         "life": {"created": "2026-01-01T00:00:00Z", "pending": "2026-01-01T00:05:00Z",
                  "active": "2026-01-01T00:10:00Z", "deleting": "2026-01-01T01:40:00Z",
                  "deleted": "2026-01-01T01:45:00Z"}},
        {"id": "i-2", "name": "two", "offering": "vultr/cpu_mini", "region": "ewr",
         "cloud_assigned_id": "vm-2", "ip": "192.0.2.2",
         "life": {"created": "2025-12-31T23:00:00Z", "active": "2025-12-31T23:01:00Z",
                  "gone": "2026-01-01T00:30:00Z"}},
    ],
    "clusters": [
        {"id": "c-1", "name": "pair", "offering": "crusoe/H100_sxm5x8", "region": "us-east1-a",
         "cloud_cluster_id": "cl-1",
         "nodes": [{"id": f"c-1-{n}", "name": f"pair-{n}", "cloud_assigned_id": f"vm-c{n}",
                    "ip": f"10.0.0.{n}"} for n in range(2)],
         "life": {"created": "2026-01-01T00:00:00Z", "active": "2026-01-01T00:30:00Z"}},
    ],
}


def test_a_fleet_written_as_data_has_the_lifecycles_it_says() -> None:
    """from_spec: milliseconds from the start, a skipped pending_provider starts with the next
    status, `gone` vanishes unannounced, `deleted` shows once; members share their cluster's
    plan."""
    start, nodes, clusters = fleet.from_spec(_SPEC)
    assert start == datetime(2026, 1, 1, tzinfo=UTC)
    one, two = nodes
    assert one.plan == fleet.Plan(0, 5 * fleet.MINUTE, 5 * fleet.MINUTE, 10 * fleet.MINUTE,
                                  deleting=100 * fleet.MINUTE, deleted=105 * fleet.MINUTE)
    assert [one.plan.status(m * fleet.MINUTE) for m in (0, 4, 5, 10, 100, 105)] == [
        "creating", "creating", "pending", "active", "deleting", "deleted"]
    every = 60 * fleet.MINUTE  # hourly polls: shown as deleted at 02:00, gone at 03:00
    assert [one.plan.visible(h * every, every) for h in (0, 1, 2, 3)] == [True, True, True, False]
    assert two.plan.created == -60 * fleet.MINUTE and two.plan.gone == 30 * fleet.MINUTE
    assert [two.plan.visible(m * fleet.MINUTE, every) for m in (29, 30)] == [True, False]
    assert two.plan.status(0) == "active"
    [pair] = clusters
    assert pair.cloud == "crusoe" and all(m.plan is pair.plan for m in pair.members)
    assert one.rate_cents == 112  # spot: round(279 x 0.4)


def test_the_renderer_shows_a_node_and_a_cluster_at_a_time() -> None:
    """render.node / render.cluster / render.poll: hand-computed statuses, costs and fields."""
    start, nodes, clusters = fleet.from_spec(_SPEC)
    one = nodes[0]
    early = render.node(one, 4 * fleet.MINUTE, start)
    assert (early["status"], early["ip"], early["ssh_port"], early["active_at"]) == (
        "creating", None, None, None)
    # spot at $1.12/h from 00:10 to the delete request at 01:40: 1.5 h = 168 cents
    late = render.node(one, 2 * fleet.HOUR, start)
    assert late["status"] == "deleted" and late["cost_estimate"] == "1.68"
    assert late["deleted_at"] == "2026-01-01T01:45:00Z"
    assert late["active_at"] == "2026-01-01T00:10:00Z"
    assert late["rental_terms"] == {"rental_type": "spot", "hourly_price": "1.12",
                                    "ending_at": None}
    assert late["port_mappings"] == [{"internal_port": 8000, "external_port": 80}]
    assert late["tags"] == ["a"] and late["hourly_price"] == 279
    assert late["configuration"]["gpu_type"] == "H100"
    # the cluster: 2 x $24.80/h from 00:30 to 01:00 = $24.80
    pair = render.cluster(clusters[0], fleet.HOUR, start)
    assert pair["cost_estimate"] == "$24.80" and pair["hourly_price"] == 4960
    assert pair["region_info"] == {"region": "us-east1-a", "display_name": "US, Virginia"}
    assert [m["cost_estimate"] for m in pair["instances"]] == ["12.4", "12.4"]
    assert render.cluster(clusters[0], 0, start)["cost_estimate"] is None  # not active yet
    poll = render.poll(start, fleet.HOUR, fleet.HOUR, nodes, clusters)
    assert poll["observed_at"] == "2026-01-01T01:00:00Z"
    assert [i["id"] for i in poll["instances"]["instances"]] == ["i-1"]  # i-2 is gone
    assert [c["id"] for c in poll["clusters"]["clusters"]] == ["c-1"]


def test_an_instance_type_lists_each_region_on_demand_then_spot() -> None:
    """render.instance_type asks on_demand(region), then spot(region), in the regions' order."""
    asked: list[tuple[str, str]] = []

    def ask(kind: str, answer: bool) -> Callable[[str], bool]:
        def asking(region: str) -> bool:
            asked.append((kind, region))
            return answer

        return asking

    listed = render.instance_type(fleet.offering("hyperstack", "A6000"),
                                  ask("on_demand", True), ask("spot", False))
    regions = ["canada-1", "norway-1", "us-1"]
    assert asked == [("on_demand", r) for r in regions] + [("spot", r) for r in regions]
    assert [(e["region"], e["rental_type"], e["available"], e.get("hourly_price"))
            for e in listed["availability"]] == [
        *[(r, "on_demand", True, None) for r in regions],
        *[(r, "spot", False, "0.32") for r in regions]]  # round(65 x 0.5) = 32 cents
    assert listed["hourly_price"] == 65 and listed["configuration"]["nvlink"] is False
