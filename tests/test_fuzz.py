"""Fuzzing the loaders: documents generated from the API schema, and mutations of them.

Every outcome must be: loaded; loaded with a DataWarning naming a JSON path; or a project error
(``ShadeanalyticsError``) naming where. Anything else (a KeyError or TypeError from inside
pandas, a RecursionError...) is a bug. The offending value never appears in a message.
"""

from __future__ import annotations

import copy
import json
import warnings
from datetime import datetime
from typing import Any

import orjson
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shadeanalytics as sa

# the API's JSON Schema (a copy of the reference the project was built from)
SCHEMA = json.loads((ROOT / "docs" / "reference" / "shadeform-schema.json").read_text())
CANARY = "sa-fuzz-canary-7f3a"
# derandomized: CI runs the same examples every time (2,100 in all over the tests below)
FUZZ = settings(max_examples=500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# hypothesis takes naive bounds; the zone is added when the text is made
_TIMES = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1))  # noqa: DTZ001


def _date_time() -> st.SearchStrategy[str]:
    """RFC 3339 text: Z or an offset, with or without fractional seconds."""
    def fmt(args: tuple[Any, int, str]) -> str:
        moment, digits, zone = args
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if digits:
            text += "." + f"{moment.microsecond:06d}"[:digits]
        return text + zone
    return st.tuples(_TIMES, st.sampled_from([0, 3, 6]),
                     st.sampled_from(["Z", "+00:00", "+02:00", "-07:00"])).map(fmt)


def _from_schema(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for the JSON values a schema node allows."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: _from_schema(SCHEMA["$defs"][name]))
    if "anyOf" in node:
        return st.one_of([_from_schema(n) for n in node["anyOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    types = node.get("type", "string")
    if isinstance(types, list):
        return st.one_of([_from_schema({**node, "type": t}) for t in types])
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types == "integer":
        return st.integers(min_value=node.get("minimum", -(2**31)), max_value=2**31)
    if types == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if types == "array":
        return st.lists(_from_schema(node.get("items", {})), max_size=2)
    if types == "object":
        props = node.get("properties", {})
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {k: _from_schema(v) for k, v in props.items() if k in required},
            optional={k: _from_schema(v) for k, v in props.items() if k not in required},
        )
    fmt = node.get("format")
    if fmt == "date-time":
        return _date_time()
    if fmt == "uuid":
        return st.uuids().map(str)
    if node.get("x-unit") == "USD":
        return st.decimals(min_value=0, max_value=10**6, places=2).map(str)
    examples = node.get("examples")
    text = st.text(min_size=1, max_size=20)
    return st.one_of(st.sampled_from(examples), text) if examples else text


def _ref(name: str) -> st.SearchStrategy[Any]:
    return _from_schema({"$ref": f"#/$defs/{name}"})


VALID = st.one_of(_ref("ClustersResponse"), _ref("Cluster"), _ref("InstancesResponse"),
                  _ref("Instance"), _ref("InstanceInfo"), _ref("InstanceTypesResponse"))


def _expected_rows(doc: dict[str, Any]) -> tuple[int, int]:
    """(cluster rows, instance rows) a valid document must give."""
    if "clusters" in doc:
        return len(doc["clusters"]), sum(len(c["instances"]) for c in doc["clusters"])
    if "instance_types" in doc:
        return 0, 0
    if "region_info" in doc:
        return 1, len(doc["instances"])
    if "instances" in doc:
        return 0, len(doc["instances"])
    return 0, 1


def _load(source: Any, **kwargs: Any) -> tuple[sa.Tables | None, list[str], str | None]:
    """Load; return the tables (or None), the warning texts and the error text (or None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tables = sa.read(source, **kwargs)
            error = None
        except sa.ShadeanalyticsError as exc:
            tables, error = None, str(exc)
    texts = [str(w.message) for w in caught if issubclass(w.category, sa.DataWarning)]
    others = [w for w in caught if not issubclass(w.category, sa.DataWarning)]
    assert not others, [str(w.message) for w in others]
    for text in texts:
        assert text.startswith("$"), text
    for text in [*texts, error or ""]:
        assert CANARY not in text
    return tables, texts, error


@pytest.mark.hardening
@FUZZ
@given(VALID)
def test_valid_documents_load_with_one_row_per_item(doc: dict[str, Any]) -> None:
    """Schema-valid documents load (as dicts and as bytes) with one row per item."""
    clusters, instances = _expected_rows(doc)
    for source in (copy.deepcopy(doc), orjson.dumps(doc)):
        tables, _, error = _load(source)
        assert error is None, error
        assert tables is not None
        assert (len(tables.clusters), len(tables.instances)) == (clusters, instances)


_ODD = ["", "x" * 100_000, "é\u0301\u200b\u202e\U0001f600", "\x00\x1f", CANARY, 0, -1, 1.5,
        10**30, True, False, None, [], {}, [CANARY], {"value": CANARY}, [[[[]]]]]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*path, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], how: str, odd: Any) -> Any:
    """``doc`` with one change at ``path``."""
    if not path:
        return {"wrap": [doc]} if how == "wrap" else odd
    root = copy.deepcopy(doc)
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if how == "delete" and isinstance(parent, dict):
        del parent[key]
    elif how == "wrap":
        parent[key] = [parent[key]]
    elif how == "unwrap" and isinstance(parent[key], list):
        parent[key] = parent[key][0] if parent[key] else {}
    elif how == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    elif how == "extra" and isinstance(parent[key], dict):
        parent[key][f"new_field_{len(parent[key])}"] = odd
    elif how == "deep":
        for _ in range(60):
            odd = [odd]
        parent[key] = odd
    else:
        parent[key] = odd
    return root


MUTATIONS = ("delete", "replace", "wrap", "unwrap", "duplicate", "extra", "deep")


@pytest.mark.hardening
@settings(FUZZ, max_examples=1200)
@given(VALID, st.data())
def test_mutated_documents_end_loaded_warned_or_as_project_errors(doc: Any,
                                                                  data: st.DataObject) -> None:
    """Missing keys, wrong types, nulls, extra keys, list/object swaps, duplicates, deep
    nesting, odd Unicode and huge strings: loaded, warned or a project error."""
    path = data.draw(st.sampled_from(_paths(doc)))
    how = data.draw(st.sampled_from(MUTATIONS))
    odd = data.draw(st.sampled_from(_ODD))
    mutated = _mutate(doc, path, how, odd)
    for errors in ("raise", "skip"):
        # a str in a Python source is a path (its name is the user's own, so it may be shown)
        path_like = isinstance(mutated, str) or (
            isinstance(mutated, list) and any(isinstance(item, str) for item in mutated))
        if not path_like:
            _load(copy.deepcopy(mutated), errors=errors)
        _load(json.dumps(mutated).encode(), errors=errors)


@pytest.mark.hardening  # 400 examples: the long tier, beside the other fuzz runs
@settings(FUZZ, max_examples=400)
@given(st.binary(max_size=300) | VALID.map(lambda d: orjson.dumps(d)).flatmap(
    lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda i: b[:i] + b"\xff" + b[i + 1:])))
def test_arbitrary_and_non_utf8_bytes(data: bytes) -> None:
    """Random bytes and documents with a non-UTF-8 byte: loaded or a project error."""
    _load(data)
    _load(data, errors="skip")


@FUZZ
@given(st.sampled_from(_ODD))
def test_scalars_and_empty_values_at_the_top(value: Any) -> None:
    """A scalar, empty list or empty object at the top is a project error or empty tables."""
    tables, _, error = _load(json.dumps(value).encode())
    assert (tables is None) != (error is None)
