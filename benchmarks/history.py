"""The history benchmark's store: a year of 5-minute polls of a ~1,000-instance fleet.

The fleet is simulated with the repository's own test kit (``shadeanalytics.testing``: the
model's offerings and lifecycles, the sample generator's random launches, launch
configurations with fake secrets, and the renderer's API objects). Launches arrive as a
Poisson process whose rates keep about ``instances`` instances alive (Little's law), starting
90 days before the first poll so that the first poll already sees a fleet in its steady state:

- 20 % standalone instances (lives: 35 % 2-12 h, 50 % 12 h-3 days, 15 % 3-30 days; about 8 %
  of launches fail, out of capacity or at boot),
- 80 % members of clusters of 1-16 nodes (lives: 40 % 6 h-3 days, 40 % 3-21 days, 20 %
  21-90 days; 10 % of cluster launches fail),

each going through ``creating``, ``pending_provider``, ``pending``, ``active``, ``deleting`` and
``deleted`` (shown once, then gone) as the polls see it, with ``cost_estimate`` growing on every
poll, plus the ``/instances/types`` catalogue on every poll. About 0.3 % of the polls fail
(recorded with ``record_failed_poll``: no versions, nothing marked gone).

Recording 105,120 polls one by one through ``Store.record_poll`` takes about half an hour
(tens of ms per poll, mostly redacting, hashing and fsync), so ``build_store`` writes the
year in two parts:

1. all polls but the last ``real`` ones in bulk: one SQLite transaction that inserts exactly
   the rows ``record_poll`` would have written, computed per *version* instead of per poll
   (payloads redacted with ``normalize.redact`` and hashed with the store's own ``_seen``,
   per-poll counts, the poll ``digest`` over every resource's cost of that poll, the same
   ``last_seen`` / ``last_cost_estimate`` / ``valid_to`` / ``gone`` columns). The store
   itself is created by ``Store`` (its schema, pragmas, application id);
2. the last ``real`` polls through ``Store.record_poll`` itself, on the full-year store, each
   timed: these are the commit times the benchmark reports.

``verify()`` (``python benchmarks/history.py --verify``) builds a small store both ways (every
poll through ``record_poll``, and bulk) and checks that every row of ``polls`` and
``versions`` is identical.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from shadeanalytics.ingest.normalize import redact
from shadeanalytics.live.store import ENDPOINTS, Store, _seen, utc_text
from shadeanalytics.testing import fleet, render
from shadeanalytics.testing import synthetic as syn

EVERY_MS = 5 * fleet.MINUTE
START = datetime(2025, 11, 20, tzinfo=UTC)
YEAR_POLLS = 365 * 24 * 12  # 105,120
FAILED_SHARE = 0.003
#: bump when the simulation or the bulk rows change: cached stores are rebuilt
BUILDER_VERSION = 3
#: the endpoints every poll lists (the collector's core three: the simulation has no account)
_ENDPOINTS = ",".join(ENDPOINTS[:3])
_WARM_UP = 90 * fleet.DAY


def _uniform(rng: random.Random, lo: float, hi: float) -> int:
    return round(rng.uniform(lo, hi))


def _standalone_life(rng: random.Random) -> int:
    roll, h, d = rng.random(), fleet.HOUR, fleet.DAY
    if roll < 0.35:
        return _uniform(rng, 2 * h, 12 * h)
    if roll < 0.85:
        return _uniform(rng, 12 * h, 3 * d)
    return _uniform(rng, 3 * d, 30 * d)


def _cluster_life(rng: random.Random) -> int:
    roll, h, d = rng.random(), fleet.HOUR, fleet.DAY
    if roll < 0.4:
        return _uniform(rng, 6 * h, 3 * d)
    if roll < 0.8:
        return _uniform(rng, 3 * d, 21 * d)
    return _uniform(rng, 21 * d, 90 * d)


_STANDALONE_MEAN = (0.35 * 7 + 0.5 * 42 + 0.15 * 396) * fleet.HOUR
_CLUSTER_MEAN = (0.4 * 39 + 0.4 * 288 + 0.2 * 1332) * fleet.HOUR
_CLUSTER_SIZE_MEAN = sum(syn._CLUSTER_SIZES) / len(syn._CLUSTER_SIZES)
#: failed launches (about 8 % of standalone ones, 10 % of clusters) live hours, not days: the
#: launch rates are raised by this factor so that about ``instances`` are listed on average
#: (calibrated on the year of seed 1: 942 listed without it)
_FAILED_LAUNCHES = 1.06


class _YearBuilder(syn.FleetBuilder):
    """Poisson launches (and their ends) that keep about ``target`` instances alive."""

    def __init__(self, rng: random.Random, polls: int, target: int) -> None:
        super().__init__(rng, EVERY_MS, polls)
        self.target = target

    def _standalone(self, created: int, lifetime: int | None) -> Any:
        node = super()._standalone(created, lifetime)
        if node.plan.deleted is None:
            # the sample's scenario leaves some failed launches listed to its end (a few
            # days); over a year they would pile up: someone deletes them within a day
            self._end(node.plan, created + self.rng.randint(fleet.HOUR, 20 * fleet.HOUR))
        return node

    def build(self) -> tuple[list[Any], list[Any]]:
        rng = self.rng
        rates = (
            (_FAILED_LAUNCHES * 0.2 * self.target / _STANDALONE_MEAN,
             lambda at: self._standalone(at, _standalone_life(rng))),
            (_FAILED_LAUNCHES * 0.8 * self.target / _CLUSTER_SIZE_MEAN / _CLUSTER_MEAN,
             lambda at: self._random_cluster(at, _cluster_life(rng))),
        )
        for rate, launch in rates:
            at = -_WARM_UP + rng.expovariate(rate)
            while at < self.last:
                launch(round(at))
                at += rng.expovariate(rate)
        return self.nodes, self.clusters


# -- the simulated year -----------------------------------------------------------------------


@dataclass
class _Resource:
    """One cluster, instance or instance type, and when the polls see it."""

    kind: str
    rid: str
    parent: str | None
    render: Callable[[int], dict[str, Any]]  # the API object at a time (ms)
    moments: list[int]  # times (ms) at which its object (cost aside) may change
    first_ms: int  # listed from this time...
    until_ms: int | None  # ...while time < this (None: to the end)
    cost: Callable[[np.ndarray], list[Any]] = field(repr=False, default=lambda t: [])


@dataclass
class Year:
    """The fleet, the catalogue and the poll schedule of one simulated history."""

    polls: int
    failed: frozenset[int]  # indexes of failed polls
    resources: list[_Resource]
    clusters: list[Any]
    standalone: list[Any]
    types: dict[str, Any]

    def time(self, p: int) -> int:
        return p * EVERY_MS

    def observed(self, p: int) -> str:
        return utc_text(START + timedelta(milliseconds=self.time(p)))

    def finished(self, p: int) -> str:
        return utc_text(START + timedelta(milliseconds=self.time(p) + 1000))

    def responses(self, p: int) -> dict[str, Any]:
        """The three list responses of poll ``p``, as the collector passes them."""
        t = self.time(p)
        return {
            "clusters": {"clusters": [render.cluster(c, t, START) for c in self.clusters
                                      if c.plan.visible(t, EVERY_MS)]},
            "instances": {"instances": [render.node(n, t, START) for n in self.standalone
                                        if n.plan.visible(t, EVERY_MS)]},
            "instance_types": self.types,
        }


def _until(plan: Any) -> int | None:
    return None if plan.deleted is None else plan.deleted + EVERY_MS


_FRACTION = [f"{r:02d}"[:-1] if r % 10 == 0 else f"{r:02d}" for r in range(100)]


def _cost_texts(cents: np.ndarray) -> list[str]:
    """``fleet.cost_text`` of each value: dollars, no symbol, a trailing zero dropped."""
    dollars, rest = np.divmod(cents, 100)
    frac = _FRACTION
    return [f"{d}.{frac[r]}" for d, r in zip(dollars.tolist(), rest.tolist(), strict=True)]


def _accrued(node: Any, t: np.ndarray) -> np.ndarray:
    """``fleet.billed_cents`` at each time of ``t`` (ms), vectorized."""
    plan = node.plan
    if not node.shade_cloud or plan.active is None:
        return np.zeros(t.size, dtype=np.int64)
    end = t if plan.deleting is None else np.minimum(t, plan.deleting)
    billed = fleet.accrued_cents(node.rate_cents, end - plan.active)
    return np.where(t >= plan.active, billed, 0)


def _node_costs(node: Any) -> Callable[[np.ndarray], list[Any]]:
    """The node's ``cost_estimate`` at each time of ``t`` (ms)."""
    return lambda t: _cost_texts(_accrued(node, t))


def _cluster_costs(cluster: Any) -> Callable[[np.ndarray], list[Any]]:
    """The cluster's ``cost_estimate`` at each time of ``t``: "$1,234.50", None before active."""
    def costs(t: np.ndarray) -> list[Any]:
        total = sum((_accrued(m, t) for m in cluster.members), np.zeros(t.size, dtype=np.int64))
        active = cluster.plan.active
        return [None if active is None or at < active else fleet.cluster_cost_text(c)
                for at, c in zip(t.tolist(), total.tolist(), strict=True)]

    return costs


def simulate(polls: int = YEAR_POLLS, instances: int = 1000, seed: int = 1) -> Year:
    """A fleet of about ``instances`` instances over ``polls`` 5-minute polls."""
    rng = random.Random(seed)
    nodes, clusters = _YearBuilder(rng, polls, instances).build()
    last = (polls - 1) * EVERY_MS

    def seen(plan: Any) -> bool:
        return plan.created <= last and (plan.deleted is None or plan.deleted + EVERY_MS > 0)

    # launches that ended before the first poll (the warm-up) are never seen
    clusters = sorted((c for c in clusters if seen(c.plan)), key=lambda c: (c.plan.created, c.id))
    standalone = sorted((n for n in nodes if seen(n.plan)), key=lambda n: (n.plan.created, n.id))
    failed = frozenset(p for p in range(1, polls) if rng.random() < FAILED_SHARE)

    resources: list[_Resource] = []
    for c in clusters:
        # record_poll versions a cluster's members before the cluster (store._prepare); a
        # member is listed inside its cluster, so for exactly as long as the cluster
        for m in c.members:
            resources.append(_Resource(
                "instance", m.id, c.id, lambda t, m=m: render.node(m, t, START),
                m.plan.moments(), c.plan.created, _until(c.plan), _node_costs(m)))
        resources.append(_Resource(
            "cluster", c.id, None, lambda t, c=c: render.cluster(c, t, START),
            c.plan.moments(), c.plan.created, _until(c.plan), _cluster_costs(c)))
    for n in standalone:
        resources.append(_Resource(
            "instance", n.id, None, lambda t, n=n: render.node(n, t, START),
            n.plan.moments(), n.plan.created, _until(n.plan), _node_costs(n)))
    types = syn.instance_types(seed)
    for item in types["instance_types"]:
        tid = f"{item['cloud']}/{item['shade_instance_type']}"
        resources.append(_Resource("instance_type", tid, None, lambda t, item=item: item, [],
                                   -1, None, lambda t: [None] * t.size))
    return Year(polls, failed, resources, clusters, standalone, types)


# -- the bulk path: the rows record_poll would write, per version -------------------------------


def _payload(res: _Resource, t: int) -> tuple[dict[str, Any], Any]:
    """(stored payload, cost_estimate) of ``res`` at ``t``, as ``store._prepare`` builds it."""
    item = res.render(t)
    if res.kind == "cluster":
        return redact({**item, "instances": [{"id": m["id"]} for m in item["instances"]]}), \
            item.get("cost_estimate")
    if res.kind == "instance":
        return redact(item), item.get("cost_estimate")
    return item, item.get("cost_estimate")


def _line_prefix(kind: str, rid: str, parent: str | None, phash: str) -> str:
    return f"{kind}\t{rid}\t{parent}\t{phash}\t"


def _digests(spans: list[tuple[int, int, _Resource, str]], ok_times: np.ndarray,
             chunk: int = 512) -> list[str]:
    """``store._digest`` of every successful poll: sha256 of the endpoints and one sorted line
    per resource seen (kind, id, parent, payload hash, that poll's cost_estimate).

    Lines are laid out in a (resource x poll) matrix a chunk of polls at a time, rows in line
    order, so that each poll's text is one join of a column: no per-poll sort.
    """
    # lines sort by "kind\tid\t" (ids are unique within a kind among the resources of a poll)
    order = sorted(range(len(spans)), key=lambda k: f"{spans[k][2].kind}\t{spans[k][2].rid}\t")
    starts = np.array([spans[k][0] for k in order], dtype=np.int64)
    ends = np.array([spans[k][1] for k in order], dtype=np.int64)
    out: list[str] = []
    for a in range(0, ok_times.size, chunk):
        b = min(a + chunk, ok_times.size)
        rows = np.flatnonzero((starts < b) & (ends > a))
        matrix = np.full((rows.size, b - a), None, dtype=object)
        for i, k in enumerate(rows.tolist()):
            s, e, res, prefix = spans[order[k]]
            lo, hi = max(s, a), min(e, b)
            costs = res.cost(ok_times[lo:hi])
            matrix[i, lo - a:hi - a] = [prefix + r for r in map(repr, costs)]
        for j in range(b - a):
            lines = [x for x in matrix[:, j].tolist() if x is not None]
            out.append(hashlib.sha256("\n".join([_ENDPOINTS, *lines]).encode()).hexdigest())
    return out


def bulk_rows(year: Year, end: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The ``polls`` and ``versions`` rows of polls ``0 .. end - 1`` (poll_id = index + 1)."""
    ok = np.array([p for p in range(end) if p not in year.failed], dtype=np.int64)
    ok_times = ok * EVERY_MS
    n_ok = ok.size
    seen_delta = {kind: np.zeros(end + 1, dtype=np.int64)
                  for kind in ("cluster", "instance", "instance_type")}
    added = np.zeros(end, dtype=np.int64)
    changed = np.zeros(end, dtype=np.int64)
    gone = np.zeros(end, dtype=np.int64)
    versions: list[tuple[Any, ...]] = []
    spans: list[tuple[int, int, _Resource, str]] = []

    for res in year.resources:
        lo = int(np.searchsorted(ok_times, res.first_ms, side="left"))
        hi = n_ok if res.until_ms is None else int(np.searchsorted(ok_times, res.until_ms,
                                                                   side="left"))
        if lo >= hi:
            continue  # never seen by a successful poll
        seen_delta[res.kind][ok[lo]] += 1
        seen_delta[res.kind][ok[hi - 1] + 1] -= 1
        # where the object may change: the first successful poll at or after each moment
        starts = sorted({lo} | {int(np.searchsorted(ok_times, m, side="left"))
                                for m in res.moments} - {n_ok})
        starts = [s for s in starts if lo <= s < hi]
        current: tuple[str, int] | None = None  # (payload hash, position of first poll)
        opened: list[tuple[int, Any]] = []
        for s in starts:
            payload, _ = _payload(res, int(ok_times[s]))
            item = _seen(res.kind, res.rid, res.parent, payload, "", "")
            if current is not None and current[0] == item.payload_hash:
                continue
            current = (item.payload_hash, s)
            opened.append((s, item))
        for k, (s, item) in enumerate(opened):
            last = (opened[k + 1][0] if k + 1 < len(opened) else hi) - 1
            if k == 0:
                added[ok[s]] += 1
            else:
                changed[ok[s]] += 1
            if k + 1 < len(opened):
                valid_to, is_gone = int(ok[opened[k + 1][0]]) + 1, 0
            elif hi < n_ok:  # vanished: the next successful poll marks it gone
                valid_to, is_gone = int(ok[hi]) + 1, 1
                gone[ok[hi]] += 1
            else:
                valid_to, is_gone = None, 0
            cost_at_last = res.cost(ok_times[last:last + 1])
            cost_at_last = cost_at_last[0] if cost_at_last else None
            versions.append((res.kind, res.rid, res.parent, int(ok[s]) + 1, valid_to, is_gone,
                             item.status, item.payload, item.payload_hash, int(ok[last]) + 1,
                             year.observed(int(ok[last])), cost_at_last, s))
            spans.append((s, last + 1, res,
                          _line_prefix(res.kind, res.rid, res.parent, item.payload_hash)))

    digests = _digests(spans, ok_times)
    counts = {kind: np.cumsum(delta)[:end] for kind, delta in seen_delta.items()}
    polls: list[tuple[Any, ...]] = []
    ok_pos = {int(p): i for i, p in enumerate(ok.tolist())}
    for p in range(end):
        observed = year.observed(p)
        if p in year.failed:
            polls.append((p + 1, observed, year.finished(p), observed, _ENDPOINTS, "failed",
                          None, None, None, None, None, None, None,
                          "GET /clusters: 503 Service Unavailable (3 attempts)", None, None))
            continue
        polls.append((p + 1, observed, year.finished(p), observed, _ENDPOINTS, "ok",
                      int(counts["cluster"][p]), int(counts["instance"][p]),
                      int(counts["instance_type"][p]), int(added[p]), int(changed[p]),
                      int(gone[p]), digests[ok_pos[p]], None, 0, 0))
    # versions in the order record_poll inserts them: by poll, then as _prepare lists them
    versions.sort(key=lambda v: v[3])
    return polls, [v[:-1] for v in versions]


_POLL_INSERT = (
    "INSERT INTO polls (poll_id, started_at, finished_at, observed_at, endpoints, outcome, "
    "clusters, instances, instance_types, added, changed, gone, digest, error, details, "
    "failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_VERSION_INSERT = (
    "INSERT INTO versions (kind, resource_id, parent_id, valid_from, valid_to, gone, status, "
    "payload, payload_hash, last_seen_poll, last_seen_at, last_cost_estimate) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def write_bulk(path: Path, year: Year, end: int) -> None:
    """Create the store at ``path`` (``Store``) and write polls ``0 .. end - 1`` in bulk."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    Store(path).close()
    polls, versions = bulk_rows(year, end)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_POLL_INSERT, polls)
        conn.executemany(_VERSION_INSERT, versions)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def record(store: Store, year: Year, p: int) -> float:
    """Record poll ``p`` through the store's own write path; the seconds it took."""
    if p in year.failed:
        began = time.perf_counter()
        store.record_failed_poll(year.observed(p), started_at=year.observed(p),
                                 finished_at=year.finished(p),
                                 error="GET /clusters: 503 Service Unavailable (3 attempts)")
        return time.perf_counter() - began
    responses = year.responses(p)
    began = time.perf_counter()
    store.record_poll(year.observed(p), started_at=year.observed(p),
                      finished_at=year.finished(p), **responses)
    return time.perf_counter() - began


@dataclass
class Built:
    path: Path
    polls: int
    bulk_polls: int
    bulk_s: float
    simulate_s: float
    commit_s: list[float]  # each poll recorded through record_poll (successful ones)
    as_of: str  # the newest poll's time


def build_store(path: Path, *, polls: int = YEAR_POLLS, instances: int = 1000, seed: int = 1,
                real: int = 300, quiet: bool = False) -> str | Built:
    """Build the store; ``quiet`` returns only the newest poll's time (for check scripts)."""
    path = Path(path)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    began = time.perf_counter()
    year = simulate(polls, instances, seed)
    simulated = time.perf_counter() - began
    end = max(0, polls - real)
    began = time.perf_counter()
    write_bulk(path, year, end)
    bulk = time.perf_counter() - began
    commits = []
    with Store(path) as store:
        for p in range(end, polls):
            took = record(store, year, p)
            if p not in year.failed:
                commits.append(took)
    if quiet:
        return year.observed(polls - 1)
    return Built(path, polls, end, bulk, simulated, commits, year.observed(polls - 1))


def verify(polls: int = 600, instances: int = 150, seed: int = 5) -> None:
    """Bulk rows == record_poll rows, on a small history (every column of both tables)."""
    import tempfile

    year = simulate(polls, instances, seed)
    with tempfile.TemporaryDirectory() as tmp:
        real_path, bulk_path = Path(tmp) / "real.db", Path(tmp) / "bulk.db"
        with Store(real_path) as store:
            for p in range(polls):
                record(store, year, p)
        half = polls // 2
        write_bulk(bulk_path, year, half)  # half in bulk, then the rest through record_poll
        with Store(bulk_path) as store:
            for p in range(half, polls):
                record(store, year, p)
        full_bulk = Path(tmp) / "full.db"
        write_bulk(full_bulk, year, polls)
        tables = {}
        for label, path in (("record_poll", real_path), ("half bulk", bulk_path),
                            ("bulk", full_bulk)):
            conn = sqlite3.connect(path)
            tables[label] = (conn.execute("SELECT * FROM polls ORDER BY poll_id").fetchall(),
                             conn.execute("SELECT * FROM versions ORDER BY version_id"
                                          ).fetchall())
            conn.close()
        want = tables["record_poll"]
        for label in ("half bulk", "bulk"):
            got = tables[label]
            for name, a, b in (("polls", want[0], got[0]), ("versions", want[1], got[1])):
                if a != b:
                    diff = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y) \
                        if len(a) == len(b) else f"{len(a)} vs {len(b)} rows"
                    raise AssertionError(f"{label}: {name} differ from record_poll's "
                                         f"(first at {diff})")
        versions = len(want[1])
        print(f"verify: {polls} polls, {versions} versions: bulk rows == record_poll rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build (or verify) the history store.")
    parser.add_argument("--verify", action="store_true",
                        help="check bulk rows == record_poll rows on a small history")
    parser.add_argument("--verify-polls", type=int, default=600)
    parser.add_argument("--verify-instances", type=int, default=150)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "history.db")
    parser.add_argument("--polls", type=int, default=YEAR_POLLS)
    parser.add_argument("--instances", type=int, default=1000,
                        help="fleet size the simulation keeps listed")
    parser.add_argument("--real", type=int, default=300,
                        help="last polls recorded through Store.record_poll")
    args = parser.parse_args(argv)
    if args.verify:
        verify(args.verify_polls, args.verify_instances)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    built = build_store(args.out, polls=args.polls, instances=args.instances, real=args.real)
    assert isinstance(built, Built)
    print(built.bulk_s, built.simulate_s, float(np.median(built.commit_s)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
