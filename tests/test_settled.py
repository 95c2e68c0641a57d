"""The store's kept bill of settled instances (``live/settled.py``) bills to the cent as the
whole history does: every view the summary and the report make from the bill, on the sample,
the fake API's scenario and generated histories with nulls; after new polls are added to a
store whose bill was kept (the incremental update), after a settled instance reappears, and
at an instant before the kept bill (the whole history is read then).
"""

from __future__ import annotations

import io
import math
import sqlite3
from base64 import b64encode
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest
from conftest import (
    NULLABLE,
    generated_with_nulls,
    make_cluster,
    make_instance,
    record_state,
    sample_states,
    store_rows,
)

import shadeanalytics as sa
from shadeanalytics._common import usd
from shadeanalytics.analytics.billing import Bill, SettledTables, settle
from shadeanalytics.analytics.costs import group_sums
from shadeanalytics.analytics.finops import cost_over_time
from shadeanalytics.analytics.quality import SEVERITIES, finding_counts
from shadeanalytics.analytics.settledsums import SummedTables
from shadeanalytics.cli import main
from shadeanalytics.live import settled as settled_module
from shadeanalytics.live import store as store_module
from shadeanalytics.output.report import summary_text
from shadeanalytics.testing.fakeapi import DEFAULT_SECRETS, State, default_scenario

#: the sort keys that make two bills' row frames comparable (rows of the kept bill come
#: back in the order of their last sighting, as in the whole history's)
_KEYS = {
    "instances": ["instance_id"],
    "instance_tags": ["instance_id", "position"],
    "intervals": ["instance_id", "start_at", "basis"],
}


def _record(states: list[State], path: Path) -> None:
    """Record ``states`` as polls of the store at ``path``."""
    with sa.Store(path) as store:
        for state in states:
            record_state(store, state, account=True)


def _reads(path: Path) -> tuple[sa.Tables, SettledTables]:
    """The whole history and the settled read of the store at ``path``."""
    with sa.Store(path, create=False) as store:
        return store.read(), store.read_settled()


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _assert_same_bill(full: sa.Tables, part: SettledTables, *, views: bool = False) -> Bill:
    """The bill of ``part`` equals that of ``full`` to the last bit (the kept rows are the
    rule's own output); with ``views``, so does every view the summary and the report make
    of it, to the cent, and the summary's text. Returns the bill."""
    whole, fast = sa.bill_fleet(full), sa.bill_fleet(part)
    for name, keys in _KEYS.items():
        pd.testing.assert_frame_equal(
            _sorted(getattr(fast, name), keys),
            _sorted(getattr(whole, name), keys),
            check_exact=True,
        )
    assert fast.snapshots == whole.snapshots
    assert fast.as_of == whole.as_of and fast.freshness == whole.freshness
    pd.testing.assert_frame_equal(fast.volumes, whole.volumes)
    pd.testing.assert_frame_equal(fast.clusters, whole.clusters)
    if not views:
        return fast
    made = {
        "by cloud": lambda b: sa.cost_breakdown(b),
        "by tag": lambda b: sa.cost_breakdown(b, by="tag"),
        "by gpu_type": lambda b: sa.cost_breakdown(b, by="gpu_type"),
        "inventory": lambda b: sa.gpu_inventory(b),
        "quality": lambda b: sa.quality_checks(b),
        "clusters": lambda b: sa.cluster_summary(b),
        "forecast": lambda b: sa.month_forecast(b),
        "daily": lambda b: cost_over_time(b, freq="D"),
        "savings": lambda b: sa.market_compare(b),
    }
    for name, view in made.items():
        got, want = view(fast), view(whole)
        sort = [c for c in got.columns if got[c].dtype == "string"][:3]
        if name in ("quality", "savings"):
            got, want = _sorted(got, sort), _sorted(want, sort)
        pd.testing.assert_frame_equal(got, want, check_exact=False, atol=0.005, obj=name)
    assert summary_text(part) == summary_text(full)
    return fast



#: the fields nulled at random in the generated histories: the store tests' and two more
_NULLED = (*NULLABLE, "active_at", "hourly_price")


def _generated(seed: int, polls: int, nulls: float) -> list[State]:
    """A generated history, fields the API leaves null by lifecycle nulled at random."""
    return generated_with_nulls(seed, polls, nulls, _NULLED)


_HISTORIES = {
    "sample": sample_states,
    "scenario": default_scenario,
    "generated": lambda: _generated(11, 10, 0.2),
    "generated, more nulls": lambda: _generated(5, 10, 0.4),
}


def _kept_twice(name: str, tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    _record(_HISTORIES[name](), path)
    full, first = _reads(path)  # the first settled read bills and keeps
    assert first.settled is not None and not first.settled.instances.empty
    assert first.billed is not None  # billed by the read to find what settled
    _assert_same_bill(full, first)
    _assert_same_bill(full, replace(first, billed=None))  # its rows billed again
    full, again = _reads(path)  # from the kept bill
    assert again.settled is not None
    assert set(again.settled.ids) == set(first.settled.ids)
    assert not again.instances["instance_id"].isin(list(again.settled.ids)).any()
    _assert_same_bill(full, again, views=True)


def test_the_settled_read_bills_as_the_whole_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake API's scenario, kept once, then read from the kept bill: every view equals
    the whole history's."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    _kept_twice("scenario", tmp_path)


@pytest.mark.hardening
@pytest.mark.parametrize("name", ["sample", "generated", "generated, more nulls"])
def test_more_settled_reads_bill_as_the_whole_history(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample and generated histories with nulls, read from their blocks and walking
    their versions: every view equals the whole history's (the generated history's, with
    nulls, is the new-polls test's in the fast tier)."""
    for least in (0, 10**9):
        monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", least)
        (tmp_path / str(least)).mkdir()
        _kept_twice(name, tmp_path / str(least))


@pytest.mark.hardening  # the fast tier's open-rows test adds polls to a kept bill too
def test_new_polls_update_the_kept_bill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls added to a generated history with nulls after the bill was kept: the instances
    settled since join it (in a part of the kept bill each), the bill equals the whole
    history's after each round, and so does every view after the last."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    states = _generated(3, 12, 0.2)
    kept = []
    for first, last in ((0, 5), (5, 9), (9, 12)):
        _record(states[first:last], path)
        full, part = _reads(path)
        _assert_same_bill(full, part, views=last == 12)
        kept.append(set(part.settled.ids) if part.settled is not None else set())
    assert kept[0] and kept[0] <= kept[1] <= kept[2] and kept[0] != kept[2]
    with sqlite3.connect(path) as db:  # each round that settled more added a part
        parts = [
            p for (p,) in db.execute("SELECT part FROM settled_bills WHERE part >= 0 ORDER BY part")
        ]
    assert parts == list(range(1 + (kept[1] != kept[0]) + (kept[2] != kept[1])))
    full, part = _reads(path)  # read from its parts
    assert part.settled is not None and set(part.settled.ids) == kept[2]
    _assert_same_bill(full, part)


def _blocks(path: Path) -> int:
    """How many row blocks the store at ``path`` keeps; after ``DELETE`` of them all."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM row_blocks").fetchone()[0])


def _drop_blocks(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM row_blocks")


def test_a_settled_read_takes_the_open_rows_not_the_row_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second settled read keeps the rows it read (part -1); the next reads take them
    and derive the versions since themselves, never reading (nor keeping) the row blocks,
    and bill as the whole history, to the cent in every view after new polls."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    states = _generated(3, 9, 0.2)
    _record(states[:6], path)
    _reads(path)  # keeps the bill
    with sa.Store(path) as store:
        store.read_settled()  # reads the row blocks: keeps the open rows
    with sqlite3.connect(path) as db:
        parts = db.execute("SELECT part FROM settled_bills ORDER BY part").fetchall()
    assert parts == [(-2,), (-1,), (0,)]
    for more in (states[6:7], states[7:8]):
        _record(more, path)
        _drop_blocks(path)
        with sa.Store(path) as store:
            part = store.read_settled()  # the open rows, and the new versions derived
        assert _blocks(path) == 0  # a read of the row blocks would have kept them again
        with sa.Store(path) as store:
            full = store.read()
        _assert_same_bill(full, part, views=more[-1] is states[7])
    assert summary_text(part, by="tag", top=3) == summary_text(full, by="tag", top=3)
    # more new versions than a read derives itself: the row blocks again
    monkeypatch.setattr(settled_module, "_OPEN_DERIVE_MAX", 0)
    _record(states[8:], path)
    _drop_blocks(path)
    with sa.Store(path) as store:
        part = store.read_settled()
    assert _blocks(path) > 0
    with sqlite3.connect(path) as db:  # and the open rows kept again, through the newest
        assert db.execute(
            "SELECT through_version FROM settled_bills WHERE part = -1"
        ).fetchall() == db.execute("SELECT max(version_id) FROM versions").fetchall()
    with sa.Store(path) as store:
        _assert_same_bill(store.read(), part)


def _kept_polls(path: Path) -> list[int]:
    """The poll ids of the poll log kept with the open rows of the store at ``path``; and
    asserts that the versions of other kinds kept with them, closed and still open, are
    every one through the version they were kept through."""
    with sqlite3.connect(path) as db:
        (data,) = db.execute("SELECT data FROM settled_bills WHERE part = -1").fetchone()
        raw = msgspec.msgpack.decode(data)
        kept = raw["versions"]
        assert kept["closed"]
        assert sorted(
            [row[0] for row in kept["closed"]]
            + np.frombuffer(kept["moving"], np.int64).tolist()
        ) == [
            v
            for (v,) in db.execute(
                "SELECT version_id FROM versions WHERE version_id <= ? "
                "AND kind NOT IN ('instance', 'instance_info') ORDER BY version_id",
                (kept["through"],),
            )
        ]
    return np.frombuffer(raw["polls"]["ids"], np.int64).tolist()


def test_the_poll_log_is_kept_with_the_open_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open rows keep the poll log and the closed versions of clusters and types; later
    reads add the polls after it (a failed one too), kept again past ``_POLLS_LATER_MAX``,
    and give the whole history's polls table and summary."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    states = _generated(3, 7, 0.2)
    _record(states[:4], path)
    _reads(path)
    with sa.Store(path) as store:
        store.read_settled()  # reads the row blocks: keeps the open rows and the poll log
    assert _kept_polls(path) == [1, 2, 3, 4]
    with sa.Store(path) as store:
        store.record_failed_poll(states[4].at - timedelta(seconds=1), error="timed out")
    _record(states[4:5], path)
    with sa.Store(path) as store:
        part, full = store.read_settled(), store.read()
    assert _kept_polls(path) == [1, 2, 3, 4]  # two polls later: fetched, not kept
    pd.testing.assert_frame_equal(part.polls, full.polls)
    assert (~full.polls["ok"]).sum() == 3  # the failed poll's three endpoints
    monkeypatch.setattr(settled_module, "_POLLS_LATER_MAX", 2)
    _record(states[5:], path)
    with sa.Store(path) as store:
        part, full = store.read_settled(), store.read()
    assert _kept_polls(path) == [1, 2, 3, 4, 5, 6, 7, 8]  # kept again: four polls later
    pd.testing.assert_frame_equal(part.polls, full.polls)
    assert summary_text(part) == summary_text(full)


def test_a_bill_kept_in_parts_stacks_as_part_after_part(tmp_path: Path) -> None:
    """Parts stacked at once equal parts added one after another, to the bit."""
    path = tmp_path / "history.db"
    _record(default_scenario(), path)
    with sa.Store(path) as store:
        billed = sa.bill_fleet(store.read())
    gone = billed.instances.loc[billed.instances["status"] == "deleted", "instance_id"]
    ids = sorted(set(gone.astype(str)))
    assert len(ids) >= 3
    parts = [settle(billed, set(ids[k::3])) for k in range(3)]
    assert all(len(part.instances) for part in parts)
    once, stepwise = parts[0].plus(*parts[1:]), parts[0].plus(parts[1]).plus(parts[2])
    for name in ("instances", "instance_tags", "intervals"):
        pd.testing.assert_frame_equal(getattr(once, name), getattr(stepwise, name))
    assert once.times.tolist() == stepwise.times.tolist() and once.as_of == stepwise.as_of
    assert set(once.ids) == {i for part in parts for i in part.ids}


def _at(minutes: int) -> datetime:
    return datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=minutes)


def _listed(at: int, *instances: dict[str, Any]) -> State:
    """A poll at minute ``at`` listing ``instances`` standalone (no clusters)."""
    return State(
        at=_at(at),
        clusters={"clusters": []},
        instances={"instances": list(instances)},
        instance_types=None,
    )


def test_an_instance_that_reappears_is_billed_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settled instance listed again leaves the kept bill: $2.10/h from 00:05 to its
    vanish at 01:00 while gone, then (an absence followed by a sighting is no vanish, by
    the one rule) from 00:05 to 03:00 without a break."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    a, b = make_instance("i-a"), make_instance("i-b", active_at="2026-11-20T00:10:00Z")
    _record([_listed(30, a, b), _listed(60, b), _listed(90, b)], path)
    full, part = _reads(path)
    assert part.settled is not None and set(part.settled.ids) == {"i-a"}
    fast = _assert_same_bill(full, part)
    row = fast.instances.set_index("instance_id").loc["i-a"]
    assert row["accrued_usd"] == pytest.approx(2.10 * 55 / 60)
    assert row["billing_end_source"] == "vanished"
    back = make_instance("i-a", active_at="2026-11-20T02:00:00Z")
    _record([_listed(120, back, b), _listed(180, back, b)], path)
    full, part = _reads(path)
    assert part.settled is None or "i-a" not in set(part.settled.ids)
    fast = _assert_same_bill(full, part)
    row = fast.instances.set_index("instance_id").loc["i-a"]
    assert row["state"] == "running"
    assert row["accrued_usd"] == pytest.approx(2.10 * 175 / 60)


def test_before_the_kept_bill_the_whole_history_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bill_fleet refuses a settled read before its kept bill; ``summary --as-of`` then reads
    the whole history and prints what it prints without a kept bill."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _record(default_scenario(), path)
    full, part = _reads(path)
    assert part.settled is not None
    early = full.polls["observed_at"].iloc[3]
    with pytest.raises(
        ValueError,
        match=r"^these tables leave out the instances settled as "
        r"of .*; bill the whole history \(Store.read\(\)\)",
    ):
        sa.bill_fleet(part, as_of=early)
    out = io.StringIO()
    stamp = early.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main(["summary", "--store", str(path), "--as-of", stamp], stdout=out) == 0
    assert out.getvalue() == summary_text(full, as_of=early)


def test_a_changed_billing_code_bills_everything_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept bill of another fingerprint (the billing code changed) is not read: the read
    bills every instance and keeps a bill of the new fingerprint in its place; no secret of
    the scenario is in the store."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _record(default_scenario(), path)
    _reads(path)
    monkeypatch.setattr(settled_module, "fingerprint", lambda: "another-rule")
    with sa.Store(path) as store:
        settled = store.read_settled()  # nothing kept under this fingerprint: bills all
    assert settled.settled is not None and len(settled.instances) > 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT spec FROM settled_bills WHERE part >= 0").fetchall() == [
            ("another-rule",)
        ]
        # the summary's sums of it, under the new fingerprint too
        (spec,) = db.execute("SELECT spec FROM settled_bills WHERE part = -2").fetchone()
        assert spec.startswith("another-rule") and spec != "another-rule"
    # the kept bill holds the bill's columns only: no canary secret, nor its base64
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("history"))
    assert [s for s in DEFAULT_SECRETS if s.encode() in data or b64encode(s.encode()) in data] == []


def test_a_read_only_store_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store opened read-only: the settled read bills everything, keeps nothing, and
    still equals the whole history."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _record(default_scenario(), path)
    # file modes do not stop root (the CI container's user): say what they would
    monkeypatch.setattr(sa.Store, "_writable", lambda self: False)
    full, part = _reads(path)
    assert part.settled is None
    _assert_same_bill(full, part)
    with sqlite3.connect(path) as db:
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE name = 'settled_bills'").fetchall()
            == []
        )


@pytest.mark.hardening  # a CLI run each way; the fast tier's open-rows test compares summary_text
def test_summary_prints_the_same_from_the_kept_bill(tmp_path: Path) -> None:
    """``summary --store``: the same text before the bill is kept, and from it."""
    path = tmp_path / "history.db"
    _record(_generated(7, 6, 0.1), path)
    with sa.Store(path) as store:
        want = summary_text(store.read())
    for _ in range(2):
        out = io.StringIO()
        assert main(["summary", "--store", str(path)], stdout=out) == 0
        assert out.getvalue() == want
    with sqlite3.connect(path) as db:  # (a small store is read walking its versions: no
        # row blocks, so no open rows are kept either)
        assert db.execute("SELECT part FROM settled_bills ORDER BY part").fetchall() == [
            (-2,),
            (0,),
        ]


def test_both_backends_keep_the_settled_bill(
    store_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLite file and a PostgreSQL schema: the kept bill, read again, bills as the whole
    history, and the store's newest version is the one it was kept through; the summary
    from the kept sums is the whole history's."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    states = _generated(2, 8, 0.1)
    with sa.Store(store_at) as store:
        for state in states:
            store.record_poll(
                state.at,
                clusters=state.clusters,
                instances=state.instances,
                instance_types=state.instance_types,
            )
        first = store.read_settled()
        full, again = store.read(), store.read_settled()
        kept = store_rows(store, "SELECT through_version FROM settled_bills ORDER BY part")
        newest = store_rows(store, "SELECT max(version_id) AS v FROM versions")
    assert first.settled is not None and again.settled is not None
    assert set(again.settled.ids) == set(first.settled.ids) != set()
    # the bill's sums, the open rows the second read took from the row blocks, the bill
    assert [r["through_version"] for r in kept] == [newest[0]["v"]] * 3
    _assert_same_bill(full, again)
    with sa.Store(store_at) as store:
        third = store.read_settled()  # from the kept open rows
        summed = store.read_summed()  # and the kept sums
    _assert_same_bill(full, third)
    assert summed is not None
    _assert_same_summary(full, summed, ("cloud",))


# -- the summary from the kept sums (``Store.read_summed``) ----------------------------------

_BY = ("cloud", "tag", "cluster_id")


def _summed(path: Path | str) -> SummedTables | None:
    with sa.Store(path, create=False) as store:
        return store.read_summed()


def _assert_same_summary(full: sa.Tables, summed: SummedTables, bys: tuple[str, ...] = _BY) -> None:
    """The summary from the kept sums is the whole history's, byte for byte, by each key;
    the settled instances' rows were neither read nor kept in it."""
    assert summed.sums is not None and summed.settled is not None
    assert summed.settled.instances.empty
    assert not summed.instances["instance_id"].isin(list(summed.settled.ids)).any()
    fast, whole = sa.bill_fleet(summed), sa.bill_fleet(full)  # each billed once
    for by in bys:
        assert summary_text(fast, by=by, top=3) == summary_text(whole, by=by, top=3), by


@pytest.mark.parametrize(
    "name",
    [
        "scenario",
        *(
            pytest.param(name, marks=pytest.mark.hardening)
            for name in ("sample", "generated", "generated, more nulls")
        ),
    ],
)
def test_the_summed_read_prints_the_whole_historys_summary(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the bill is kept, its sums are kept beside it: the summary from them and the
    open rows equals the whole history's by every key (settled: none of its rows read)."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _record(_HISTORIES[name](), path)
    assert _summed(path) is None  # nothing kept yet
    full, part = _reads(path)
    assert part.settled is not None and len(part.settled.ids) > 0
    summed = _summed(path)
    assert summed is not None and summed.sums is not None
    assert summed.sums.instances == len(part.settled.ids)
    _assert_same_summary(full, summed)


def _three(path: Path, *, later: bool) -> None:
    """Record i-a, i-b and i-c standalone at $2.10/h: i-a gone after minute 30; with
    ``later``, then i-b gone after minute 90."""
    a, b, c = (make_instance(f"i-{k}") for k in "abc")
    if not later:
        _record([_listed(30, a, b, c), _listed(60, b, c), _listed(90, b, c)], path)
    else:
        _record([_listed(120, c), _listed(150, c)], path)


def test_new_polls_add_to_the_kept_sums_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """i-a settled and summed; then i-b leaves: the summed read adds its sums as a part more
    (each at $2.10/h from 00:05 to its vanish, at 01:00 and 02:00), and prints the whole
    history's summary."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _three(path, later=False)
    _reads(path)
    summed = _summed(path)
    assert summed is not None and summed.sums is not None and summed.sums.instances == 1
    _three(path, later=True)
    summed = _summed(path)  # settles i-b: its sums added
    assert summed is not None and summed.sums is not None and summed.sums.instances == 2
    with sa.Store(path, create=False) as store:
        full = store.read()
    _assert_same_summary(full, summed, ("cloud",))
    again = _summed(path)
    assert again is not None and again.sums is not None and again.sums.instances == 2
    assert set(again.instances["instance_id"].astype(str)) == {"i-c"}
    _assert_same_summary(full, again, ("cloud",))
    with sqlite3.connect(path) as db:
        parts = [p for (p,) in db.execute("SELECT part FROM settled_bills WHERE part >= 0")]
    assert parts == [0, 1]
    billed = sa.bill_fleet(full).instances.set_index("instance_id")["accrued_usd"]
    assert billed["i-a"] == pytest.approx(2.10 * 55 / 60)
    assert billed["i-b"] == pytest.approx(2.10 * 115 / 60)


@pytest.mark.hardening  # the fast tier's by-hand test adds a part to the kept sums too
def test_new_polls_add_to_the_kept_sums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls after the sums were kept: each summed read that finds newly settled instances
    adds their sums (a part more), and prints the whole history's summary every round."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    states = _generated(3, 9, 0.2)
    _record(states[:5], path)
    _reads(path)
    counts = [_summed(path).sums.instances]  # type: ignore[union-attr]
    for first, last in ((5, 9),):
        _record(states[first:last], path)
        summed = _summed(path)
        assert summed is not None and summed.sums is not None
        with sa.Store(path, create=False) as store:
            full = store.read()
        _assert_same_summary(full, summed)
        again = _summed(path)  # from the sums the last read kept
        assert again is not None and again.sums is not None
        _assert_same_summary(full, again)
        counts.append(again.sums.instances)
    with sqlite3.connect(path) as db:
        parts = [p for (p,) in db.execute("SELECT part FROM settled_bills WHERE part >= 0")]
    assert counts[0] < counts[1] and len(parts) == 2  # the round settled more: a part more


def test_a_settled_instance_seen_again_is_summed_from_the_bill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settled instance listed again: its sums cannot be taken out, so the summed read
    gives way (None) and ``summary --store`` reads the kept bill; the text is the whole
    history's (it accrues $2.10/h from 00:05 to 03:00)."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    a, b = make_instance("i-a"), make_instance("i-b", active_at="2026-11-20T00:10:00Z")
    _record([_listed(30, a, b), _listed(60, b), _listed(90, b)], path)
    _reads(path)
    summed = _summed(path)
    assert summed is not None and summed.sums is not None and summed.sums.instances == 1
    back = make_instance("i-a", active_at="2026-11-20T02:00:00Z")
    _record([_listed(120, back, b), _listed(180, back, b)], path)
    assert _summed(path) is None
    out = io.StringIO()
    assert main(["summary", "--store", str(path)], stdout=out) == 0
    with sa.Store(path, create=False) as store:
        full = store.read()
    assert out.getvalue() == summary_text(full)
    row = sa.bill_fleet(full).instances.set_index("instance_id").loc["i-a"]
    assert row["accrued_usd"] == pytest.approx(2.10 * 175 / 60)
    summed = _summed(path)  # the bill kept again without it, with its sums
    assert summed is not None and summed.sums is not None and summed.sums.instances == 0


def test_changed_sums_code_or_a_read_only_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sums kept by other code of the views are not read (None) until a read of the kept
    bill keeps them again; a read-only store answers from sums kept before, and without
    any, gives way to the kept bill."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    _three(path, later=False)
    full, _ = _reads(path)
    assert _summed(path) is not None
    monkeypatch.setattr(settled_module, "_sums_digest", lambda: "other-views")
    assert _summed(path) is None
    _reads(path)  # the kept bill read: its sums kept under this code's fingerprint
    summed = _summed(path)
    assert summed is not None
    _assert_same_summary(full, summed, ("cloud",))
    monkeypatch.setattr(sa.Store, "_writable", lambda self: False)
    summed = _summed(path)
    assert summed is not None
    _assert_same_summary(full, summed, ("cloud",))
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM settled_bills WHERE part = -2")
    assert _summed(path) is None
    out = io.StringIO()
    assert main(["summary", "--store", str(path)], stdout=out) == 0
    assert out.getvalue() == summary_text(full)


def test_kept_sums_add_up_exactly() -> None:
    """Sums of a split of rows add up to the whole's to the bit, where float addition in
    the whole's order ($95.33) and by parts ($95.32) print different cents."""
    rows = pd.DataFrame({"cloud": ["aws"] * 4, "accrued_usd": [14.092, 37.79, 30.918, 12.525]})
    naive = 0.0
    for value in rows["accrued_usd"]:
        naive += value
    parts = (14.092 + 30.918) + (37.79 + 12.525)
    assert (usd(naive), usd(parts)) == ("$95.33", "$95.32")
    whole = group_sums(rows, ["cloud"], [], ["accrued_usd"])
    split = group_sums(rows.iloc[[0, 2]], ["cloud"], [], ["accrued_usd"]).plus(
        group_sums(rows.iloc[[3, 1]], ["cloud"], [], ["accrued_usd"])
    )
    assert split.rows == whole.rows
    total = whole.frame()["accrued_usd"].iloc[0]
    assert total == math.fsum(rows["accrued_usd"]) and usd(total) == "$95.33"


def test_findings_across_rows_count_the_settled_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settled instance still counts where a check looks across rows or at ``as_of``: its
    cluster's price ($4.20/h) matches its two listed instances only with it, its cloud
    differs from its cluster's, its created_at is after as_of; from the kept sums the
    findings are the whole history's, and without them they would not be."""
    monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", 0)
    path = tmp_path / "history.db"
    a = make_instance("i-a", cloud="aws", created_at="2026-12-01T00:00:00Z")
    b = make_instance("i-b")
    both, alone = make_cluster("c-1", [a, b]), make_cluster("c-1", [b], hourly_price=420)

    def poll(at: int, cluster: dict[str, Any], *instances: dict[str, Any]) -> State:
        return replace(_listed(at, *instances), clusters={"clusters": [cluster]})

    _record([poll(30, both, a, b), poll(60, alone, b), poll(90, alone, b)], path)
    full, part = _reads(path)
    assert part.settled is not None and set(part.settled.ids) == {"i-a"}
    summed = _summed(path)
    assert summed is not None and summed.sums is not None
    kept = summed.sums.findings
    assert kept.clouds == {("c-1", "aws"): 1} and len(kept.future) == 1
    want = sa.quality_checks(full)
    assert set(want["check"]) >= {"cloud_mismatch", "future_timestamp"}
    assert "cluster_price_mismatch" not in set(want["check"])
    counts = want["severity"].value_counts()
    fast = sa.bill_fleet(summed)
    assert finding_counts(fast, kept) == {s: int(counts.get(s, 0)) for s in SEVERITIES}
    alone_counts = sa.quality_checks(fast)["severity"].value_counts().to_dict()
    assert alone_counts != counts.to_dict()  # the open rows alone: a price mismatch, ...
    _assert_same_summary(full, summed, ("cloud",))
