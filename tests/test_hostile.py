"""Hostile servers, files and arguments (issue 12): every run bounded in time and memory, every
failure a clear message, no poll lost.

The collector runs as cron runs it (``python -m shadeanalytics collect`` in a subprocess) against
:class:`~shadeanalytics.testing.HostileServer` on 127.0.0.1; stores are real SQLite files,
sources real files, FIFOs and devices; a full disk and a read-only mount are real tmpfs mounts
(those tests need root and skip without it). Every subprocess has a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from conftest import envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.errors import DataWarning, printable
from shadeanalytics.quality import quality_checks
from shadeanalytics.report import MANIFEST, write_report
from shadeanalytics.store import Store
from shadeanalytics.testing import FakeShadeformAPI, HostileServer

pytestmark = pytest.mark.hardening

KEY = "sk-hostile-test-key-4471"
_T = "2026-11-20T00:00:00Z"
EMPTY = {"clusters": b'{"clusters": []}', "instances": b'{"instances": []}',
         "instance_types": b'{"instance_types": []}'}


def _cli(*args: str, key: str | None = KEY, timeout: float = 60, umask: int | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("SHADEFORM_API_KEY", "SHADEFORM_BASE_URL")}
    if key is not None:
        environment["SHADEFORM_API_KEY"] = key
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "shadeanalytics", *args], env=environment,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def _error(run: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error:`` line of a failed run (no traceback)."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def _polls(db: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT poll_id, outcome, error FROM polls ORDER BY poll_id"
                            ).fetchall()


def _routes(**bodies: bytes) -> dict[str, Any]:
    """Answers for the three list endpoints: ``bodies`` (raw bytes) or an empty list."""
    paths = {"clusters": "/v1/clusters", "instances": "/v1/instances",
             "instance_types": "/v1/instances/types"}
    return {paths[name]: HostileServer.json(200, bodies.get(name, EMPTY[name]))
            for name in paths}


def _collect(db: Path, url: str, *extra: str, timeout: float = 60
             ) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    run = _cli("collect", "--store", str(db), "--base-url", url, *extra, timeout=timeout)
    return run, time.monotonic() - began


# -- time and memory -----------------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["trickle_body", "trickle_headers", "endless_body"])
def test_deadline_holds_whatever_the_server_does(tmp_path: Path, behaviour: str) -> None:
    """``collect --deadline 5`` against a server trickling its body or headers (one byte a
    second) ends within 15 s with exit 75 and a failed poll naming the deadline; an endless
    body is refused at the size cap (exit 1), long before."""
    db = tmp_path / "fleet.sqlite"
    serve = {"trickle_body": HostileServer.trickle_body(b'{"instances": []}'),
             "trickle_headers": HostileServer.trickle_headers(),
             "endless_body": HostileServer.endless_body()}[behaviour]
    with HostileServer({**_routes(), "/v1/instances": serve}) as server:
        run, took = _collect(db, server.url, "--deadline", "5", timeout=30)
    assert took < 15, took
    if behaviour == "endless_body":
        assert run.returncode == 1
        message = ("GET /instances: 200 OK but the response is larger than 134,217,728 bytes "
                   "on the wire; refused")
    else:
        assert run.returncode == 75
        assert 5 <= took
        message = ("GET /instances: the run deadline passed before the response was complete; "
                   "gave up")
    assert _error(run) == f"Error: {message}"
    assert _polls(db) == [(1, "failed", message)]
    print(f"{behaviour}: exit {run.returncode} after {took:.2f} s")


def test_the_next_run_is_not_locked_out(tmp_path: Path) -> None:
    """Once a trickled run has ended at its deadline, the next cron run gets the lock."""
    db = tmp_path / "fleet.sqlite"
    with HostileServer({**_routes(), "/v1/clusters": HostileServer.trickle_body(b"{}")}) as bad:
        first, _ = _collect(db, bad.url, "--deadline", "2", timeout=30)
    with HostileServer(_routes()) as good:
        second, _ = _collect(db, good.url, timeout=30)
    assert (first.returncode, second.returncode) == (75, 0)
    assert [p[1] for p in _polls(db)] == ["failed", "ok"]


def test_a_gzip_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """1 MB of gzip expanding to 1 GiB: refused at the 128 MiB cap, exit 1, a failed poll, and
    the process stays under 600 MiB peak RSS (measured by the kernel: ru_maxrss of the child)."""
    db = tmp_path / "fleet.sqlite"
    with HostileServer({**_routes(), "/v1/instances": HostileServer.gzip_bomb()}) as server:
        before = _children_maxrss()
        run, took = _collect(db, server.url, timeout=120)
    peak_mib = _children_maxrss() / 1024
    message = ("GET /instances: 200 OK but the response is larger than 134,217,728 bytes "
               "once decompressed; refused")
    assert run.returncode == 1
    assert _error(run) == f"Error: {message}"
    assert _polls(db) == [(1, "failed", message)]
    assert before < 600 * 1024, "an earlier child already used more; measure alone"
    assert peak_mib < 600, peak_mib
    print(f"gzip bomb: exit 1 after {took:.2f} s, peak RSS {peak_mib:.0f} MiB")


def _children_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children


# -- odd values -------------------------------------------------------------------------------


def test_a_64_bit_cost_estimate_is_stored(tmp_path: Path) -> None:
    """``"cost_estimate": 18446744073709551615`` (valid JSON, past SQLite's INTEGER): stored,
    the payload keeps the exact number, the column a float; the store reads it back."""
    db = tmp_path / "fleet.sqlite"
    body = (b'{"instances": [' + orjson.dumps(make_instance("i-big"))[:-1]
            + b', "cost_estimate": 18446744073709551615}]}')
    with HostileServer(_routes(instances=body)) as server:
        run, _ = _collect(db, server.url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("poll 1 ok in ")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        payload, cost = conn.execute("SELECT payload, last_cost_estimate FROM versions").fetchone()
    assert '"cost_estimate":18446744073709551615' in payload
    assert cost == 1.8446744073709552e19
    with Store(db, create=False) as store:
        tables = store.read()
    assert tables.instances["cost_estimate_usd"].tolist() == [1.8446744073709552e19]


def test_a_number_past_a_double_is_a_failed_poll(tmp_path: Path) -> None:
    """``1e400`` is valid JSON no double holds: a recorded failed poll and exit 1."""
    db = tmp_path / "fleet.sqlite"
    body = b'{"instances": [{"id": "i-1", "cost_estimate": 1e400}]}'
    with HostileServer(_routes(instances=body)) as server:
        run, _ = _collect(db, server.url)
    assert run.returncode == 1
    message = "GET /instances: 200 OK but the body holds a number no double can hold"
    assert _error(run) == f"Error: {message}"
    assert _polls(db) == [(1, "failed", message)]


@pytest.mark.parametrize("value", ["Mon, 01 Jan 99999999999 00:00:00 GMT", "1e999",
                                   "Fri, 31 Dec 9999 23:59:59 GMT", "-5", "nan"])
def test_odd_retry_after_values_are_a_failed_poll(tmp_path: Path, value: str) -> None:
    """A 503 with an unusable or absurd Retry-After: no traceback; the retries end in a
    recorded failed poll and exit 75."""
    db = tmp_path / "fleet.sqlite"
    busy = HostileServer.json(503, b'{"error": "busy"}', {"Retry-After": value})
    with HostileServer({**_routes(), "/v1/clusters": busy}) as server:
        run, took = _collect(db, server.url, "--deadline", "20")
    assert run.returncode == 75
    assert _error(run).startswith("Error: GET /clusters: 503 Service Unavailable")
    assert [p[1] for p in _polls(db)] == ["failed"]
    assert took < 20


@pytest.mark.parametrize("location", ["http://127.0.0.1:abc/v1/clusters",
                                      "http://127.0.0.1:99999/v1/clusters",
                                      "http://user:pw@127.0.0.1/v1/clusters",
                                      "http://[::1/v1/clusters"])
def test_a_redirect_to_a_bad_url_is_a_failed_poll(tmp_path: Path, location: str) -> None:
    db = tmp_path / "fleet.sqlite"
    moved = HostileServer.json(302, b"", {"Location": location})
    with HostileServer({**_routes(), "/v1/clusters": moved}) as server:
        run, _ = _collect(db, server.url)
    message = ("GET /clusters: refused a redirect to an unusable URL" if "[" in location
               else "GET /clusters: refused a 302 Found redirect to an unusable URL")
    assert run.returncode == 75
    assert _error(run) == f"Error: {message}"
    assert _polls(db) == [(1, "failed", message)]


@pytest.mark.parametrize(("url", "reason"), [
    ("https://user:secret-pw@api.example/v1",
     "the base URL must not carry credentials, a query or a fragment"),
    ("https://api.example/v1?key=1",
     "the base URL must not carry credentials, a query or a fragment"),
    ("ftp://api.example/v1", "the base URL must be an absolute http(s) URL with a host"),
    ("http://127.0.0.1:abc/v1", "the base URL has an unusable host or port"),
    ("http://127.0.0.1:0/v1", "the base URL has an unusable host or port"),
])
def test_a_bad_base_url_is_a_usage_error_leaving_nothing(tmp_path: Path, url: str,
                                                         reason: str) -> None:
    """Exit 2, one line naming the option (the URL not quoted: it may hold a password), and
    no store, no lock file: the folder stays empty."""
    db = tmp_path / "fleet.sqlite"
    run = _cli("collect", "--store", str(db), "--base-url", url)
    assert run.returncode == 2
    assert _error(run) == f"Error: --base-url: {reason}"
    assert "secret-pw" not in run.stderr
    assert list(tmp_path.iterdir()) == []
    run = _cli("collect", "--store", str(db), env={"SHADEFORM_BASE_URL": url})
    assert run.returncode == 2
    assert _error(run) == f"Error: SHADEFORM_BASE_URL: {reason}"
    assert list(tmp_path.iterdir()) == []


def test_a_clock_that_went_backwards_is_recorded_and_never_blocks(tmp_path: Path) -> None:
    """A poll dated 2036 (a clock ahead at boot), then the clock fixed: the next runs succeed,
    each with a warning naming both times, kept in the store with its poll."""
    db = tmp_path / "fleet.sqlite"
    with Store(db) as store:
        store.record_poll("2036-01-01T00:00:00Z", clusters={"clusters": []},
                          instances={"instances": []}, instance_types={"instance_types": []})
    with HostileServer(_routes()) as server:
        runs = [_collect(db, server.url)[0] for _ in range(2)]
    for poll_id, run in enumerate(runs, start=2):
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"poll {poll_id} ok in ")
        warning = re.fullmatch(
            r"Warning: the clock went backwards: this run started at (\S+), before poll 1 "
            r"observed at 2036-01-01T00:00:00.000000Z; recorded at this run's time \(the "
            r"earlier poll was dated by a clock that was ahead\)\n", run.stderr)
        assert warning is not None, run.stderr
        assert pd.Timestamp(warning.group(1)) < pd.Timestamp("2030-01-01T00:00:00Z")
    with Store(db, create=False) as store:
        assert [p[1] for p in _polls(db)] == ["ok", "ok", "ok"]
        kept = store.poll_warnings()
    assert sorted(kept) == [2, 3]
    assert kept[2].startswith("the clock went backwards: this run started at ")


# -- the store ------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["hard", "sym"])
def test_two_paths_to_one_store_are_one_lock(tmp_path: Path, link: str) -> None:
    """While a run through one path holds the store (its server trickles), a run through a
    hard link or symlink to the same file exits 3 at once and writes nothing."""
    db = tmp_path / "fleet.sqlite"
    with Store(db):
        pass
    other = tmp_path / "other.sqlite"
    (os.link if link == "hard" else os.symlink)(db, other)
    with HostileServer({**_routes(), "/v1/clusters": HostileServer.trickle_body(b"{}")}) as slow:
        first = subprocess.Popen(
            [sys.executable, "-m", "shadeanalytics", "collect", "--store", str(db),
             "--base-url", slow.url, "--deadline", "6"],
            env={**os.environ, "SHADEFORM_API_KEY": KEY}, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: slow.requests != [])
            with HostileServer(_routes()) as good:
                second, took = _collect(other, good.url, timeout=30)
        finally:
            first.wait(timeout=30)
    assert second.returncode == 3
    assert took < 5
    assert _error(second) == (f"Error: {other}: another collector is running (it holds the "
                              "store's lock); this run wrote nothing")
    assert first.returncode == 75
    assert [p[1] for p in _polls(db)] == ["failed"]


def _wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    """A real tmpfs mounted at ``path`` (root only; the test skips otherwise)."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr!r}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _fleet(price: int = 210) -> dict[str, Any]:
    members = [make_instance(f"m-{k}", hourly_price=price) for k in range(2)]
    return {"clusters": {"clusters": [make_cluster("c-1", members)]},
            "instances": {"instances": [make_instance("i-1", hourly_price=price)]},
            "instance_types": {"instance_types": []}}


def test_a_store_on_a_read_only_mount_reads(tmp_path: Path) -> None:
    """summary, report and export read a store on a read-only mount (SQLite opened read-only,
    immutable when it cannot create its -shm file); collect says it cannot write."""
    with _tmpfs(tmp_path / "mnt") as mnt:
        db = mnt / "fleet.sqlite"
        with Store(db) as store:
            store.record_poll(_T, **_fleet())
        copy = tmp_path / "copy.sqlite"
        copy.write_bytes(db.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, timeout=30)
        summary = _cli("summary", "--store", str(db), "--as-of", _T)
        report = _cli("report", "--store", str(db), "--out", str(tmp_path / "r"), "--as-of", _T,
                      "--no-charts")
        export = _cli("export", "--store", str(db), "--out", str(tmp_path / "x"))
        with HostileServer(_routes()) as server:
            collect, _ = _collect(db, server.url)
        assert sorted(p.name for p in mnt.iterdir()) == ["fleet.sqlite"]
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout == _cli("summary", "--store", str(copy), "--as-of", _T).stdout
    assert "$" in summary.stdout
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"wrote 13 files to {tmp_path / 'r'} (1 cluster rows, "
                                    "3 instance rows; as of 2026-11-20T00:00:00Z)")
    assert export.returncode == 0, export.stderr
    assert collect.returncode == 1
    assert _error(collect) == f"Error: {db}: cannot open the lock file (Read-only file system)"


def test_a_full_disk_names_the_store_and_the_cause(tmp_path: Path) -> None:
    """A store on a full file system: the poll fails with a message naming the store and
    "no space left on device" (not SQLite's "disk I/O error"), exit 1, and the store keeps
    every earlier poll."""
    with _tmpfs(tmp_path / "mnt", "2m") as mnt:
        db = mnt / "fleet.sqlite"
        with Store(db) as store:
            store.record_poll(_T, **_fleet())
        filler = mnt / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        body = orjson.dumps({"instances": [make_instance(f"n-{k}", name="x" * 2000)
                                           for k in range(200)]})
        with HostileServer(_routes(instances=body)) as server:
            run, _ = _collect(db, server.url)
        assert run.returncode == 1
        error = _error(run)
        assert error.startswith(f"Error: {db}: ")
        assert error.endswith("no space left on device (the store is unchanged)")
        filler.unlink()
        with Store(db, create=False) as store:
            assert len(store.read().instances) == 3
