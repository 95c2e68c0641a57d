"""The typed fast path (decode.py) and the general path give identical tables."""

from __future__ import annotations

import json
import warnings
from typing import Any

import orjson
import pandas as pd
import pytest
from conftest import ROOT, SAMPLE_DIR, envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.ingest.decode import Cluster, decode_list_response
from shadeanalytics.testing.synthetic import big_clusters_response


def _both(document: Any) -> tuple[sa.Tables, sa.Tables]:
    """The document read as a dict (general path) and as bytes (typed path when it fits)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        general = sa.read(json.loads(json.dumps(document)))
        typed = sa.read(orjson.dumps(document))
    return general, typed


def _assert_same(general: sa.Tables, typed: sa.Tables) -> None:
    for (name, left), (_, right) in zip(general.frames(), typed.frames(), strict=True):
        pd.testing.assert_frame_equal(left, right, obj=name)
    assert [w.replace("<dict>", "<bytes>") for w in general.warnings] == list(typed.warnings)
    assert general.skipped == typed.skipped


def test_sample_documents_take_the_typed_path_and_match() -> None:
    """Every sample snapshot decodes typed and gives the general path's tables (each file's
    snapshots read at once both ways: the same rows, in order, as one at a time)."""
    for name in ("clusters.jsonl", "instances.jsonl"):
        lines = (SAMPLE_DIR / name).read_bytes().splitlines()
        assert all(decode_list_response(line) is not None for line in lines)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.DataWarning)
            general = sa.read([json.loads(line) for line in lines])
            typed = sa.read(lines)
        assert len(general.instances) > len(lines)  # every snapshot's rows, not the first's
        _assert_same(general, typed)


def test_equal_keys_of_other_types_stay_apart() -> None:
    """1, 1.0 and True where text belongs are told apart (the typed path interns text)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        records = [make_instance("a", status_details=True), make_instance("b", status_details=1),
                   make_instance("c", status_details=1.0)]
        general, typed = _both({"instances": records})
    _assert_same(general, typed)
    assert typed.instances["status_details"].tolist() == ["True", "1", "1.0"]
    # a list where text belongs cannot be interned: the row is built without interning
    listed = {"instances": [make_instance("d", os=["x"])]}
    for source in (listed, orjson.dumps(listed)):
        with pytest.raises(sa.SchemaError, match=r"configuration\.os \(id d\): found a list"):
            sa.read(source)


def test_big_generated_response_matches() -> None:
    """A generated /clusters response of 300 clusters gives identical tables both ways."""
    data = big_clusters_response(300, seed=3)
    assert decode_list_response(data) is not None
    _assert_same(*_both(json.loads(data)))


def _docker(**config: Any) -> dict[str, Any]:
    return make_instance("d", launch_configuration={"type": "docker",
                                                    "docker_configuration": config})


@pytest.mark.parametrize("record", [
    _docker(),
    _docker(image=None),
    _docker(envs=[]),
    _docker(args="--secret", registry_credentials={}),
    _docker(registry_credentials={"username": "u", "password": "p"}, envs=[{"name": "A"}]),
    make_instance("s", launch_configuration={"type": "script", "script_configuration": {}}),
    make_instance("s", launch_configuration={"script_configuration": {
        "base64_script": "aGVsbG8=", "base64_script_sha256": None}}),
    make_instance("s", launch_configuration={"script_configuration": {
        "base64_script": "not base64!"}}),
    make_instance("t", tags=[], port_mappings=[]),
    make_instance("t", tags=["a", 3], port_mappings=[{"internal_port": 1}]),
    make_instance("n", boot_time=None, rental_terms=None) | {"configuration": None},
])
def test_edge_records_match(record: dict[str, Any]) -> None:
    """Empty objects, nulls and invalid scripts load the same way on both paths."""
    for document in ({"instances": [record]},
                     envelope({"clusters": [make_cluster("c", [record])]},
                              "2026-11-20T00:00:00Z")):
        general, typed = _both(document)
        _assert_same(general, typed)


@pytest.mark.parametrize("document", [
    {"instances": [make_instance("x", surprise=1)]},
    {"instances": [make_instance("x", tags="solo")]},
    {"instances": [make_instance("")]},
    {"clusters": [{"id": "c"}]},
    [{"instances": []}],
])
def test_records_the_structs_refuse_go_the_general_way_alone(document: Any) -> None:
    """Unknown fields, wrong shapes and bad ids: the record (only it) is parsed and walked the
    general way, which names the problem; the tables are the general path's."""
    typed = decode_list_response(orjson.dumps(document))
    assert typed is not None
    assert [type(item) for item in typed.items] == [dict]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        general = sa.read(json.loads(json.dumps(document)), errors="skip")
        fast = sa.read(orjson.dumps(document), errors="skip")
    _assert_same(general, fast)


@pytest.mark.parametrize("document", [
    {"instances": [make_instance("x")], "next": None},
    [],
])
def test_documents_the_typed_path_declines(document: Any) -> None:
    """A response with an unknown field of its own, or an empty array, goes the general way
    whole."""
    assert decode_list_response(orjson.dumps(document)) is None


def test_a_bad_envelope_time_is_reported_as_on_the_general_path() -> None:
    """An envelope that decodes but has a bad observed_at is read the general way."""
    document = envelope({"instances": []}, "yesterday", "/instances")
    with pytest.raises(sa.SchemaError) as caught:
        sa.read(orjson.dumps(document))
    assert str(caught.value) == ("<bytes> at $.observed_at: observed_at is not an RFC 3339 "
                                 "timestamp")


def _shapes() -> Any:
    """benchmarks/shapes.py: realistic shapes, generated independently of the test kit."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shapes", ROOT / "benchmarks" / "shapes.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_realistic_shapes_take_the_typed_path_and_match(tmp_path: Any) -> None:
    """Info responses with nulls by lifecycle, tags, port mappings, docker and script launches,
    unknown fields and drifted values, in every container (a JSON array, JSONL, the /clusters
    wrapper, gzipped): typed (only the records with an unknown field the general way), and
    the tables of the general path, row for row."""
    shapes = _shapes()
    fleet = shapes.fleet(60, seed=5)
    data = shapes.render(fleet, "array")
    typed_list = decode_list_response(data)
    assert typed_list is not None and typed_list.kind == "array"
    kinds = [type(item) for item in typed_list.items]
    assert kinds.count(Cluster) == 59 and kinds.count(dict) == 1  # one with an unknown field
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        general = sa.read(json.loads(data))
        for name in ("s.json", "s.jsonl", "s.clusters.json", "s.json.gz", "s.jsonl.gz"):
            typed = sa.read(shapes.write(tmp_path / name, fleet))
            for (table, left), (_, right) in zip(general.frames(), typed.frames(), strict=True):
                pd.testing.assert_frame_equal(left, right, obj=f"{name} {table}")
    members = [i for c in fleet for i in c["instances"]]
    assert len(general.instances) == len(members)
    assert general.instances["ip"].isna().sum() == sum(i["ip"] is None for i in members) > 0
    assert general.instances["status"].astype(str).tolist() == [i["status"] for i in members]
    assert general.instance_tags["tag"].tolist() == [t for i in members for t in i["tags"]]
    assert [w.split(":")[0] for w in general.warnings] == [
        "$[*].instances[*].maintenance_window", "$[*].instances[*].status"]
    assert "$[*].instances[*].status: unknown status 'stopped'" in general.warnings[1]
