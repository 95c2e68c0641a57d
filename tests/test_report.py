"""Report files: fixed columns, sorted rows, UTC text, formula-safe cells, atomic writes."""

from __future__ import annotations

import csv
import gc
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SEED_PATH, envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.errors import DataWarning, ReportError
from shadeanalytics.ingest.schema import TABLES
from shadeanalytics.output import report as report_module
from shadeanalytics.output.report import escape_cell, unescape_cell, write_csv, write_report

#: The seed is undated: a report of it names its instant (asof.resolve_as_of).
SEED_AS_OF = "2026-11-20T00:00:00Z"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_report_writes_clusters_and_instances_with_schema_columns(tmp_path: Path) -> None:
    """clusters.csv and instances.csv: schema order, network columns left out."""
    files = write_report(sa.read_clusters(SEED_PATH), tmp_path, as_of=SEED_AS_OF, charts=False)
    assert [f.name for f in files][:5] == ["clusters.csv", "instances.csv", "clusters.parquet",
                                           "instances.parquet", "costs_by_cloud.csv"]
    header = (tmp_path / "instances.csv").read_text().splitlines()[0].split(",")
    assert header == [c.name for c in TABLES["instances"]
                      if c.name not in ("ip", "ssh_user", "ssh_port")]
    row = _rows(tmp_path / "instances.csv")[0]
    assert row["hourly_price_usd"] == "2.1"
    assert row["hourly_price_cents"] == "210"
    assert row["created_at"] == "2016-08-29T09:12:33.001Z"
    assert row["observed_at"] == ""
    assert row["nvlink"] == "true"
    cluster = _rows(tmp_path / "clusters.csv")[0]
    assert cluster["created_at"] == "2023-11-07T05:31:56Z"
    assert cluster["cost_estimate_usd"] == "15.0"


def test_network_columns_only_with_the_flag(tmp_path: Path) -> None:
    """ip / ssh_* are written only when asked."""
    write_report(sa.read_clusters(SEED_PATH), tmp_path, include_network=True, as_of=SEED_AS_OF,
                 charts=False)
    row = _rows(tmp_path / "instances.csv")[0]
    assert (row["ip"], row["ssh_user"], row["ssh_port"]) == ("1.0.0.1", "shadeform", "22")


def _history() -> sa.Tables:
    return sa.read([
        envelope({"clusters": [make_cluster("c-b", [make_instance("i-2")]),
                               make_cluster("c-a", [make_instance("i-1")])]},
                 "2026-11-20T06:00:00Z"),
        envelope({"instances": [make_instance("i-0")]}, "2026-11-20T00:00:00Z", "/instances"),
        envelope({"clusters": [make_cluster("c-b", [make_instance("i-2")]),
                               make_cluster("c-c", [make_instance("i-3")])]},
                 "2026-11-20T00:00:00Z"),
    ])


#: Every version row of ``_history``: sorted by cluster, instance and time, standalone last.
_ALL_ROWS = [
    ("c-a", "i-1", "2026-11-20T06:00:00Z", "active"),
    ("c-b", "i-2", "2026-11-20T00:00:00Z", "active"),
    ("c-b", "i-2", "2026-11-20T06:00:00Z", "active"),
    ("c-c", "i-3", "2026-11-20T00:00:00Z", "active"),
    ("", "i-0", "2026-11-20T00:00:00Z", "active"),
]


def test_rows_are_the_newest_per_resource_sorted_by_id(tmp_path: Path) -> None:
    """instances.csv: each instance's newest row, a vanished one deleted; standalone last."""
    write_report(_history(), tmp_path, charts=False)
    rows = _rows(tmp_path / "instances.csv")
    assert [(r["cluster_id"], r["instance_id"], r["observed_at"], r["status"])
            for r in rows] == [
        ("c-a", "i-1", "2026-11-20T06:00:00Z", "active"),
        ("c-b", "i-2", "2026-11-20T06:00:00Z", "active"),
        # missing from the 06:00 /clusters poll: gone, its last sighting kept
        ("c-c", "i-3", "2026-11-20T00:00:00Z", "deleted"),
        # /instances was polled at 00:00 only: still listed
        ("", "i-0", "2026-11-20T00:00:00Z", "active"),
    ]
    assert [(r["cluster_id"], r["observed_at"]) for r in _rows(tmp_path / "clusters.csv")] == [
        ("c-a", "2026-11-20T06:00:00Z"), ("c-b", "2026-11-20T06:00:00Z"),
        ("c-c", "2026-11-20T00:00:00Z")]


def test_every_version_row_goes_to_parquet(tmp_path: Path) -> None:
    """versions/<table>.parquet: every row, the CSV's columns and dtypes, in the manifest."""
    files = write_report(_history(), tmp_path, charts=False)
    versions = pd.read_parquet(tmp_path / "versions" / "instances.parquet")
    assert [(c if isinstance(c, str) else "", i, t.strftime("%Y-%m-%dT%H:%M:%SZ"), s)
            for c, i, t, s in versions[["cluster_id", "instance_id", "observed_at",
                                        "status"]].itertuples(index=False)] == _ALL_ROWS
    tables = _history()
    assert list(versions.columns) == [c for c in tables.instances.columns
                                      if c not in ("ip", "ssh_user", "ssh_port")]
    assert versions["observed_at"].dtype == tables.instances["observed_at"].dtype
    assert versions["num_gpus"].dtype == tables.instances["num_gpus"].dtype
    assert len(pd.read_parquet(tmp_path / "versions" / "clusters.parquet")) == 4
    manifest = (tmp_path / ".shadeanalytics-report.json").read_text()
    assert '"versions/instances.parquet"' in manifest
    assert tmp_path / "versions" / "instances.parquet" in files
    # the next report, with the flag, swaps the Parquet files for CSV ones
    write_report(_history(), tmp_path, charts=False, all_versions_csv=True)
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == [
        "clusters.csv", "instances.csv"]
    rows = _rows(tmp_path / "versions" / "instances.csv")
    assert [(r["cluster_id"], r["instance_id"], r["observed_at"], r["status"])
            for r in rows] == _ALL_ROWS


def test_without_pyarrow_the_versions_are_skipped_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No pyarrow: one warning naming the extra and the flag; the report is written."""
    tables = _history()
    # pandas' own strings need pyarrow itself: only its Parquet module goes
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.warns(sa.DataWarning) as caught:
        write_report(tables, tmp_path, charts=False)
    assert [str(w.message) for w in caught] == [
        "report: every version row is left out (versions/*.parquet needs pyarrow: pip install "
        "'shadeanalytics[parquet]', or pass --all-versions-csv)"]
    assert not (tmp_path / "versions").exists()
    assert len(_rows(tmp_path / "instances.csv")) == 4


@pytest.mark.parametrize("text", [
    "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "\nx", "\uff1d1+1", "'quoted",
])
def test_formula_cells_are_escaped_and_recoverable(text: str) -> None:
    """Dangerous leading characters get one quote; removing it gives the text back."""
    assert escape_cell(text) == "'" + text
    assert unescape_cell(escape_cell(text)) == text


def test_escaping_in_files_leaves_numbers_alone(tmp_path: Path) -> None:
    """A hostile name is escaped in the file; negative numbers stay numbers."""
    df = pd.DataFrame({"name": pd.array(["=1+1", "plain", None], dtype="string"),
                       "delta_usd": [-1.5, 2.0, float("nan")],
                       "count": pd.array([-3, None, 4], dtype="Int64")})
    write_csv(df, tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text() == (
        "name,delta_usd,count\n'=1+1,-1.5,-3\nplain,2.0,\n,,4\n")


def test_failed_write_names_the_file_and_keeps_the_previous_one(tmp_path: Path) -> None:
    """A write that fails raises ReportError naming the file; no temp file is left."""
    (tmp_path / "clusters.csv").mkdir()  # os.replace onto a folder fails
    with pytest.raises(ReportError) as caught:  # force: a folder no report wrote
        write_report(sa.read_clusters(SEED_PATH), tmp_path, force=True, as_of=SEED_AS_OF,
                     charts=False)
    assert str(caught.value).startswith(f"{tmp_path / 'clusters.csv'}: cannot write (")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".shadeanalytics-report.json",
                                                          "clusters.csv"]
    good = tmp_path / "good"
    write_report(sa.read_clusters(SEED_PATH), good, as_of=SEED_AS_OF, charts=False)
    before = (good / "instances.csv").read_bytes()
    (good / "clusters.csv").unlink()
    (good / "clusters.csv").mkdir()
    with pytest.raises(ReportError):
        write_report(sa.read_clusters(SEED_PATH), good, as_of=SEED_AS_OF, charts=False)
    assert (good / "instances.csv").read_bytes() == before


def test_seed_secrets_reach_no_table_and_no_report(tmp_path: Path) -> None:
    """Env values, registry credentials, docker args and the script are nowhere."""
    import json

    raw = json.loads(SEED_PATH.read_text())["instances"][0]["launch_configuration"]
    docker = raw["docker_configuration"]
    secrets = [docker["envs"][0]["value"], docker["registry_credentials"]["password"],
               docker["args"], raw["script_configuration"]["base64_script"], "catfact"]
    tables = sa.read_clusters(SEED_PATH)
    for _, df in tables.frames():
        text = df.astype("string").to_csv()
        for secret in secrets:
            assert secret not in text
    write_report(tables, tmp_path, include_network=True, as_of=SEED_AS_OF)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data


def _sample_secrets() -> list[str]:
    """Every secret value in the sample fleet, found by walking the raw JSON by path."""
    import json

    from conftest import SAMPLE_DIR

    found: set[str] = set()

    def walk(instance: dict) -> None:
        launch = instance.get("launch_configuration") or {}
        docker = launch.get("docker_configuration") or {}
        found.update(e["value"] for e in docker.get("envs") or [])
        found.update((docker.get("registry_credentials") or {}).values())
        if docker.get("args"):
            found.add(docker["args"])
        script = (launch.get("script_configuration") or {}).get("base64_script")
        if script:
            found.add(script)
        found.update(e["value"] for e in instance.get("envs") or [])

    for line in (SAMPLE_DIR / "clusters.jsonl").read_text().splitlines():
        for cluster in json.loads(line)["response"]["clusters"]:
            for member in cluster["instances"]:
                walk(member)
    for line in (SAMPLE_DIR / "instances.jsonl").read_text().splitlines():
        for instance in json.loads(line)["response"]["instances"]:
            walk(instance)
    return sorted(found)


def test_sample_secrets_reach_no_table_and_no_report(
        shared_sample_report: tuple[Path, list[str]]) -> None:
    """The sample's fake secrets (env values, credentials, args, scripts) appear nowhere."""
    from conftest import SAMPLE_DIR

    secrets = _sample_secrets()
    assert len(secrets) > 50 and all(s for s in secrets)
    tables = sa.read(SAMPLE_DIR)
    dumped = "".join(df.astype("string").to_csv() for _, df in tables.frames())
    assert "sa-fake-secret" not in dumped
    # one pass per text for all the secrets (a search per secret and file took seconds)
    longest_first = sorted(secrets, key=len, reverse=True)
    assert re.search("|".join(map(re.escape, longest_first)), dumped) is None
    anywhere = re.compile(b"|".join(re.escape(s.encode()) for s in longest_first))
    folder = shared_sample_report[0]  # write_report(tables, folder, include_network=True)
    # CSV files, PNG charts, the page and the version files
    for path in (p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert b"sa-fake-secret" not in data
        found = anywhere.search(data)
        assert found is None, (path.name, "a secret at", found and found.start())


def test_summary_counts_the_instances_not_deleted_apart_from_the_deleted() -> None:
    """A history's vanished instance is no snapshot's: counted apart, not as listed."""
    from shadeanalytics.output.report import summary_text

    text = summary_text(_history())
    assert text.splitlines()[1] == ("  running: 3 instances, 3 GPUs "
                                    "(of 3 instances not deleted, besides 1 deleted)")


def test_summary_counts_have_thousands_separators() -> None:
    """1,200 running instances read as 1,200 in the counts and in the GPU table."""
    from shadeanalytics.output.report import summary_text

    fleet = sa.read([envelope({"instances": [make_instance(f"i-{n}") for n in range(1200)]},
                              "2026-11-20T00:00:00Z", "/instances")])
    lines = summary_text(fleet, as_of="2026-11-20T00:00:00Z").splitlines()
    assert lines[1] == ("  running: 1,200 instances, 1,200 GPUs "
                        "(of 1,200 instances not deleted)")
    held = lines[lines.index("GPUs held, by type:") + 2].split()
    assert held[:5] == ["A6000", "1,200", "1,200", "1,200", "0"]


def test_cli_all_versions_csv_writes_the_versions_as_csv(tmp_path: Path) -> None:
    """`report --all-versions-csv`: versions/<table>.csv, no Parquet, exit 0."""
    import io
    import json

    from conftest import SAMPLE_DIR

    from shadeanalytics.cli import main

    out, err = io.StringIO(), io.StringIO()
    assert main(["report", str(SAMPLE_DIR / "instances.jsonl"), "--out", str(tmp_path),
                 "--no-charts", "--no-html", "--all-versions-csv"], stdout=out, stderr=err) == 0
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == [
        "clusters.csv", "instances.csv"]
    # the file's 530 polled rows of 61 standalone instances
    assert len(_rows(tmp_path / "versions" / "instances.csv")) == 530
    assert len(_rows(tmp_path / "instances.csv")) == 61
    assert err.getvalue() == ""
    files = json.loads((tmp_path / ".shadeanalytics-report.json").read_text())["files"]
    assert "versions/instances.csv" in files


# -- the second process of a report (the history frames, their files and charts) -------------

needs_two_cores = pytest.mark.skipif(not report_module._second_core(),
                                     reason="one CPU: no second process")


def _pid() -> int:
    return os.getpid()


def _fails_elsewhere(how: str) -> Callable[[], object]:
    """A second part that fails in any other process than this one (and gives its own pid
    here): raises, is killed by a signal, or returns what does not pickle."""
    here = os.getpid()

    def second() -> object:
        if os.getpid() == here:
            return here
        if how == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "raises":
            raise RuntimeError("the second process failed")
        return lambda: None  # does not pickle
    return second


@needs_two_cores
def test_beside_runs_the_second_part_in_another_process() -> None:
    """_beside gives both results, the second made by another process; the objects it froze
    out of the cyclic GC meanwhile are given back to it."""
    first, second = report_module._beside(lambda: "first", _pid)
    assert first == "first"
    assert isinstance(second, int) and second != os.getpid()
    assert gc.get_freeze_count() == 0


def test_beside_runs_both_parts_here_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """On one CPU (or without fork) both parts run here, the first first."""
    monkeypatch.setattr(report_module, "_second_core", lambda: False)
    order: list[str] = []

    def part(name: str, value: int) -> int:
        order.append(name)
        return value

    assert report_module._beside(lambda: part("first", 1), lambda: part("second", 2)) == (1, 2)
    assert order == ["first", "second"]


@needs_two_cores
@pytest.mark.parametrize("how", ["raises", "killed", "unpicklable"])
def test_a_failed_second_process_is_done_again_in_the_first(how: str) -> None:
    """A second process that raises, is killed by a signal or returns what does not pickle
    is done again in the first, whose result is given."""
    assert report_module._beside(lambda: 1, _fails_elsewhere(how)) == (1, os.getpid())


@needs_two_cores
def test_a_hung_second_process_is_killed_and_its_part_done_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A second process silent past the patience (hung) is killed; its part is done here and
    _beside returns instead of waiting forever."""
    monkeypatch.setattr(report_module, "SECOND_PATIENCE_S", 0.3)
    here = os.getpid()
    child: list[int] = []

    def second() -> int:
        if os.getpid() != here:
            time.sleep(3600)
        return here

    real_end = report_module._end

    def end(pid: int) -> None:
        child.append(pid)
        real_end(pid)

    monkeypatch.setattr(report_module, "_end", end)
    began = time.monotonic()
    assert report_module._beside(lambda: 1, second) == (1, here)
    assert time.monotonic() - began < 10
    assert len(child) == 1
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(child[0], os.WNOHANG)


def test_an_error_of_the_second_part_is_raised_as_in_one_process() -> None:
    """An error of the second part (in the second process, then here) is raised by _beside
    itself, after the first part ran."""
    ran: list[int] = []

    def second() -> int:
        raise RuntimeError("the second part failed")

    with pytest.raises(RuntimeError, match=r"^the second part failed$"):
        report_module._beside(lambda: ran.append(1), second)
    assert ran == [1]


@needs_two_cores
def test_a_warning_of_the_second_process_is_given_by_the_first() -> None:
    """A warning issued in the second process reaches the caller, category and text."""
    def second() -> int:
        warnings.warn("odd history", DataWarning, stacklevel=1)
        return 2

    with pytest.warns(DataWarning, match=r"^odd history$"):
        assert report_module._beside(lambda: 1, second) == (1, 2)


def test_an_error_of_the_history_part_is_raised_as_in_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error of the history frames (in the second process, then here) is raised by
    write_report itself, and the page of a finished report is not written."""
    def history_frames(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("no timeline today")

    monkeypatch.setattr(report_module, "history_frames", history_frames)
    with pytest.raises(ValueError, match=r"^no timeline today$"):
        write_report(_history(), tmp_path, charts=False)
    assert not (tmp_path / "index.html").exists()


def _folder(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.mark.hardening
@needs_two_cores
@pytest.mark.parametrize("how", ["works", "raises", "killed"])
def test_a_report_in_two_processes_is_the_one_process_report(
        how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With charts and page, a report whose second process works, raises or is killed is
    byte for byte the one-process report, with the same files listed."""
    tables = _history()
    with monkeypatch.context() as patch:
        patch.setattr(report_module, "_second_core", lambda: False)
        one = [p.name for p in write_report(tables, tmp_path / "one")]
    here, real = os.getpid(), report_module.history_frames
    ran = tmp_path / "ran"

    def history_frames(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != here:
            ran.write_text(str(os.getpid()))
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "raises":
                raise RuntimeError("the second process failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(report_module, "history_frames", history_frames)
    two = [p.name for p in write_report(tables, tmp_path / "two")]
    assert ran.exists()
    assert two == one
    assert _folder(tmp_path / "two") == _folder(tmp_path / "one")
