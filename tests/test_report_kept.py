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

import pandas as pd
import pytest
from conftest import make_instance, record_state
from test_settled import _generated, _listed

import shadeanalytics as sa
from shadeanalytics.analytics.settledparts import ReportTables
from shadeanalytics.cli import main
from shadeanalytics.live import settled as settled_module
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
    history's, the same line printed; so too a day after its newest poll (the settled
    instances' last intervals counted up to then)."""
    _assert_same(scenario, tmp_path / "newest")
    with sa.Store(scenario, create=False) as store:
        newest = store.read().polls["observed_at"].max()
    later = (newest + pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _assert_same(scenario, tmp_path / "later", "--as-of", later)
    # a settled instance's last (current) interval counts up to the later instant
    with sa.Store(scenario, create=False) as store:
        tables = store.read_report()
    assert isinstance(tables, ReportTables) and tables.parts is not None
    frame = pd.read_csv(tmp_path / "later" / "fast" / "timeline.csv", dtype=str)
    rows = frame[frame["resource_id"] == sorted(tables.parts.instances)[0]]
    last = rows.iloc[-1]
    assert pd.isna(last["end_at"]) and last["status"] == "deleted"
    span = pd.Timestamp(later) - pd.Timestamp(last["start_at"])
    assert float(last["duration_s"]) == span.total_seconds() >= 86_400


@pytest.mark.hardening  # a few reports each way: the fast tier has two tests
def test_flags_and_a_changed_parts_code(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--all-versions-csv`` and ``--include-network`` the kept report equals the
    whole history's; parts kept by other code are not read: one whole read, which keeps
    the parts of this code in their place (one part), then the report from them."""
    _assert_same(scenario, tmp_path / "csv", "--all-versions-csv")
    _assert_same(scenario, tmp_path / "net", "--include-network")
    monkeypatch.setattr(settled_module, "_parts_digest", lambda: "other-code")
    with sa.Store(scenario, create=False) as store:
        assert not isinstance(store.read_report(), ReportTables)  # the whole history
    with sqlite3.connect(scenario) as db:
        specs = [
            s for (s,) in db.execute("SELECT spec FROM settled_bills WHERE spec LIKE 'parts:%'")
        ]
    assert len(specs) == 1 and specs[0].endswith("other-code")
    _assert_same(scenario, tmp_path / "again")


@pytest.mark.hardening  # a few reports each way: the fast tier has two tests
def test_before_the_kept_instant_the_whole_history_is_read(scenario: Path, tmp_path: Path) -> None:
    """``report --as-of`` before the kept bill's instant reads the whole history: the
    files of the whole history's report as of that instant."""
    with sa.Store(scenario, create=False) as store:
        tables = store.read()
    early = tables.polls["observed_at"].iloc[3].strftime("%Y-%m-%dT%H:%M:%SZ")
    _cli(scenario, tmp_path / "fast", "--as-of", early)
    _whole(scenario, tmp_path / "slow", "--as-of", early)
    got, want = _files(tmp_path / "fast"), _files(tmp_path / "slow")
    assert [name for name in want if got.get(name) != want[name]] == []
    assert "timeline.csv" in want


@pytest.mark.hardening  # a few reports each way: the fast tier has two tests
def test_a_read_only_store_reads_its_kept_parts(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only store with kept parts reports from them; one with nothing kept reads the
    whole history and keeps nothing; both equal the whole history's report."""
    monkeypatch.setattr(sa.Store, "_writable", lambda self: False)
    _assert_same(scenario, tmp_path / "kept")
    bare = tmp_path / "bare.db"
    monkeypatch.undo()
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    _record(default_scenario(), bare)
    monkeypatch.setattr(sa.Store, "_writable", lambda self: False)
    _assert_same(bare, tmp_path / "bare", kept=False)
    with sqlite3.connect(bare) as db:
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE name = 'settled_bills'").fetchall()
            == []
        )


def test_new_polls_and_a_settled_instance_seen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """i-a settles (vanished at 01:00), is listed again (its parts dropped: the report
    reads its rows), vanishes and settles again (its newer parts win over the older):
    after each round the kept report equals the whole history's; each round that settles
    more keeps its parts (here: again in one part, the older one of i-a stale)."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    a, b = make_instance("i-a"), make_instance("i-b", active_at="2026-11-20T00:10:00Z")
    back = make_instance("i-a", active_at="2026-11-20T02:00:00Z")
    rounds = [
        [_listed(30, a, b), _listed(60, b), _listed(90, b)],  # i-a settles
        [_listed(120, back, b), _listed(180, back, b)],  # i-a seen again
        [_listed(240, b), _listed(270, b)],  # i-a settles again
    ]
    for k, states in enumerate(rounds):
        _record(states, path)
        with sa.Store(path, create=False) as store:
            tables = store.read_report()
        settled = {} if k == 1 else {"i-a"}
        assert isinstance(tables, ReportTables) == bool(settled)
        if isinstance(tables, ReportTables):
            assert tables.parts is not None and tables.parts.instances == settled
        _assert_same(path, tmp_path / str(k), kept=bool(settled))
    assert _parts(path) == [0]  # kept again in one part: its older part of i-a was stale
    # i-a's kept intervals, the last one counted up to the report's instant (04:30)
    timeline = (tmp_path / "2" / "fast" / "timeline.csv").read_text().splitlines()
    assert [line for line in timeline if ",i-a," in line] == [
        "instance,i-a,node-i-a,,hyperstack,A6000,active,2026-11-20T00:05:00Z,"
        "2026-11-20T04:00:00Z,14100.0,api",
        "instance,i-a,node-i-a,,hyperstack,A6000,deleted,2026-11-20T04:00:00Z,,1800.0,observed",
    ]


@pytest.mark.hardening  # six reports of a generated history
def test_new_polls_to_a_generated_history_with_nulls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated history with nulls, recorded in three rounds: after each, the kept
    report equals the whole history's, and the instances settled since have parts of their
    own (one part more a round)."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    states = _generated(3, 12, 0.2)
    ids = []
    for first, last in ((0, 5), (5, 9), (9, 12)):
        _record(states[first:last], path)
        with sa.Store(path, create=False) as store:
            tables = store.read_report()
        assert isinstance(tables, ReportTables) and tables.parts is not None
        ids.append(tables.parts.instances)
        _assert_same(path, tmp_path / str(last))
    assert ids[0] and ids[0] <= ids[1] <= ids[2] and ids[0] != ids[2]
    assert _parts(path) == list(range(1 + (ids[1] != ids[0]) + (ids[2] != ids[1])))


@pytest.mark.hardening  # two reports per backend; the fast tier has two tests of SQLite
def test_both_backends_keep_the_report_parts(
    store_at: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLite file and a PostgreSQL schema: the report parts are kept by the read that
    settles, and the report from them writes the whole history's files."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    with sa.Store(store_at) as store:
        for state in _generated(2, 8, 0.1):
            record_state(store, state)
        first = store.read_report()  # settles, keeps the bill and the parts
        again, whole = store.read_report(), store.read()
    assert isinstance(first, ReportTables) and isinstance(again, ReportTables)
    assert first.parts is not None and again.parts is not None
    assert again.parts.instances == first.parts.instances != set()
    assert again.instance_rows == len(whole.instances)
    sa.write_report(again, tmp_path / "fast", charts=False)
    sa.write_report(whole, tmp_path / "slow", charts=False)
    got, want = _files(tmp_path / "fast"), _files(tmp_path / "slow")
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []


def _damage(path: Path, where: str) -> int:
    """Overwrite the data of the kept rows ``where`` (SQL on ``settled_bills``, or
    ``row_blocks``) with bytes that decode to nothing; how many."""
    table, _, cond = where.partition(":")
    with sqlite3.connect(path) as db:
        return db.execute(f"UPDATE {table} SET data = X'92c0ff00' WHERE {cond or '1'}").rowcount


def _kept_data(path: Path) -> list[tuple[str, int, int]]:
    """(spec, part, size) of each row of ``settled_bills``."""
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT spec, part, length(data) FROM settled_bills"))


def test_a_kept_blob_that_cannot_be_decoded_is_read_around_and_kept_again(
    scenario: Path, tmp_path: Path
) -> None:
    """Every blob the store keeps between reads (row blocks, the kept bill, its sums, the
    open rows, the report parts) overwritten with bytes that decode to nothing: the reads
    warn, naming the store, read from the versions, and keep them again; the report and
    the summary equal the whole history's."""
    from shadeanalytics.errors import DataWarning

    whole = _whole(scenario, tmp_path / "want")
    with sa.Store(scenario) as store:
        store.read_settled()  # (a second read: keeps the open rows)
    assert _damage(scenario, "row_blocks") >= 1
    assert _damage(scenario, "settled_bills") == 4  # the bill, its sums, open rows, parts
    with pytest.warns(DataWarning, match="cannot be read") as said, sa.Store(scenario) as store:
        assert store.read_summed() is None  # (and the sums dropped)
    assert f"{scenario}: the summary's sums kept in the store cannot be read (DecodeError): " \
        "read from the versions instead (a writable store keeps it again)" in {
            str(w.message) for w in said}
    with pytest.warns(DataWarning, match="cannot be read") as more, sa.Store(scenario) as store:
        store.read_report()  # the bill made again: its instances' parts from its rows
    found = {str(w.message).split(": the ")[1].split(" kept")[0] for w in [*said, *more]}
    assert found == {"summary's sums", "derived rows", "settled bill", "open rows",
                     "report parts"}
    assert all(str(w.message).startswith(f"{scenario}: ") for w in [*said, *more])
    # kept again: the next reads warn of nothing (a warning would fail this test)
    assert all(size > 4 for *_, size in _kept_data(scenario))  # damaged ones replaced
    with sqlite3.connect(scenario) as db:
        assert db.execute("SELECT min(length(data)) FROM row_blocks").fetchone()[0] > 4
    _assert_same(scenario, tmp_path / "again")
    got = _cli(scenario, tmp_path / "got")
    assert got.replace(str(tmp_path / "got"), "OUT") == whole.replace(
        str(tmp_path / "want"), "OUT")
    assert _files(tmp_path / "got") == _files(tmp_path / "want")  # as before the damage
    with sa.Store(scenario, create=False) as store:
        assert store.read_summed() is not None
