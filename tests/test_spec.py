"""The record spec (schema.Record): one declaration, from which the loaders derive."""

from __future__ import annotations

import json
import warnings
from typing import Any

import msgspec
import orjson
import pandas as pd
import pytest
from conftest import make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.ingest import decode, schema
from shadeanalytics.ingest.normalize import INSTANCE_FIELDS, redact

_SECRETS = ("hf_SECRET_TOKEN", "--api-key SECRET_ARG", "REGISTRY_PASSWORD",
            "IyEvYmluL2Jhc2gKZWNobyBTRUNSRVQK", "INFO_ENV_SECRET")


def _launch(shared: Any = 8) -> dict[str, Any]:
    return {"type": "docker", "docker_configuration": {
        "image": "vllm/vllm-openai:latest", "args": _SECRETS[1], "shared_memory_in_gb": shared,
        "envs": [{"name": "HF_TOKEN", "value": _SECRETS[0]}],
        "port_mappings": [{"host_port": 80, "container_port": 8000}],
        "volume_mounts": [{"host_path": "/a", "container_path": "/b"}],
        "registry_credentials": {"username": "u", "password": _SECRETS[2]},
    }, "script_configuration": {"base64_script": _SECRETS[3]}}


def _both(document: Any) -> tuple[sa.Tables, sa.Tables]:
    """(from a parsed dict, from bytes): the converted and the typed path."""
    return sa.read(json.loads(json.dumps(document))), sa.read(orjson.dumps(document))


def test_structs_and_builder_derive_from_the_columns() -> None:
    """Every column with a JSON source is a field of the typed decoder's struct, and the raw
    row has every instances column but the ones tables computes."""
    def has(struct: Any, path: list[str]) -> bool:
        for part in path:
            fields = {f.name: f for f in msgspec.structs.fields(struct)}
            if part.rstrip("[]") not in fields:
                return False
            kind = fields[part.rstrip("[]")].type
            inner = [a for a in getattr(kind, "__args__", ()) if isinstance(a, type)
                     and issubclass(a, msgspec.Struct)]
            lists = [a.__args__[0] for a in getattr(kind, "__args__", ())
                     if getattr(a, "__origin__", None) is list]
            struct = next(iter(inner or [a for a in lists if isinstance(a, type)]), None)
        return True

    for column in schema.INSTANCES:
        if column.parse != "derived" and not column.source.startswith("("):
            assert has(decode.Instance, column.source.split(".")), column.name
    assert not has(decode.Instance, ["configuration", "gpu_count"])
    assert "docker_shared_memory_in_gb" in INSTANCE_FIELDS
    assert set(INSTANCE_FIELDS) >= {c.name for c in schema.INSTANCES} - {
        "hourly_price_usd", "total_vram_gb", "details_observed_at"}


def test_shared_memory_is_one_declaration_and_loads_on_both_paths() -> None:
    """docker_configuration.shared_memory_in_gb: one Column in schema.INSTANCES, read by the
    typed decoder, the converted path, the dictionary and kept by the store's redaction."""
    records = [make_instance("a", launch_configuration=_launch(8)),
               make_instance("b", launch_configuration=_launch(None)),
               make_instance("c")]
    for tables in _both({"instances": records}):
        column = tables.instances["docker_shared_memory_in_gb"]
        assert str(column.dtype) == "Int64"
        assert column.tolist() == [8, pd.NA, pd.NA]
        assert tables.instances["docker_image"].tolist() == [
            "vllm/vllm-openai:latest", "vllm/vllm-openai:latest", pd.NA]
        assert tables.instances["has_registry_credentials"].tolist() == [True, True, pd.NA]
    assert "| `docker_shared_memory_in_gb` | Int64 | GB |" in schema.data_dictionary()
    kept = redact(records[0])["launch_configuration"]["docker_configuration"]
    assert kept["shared_memory_in_gb"] == 8
    assert kept["args"] == kept["registry_credentials"] == "[redacted]"


def test_secrets_reach_no_table_on_either_path() -> None:
    """No secret reaches a table on the typed or the general loading path."""
    info = make_instance("i", launch_configuration=_launch(),
                         envs=[{"name": "E", "value": _SECRETS[4]}])
    document = {"clusters": [make_cluster("c", [info])]}
    for tables in _both(document):
        text = "".join(df.to_csv() for _, df in tables.frames())
        assert not [s for s in _SECRETS if s in text]
        assert tables.docker_envs["name"].tolist() == ["HF_TOKEN"]
        assert tables.instance_envs["name"].tolist() == ["E"]
    typed = decode.decode_list_response(orjson.dumps(document))
    assert typed is not None
    docker = next(iter(typed.items)).instances[0].launch_configuration.docker_configuration
    assert type(docker.args) is msgspec.Raw  # never decoded into a string
    assert type(docker.envs[0].value) is msgspec.Raw
    assert type(docker.registry_credentials["password"]) is msgspec.Raw


_LIFECYCLE = {"instances": ("cloud_assigned_id", "ip", "ssh_user", "ssh_port", "active_at",
                            "deleted_at"),
              "clusters": ("cloud_cluster_id", "active_at")}


def test_null_by_lifecycle_is_declared_and_never_required() -> None:
    """Columns null by lifecycle are declared as such and never required."""
    for table, names in _LIFECYCLE.items():
        columns = {c.name: c for c in schema.TABLES[table]}
        assert {n for n, c in columns.items() if c.lifecycle} == set(names)
    assert not [c.name for t in schema.TABLES.values() for c in t if c.required and c.lifecycle]


def test_nulls_by_lifecycle_do_not_warn() -> None:
    """Pending instances without ip, ssh_port, ssh_user, cloud_assigned_id or active_at, an
    active one still without ip and ssh_port, a just-created one without configuration and
    cost_estimate, a pending cluster without cloud_cluster_id: no warning on either path."""
    pending = make_instance("p", status="pending", ip=None, ssh_port=None, ssh_user=None,
                            cloud_assigned_id=None, active_at=None)
    active = make_instance("a", ip=None, ssh_port=None)
    created = make_instance("n", status="pending_provider", ip=None, ssh_port=None,
                            ssh_user=None, cloud_assigned_id=None, active_at=None)
    del created["configuration"], created["cost_estimate"]
    cluster = make_cluster("c", [pending, active, created], status="pending", active_at=None,
                           cloud_cluster_id=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for document in (cluster, [cluster], {"clusters": [cluster]}):
            for tables in _both(document):
                assert tables.warnings == ()
                assert tables.instances["ip"].isna().tolist() == [True, True, True]
                assert tables.instances["ssh_port"].isna().tolist() == [True, True, True]
    # the same nulls in a field the API promises do warn
    broken = make_instance("b", created_at=None)
    with pytest.warns(sa.DataWarning, match=r"created_at: missing or null, though the API "
                                             r"promises a value; loaded as NA"):
        sa.read(orjson.dumps({"instances": [broken]}))


def test_an_unknown_nested_field_is_named_on_both_paths() -> None:
    """The known keys derive from the spec at every level: a new key in a docker launch is
    loaded around with one warning naming its path and id, whichever way the record came."""
    launch = _launch()
    launch["docker_configuration"]["gpu_count"] = 2
    record = make_instance("x", launch_configuration=launch)
    expected = ("$.instances[*].launch_configuration.docker_configuration.gpu_count: unknown "
                "field, loaded around (first at {} at $.instances[0].launch_configuration."
                "docker_configuration.gpu_count (id x))")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        general, typed = _both({"instances": [record]})
    assert general.warnings == (expected.format("<dict>"),)
    assert typed.warnings == (expected.format("<bytes>"),)
    assert typed.instances["docker_shared_memory_in_gb"].tolist() == [8]


def test_the_store_validates_ids_by_the_spec() -> None:
    """The store checks ids by the record spec: an integer id is a SchemaError."""
    assert schema.valid_id("a") and not schema.valid_id("") and not schema.valid_id(1)
    with pytest.raises(sa.SchemaError, match=r"\$\.clusters\[0\]\.instances\[0\]\.id: 'id' is "
                                             r"an integer, expected a non-empty string"):
        from shadeanalytics.live.store import _prepare
        bad = make_instance(1)  # type: ignore[arg-type]  # an integer id, on purpose
        _prepare({"clusters": [make_cluster("c", [bad])]}, None, None)


def test_loaded_columns_are_writable() -> None:
    """Columns pyarrow built (strings, integers, dollars, times) take assignment like any."""
    records = [make_instance("a", launch_configuration=_launch(8), cost_estimate="1.50",
                             tags=["x"], port_mappings=[{"internal_port": 1,
                                                         "external_port": 2}]),
               make_instance("b", cost_estimate="2.25", tags=["y"],
                             port_mappings=[{"internal_port": 3, "external_port": 4}])]
    tables = sa.read(orjson.dumps(envelope_of({"clusters": [make_cluster("c", records)]})))
    for name, df in tables.frames():
        if len(df) < 2:
            continue
        for column in df.columns:
            df.loc[df.index[0], column] = df[column].iloc[1]
            assert df[column].iloc[0] is df[column].iloc[1] or \
                df[column].iloc[0] == df[column].iloc[1] or pd.isna(df[column].iloc[1]), \
                (name, column)


def envelope_of(response: dict[str, Any]) -> dict[str, Any]:
    return {"observed_at": "2026-11-20T00:00:00Z", "endpoint": "/clusters",
            "response": response}
