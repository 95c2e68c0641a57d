"""Hardening: one bad record never silences the store. Each attack of issue 21's store half,
replayed through a real fake API (or real processes), bounded in time: poisoned records of each
kind, a store already holding poison, checks through symlinks, a damaged store."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Hook, cli_env, fake_client, fixed_clock

from shadeanalytics.cli import EXIT_BREACH, EXIT_DAMAGED, EXIT_OK, EXIT_REFUSED, main
from shadeanalytics.live.collect import collect
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, State, default_scenario

pytestmark = pytest.mark.hardening

KEY = "test-key-hostile-store"
LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"
#: each poison of the issue: (field path inside the instance, value, the reason refused)
POISONS = {
    "price_text": ("hourly_price", "abc", "found a string, expected an integer number of cents"),
    "status_number": ("status", 5, "found an integer, expected a status string"),
    "bad_date": ("created_at", "yesterday at noon", "not an RFC 3339 timestamp"),
    "fractional_gpus": ("configuration.num_gpus", 1.5, "found a number, expected an integer"),
    "price_2_70": ("hourly_price", 2**70, "an integer out of range"),
    "price_1_5e300": ("hourly_price", 1.5e300, "an integer out of range"),
}
#: a bound for each command on this small fleet (seconds), generous for a loaded machine
BOUND_S = 60.0


def _poisoned(field: str, value: Any) -> list[State]:
    scenario = default_scenario()[:2]
    instances = copy.deepcopy(scenario[1].instances)
    target = next(i for i in instances["instances"] if i["id"] == LLM)
    *parents, name = field.split(".")
    for part in parents:
        target = target[part]
    target[name] = value
    scenario[1] = State(**{**scenario[1].__dict__, "instances": instances})
    return scenario


def _cli(*argv: str) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    began = time.monotonic()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue(), time.monotonic() - began


def _every_reader(store: str, tmp_path: Path) -> dict[str, tuple[int, str, str, float]]:
    """summary, check, report, the Parquet export and the FOCUS export of ``store``."""
    return {
        "summary": _cli("summary", "--store", store),
        "check": _cli("check", "--store", store),
        "report": _cli(
            "report", "--store", store, "--out", str(tmp_path / "report"), "--no-charts", "--quiet"
        ),
        "parquet": _cli("export", "--store", store, "--out", str(tmp_path / "parquet")),
        "focus": _cli(
            "export", "--store", store, "--format", "focus", "--out", str(tmp_path / "focus")
        ),
    }


@pytest.mark.parametrize("poison", POISONS)
def test_a_poisoned_record_is_quarantined_and_every_command_reads_the_store(
    poison: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by a real fake API: ``collect`` exits 65 naming the id, the path and the reason
    (never the value); summary, report and both exports exit 0 on the store, ``check`` exits
    10 with ``quarantined_records``; every command within its bound."""
    field, value, reason = POISONS[poison]
    scenario = _poisoned(field, value)
    store = str(tmp_path / "fleet.sqlite")
    monkeypatch.setenv("SHADEFORM_API_KEY", KEY)
    runs = []
    with FakeShadeformAPI(api_key=KEY, scenario=scenario) as api:
        for state in scenario:
            monkeypatch.setenv("SHADEANALYTICS_NOW", state.at.isoformat())
            runs.append(_cli("collect", "--store", store, "--base-url", api.url, "--quiet"))
            api.advance()
    index = [i["id"] for i in scenario[1].instances["instances"]].index(LLM)
    assert [r[0] for r in runs] == [EXIT_OK, EXIT_REFUSED]
    assert runs[1][2] == (
        f"Warning: quarantined: GET /instances at $.instances[{index}]."
        f"{field} (id {LLM}): {reason}; not stored (the resource keeps its "
        "last good version)\n"
    )
    if isinstance(value, str):
        assert value not in runs[1][2]
    assert max(r[3] for r in runs) < BOUND_S
    results = _every_reader(store, tmp_path)
    assert {name: (r[0], r[2]) for name, r in results.items()} == {
        "summary": (EXIT_OK, ""),
        "check": (EXIT_BREACH, ""),
        "report": (EXIT_OK, ""),
        "parquet": (EXIT_OK, ""),
        "focus": (EXIT_OK, ""),
    }
    assert (
        "quarantined_records: poll 2 at 2026-03-02T10:10:00Z refused 1 record"
        in results["check"][1]
    )
    assert max(r[3] for r in results.values()) < BOUND_S
    with Store(store) as opened:
        assert opened.quarantine()["reason"].tolist() == [reason]


def test_a_store_already_holding_poison_serves_every_command_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each poison stored the old way (the door's check off): every command reads the store
    without ``--errors skip``, warning once per record set aside."""
    path = tmp_path / "fleet.sqlite"
    monkeypatch.setattr(Store, "_refusals", lambda self, opened: {})
    states = default_scenario()[:1]
    for n, (field, value, _) in enumerate(POISONS.values()):
        state = _poisoned(field, value)[1]
        at = states[0].at.replace(minute=10 + n)
        states.append(State(**{**state.__dict__, "at": at}))
    with FakeShadeformAPI(api_key=KEY, scenario=states) as api:
        for state in states:
            collect(path, make_client=fake_client(api, KEY), now=fixed_clock(state.at))
            api.advance()
    monkeypatch.undo()
    results = _every_reader(str(path), tmp_path)
    assert {name: r[0] for name, r in results.items()} == {
        "summary": EXIT_OK,
        "check": EXIT_BREACH,
        "report": EXIT_OK,
        "parquet": EXIT_OK,
        "focus": EXIT_OK,
    }
    for name, (_, _, err, seconds) in results.items():
        lines = err.splitlines()
        assert lines and all(
            line.startswith("Warning: ") and "record skipped" in line for line in lines
        ), name
        assert "abc" not in err and "yesterday" not in err, name
        assert seconds < BOUND_S, name
    assert (
        "quarantined_records: 6 stored records cannot load and are set aside" in results["check"][1]
    )


def test_two_checks_through_symlinks_to_one_store_send_once(tmp_path: Path) -> None:
    """Two ``check`` processes at once, each through its own symlink to one store, with a
    webhook that takes 2 s: the store file's lock makes the second wait; it then finds the
    episode open and sends nothing. One alert in all; both exit 10."""
    scenario = _poisoned("hourly_price", "abc")
    path = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY, scenario=scenario) as api:
        for state in scenario:
            collect(path, make_client=fake_client(api, KEY), now=fixed_clock(state.at))
            api.advance()
    links = [tmp_path / "a" / "fleet.sqlite", tmp_path / "b.sqlite"]
    links[0].parent.mkdir()
    for link in links:
        link.symlink_to(path)
    with Hook(delay=2.0) as hook:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shadeanalytics",
                    "check",
                    "--store",
                    str(link),
                    "--webhook",
                    hook.url,
                ],
                env=cli_env(),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for link in links
        ]
        outcomes = [p.communicate(timeout=BOUND_S) for p in procs]
    assert [p.returncode for p in procs] == [EXIT_BREACH, EXIT_BREACH], outcomes
    assert len(hook.bodies) == 1
    assert "quarantined_records" in [b["rule"] for b in hook.bodies[0]["breaches"]]
    assert not list(tmp_path.glob("**/*.check.lock"))


def test_collect_into_a_damaged_store_exits_74_and_writes_nothing(tmp_path: Path) -> None:
    """A store whose pages are damaged: ``collect`` (a real process) exits 74 with one line
    naming the store, asks the API nothing and leaves the file as it was."""
    from test_quarantine import corrupt

    scenario = default_scenario()[:2]
    path = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY, scenario=scenario) as api:
        collect(path, make_client=fake_client(api, KEY), now=lambda: scenario[0].at)
        asked = len(api.requests)
        corrupt(path)
        before = path.read_bytes()
        began = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "shadeanalytics",
                "collect",
                "--store",
                str(path),
                "--base-url",
                api.url,
            ],
            env=cli_env(KEY, scenario[1].at),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=BOUND_S,
        )
        assert len(api.requests) == asked
    assert time.monotonic() - began < BOUND_S
    assert done.returncode == EXIT_DAMAGED
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"Error: {path}: the store fails SQLite's integrity check (On tree page "
    )
    assert done.stderr.count("\n") == 1
    assert path.read_bytes() == before
