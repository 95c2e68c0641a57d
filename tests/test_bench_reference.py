"""The loader benchmark's DuckDB reference (benchmarks/run.py, part 1b) builds our instances
table: the same columns, in the same order, with the same values (issue 24, item 5)."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

import shadeanalytics as sa

pytest.importorskip("duckdb")


def _module(name: str) -> Any:
    """A script of benchmarks/ as a module, leaving ``sys.path`` as it was."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def bench() -> Any:
    """benchmarks/run.py and the shapes fleet of 40 info responses it loads."""
    return _module("run"), _module("shapes").fleet(40, seed=11)


@pytest.mark.parametrize("name", ["s.json", "s.jsonl", "s.clusters.json", "s.json.gz"])
def test_duckdb_declared_and_inferred_build_our_instances(
    bench: Any, tmp_path: Path, name: str
) -> None:
    """DuckDB's read_json with declared columns, and with inferred ones, gives our instances
    frame on the dirty fleet (nulls by lifecycle, unknown fields, drifted values)."""
    run, fleet = bench
    path = _module("shapes").write(tmp_path / name, fleet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        ours = sa.read_clusters(path).instances
    assert len(ours) == sum(len(c["instances"]) for c in fleet)
    for declared in (True, False):
        duck = run.load_duckdb_shapes(path, declared=declared)
        assert run.instances_differences(ours, duck, rows=len(ours)) == []
    assert "columns = {" in run.duckdb_shapes_query(path)
    assert "columns = {" not in run.duckdb_shapes_query(path, declared=False)


def test_instances_differences_names_what_differs(bench: Any, tmp_path: Path) -> None:
    """A changed value, a missing column and a missing row are each reported."""
    run, fleet = bench
    path = _module("shapes").write(tmp_path / "s.json", fleet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        ours = sa.read_clusters(path).instances
    duck = run.load_duckdb_shapes(path)
    changed = duck.copy()
    changed.loc[3, "cost_estimate_usd"] += 0.01
    changed.loc[5, "created_at"] = None
    n = len(ours)
    assert run.instances_differences(ours, changed, rows=n) == [
        f"cost_estimate_usd: 1 of {n} sampled rows differ",
        f"created_at: 1 of {n} sampled rows differ",
    ]
    assert run.instances_differences(ours, duck.drop(columns="os")) == [
        "columns differ: ['os'] or their order"
    ]
    assert run.instances_differences(ours, duck.iloc[1:]) == [f"{n - 1} rows, ours {n}"]
