"""Crashes and concurrency: the collector SIGKILLed 1,000 times, a reader running reports while
another process writes 500 polls, and disk-full / I/O errors injected into report writing."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import envelope, kill_loop, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics import _files
from shadeanalytics.cli import main
from shadeanalytics.errors import DataWarning, ReportError
from shadeanalytics.live.store import Store
from shadeanalytics.output import report as report_module
from shadeanalytics.output.report import write_report

ROOT = Path(__file__).resolve().parents[1]

# -- (a) kill -9, 1,000 times ---------------------------------------------------------------------

_KILLS = 1000
_LOOPS = 4  # the kills run as 4 independent loops of 250 (own store, fake API and zygote)

#: kill, disk-full and concurrency runs: the long tier
pytestmark = pytest.mark.hardening


@pytest.mark.hardening
def test_collector_sigkilled_1000_times_leaves_a_consistent_store(tmp_path: Path) -> None:
    """SIGKILL at random points of a collecting child, 1,000 times (4 concurrent loops of 250,
    each with its own store), with conftest's ``kill_loop``: after every kill
    integrity_check is ok, every poll reported committed is present, no poll is partial, the
    lock is free (no stale lock), and the next run succeeds."""
    per_loop = _KILLS // _LOOPS
    folders = [tmp_path / f"loop-{k}" for k in range(_LOOPS)]
    for folder in folders:
        folder.mkdir()
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=_LOOPS) as pool:
        runs = [pool.submit(kill_loop, folder, per_loop, 1000 + k)
                for k, folder in enumerate(folders)]
        for run in runs:
            run.result()  # re-raises the first failed check of that loop
    elapsed = time.monotonic() - began
    print(f"{per_loop * _LOOPS} kills in {elapsed:.1f} s")
    polls = 0
    for folder in folders:
        with Store(folder / "fleet.sqlite", create=False) as store:
            assert store.integrity_check() == "ok"
            log = store.polls()
        assert set(log["outcome"]) == {"ok"}
        polls += len(log)
    assert polls >= _KILLS  # a successful run after each kill, at least


# -- (b) a reader while another process writes 500 polls -----------------------------------------

_POLLS = 500
_WRITER = textwrap.dedent("""
    import random, sys, time
    from datetime import UTC, datetime, timedelta
    from shadeanalytics.testing import synthetic
    from shadeanalytics.live.store import Store

    path, polls = sys.argv[1], int(sys.argv[2])
    history = synthetic.fleet_history(polls=17)
    types = synthetic.instance_types()
    t0 = datetime(2026, 11, 16, tzinfo=UTC)
    rng = random.Random(5)
    with Store(path) as store:
        for i in range(polls):
            poll = history[i % len(history)]
            # every fifth poll reads the marketplace too: polls of different endpoint sets
            store.record_poll(t0 + timedelta(minutes=5 * i), clusters=poll["clusters"],
                              instances=poll["instances"],
                              instance_types=types if i % 5 == 0 else None)
            print(i + 1, flush=True)
            time.sleep(rng.uniform(0, 0.03))  # back to back, or a little apart
""")


def _check_snapshot(store: Store, tables: sa.Tables) -> int:
    """The newest successful poll in ``tables`` is whole: a row dated by it for every cluster
    and instance it counted, and every earlier successful poll is there too. Returns its
    poll_id."""
    ok = tables.polls.loc[tables.polls["ok"].to_numpy(dtype=bool), "observed_at"]
    newest = ok.max()
    log = store.polls()  # a later snapshot: the poll's own row does not change
    row = log[(log["observed_at"] == newest) & (log["outcome"] == "ok")]
    assert len(row) == 1
    row = row.iloc[0]
    clusters = tables.clusters.loc[tables.clusters["observed_at"] == newest, "cluster_id"]
    instances = tables.instances.loc[tables.instances["observed_at"] == newest, "instance_id"]
    assert clusters.nunique() == row["clusters"], "a partial poll: clusters missing"
    assert instances.nunique() == row["instances"], "a partial poll: instances missing"
    earlier = log[(log["poll_id"] <= row["poll_id"]) & (log["outcome"] == "ok")]
    assert ok.nunique() == len(earlier), "a committed poll is missing from the snapshot"
    return int(row["poll_id"])


@pytest.mark.hardening
def test_reader_runs_reports_while_another_process_writes_500_polls(tmp_path: Path) -> None:
    """A writer process records 500 polls (synthetic fleet, back to back or a few ms apart)
    while this process reads in a loop (Store.read, analytics, write_report without charts):
    every read is a whole snapshot (the newest poll has all its versions, no committed poll
    missing), no StoreError, no "database is locked"."""
    path = tmp_path / "fleet.sqlite"
    with Store(path):
        pass  # created before the reader starts
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(_POLLS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT)
    written: list[int] = []
    lines = writer.stdout
    assert lines is not None
    pump = threading.Thread(target=lambda: written.extend(int(line) for line in lines),
                            daemon=True)
    pump.start()
    seen: list[int] = []
    reports = 0
    try:
        while not written:
            assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
            time.sleep(0.01)
        while writer.poll() is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                with Store(path, create=False) as store:
                    tables = store.read()
                    seen.append(_check_snapshot(store, tables))
                if len(seen) % 3 == 0:
                    as_of = tables.polls["observed_at"].max()
                    write_report(tables, tmp_path / "report", as_of=as_of, charts=False)
                    reports += 1
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=60)
        pump.join(timeout=10)
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert written[-1] == _POLLS
    distinct = sorted(set(seen))
    print(f"{len(seen)} reads ({reports} reports) saw {len(distinct)} different newest polls "
          f"while {_POLLS} polls were written")
    assert len(seen) >= 8 and len(distinct) >= 5 and reports >= 2, (len(seen), distinct)
    assert seen == sorted(seen)  # time only moves forward
    with Store(path, create=False) as store:
        assert store.integrity_check() == "ok"
        assert len(store.polls()) == _POLLS
        assert _check_snapshot(store, store.read()) == _POLLS


# -- (c) disk full and I/O errors in report writing ----------------------------------------------

_AT = "2026-11-20T00:00:00Z"


def _tables(price: int) -> sa.Tables:
    members = [make_instance(f"m-{k}", hourly_price=price) for k in range(2)]
    docs = [envelope({"clusters": [make_cluster("c-1", members)]}, _AT),
            envelope({"instances": [make_instance("i-1", hourly_price=price, tags=["t"])]}, _AT,
                     "/instances")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return sa.read(docs)


def _target(folder: Path, temp: str) -> str:
    """The report file a temp file becomes: ``versions/.NAME.parquet.XXXX.tmp`` ->
    ``versions/NAME.parquet`` (mkstemp's random part holds no dot)."""
    path = Path(temp)
    return (path.parent / path.name[1:].rsplit(".", 2)[0]).relative_to(folder).as_posix()


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a report folder (``versions/`` included) by its path in the folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _full_mkstemp(fail_at: int, calls: list[str],
                  kind: str = "") -> Callable[..., tuple[int, str]]:
    """``tempfile.mkstemp`` whose ``fail_at``-th call (1-based) for a file whose name ends with
    ``kind`` (any file by default) returns a descriptor on /dev/full: the temp file exists, and
    every write to it fails with ENOSPC from the kernel."""
    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = tempfile.mkstemp(*args, **kwargs)
        if not kwargs.get("prefix", "").endswith(f"{kind}."):
            return fd, name
        calls.append(name)
        if len(calls) == fail_at:
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, name
    return mkstemp


class _OsWithFailingFsync:
    """``os`` as the atomic writer (``_files``) sees it, except ``fsync``, which fails with
    EIO on its Nth call."""

    def __init__(self, fail_at: int) -> None:
        self.calls = 0
        self.fail_at = fail_at

    def fsync(self, fd: int) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _previous_report(tmp_path: Path
                     ) -> tuple[Path, dict[str, bytes], sa.Tables, dict[str, bytes]]:
    """A complete report in ``report/``, its bytes, the tables of the next run (other prices:
    other bytes) and the bytes of their complete report (written elsewhere)."""
    out = tmp_path / "report"
    write_report(_tables(210), out, as_of=_AT, charts=False)
    tables = _tables(999)
    write_report(tables, tmp_path / "new", as_of=_AT, charts=False)
    new = _snapshot(tmp_path / "new")
    assert new["instances.csv"] != _snapshot(out)["instances.csv"]
    return out, _snapshot(out), tables, new


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fail_at", [1, 2, 5, 12])
def test_disk_full_in_write_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   fail_at: int) -> None:
    """ENOSPC from the kernel (/dev/full) on the Nth report file: ReportError naming that file
    and the cause, that file byte-identical to the previous report, the files before it new
    and complete, the ones after it untouched, no temp file left, no descriptor leaked."""
    out, before, tables, new = _previous_report(tmp_path)
    calls: list[str] = []
    monkeypatch.setattr(_files, "tempfile",
                        SimpleNamespace(mkstemp=_full_mkstemp(fail_at, calls)))
    fds = _open_fds()
    with pytest.raises(ReportError) as caught:
        write_report(tables, out, as_of=_AT, charts=False)
    assert _open_fds() == fds
    assert len(calls) == fail_at
    failed = _target(out, calls[-1])
    message = str(caught.value)
    assert message.startswith(f"{out / failed}: cannot write (No space left on device)")
    assert "previous file" in message
    after = _snapshot(out)
    assert set(after) == set(before), "a temp file was left behind"
    assert after[failed] == before[failed]
    written = [_target(out, c) for c in calls[:-1]]
    for name, data in after.items():  # each file whole: the new one if written, else the old
        assert data == (new[name] if name in written else before[name]), name
    monkeypatch.undo()
    write_report(tables, out, as_of=_AT, charts=False)  # the next run, with space, succeeds
    assert _snapshot(out) == new


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_on_a_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the second PNG of a report with charts: ReportError naming it, the previous
    chart byte-identical, no temp file left."""
    out = tmp_path / "report"
    write_report(_tables(210), out, as_of=_AT)
    before = _snapshot(out)
    calls: list[str] = []
    monkeypatch.setattr(_files, "tempfile",
                        SimpleNamespace(mkstemp=_full_mkstemp(2, calls, ".png")))
    with pytest.raises(ReportError) as caught:
        write_report(_tables(999), out, as_of=_AT)
    failed = Path(calls[-1]).name.split(".")[1] + ".png"
    assert str(caught.value).startswith(f"{out / failed}: cannot write (No space left on device)")
    after = _snapshot(out)
    assert set(after) == set(before)
    assert after[failed] == before[failed]


@pytest.mark.parametrize("fail_at", [1, 3, 9])
def test_eio_on_fsync_in_write_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      fail_at: int) -> None:
    """EIO from fsync on the Nth file: ReportError naming it, the previous file byte-identical,
    no temp file left."""
    out, before, tables, _ = _previous_report(tmp_path)
    fake_os = _OsWithFailingFsync(fail_at)
    monkeypatch.setattr(_files, "os", fake_os)
    with pytest.raises(ReportError, match=r"cannot write \(Input/output error\)") as caught:
        write_report(tables, out, as_of=_AT, charts=False)
    assert fake_os.calls == fail_at
    failed = Path(str(caught.value).split(":", 1)[0]).relative_to(out).as_posix()
    assert failed in before
    after = _snapshot(out)
    assert set(after) == set(before)
    assert after[failed] == before[failed]


def _cli(args: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(args, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_cli_report_on_a_full_disk_and_on_eio(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``shadeanalytics report`` on a full disk, then with EIO on fsync: exit 1, nothing on
    stdout, exactly one ``Error:`` line naming the file, no traceback; the previous report
    whole and no temp file."""
    source = tmp_path / "fleet.jsonl"
    source.write_text("\n".join(json.dumps(d) for d in [
        envelope({"instances": [make_instance("i-1")]}, _AT, "/instances")]) + "\n")
    out = tmp_path / "report"
    assert _cli(["report", str(source), "--out", str(out), "--no-charts"])[0] == 0
    before = _snapshot(out)
    calls: list[str] = []
    monkeypatch.setattr(_files, "tempfile", SimpleNamespace(mkstemp=_full_mkstemp(2, calls)))
    code, stdout, stderr = _cli(["report", str(source), "--out", str(out), "--no-charts"])
    assert (code, stdout) == (1, "")
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {out}{os.sep}"), stderr
    assert "No space left on device" in lines[0] and "Traceback" not in stderr
    assert _snapshot(out) == before
    monkeypatch.setattr(_files, "tempfile", tempfile)
    monkeypatch.setattr(_files, "os", _OsWithFailingFsync(1))
    code, stdout, stderr = _cli(["report", str(source), "--out", str(out), "--no-charts"])
    assert (code, stdout) == (1, "")
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {out}{os.sep}"), stderr
    assert "Input/output error" in lines[0]
    assert _snapshot(out) == before


def test_report_files_stay_whole_on_repeated_failures(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Failing each file of a report in turn (ENOSPC or EIO): after every failure each report
    file parses as a complete CSV equal to either the old or the new version."""
    out, before, tables, new = _previous_report(tmp_path)
    # the manifest (.shadeanalytics-report.json) lists the same files: it is not rewritten
    for fail_at in range(1, len([n for n in before if not n.startswith(".")]) + 1):
        fake_os = _OsWithFailingFsync(fail_at)
        monkeypatch.setattr(_files, "os", fake_os)
        # one process: the count of fsyncs is this process's (a second process's failed part
        # is done again here, where the same write then succeeds: test_report covers that)
        monkeypatch.setattr(report_module, "_second_core", lambda: False)
        with pytest.raises(ReportError):
            write_report(tables, out, as_of=_AT, charts=False)
        monkeypatch.undo()
        for name, data in _snapshot(out).items():
            assert data in (before[name], new[name]), (fail_at, name)
        # restore the old report for the next round
        for name, data in before.items():
            (out / name).write_bytes(data)
    digest = hashlib.sha256(b"".join(_snapshot(out).values())).hexdigest()
    assert digest == hashlib.sha256(b"".join(before.values())).hexdigest()
