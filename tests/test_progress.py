"""Progress bars: on a terminal only, never through a pipe (cron, logs), never with --quiet.

The commands run in real subprocesses; the terminal is a real pseudo-terminal (``os.openpty``)
of 100 columns. The bars appear only after ``PROGRESS_DELAY_S`` (2 s); the child sets it to 0
so that the small fixtures here show them at once.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import record_state

from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, default_scenario

ROOT = Path(__file__).resolve().parents[1]
KEY = "progress-test-key"
#: runs the CLI with the bars' delay set to 0, and the store deriving rows for these small
#: histories too (it walks fewer than 1,000 versions again instead)
CHILD = ("import sys, shadeanalytics._common as c, shadeanalytics.live.store as s; "
         "c.PROGRESS_DELAY_S = 0; s._DERIVED_MIN_VERSIONS = 0; "
         "from shadeanalytics.cli import main; sys.exit(main(sys.argv[1:]))")
#: a tqdm bar: "<what>:  40%|███...     | done/TOTAL [00:00<00:00, ...]" (group: TOTAL)
BAR = r"{}: +\d+%\|[^|]*\| \d+/(\d+) \["


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADEFORM_")}
    env["SHADEFORM_API_KEY"] = KEY
    return env


def _on_terminal(*args: str) -> tuple[int, str]:
    """The CLI with standard error on a pseudo-terminal: (exit code, what it showed there)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=follower, env=_env(), cwd=ROOT)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
        code = child.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if child.poll() is None:
            child.kill()
        os.close(leader)
    return code, shown.decode("utf-8", "replace")


def _piped(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, *args], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the fake API's seven polls whose rows were never derived (so that a read
    derives them: the work the bar shows)."""
    path = tmp_path_factory.mktemp("progress") / "fleet.sqlite"
    with Store(path) as store:
        for state in default_scenario():
            record_state(store, state)
    return path


def _fresh(history: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "fleet.sqlite"
    shutil.copyfile(history, copy)
    return copy


def test_a_store_read_shows_a_bar_on_a_terminal(history: Path, tmp_path: Path) -> None:
    """A store read on a terminal shows a bar counting every stored version."""
    code, shown = _on_terminal("summary", "--store", str(_fresh(history, tmp_path)))
    assert code == 0, shown
    versions = re.search(BAR.format("deriving stored versions"), shown)
    assert versions is not None, shown
    with Store(history, create=False) as store:
        assert int(versions.group(1)) == sum(store.stats()["versions"].values()) == 44


def test_quiet_shows_no_bar_on_a_terminal(history: Path, tmp_path: Path) -> None:
    """--quiet shows no bar even on a terminal."""
    code, shown = _on_terminal("summary", "--quiet", "--store", str(_fresh(history, tmp_path)))
    assert (code, shown) == (0, "")


def test_no_bar_when_standard_error_is_no_terminal(history: Path, tmp_path: Path) -> None:
    """No bar when standard error is not a terminal."""
    run = _piped("summary", "--store", str(_fresh(history, tmp_path)))
    assert (run.returncode, run.stderr) == (0, "")


@pytest.mark.hardening  # one more CLI subprocess: the fast tier keeps the summary's
def test_no_report_bar_when_standard_error_is_no_terminal(history: Path, tmp_path: Path) -> None:
    """No bar from a report when standard error is not a terminal."""
    store = _fresh(history, tmp_path)
    run = _piped("report", "--no-charts", "--store", str(store), "--out", str(tmp_path / "r"))
    assert (run.returncode, run.stderr) == (0, "")


@pytest.mark.hardening  # four more CLI subprocesses: the fast tier keeps the store's three
def test_a_load_and_an_export_show_bars_on_a_terminal(history: Path, tmp_path: Path) -> None:
    """A file load and a Parquet export show their bars on a terminal."""
    sample = ROOT / "data" / "sample"
    code, shown = _on_terminal("report", "--no-charts", "--no-html", str(sample), "--out",
                               str(tmp_path / "report"))
    assert code == 0, shown
    assert re.search(r"loading: \d+ responses \[", shown), shown
    code, shown = _on_terminal("export", "--store", str(_fresh(history, tmp_path)), "--out",
                               str(tmp_path / "parquet"))
    assert code == 0, shown
    assert re.search(BAR.format("exporting"), shown), shown
    code, shown = _on_terminal("export", "--quiet", "--store", str(tmp_path / "fleet.sqlite"),
                               "--out", str(tmp_path / "parquet"))
    assert (code, shown) == (0, "")


@pytest.mark.hardening
def test_the_collectors_detail_refresh_shows_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    """The collector's detail refresh shows a bar on a terminal only."""
    with FakeShadeformAPI(api_key=KEY) as api:
        code, shown = _on_terminal("collect", "--store", str(tmp_path / "a.sqlite"),
                                   "--base-url", api.url)
        assert code == 0, shown
        details = re.search(BAR.format("instance details"), shown)
        assert details is not None and int(details.group(1)) >= 1, shown
        run = _piped("collect", "--store", str(tmp_path / "b.sqlite"), "--base-url", api.url)
        assert run.returncode == 0 and "instance details" not in run.stderr, run.stderr
        code, shown = _on_terminal("collect", "--quiet", "--store", str(tmp_path / "c.sqlite"),
                                   "--base-url", api.url)
        assert code == 0 and "instance details" not in shown, shown
