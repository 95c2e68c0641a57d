"""The rest of the account: volumes, volume types, SSH keys, templates, cluster types, and the
details of /instances/{id}/info, from fixtures written from Shadeform's spec and docs."""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import (
    ACCOUNT_FIXTURES,
    FIXTURE_SECRETS,
    PUBLIC_KEY_BLOB,
    account_fixture,
    make_cluster,
    make_instance,
)

import shadeanalytics as sa
from shadeanalytics.analytics.storage import volume_prices
from shadeanalytics.cli import main
from shadeanalytics.errors import DataWarning
from shadeanalytics.ingest.schema import CATALOG_RULE, TABLES

T0, T1 = "2026-11-20T00:00:00Z", "2026-11-20T01:00:00Z"


def _read(source: Any, **kwargs: Any) -> tuple[sa.Tables, list[str]]:
    """Tables of ``source`` and the DataWarning messages the load gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        tables = sa.read(source, **kwargs)
    return tables, [str(w.message) for w in caught if w.category is DataWarning]


def _envelope(at: str, endpoint: str, response: Any) -> dict[str, Any]:
    return {"observed_at": at, "endpoint": endpoint, "response": response}


@pytest.fixture(scope="module")
def account() -> sa.Tables:
    """The fixture folder, loaded once."""
    return sa.read(ACCOUNT_FIXTURES)


def test_every_fixture_loads_without_a_warning(account: sa.Tables) -> None:
    """The folder of spec and docs examples, deviations included, loads clean: exact rows."""
    assert account.warnings == ()
    shapes = {name: len(df) for name, df in account.frames()}
    assert shapes == {
        "clusters": 0, "instances": 4, "instance_tags": 1, "port_mappings": 0,
        "docker_port_mappings": 0, "docker_volume_mounts": 0, "docker_envs": 0,
        "instance_types": 5, "instance_volumes": 1, "instance_envs": 1, "volumes": 3,
        "volume_types": 3, "ssh_keys": 2, "templates": 3, "template_tags": 3,
        "template_envs": 2, "cluster_types": 1, "polls": 0,
    }


def test_every_table_has_the_schema_columns_and_dtypes(account: sa.Tables) -> None:
    """Each new table is exactly its schema: names in order, dtypes as declared."""
    for name, df in account.frames():
        assert list(df.columns) == [c.name for c in TABLES[name]], name
        for column in TABLES[name]:
            want = column.dtype if column.dtype != "category (ordered)" else "category"
            assert str(df[column.name].dtype) == want, (name, column.name)


def test_volumes_keep_size_mount_and_estimate(account: sa.Tables) -> None:
    """/volumes and /volumes/{id}/info rows: a null mounted_by is NA, the estimate in USD."""
    v = account.volumes.set_index("volume_id")
    datasets = v.loc["0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13"]
    assert (datasets["cloud"], datasets["region"], datasets["size_in_gb"]) == (
        "aws", "us-east-1", 500)
    assert pd.isna(datasets["mounted_by"])
    assert datasets["cost_estimate_usd"] == 3.6
    assert not datasets["supports_multi_mount"]
    assert v.loc["78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c40", "mounted_by"] == (
        "d290f1ee-6c54-4b01-90e6-d701748f0851")
    assert v.loc["5d2e8f41-9a7b-4c3d-8e1f-0a2b4c6d8e9f", "fixed_size"] is np.False_
    assert v["gone"].tolist() == [False, False, False]


def test_volume_types_read_the_docs_spelling_and_prices_without_a_leading_zero() -> None:
    """`supports_multiple_mounts` is supports_multi_mount; ".000097" is 0.000097; no warning."""
    tables, messages = _read(ACCOUNT_FIXTURES / "volume-types-docs.json")
    assert messages == []
    vt = tables.volume_types
    assert vt["cloud"].tolist() == ["hyperstack", "digitalocean"]
    assert vt["supports_multi_mount"].tolist() == [True, False]
    assert vt["price_per_gb_per_hour_usd"].tolist() == [0.000097, 0.000137]


def test_ssh_keys_keep_the_fingerprint_ssh_keygen_prints_and_never_the_key(
        account: sa.Tables) -> None:
    """SHA256 fingerprints equal `ssh-keygen -lf` of the fixture keys; the key is not loaded."""
    keys = account.ssh_keys.set_index("ssh_key_id")
    # `ssh-keygen -lf` of the two fixture keys (OpenSSH 9)
    assert keys.loc["78a0dbbd-3b5e-4d0b-b3e1-0f5a2a1c9d10", "public_key_sha256"] == (
        "SHA256:ZkAslGjFiUHdGf/WUL8rQvkib4PTvQatUV0OUQSncCA")
    assert keys.loc["f0c6ac6d-7240-4968-8eb7-a11c4a0a5dc6", "public_key_sha256"] == (
        "SHA256:xWtjdf85Hf9YydYmgfjDz0hCpTg6OA8XgYzL29I8Qko")
    assert keys["key_type"].tolist() == ["ssh-ed25519", "ssh-ed25519"]
    assert keys.loc["78a0dbbd-3b5e-4d0b-b3e1-0f5a2a1c9d10", "is_default"]
    dumped = "".join(df.astype("string").to_csv() for _, df in account.frames())
    assert PUBLIC_KEY_BLOB not in dumped


def test_a_key_that_is_not_openssh_loads_without_a_fingerprint_and_one_warning() -> None:
    """The spec's example key (a space inside its base64) gives NA and one warning per path."""
    spec_key = ("ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAklOUpkDHrfHY17SbrmTIpNLTGK9Tjom/BWDSU "
                "GPl+nafzlHDTYW7hdI4yZ5ew18JH4JW9jbhUFrviQzM7xlELEVf4h9lFX5QVkbPppSwg0cda3 "
                "schacon@mylaptop.local")
    keys = [{"id": f"k{n}", "name": "My ssh key", "public_key": spec_key, "is_default": False}
            for n in range(2)]
    tables, messages = _read({"ssh_keys": keys})
    assert tables.ssh_keys["public_key_sha256"].isna().all()
    assert tables.ssh_keys["key_type"].tolist() == ["ssh-rsa", "ssh-rsa"]
    assert messages == ["$.ssh_keys[*].public_key: not an OpenSSH public key; "
                        "public_key_sha256 left empty (first at <dict> at "
                        "$.ssh_keys[0].public_key (id k0); 2 records)"]
    assert "AAAAB3NzaC1yc2E" not in messages[0]


def test_templates_are_redacted_as_instances_are(account: sa.Tables) -> None:
    """Env names only, a credentials flag, the script's sha256; no secret reaches a table."""
    t = account.templates.set_index("template_id")
    vllm = t.loc["d290f1ee-6c54-4b01-90e6-d70174800001"]
    assert (vllm["launch_type"], vllm["docker_image"], vllm["has_registry_credentials"]) == (
        "docker", "vllm/vllm-openai:latest", True)
    assert vllm["auto_delete_at"] == pd.Timestamp("2026-12-31T07:00:00Z")
    assert vllm["auto_delete_spend_threshold_usd"] == 250.0
    assert vllm["alert_at"] == pd.Timestamp("2026-12-24T07:00:00Z")
    assert vllm["alert_spend_threshold_usd"] == 200.0
    assert vllm["volume_mount_auto"]
    assert vllm["ufw_rule_count"] == 2
    # sha256 of the decoded script "#!/bin/bash\necho hello\n"
    assert t.loc["d290f1ee-6c54-4b01-90e6-d70174800002", "script_sha256"] == (
        "f590776b449af73e55cb368f45ce28400a19d0c68cdb34485fdfc0602b6c2437")
    envs = account.template_envs
    assert envs[["scope", "name"]].to_numpy().tolist() == [
        ["docker", "HUGGING_FACE_HUB_TOKEN"], ["instance", "WANDB_API_KEY"]]
    assert account.template_tags["tag"].tolist() == ["notebook", "vllm", "inference"]
    dumped = "".join(df.astype("string").to_csv() for _, df in account.frames())
    assert [s for s in FIXTURE_SECRETS if s in dumped] == []


def test_featured_is_known_only_from_the_envelope(account: sa.Tables) -> None:
    """/templates/featured in an envelope: True; a bare /templates list: NA."""
    featured = account.templates.set_index("name")["featured"]
    assert featured["Jupyter"]
    assert pd.isna(featured["My AwesomeTemplate"])
    tables = sa.read(_envelope(T0, "/templates", account_fixture("templates.json")))
    assert tables.templates["featured"].tolist() == [False]
    assert tables.polls["endpoint"].tolist() == ["/templates"]


def test_cluster_types_read_the_node_type_by_the_catalogue_rule(account: sa.Tables) -> None:
    """One row per offering and region; the flat copies agree, so no conflict is listed."""
    row = account.cluster_types.iloc[0]
    assert (row["cloud"], row["shade_instance_type"], row["num_instances"], row["region"]) == (
        "denvr", "H100_sxm5x8", 2, "houston-usa-1")
    assert (row["hourly_price_cents"], row["hourly_price_usd"], row["num_gpus"]) == (1400, 14.0, 8)
    assert row["nvlink"] and pd.isna(row["catalog_conflicts"])


def test_top_level_catalogue_copies_follow_one_rule() -> None:
    """Nested wins, a copy fills a gap, a true nvlink wins; every disagreement is listed."""
    types = account_fixture("instance-types-quickstart.json")
    h100 = types["instance_types"][1]
    h100["vcpus"] = 96  # disagrees with the nested 192
    del h100["configuration"]["storage_in_gb"]  # the top-level copy fills it
    tables, messages = _read(types)
    assert messages == []
    row = tables.instance_types.set_index("shade_instance_type").loc["H100_sxm5x8_NVLINK"]
    assert (row["nvlink"], row["vcpus"], row["storage_in_gb"]) == (True, 192, 32000)
    assert row["catalog_conflicts"] == "nvlink,vcpus"
    a6000 = tables.instance_types.set_index("shade_instance_type").loc["A6000"]
    assert pd.isna(a6000["catalog_conflicts"]) and not a6000["nvlink"]
    assert "nested `configuration` value wins" in CATALOG_RULE


def test_2024_instance_types_load_as_on_demand_rows() -> None:
    """Top-level region, availability without rental_type or display_name: no warning."""
    tables, messages = _read(ACCOUNT_FIXTURES / "instance-types-2024.json")
    assert messages == []
    it = tables.instance_types
    assert it["region"].tolist() == ["Any", "any", "us-dallas-1"]
    assert it["rental_type"].tolist() == ["on_demand"] * 3
    assert it["region_display_name"].isna().all()
    assert it["deployment_type"].isna().all() and it["gpu_manufacturer"].isna().all()
    assert it["hourly_price_usd"].tolist() == [1.89, 1.89, 0.79]


def test_instance_details_become_columns_and_child_tables(account: sa.Tables) -> None:
    """ssh_key_id, thresholds in UTC and dollars, volume_mount.auto; volume ids, env names."""
    i = account.instances.set_index("instance_id").loc["d290f1ee-6c54-4b01-90e6-d701748f0851"]
    assert i["ssh_key_id"] == "78a0dbbd-3b5e-4d0b-b3e1-0f5a2a1c9d10"
    assert i["auto_delete_at"] == pd.Timestamp("2026-12-01T22:04:05Z")
    assert i["auto_delete_spend_threshold_usd"] == 300.0
    assert i["alert_at"] == pd.Timestamp("2026-11-30T22:04:05Z")
    assert i["alert_spend_threshold_usd"] == 3.14
    assert i["volume_mount_auto"] and i["has_details"]
    assert account.instance_volumes["volume_id"].tolist() == [
        "78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c40"]
    assert account.instance_envs["name"].tolist() == ["HF_HOME"]
    listed = account.instances.set_index("instance_id").loc[
        "4c8e2a6f-0b1d-4f3e-9a5c-7e9b1d3f5a02"]
    assert not listed["has_details"] and pd.isna(listed["ssh_key_id"])


def test_lifecycle_nulls_and_a_just_created_info_do_not_warn() -> None:
    """ip, ssh_port, cloud_assigned_id null while active; no configuration or cost_estimate
    before active: no warning at all."""
    for name in ("instance-info-created.json", "instances-active-null-ip.json",
                 "instances-2024.json"):
        _, messages = _read(ACCOUNT_FIXTURES / name)
        assert messages == [], name
    created = sa.read(ACCOUNT_FIXTURES / "instance-info-created.json").instances.iloc[0]
    assert created["status"] == "pending_provider"
    assert pd.isna(created["gpu_type"]) and pd.isna(created["cost_estimate_usd"])
    assert created["has_details"] and created["ssh_key_id"] == (
        "78a0dbbd-3b5e-4d0b-b3e1-0f5a2a1c9d10")


def test_a_missing_configuration_past_pending_is_a_finding_not_a_warning() -> None:
    """An active instance without configuration loads quietly with NA hardware; the quality
    finding names it (the billing model would take the catalog's where there is one)."""
    info = account_fixture("instance-info.json")
    del info["configuration"]
    tables, messages = _read(info)
    assert messages == []
    assert pd.isna(tables.instances["num_gpus"].iloc[0])
    found = sa.quality_checks(tables, as_of="2026-11-20T00:00:00Z")
    assert found.loc[found["check"] == "missing_configuration", "resource_id"].tolist() == [
        "d290f1ee-6c54-4b01-90e6-d701748f0851"]


def test_kinds_are_told_by_their_fields_or_their_envelope_endpoint() -> None:
    """Single objects of every new kind load; a bare id+name template needs its endpoint."""
    for name, table in (("volume-info.json", "volumes"), ("sshkey-info.json", "ssh_keys"),
                        ("template-info.json", "templates")):
        assert len(getattr(sa.read(ACCOUNT_FIXTURES / name), table)) == 1, name
    bare = {"id": "t-1", "name": "minimal"}
    tables = sa.read(_envelope(T0, "/templates/t-1/info", bare))
    assert tables.templates["template_id"].tolist() == ["t-1"]
    with pytest.raises(sa.SchemaError, match=r"expected a Shadeform response object"):
        sa.read(bare)


def test_an_info_response_folds_into_its_list_row_of_the_same_snapshot() -> None:
    """A cluster member's info in the same snapshot: one row, the cluster's, with details."""
    member = make_instance("m-1")
    cluster = make_cluster("c-1", [member])
    info = {**member, "ssh_key_id": "k-1", "volume_ids": ["v-1"],
            "envs": [{"name": "TOKEN", "value": "secret-value-123"}]}
    tables, messages = _read([_envelope(T0, "/clusters", {"clusters": [cluster]}),
                              _envelope(T0, "/instances/m-1/info", info)])
    assert messages == []
    row = tables.instances.iloc[0]
    assert len(tables.instances) == 1
    assert (row["cluster_id"], row["ssh_key_id"], row["has_details"]) == ("c-1", "k-1", True)
    assert tables.instance_volumes[["instance_id", "volume_id"]].to_numpy().tolist() == [
        ["m-1", "v-1"]]
    assert "secret-value-123" not in tables.instance_envs.to_csv()


def test_latest_carries_the_newest_details_to_newer_list_rows() -> None:
    """Details seen at T0, a list row at T1: latest() shows T1 with the T0 details."""
    info = {**make_instance("i-1"), "ssh_key_id": "k-1", "volume_ids": ["v-1"],
            "auto_delete": {"date_threshold": "2026-12-01T00:00:00Z"}}
    tables = sa.read([_envelope(T0, "/instances/i-1/info", info),
                      _envelope(T1, "/instances", {"instances": [make_instance("i-1")]})])
    assert tables.instances["has_details"].tolist() == [True, False]
    latest = tables.latest()
    row = latest.instances.iloc[0]
    assert row["observed_at"] == pd.Timestamp(T1)
    assert row["details_observed_at"] == pd.Timestamp(T0)
    assert (row["ssh_key_id"], row["auto_delete_at"]) == (
        "k-1", pd.Timestamp("2026-12-01T00:00:00Z"))
    assert latest.instance_volumes[["observed_at", "volume_id"]].to_numpy().tolist() == [
        [pd.Timestamp(T1), "v-1"]]
    for column in TABLES["instances"]:  # the carried columns keep their dtypes
        want = column.dtype if column.dtype != "category (ordered)" else "category"
        assert str(latest.instances[column.name].dtype) == want, column.name


def test_latest_marks_a_volume_gone_after_a_poll_without_it() -> None:
    """A volume missing from a later successful /volumes poll is gone (billing stopped)."""
    volumes = account_fixture("volumes.json")
    later = {"volumes": volumes["volumes"][:1]}
    latest = sa.read([_envelope(T0, "/volumes", volumes),
                      _envelope(T1, "/volumes", later)]).latest()
    gone = latest.volumes.set_index("volume_id")["gone"]
    assert gone.to_dict() == {"78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c40": False,
                              "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13": True}


def test_volume_price_is_size_times_the_price_of_its_type(account: sa.Tables) -> None:
    """500 GB at $0.0001/GB/h is $0.05/h; a volume without a type has no price."""
    priced = volume_prices(account.volumes, account.volume_types).set_index("volume_id")
    assert priced.loc["0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13", "hourly_price_usd"] == (
        pytest.approx(0.05, abs=1e-15))
    assert priced.loc["78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c40", "hourly_price_usd"] == (
        pytest.approx(0.0097, abs=1e-15))  # 100 GB at .000097
    assert priced.loc["5d2e8f41-9a7b-4c3d-8e1f-0a2b4c6d8e9f", "hourly_price_usd"] == (
        pytest.approx(0.03425, abs=1e-15))  # 250 GB at .000137
    assert list(priced.columns[-2:]) == ["price_per_gb_per_hour_usd", "hourly_price_usd"]
    unpriced = volume_prices(account.volumes, account.volume_types.iloc[:0])
    assert unpriced["hourly_price_usd"].isna().all()


def test_volume_price_is_the_one_in_force_at_the_volume_row() -> None:
    """The newest type row at or before the volume row; before any, the oldest one."""
    volumes = pd.DataFrame({"volume_id": ["v", "v", "v"], "cloud": ["aws"] * 3,
                            "region": ["r"] * 3, "size_in_gb": [100, 100, 100],
                            "observed_at": pd.to_datetime([
                                "2026-11-19T00:00:00Z", "2026-11-20T12:00:00Z",
                                "2026-11-22T00:00:00Z"])})
    types = pd.DataFrame({"cloud": ["aws", "aws"], "region": ["r", "r"],
                          "price_per_gb_per_hour_usd": [0.0001, 0.0002],
                          "observed_at": pd.to_datetime(["2026-11-20T00:00:00Z",
                                                         "2026-11-21T00:00:00Z"])})
    before = volumes.copy()
    prices = volume_prices(volumes, types)["hourly_price_usd"].tolist()
    assert prices == [pytest.approx(0.01), pytest.approx(0.01), pytest.approx(0.02)]
    pd.testing.assert_frame_equal(volumes, before)


def test_summary_and_report_of_the_fixture_folder_are_clean(tmp_path: Path) -> None:
    """`summary` and `report` of the folder: exit 0, no warning, no error, no secret."""
    outputs = []
    for argv in (["summary", str(ACCOUNT_FIXTURES), "--as-of", "2026-11-29T00:00:00Z"],
                 ["report", str(ACCOUNT_FIXTURES), "--out", str(tmp_path / "report"),
                  "--no-charts", "--as-of", "2026-11-29T00:00:00Z"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(argv, stdout=out, stderr=err) == 0, err.getvalue()
        assert err.getvalue() == "", argv
        outputs.append(out.getvalue())
    assert outputs[0].startswith("Shadeform fleet as of 2026-11-29T00:00:00Z\n"
                                 "  running: 2 instances, 2 GPUs (of 4 instances")
    written = "".join(p.read_text() for p in (tmp_path / "report").glob("*.csv"))
    assert [s for s in FIXTURE_SECRETS if s in written] == []


def test_the_typed_and_general_paths_read_info_shaped_lists_alike() -> None:
    """An /instances list whose items carry info fields: the fast path's rows are the same."""
    info = account_fixture("instance-info.json")
    body = {"instances": [info, make_instance("i-2")]}
    typed = sa.read(json.dumps(body).encode())
    general = sa.read(copy.deepcopy(body))
    for (name, left), (_, right) in zip(general.frames(), typed.frames(), strict=True):
        pd.testing.assert_frame_equal(left, right, obj=name)
    assert typed.instances["has_details"].tolist() == [True, False]


def test_a_threshold_date_that_is_no_timestamp_loads_as_nat_with_a_warning() -> None:
    """The API does not check date_threshold: "next week" is NaT and one warning, not an error."""
    info = account_fixture("instance-info.json")
    info["auto_delete"]["date_threshold"] = "next week"
    tables, messages = _read(info)
    assert pd.isna(tables.instances["auto_delete_at"].iloc[0])
    assert messages == ["$.auto_delete.date_threshold: not an RFC 3339 timestamp; loaded as NaT "
                        "(first at <dict> at $.auto_delete.date_threshold (id "
                        "d290f1ee-6c54-4b01-90e6-d701748f0851))"]
    assert "next week" not in messages[0]


def test_bad_account_records_name_file_path_and_id_or_are_skipped() -> None:
    """A wrong type is a SchemaError naming path and id (never the value); skip drops it."""
    good = {"id": "v2", "name": "n", "cloud": "c", "region": "r", "size_in_gb": 5,
            "cost_estimate": "1"}
    bad = {"volumes": [{**good, "id": "v1", "size_in_gb": "huge-secret"}, good, 7]}
    with pytest.raises(sa.SchemaError) as caught:
        sa.read(bad)
    assert str(caught.value) == "<dict> at $.volumes[2]: found an integer, expected a volume object"
    tables, messages = _read(bad, errors="skip")
    assert (tables.skipped, tables.volumes["volume_id"].tolist()) == (2, ["v2"])
    assert messages[1] == ("$.volumes[*].size_in_gb: record skipped: found a string, expected "
                           "an integer (first at <dict> at $.volumes[0].size_in_gb (id v1))")
    assert not any("huge-secret" in m for m in messages)
