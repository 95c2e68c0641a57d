"""The loader's column building (issue 24, item 5): the clusters' and instances' rows become
Arrow columns in one conversion, the instances' child tables are kept per list; both give the
tables and the messages of the general conversion."""

from __future__ import annotations

import warnings
from typing import Any

import orjson
import pandas as pd
import pytest
from conftest import envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.ingest import arrowrows
from shadeanalytics.ingest.schema import Column

pytest.importorskip("pyarrow")

_AT = "2026-11-20T01:00:00Z"


def _read(document: Any, errors: str = "raise") -> sa.Tables:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        return sa.read(orjson.dumps(document), errors=errors)


def test_arrow_columns_equal_the_general_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet with nulls, an unknown status, a missing required name and children loads to
    the same frames and warnings with and without the one-pass Arrow conversion."""
    members = [
        make_instance("i-1", tags=["a", "b"], status="stopped"),
        make_instance("i-2", name=None, ip=None, ssh_port=None, tags=[]),
        make_instance("i-3", cost_estimate=None, status="pending"),
    ]
    del members[2]["configuration"]
    document = envelope(
        {"clusters": [make_cluster("c-1", members), make_cluster("c-2", status="weird")]}, _AT
    )
    fast = _read(document)
    monkeypatch.setattr(arrowrows, "ARROW_TABLES", frozenset())
    general = _read(document)
    assert fast.warnings == general.warnings
    assert [w.split(":")[0] for w in fast.warnings] == [
        "$.response.clusters[*].status",
        "$.response.clusters[*].instances[*].name",
        "$.response.clusters[*].instances[*].status",
    ]
    for (name, left), (_, right) in zip(general.frames(), fast.frames(), strict=True):
        pd.testing.assert_frame_equal(left, right, obj=name)
    assert fast.instances["status"].cat.categories.tolist()[-1] == "stopped"
    assert fast.instances["status"].astype(str).tolist() == [
        "stopped",
        "active",
        "pending",
        "active",
    ]
    assert fast.clusters["status"].cat.categories.tolist()[-1] == "weird"
    assert fast.instances["name"].isna().tolist() == [False, True, False, False]


def test_a_value_of_another_type_is_named_by_its_path() -> None:
    """A number where text belongs and a numeric string where an integer belongs load with
    the general conversion's warnings, naming the JSON path and the instance id."""
    cluster = make_cluster(
        "c-1", [make_instance("i-1"), make_instance("i-2", ssh_port="22", name=7)]
    )
    with pytest.warns(sa.DataWarning):
        loaded = sa.read(orjson.dumps([cluster]))
    assert loaded.warnings == (
        "$[*].instances[*].name: found an integer, expected a string; loaded as text (first "
        "at <bytes> at $[0].instances[1].name (id i-2))",
        "$[*].instances[*].ssh_port: a numeric string where the API promises an integer; "
        "loaded as a number (first at <bytes> at $[0].instances[1].ssh_port (id i-2))",
    )
    assert loaded.instances["name"].tolist() == ["node-i-1", "7"]
    assert loaded.instances["ssh_port"].tolist() == [22, 22]


def test_child_rows_kept_per_list() -> None:
    """Tags of three instances (three, none, one): one row per tag with its position, the
    instance's id and the snapshot time."""
    members = [
        make_instance("i-1", tags=["a", "b", "c"]),
        make_instance("i-2", tags=[]),
        make_instance("i-3", tags=["d"]),
    ]
    tags = _read(envelope({"clusters": [make_cluster("c-1", members)]}, _AT)).instance_tags
    assert tags["instance_id"].tolist() == ["i-1", "i-1", "i-1", "i-3"]
    assert tags["position"].tolist() == [0, 1, 2, 0]
    assert tags["tag"].tolist() == ["a", "b", "c", "d"]
    assert (tags["observed_at"] == pd.Timestamp(_AT)).all()
    assert tags.dtypes.astype(str).tolist() == ["string", "datetime64[us, UTC]", "Int64", "string"]


def test_a_bad_child_value_names_its_path_and_instance() -> None:
    """An object among an instance's tags: an error naming the tag's path and the instance
    id; skipped, the instance and its tags go, the others stay."""
    members = [make_instance("i-1", tags=["a"]), make_instance("i-2", tags=["x", "y", {}])]
    document = envelope({"clusters": [make_cluster("c-1", members)]}, _AT)
    with pytest.raises(sa.SchemaError) as caught:
        _read(document)
    assert str(caught.value) == (
        "<bytes> at $.response.clusters[0].instances[1].tags[2] "
        "(id i-2): found an object, expected a string"
    )
    skipped = _read(document, errors="skip")
    assert skipped.skipped == 1
    assert skipped.instances["instance_id"].tolist() == ["i-1"]
    assert skipped.instance_tags["tag"].tolist() == ["a"]


def test_rows_travel_as_arrow_and_come_back_as_they_were() -> None:
    """arrowrows: IPC and back gives the rows; a float in an integer column is refused."""
    columns = {
        "name": Column("name", "string", "name", "", "", "str"),
        "port": Column("port", "Int64", "port", "", "", "int"),
    }
    struct = arrowrows.struct_type("instances", ["name", "port", "flag"], columns)
    rows = [("a", 1, True), (None, None, False), ("\u00e9\U0001f600", 2**62, None)]
    array = arrowrows.rows_to_arrow(rows, struct)
    assert [f.name for f in struct] == ["name", "port", "flag"]
    assert arrowrows.to_rows(arrowrows.from_ipc(arrowrows.to_ipc(array))) == rows
    assert arrowrows.rows_to_arrow([("a", 1.5, True)], struct) is None
    assert arrowrows.rows_to_arrow([("a", "1", True)], struct) is None
    assert arrowrows.struct_type("volumes", ["name"], columns) is None
