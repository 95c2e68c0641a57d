"""Shared test helpers, the one place test files share code (never one test file importing
another): the seed document, small record builders, the command line in a subprocess with its
clock set, a client factory for the fake API, and the kill -9 loop of the collector."""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from pgserver import SKIP_REASON, PgServer, find_bindir

from shadeanalytics import config
from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.collect import collect, collector_lock
from shadeanalytics.live.endpoints import ACCOUNT_LISTS
from shadeanalytics.live.store import Store
from shadeanalytics.testing import synthetic
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, State

# Python's bytecode cache is written even where PYTHONDONTWRITEBYTECODE is set (as on these
# machines): otherwise every xdist worker rewrites every test module's asserts and every CLI
# subprocess compiles the whole package again (about 0.2 s of CPU each). The caches go to
# the git-ignored __pycache__ folders.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

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


# -- the command line and the fake API ---------------------------------------------------------


def cli_env(key: str | None = None, now: datetime | None = None) -> dict[str, str]:
    """This process's environment without any Shadeform setting or clock, plus
    ``SHADEFORM_API_KEY`` and ``SHADEANALYTICS_NOW`` when given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SHADEFORM_") and k != config.NOW_ENV}
    if key is not None:
        env[config.API_KEY_ENV] = key
    if now is not None:
        env[config.NOW_ENV] = now.isoformat()
    return env


def run_cli(*args: str, key: str | None = None, now: datetime | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m shadeanalytics ARGS`` in a subprocess, as cron would run it, its clock at
    ``now`` (the wall clock when None)."""
    return subprocess.run([sys.executable, "-m", "shadeanalytics", *args],
                          env=cli_env(key, now), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def fake_client(api: FakeShadeformAPI, key: str, **policy: Any
                ) -> Callable[..., ShadeformClient]:
    """A client factory for the fake API that does not sleep between retries (``policy``:
    further :class:`ClientPolicy` fields)."""
    return functools.partial(ShadeformClient, api_key=key, base_url=api.url,
                             policy=ClientPolicy(**{"sleep": lambda s: None, **policy}))


# -- kill -9 ------------------------------------------------------------------------------------

_KILL_KEY = "test-key-kill"

# A zygote imports the package once, then forks one collector per kill: starting a fresh
# interpreter (pandas included) for each of hundreds of kills would take minutes. The forked
# collector is a separate process like any other; the zygote has no threads or connections
# to pass on.
_ZYGOTE = textwrap.dedent("""
    import functools, itertools, os, sys, traceback
    from datetime import UTC, datetime
    from shadeanalytics.testing import synthetic
    from shadeanalytics.live.client import ClientPolicy, ShadeformClient
    from shadeanalytics.live.collect import collect, collector_lock
    from shadeanalytics.live.store import Store

    store_path, url, key, report_path = sys.argv[1:]
    history = synthetic.fleet_history(polls=17)
    types = synthetic.instance_types()

    def with_api(report):
        make = functools.partial(ShadeformClient, api_key=key, base_url=url,
                                 policy=ClientPolicy(sleep=lambda s: 0))
        while True:
            report(collect(store_path, make_client=make).poll_id)

    def from_responses(report, start):
        for i in itertools.count(start):
            poll = history[i % len(history)]
            with collector_lock(store_path), Store(store_path) as store:
                report(store.record_poll(datetime.now(UTC), clusters=poll["clusters"],
                                         instances=poll["instances"], instance_types=types))

    print("ready", flush=True)
    for line in sys.stdin:
        seed = int(line)
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(report_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                report = lambda poll_id: os.write(fd, b"%d\\n" % poll_id)  # after the commit
                with_api(report) if seed % 2 else from_responses(report, seed)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        print(pid, flush=True)
        print(os.waitpid(pid, 0)[1], flush=True)
""")


def _check_after_kill(path: Path, reported: set[int]) -> None:
    """The store is whole: integrity ok, every reported poll there, no partial poll."""
    with Store(path) as store:
        assert store.integrity_check() == "ok"
    with sqlite3.connect(path) as conn:
        polls = {p: (added, changed, gone, seen) for p, added, changed, gone, seen in
                 conn.execute("SELECT poll_id, added, changed, gone, clusters + instances "
                              "+ instance_types + coalesce(volumes, 0) + details "
                              "FROM polls WHERE outcome = 'ok'")}
        assert reported <= set(polls), "a poll reported as committed is missing"
        opened = dict(conn.execute("SELECT valid_from, count(*) FROM versions "
                                   "GROUP BY valid_from"))
        closed = dict(conn.execute("SELECT valid_to, count(*) FROM versions "
                                   "WHERE valid_to IS NOT NULL AND gone = 0 GROUP BY valid_to"))
        vanished = dict(conn.execute("SELECT valid_to, count(*) FROM versions "
                                     "WHERE gone = 1 GROUP BY valid_to"))
        for p, (added, changed, gone, _) in polls.items():
            assert (opened.get(p, 0), closed.get(p, 0), vanished.get(p, 0)) == (
                added + changed, changed, gone), f"poll {p} is partial"
        assert set(opened) | set(closed) | set(vanished) <= set(polls), "versions of no poll"
        if polls:
            newest = max(polls)
            touched = conn.execute("SELECT count(*) FROM versions WHERE last_seen_poll = ?",
                                   (newest,)).fetchone()[0]
            assert touched == polls[newest][3], f"poll {newest} updated only part of its rows"
    with collector_lock(path):  # free: the kernel released the dead collector's flock
        pass


def kill_loop(tmp_path: Path, kills: int, seed: int, expect_commits: bool = True) -> None:
    """SIGKILL a collector ``kills`` times at random moments (``seed``); after each kill the
    store is whole and the next run succeeds."""
    path = tmp_path / "fleet.sqlite"
    report_path = tmp_path / "committed.txt"
    rng = random.Random(seed)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    with FakeShadeformAPI(api_key=_KILL_KEY, scenario=synthetic.scenario(),
                          advance_on="/instances/types") as api:
        zygote = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(path), api.url, _KILL_KEY, str(report_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert zygote.stdin is not None and zygote.stdout is not None
        # how long a poll takes here, measured by each run after a kill: the kill comes at a
        # random moment of about a poll, so some land after a commit however busy the machine
        # (a fixed 5-50 ms, under the hardening tier's xdist load, killed one loop's 250
        # collectors before any commit)
        poll_s = 0.025
        try:
            assert zygote.stdout.readline() == "ready\n"
            for kill in range(kills):
                zygote.stdin.write(f"{kill}\n")
                zygote.stdin.flush()
                pid = int(zygote.stdout.readline())
                time.sleep(rng.uniform(0.005, max(0.050, poll_s)))
                os.kill(pid, signal.SIGKILL)
                status = int(zygote.stdout.readline())  # reaped: the collector is gone
                assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                    f"kill {kill} (seed {seed}): the collector died on its own")
                lines = report_path.read_text().splitlines() if report_path.exists() else []
                _check_after_kill(path, {int(line) for line in lines})
                began = time.monotonic()
                assert collect(path, make_client=fake_client(api, _KILL_KEY)).outcome == "ok"
                poll_s = time.monotonic() - began
        finally:
            zygote.stdin.close()
            zygote.wait(timeout=10)
    with Store(path) as store:
        log = store.polls()
    # the collectors did commit polls between the kills, and every run succeeded afterwards
    by_killed = len(log) - kills
    print(f"{kills} kills: {len(log)} polls, {by_killed} of them by the killed collectors")
    if expect_commits:  # over a few kills on a busy machine, none may get to commit
        assert by_killed > 0
    assert set(log["outcome"]) == {"ok"}


class Captured(io.StringIO):
    """A text stream for ``stdout=``/``stderr=``/``out=`` that keeps what was written."""

    @property
    def text(self) -> str:
        """Everything written so far."""
        return self.getvalue()


def fixed_clock(at: datetime) -> Callable[[], datetime]:
    """A clock for ``collect(now=...)`` that always reads ``at``."""
    return lambda: at


class Hook:
    """A webhook on 127.0.0.1: answers each POST with the next scripted status (then 200),
    ``delay`` seconds after reading it."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                time.sleep(delay)
                hook.bodies.append(json.loads(body))
                hook.paths.append(self.path)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/SECRETPATH"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for the session (one per xdist worker), or a skip saying how
    to get one."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip(SKIP_REASON)
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    server = PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty PostgreSQL schema of this test's own."""
    return pg_server.fresh_url()


@pytest.fixture(params=["sqlite", "postgres"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store goes, once per backend: an SQLite file, a PostgreSQL schema (the
    latter in the hardening tier but for tests marked ``pg_smoke``)."""
    if request.param == "sqlite":
        return str(tmp_path / "history.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def shared_sample_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The bundled sample's whole report (charts, page and network columns, as of its newest
    poll), written once per run and shared by the xdist workers (the first to ask writes it,
    under a lock): its folder and the files ``write_report`` returned, relative to it. Tests
    read it and never change it."""
    import fcntl

    import shadeanalytics as sa
    from shadeanalytics.output.report import write_report

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's folder
    out, listing = root / "shared-sample-report", root / "shared-sample-report.json"
    with (root / "shared-sample-report.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not listing.exists():
            files = write_report(sa.read(SAMPLE_DIR), out, include_network=True)
            listing.write_text(json.dumps([f.relative_to(out).as_posix() for f in files]))
    return out, json.loads(listing.read_text())


def store_rows(store: Store, sql: str, *args: Any) -> list[dict[str, Any]]:
    """The rows of one query of ``store``'s own tables, as dicts, whatever its backend (the
    portable SQL of the store's logic: ``?`` placeholders)."""
    with store._backend.snapshot() as session:
        cursor: Any = session.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- how the tiers are cut and ordered ---------------------------------------------------------

#: The slowest modules, slowest first: those of the hardening tier (measured serially), then
#: those of the fast tier (measured in a whole fast run, the time of each module's tests).
#: pyproject's ``--no-loadscope-reorder`` keeps the collection order, so xdist hands these out
#: first and no worker is left running one of them alone at the end (xdist's own order, most
#: tests first, started test_trust last; a module of three slow tests, as test_progress, must
#: not come last either). The other modules follow, most tests first.
_SLOW_FIRST = ("test_hostile.py", "test_fuzz.py", "test_formula_injection.py",
               "test_focus_validator.py", "test_crash.py", "test_hostile_store.py",
               "test_canaries.py", "test_bounds.py",
               "test_plots.py", "test_settled.py", "test_billing.py", "test_docs.py",
               "test_live_cli.py", "test_report_analytics.py", "test_focus.py",
               "test_quality.py", "test_alerts.py", "test_store_files.py",
               "test_focus_stream.py", "test_finops.py", "test_store.py", "test_fastpath.py",
               "test_store_rows.py", "test_api.py", "test_trust.py", "test_cli.py",
               "test_export.py", "test_report.py", "test_progress.py", "test_drift.py",
               "test_htmlreport.py", "test_collect.py", "test_account.py",
               "test_quarantine.py", "test_costs.py", "test_doc_examples.py", "test_demo.py",
               "test_collect_account.py", "test_synthetic.py", "test_resources.py",
               "test_dialects.py", "test_notebooks.py", "test_store_pg.py")


@pytest.hookimpl(tryfirst=True)  # before -m picks the tier
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL half of ``store_at`` tests goes to the hardening tier, but for one
    representative test per store module (``@pytest.mark.pg_smoke``); modules run slowest
    first."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("store_at") == "postgres"
                and item.get_closest_marker("pg_smoke") is None):
            item.add_marker(pytest.mark.hardening)
    counts: dict[str, int] = {}
    for item in items:
        counts[item.path.name] = counts.get(item.path.name, 0) + 1

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        if name in _SLOW_FIRST:
            return (_SLOW_FIRST.index(name), 0)
        return (len(_SLOW_FIRST), -counts[name])

    items.sort(key=rank)  # stable: a module's own tests keep their order


def old_versions_table(kinds: str) -> str:
    """``CREATE TABLE versions`` as the SQLite stores of schemas 1 to 4 made it: ``kinds``,
    the SQL list of the kinds its CHECK allowed (schema 5 dropped that CHECK)."""
    return f"""CREATE TABLE versions (
    version_id         INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ({kinds})),
    resource_id        TEXT NOT NULL,
    parent_id          TEXT,
    valid_from         INTEGER NOT NULL REFERENCES polls (poll_id),
    valid_to           INTEGER REFERENCES polls (poll_id),
    gone               INTEGER NOT NULL DEFAULT 0 CHECK (gone IN (0, 1)),
    status             TEXT,
    payload            TEXT NOT NULL,
    payload_hash       TEXT NOT NULL,
    last_seen_poll     INTEGER NOT NULL REFERENCES polls (poll_id),
    last_seen_at       TEXT NOT NULL,
    last_cost_estimate
)"""


def instance_details(state: State) -> dict[str, dict[str, Any]]:
    """The ``/instances/{id}/info`` response of every standalone instance of ``state``."""
    return {i["id"]: {**i, **state.instance_info_extras.get(i["id"], {})}
            for i in state.instances["instances"]}


def record_state(store: Store, state: State, *, account: bool = False,
                 details: bool = False) -> int:
    """Record the fake API's ``state`` as one poll of ``store``, as the collector would: its
    three lists; with ``account`` every account list too; with ``details`` each standalone
    instance's info response. The poll's id."""
    lists: dict[str, Any] = ({name: getattr(state, name) for name in ACCOUNT_LISTS}
                             if account else {})
    if details:
        lists["instance_details"] = instance_details(state)
    return store.record_poll(state.at, clusters=state.clusters, instances=state.instances,
                             instance_types=state.instance_types, **lists)


def sample_states() -> list[State]:
    """``data/sample`` as polls: one per instant, each endpoint listed at it."""
    by_time: dict[str, dict[str, Any]] = defaultdict(dict)
    for path in sorted(SAMPLE_DIR.iterdir()):
        text = path.read_bytes()
        docs = (
            [orjson.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".jsonl"
            else [orjson.loads(text)]
        )
        for doc in docs:
            by_time[doc["observed_at"]][doc["endpoint"]] = doc["response"]
    names = {
        "/clusters": "clusters",
        "/instances": "instances",
        "/instances/types": "instance_types",
        **{e: name for name, (e, _, _) in ACCOUNT_LISTS.items()},
    }
    states = []
    for at, lists in sorted(by_time.items()):
        given = {names[e]: body for e, body in lists.items()}
        states.append(
            State(
                at=datetime.fromisoformat(at),
                clusters=given.pop("clusters", None),
                instances=given.pop("instances", None),
                instance_types=given.pop("instance_types", None),
                **given,
            )
        )
    return states


#: fields the API leaves null by lifecycle: nulled at random in the generated histories
NULLABLE = ("ip", "ssh_port", "ssh_user", "cloud_assigned_id", "cost_estimate")


def generated_with_nulls(seed: int, polls: int, nulls: float,
                         fields: tuple[str, ...] = NULLABLE) -> list[State]:
    """``synthetic.scenario(seed, polls=polls)`` with each of ``fields`` of every instance
    (listed alone or in a cluster) nulled with probability ``nulls``, seeded by ``seed``."""
    rng = random.Random(seed)
    out = []
    for state in synthetic.scenario(seed, polls=polls):
        clusters, instances = copy.deepcopy(state.clusters), copy.deepcopy(state.instances)
        members = [m for c in clusters["clusters"] for m in c["instances"]]
        for item in [*members, *instances["instances"]]:
            for name in fields:
                if name in item and rng.random() < nulls:
                    item[name] = None
        out.append(State(at=state.at, clusters=clusters, instances=instances,
                         instance_types=state.instance_types))
    return out
