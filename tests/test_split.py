"""A big list's records walked by two processes (normalize.splits): the tables, warnings and
errors of a walk in one process."""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from conftest import make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.ingest import normalize

pytestmark = pytest.mark.skipif(
    not normalize.sys.platform.startswith("linux") or len(normalize.os.sched_getaffinity(0)) < 2,
    reason="needs fork and two cores",
)


def _fleet(bad: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """8 clusters of 2 tagged instances; an unknown field in clusters 1 and 6 (one warning,
    counted twice), an unknown status in cluster 5 (first seen in the second half)."""
    clusters = [
        make_cluster(
            f"c{k}", [make_instance(f"c{k}-i{j}", tags=["gpu", f"t{k}"]) for j in range(2)]
        )
        for k in range(8)
    ]
    clusters[1]["colour"] = "red"
    clusters[6]["colour"] = "blue"
    clusters[5]["instances"][0]["status"] = "hibernating"
    if bad is not None:
        bad(clusters)
    return clusters


def _write(clusters: list[dict[str, Any]]) -> dict[str, Path]:
    """The fleet as a JSON array, as JSONL (a blank line inside) and as a /clusters list, in
    the working folder."""
    files = {
        "array": Path("fleet.json"),
        "jsonl": Path("fleet.jsonl"),
        "wrapper": Path("fleet.clusters.json"),
    }
    files["array"].write_bytes(orjson.dumps(clusters))
    lines = [json.dumps(c) for c in clusters]
    files["jsonl"].write_text("\n".join([*lines[:3], "", *lines[3:]]) + "\n")
    files["wrapper"].write_bytes(orjson.dumps({"clusters": clusters}))
    return files


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[int]]:
    """Every list split (threshold 0), files named from ``tmp_path``; yields the instances
    of each child part appended."""
    monkeypatch.chdir(tmp_path)
    appended: list[int] = []
    append = normalize._Normalizer._append

    def counted(self: Any, added: dict[str, Any], mark: dict[str, int]) -> None:
        tail = added.get(" tail")  # the child's instance rows, as Arrow
        appended.append(len(added["instances"]) + (0 if tail is None else len(tail)))
        append(self, added, mark)

    monkeypatch.setattr(normalize._Normalizer, "_append", counted)
    monkeypatch.setattr(normalize, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(normalize, "SPLIT_MAX_LOAD", float("inf"))  # however busy the machine
    yield appended


@pytest.fixture
def tails(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each child part that came as Arrow (``Normalized.instance_tail``)."""
    seen: list[int] = []
    added = normalize._added

    def counted(part: Any, *shared: Any) -> dict[str, Any]:
        out = added(part, *shared)
        if out[" tail"] is not None:
            seen.append(len(out[" tail"]))
        return out

    monkeypatch.setattr(normalize, "_added", counted)
    return seen


def _load(path: Path, **kwargs: Any) -> sa.Tables:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        return sa.read_clusters(path, **kwargs)


def test_split_walk_gives_the_tables_and_warnings_of_one(
    split: list[int], tails: list[int]
) -> None:
    """Array, JSONL and /clusters list: the same frames and warnings split or not."""
    for name, path in _write(_fleet()).items():
        split.clear()
        two = _load(path)
        assert len(split) == 1 and 0 < split[0] < 16, name  # a child walked the last part
        assert tails == [split[0]], name  # its instance rows came as Arrow
        tails.clear()
        normalize.SPLIT_MIN_BYTES = 2**40
        one = _load(path)
        normalize.SPLIT_MIN_BYTES = 0
        for (table, left), (_, right) in zip(one.frames(), two.frames(), strict=True):
            pd.testing.assert_frame_equal(left, right, obj=f"{name} {table}")
        assert two.warnings == one.warnings
        assert len(two.instances) == 16 and len(two.instance_tags) == 32
    assert two.warnings[0] == (
        "$.clusters[*].colour: unknown field, loaded around (first at "
        "fleet.clusters.json at $.clusters[1].colour (id c1); 2 records)"
    )
    assert (
        "(first at fleet.clusters.json at $.clusters[5].instances[0].status (id c5-i0))"
        in two.warnings[1]
    )


def test_an_error_in_the_second_half_names_its_global_index(split: list[int]) -> None:
    """A record that cannot load, walked by the child or converted after, names $[6] / $[7]."""

    def bad_id(clusters: list[dict[str, Any]]) -> None:
        clusters[6]["instances"][1]["id"] = 5

    def bad_os(clusters: list[dict[str, Any]]) -> None:
        clusters[7]["instances"][1]["configuration"]["os"] = ["x"]

    files = _write(_fleet(bad_id))
    with pytest.raises(sa.SchemaError) as raised:
        _load(files["array"])
    assert str(raised.value) == (
        "fleet.json at $[6].instances[1].id: 'id' is an integer, expected a non-empty string"
    )
    assert split == []  # the child failed: this process walked its part again
    with pytest.raises(sa.SchemaError) as raised:
        _load(files["jsonl"])
    assert str(raised.value) == (
        "fleet.jsonl line 8 at $.instances[1].id: 'id' is an integer, expected a non-empty string"
    )
    skipped = _load(files["wrapper"], errors="skip")
    assert skipped.skipped == 1 and len(split) == 1  # the child skipped the record
    assert len(skipped.instances) == 15
    files = _write(_fleet(bad_os))
    with pytest.raises(sa.SchemaError) as raised:
        _load(files["wrapper"])
    assert str(raised.value) == (
        "fleet.clusters.json at $.clusters[7].instances[1]."
        "configuration.os (id c7-i1): found a list, expected a string"
    )


def test_a_busy_machine_keeps_to_one_process(
    split: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With other work on every core (SPLIT_MAX_LOAD below the load) nothing is split."""
    monkeypatch.setattr(normalize, "SPLIT_MAX_LOAD", float("-inf"))
    tables = _load(_write(_fleet())["array"])
    assert split == [] and len(tables.instances) == 16
    assert not normalize.splits(2**40)


@pytest.mark.parametrize("library", ["isal", "zlib"])
def test_gzip_sources_expand_alike_with_either_library(
    library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """isal and the stdlib fallback: two members and zero padding read; damage named."""
    from shadeanalytics.ingest import load

    if library == "zlib":
        monkeypatch.setattr(load, "_zlib", load.zlib)
    elif load._zlib is load.zlib:
        pytest.skip("isal is not installed")
    text = orjson.dumps(_fleet())
    half = len(text) // 2
    packed = tmp_path / "fleet.json.gz"
    packed.write_bytes(gzip.compress(text[:half]) + gzip.compress(text[half:]) + b"\0" * 8)
    tables = _load(packed)
    assert len(tables.instances) == 16 and tables.instances["instance_id"][15] == "c7-i1"
    for damaged in (gzip.compress(text)[:-9], b"\x1f\x8b" + b"x" * 40):
        packed.write_bytes(damaged)
        with pytest.raises(sa.InvalidJSONError) as raised:
            _load(packed)
        assert str(raised.value) == f"{packed}: not a valid gzip file"


def test_arrow_rows_of_the_child_meet_repeats_details_and_a_next_file(
    split: list[int], tails: list[int]
) -> None:
    """Two split JSONL files, a repeat and an instance's info in the child's part: as one."""
    fleet = [orjson.dumps(c).decode() for c in _fleet()]
    info = orjson.dumps(make_instance("c1-i0", tags=["gpu", "t1"])).decode()
    Path("a").mkdir()
    Path("a/1.jsonl").write_text("\n".join([*fleet, fleet[6]]) + "\n")
    Path("a/2.jsonl").write_text("\n".join([*fleet[:5], info, fleet[2]]) + "\n")

    def read() -> sa.Tables:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.DataWarning)
            return sa.read("a")

    two = read()
    assert len(split) == 2 and len(tails) == 2  # both files split, both tails as Arrow
    normalize.SPLIT_MIN_BYTES = 2**40
    one = read()
    for (table, left), (_, right) in zip(one.frames(), two.frames(), strict=True):
        pd.testing.assert_frame_equal(left, right, obj=table)
    assert two.warnings == one.warnings
    assert len(two.instances) == 16  # the repeats (in and across files) and the info dropped
    assert two.warnings[1] == (
        "$: the same record was loaded twice; the repeat was dropped "
        "(first at a/1.jsonl line 9 at $ (id c6); 7 records)"
    )


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_jsonl_blocks_number_lines_as_one_process(split: list[int], end: str) -> None:
    """CR LF or CR line ends, blank lines: the child's error names the line of one walk."""
    lines = [json.dumps(c) for c in _fleet()]
    lines[6] = lines[6].replace('"id": "c6-i1"', '"id": 5')
    text = end.join([lines[0], "", *lines[1:4], "", "", *lines[4:]]) + end
    Path("fleet.jsonl").write_bytes(text.encode())
    for threshold in (0, 2**40):  # split, then one process
        normalize.SPLIT_MIN_BYTES = threshold
        with pytest.raises(sa.SchemaError) as raised:
            _load(Path("fleet.jsonl"))
        assert str(raised.value) == (
            "fleet.jsonl line 10 at $.instances[1].id: 'id' is an integer, "
            "expected a non-empty string"
        )
    lines[6] = json.dumps(_fleet()[6])
    Path("fleet.jsonl").write_bytes(
        end.join([lines[0], "", *lines[1:4], "", "", *lines[4:]]).encode()
    )
    normalize.SPLIT_MIN_BYTES = 0
    tables = _load(Path("fleet.jsonl"), errors="skip")
    assert len(split) == 1 and len(tables.instances) == 16
    assert "fleet.jsonl line 9 at $.instances[0].status (id c5-i0)" in tables.warnings[1]


@pytest.mark.parametrize("shared", [0.0, 1e-3, 1.0])
def test_the_child_part_comes_through_shared_memory_or_the_pipe(
    split: list[int], tails: list[int], monkeypatch: pytest.MonkeyPatch, shared: float
) -> None:
    """No shared memory, too little of it, enough: the same tables and warnings as one."""
    monkeypatch.setattr(normalize, "_SHARED_PER_BYTE", shared)
    path = _write(_fleet())["array"]
    two = _load(path)
    assert len(split) == 1 and tails == split
    normalize.SPLIT_MIN_BYTES = 2**40
    one = _load(path)
    for (table, left), (_, right) in zip(one.frames(), two.frames(), strict=True):
        pd.testing.assert_frame_equal(left, right, obj=table)
    assert two.warnings == one.warnings
