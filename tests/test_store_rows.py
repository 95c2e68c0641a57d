"""The store's derived rows: kept row blocks, derived blocks and walking every version read
alike, and a code change derives them again.

``fixtures/store-v2/history.sqlite`` is a real store written by schema 2 (commit bb90f64,
before row blocks) by :func:`build_history` (the fake API's scenario of then): migrated, its
row blocks read as walking its versions again. That a store reads as the same polls loaded
from files is ``test_store_files.py``'s.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shadeanalytics.live.store import SCHEMA_VERSION, Store
from shadeanalytics.testing.fakeapi import default_scenario

FIXTURE = Path(__file__).parent / "fixtures" / "store-v2"
ACCOUNT = ("volumes", "volume_types", "ssh_keys", "templates", "featured_templates",
           "cluster_types")
_T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
#: (since, until) of each read compared; None is open
WINDOWS: tuple[tuple[datetime | None, datetime | None], ...] = (
    (None, None),
    (None, _T0 + timedelta(minutes=45)),          # before the repeated listing
    (_T0 + timedelta(minutes=25), _T0 + timedelta(minutes=40)),  # edges: unknown costs
    (_T0 + timedelta(minutes=10), None),
)


def build_history(path: Path) -> None:
    """A real store: the fake API's seven polls with every account list, the details of the
    standalone instances on every other poll, one failed poll, and (last poll) an instance
    listed twice by ``/instances``. Only ``Store.record_poll`` / ``record_failed_poll``: the
    same calls schema 2 and schema 3 take."""
    with Store(path) as store:
        for n, state in enumerate(default_scenario()):
            if n == 3:
                store.record_failed_poll(state.at - timedelta(minutes=5), error="boom")
            instances = state.instances
            details = {i["id"]: {**i, **state.instance_info_extras.get(i["id"], {})}
                       for i in instances["instances"]} if n % 2 == 0 else {}
            if n == 6:
                twice = copy.deepcopy(instances["instances"][0])
                twice["name"] = "listed-again"
                instances = {"instances": [*instances["instances"], twice]}
            store.record_poll(state.at, clusters=state.clusters, instances=instances,
                              instance_types=state.instance_types,
                              **{name: getattr(state, name) for name in ACCOUNT},
                              instance_details=details)


def read_all(path: Path) -> list[dict[str, Any]]:
    """``Store.read()`` of every window: frames and warnings."""
    out = []
    with Store(path, create=False) as store:
        for since, until in WINDOWS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                tables = store.read(since=since, until=until)
            out.append({"frames": dict(tables.frames()), "warnings": tables.warnings,
                        "skipped": tables.skipped,
                        "warned": [str(w.message) for w in caught]})
    return out


#: Columns the record spec gained after schema 2 wrote the fixture (issue 11: a field added
#: by one declaration). Schema 2 did not read them; the payloads it kept hold them, so an old
#: store gains them (tests/test_spec.py checks their values).
ADDED_SINCE_SCHEMA_2 = {"instances": ["docker_shared_memory_in_gb"]}


def _assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    for window, mine, theirs in zip(WINDOWS, got, want, strict=True):
        assert list(mine["frames"]) == list(theirs["frames"])
        for name, frame in theirs["frames"].items():
            ours = mine["frames"][name]
            added = [c for c in ADDED_SINCE_SCHEMA_2.get(name, []) if c not in frame.columns]
            pd.testing.assert_frame_equal(ours.drop(columns=added), frame, check_exact=True,
                                          obj=f"{name} of window {window}")
        assert (mine["warnings"], mine["skipped"], mine["warned"]) == \
            (theirs["warnings"], theirs["skipped"], theirs["warned"])


@pytest.fixture(autouse=True)
def derive_every_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Row blocks for these small stores too (a read of fewer than 1,000 versions walks them
    again instead): the reads below take them."""
    from shadeanalytics.live import store

    monkeypatch.setattr(store, "_DERIVED_MIN_VERSIONS", 0)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The reads of the fixture walking every stored version, as the loaders walk files
    (frames and warnings, the store named as the fixture's)."""
    from shadeanalytics.live import store

    path = tmp_path_factory.mktemp("walked") / FIXTURE_NAME
    shutil.copyfile(FIXTURE / FIXTURE_NAME, path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_DERIVED_MIN_VERSIONS", 10**9)
        return _renamed(read_all(path), path)


FIXTURE_NAME = "history.sqlite"


def test_a_small_read_walks_the_versions_and_keeps_nothing(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          expected: list[dict[str, Any]]
                                                          ) -> None:
    """A small read walks the stored versions and keeps no derived rows."""
    from shadeanalytics.live import store

    monkeypatch.setattr(store, "_DERIVED_MIN_VERSIONS", 1_000)
    path = tmp_path / FIXTURE_NAME
    shutil.copyfile(FIXTURE / FIXTURE_NAME, path)
    _assert_same(_renamed(read_all(path), path), expected)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM row_blocks").fetchone()[0] == 0


def test_the_fixture_reads_rows_of_every_kind(expected: list[dict[str, Any]]) -> None:
    """The comparison covers details, account tables, unknown costs and a repeat warning."""
    whole, before, edges, _ = expected
    frames = whole["frames"]
    assert len(frames["instances"]) == 31 and frames["instances"]["has_details"].sum() == 13
    assert len(frames["instance_envs"]) == 2 and len(frames["volumes"]) == 4
    assert frames["templates"]["featured"].tolist() == [False, True, False, True]
    assert edges["frames"]["instances"]["cost_estimate_usd"].isna().sum() == 7
    assert whole["warned"] == [
        "$: the same id appears twice in one snapshot with different content; both rows kept "
        f"(first at {FIXTURE_NAME} (version 59) at $ (id d290f1ee-6c54-4b01-90e6-d701748f0851)"
        "; 2 records)"]
    assert before["warned"] == []


def test_a_schema_2_store_is_migrated_and_reads_as_walking_it(
        tmp_path: Path, expected: list[dict[str, Any]]) -> None:
    """A schema 2 store is migrated on first read, derives its rows and reads as walking its
    versions, then as well from the rows it kept."""
    from shadeanalytics.live import rows

    path = tmp_path / FIXTURE_NAME
    shutil.copyfile(FIXTURE / FIXTURE_NAME, path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    got = read_all(path)  # migrates, derives every version, keeps the rows
    _assert_same(_renamed(got, path), expected)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        blocks = conn.execute("SELECT first_version, last_version, spec FROM row_blocks"
                              ).fetchall()
        versions = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    assert blocks == [(1, versions, rows.spec_fingerprint())]
    _assert_same(_renamed(read_all(path), path), expected)  # from the kept rows


def test_a_read_only_schema_2_store_reads_without_migrating(
        tmp_path: Path, expected: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only schema 2 store reads as walking its versions and is left unmigrated."""
    path = tmp_path / FIXTURE_NAME
    shutil.copyfile(FIXTURE / FIXTURE_NAME, path)
    path.chmod(0o444)
    # file modes do not stop root (the CI container's user): say what they would
    monkeypatch.setattr(Store, "_writable", lambda self: False)
    _assert_same(_renamed(read_all(path), path), expected)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_new_store_reads_as_walking_its_versions(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Read from row blocks (twice: derived, then kept), the reads equal walking every
    version again."""
    from shadeanalytics.live import store

    path = tmp_path / FIXTURE_NAME
    build_history(path)
    monkeypatch.setattr(store, "_DERIVED_MIN_VERSIONS", 10**9)
    walked = read_all(path)
    monkeypatch.setattr(store, "_DERIVED_MIN_VERSIONS", 0)
    _assert_same(read_all(path), walked)
    _assert_same(read_all(path), walked)


def test_rows_are_derived_only_for_versions_new_since_the_last_read(tmp_path: Path) -> None:
    """Rows are derived only for the versions new since the last read."""
    path = tmp_path / "fleet.sqlite"
    states = default_scenario()
    with Store(path) as store:
        for state in states[:3]:
            store.record_poll(state.at, clusters=state.clusters, instances=state.instances,
                              instance_types=state.instance_types)
        store.read()
        for state in states[3:]:
            store.record_poll(state.at, clusters=state.clusters, instances=state.instances,
                              instance_types=state.instance_types)
        tables = store.read()
    with sqlite3.connect(path) as conn:
        blocks = conn.execute("SELECT first_version, last_version FROM row_blocks "
                              "ORDER BY first_version").fetchall()
        versions = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
        first_reads = conn.execute("SELECT count(*) FROM versions WHERE valid_from <= 3"
                                   ).fetchone()[0]
    # the second block (the versions of polls 4-7) was merged into the first: not much smaller
    assert blocks == [(1, versions)] and 0 < first_reads < versions
    with Store(path) as store:
        assert_tables_equal(store.read(), tables)


def test_a_broken_chain_of_row_blocks_is_derived_again(tmp_path: Path) -> None:
    """A broken chain of stored row blocks is derived again: the read is unchanged."""
    path = tmp_path / "fleet.sqlite"
    build_history(path)
    with Store(path) as store:
        before = store.read(until=_T0 + timedelta(minutes=45))
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
        conn.execute("UPDATE row_blocks SET first_version = 2")  # version 1's rows lost
    with Store(path) as store:
        assert_tables_equal(store.read(until=_T0 + timedelta(minutes=45)), before)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT first_version, last_version FROM row_blocks").fetchall() \
            == [(1, versions)]


def test_no_secret_reaches_the_row_blocks(tmp_path: Path) -> None:
    """The kept rows hold names, flags and digests only: no canary secret (nor its base64) is in
    the store or its WAL once its rows are kept."""
    import base64

    from shadeanalytics.testing.fakeapi import DEFAULT_SECRETS

    path = tmp_path / "fleet.sqlite"
    build_history(path)
    with Store(path) as store:
        tables = store.read(until=_T0 + timedelta(minutes=45))
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM row_blocks").fetchone()[0] == 1
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert tables.docker_envs["name"].notna().all() and len(tables.docker_envs) > 0
    assert [s for s in DEFAULT_SECRETS
            if s.encode() in data or base64.b64encode(s.encode()) in data] == []


def test_a_read_keeps_nothing_while_a_writer_holds_the_store(tmp_path: Path) -> None:
    """A collector in its transaction: the read does not wait for it past a second, gives the
    same tables, and the next read keeps the rows."""
    import time

    path = tmp_path / "fleet.sqlite"
    build_history(path)
    with Store(path) as store:
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        try:
            locked = store.read(until=_T0 + timedelta(minutes=45))
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert time.monotonic() - began < 5
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM row_blocks").fetchone()[0] == 0
        assert_tables_equal(store.read(until=_T0 + timedelta(minutes=45)), locked)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM row_blocks").fetchone()[0] == 1


def assert_tables_equal(a: Any, b: Any) -> None:
    for (name, x), (_, y) in zip(a.frames(), b.frames(), strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


@pytest.mark.parametrize("module", [  # one module in the fast tier, the others in hardening
    pytest.param("shadeanalytics.ingest.tables", marks=pytest.mark.hardening),
    pytest.param("shadeanalytics.ingest.schema", marks=pytest.mark.hardening),
    "shadeanalytics.live.rows"])
def test_rows_derived_by_other_code_are_derived_again(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      module: str) -> None:
    """A change to the code that derives rows (nothing bumped by hand) derives them again."""
    from shadeanalytics.live import rows

    path = tmp_path / "fleet.sqlite"
    build_history(path)
    with Store(path) as store:
        before = store.read(until=_T0 + timedelta(minutes=45))
    old = rows.spec_fingerprint()
    source = rows._source
    monkeypatch.setattr(rows, "_source",
                        lambda name: source(name) + (b"\n# changed" if name == module else b""))
    rows.spec_fingerprint.cache_clear()
    try:
        new = rows.spec_fingerprint()
        assert new != old
        with Store(path) as store:
            assert_tables_equal(store.read(until=_T0 + timedelta(minutes=45)), before)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT DISTINCT spec FROM row_blocks").fetchall() == [(new,)]
    finally:
        monkeypatch.undo()
        rows.spec_fingerprint.cache_clear()
    assert rows.spec_fingerprint() == old


def test_the_fingerprint_covers_the_modules_that_derive_rows() -> None:
    """Every module the derivation imports from the package is in ``DERIVED_BY``."""
    import ast
    import importlib

    from shadeanalytics.live import rows

    found = set()
    todo = ["shadeanalytics.live.rows"]
    while todo:
        name = todo.pop()
        found.add(name)
        tree = ast.parse(rows._source(name))
        package = importlib.import_module(name).__package__ or ""
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                if target.startswith("shadeanalytics.") and target not in found \
                        and target not in ("shadeanalytics.errors",):
                    todo.append(target)
    assert found == set(rows.DERIVED_BY)


def _hostile_history(path: Path) -> None:
    """The fake API's polls with what the derived rows must get right: an unknown field (a
    version that loads with a warning), a cost as a dollar string, the details of cluster
    members (merged into their cluster rows), pre-active instances without configuration."""
    with Store(path) as store:
        for n, state in enumerate(default_scenario()):
            clusters = copy.deepcopy(state.clusters)
            instances = copy.deepcopy(state.instances)
            if n == 2:
                instances["instances"][0]["brand_new_field"] = 1
            if n == 4:
                clusters["clusters"][0]["instances"][0]["cost_estimate"] = "$1,234.50"
            members = [m for c in clusters["clusters"] for m in c["instances"]]
            details = {m["id"]: {**m, "ssh_key_id": f"key-{n}", "envs": [{"name": "A"}]}
                       for m in members[:2]} if n % 3 == 0 else {}
            store.record_poll(state.at, clusters=clusters, instances=instances,
                              instance_types=state.instance_types, instance_details=details)


# the whole history (the general path) and a window of derived rows in the fast tier; the
# other windows in the hardening tier
@pytest.mark.parametrize("window", [
    WINDOWS[0], WINDOWS[2],
    *(pytest.param(w, marks=pytest.mark.hardening)
      for w in (WINDOWS[1], WINDOWS[3], (_T0 + timedelta(minutes=30), None)))])
def test_derived_rows_read_as_the_general_path_does(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    window: tuple[Any, Any]) -> None:
    """Frames and warnings from derived rows equal those of every version walked again."""
    from shadeanalytics.live import rows

    path = tmp_path / "fleet.sqlite"
    _hostile_history(path)
    since, until = window
    derived: list[Any] = []
    read_rows = rows.read_rows

    def recording(*args: Any) -> Any:
        derived.append(read_rows(*args))
        return derived[-1]

    monkeypatch.setattr(rows, "read_rows", recording)
    with Store(path) as store, warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        fast = store.read(since=since, until=until)
        # the version with the unknown field (poll 2) goes to the general path
        assert (derived[0] is not None) == (since is not None and since > _T0 + 20 * MINUTE)
        monkeypatch.setattr(rows, "read_rows", lambda *args: None)
        general = store.read(since=since, until=until)
    assert_tables_equal(fast, general)
    assert fast.warnings == general.warnings
    assert fast.instances["has_details"].sum() > 0


def _renamed(got: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Warnings name the store's file: the fixture's was ``history.sqlite`` in another
    folder."""
    for read in got:
        for key in ("warnings", "warned"):
            read[key] = type(read[key])(w.replace(str(path), FIXTURE_NAME) for w in read[key])
    return got
