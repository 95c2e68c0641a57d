"""The real command line in subprocesses against the fake API: a scripted fleet collected poll
by poll (each run's clock set to its state's time through SHADEANALYTICS_NOW), its exact
status timeline, the report, exit codes, the README's commands as a new user types them, and
no secret anywhere. (Runs whose process exit code is not the point go through ``main()`` in
the test's process, under the environment a subprocess would get.)"""

from __future__ import annotations

import base64
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest
from conftest import cli_env, run_cli

from shadeanalytics.analytics.timeline import FLEET_COLUMNS, TIMELINE_COLUMNS, status_timeline
from shadeanalytics.cli import main
from shadeanalytics.ingest.tables import Tables
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import DEFAULT_SECRETS, FakeShadeformAPI, default_scenario

ROOT = Path(__file__).resolve().parents[1]
# printable ASCII that still differs in its URL-encoded, JSON-escaped and base64 forms
KEY = 'canary-live-key/+="7Qz"&%'
POLLS = len(default_scenario())
#: the clock of the runs after the scripted collection: ten minutes after its last state
AFTER = default_scenario()[-1].at + timedelta(minutes=10)

REPORT_FILES = {
    "clusters.csv", "instances.csv", "instance_types.csv", "costs_by_cloud.csv",
    "costs_by_region.csv", "costs_by_gpu_type.csv", "costs_by_cluster.csv", "costs_by_tag.csv",
    "gpu_inventory.csv", "clusters_summary.csv", "lifecycle.csv", "quality.csv", "timeline.csv",
    "fleet_over_time.csv", "forecast.csv", "costs_daily.csv", "costs_monthly.csv",
}  # fmt: skip

BURST = "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f"
STEADY = "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb"
STEADY_NODES = ("1a2b3c4d-0000-4000-8000-000000000000", "1a2b3c4d-0001-4000-8000-000000000001")
BURST_NODES = ("5e6f7a8b-0000-4000-8000-000000000000", "5e6f7a8b-0001-4000-8000-000000000001")
TRAIN = "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40"
SPOT = "a41e0d7c-3f52-4b8e-8c19-5e7d2a9b6f01"
BATCH = "c7b3e2f9-1d64-4a0b-b5e8-9f2c4d6a8e12"
LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"
NOTEBOOK = "e58a9c13-7b2f-4d6e-a0c4-3b1f9e8d7c25"

# The timeline of the default scenario collected once per state, in the order status_timeline
# sorts it (kind, resource_id, start). The last field says where the interval starts: a
# scenario time (start_source "api": the API's own timestamp), or the index of the successful
# poll that first showed the status ("observed").
_BURST_LIFE: list[tuple[str, str, str | int]] = [
    ("creating", "api", "2026-03-02T10:14:00Z"),  # created_at
    ("pending", "observed", 3),
    ("active", "api", "2026-03-02T10:33:00Z"),  # active_at
    ("deleting", "observed", 5),
    ("deleted", "observed", 6),  # vanished from /clusters
]
#: first seen active: active_at
_STEADY_LIFE: list[tuple[str, str, str | int]] = [("active", "api", "2026-02-20T12:00:00Z")]
EXPECTED_TIMELINE: list[tuple[str, str, str, str, str, str | int]] = [
    *[("cluster", BURST, "h100-burst", *row) for row in _BURST_LIFE],
    *[("cluster", STEADY, "denvr-a100-cluster", *row) for row in _STEADY_LIFE],
    *[
        ("instance", node, f"1a2b3c4d-node-{n}", *row)
        for n, node in enumerate(STEADY_NODES)
        for row in _STEADY_LIFE
    ],
    *[
        ("instance", node, f"5e6f7a8b-node-{n}", *row)
        for n, node in enumerate(BURST_NODES)
        for row in _BURST_LIFE
    ],
    ("instance", TRAIN, "train-h100", "creating", "api", "2026-03-02T09:58:30Z"),
    ("instance", TRAIN, "train-h100", "pending_provider", "observed", 1),
    ("instance", TRAIN, "train-h100", "pending", "observed", 2),
    ("instance", TRAIN, "train-h100", "active", "api", "2026-03-02T10:24:45Z"),
    ("instance", TRAIN, "train-h100", "deleting", "observed", 4),
    ("instance", TRAIN, "train-h100", "deleted", "api", "2026-03-02T10:44:20Z"),  # deleted_at
    ("instance", SPOT, "spot-rtx6000", "creating", "api", "2026-03-02T10:07:05Z"),
    ("instance", SPOT, "spot-rtx6000", "pending_provider", "observed", 2),
    ("instance", SPOT, "spot-rtx6000", "error", "observed", 3),
    ("instance", BATCH, "batch-a6000", "active", "api", "2026-03-02T06:45:30Z"),
    ("instance", BATCH, "batch-a6000", "deleted", "observed", 3),  # vanished, never deleted
    ("instance", LLM, "llm-serve", "active", "api", "2026-02-27T08:00:00Z"),
    ("instance", NOTEBOOK, "notebook-a6000", "creating", "api", "2026-03-02T10:38:00Z"),
    ("instance", NOTEBOOK, "notebook-a6000", "pending", "observed", 5),
    ("instance", NOTEBOOK, "notebook-a6000", "active", "api", "2026-03-02T10:55:10Z"),
]


def _cli(*args: str, key: str | None = KEY, now: datetime | None = None
         ) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, key=key, now=now)


def _collect(
    db: Path, api: FakeShadeformAPI, *extra: str, key: str | None = KEY,
    now: datetime | None = None,
) -> subprocess.CompletedProcess[str]:
    """``collect`` dated ``now`` (default: the time of the fake's current state)."""
    return _cli("collect", "--store", str(db), "--base-url", api.url, *extra, key=key,
                now=now or api.state.at)


def _collect_in_process(db: Path, api: FakeShadeformAPI) -> subprocess.CompletedProcess[str]:
    """``_collect``'s run through ``cli.main`` in this process, under the environment
    ``run_cli`` gives a subprocess (the key, the fake's clock, no other Shadeform setting)."""
    return _in_process("collect", "--store", str(db), "--base-url", api.url, now=api.state.at)


def _in_process(*args: str, key: str | None = KEY, now: datetime | None = None
                ) -> subprocess.CompletedProcess[str]:
    """``_cli(*args)`` run through ``cli.main`` in this process, under the environment
    ``run_cli`` gives a subprocess (``key``, the clock ``now``, no other Shadeform setting):
    where the exit code of the process itself is not what is checked (``__main__`` exits with
    what ``main`` returns)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            patch.delenv(name)
        for name, value in cli_env(key, now).items():
            patch.setenv(name, value)
        code = main(list(args), stdout=out, stderr=err)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _ok(run: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert run.returncode == 0, f"exit {run.returncode}; stderr: {run.stderr}"
    return run


def _one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.stderr
    assert "Traceback" not in run.stderr
    return lines[0]


def _copy_store(db: Path, to: Path) -> Path:
    """A copy of the store (and its write-ahead log) for a test that writes to it."""
    to.mkdir(parents=True, exist_ok=True)
    copy = to / db.name
    for suffix in ("", "-wal"):
        if Path(f"{db}{suffix}").exists():
            shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
    return copy


def _polls(db: Path) -> pd.DataFrame:
    with Store(db, create=False) as store:
        return store.polls()


def _read(db: Path) -> Tables:
    with Store(db, create=False) as store:
        return store.read()


@dataclass(frozen=True)
class LiveRun:
    """The default scenario collected by the real CLI, one run per state, then reported."""

    api: FakeShadeformAPI
    db: Path
    out: Path
    collects: list[subprocess.CompletedProcess[str]]
    report: subprocess.CompletedProcess[str]
    wal: bytes  # the write-ahead log as it stood after the last run, with a reader open
    polls: pd.DataFrame
    history: Tables


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    tmp = tmp_path_factory.mktemp("live")
    db, out = tmp / "history.db", tmp / "report"
    with FakeShadeformAPI(api_key=KEY, advance_on="/instances/types") as api:
        collects = [_ok(_collect(db, api))]
        # an open reader keeps the write-ahead log on disk (the last connection to close
        # would checkpoint and delete it), so that the secrets test can read what it held
        reader = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            reader.execute("SELECT count(*) FROM polls").fetchone()
            for k in range(1, POLLS):
                assert api.state_index == k
                # the first and the last run as cron runs them, a fresh interpreter each; the
                # ones between, and the report, in this process (the same main(), without 1 s
                # of imports each)
                run = _collect if k == POLLS - 1 else _collect_in_process
                collects.append(_ok(run(db, api)))
            # (charts: the sample's report and the plots tests; here the store's CSV files)
            report = _ok(_in_process("report", "--store", str(db), "--out", str(out),
                                     "--no-charts"))
            wal = Path(f"{db}-wal").read_bytes()
        finally:
            reader.close()
        yield LiveRun(
            api=api,
            db=db,
            out=out,
            collects=collects,
            report=report,
            wal=wal,
            polls=_polls(db),
            history=_read(db),
        )


# -- the scripted fleet, collected by the CLI ---------------------------------------------------


def test_each_poll_is_dated_by_the_clock_it_was_given(live: LiveRun) -> None:
    """Seven ok polls, one per state, each dated SHADEANALYTICS_NOW: its state's time."""
    polls = live.polls
    assert polls["outcome"].tolist() == ["ok"] * POLLS
    assert polls["observed_at"].tolist() == [pd.Timestamp(s.at).as_unit("us")
                                             for s in default_scenario()]
    messages = [run.stdout for run in live.collects]
    assert all(
        re.fullmatch(rf"poll {k + 1} ok in \d+\.\d\d s: .+\n", m) for k, m in enumerate(messages)
    ), messages
    # batch-a6000 vanishes, and its details with it
    assert messages[3].endswith(" changed, 2 gone; 2 volumes, 0 instance details, 0 failed "
                                "requests\n")
    assert messages[6].endswith(
        ": 1 clusters, 5 instances, 8 instance types; 0 new, 2 changed, 7 gone; 2 volumes, "
        "0 instance details, 0 failed requests\n"
    )
    assert all(run.stderr == "" for run in live.collects)


def test_timeline_of_the_collected_history_is_exact(live: LiveRun) -> None:
    """status_timeline of Store.read(): every interval, its source, and its exact start."""
    observed = live.polls.loc[live.polls["outcome"] == "ok", "observed_at"].tolist()
    as_of = observed[-1]
    timeline = status_timeline(live.history, as_of=as_of)

    def start(when: str | int) -> pd.Timestamp:
        if isinstance(when, int):
            return observed[when]
        return pd.Timestamp(when).as_unit("us")

    rows = [
        (kind, rid, name, status, source, start(when))
        for kind, rid, name, status, source, when in EXPECTED_TIMELINE
    ]
    expected = pd.DataFrame(
        rows, columns=["kind", "resource_id", "name", "status", "start_source", "start_at"]
    )
    same = expected["resource_id"].eq(expected["resource_id"].shift(-1))
    expected["end_at"] = expected["start_at"].shift(-1).where(same)
    expected["duration_s"] = (
        expected["end_at"].fillna(as_of).clip(upper=as_of) - expected["start_at"]
    ).dt.total_seconds()
    expected = expected.astype({c: TIMELINE_COLUMNS[c] for c in expected.columns})
    actual = timeline[list(expected.columns)]
    pd.testing.assert_frame_equal(actual, expected)
    assert list(timeline.columns) == list(TIMELINE_COLUMNS)
    # every start from the API lies strictly inside its window of polls, not on an edge
    assert not actual["start_at"].isin(observed).loc[actual["start_source"] == "api"].any()


# -- the report ---------------------------------------------------------------------------------


def test_report_from_the_store_writes_every_file_and_the_same_timeline(live: LiveRun) -> None:
    """report --store: exit 0, every report file, timeline.csv equal to status_timeline."""
    assert live.report.stderr == ""
    assert re.fullmatch(
        rf"wrote \d+ files to {re.escape(str(live.out))} \(.+\)\n", live.report.stdout
    )
    written = {p.name for p in live.out.iterdir()}
    assert written >= REPORT_FILES, REPORT_FILES - written
    as_of = live.polls["observed_at"].max()
    library = status_timeline(live.history, as_of=as_of)
    with (live.out / "timeline.csv").open(newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert list(csv_rows[0]) == list(TIMELINE_COLUMNS)
    assert len(csv_rows) == len(library) == len(EXPECTED_TIMELINE)
    for column in ("kind", "resource_id", "name", "status", "start_source"):
        assert [r[column] for r in csv_rows] == library[column].tolist(), column
    for column in ("start_at", "end_at"):
        texts = [r[column] for r in csv_rows]
        assert all(t == "" or t.endswith("Z") for t in texts)
        parsed = [pd.NaT if t == "" else pd.Timestamp(t) for t in texts]
        assert parsed == [pd.NaT if pd.isna(v) else v for v in library[column]], column
    durations = [float(r["duration_s"]) for r in csv_rows]
    assert durations == pytest.approx(library["duration_s"].tolist(), abs=1e-6)
    with (live.out / "fleet_over_time.csv").open(newline="") as handle:
        fleet = list(csv.reader(handle))
    assert fleet[0] == list(FLEET_COLUMNS)
    assert len(fleet) >= 2


# -- exit codes ---------------------------------------------------------------------------------


def test_unavailable_api_exits_75_and_records_a_failed_poll(live: LiveRun, tmp_path: Path) -> None:
    """503 on every attempt: exit 75, one Error line, a failed poll, nothing marked gone."""
    db = _copy_store(live.db, tmp_path)
    with Store(db, create=False) as store:
        before = store.stats()
    with FakeShadeformAPI(api_key=KEY) as api:
        api.inject("/clusters", 503, times=3)
        run = _collect(db, api, now=AFTER)
        assert [r.path for r in api.requests] == ["/v1/clusters"] * 3
    assert run.returncode == 75, run.stderr
    assert run.stdout == ""
    assert "503" in _one_error_line(run)
    polls = _polls(db)
    assert len(polls) == POLLS + 1
    last = polls.iloc[-1]
    assert last["outcome"] == "failed" and "503" in last["error"]
    with Store(db, create=False) as store:
        after = store.stats()
    assert after["gone"] == before["gone"]
    assert after["current"] == before["current"]
    assert after["versions"] == before["versions"]


def test_rejected_key_exits_1_with_a_hint_and_never_shows_the_key(
    live: LiveRun, tmp_path: Path
) -> None:
    """A wrong key: exit 1, a hint about SHADEFORM_API_KEY, the key text nowhere in the output."""
    db = _copy_store(live.db, tmp_path)
    wrong = "wrong-key-5a1e9d"
    run = _in_process("collect", "--store", str(db), "--base-url", live.api.url, key=wrong,
                      now=AFTER)
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    line = _one_error_line(run)
    assert "SHADEFORM_API_KEY" in line and "401" in line
    assert wrong not in run.stdout + run.stderr
    assert KEY not in run.stdout + run.stderr


def test_overlapping_run_exits_3_at_once_and_writes_nothing(live: LiveRun, tmp_path: Path) -> None:
    """While another process holds the store's lock (an flock on the store file itself): exit
    3 at once, empty stdout, the store as it was."""
    db = _copy_store(live.db, tmp_path)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    requests_before = len(live.api.requests)
    fd = os.open(db, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        began = time.monotonic()
        run = _collect(db, live.api, now=AFTER)
        elapsed = time.monotonic() - began
    finally:
        os.close(fd)
    assert run.returncode == 3, run.stderr
    assert run.stdout == ""
    assert "another collector is running" in _one_error_line(run)
    assert elapsed < 10  # an interpreter start, not a wait for the lock or the deadline
    assert len(live.api.requests) == requests_before
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert len(_polls(db)) == POLLS


def test_api_key_file_replaces_the_environment(live: LiveRun, tmp_path: Path) -> None:
    """--api-key-file with no SHADEFORM_API_KEY: exit 0; the same state again changes nothing."""
    db = _copy_store(live.db, tmp_path)
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    run = _ok(_in_process("collect", "--store", str(db), "--base-url", live.api.url,
                          "--api-key-file", str(key_file), key=None, now=AFTER))
    # the sticky last state is the same payload again
    assert re.fullmatch(
        rf"poll {POLLS + 1} ok in \d+\.\d\d s: 1 clusters, 5 instances, "
        r"8 instance types; 0 new, 0 changed, 0 gone; 2 volumes, 0 instance details, 0 failed "
        r"requests\n",
        run.stdout,
    )
    assert run.stderr == ""
    assert _polls(db)["outcome"].tolist() == ["ok"] * (POLLS + 1)


def test_missing_key_exits_1_with_a_clear_message(live: LiveRun, tmp_path: Path) -> None:
    """No SHADEFORM_API_KEY and no --api-key-file: exit 1, one line saying what to set."""
    requests_before = len(live.api.requests)
    run = _in_process("collect", "--store", str(tmp_path / "history.db"), "--base-url",
                      live.api.url, key=None, now=live.api.state.at)
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert _one_error_line(run) == ("Error: no API key: set SHADEFORM_API_KEY or pass "
                                    "--api-key-file PATH")
    assert len(live.api.requests) == requests_before
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no empty store, no lock file


def test_report_on_a_missing_store_exits_1_and_creates_nothing(tmp_path: Path) -> None:
    """report --store on a missing path: exit 1, one Error line, no file at that path."""
    db, out = tmp_path / "missing.db", tmp_path / "report"
    run = _in_process("report", "--store", str(db), "--out", str(out))
    assert run.returncode == 1
    assert run.stdout == ""
    assert "no such store" in _one_error_line(run)
    assert not db.exists()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- the README, as a new user types it ---------------------------------------------------------


def _readme_live_block() -> list[str]:
    """The lines of the live-data page's bash block (collect, then report --store)."""
    section = (ROOT / "docs" / "live-data.md").read_text()
    blocks = [
        b
        for b in re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
        if "shadeanalytics collect" in b and "shadeanalytics report --store" in b
    ]
    assert len(blocks) == 1, "docs/live-data.md has no collect + report block"
    return blocks[0].splitlines()


def _readme_commands(out_dir: Path, api: FakeShadeformAPI) -> tuple[list[list[str]], Path]:
    """The block's commands with the store and report paths moved under ``out_dir``, and
    ``--base-url`` added to collect; the export line must set SHADEFORM_API_KEY."""
    commands, exported = [], []
    out = out_dir / "report"
    for line in _readme_live_block():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            exported += [w.split("=", 1)[0] for w in words[1:]]
            continue
        if words[0] == "mkdir":  # the store's folder: tmp_path exists
            continue
        assert words[0] == "shadeanalytics", f"unexpected README line: {line!r}"
        args = list(words[1:])
        for option, path in (("--store", out_dir / "history.db"), ("--out", out)):
            if option in args:
                args[args.index(option) + 1] = str(path)
        if args[0] == "collect":
            args += ["--base-url", api.url]
        commands.append(args)
    assert exported == ["SHADEFORM_API_KEY"]
    assert [c[0] for c in commands] == ["collect", "report"]
    return commands, out


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("shadeanalytics")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shadeanalytics"]


@pytest.mark.hardening
def test_readme_live_data_commands_work_with_only_an_api_key(live: LiveRun, tmp_path: Path) -> None:
    """The README's collect + report commands (paths under tmp, --base-url added) exit 0."""
    commands, out = _readme_commands(tmp_path, live.api)
    for args in commands:
        run = subprocess.run(
            [*_console_script(), *args],
            env=cli_env(KEY),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert run.returncode == 0, f"{args[0]}: exit {run.returncode}; {run.stderr}"
        assert run.stderr == ""
    assert {p.name for p in out.iterdir()} >= REPORT_FILES


@pytest.mark.hardening
def test_readme_live_data_block_runs_verbatim_in_a_fresh_home(
    live: LiveRun, tmp_path: Path
) -> None:
    """The README's block run by bash in an empty HOME, only the key and --base-url filled in."""
    home = tmp_path / "home"
    home.mkdir()
    script = "\n".join(_readme_live_block())
    script = re.sub(r"(export SHADEFORM_API_KEY=)\S*", lambda m: m[1] + shlex.quote(KEY), script)
    script = re.sub(
        r"\bshadeanalytics collect\b",
        lambda m: f"{m[0]} --base-url {shlex.quote(live.api.url)}",
        script,
    )
    env = {
        **cli_env(),
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    run = subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=home
    )
    assert run.returncode == 0, run.stderr
    report_line = next(line for line in _readme_live_block() if " --out " in line)
    out = Path(shlex.split(report_line, comments=True)[-1].replace("~", str(home), 1))
    assert {p.name for p in out.iterdir()} >= REPORT_FILES


# -- secrets ------------------------------------------------------------------------------------


def _forms(secret: str) -> set[bytes]:
    """``secret`` as it could leak: raw, URL-encoded, JSON-escaped, and base64 at any offset."""
    raw = secret.encode()
    forms = {
        raw,
        quote(secret, safe="").encode(),
        quote_plus(secret).encode(),
        json.dumps(secret)[1:-1].encode(),
        json.dumps(secret)[1:-1].replace("/", "\\/").encode(),
    }
    for offset in range(3):  # inside a longer base64 text, the secret's encoding shifts
        encoded = base64.b64encode(b"\0" * offset + raw)[4 if offset else 0 :]
        forms.add(encoded.rstrip(b"=")[:-2])
        forms.add(
            base64.urlsafe_b64encode(b"\0" * offset + raw)[4 if offset else 0 :].rstrip(b"=")[:-2]
        )
    return forms


def _leaks(blobs: dict[str, bytes], secrets: Sequence[str]) -> list[tuple[str, str]]:
    return [
        (name, secret)
        for name, blob in blobs.items()
        for secret in secrets
        if any(form in blob for form in _forms(secret))
    ]


def test_no_secret_in_the_store_its_log_the_report_or_the_output(live: LiveRun) -> None:
    """No canary secret nor the API key in the SQLite file, its -wal, a report file or output."""
    blobs = {"db": live.db.read_bytes(), "db-wal": live.wal}
    assert b"llm-serve" in live.wal  # the log held the polls: the check is not vacuous
    for path in live.out.rglob("*"):
        if path.is_file():
            blobs[f"report/{path.name}"] = path.read_bytes()
    for k, run in enumerate([*live.collects, live.report]):
        blobs[f"run {k} stdout"] = run.stdout.encode()
        blobs[f"run {k} stderr"] = run.stderr.encode()
    secrets = [*DEFAULT_SECRETS, KEY]
    assert _leaks(blobs, secrets) == []
    # the canaries were there to leak: every poll served the launch configuration's secrets
    assert all(
        DEFAULT_SECRETS[0] in json.dumps(s.instances)
        and DEFAULT_SECRETS[1] in json.dumps(s.instances)
        for s in default_scenario()
    )
    # and the detector finds each encoding inside a longer text
    for secret in secrets:
        for prefix in (b"", b"a", b"ab"):
            text = prefix + secret.encode() + b"tail"
            probes = {
                "base64": base64.b64encode(text),
                "url": quote_plus(text).encode(),
                "json": json.dumps({"v": text.decode()}).encode(),
                "b64url": base64.urlsafe_b64encode(text),
            }
            assert _leaks(probes, [secret]) == [(name, secret) for name in probes]
