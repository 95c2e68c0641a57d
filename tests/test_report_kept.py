"""A report on a store from its kept bill and the kept parts of its settled instances
(``Store.read_report``: their version and timeline rows, ``analytics/settledparts.py``)
writes the files the whole history's report writes, byte for byte: on the fake API's
scenario and a generated history with nulls, after new polls, after a settled instance
reappears, before the kept instant (the whole history is read), after a change of the code
that derives the parts, on a read-only store, with ``--all-versions-csv`` and with
``--include-network``.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from conftest import record_state

import shadeanalytics as sa
from shadeanalytics.analytics.settledparts import ReportTables
from shadeanalytics.cli import main
from shadeanalytics.live import store as store_module
from shadeanalytics.testing.fakeapi import State, default_scenario


def _record(states: list[State], path: Path) -> None:
    with sa.Store(path) as store:
        for state in states:
            record_state(store, state, account=True)


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a report folder by its name in the folder (the manifest too)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cli(path: Path, out: Path, *flags: str) -> str:
    """``report --store path --no-charts --out out flags``: its line."""
    said = io.StringIO()
    assert (
        main(
            ["report", "--store", str(path), "--no-charts", "--out", str(out), *flags], stdout=said
        )
        == 0
    )
    return said.getvalue()


def _whole(path: Path, out: Path, *flags: str) -> str:
    """The whole history's report (``report --store`` reading ``Store.read()``, as before
    the kept parts): its line."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sa.Store, "read_report", lambda self, **_: self.read())
        return _cli(path, out, *flags)


def _parts(path: Path) -> list[int]:
    """The parts of the kept report parts in the store at ``path``."""
    with sqlite3.connect(path) as db:
        return [
            p
            for (p,) in db.execute(
                "SELECT part FROM settled_bills WHERE spec LIKE 'parts:%' ORDER BY part"
            )
        ]


def _assert_same(path: Path, tmp: Path, *flags: str, kept: bool = True) -> None:
    """``report --store`` writes what the whole history's report writes, and prints the
    same line; with ``kept``, from the kept parts (a ``ReportTables``)."""
    if kept:
        with sa.Store(path, create=False) as store:
            assert isinstance(store.read_report(), ReportTables)
    fast, slow = tmp / "fast", tmp / "slow"
    line = _cli(path, fast, *flags)
    assert line.replace(str(fast), "OUT") == _whole(path, slow, *flags).replace(str(slow), "OUT")
    got, want = _files(fast), _files(slow)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake API's scenario in a store whose report parts are kept (by a first report)."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _record(default_scenario(), path)
    _cli(path, tmp_path / "first")  # bills, settles, keeps the bill and the parts of it
    assert _parts(path) == [0]
    return path


def test_the_kept_report_equals_the_whole_historys(scenario: Path, tmp_path: Path) -> None:
    """The scenario's report from the kept parts: every file byte-identical to the whole
    history's, the same line printed."""
    _assert_same(scenario, tmp_path)
