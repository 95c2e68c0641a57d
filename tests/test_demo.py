"""shadeanalytics demo (the fake API on a fast clock, collected, alerts, a report, all in one
folder) and the fake API served from the command line until a signal."""

from __future__ import annotations

import functools
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests
from conftest import ROOT, Captured, cli_env

from shadeanalytics import config
from shadeanalytics.demo import run_demo
from shadeanalytics.live.client import ShadeformClient
from shadeanalytics.live.collect import collect
from shadeanalytics.live.store import Store
from shadeanalytics.testing.demo import demo_scenario, fleet_start, serve_fake_api
from shadeanalytics.testing.fakeapi import DEFAULT_SECRETS


def test_the_demo_fleet_lives_on_the_hour() -> None:
    """One state an hour; the training run is listed from hour 1 to 14, the CPU helper from
    hour 27; the fleet starts whole hours before the current one."""
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    states = demo_scenario(start, 30)
    assert [s.at for s in states[:2]] == [start, start + timedelta(hours=1)]
    assert len(states) == 31

    def names(index: int) -> set[str]:
        return {i["name"] for i in states[index].instances["instances"]}

    assert "train-h100" not in names(0) and "train-h100" in names(1)
    assert "train-h100" not in names(16) and "cpu-helper" in names(27)
    now = datetime(2026, 12, 6, 15, 7, 30, tzinfo=UTC)
    assert fleet_start(29 * 3600, now) == datetime(2026, 12, 5, 10, tzinfo=UTC)
    assert fleet_start(1, now) == datetime(2026, 12, 6, 14, tzinfo=UTC)


def test_the_demo_collects_alerts_and_reports_into_its_folder_only(tmp_path: Path) -> None:
    """Four polls an hour of fleet apart: the lines, the first alerts, a report, sensible
    money and time, and nothing written outside the folder."""
    folder = tmp_path / "demo"
    out = Captured()
    began = datetime.now(UTC)
    assert run_demo(folder, polls=4, speed=4 * 3600, every_s=0.25, charts=False, out=out) == 4
    text = out.text
    assert re.search(
        r"^fake Shadeform API at http://127\.0\.0\.1:\d+/v1; its fleet's clock "
        r"starts at \d{4}-\d\d-\d\d \d\d:00 UTC and runs 14400x; collecting every "
        rf"0\.25 s into {re.escape(str(folder / 'history.db'))} \(Ctrl-C stops\)$",
        text,
        re.M,
    )
    for n in range(1, 5):
        assert re.search(
            rf"^\w{{3}} \d\d:\d\d poll {n}/4: \d clusters, \d instances; ", text, re.M
        ), text
    assert (
        "budget: 'monthly projection': monthly_usd is $22,009.28, above the limit $20,000.00"
    ) in text
    assert "new_cloud: new cloud 'nebius' in the fleet" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert {p.name for p in folder.iterdir()} >= {"history.db", "budgets.toml", "report"}
    assert (folder / "report" / "index.html").is_file()
    assert not list(folder.glob("report/*.png"))
    accrued = float(re.search(r"accrued so far: \$([\d,.]+)", text)[1].replace(",", ""))  # type: ignore[index]
    assert 450 < accrued < 800, text  # about 15 h of the A100 cluster at $28.64/h and change
    as_of = pd.Timestamp(re.search(r"Shadeform fleet as of (\S+)", text)[1])  # type: ignore[index]
    with Store(folder / "history.db", create=False) as store:
        outcomes = list(store.polls()["outcome"])
    # on a machine too busy for a poll, one may fail (the demo prints it); never two
    assert outcomes.count("ok") >= 3, (outcomes, text)
    assert began - timedelta(hours=3) < as_of < began + timedelta(minutes=5), (outcomes, text)
    assert "days" not in text.split("Shadeform fleet as of")[1].split("\n")[0]
    with Store(folder / "history.db", create=False) as store:
        assert store.integrity_check() == "ok"
    for path in folder.rglob("*"):  # the inference server's env and registry secrets
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in DEFAULT_SECRETS[:2]), path


def test_ctrl_c_stops_the_demo_without_a_report(tmp_path: Path) -> None:
    """SIGINT after the first poll: the polls so far stay, no report, the handlers restored."""
    folder = tmp_path / "demo"
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    out = Captured()
    before = signal.getsignal(signal.SIGINT)  # (ignored when the suite runs in the background)

    def interrupt_after_the_first_poll() -> None:
        # on the first poll's line, not after a fixed 0.4 s a busy machine may not poll in
        limit = time.monotonic() + 60
        while "poll 1/20: " not in out.text and time.monotonic() < limit:
            time.sleep(0.01)
        signal.pthread_kill(main_thread, signal.SIGINT)

    timer = threading.Thread(target=interrupt_after_the_first_poll)
    timer.start()
    collected = run_demo(folder, polls=20, speed=4 * 3600, every_s=0.25, charts=False, out=out)
    timer.join()
    assert 1 <= collected < 20
    assert out.text.endswith(
        f"stopped (SIGINT) after {collected} polls; the store is {folder / 'history.db'}\n"
    )
    assert not (folder / "report").exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_fake_api_prints_how_to_collect_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake-api text: its URL, key and the three lines to collect from it."""
    out = Captured()
    serve_fake_api(key="k-1", speed=60, out=out, stop_after=0.05)
    assert re.fullmatch(
        r"fake Shadeform API at (http://127\.0\.0\.1:\d+/v1), key k-1; its fleet's clock "
        r"starts at \d{4}-\d\d-\d\d \d\d:00 UTC and runs 60x \(the fleet lives 48 hours, "
        r"then stays as it is\)\nto collect from it:\n"
        r"  export SHADEFORM_BASE_URL=\1 SHADEFORM_API_KEY=k-1\n"
        r"  export SHADEANALYTICS_CLOCK='\S+ 60 [\d.]+'\n"
        r"  shadeanalytics collect --store fake\.db --every 5s\nCtrl-C stops it\.\n"
        r"stopped \(time\)\n",
        out.text,
    ), out.text


def test_python_m_fakeapi_serves_until_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """python -m shadeanalytics.testing.fakeapi: no RuntimeWarning, a poll dated by its
    clock, exit 0 on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadeanalytics.testing.fakeapi", "--key", "served-key"],
        env=cli_env(),
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        url = re.search(r"at (\S+), key served-key;", lines[0])[1]  # type: ignore[index]
        clock = re.search(r"SHADEANALYTICS_CLOCK='([^']+)'", lines[3])[1]  # type: ignore[index]
        reply = requests.get(f"{url}/instances", headers={"X-API-KEY": "served-key"}, timeout=10)
        assert reply.status_code == 200
        assert "llm-serve" in {i["name"] for i in reply.json()["instances"]}
        monkeypatch.delenv(config.NOW_ENV, raising=False)
        monkeypatch.setenv(config.CLOCK_ENV, clock)
        result = collect(
            tmp_path / "served.db",
            make_client=functools.partial(ShadeformClient, api_key="served-key", base_url=url),
        )
        assert result.outcome == "ok"
        start = datetime.fromisoformat(clock.split()[0])
        with Store(tmp_path / "served.db") as store:
            observed = store.newest_poll()
        # 48 hours before the current hour, an hour of fleet a minute: a few minutes in
        assert observed is not None and start <= observed[1] < start + timedelta(hours=12)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out == "stopped (SIGTERM)\n"
    assert err == ""
    assert ROOT.exists()
