"""Bad input: every case ends loaded, loaded with a warning, or a project error naming where."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_cluster, make_instance

import shadeanalytics as sa

SECRET = "sa-fake-secret-canary-0001"


def _error(source: object, **kwargs: Any) -> str:
    with pytest.raises(sa.ShadeanalyticsError) as caught:
        sa.read(source, **kwargs)
    assert SECRET not in str(caught.value)
    return str(caught.value)


def test_invalid_json_names_file_and_position(tmp_path: Path) -> None:
    """Invalid JSON: the file and the line/column, never the text."""
    path = tmp_path / "bad.json"
    path.write_text('{"clusters": [\n  {"id": "c-1",, }\n]}')
    with pytest.raises(sa.InvalidJSONError) as caught:
        sa.read(path)
    assert str(caught.value) == f"{path}: invalid JSON (line 2, column 16)"


def test_invalid_json_line_of_a_jsonl_file(tmp_path: Path) -> None:
    """A broken line in a .jsonl file is named by its line number."""
    path = tmp_path / "polls.jsonl"
    path.write_text(json.dumps({"clusters": []}) + "\n" + '{"clusters": [' + "\n")
    assert _error(path) == f"{path} line 2: invalid JSON (line 1, column 15)"


def test_non_utf8_bytes() -> None:
    """Bytes that are not UTF-8 are refused with the byte offset."""
    assert _error(b'{"clusters": ["\xff"]}') == "<bytes>: not valid UTF-8 (byte 15)"


def test_empty_file_and_bad_gzip(tmp_path: Path) -> None:
    """An empty file and a .gz that is not gzip get one-line errors."""
    (tmp_path / "empty.json").write_text("  \n")
    assert _error(tmp_path / "empty.json") == f"{tmp_path / 'empty.json'}: empty, expected JSON"
    (tmp_path / "x.json.gz").write_bytes(b"not gzip")
    assert _error(tmp_path / "x.json.gz") == f"{tmp_path / 'x.json.gz'}: not a valid gzip file"
    assert gzip.decompress(gzip.compress(b"{}")) == b"{}"


def test_missing_file_empty_folder_and_unmatched_glob(tmp_path: Path) -> None:
    """Paths that hold nothing to read are errors naming the path."""
    assert _error(tmp_path / "nope.json") == f"{tmp_path / 'nope.json'}: no such file"
    assert _error(tmp_path) == f"{tmp_path}: no .json, .jsonl or .json.gz files in this folder"
    pattern = str(tmp_path / "*.json")
    assert _error(pattern) == f"{pattern}: no files match this pattern"


@pytest.mark.parametrize(("value", "kind"), [
    (42, "an integer"), ("just text", "a string"), (None, "null"), ([1, 2], "an integer"),
])
def test_top_level_value_of_the_wrong_shape(value: object, kind: str) -> None:
    """A scalar or a list of scalars at the top is not a Shadeform response."""
    path = "$[0]" if isinstance(value, list) else "$"
    message = _error(json.dumps(value).encode())
    assert message == f"<bytes> at {path}: found {kind}, expected a Shadeform response object"


def test_nesting_too_deep() -> None:
    """Deeply nested lists end as one project error, not a RecursionError."""
    assert _error(b"[" * 5000 + b"]" * 5000) == (
        "<bytes>: nested too deeply to be a Shadeform response")
    assert _error([[[[{"clusters": []}]]]]) == (
        "<list> at $[0][0]: found a list, expected a Shadeform response object")


def test_missing_required_id_and_instances() -> None:
    """A cluster without id or instances is an error naming the JSON path (and id if known)."""
    no_id = make_cluster()
    del no_id["id"]
    assert _error({"clusters": [no_id]}) == (
        "<dict> at $.clusters[0].id: missing required field 'id'")
    no_members = make_cluster("c-9")
    del no_members["instances"]
    assert _error({"clusters": [make_cluster(), no_members]}) == (
        "<dict> at $.clusters[1].instances (id c-9): missing required field 'instances'")
    assert _error({"instances": [make_instance(id=7)]}) == (
        "<dict> at $.instances[0].id: 'id' is an integer, expected a non-empty string")


def test_wrong_type_names_path_and_id_never_the_value() -> None:
    """hourly_price "abc" (or a secret-looking string) is an error without the value."""
    for bad in ("abc", SECRET):
        message = _error({"instances": [make_instance("i-7", hourly_price=bad)]})
        assert message == ("<dict> at $.instances[0].hourly_price (id i-7): found a string, "
                           "expected an integer number of cents")
    message = _error({"clusters": [make_cluster("c-1", status=["active"])]})
    assert message == ("<dict> at $.clusters[0].status (id c-1): found a list, expected a "
                       "status string")
    message = _error({"instances": [make_instance("i-8", created_at="yesterday")]})
    assert message == ("<dict> at $.instances[0].created_at (id i-8): not an RFC 3339 "
                       "timestamp")


def test_numeric_string_price_loads_with_one_warning() -> None:
    """hourly_price "210" loads as 210 cents with one warning for the path."""
    records = [make_instance("a", hourly_price="210"), make_instance("b", hourly_price="305")]
    with pytest.warns(sa.DataWarning) as caught:
        tables = sa.read({"instances": records})
    assert [str(w.message) for w in caught] == [
        "$.instances[*].hourly_price: a numeric string where the API promises an integer; "
        "loaded as a number (first at <dict> at $.instances[0].hourly_price (id a); 2 records)"]
    assert tables.instances["hourly_price_cents"].tolist() == [210, 305]


def test_null_where_the_spec_promises_a_value_loads_with_a_warning() -> None:
    """A null required field loads as NA with a warning naming the path."""
    with pytest.warns(sa.DataWarning, match=r"^\$\.instances\[\*\]\.cloud: missing or null"):
        tables = sa.read({"instances": [make_instance("a", cloud=None)]})
    assert tables.instances["cloud"].isna().tolist() == [True]


def test_unknown_fields_load_with_one_warning_per_path() -> None:
    """New fields are loaded around, one warning per generalised path."""
    records = [make_instance("a", new_field=1), make_instance("b", new_field=SECRET)]
    records[1]["configuration"]["gpu_count_v2"] = 8
    with pytest.warns(sa.DataWarning) as caught:
        tables = sa.read({"instances": records})
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "$.instances[*].configuration.gpu_count_v2: unknown field, loaded around (first at "
        "<dict> at $.instances[1].configuration.gpu_count_v2 (id b))",
        "$.instances[*].new_field: unknown field, loaded around (first at <dict> at "
        "$.instances[0].new_field (id a); 2 records)",
    ]
    assert len(tables.instances) == 2
    assert SECRET not in "".join(messages)


def test_object_where_a_list_is_expected_and_back() -> None:
    """configuration as a list, tags as an object: loaded around with warnings."""
    record = make_instance("a", tags={"team": "nlp"})
    record["configuration"] = [record["configuration"]]
    with pytest.warns(sa.DataWarning) as caught:
        tables = sa.read({"instances": [record]})
    messages = [str(w.message) for w in caught]
    assert messages[0] == ("$.instances[*].configuration: found a list, expected an object; "
                           "ignored (first at <dict> at $.instances[0].configuration (id a))")
    assert ("$.instances[*].tags: found an object, expected a list; ignored (first at <dict> "
            "at $.instances[0].tags (id a))") in messages
    assert tables.instances["gpu_type"].isna().all()
    assert tables.instance_tags.empty


def test_duplicate_ids_with_different_content_are_kept_with_a_warning() -> None:
    """The same cluster id twice in one snapshot: both rows kept, warned."""
    response = {"clusters": [make_cluster("c-1"), make_cluster("c-1", name="other")]}
    with pytest.warns(sa.DataWarning) as caught:
        tables = sa.read(response)
    assert [str(w.message) for w in caught] == [
        "$.clusters[*]: the same id appears twice in one snapshot with different content; "
        "both rows kept (first at <dict> at $.clusters[1] (id c-1))",
        # the two clusters list the same member: its repeat is dropped
        "$.clusters[*].instances[*]: the same record was loaded twice; the repeat was dropped "
        "(first at <dict> at $.clusters[1].instances[0] (id c-1-i1))"]
    assert tables.clusters["name"].tolist() == ["cluster-c-1", "other"]


def test_skip_drops_bad_records_and_their_children_and_counts_them() -> None:
    """errors='skip' drops the bad record (and its tags), warns and counts it."""
    records = [make_instance("good", tags=["a"]),
               make_instance("bad", hourly_price="abc", tags=["b"]),
               "not an object"]
    with pytest.warns(sa.DataWarning) as caught:
        tables = sa.read({"instances": records}, errors="skip")
    assert tables.skipped == 2
    assert tables.instances["instance_id"].tolist() == ["good"]
    assert tables.instance_tags["tag"].tolist() == ["a"]
    assert sorted(str(w.message) for w in caught) == [
        "$.instances[*].hourly_price: record skipped: found a string, expected an integer "
        "number of cents (first at <dict> at $.instances[1].hourly_price (id bad))",
        "$.instances[*]: record skipped: found a string, expected an instance object (first at "
        "<dict> at $.instances[2])",
    ]


def test_errors_argument_is_checked() -> None:
    """errors must be raise or skip."""
    with pytest.raises(ValueError, match="errors must be 'raise' or 'skip', not 'ignore'"):
        sa.read({"clusters": []}, errors="ignore")


def test_unreadable_source_type() -> None:
    """A source of an unsupported Python type is a project error."""
    assert _error(3.5) == ("cannot read a float: pass a dict, JSON text, bytes, a path, a "
                           "folder, a glob or a list of these")


def test_envelope_with_a_bad_observed_at() -> None:
    """An envelope whose observed_at is not a timestamp is an error naming the path."""
    doc: dict[str, Any] = {"observed_at": "last tuesday", "endpoint": "/clusters",
                           "response": {"clusters": []}}
    assert _error(doc) == "<dict> at $.observed_at: observed_at is not an RFC 3339 timestamp"
    doc["observed_at"] = 1700000000
    assert _error(doc) == ("<dict> at $.observed_at: observed_at is an integer, expected an "
                           "RFC 3339 string")
