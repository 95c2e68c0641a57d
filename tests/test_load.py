"""Loaders: every source shape, exact values and dtypes, snapshots and latest()."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SEED_PATH, envelope, make_cluster, make_instance

import shadeanalytics as sa
from shadeanalytics.ingest.schema import STATUSES, TABLES, TIMESTAMP


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def test_seed_cluster_row_field_by_field() -> None:
    """The seed example gives one cluster row with exactly the document's values."""
    tables = sa.read_clusters(SEED_PATH)
    assert len(tables.clusters) == 1
    row = tables.clusters.iloc[0]
    assert row["cluster_id"] == "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb"
    assert row["name"] == "devnr-cluster1"
    assert row["cloud"] == "denvr"
    assert row["region"] == "houston-usa-1"
    assert row["region_display_name"] == "US, Houston, TX"
    assert row["status"] == "active"
    assert row["status_details"] == "Cluster is provisioning"
    assert row["created_at"] == _ts("2023-11-07T05:31:56Z")
    assert row["updated_at"] == _ts("2023-11-07T05:31:56Z")
    assert row["active_at"] == _ts("2023-11-07T05:31:56Z")
    assert row["hourly_price_cents"] == 1500
    assert row["hourly_price_usd"] == 15.00
    assert row["cost_estimate_usd"] == 15.0  # from "$15.00"
    assert row["cloud_cluster_id"] == "cluster-abc123"
    assert row["instance_count"] == 1
    assert pd.isna(row["observed_at"])


def test_seed_instance_row_field_by_field() -> None:
    """The seed example gives one instance row with exactly the document's values."""
    tables = sa.read_clusters(SEED_PATH)
    assert len(tables.instances) == 1
    row = tables.instances.iloc[0]
    t = _ts("2016-08-29T09:12:33.001Z")
    expected = {
        "cluster_id": "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb",
        "instance_id": "d290f1ee-6c54-4b01-90e6-d701748f0851",
        "name": "cool-gpu-server", "cloud": "hyperstack", "region": "canada-1",
        "shade_instance_type": "A6000", "cloud_instance_type": "gpu_1x_a6000",
        "cloud_assigned_id": "13b057d7-e266-4869-985f-760fe75a78b3", "shade_cloud": True,
        "status": "active", "status_details": "downloading", "gpu_type": "A100",
        "gpu_manufacturer": "nvidia", "num_gpus": 1, "vram_per_gpu_in_gb": 48,
        "total_vram_gb": 48, "vcpus": 6, "memory_in_gb": 12, "storage_in_gb": 256,
        "interconnect": "pcie", "nvlink": True, "os": "ubuntu_22_shade_os", "ip": "1.0.0.1",
        "ssh_user": "shadeform", "ssh_port": 22, "hourly_price_cents": 210,
        "hourly_price_usd": 2.10, "cost_estimate_usd": 103.4, "created_at": t,
        "active_at": t, "deleted_at": t, "boot_time_min_s": 180, "boot_time_max_s": 300,
        "launch_type": "docker", "docker_image": "vllm/vllm-openai:latest",
        "has_registry_credentials": True,
        # sha256 of the decoded example script (`base64 -d | sha256sum`)
        "script_sha256": "8a2893c0305c7a22ab222fa3132da15abf625d0fcd668da6f678a91104979047",
    }
    for column, value in expected.items():
        assert row[column] == value, column
    for column in ("rental_type", "rental_hourly_price_usd", "rental_ending_at", "observed_at"):
        assert pd.isna(row[column]), column


def test_seed_child_tables() -> None:
    """Tags, port mappings, docker ports, mounts and env names become child rows."""
    tables = sa.read_clusters(SEED_PATH)
    iid = "d290f1ee-6c54-4b01-90e6-d701748f0851"
    assert tables.instance_tags[["instance_id", "position", "tag"]].to_numpy().tolist() == [
        [iid, 0, "tag1"]]
    ports = tables.port_mappings[["internal_port", "external_port"]]
    assert ports.to_numpy().tolist() == [[8000, 80]]
    assert tables.docker_port_mappings[["host_port", "container_port"]].to_numpy().tolist() == [
        [80, 8000]]
    assert tables.docker_volume_mounts[["host_path", "container_path"]].to_numpy().tolist() == [
        ["~/.cache/huggingface", "/root/.cache/huggingface"]]
    assert tables.docker_envs["name"].tolist() == ["HUGGING_FACE_HUB_TOKEN"]


def test_every_table_has_the_schema_columns_and_dtypes() -> None:
    """Loaded and empty tables both have exactly the schema's columns and dtypes."""
    for tables in (sa.read_clusters(SEED_PATH), sa.Tables.empty()):
        for name, df in tables.frames():
            assert list(df.columns) == [c.name for c in TABLES[name]], name
            for column in TABLES[name]:
                actual = df[column.name].dtype
                if column.name == "status":
                    assert isinstance(actual, pd.CategoricalDtype) and actual.ordered
                    assert tuple(actual.categories) == STATUSES
                else:
                    assert str(actual) == column.dtype, (name, column.name)
    assert str(sa.Tables.empty().instances["created_at"].dtype) == TIMESTAMP


def test_sources_of_every_shape_give_the_same_rows(tmp_path: Path, seed: dict) -> None:
    """dict, list, /clusters list, text, bytes, .json, .jsonl, .json.gz, folder and glob."""
    text = json.dumps(seed)
    (tmp_path / "one.json").write_text(text)
    (tmp_path / "lines.jsonl").write_text(text + "\n\n")
    (tmp_path / "packed.json.gz").write_bytes(gzip.compress(text.encode()))
    sources = [seed, [seed], {"clusters": [seed]}, text, text.encode(),
               tmp_path / "one.json", str(tmp_path / "lines.jsonl"), tmp_path / "packed.json.gz"]
    for source in sources:
        tables = sa.read_clusters(source)
        assert tables.instances["instance_id"].tolist() == [
            "d290f1ee-6c54-4b01-90e6-d701748f0851"], repr(source)[:40]
    # folder and glob: three files, the same response each time -> exact repeats dropped
    with pytest.warns(sa.DataWarning, match="the same record was loaded twice"):
        assert len(sa.read_clusters(tmp_path).clusters) == 1
    with pytest.warns(sa.DataWarning, match="the same record was loaded twice"):
        assert len(sa.read_clusters(str(tmp_path / "*.json*")).clusters) == 1


def test_mixed_iterable_and_list_of_cluster_info_responses(seed: dict) -> None:
    """An iterable mixing dicts and JSON text loads each; a list of responses is one source."""
    other = make_cluster("c-2")
    tables = sa.read_clusters([seed, json.dumps(other)])
    assert tables.clusters["cluster_id"].tolist() == [
        "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb", "c-2"]


def test_envelope_dates_every_row_and_latest_keeps_newest(seed: dict) -> None:
    """observed_at comes from the envelope; latest() keeps the newest row per id."""
    later = json.loads(json.dumps(seed))
    later["instances"][0]["status"] = "deleting"
    tables = sa.read_clusters([
        envelope(seed, "2026-11-20T00:00:00Z"),
        envelope(later, "2026-11-20T06:00:00+00:00"),
    ])
    assert tables.instances["observed_at"].tolist() == [
        _ts("2026-11-20T00:00:00Z"), _ts("2026-11-20T06:00:00Z")]
    assert tables.instance_tags["observed_at"].tolist() == tables.instances["observed_at"].tolist()
    latest = tables.latest()
    assert latest.instances["status"].tolist() == ["deleting"]
    assert latest.clusters["observed_at"].tolist() == [_ts("2026-11-20T06:00:00Z")]
    assert len(latest.instance_tags) == 1
    assert latest.instance_tags["observed_at"].iloc[0] == _ts("2026-11-20T06:00:00Z")


def test_observed_at_argument_dates_unwrapped_responses(seed: dict) -> None:
    """observed_at= dates responses without an envelope; naive times are refused."""
    tables = sa.read_clusters(seed, observed_at="2026-11-20T01:02:03Z")
    assert tables.clusters["observed_at"].iloc[0] == _ts("2026-11-20T01:02:03Z")
    with pytest.raises(ValueError, match="observed_at must be timezone-aware"):
        sa.read_clusters(seed, observed_at="2026-11-20T01:02:03")


def test_timestamps_with_offsets_and_fractions_become_utc() -> None:
    """Z, offsets and fractional seconds all become the same UTC instants."""
    inst = make_instance(created_at="2026-11-20T02:00:00+02:00",
                         active_at="2026-11-20T00:05:00.250Z")
    row = sa.read_instances({"instances": [inst]}).instances.iloc[0]
    assert row["created_at"] == _ts("2026-11-20T00:00:00Z")
    assert row["active_at"] == _ts("2026-11-20T00:05:00.250Z")


@pytest.mark.parametrize(("text", "expected"), [
    ("103.4", 103.4), ("$15.00", 15.0), ("$1,234.50", 1234.5), ("", None), (None, None),
    (12, 12.0),
])
def test_cost_estimate_strings(text: object, expected: float | None) -> None:
    """cost_estimate strings with $, thousands separators, empty and null."""
    value = sa.read_instances({"instances": [make_instance(cost_estimate=text)]}) \
        .instances["cost_estimate_usd"].iloc[0] if text is not None else None
    if text is None:  # a just-created instance has none: NA without a warning (an unknown
        # estimate is counted by the cost helpers, never summed as $0)
        value = sa.read_instances({"instances": [make_instance(cost_estimate=None)]}) \
            .instances["cost_estimate_usd"].iloc[0]
    if expected is None:
        assert pd.isna(value)
    else:
        assert value == expected


def test_cpu_only_instances_are_kept() -> None:
    """gpu_type CPU with 0 GPUs loads with total_vram_gb 0."""
    cpu = make_instance("cpu-1", gpu_type="CPU", num_gpus=0, vram_per_gpu_in_gb=0,
                        shade_instance_type="cpu_mini")
    row = sa.read_instances({"instances": [cpu]}).instances.iloc[0]
    assert (row["gpu_type"], row["num_gpus"], row["total_vram_gb"]) == ("CPU", 0, 0)


def test_standalone_instances_have_no_cluster_id() -> None:
    """/instances items and /instances/{id}/info responses load with cluster_id NA."""
    tables = sa.read_instances([{"instances": [make_instance("a")]}, make_instance("b")])
    assert tables.instances["instance_id"].tolist() == ["a", "b"]
    assert tables.instances["cluster_id"].isna().all()


def test_instance_listed_standalone_and_in_its_cluster_counts_once() -> None:
    """The same instance from /instances and inside its cluster keeps the cluster row."""
    member = make_instance("m-1")
    tables = sa.read([envelope(make_cluster("c-1", [member]), "2026-11-20T00:00:00Z"),
                      envelope({"instances": [member]}, "2026-11-20T00:00:00Z", "/instances")])
    assert tables.instances[["cluster_id", "instance_id"]].to_numpy().tolist() == [["c-1", "m-1"]]


def test_unknown_status_becomes_a_new_category_with_one_warning() -> None:
    """A new status value loads as an ordered category after the known ones, warned once."""
    records = [make_instance("a", status="hibernating"), make_instance("b", status="hibernating")]
    with pytest.warns(sa.DataWarning) as caught:
        tables = sa.read_instances({"instances": records})
    messages = [str(w.message) for w in caught]
    assert messages == [
        "$.instances[*].status: unknown status 'hibernating'; added as a new category after "
        "'deleted' (first at <dict> at $.instances[0].status (id a))"]
    status = tables.instances["status"]
    assert list(status.cat.categories) == [*STATUSES, "hibernating"]
    assert status.cat.ordered


def test_read_instance_types_one_row_per_region_and_rental_type() -> None:
    """On-demand price from cents, spot price from its dollar string; old shapes tolerated."""
    response = {"instance_types": [
        {"cloud": "hyperstack", "shade_instance_type": "A6000", "cloud_instance_type": "a6000",
         "configuration": {"memory_in_gb": 12, "storage_in_gb": 256, "vcpus": 6, "num_gpus": 2,
                           "gpu_type": "A6000", "interconnect": "pcie", "nvlink": False,
                           "vram_per_gpu_in_gb": 48, "gpu_manufacturer": "nvidia",
                           "os_options": ["ubuntu22.04"]},
         "hourly_price": 210, "deployment_type": "vm",
         "availability": [
             {"region": "canada-1", "available": True, "display_name": "Canada",
              "rental_type": "on_demand"},
             {"region": "canada-1", "available": False, "display_name": "Canada",
              "rental_type": "spot", "hourly_price": "1.50"},
             {"region": "us-1", "available": True, "display_name": "US"},
         ],
         "boot_time": {"min_boot_in_sec": 180, "max_boot_in_sec": 300}},
    ]}
    tables = sa.read_instance_types(envelope(response, "2026-11-20T00:00:00Z",
                                             "/instances/types"))
    assert isinstance(tables, sa.Tables) and tables.instances.empty
    df = tables.instance_types
    assert df[["region", "rental_type", "available", "hourly_price_usd"]].to_numpy().tolist() == [
        ["canada-1", "on_demand", True, 2.10],
        ["canada-1", "spot", False, 1.50],
        ["us-1", "on_demand", True, 2.10],
    ]
    assert df["total_vram_gb"].tolist() == [96, 96, 96]
    assert df["on_demand_price_cents"].tolist() == [210, 210, 210]


def test_read_clusters_refuses_another_kind_given_directly() -> None:
    """A /instances response passed to read_clusters is an error naming what was expected."""
    with pytest.raises(sa.SchemaError) as caught:
        sa.read_clusters({"instances": [make_instance()]})
    assert str(caught.value) == (
        "<dict> at $: found an object, expected a cluster info response or a /clusters list, "
        "not an instance info response or an /instances list")


def test_folder_passes_over_files_of_other_kinds(tmp_path: Path) -> None:
    """In a folder, read_clusters reads cluster files and passes over instance files."""
    (tmp_path / "clusters.json").write_text(json.dumps({"clusters": [make_cluster()]}))
    (tmp_path / "instances.json").write_text(json.dumps({"instances": [make_instance("x")]}))
    tables = sa.read_clusters(tmp_path)
    assert tables.instances["instance_id"].tolist() == ["c-1-i1"]
    assert sa.read(tmp_path).instances["instance_id"].tolist() == ["c-1-i1", "x"]


def test_empty_inputs_give_empty_typed_tables() -> None:
    """An empty /clusters list gives empty tables with every column."""
    tables = sa.read_clusters({"clusters": []})
    assert tables.clusters.empty and list(tables.clusters.columns) == [
        c.name for c in TABLES["clusters"]]


def test_dated_list_responses_are_polls() -> None:
    """Each dated list response is a poll of its endpoint; undated ones are not."""
    tables = sa.read([
        envelope({"clusters": []}, "2026-11-20T00:00:00Z"),
        envelope({"instances": []}, "2026-11-20T00:00:00Z", "/instances"),
        envelope({"clusters": []}, "2026-11-20T06:00:00Z"),
        {"clusters": []},
    ])
    assert tables.polls.to_numpy().tolist() == [
        [_ts("2026-11-20T00:00:00Z"), "/clusters", True],
        [_ts("2026-11-20T00:00:00Z"), "/instances", True],
        [_ts("2026-11-20T06:00:00Z"), "/clusters", True],
    ]


def test_latest_marks_resources_that_vanished_from_a_later_poll_as_deleted() -> None:
    """A cluster, a member and a standalone instance missing from a later poll are deleted."""
    t0, t1 = "2026-11-20T00:00:00Z", "2026-11-20T06:00:00Z"
    gone_cluster = make_cluster("c-gone", [make_instance("m-gone")])
    kept = make_cluster("c-kept", [make_instance("m-kept"), make_instance("m-left")])
    tables = sa.read([
        envelope({"clusters": [gone_cluster, kept]}, t0),
        envelope({"instances": [make_instance("s-gone"), make_instance("s-kept")]}, t0,
                 "/instances"),
        envelope({"clusters": [make_cluster("c-kept", [make_instance("m-kept")])]}, t1),
        envelope({"instances": [make_instance("s-kept")]}, t1, "/instances"),
    ])
    latest = tables.latest()
    status = dict(zip(latest.instances["instance_id"], latest.instances["status"], strict=True))
    assert status == {"m-gone": "deleted", "m-kept": "active", "m-left": "deleted",
                      "s-gone": "deleted", "s-kept": "active"}
    clusters = dict(zip(latest.clusters["cluster_id"], latest.clusters["status"], strict=True))
    assert clusters == {"c-gone": "deleted", "c-kept": "active"}
    # the last sighting stays the row's time
    row = latest.instances.set_index("instance_id").loc["s-gone"]
    assert row["observed_at"] == _ts(t0)
    # without polls (undated responses) nothing is inferred
    undated = sa.read([{"clusters": [gone_cluster]}]).latest()
    assert undated.instances["status"].tolist() == ["active"]


def test_a_path_with_a_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         seed: dict) -> None:
    """'~/x.json' is read from the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "x.json").write_text(json.dumps(seed))
    assert len(sa.read_clusters("~/x.json").clusters) == 1
