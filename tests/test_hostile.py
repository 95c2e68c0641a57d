"""Hostile servers, files and arguments (issue 12): every run bounded in time and memory, every
failure a clear message, no poll lost.

The collector runs as cron runs it (``python -m shadeanalytics collect`` in a subprocess) against
:class:`~shadeanalytics.testing.fakeapi.HostileServer` on 127.0.0.1; stores are real SQLite files,
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
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from conftest import cli_env, envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.analytics.quality import quality_checks
from shadeanalytics.errors import DataWarning, printable
from shadeanalytics.live.store import Store
from shadeanalytics.output.report import MANIFEST
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, HostileServer

pytestmark = pytest.mark.hardening

KEY = "sk-hostile-test-key-4471"
_T = "2026-11-20T00:00:00Z"
EMPTY = {"clusters": b'{"clusters": []}', "instances": b'{"instances": []}',
         "instance_types": b'{"instance_types": []}'}


#: Runs a command and writes its peak RSS (KiB, from the kernel) to the file argv[1]: measured
#: in a process of its own, so no earlier child of the test run counts.
_PEAK = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
         "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN)"
         ".ru_maxrss)); sys.exit(code)")


def _cli(*args: str, key: str | None = KEY, timeout: float = 60, umask: int | None = None,
         env: dict[str, str] | None = None, peak: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    environment = {**cli_env(key), **(env or {})}
    wrap = [sys.executable, "-c", _PEAK, str(peak)] if peak is not None else []
    return subprocess.run([*wrap, sys.executable, "-m", "shadeanalytics", *args],
                          env=environment,
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


def _collect(db: Path, url: str, *extra: str, timeout: float = 60, peak: Path | None = None
             ) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    run = _cli("collect", "--store", str(db), "--base-url", url, *extra, timeout=timeout,
               peak=peak)
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
        assert took >= 5
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
    peak = tmp_path / "peak-kib"
    with HostileServer({**_routes(), "/v1/instances": HostileServer.gzip_bomb()}) as server:
        run, took = _collect(db, server.url, timeout=120, peak=peak)
    peak_mib = int(peak.read_text()) / 1024
    message = ("GET /instances: 200 OK but the response is larger than 134,217,728 bytes "
               "once decompressed; refused")
    assert run.returncode == 1
    assert _error(run) == f"Error: {message}"
    assert _polls(db) == [(1, "failed", message)]
    assert peak_mib < 600, peak_mib
    print(f"gzip bomb: exit 1 after {took:.2f} s, peak RSS {peak_mib:.0f} MiB")


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
    """A redirect to an unusable URL is a failed poll (exit 75) that names the request."""
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
             "--base-url", slow.url, "--deadline", "12"],
            env={**os.environ, "SHADEFORM_API_KEY": KEY}, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: slow.requests != [])
            with HostileServer(_routes()) as good:
                second, took = _collect(other, good.url, timeout=30)
        finally:
            first.wait(timeout=30)
    assert second.returncode == 3
    assert took < 10  # an interpreter start on a busy machine, not the first run's 12 s deadline
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
    written = sum(1 for path in (tmp_path / "r").rglob("[!.]*") if path.is_file())
    assert report.stdout.startswith(f"wrote {written} files to {tmp_path / 'r'} (1 cluster rows, "
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


def _record(db: Path, at: str, clusters: Any = None, instances: Any = None,
            instance_types: Any = None) -> int:
    with Store(db) as store:
        return store.record_poll(at, clusters=clusters, instances=instances,
                                 instance_types=instance_types)


def test_versions_compare_content_not_formatting(tmp_path: Path) -> None:
    """The same fleet with members, tags and regions in another order and 1432 as 1432.0 is
    no new version (changed 0); a real change still is one."""
    db = tmp_path / "fleet.sqlite"
    members = [make_instance("m-1", tags=["a", "b"]), make_instance("m-2")]
    types = {"instance_types": [{
        "cloud": "hyperstack", "shade_instance_type": "A6000", "cloud_instance_type": "x",
        "hourly_price": 1432, "configuration": {"num_gpus": 1, "memory_in_gb": 12},
        "availability": [{"region": "canada-1", "available": True},
                         {"region": "norway-1", "available": False}]}]}
    _record(db, "2026-11-20T00:00:00Z", {"clusters": [make_cluster("c-1", members)]},
            None, types)
    shuffled = [make_instance("m-2"), make_instance("m-1", tags=["b", "a"])]
    types2 = json.loads(json.dumps(types))
    entry = types2["instance_types"][0]
    entry["hourly_price"] = 1432.0
    entry["availability"].reverse()
    poll = _record(db, "2026-11-20T00:10:00Z", {"clusters": [make_cluster("c-1", shuffled)]},
                   None, types2)
    with Store(db) as store:
        assert (store.poll(poll)["added"], store.poll(poll)["changed"]) == (0, 0)
    entry["hourly_price"] = 1433
    poll = _record(db, "2026-11-20T00:20:00Z", {"clusters": [make_cluster("c-1", shuffled)]},
                   None, types2)
    with Store(db) as store:
        assert (store.poll(poll)["added"], store.poll(poll)["changed"]) == (0, 1)


def _both(tmp_path: Path, responses: dict[str, Any]) -> tuple[sa.Tables, sa.Tables]:
    """The same snapshot loaded from files and from the store (warnings ignored)."""
    docs = [envelope(body, _T, endpoint) for endpoint, body in responses.items()]
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "fleet.sqlite"
    keys = {"/clusters": "clusters", "/instances": "instances",
            "/instances/types": "instance_types"}
    _record(db, _T, **{keys[e]: body for e, body in responses.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        files = sa.read(docs)
        with Store(db, create=False) as store:
            stored = store.read()
    return files, stored


def _rows(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(key, kind="stable").reset_index(drop=True)


def test_an_instance_in_two_clusters_gives_the_same_rows_and_findings(tmp_path: Path) -> None:
    """One rule for files and store: every listing is a row. An instance in two clusters is
    two rows and one duplicate_instance finding from both sources."""
    twice = make_instance("i-dup")
    clusters = {"clusters": [make_cluster("c-1", [twice]), make_cluster("c-2", [twice])]}
    files, stored = _both(tmp_path, {"/clusters": clusters})
    key = ["instance_id", "cluster_id"]
    assert _rows(files.instances, key)[key].to_numpy().tolist() == [["i-dup", "c-1"],
                                                                 ["i-dup", "c-2"]]
    pd.testing.assert_frame_equal(_rows(files.instances, key)[key],
                                  _rows(stored.instances, key)[key])
    found = [quality_checks(t, as_of=_T) for t in (files, stored)]
    for findings in found:
        dup = findings[findings["check"] == "duplicate_instance"]
        assert dup["resource_id"].tolist() == ["i-dup"]
    pd.testing.assert_frame_equal(found[0].reset_index(drop=True),
                                  found[1].reset_index(drop=True))


def test_a_duplicated_instance_type_gives_the_same_rows(tmp_path: Path) -> None:
    """A /instances/types entry listed twice (once changed): the same rows from both."""
    entry = {"cloud": "hyperstack", "shade_instance_type": "A6000",
             "cloud_instance_type": "x", "hourly_price": 100,
             "configuration": {"num_gpus": 1, "memory_in_gb": 12},
             "availability": [{"region": "canada-1", "available": True}]}
    changed = {**entry, "hourly_price": 120}
    for entries in ([entry, entry], [entry, changed]):
        files, stored = _both(tmp_path / str(len(entries)) / entries[1]["hourly_price"].__str__(),
                              {"/instances/types": {"instance_types": entries}})
        columns = list(files.instance_types.columns)
        key = ["cloud", "shade_instance_type", "region", "hourly_price_usd"]
        pd.testing.assert_frame_equal(_rows(files.instance_types, key)[columns],
                                      _rows(stored.instance_types, key)[columns])
    assert sorted(stored.instance_types["hourly_price_usd"].tolist()) == [1.0, 1.2]


def test_control_characters_in_api_values_are_escaped(tmp_path: Path) -> None:
    """An id with a newline and ANSI escapes: the error line, the stored poll error and the
    -v log carry it escaped (\\x1b, \\n), never raw."""
    db = tmp_path / "fleet.sqlite"
    hostile = "i-1\n\x1b[2K\x1b[1AFAKE poll 9 ok\u202e"
    body = orjson.dumps({"clusters": [{**make_cluster(hostile), "instances": 5}]})
    with HostileServer(_routes(clusters=body)) as server:
        run, _ = _collect(db, server.url, "--verbose")
    assert run.returncode == 1
    for text in (run.stderr, run.stdout, *(p[2] for p in _polls(db))):
        assert "\x1b" not in text and "\u202e" not in text
    error = _error(run)
    assert "\\x1b[2K\\x1b[1AFAKE poll 9 ok\\u202e" in error
    assert "i-1\\n" in error
    (polls,) = _polls(db)
    assert polls[2] == error[len("Error: "):]
    assert printable(hostile) == "i-1\\n\\x1b[2K\\x1b[1AFAKE poll 9 ok\\u202e"


def test_warnings_from_files_are_escaped(tmp_path: Path) -> None:
    """A file's hostile id reaches the terminal escaped in a Warning: line too."""
    hostile = "c-\x1b]0;owned\x07"
    docs = [envelope({"clusters": [make_cluster(hostile, [make_instance("i-1")]),
                                   make_cluster(hostile, [make_instance("i-2")])]}, _T)]
    source = tmp_path / "clusters.json"
    source.write_text(json.dumps(docs[0]))
    run = _cli("summary", str(source), "--as-of", _T)
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr
    assert "c-\\x1b]0;owned\\x07" in run.stderr


# -- reports and sources --------------------------------------------------------------------------


def _sources(tmp_path: Path, with_history: bool) -> Path:
    folder = tmp_path / ("hist" if with_history else "one")
    folder.mkdir()
    fleet = _fleet()
    if not with_history:  # a bare response: no dated history, so no timeline files
        (folder / "clusters.json").write_text(json.dumps(fleet["clusters"]))
        return folder
    (folder / "clusters.json").write_text(json.dumps(envelope(fleet["clusters"], _T)))
    if with_history:
        (folder / "instances.json").write_text(json.dumps(
            envelope(fleet["instances"], "2026-11-20T00:10:00Z", "/instances")))
    return folder


def test_a_report_folder_holds_one_report(tmp_path: Path) -> None:
    """A second report into the same folder removes the first one's files it does not write
    again (here timeline.csv, fleet_over_time.csv and their charts), and the manifest lists
    exactly the files there."""
    out = tmp_path / "report"
    first = _cli("report", str(_sources(tmp_path, True)), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert {"timeline.csv", "fleet_over_time.csv", "status_timeline.png"} <= {
        p.name for p in out.iterdir()}
    second = _cli("report", str(_sources(tmp_path, False)), "--out", str(out), "--as-of", _T)
    assert second.returncode == 0, second.stderr
    n = int(second.stdout.split()[1])
    listed = json.loads((out / MANIFEST).read_text())["files"]
    on_disk = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert sorted(on_disk) == sorted([*listed, MANIFEST])
    assert len(listed) == n
    assert not {"timeline.csv", "fleet_over_time.csv", "status_timeline.png",
                "fleet_over_time.png"} & set(listed)


def test_a_folder_with_other_files_is_refused_unless_forced(tmp_path: Path) -> None:
    """report refuses a folder holding files it did not write, unless --force."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    sources = str(_sources(tmp_path, False))
    run = _cli("report", sources, "--out", str(out), "--no-charts", "--as-of", _T)
    assert run.returncode == 1
    assert _error(run) == (f"Error: {out}: holds 1 file(s) no report wrote (notes.txt); nothing "
                           "written: choose an empty or new folder, or pass --force "
                           "(force=True) to write beside them")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    forced = _cli("report", sources, "--out", str(out), "--no-charts", "--force", "--as-of", _T)
    assert forced.returncode == 0, forced.stderr
    assert (out / "notes.txt").read_text() == "mine"
    again = _cli("report", sources, "--out", str(out), "--no-charts", "--force", "--as-of", _T)
    assert again.returncode == 0
    assert (out / "notes.txt").read_text() == "mine"  # never removed: not in the manifest


@pytest.mark.parametrize("as_of", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                                   "2200-01-01T00:00:00Z", "1969-12-31T23:59:59Z"])
@pytest.mark.parametrize(("command", "source"), [
    ("report", "files"), ("report", "store"), ("summary", "files"), ("summary", "store"),
    ("export", "store"),  # export reads the store only
])
def test_dates_outside_the_tables_are_usage_errors(tmp_path: Path, as_of: str, command: str,
                                                   source: str) -> None:
    """Exit 2 before anything is written (no report folder, no export folder)."""
    db = tmp_path / "fleet.sqlite"
    _record(db, _T, **_fleet())
    where = ["--store", str(db)] if source == "store" else [str(_sources(tmp_path, True))]
    out = tmp_path / "out"
    option = {"report": ["--as-of", as_of, "--out", str(out)], "summary": ["--as-of", as_of],
              "export": ["--until", as_of, "--out", str(out)]}[command]
    run = _cli(command, *where, *option)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.rstrip().endswith(
        "the time must be from 1970-01-01T00:00:00Z up to (not including) "
        "2200-01-01T00:00:00Z")
    assert not out.exists()
    assert run.stdout == ""


def test_the_last_date_inside_the_span_works(tmp_path: Path) -> None:
    """1,830 days after the newest snapshot (2026-11-20T00:10) is the last as-of time taken;
    a second later is a usage error naming the bound, with nothing written."""
    sources = str(_sources(tmp_path, True))
    run = _cli("summary", sources, "--as-of", "2031-11-24T00:10:00Z")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    run = _cli("report", sources, "--out", str(out), "--as-of", "2031-11-24T00:10:01Z")
    assert (run.returncode, run.stdout, out.exists()) == (2, "", False)
    assert _error(run) == ("Error: --as-of: more than 1,830 days (5 years) after the newest "
                           "snapshot (2026-11-20T00:10:00Z); nothing written")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "socket"])
def test_sources_that_are_not_regular_files_are_refused(tmp_path: Path, fifo: Path,
                                                        kind: str) -> None:
    """``summary /dev/zero``, a FIFO with no writer, a socket: refused within seconds, in
    little memory, naming the file and what it is."""
    if kind == "socket":
        path = tmp_path / "s.json"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        what = "a socket"
    else:
        path = Path("/dev/zero") if kind == "/dev/zero" else fifo
        what = "a character device" if kind == "/dev/zero" else "a FIFO"
    began = time.monotonic()
    peak = tmp_path / "peak-kib"
    run = _cli("summary", str(path), timeout=20, peak=peak)
    took = time.monotonic() - began
    assert run.returncode == 1
    assert _error(run) == f"Error: {path}: not a regular file ({what}); refused"
    assert took < 10
    assert int(peak.read_text()) < 300 * 1024
    print(f"summary {kind}: exit 1 after {took:.2f} s")


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "big", "bom", "bom-bad"])
def test_api_key_files_are_read_safely(tmp_path: Path, fifo: Path, kind: str) -> None:
    """--api-key-file: a device or FIFO is refused, a file over 64 KiB too, a BOM is
    stripped; a bad key names the file, not SHADEFORM_API_KEY."""
    db = tmp_path / "fleet.sqlite"
    path = {"/dev/zero": Path("/dev/zero"), "fifo": fifo}.get(kind, tmp_path / "key")
    if kind == "big":
        path.write_bytes(b"k" * (64 * 1024 + 1))
    elif kind == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + KEY.encode() + b"\n")
    elif kind == "bom-bad":
        path.write_bytes(b"\xef\xbb\xbfsk-with a space\n")
    with FakeShadeformAPI(api_key=KEY) as api:
        run = _cli("collect", "--store", str(db), "--base-url", api.url, "--api-key-file",
                   str(path), key=None, timeout=20)
    if kind == "bom":
        assert run.returncode == 0, run.stderr
        return
    expected = {
        "/dev/zero": f"{path}: cannot read the API key file (not a regular file (a character "
                     "device); refused)",
        "fifo": f"{path}: cannot read the API key file (not a regular file (a FIFO); refused)",
        "big": f"{path}: cannot read the API key file (larger than the 65,536-byte limit for "
               "a key file; refused)",
        "bom-bad": "the Shadeform API key contains whitespace, control or non-ASCII "
                   f"characters; check --api-key-file {path}",
    }[kind]
    assert run.returncode == 1
    assert _error(run) == f"Error: {expected}"
    assert not db.exists()


@pytest.mark.parametrize("use_file", [True, False])
def test_a_401_names_where_the_key_came_from(tmp_path: Path, use_file: bool) -> None:
    """A 401 from the API names where the wrong key came from, never the key."""
    db = tmp_path / "fleet.sqlite"
    key_file = tmp_path / "key"
    key_file.write_text("sk-wrong-1234\n")
    with FakeShadeformAPI(api_key=KEY) as api:
        if use_file:
            run = _cli("collect", "--store", str(db), "--base-url", api.url, "--api-key-file",
                       str(key_file), key=None)
        else:
            run = _cli("collect", "--store", str(db), "--base-url", api.url,
                       key="sk-wrong-1234")
    source = f"--api-key-file {key_file}" if use_file else "SHADEFORM_API_KEY"
    assert run.returncode == 1
    assert _error(run) == ("Error: GET /clusters: 401 Unauthorized; the API key was rejected, "
                           f"check {source}")


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o027])
def test_one_permission_rule_for_everything_written(tmp_path: Path, umask: int) -> None:
    """Under any umask: files with addresses (the store, its -wal/-shm, instances.csv and
    clusters.csv with --include-network, Parquet with --include-network) are 0600 & ~umask;
    every other file (CSV, PNG, Parquet, the manifest) 0666 & ~umask."""
    db = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY) as api:
        run = _cli("collect", "--store", str(db), "--base-url", api.url, umask=umask)
    assert run.returncode == 0, run.stderr
    private, public = 0o600 & ~umask, 0o666 & ~umask
    assert stat.S_IMODE(db.stat().st_mode) == private
    for networked in (False, True):
        flag = ["--include-network"] if networked else []
        out, export = tmp_path / f"r{networked}", tmp_path / f"x{networked}"
        report = _cli("report", "--store", str(db), "--out", str(out), *flag, umask=umask)
        exported = _cli("export", "--store", str(db), "--out", str(export), *flag, umask=umask)
        assert report.returncode == 0 and exported.returncode == 0, report.stderr
        for path in (p for p in out.rglob("*") if p.is_file()):  # versions/ included
            holds_network = networked and path.name in (
                "clusters.csv", "instances.csv", "clusters.parquet", "instances.parquet")
            assert stat.S_IMODE(path.stat().st_mode) == (private if holds_network else public), \
                path
        for path in export.rglob("*.parquet"):
            assert stat.S_IMODE(path.stat().st_mode) == (private if networked else public), path


@pytest.mark.parametrize("top", ["0", "-1", "x"])
def test_top_must_be_positive(tmp_path: Path, top: str) -> None:
    """--top below 1 (or not a number) is a usage error (exit 2)."""
    run = _cli("summary", str(_sources(tmp_path, False)), "--top", top)
    assert run.returncode == 2
    assert run.stderr.rstrip().endswith(
        "argument --top: expected a whole number of at least 1")
    assert run.stdout == ""


def test_export_since_after_until_leaves_the_export(tmp_path: Path) -> None:
    """export with --since after --until exits 2 and leaves the earlier export as it was."""
    db = tmp_path / "fleet.sqlite"
    _record(db, _T, **_fleet())
    out = tmp_path / "x"
    assert _cli("export", "--store", str(db), "--out", str(out)).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    run = _cli("export", "--store", str(db), "--out", str(out), "--since",
               "2026-11-21T00:00:00Z", "--until", "2026-11-20T00:00:00Z")
    assert run.returncode == 2
    assert _error(run) == ("Error: --since is later than --until: nothing to export (the "
                           "folder is left as it was)")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_full_disk_in_an_export_names_the_file(tmp_path: Path) -> None:
    """Parquet export onto a full tmpfs: exit 1, the file named, "No space left on device"."""
    db = tmp_path / "fleet.sqlite"
    _record(db, _T, **_fleet())
    with _tmpfs(tmp_path / "mnt", "1m") as mnt:
        filler = mnt / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        run = _cli("export", "--store", str(db), "--out", str(mnt / "x"))
        assert run.returncode == 1
        error = _error(run)
        # a Parquet part, written by the one atomic writer (its message), or a folder
        assert re.fullmatch(rf"Error: {re.escape(str(mnt / 'x'))}/\S+: (cannot write \(No space "
                            r"left on device\); the previous file, if any, is unchanged|No space "
                            r"left on device)", error), error


@pytest.mark.parametrize("command", ["summary", "report", "export"])
def test_a_store_that_is_not_a_regular_file_is_refused(tmp_path: Path, fifo: Path,
                                                       command: str) -> None:
    """A device or FIFO given as --store is refused with one Error line."""
    out = ["--out", str(tmp_path / "o")] if command != "summary" else []
    for path in (Path("/dev/zero"), fifo):
        run = _cli(command, "--store", str(path), *out, timeout=20)
        assert run.returncode == 1
        assert _error(run) == (f"Error: {path}: not a regular file (a device, FIFO or "
                               "socket); refused")


def test_each_attempt_is_capped_inside_the_deadline() -> None:
    """attempt_cap=1 against a trickling body: each attempt is cut after 1 s and retried;
    after 3 attempts a TransportError, well inside the 20 s deadline."""
    from shadeanalytics.errors import TransportError
    from shadeanalytics.live.client import ClientPolicy, ShadeformClient

    with HostileServer({"/v1/clusters": HostileServer.trickle_body(b"{}", 0.2)}) as server:
        began = time.monotonic()
        policy = ClientPolicy(attempt_cap=1.0, deadline=began + 20, sleep=lambda s: None)
        client = ShadeformClient(KEY, base_url=server.url, policy=policy)
        with client, pytest.raises(TransportError) as caught:
            client.clusters()
        took = time.monotonic() - began
    assert str(caught.value) == ("GET /clusters: no complete response within 1 s after "
                                 "3 attempts")
    assert server.requests == ["/v1/clusters"] * 3
    assert 3 <= took < 12, took  # inside the 20 s deadline, with room for a busy machine


def test_summary_tables_escape_hostile_ids(tmp_path: Path) -> None:
    """``summary --by cluster_id`` prints a cluster id with an ANSI escape escaped."""
    hostile = "c-\x1b[31mred"
    source = tmp_path / "clusters.json"
    source.write_text(json.dumps(envelope(
        {"clusters": [make_cluster(hostile, [make_instance("i-1")])]}, _T)))
    run = _cli("summary", str(source), "--by", "cluster_id", "--as-of", _T)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout
    assert "c-\\x1b[31mred" in run.stdout


def test_duplicate_listings_in_another_order_are_no_new_version(tmp_path: Path) -> None:
    """An instance in clusters c-1 and c-2 (another name in each), then the clusters listed
    the other way round: the same versions (added 0, changed 0)."""
    db = tmp_path / "fleet.sqlite"
    one, two = make_instance("i-dup", name="in-c1"), make_instance("i-dup", name="in-c2")
    c1, c2 = make_cluster("c-1", [one]), make_cluster("c-2", [two])
    _record(db, "2026-11-20T00:00:00Z", {"clusters": [c1, c2]})
    poll = _record(db, "2026-11-20T00:10:00Z", {"clusters": [c2, c1]})
    with Store(db) as store, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        row = store.poll(poll)
        tables = store.read()
    assert [str(w.message).split(" (first at")[0] for w in caught] == [
        "$: the same id appears twice in one snapshot with different content; both rows kept"]
    assert (row["added"], row["changed"], row["gone"], row["instances"]) == (0, 0, 0, 1)
    latest = tables.latest().instances.sort_values("cluster_id")
    assert latest[["cluster_id", "name"]].to_numpy().tolist() == [["c-1", "in-c1"],
                                                                 ["c-2", "in-c2"]]
