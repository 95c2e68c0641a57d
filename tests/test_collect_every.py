"""collect --every: the schedule, one log line per poll, failed and locked polls, and the
signals (SIGTERM and SIGINT stop it, a poll still fetching is abandoned, SIGHUP re-reads the
settings) against the fake API, in-process and in real subprocesses with real signals."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import ROOT, Captured, cli_env, fake_client

from shadeanalytics import config
from shadeanalytics.cli import main
from shadeanalytics.errors import AuthenticationError, LockedError
from shadeanalytics.live.collect import (
    PollLog,
    Schedule,
    StopSignals,
    collect,
    collect_every,
    collector_lock,
)
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, default_scenario

KEY = "every-key"
AT = default_scenario()[0].at


def _polls(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT poll_id, outcome FROM polls ORDER BY poll_id"))


# -- the schedule ------------------------------------------------------------------------------


def test_slots_are_multiples_of_the_interval_plus_the_jitter() -> None:
    """Every 300 s with a 7 s jitter: slots at 00:00:07, 00:05:07... strictly after t."""
    schedule = Schedule(300, 7)
    assert schedule.next_after(1_800_000_000.0) == 1_800_000_007.0
    assert schedule.next_after(1_800_000_007.0) == 1_800_000_307.0
    assert schedule.next_after(1_800_000_006.5) == 1_800_000_007.0
    assert schedule.next_after(1_800_000_299.0) == 1_800_000_307.0
    assert Schedule(2).next_after(11.0) == 12.0
    assert Schedule(2).next_after(11.999) == 12.0


def test_the_jitter_is_a_tenth_of_the_interval_at_most_30_seconds() -> None:
    """A random jitter: below every/10, and never 30 s or more, seeded for the test."""
    rng = random.Random(26)
    jitters = [Schedule.jittered(10, rng).jitter_s for _ in range(200)]
    assert min(jitters) >= 0 and max(jitters) <= 1.0 and len(set(jitters)) == 200
    assert max(Schedule.jittered(3600, rng).jitter_s for _ in range(200)) <= 30.0


def test_a_schedule_refuses_a_bad_interval_or_jitter() -> None:
    """A zero interval, or a jitter as long as the interval, is a ValueError."""
    with pytest.raises(ValueError, match=r"^every_s must be positive$"):
        Schedule(0)
    with pytest.raises(ValueError, match=r"^jitter_s must be at least 0 and less than every_s$"):
        Schedule(5, 5)


# -- in-process loops ---------------------------------------------------------------------------


def _options(api: FakeShadeformAPI, start: int = 0) -> dict[str, Any]:
    """collect's options: the fake API, and a clock a second further at each reading."""
    ticks = iter(range(start, 1_000_000))
    return {
        "make_client": fake_client(api, KEY),
        "now": lambda: AT + timedelta(seconds=next(ticks)),
        "deadline_s": 10.0,
    }


def test_polls_on_the_schedule_until_max_polls(tmp_path: Path) -> None:
    """Three polls on 250 ms slots (plus the jitter, never before); three ok polls stored."""
    path = tmp_path / "every.db"
    logs: list[PollLog] = []
    with FakeShadeformAPI(KEY, advance_on="/instances/types") as api:
        options = _options(api)
        began = time.time()
        last = collect_every(
            Schedule(0.25), lambda: (path, options), max_polls=3, on_poll=logs.append
        )
    assert [log.number for log in logs] == [1, 2, 3] and last is logs[-1]
    assert [log.outcome for log in logs] == ["ok", "ok", "ok"]
    assert _polls(path) == [(1, "ok"), (2, "ok"), (3, "ok")]
    starts = [log.at.timestamp() for log in logs]
    assert starts[0] - began < 0.5  # the first poll at once
    for later in starts[1:]:  # the next ones at a slot (a multiple of 250 ms) plus the jitter
        # (at most a tenth of the interval), with 100 ms of slack for a busy machine
        assert later % 0.25 < 0.025 + 0.1
    result = logs[0].result
    assert result is not None
    assert logs[0].line() == (
        f"{logs[0].at:%Y-%m-%dT%H:%M:%SZ} poll 1 ok in "
        f"{result.duration_s:.2f} s: 1 clusters, 5 instances, 8 instance "
        "types; 27 new, 0 changed, 0 gone; 2 volumes, 5 instance details, "
        "0 failed requests"
    )


def test_started_just_before_a_slot_the_second_poll_waits_for_the_next_one(
    tmp_path: Path,
) -> None:
    """Started 50 ms before a 2 s slot, the collector polls at once, then not at that slot (a
    second poll 50 ms after the first) but at the next: polls begin at least every/2 apart.
    The wall clock is a fake one that only the loop's sleeps move."""
    clock = [1_800_000_001.95]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    logs: list[PollLog] = []
    with FakeShadeformAPI(KEY, advance_on="/instances/types") as api:
        options = _options(api)
        collect_every(Schedule(2), lambda: (tmp_path / "every.db", options), max_polls=3,
                      on_poll=logs.append, wall=lambda: clock[0], sleep=sleep)
    starts = [round(log.at.timestamp(), 3) for log in logs]
    assert starts == [1_800_000_001.95, 1_800_000_004.0, 1_800_000_006.0]


def test_a_failed_and_a_locked_poll_are_logged_and_the_next_slot_tried(tmp_path: Path) -> None:
    """A 401 is a failed poll (recorded), a held lock a locked one (nothing written); then ok."""
    path = tmp_path / "every.db"
    logs: list[PollLog] = []
    with FakeShadeformAPI(KEY) as api:
        api.inject("/clusters", 401)
        options = _options(api)

        def on_poll(log: PollLog) -> None:
            logs.append(log)
            if log.number == 1:  # hold the lock across poll 2
                held.__enter__()
            elif log.number == 2:
                held.__exit__(None, None, None)

        held = collector_lock(path)
        collect_every(Schedule(0.25), lambda: (path, options), max_polls=3, on_poll=on_poll)
    assert [log.outcome for log in logs] == ["failed", "locked", "ok"]
    assert isinstance(logs[0].error, AuthenticationError)
    assert isinstance(logs[1].error, LockedError)
    assert _polls(path) == [(1, "failed"), (2, "ok")]
    record = json.loads(logs[1].line("json"))
    assert record == {
        "time": logs[1].at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "poll": 2,
        "outcome": "locked",
        "duration_s": logs[1].duration_s,
        "error": f"{path}: another collector is running (it holds the store's "
        "lock); this run wrote nothing",
        "error_type": "LockedError",
    }
    assert (
        logs[1]
        .line()
        .endswith(
            f"poll locked after {logs[1].duration_s:.2f} s: {path}: "
            "another collector is running (it holds the store's lock); "
            "this run wrote nothing"
        )
    )


def test_a_stop_while_fetching_abandons_the_poll_and_keeps_the_committed_ones(
    tmp_path: Path,
) -> None:
    """SIGTERM to the main thread during a hanging request: poll 2 abandoned at once (nothing
    written), the loop ends; poll 1 stays; a next run continues with poll 2."""
    path = tmp_path / "every.db"
    logs: list[PollLog] = []
    signals = StopSignals()
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    with FakeShadeformAPI(KEY, hang_seconds=20) as api:
        options = _options(api)

        def on_poll(log: PollLog) -> None:
            logs.append(log)
            if log.number == 1:  # one signal, while poll 2 hangs
                api.inject("/instances", "hang")
                timer.start()

        timer = threading.Timer(0.3, signal.pthread_kill, (main_thread, signal.SIGTERM))

        began = time.monotonic()
        with signals.installed():
            collect_every(
                Schedule(0.05),
                lambda: (path, options),
                signals=signals,
                max_polls=5,
                on_poll=on_poll,
            )
        took = time.monotonic() - began
        timer.join()
    assert took < 5, "the hanging poll was not abandoned"
    assert signals.stop_requested == "SIGTERM"
    assert [log.outcome for log in logs] == ["ok", "abandoned"]
    assert (
        logs[1]
        .line()
        .endswith(
            f"poll abandoned (stop requested; nothing written) after {logs[1].duration_s:.2f} s"
        )
    )
    assert _polls(path) == [(1, "ok")]
    with Store(path) as store:
        assert store.integrity_check() == "ok"
    with FakeShadeformAPI(KEY) as api:
        options = _options(api, start=3600)
        again = collect_every(Schedule(0.25), lambda: (path, options), max_polls=1)
    assert again is not None and again.outcome == "ok", again
    assert _polls(path) == [(1, "ok"), (2, "ok")]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are restored


def test_cli_every_prints_one_line_per_poll_in_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """collect --every 1s --max-polls 2 --log-format json: two JSON lines, two ok polls."""
    path = tmp_path / "cli.db"
    monkeypatch.setenv("SHADEFORM_API_KEY", KEY)
    monkeypatch.delenv("SHADEANALYTICS_NOW", raising=False)
    monkeypatch.setenv("SHADEANALYTICS_CLOCK", config.clock_text(AT, 1, time.time()))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    out, err = Captured(), Captured()
    with FakeShadeformAPI(KEY) as api:
        code = main(
            [
                "collect",
                "--store",
                str(path),
                "--base-url",
                api.url,
                "--every",
                "1s",
                "--max-polls",
                "2",
                "--log-format",
                "json",
                "--quiet",
            ],
            stdout=out,
            stderr=err,
        )
    assert code == 0, err.text
    records = [json.loads(line) for line in out.text.splitlines()]
    assert [(r["poll"], r["poll_id"], r["outcome"], r["instances"]) for r in records] == [
        (1, 1, "ok", 5),
        (2, 2, "ok", 5),
    ]
    assert _polls(path) == [(1, "ok"), (2, "ok")]


def test_cli_every_refuses_a_bad_duration_and_max_polls_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--every 0.5s, 5x and 8d are usage errors; --max-polls needs --every."""
    for bad in ("0.5s", "5x", "8d"):
        assert main(["collect", "--store", str(tmp_path / "x.db"), "--every", bad]) == 2
        assert capsys.readouterr().err.endswith(
            "error: argument --every: expected a duration from 1s to 7d, e.g. 30s, 5m, 1h\n"
        )
    err = Captured()
    assert main(["collect", "--store", str(tmp_path / "x.db"), "--max-polls", "2"], stderr=err) == 2
    assert err.text.endswith("Error: --max-polls is only for --every\n")
    assert not (tmp_path / "x.db").exists()



# -- real subprocesses, real signals ------------------------------------------------------------


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shadeanalytics", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _line(stream: IO[str] | None, timeout: float = 30) -> str:
    """The next line of ``stream`` (a child's stdout), or fail after ``timeout``."""
    assert stream is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert box and box[0], "no line from the collector"
    return box[0]


def _env(tmp_path: Path) -> dict[str, str]:
    """The collector's environment: the key, the clock running from the scenario's start."""
    return {
        **cli_env(KEY),
        config.CLOCK_ENV: config.clock_text(AT, 1, time.time()),
        "XDG_CONFIG_HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.hardening  # a race / a kill / a signal: the long tier
def test_sigterm_in_a_hanging_poll_stops_it_and_the_next_run_continues(tmp_path: Path) -> None:
    """A real SIGTERM while poll 2 hangs: exit 0 within seconds, poll 1 kept, store readable,
    and the next run records poll 2."""
    path = tmp_path / "sig.db"
    with FakeShadeformAPI(KEY, hang_seconds=60) as api:
        proc = _start(
            ["collect", "--store", str(path), "--base-url", api.url, "--every", "1s", "--quiet"],
            _env(tmp_path),
            tmp_path,
        )
        try:
            first = _line(proc.stdout)
            assert " poll 1 ok in " in first
            api.inject("/clusters", "hang")
            deadline = time.monotonic() + 10
            while (
                not any(r.path == "/v1/clusters" for r in api.requests[-1:])
                or len([r for r in api.requests if r.path == "/v1/clusters"]) < 2
            ):
                assert time.monotonic() < deadline, "poll 2 never started"
                time.sleep(0.02)
            time.sleep(0.1)  # in the hanging request
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
            took = time.monotonic() - began
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 8  # the hang is 60 s; an interpreter's exit may take seconds on a busy machine
    assert "poll abandoned (stop requested; nothing written)" in out
    assert err.endswith("stopped (SIGTERM)\n")
    assert "Traceback" not in err
    assert _polls(path) == [(1, "ok")]
    with FakeShadeformAPI(KEY) as api:  # the next run (in-process: quicker) continues
        result = collect(
            path, make_client=fake_client(api, KEY), now=lambda: AT + timedelta(hours=1)
        )
    assert (result.poll_id, result.outcome) == (2, "ok")
    assert _polls(path) == [(1, "ok"), (2, "ok")]


@pytest.mark.hardening  # a real subprocess through three signals: the long tier
def test_sighup_rereads_the_settings_file_and_sigint_stops(tmp_path: Path) -> None:
    """SIGHUP: a broken file keeps the old settings (logged), a fixed one is read (details
    fetched from then on); SIGINT between polls ends it with exit 0."""
    path = tmp_path / "hup.db"
    settings = tmp_path / "shadeanalytics.toml"
    settings.write_text(f'store = "{path.name}"\ninfo_budget = 0\n')
    with FakeShadeformAPI(KEY) as api:
        proc = _start(
            ["collect", "--base-url", api.url, "--every", "1s", "--quiet"], _env(tmp_path), tmp_path
        )
        try:
            assert " 0 instance details" in _line(proc.stdout)  # info_budget 0
            settings.write_text("info_budget = [\n")
            proc.send_signal(signal.SIGHUP)
            lines = [_line(proc.stdout) for _ in range(2)]
            assert any(
                line.endswith(
                    f" settings not re-read (SIGHUP): {settings}: not a valid "
                    "TOML file (at end of document); the previous ones "
                    "stay\n"
                )
                for line in lines
            ), lines
            settings.write_text(f'store = "{path.name}"\ninfo_budget = 5\n')
            proc.send_signal(signal.SIGHUP)
            for _ in range(4):
                line = _line(proc.stdout)
                if " 5 instance details" in line:
                    break
            else:
                raise AssertionError("the new info_budget was never used")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.endswith("stopped (SIGINT)\n") and "Traceback" not in err
    with Store(path) as store:
        assert store.integrity_check() == "ok"


@pytest.mark.hardening
def test_every_2s_max_polls_5_records_5_polls(tmp_path: Path) -> None:
    """The issue's check: collect --every 2s --max-polls 5 against the fake API, 5 polls."""
    path = tmp_path / "five.db"
    with FakeShadeformAPI(KEY, advance_on="/instances/types") as api:
        proc = _start(
            [
                "collect",
                "--store",
                str(path),
                "--base-url",
                api.url,
                "--every",
                "2s",
                "--max-polls",
                "5",
            ],
            _env(tmp_path),
            tmp_path,
        )
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == 5
    assert _polls(path) == [(n, "ok") for n in range(1, 6)]
    stamps = [
        datetime.strptime(line[:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for line in out.splitlines()
    ]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    # 2 s apart (1-3 in whole-second stamps), never closer; a poll that overran its slot on a
    # busy machine (hardening runs under xdist) waits for the next one: 4 s (3-5)
    assert all(1 <= gap <= 5 for gap in gaps), gaps
    assert os.stat(path).st_size > 0
    assert ROOT.exists()
