"""Parquet export of the history store: layout, DuckDB read-back, round trip, safety."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_instance, record_state

import shadeanalytics as sa
from shadeanalytics import _files
from shadeanalytics.analytics.timeline import status_timeline
from shadeanalytics.errors import DataWarning, LockedError, ReportError, StoreError
from shadeanalytics.ingest.schema import STATUSES, TABLES
from shadeanalytics.ingest.tables import Tables
from shadeanalytics.live.store import Store
from shadeanalytics.output.export import export_parquet, read_parquet_history, write_parquet
from shadeanalytics.testing.fakeapi import DEFAULT_SECRETS, State, default_scenario

AS_OF = "2026-03-03T12:00:00Z"
FAILED_AT = "2026-03-02T11:10:00Z"
NETWORK = ("ip", "ssh_user", "ssh_port")


def _build_store(path: Path, states: list[State], *, next_day: bool = False) -> Path:
    """The scenario's polls, one failed poll, and (``next_day``) the last state again a day on."""
    with Store(path) as store:
        for state in states:
            record_state(store, state, account=True, details=True)
        store.record_failed_poll(FAILED_AT, error="ServerError: 503 after 3 retries")
        if next_day:
            last = states[-1]
            store.record_poll(last.at + timedelta(hours=22), clusters=last.clusters,
                              instances=last.instances, instance_types=last.instance_types)
    return path


def _history(path: Path, **window: Any) -> Tables:
    with Store(path, create=False) as store:
        return store.read(**window)


def _tree(out: Path) -> dict[str, str]:
    """Every file under ``out`` (relative path -> sha256), hidden ones included."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _scan(out: Path, table: str) -> str:
    return f"read_parquet('{out}/{table}/**/*.parquet', hive_partitioning = true)"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_store(tmp_path_factory.mktemp("store") / "history.db", default_scenario())


@pytest.fixture(scope="module")
def history(store_path: Path) -> Tables:
    return _history(store_path)


@pytest.fixture(scope="module")
def exported(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("export")
    return out, export_parquet(store_path, out)


# -- layout and types ---------------------------------------------------------------------------


def test_partition_layout_is_one_file_per_table_and_day(exported: tuple[Path, list[Path]]) -> None:
    """Every table lands in <table>/day=2026-03-02/part-0.parquet, and nothing else is left."""
    out, files = exported
    expected = [out / name / "day=2026-03-02" / "part-0.parquet" for name in TABLES]
    assert files == sorted(expected)
    # no lock file either: the export locks the folder itself
    assert sorted(_tree(out)) == sorted(str(f.relative_to(out)) for f in expected)


def test_files_hold_exactly_the_schema_columns_with_portable_types(
        exported: tuple[Path, list[Path]]) -> None:
    """Schema columns only (network ones left out), UTC microsecond timestamps, status as text."""
    out, _ = exported
    kinds = {"string": pa.string(), "Int64": pa.int64(), "float64": pa.float64(),
             "boolean": pa.bool_(), "datetime64[us, UTC]": pa.timestamp("us", tz="UTC"),
             "category (ordered)": pa.string()}
    for name, columns in TABLES.items():
        schema = pq.read_schema(out / name / "day=2026-03-02" / "part-0.parquet")
        wanted = [c for c in columns if c.name not in NETWORK]
        assert schema.names == [c.name for c in wanted]
        assert [schema.field(c.name).type for c in wanted] == [kinds[c.dtype] for c in wanted]
    status = pq.read_schema(out / "instances" / "day=2026-03-02" / "part-0.parquet").field("status")
    assert status.metadata[b"shadeanalytics.categories"].decode().startswith('["creating"')


# -- reading back with DuckDB -------------------------------------------------------------------


def test_duckdb_reads_the_same_rows_as_the_store(exported: tuple[Path, list[Path]],
                                                 history: Tables) -> None:
    """Row counts per table, the day key, and instance and poll values equal Store.read()'s."""
    out, _ = exported
    con = _duck()
    for name, frame in history.frames():
        count, days = con.sql(f"SELECT count(*), list(DISTINCT day::VARCHAR) FROM "
                              f"{_scan(out, name)}").fetchall()[0]
        assert (count, days) == (len(frame), ["2026-03-02"])
    got = con.sql(f"SELECT instance_id, observed_at, status, hourly_price_cents, "
                  f"cost_estimate_usd, deleted_at FROM {_scan(out, 'instances')} "
                  "ORDER BY instance_id, observed_at").df()
    want = history.instances.sort_values(["instance_id", "observed_at"])
    assert got["instance_id"].tolist() == want["instance_id"].tolist()
    assert got["status"].tolist() == want["status"].astype(str).tolist()
    assert got["hourly_price_cents"].tolist() == want["hourly_price_cents"].tolist()
    assert got["cost_estimate_usd"].fillna(-1).tolist() == \
        want["cost_estimate_usd"].fillna(-1).tolist()
    assert list(got["observed_at"]) == list(want["observed_at"])
    assert got["deleted_at"].notna().sum() == want["deleted_at"].notna().sum() > 0
    failed = con.sql(f"SELECT strftime(observed_at, '%Y-%m-%dT%H:%M:%SZ'), list(endpoint "
                     f"ORDER BY endpoint) FROM {_scan(out, 'polls')} WHERE NOT ok "
                     "GROUP BY ALL").fetchall()
    assert failed == [(FAILED_AT, ["/clusters", "/instances", "/instances/types"])]


def test_duckdb_status_sequences_equal_the_library_timeline(
        exported: tuple[Path, list[Path]], history: Tables) -> None:
    """Plain SQL over the export rebuilds each instance's status sequence status_timeline gives."""
    out, _ = exported
    rows = _duck().sql(f"""
        WITH obs AS (
            SELECT instance_id, observed_at, status,
                   CASE WHEN cluster_id IS NULL THEN '/instances' ELSE '/clusters' END AS list
            FROM {_scan(out, 'instances')}
        ), changes AS (
            SELECT instance_id, observed_at AS start_at, status FROM (
                SELECT *, lag(status) OVER (PARTITION BY instance_id ORDER BY observed_at) AS prev
                FROM obs) WHERE prev IS DISTINCT FROM status
        ), last AS (
            SELECT instance_id, max(observed_at) AS seen, arg_max(status, observed_at) AS status,
                   arg_max(list, observed_at) AS list
            FROM obs GROUP BY instance_id
        ), vanished AS (  -- missing from a later successful poll of its list: deleted
            SELECT l.instance_id, min(p.observed_at) AS start_at, 'deleted' AS status
            FROM last l JOIN {_scan(out, 'polls')} p
              ON p.endpoint = l.list AND p.ok AND p.observed_at > l.seen
            WHERE l.status <> 'deleted' GROUP BY l.instance_id
        )
        SELECT instance_id, list(status ORDER BY start_at)
        FROM (SELECT * FROM changes UNION ALL SELECT * FROM vanished)
        GROUP BY instance_id ORDER BY instance_id""").fetchall()
    timeline = status_timeline(history, as_of=AS_OF)
    library = timeline[timeline["kind"] == "instance"].groupby("resource_id", sort=True)["status"]
    assert rows == [(rid, list(statuses)) for rid, statuses in library]
    assert any("deleted" in statuses for _, statuses in rows)


# -- reading back as Tables ---------------------------------------------------------------------


def test_read_back_gives_the_same_timeline(exported: tuple[Path, list[Path]],
                                           history: Tables) -> None:
    """status_timeline of the export equals status_timeline of Store.read()."""
    back = read_parquet_history(exported[0])
    pd.testing.assert_frame_equal(status_timeline(back, as_of=AS_OF),
                                  status_timeline(history, as_of=AS_OF))
    assert back.instances[list(NETWORK)].isna().all().all()
    assert back.instances["status"].dtype == history.instances["status"].dtype


def test_round_trip_with_network_columns_is_exact(store_path: Path, history: Tables,
                                                  tmp_path: Path) -> None:
    """With include_network every table comes back equal, dtypes and ordered status included."""
    export_parquet(store_path, tmp_path, include_network=True)
    back = read_parquet_history(tmp_path)
    for name, frame in history.frames():
        pd.testing.assert_frame_equal(getattr(back, name), frame, check_exact=True, obj=name)


def test_export_spanning_two_days(tmp_path: Path) -> None:
    """A history over two UTC days splits by day, and still reads back to the same timeline."""
    path = _build_store(tmp_path / "history.db", default_scenario(), next_day=True)
    history = _history(path)
    files = export_parquet(path, tmp_path / "out")
    rel = {str(f.relative_to(tmp_path / "out")) for f in files}
    assert {"instances/day=2026-03-02/part-0.parquet", "instances/day=2026-03-03/part-0.parquet",
            "polls/day=2026-03-03/part-0.parquet"} <= rel
    per_day = dict(_duck().sql(f"SELECT day::VARCHAR, count(*) FROM "
                               f"{_scan(tmp_path / 'out', 'instances')} GROUP BY ALL").fetchall())
    days = history.instances["observed_at"].dt.strftime("%Y-%m-%d").value_counts().to_dict()
    assert per_day == days
    pd.testing.assert_frame_equal(status_timeline(read_parquet_history(tmp_path / "out"),
                                                  as_of=AS_OF),
                                  status_timeline(history, as_of=AS_OF))


def test_since_until_exports_the_window(store_path: Path, tmp_path: Path) -> None:
    """since/until export what Store.read(since=..., until=...) reads."""
    window = {"since": "2026-03-02T10:20:00Z", "until": "2026-03-02T10:40:00Z"}
    export_parquet(store_path, tmp_path, include_network=True, **window)
    back, want = read_parquet_history(tmp_path), _history(store_path, **window)
    for name, frame in want.frames():
        pd.testing.assert_frame_equal(getattr(back, name), frame, obj=name)


def test_undated_rows_and_new_statuses_round_trip(tmp_path: Path) -> None:
    """Rows without observed_at go to Hive's default partition (NULL day); a new status stays."""
    with pytest.warns(DataWarning, match="unknown status"):
        tables = sa.read({"instances": [make_instance("i-1"),
                                        make_instance("i-2", status="hibernating")]})
    files = write_parquet(tables, tmp_path)
    assert tmp_path / "instances" / "day=__HIVE_DEFAULT_PARTITION__" / "part-0.parquet" in files
    assert _duck().sql(f"SELECT count(*) FROM {_scan(tmp_path, 'instances')} "
                       "WHERE day IS NULL").fetchall()[0] == (2,)
    back = read_parquet_history(tmp_path)
    assert list(back.instances["status"].cat.categories) == [*STATUSES, "hibernating"]
    pd.testing.assert_frame_equal(back.instances.drop(columns=list(NETWORK)),
                                  tables.instances.drop(columns=list(NETWORK)))
    assert back.polls.empty and list(back.polls.columns) == list(tables.polls.columns)


# -- writing safely -----------------------------------------------------------------------------


def test_export_is_idempotent(store_path: Path, tmp_path: Path) -> None:
    """A second export of the same store gives byte-identical files and no leftovers."""
    first = export_parquet(store_path, tmp_path)
    before = _tree(tmp_path)
    assert export_parquet(store_path, tmp_path) == first
    assert _tree(tmp_path) == before


def test_missing_store_is_an_error_naming_it(tmp_path: Path) -> None:
    """A store path that does not exist is a StoreError naming it; nothing is created."""
    missing = tmp_path / "nope.db"
    with pytest.raises(StoreError, match=str(missing)):
        export_parquet(missing, tmp_path / "out")
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_no_secret_reaches_the_exported_files(store_path: Path, tmp_path: Path) -> None:
    """None of the scenario's secret values is in any exported byte (uncompressed) or value."""
    export_parquet(store_path, tmp_path, include_network=True, compression="none")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == len(TABLES)  # a part per table, no lock file
    for file in files:
        data = file.read_bytes()
        assert not [s for s in DEFAULT_SECRETS if s.encode() in data], file
    for name, frame in read_parquet_history(tmp_path).frames():
        text = frame.astype(str).to_csv()
        assert not [s for s in DEFAULT_SECRETS if s in text], name
    envs = read_parquet_history(tmp_path).docker_envs
    assert list(envs.columns) == ["instance_id", "observed_at", "position", "name"]


def test_missing_pyarrow_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                store_path: Path, tmp_path: Path) -> None:
    """Without pyarrow the export fails with the install hint, before touching anything."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(StoreError, match=r"pip install 'shadeanalytics\[parquet\]'"):
        export_parquet(store_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_an_export_is_never_replaced(store_path: Path,
                                                          tmp_path: Path) -> None:
    """An existing out/instances with other files stops the export before anything is written."""
    (tmp_path / "instances").mkdir()
    (tmp_path / "instances" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a shadeanalytics Parquet export"):
        export_parquet(store_path, tmp_path)
    assert (tmp_path / "instances" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instances"]


def test_a_failed_export_leaves_the_previous_one(monkeypatch: pytest.MonkeyPatch,
                                                 store_path: Path, tmp_path: Path) -> None:
    """An error midway (disk full) leaves the previous export whole and no staged folders."""
    export_parquet(store_path, tmp_path)
    before = _tree(tmp_path)
    calls: list[str] = []

    def full_on_the_third(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = tempfile.mkstemp(*args, **kwargs)
        calls.append(name)
        if len(calls) == 3:  # the kernel's full disk: every write fails with ENOSPC
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, name

    monkeypatch.setattr(_files, "tempfile", SimpleNamespace(mkstemp=full_on_the_third))
    with pytest.raises(ReportError, match=r"part-0\.parquet: cannot write \(No space left"):
        export_parquet(store_path, tmp_path, include_network=True)
    assert _tree(tmp_path) == before


def test_an_export_killed_between_renames_is_recovered(store_path: Path, history: Tables,
                                                       tmp_path: Path) -> None:
    """A table set aside by a killed run still reads, and the next export puts things right."""
    first = export_parquet(store_path, tmp_path)
    before = _tree(tmp_path)
    (tmp_path / "instances").rename(tmp_path / ".instances.old-1-dead")
    (tmp_path / ".clusters.tmp-1-dead" / "day=2026-03-02").mkdir(parents=True)
    pd.testing.assert_frame_equal(status_timeline(read_parquet_history(tmp_path), as_of=AS_OF),
                                  status_timeline(history, as_of=AS_OF))
    assert export_parquet(store_path, tmp_path) == first
    assert _tree(tmp_path) == before


def test_a_second_concurrent_export_is_refused(store_path: Path, tmp_path: Path) -> None:
    """While one export holds the folder's lock another raises LockedError and writes nothing."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockedError, match="another export"):
            export_parquet(store_path, tmp_path)
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_folder_that_is_not_an_export_fails(tmp_path: Path) -> None:
    """read_parquet_history of a missing or unrelated folder is a StoreError naming it."""
    with pytest.raises(StoreError, match="no such export folder"):
        read_parquet_history(tmp_path / "missing")
    with pytest.raises(StoreError, match=str(tmp_path)):
        read_parquet_history(tmp_path)


def test_export_command_writes_the_parquet_dataset(tmp_path: Path) -> None:
    """`shadeanalytics export --store --format parquet --out` exits 0 and writes every table."""
    import io

    from shadeanalytics.cli import main
    from shadeanalytics.live.store import Store
    from shadeanalytics.testing.fakeapi import default_scenario

    db = tmp_path / "history.db"
    with Store(db) as store:
        for state in default_scenario():
            record_state(store, state)
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", "--store", str(db), "--format", "parquet", "--out",
                 str(tmp_path / "export")], stdout=out, stderr=err)
    assert (code, err.getvalue()) == (0, "")
    assert out.getvalue().startswith("wrote ") and "Parquet files to" in out.getvalue()
    assert (tmp_path / "export" / "instances").is_dir()
    # the README's command leaves no lock file (nor any hidden file) in the folder it wrote
    assert [p.name for p in (tmp_path / "export").iterdir() if p.name.startswith(".")] == []
    assert main(["export", "--store", str(tmp_path / "nope.db"), "--out",
                 str(tmp_path / "x")], stdout=out, stderr=err) == 1
