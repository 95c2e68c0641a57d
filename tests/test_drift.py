"""Schema drift on the sample fleet (17 polls, ``data/sample``): new fields on instances,
cluster members, clusters and configurations, a new status (``hibernating``), a new cloud,
``ip`` / ``status_details`` / ``boot_time`` turned null in half the records, ``hourly_price`` as
a numeric string ("210") in some records. The report still runs (library and CLI, files and
the history store), with exactly one warning per new path, and the numbers of the records the
drift did not touch do not change."""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SAMPLE_DIR, make_instance

import shadeanalytics as sa
from shadeanalytics.analytics.costs import cost_breakdown
from shadeanalytics.analytics.inventory import gpu_inventory
from shadeanalytics.analytics.lifecycle import instance_lifecycle
from shadeanalytics.cli import main
from shadeanalytics.errors import DataWarning, SchemaError
from shadeanalytics.live.store import Store
from shadeanalytics.output.report import write_report

AS_OF = "2026-11-20T00:00:00Z"
HIBERNATING_CLOUD = "scaleway"  # its standalone instances turn "hibernating"
MOVED_CLOUD = "vultr"  # its standalone instances move to a cloud the toolkit has never seen
NEW_CLOUD = "verda-next"
FIRST_NEW_FIELD_POLL = 8  # the API adds the new fields from the 9th of the 17 polls on
NULLED = ("ip", "status_details", "boot_time")
NULLED_COLUMNS = ("ip", "status_details", "boot_time_min_s", "boot_time_max_s")

_UNKNOWN = "unknown field, loaded around"
_NUMERIC = "a numeric string where the API promises an integer; loaded as a number"
_STATUS = "unknown status 'hibernating'; added as a new category after 'deleted'"
EXPECTED_FILE_WARNINGS = {
    f"$.response.instances[*].placement_group: {_UNKNOWN}",
    f"$.response.instances[*].configuration.gpu_driver: {_UNKNOWN}",
    f"$.response.clusters[*].instances[*].placement_group: {_UNKNOWN}",
    f"$.response.clusters[*].network_id: {_UNKNOWN}",
    f"$.response.instances[*].status: {_STATUS}",
    f"$.response.instances[*].hourly_price: {_NUMERIC}",
    f"$.response.clusters[*].hourly_price: {_NUMERIC}",
}
# the store keeps each resource as its own document: the paths are the record's own
EXPECTED_STORE_WARNINGS = {
    f"$.placement_group: {_UNKNOWN}",
    f"$.configuration.gpu_driver: {_UNKNOWN}",
    f"$.network_id: {_UNKNOWN}",
    f"$.status: {_STATUS}",
    f"$.hourly_price: {_NUMERIC}",
}


def _odd(record_id: str) -> bool:
    return int(record_id[:8], 16) % 2 == 1


class Drift:
    """The sample polls with the drift applied, and which ids each change touched."""

    def __init__(self) -> None:
        self.clusters = [json.loads(line) for line in
                         (SAMPLE_DIR / "clusters.jsonl").read_text().splitlines()]
        self.instances = [json.loads(line) for line in
                          (SAMPLE_DIR / "instances.jsonl").read_text().splitlines()]
        self.types = json.loads((SAMPLE_DIR / "instance_types.json").read_text())
        self.hibernating: set[str] = set()
        self.moved: set[str] = set()
        self.nulled: set[str] = set()
        self.numeric_string: set[str] = set()
        self.original_clusters = copy.deepcopy(self.clusters)
        self.original_instances = copy.deepcopy(self.instances)
        for k, (clusters, instances) in enumerate(zip(self.clusters, self.instances,
                                                      strict=True)):
            new_fields = k >= FIRST_NEW_FIELD_POLL
            for record in instances["response"]["instances"]:
                self._instance(record, new_fields, standalone=True)
            for n, cluster in enumerate(clusters["response"]["clusters"]):
                if new_fields:
                    cluster["network_id"] = f"net-{n}"
                if n % 2:
                    cluster["hourly_price"] = str(cluster["hourly_price"])
                for member in cluster["instances"]:
                    self._instance(member, new_fields, standalone=False)

    def _instance(self, record: dict[str, Any], new_fields: bool, standalone: bool) -> None:
        rid = record["id"]
        if new_fields:
            record["placement_group"] = "pg-1"
            if standalone and "configuration" in record:  # one sample instance has none
                record["configuration"]["gpu_driver"] = "550.54"
        if standalone and record["cloud"] == HIBERNATING_CLOUD and record["status"] == "active":
            record["status"] = "hibernating"
            self.hibernating.add(rid)
        if standalone and record["cloud"] == MOVED_CLOUD:
            record["cloud"] = NEW_CLOUD
            self.moved.add(rid)
        if _odd(rid):  # half the records
            for name in NULLED:
                record[name] = None
            self.nulled.add(rid)
        elif standalone and isinstance(record.get("hourly_price"), int):
            record["hourly_price"] = str(record["hourly_price"])  # "210"
            self.numeric_string.add(rid)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, polls in (("clusters.jsonl", self.clusters),
                            ("instances.jsonl", self.instances)):
            (folder / name).write_text("".join(json.dumps(p) + "\n" for p in polls))
        (folder / "instance_types.json").write_text(json.dumps(self.types))
        for name in ("volumes.jsonl", "volume_types.json"):  # storage, unchanged
            (folder / name).write_bytes((SAMPLE_DIR / name).read_bytes())
        return folder

    @property
    def status_or_cloud_changed(self) -> set[str]:
        return self.hibernating | self.moved


@pytest.fixture(scope="module")
def drift() -> Drift:
    return Drift()


def _read(source: Any) -> tuple[sa.Tables, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        tables = sa.read(source)
    return tables, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def _paths(messages: list[str]) -> list[str]:
    """Each warning without its "(first at ...)" part."""
    return [m.split(" (first at ", 1)[0] for m in messages]


def _cli(args: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(args, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_the_drift_touches_what_it_says(drift: Drift) -> None:
    """The mutations are real: some hibernating and moved instances, half the records nulled,
    numeric strings in some, new fields in the later polls only."""
    assert len(drift.hibernating) >= 1 and len(drift.moved) >= 2
    assert len(drift.numeric_string) >= 10
    members = {m["id"] for p in drift.clusters for c in p["response"]["clusters"]
               for m in c["instances"]}
    standalone = {i["id"] for p in drift.instances for i in p["response"]["instances"]}
    everyone = members | standalone
    assert 0.35 < len(drift.nulled) / len(everyone) < 0.65
    assert "placement_group" not in drift.instances[0]["response"]["instances"][0]
    assert "placement_group" in drift.instances[-1]["response"]["instances"][0]


def test_drifted_files_load_with_one_warning_per_new_path(drift: Drift,
                                                          tmp_path: Path) -> None:
    """sa.read of the drifted sample: exactly the 7 expected warnings, one per new path (two
    new fields of instances, one of members, one of clusters, the new status, and each path
    with numeric strings); the new cloud and the nulls of optional fields warn nothing."""
    baseline, quiet = _read(SAMPLE_DIR)
    assert quiet == []
    tables, messages = _read(drift.write(tmp_path / "drifted"))
    assert sorted(_paths(messages)) == sorted(EXPECTED_FILE_WARNINGS)
    assert len(tables.instances) == len(baseline.instances)
    assert len(tables.clusters) == len(baseline.clusters)
    assert tables.skipped == 0
    status = tables.instances["status"]
    assert list(status.cat.categories)[-1] == "hibernating"
    assert NEW_CLOUD in set(tables.instances["cloud"])
    for message in messages:  # each names the first record where it was seen
        assert " (first at " in message and "drifted" in message


def _frames(tables: sa.Tables) -> dict[str, pd.DataFrame]:
    return {
        "instances": tables.latest().instances,
        "lifecycle": instance_lifecycle(tables, as_of=AS_OF),
        "by_cloud": cost_breakdown(tables, by="cloud", as_of=AS_OF),
        "by_cluster": cost_breakdown(tables, by="cluster_id", as_of=AS_OF),
        "by_gpu_type": cost_breakdown(tables, by="gpu_type", as_of=AS_OF),
        "inventory": gpu_inventory(tables, as_of=AS_OF),
    }


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as text: the drifted status column has one more category."""
    return df.astype({c: "string" for c in df.columns
                      if isinstance(df[c].dtype, pd.CategoricalDtype)})


def _rows(df: pd.DataFrame, key: str, keep: Callable[[pd.Series], pd.Series],
          drop: tuple[str, ...] = ()) -> pd.DataFrame:
    kept = df[keep(df[key]).to_numpy(dtype=bool)]
    columns = [c for c in df.columns if c not in drop]
    return _plain(kept[columns]).sort_values(key).reset_index(drop=True)


def _compare_unaffected(drift: Drift, before: sa.Tables, after: sa.Tables) -> None:
    old, new = _frames(before), _frames(after)
    changed = drift.status_or_cloud_changed
    untouched = lambda ids: ~ids.isin(changed | drift.nulled)  # noqa: E731
    # instances untouched by the drift, or with numeric-string prices: every column equal
    for name in ("instances", "lifecycle"):
        a = _rows(old[name], "instance_id", untouched)
        b = _rows(new[name], "instance_id", untouched)
        assert len(a) > 20
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
        # the numeric strings gave the very same numbers
        assert drift.numeric_string & set(a["instance_id"])
    # nulled records: every column but the nulled ones equal (costs included)
    nulled_only = lambda ids: ids.isin(drift.nulled - changed)  # noqa: E731
    for name in ("instances", "lifecycle"):
        # the nulled columns, and what lifecycle derives from boot_time (boot_late)
        drop = tuple(c for c in old[name].columns if c in NULLED_COLUMNS or "boot" in c)
        a = _rows(old[name], "instance_id", nulled_only, drop)
        b = _rows(new[name], "instance_id", nulled_only, drop)
        assert len(a) > 20
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # groups without a hibernating or moved instance: the same figures (the shares of the
    # fleet's hourly total move with the fleet, so they are left out)
    inst = old["instances"]
    touched_clouds = set(inst.loc[inst["instance_id"].isin(changed), "cloud"])
    touched_gpus = set(inst.loc[inst["instance_id"].isin(changed), "gpu_type"])
    assert touched_clouds == {HIBERNATING_CLOUD, MOVED_CLOUD}
    for name, key, touched in (("by_cloud", "cloud", touched_clouds),
                               ("by_cluster", "cluster_id", {"(standalone)"}),
                               ("by_gpu_type", "gpu_type", touched_gpus),
                               ("inventory", "gpu_type", touched_gpus)):
        keep = lambda keys, touched=touched: ~keys.isin(touched | {NEW_CLOUD})  # noqa: E731
        drop = ("share_of_hourly",)
        a = _rows(old[name], key, keep, drop)
        b = _rows(new[name], key, keep, drop)
        assert len(a) >= 2, name
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)
    # and the touched groups did change: the comparison can see a difference
    moved = new["by_cloud"][new["by_cloud"]["cloud"] == NEW_CLOUD]
    assert len(moved) == 1 and int(moved["instances"].iloc[0]) == len(
        drift.moved & set(new["instances"]["instance_id"]))


@pytest.mark.hardening  # as the store test below checks them too; the fast tier loads the drift
def test_numbers_of_unaffected_records_do_not_change(drift: Drift, tmp_path: Path) -> None:
    """Before and after the drift: instance rows and lifecycle rows of untouched instances
    (numeric-string prices included) are equal in every column; nulled records in every
    column but the nulled ones; cost_breakdown by cloud, cluster and GPU type and the GPU
    inventory, for the groups without a hibernating or moved instance, are equal."""
    before, _ = _read(SAMPLE_DIR)
    after, _ = _read(drift.write(tmp_path / "drifted"))
    _compare_unaffected(drift, before, after)


@pytest.mark.hardening
def test_report_runs_on_drifted_files(drift: Drift, tmp_path: Path) -> None:
    """write_report (charts included) and the CLI report and summary exit 0; the CLI prints
    exactly one Warning line per new path and nothing else on stderr."""
    folder = drift.write(tmp_path / "drifted")
    tables, _ = _read(folder)
    written = write_report(tables, tmp_path / "lib", as_of=AS_OF)
    assert {p.name for p in written} >= {"instances.csv", "costs_by_cloud.csv",
                                         "status_timeline.png"}
    code, stdout, stderr = _cli(["report", str(folder), "--out", str(tmp_path / "cli")])
    assert code == 0, stderr
    assert stdout.startswith("wrote ")
    lines = stderr.splitlines()
    assert all(line.startswith("Warning: ") for line in lines), stderr
    assert sorted(_paths([line.removeprefix("Warning: ") for line in lines])) == sorted(
        EXPECTED_FILE_WARNINGS)
    with (tmp_path / "cli" / "costs_by_cloud.csv").open() as handle:
        assert NEW_CLOUD in handle.read()
    code, stdout, stderr = _cli(["summary", str(folder), "--by", "status"])
    assert code == 0, stderr
    assert "hibernating" in stdout
    assert len(stderr.splitlines()) == len(EXPECTED_FILE_WARNINGS)


def _record(store: Store, drift: Drift, original: bool = False) -> None:
    clusters = drift.original_clusters if original else drift.clusters
    instances = drift.original_instances if original else drift.instances
    for k, (c, i) in enumerate(zip(clusters, instances, strict=True)):
        types = drift.types["response"] if k == len(clusters) - 1 else None
        store.record_poll(c["observed_at"], clusters=c["response"], instances=i["response"],
                          instance_types=types)


@pytest.mark.hardening
def test_drifted_polls_in_the_history_store(drift: Drift, tmp_path: Path) -> None:
    """The drifted polls recorded in the store: Store.read and ``report --store`` work, with
    one warning per new path, and the unaffected numbers equal those of the undrifted store."""
    clean, drifted = tmp_path / "clean.sqlite", tmp_path / "drifted.sqlite"
    with Store(clean) as store:
        _record(store, drift, original=True)
    with Store(drifted) as store:
        _record(store, drift)
    with Store(clean, create=False) as store, warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        before = store.read()
    with Store(drifted, create=False) as store, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        after = store.read()
    assert sorted(_paths([str(w.message) for w in caught])) == sorted(EXPECTED_STORE_WARNINGS)
    _compare_unaffected(drift, before, after)
    code, _, stderr = _cli(["report", "--store", str(drifted), "--out",
                            str(tmp_path / "report"), "--no-charts"])
    assert code == 0, stderr
    lines = stderr.splitlines()
    assert sorted(_paths([line.removeprefix("Warning: ") for line in lines])) == sorted(
        EXPECTED_STORE_WARNINGS)


# -- a drift the loader refuses: the price sent as dollars ---------------------------------------


def test_price_in_dollars_is_an_error_naming_the_path_and_skippable_in_files(
        tmp_path: Path) -> None:
    """``hourly_price: "2.10"`` (dollars, not cents): a SchemaError naming the path; with
    ``errors="skip"`` / ``--errors skip`` the record is skipped with a warning."""
    body = {"instances": [make_instance("i-1"), make_instance("i-2", hourly_price="2.10")]}
    with pytest.raises(SchemaError, match=r"\$\.instances\[1\]\.hourly_price \(id i-2\)"):
        sa.read(body)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(body))
    code, _, stderr = _cli(["report", str(path), "--errors", "skip", "--out",
                            str(tmp_path / "r"), "--no-charts", "--as-of", "now"])
    assert code == 0, stderr
    assert "record skipped" in stderr


def test_a_drifted_record_is_quarantined_at_the_store_door(tmp_path: Path) -> None:
    """One poll with ``hourly_price: "2.10"`` recorded into the store: the record is refused
    (quarantined with its id, path and reason), the rest is stored, and ``report --store``
    writes the report without ``--errors skip``."""
    path = tmp_path / "fleet.sqlite"
    with Store(path) as store:
        store.record_poll(AS_OF, clusters=None, instances={"instances": [
            make_instance("i-1"), make_instance("i-2", hourly_price="2.10")]},
            instance_types=None)
        refused = store.quarantine()
        assert store.poll(1)["refused"] == 1
    assert refused[["endpoint", "kind", "resource_id", "path", "reason"]].to_dict("records") \
        == [{"endpoint": "/instances", "kind": "instance", "resource_id": "i-2",
             "path": "$.instances[1].hourly_price",
             "reason": "found a string, expected an integer number of cents"}]
    code, _, stderr = _cli(["report", "--store", str(path), "--out", str(tmp_path / "r"),
                            "--no-charts"])
    assert (code, stderr) == (0, "")
