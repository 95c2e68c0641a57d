"""One bad record never silences the store: quarantine at the collector's door, stores that
already hold poison, the integrity check before a poll, and the one lock rule of writers."""

from __future__ import annotations

import copy
import io
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_client, fixed_clock, store_rows

from shadeanalytics.cli import EXIT_BREACH, EXIT_DAMAGED, EXIT_REFUSED, exit_code_for, main
from shadeanalytics.errors import DamagedStoreError, DataWarning
from shadeanalytics.live.collect import collect
from shadeanalytics.live.store import Store
from shadeanalytics.live.storedb import SCHEMA_VERSION
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, State, default_scenario

KEY = "test-key-quarantine"
LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"  # llm-serve, listed by /instances
CENTS = "found a string, expected an integer number of cents"


def poisoned(change: Callable[[dict[str, Any]], None], states: int = 2) -> list[State]:
    """The default scenario's first ``states`` states, llm-serve changed by ``change`` in the
    last one."""
    scenario = default_scenario()[:states]
    last = scenario[-1]
    instances = copy.deepcopy(last.instances)
    change(next(i for i in instances["instances"] if i["id"] == LLM))
    scenario[-1] = State(**{**last.__dict__, "instances": instances})
    return scenario


def llm_index(state: State) -> int:
    return [i["id"] for i in state.instances["instances"]].index(LLM)


def run_all(path: Path | str, scenario: list[State]) -> list[Any]:
    """One collect per state of ``scenario`` against a real fake API, each dated by its state."""
    results = []
    with FakeShadeformAPI(api_key=KEY, scenario=scenario) as api:
        for state in scenario:
            results.append(collect(path, make_client=fake_client(api, KEY),
                                   now=fixed_clock(state.at)))
            api.advance()
    return results


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.pg_smoke  # its PostgreSQL half stays in the fast tier
def test_a_wrong_typed_record_is_quarantined_and_keeps_its_last_good_version(
    store_at: str,
) -> None:
    """``hourly_price: "abc"`` in the second poll: refused (id, path, reason; never the value),
    the rest recorded; llm-serve keeps its first version, seen by the second poll, neither
    changed nor gone; the store reads without a warning."""
    scenario = poisoned(lambda i: i.update(hourly_price="abc"))
    path = store_at
    first, second = run_all(path, scenario)
    where = f"$.instances[{llm_index(scenario[1])}].hourly_price"
    assert first.refused == ()
    assert second.refused == (
        f"quarantined: GET /instances at {where} (id {LLM}): {CENTS}; "
        "not stored (the resource keeps its last good version)",
    )
    assert second.counts["refused"] == 1
    assert second.message.endswith("0 failed requests; 1 records refused (quarantined)")
    with Store(path) as store:
        refused = store.quarantine()
        latest = store.read().latest()
    assert refused.drop(columns="observed_at").to_dict("records") == [
        {
            "poll_id": 2,
            "endpoint": "/instances",
            "kind": "instance",
            "resource_id": LLM,
            "path": where,
            "reason": CENTS,
        }
    ]
    assert str(refused["observed_at"].dtype) == "datetime64[us, UTC]"
    row = latest.instances.set_index("instance_id").loc[LLM]
    # the first version's values (A6000 at hyperstack: 65 cents/h), seen by poll 2
    assert (row["status"], row["hourly_price_usd"], row["observed_at"]) == (
        "active",
        0.65,
        scenario[1].at,
    )
    with Store(path) as store:
        assert [tuple(r.values()) for r in store_rows(
            store,
            "SELECT count(*) AS n, max(CASE WHEN valid_to IS NULL THEN 1 ELSE 0 END) AS cur, "
            "max(gone) AS gone "
            "FROM versions WHERE kind = 'instance' AND resource_id = ?",
            LLM,
        )] == [(1, 1, 0)]
        payloads = store_rows(store, "SELECT payload FROM versions")
        assert "abc" not in "".join(r["payload"] for r in payloads)


def test_collect_exits_65_and_every_reader_and_check_work_on_the_store(
    store_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line: ``collect`` exits 65 with a warning line per refused record; then
    ``summary`` reads the store as it is, and ``check`` raises ``quarantined_records``."""
    scenario = poisoned(lambda i: i.update(status=5))
    store = store_at
    monkeypatch.setenv("SHADEFORM_API_KEY", KEY)
    codes = []
    with FakeShadeformAPI(api_key=KEY, scenario=scenario) as api:
        for state in scenario:
            monkeypatch.setenv("SHADEANALYTICS_NOW", state.at.isoformat())
            codes.append(cli("collect", "--store", store, "--base-url", api.url, "--quiet"))
            api.advance()
    assert [c[0] for c in codes] == [0, EXIT_REFUSED]
    where = f"$.instances[{llm_index(scenario[1])}].status"
    assert codes[1][2] == (
        f"Warning: quarantined: GET /instances at {where} (id {LLM}): found "
        "an integer, expected a status string; not stored (the resource "
        "keeps its last good version)\n"
    )
    assert codes[1][1].startswith("poll 2 ok in ")
    code, out, err = cli("summary", "--store", store)
    assert (code, err) == (0, "") and out
    code, out, err = cli("check", "--store", store)
    assert (code, err) == (EXIT_BREACH, "")
    assert (
        f"quarantined_records: poll 2 at 2026-03-02T10:10:00Z refused 1 record (quarantined, "
        f"not stored; first: GET /instances at {where} (id {LLM}): found an integer, "
        "expected a status string)\n" in out
    )


def test_a_store_already_holding_poison_reads_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version stored before the door checked it (written here with the check off) no longer
    stops a read: the record is set aside with a DataWarning (no ``errors="skip"``), and
    ``check`` names it as ``quarantined_records``."""
    scenario = poisoned(lambda i: i.update(hourly_price="abc"))
    path = tmp_path / "fleet.sqlite"
    with monkeypatch.context() as patched:
        patched.setattr(Store, "_refusals", lambda self, opened: {})
        run_all(path, scenario)
    with Store(path) as store, pytest.warns(DataWarning) as caught:
        tables = store.read()
    assert [str(w.message) for w in caught] == [
        f"$.hourly_price: record skipped: {CENTS} (first at {path} (version 28) at "
        f"$.hourly_price (id {LLM}))"
    ]
    assert tables.skipped == 1
    assert LLM in set(tables.instances["instance_id"])  # its first, good version
    code, out, err = cli("check", "--store", str(path))
    assert code == EXIT_BREACH
    assert "quarantined_records: 1 stored record cannot load and is set aside\n" in out
    assert err == (
        f"Warning: $.hourly_price: record skipped: {CENTS} (first at {path} "
        f"(version 28) at $.hourly_price (id {LLM}))\n"
    )


def corrupt(path: Path) -> None:
    """Overwrite the cells of one index page of the store: SQLite's quick check fails."""
    with sqlite3.connect(path) as conn:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'versions_history'"
        ).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * size
    data[start + 8 : start + size] = b"\xff" * (size - 8)
    path.write_bytes(bytes(data))


def test_collect_refuses_a_store_failing_the_integrity_check(tmp_path: Path) -> None:
    """A damaged store: ``collect`` asks the API nothing, writes nothing, and raises
    ``DamagedStoreError`` (exit 74) naming the store and the first problem."""
    scenario = default_scenario()[:2]
    path = tmp_path / "fleet.sqlite"
    run_all(path, scenario[:1])
    corrupt(path)
    before = path.read_bytes()
    with (
        FakeShadeformAPI(api_key=KEY, scenario=scenario) as api,
        pytest.raises(DamagedStoreError) as caught,
    ):
        collect(path, make_client=fake_client(api, KEY), now=lambda: scenario[1].at)
    assert api.requests == []
    assert str(caught.value).startswith(
        f"{path}: the store fails SQLite's integrity check (On tree page "
    )
    assert str(caught.value).endswith(
        "); this run wrote nothing: restore it from a backup or move it aside"
    )
    assert exit_code_for(caught.value) == EXIT_DAMAGED == 74
    assert path.read_bytes() == before


def test_a_store_of_schema_3_gains_the_quarantine_when_opened(tmp_path: Path) -> None:
    """Schema 3 -> 4: the quarantine table and ``polls.refused`` are added in place; the
    polls recorded before have no count (NA)."""
    path = tmp_path / "fleet.sqlite"
    run_all(path, default_scenario()[:1])
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("DROP TABLE quarantine")
        conn.execute("ALTER TABLE polls DROP COLUMN refused")
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    with Store(path) as store:
        assert store.poll(1)["refused"] is None
        assert store.quarantine().empty
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()
