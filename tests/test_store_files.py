"""Reading the store equals reading the same polls from files, for every table.

The store keeps a version per change and reads each at its first and last sighting; files give
a row per poll. So the files' tables are cut down here, independently of the store's code, to
the rows a version's first and last sighting give: per resource, a run of consecutive polls of
its endpoint with the same content (every column but the sighting's time and cost, and its
child rows) is one version. Every table, with its columns, dtypes and values, must then be the
store's, exactly, on the sample (``data/sample``), the fake API's scenario (with every account
list) and generated histories of varied sizes and nulls; whether the store reads its kept row
blocks, derives them, or walks its versions again.
"""

from __future__ import annotations

import itertools
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from conftest import envelope, generated_with_nulls, sample_states

import shadeanalytics as sa
from shadeanalytics.ingest.schema import TABLES
from shadeanalytics.live import store as store_module
from shadeanalytics.live.endpoints import ACCOUNT_LISTS
from shadeanalytics.testing.fakeapi import State, default_scenario

#: each resource table's identity (besides ``observed_at``)
ENTITIES: dict[str, tuple[str, ...]] = {
    "clusters": ("cluster_id",),
    "instances": ("instance_id",),
    "instance_types": ("cloud", "shade_instance_type", "region", "rental_type"),
    "volumes": ("volume_id",),
    "volume_types": ("cloud", "region"),
    "ssh_keys": ("ssh_key_id",),
    "templates": ("template_id", "featured"),
    "cluster_types": ("cloud", "shade_instance_type", "num_instances", "region"),
}
#: what one stored version of a resource covers, where it is more than one row: an
#: ``/instances/types`` item lists a type in every region and rental type
VERSIONS: dict[str, tuple[str, ...]] = {"instance_types": ("cloud", "shade_instance_type")}
#: child tables: the column naming their parent, and the parent's table
CHILDREN: dict[str, tuple[str, str]] = {
    "instance_tags": ("instance_id", "instances"),
    "port_mappings": ("instance_id", "instances"),
    "docker_port_mappings": ("instance_id", "instances"),
    "docker_volume_mounts": ("instance_id", "instances"),
    "docker_envs": ("instance_id", "instances"),
    "instance_volumes": ("instance_id", "instances"),
    "instance_envs": ("instance_id", "instances"),
    "template_tags": ("template_id", "templates"),
    "template_envs": ("template_id", "templates"),
}
#: what a sighting gives rather than the version
SIGHTING = ("observed_at", "cost_estimate_usd", "details_observed_at")
assert set(ENTITIES) | set(CHILDREN) | {"polls"} == set(TABLES)


def _endpoint(name: str, row: Any) -> str:
    """The list endpoint whose polls list the resource of ``row``."""
    if name == "clusters":
        return "/clusters"
    if name == "instances":
        return "/instances" if pd.isna(row["cluster_id"]) else "/clusters"
    if name == "templates":
        return "/templates/featured" if row["featured"] else "/templates"
    return {
        "instance_types": "/instances/types",
        "volumes": "/volumes",
        "volume_types": "/volumes/types",
        "ssh_keys": "/sshkeys",
        "cluster_types": "/clusters/types",
    }[name]


def _cell(value: Any) -> Any:
    return (
        None
        if value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)
        else str(value)
    )


def _children_of(files: sa.Tables, parent: str) -> dict[tuple[Any, Any], str]:
    """(parent id, observed_at) -> the content of its child rows (every child table)."""
    out: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    for name, (key, table) in CHILDREN.items():
        if table != parent:
            continue
        frame = getattr(files, name)
        for row in frame.to_dict("records"):
            out[(row[key], row["observed_at"])].append(
                (name, *(_cell(v) for c, v in row.items() if c != "observed_at"))
            )
    return {k: orjson.dumps(sorted(v, key=str)).decode() for k, v in out.items()}


def sightings(files: sa.Tables) -> sa.Tables:
    """The rows of ``files`` that the store's versions give: each run of a resource's
    unchanged content over consecutive polls of its endpoint, at its first and last poll."""
    polls = files.polls[files.polls["ok"].fillna(False).astype(bool)]
    times = {
        e: sorted(polls.loc[polls["endpoint"] == e, "observed_at"])
        for e in polls["endpoint"].unique()
    }
    next_poll = {e: dict(itertools.pairwise(ts)) for e, ts in times.items()}
    kept_at: dict[str, set[tuple[Any, Any]]] = {}
    out: dict[str, pd.DataFrame] = {}
    for name in ENTITIES:
        frame = getattr(files, name)
        version = VERSIONS.get(name, ENTITIES[name])
        children = _children_of(files, name) if name in ("instances", "templates") else {}
        content = [c for c in frame.columns if c not in SIGHTING]
        # (version identity, endpoint, observed_at) -> the content of its rows there
        seen: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        for row in frame.to_dict("records"):
            ident = tuple(_cell(row[k]) for k in version)
            seen[(ident, _endpoint(name, row), row["observed_at"])].append(
                orjson.dumps([_cell(row[c]) for c in content]).decode()
                + children.get((row[ENTITIES[name][0]], row["observed_at"]), "")
            )
        keep: set[tuple[Any, Any]] = set()
        #: identity -> (at, content, whether that sighting continued a run)
        runs: dict[tuple[Any, ...], tuple[Any, list[str], bool]] = {}
        for (ident, endpoint, at), texts in sorted(seen.items(), key=lambda kv: kv[0][2]):
            texts = sorted(texts)
            previous = runs.get(ident)
            goes_on = (
                previous is not None
                and previous[1] == texts
                and next_poll[endpoint].get(previous[0]) == at
            )
            if goes_on and previous is not None and previous[2]:
                keep.discard((ident, previous[0]))  # no longer the run's last sighting
            keep.add((ident, at))
            runs[ident] = (at, texts, goes_on)
        mask = [
            (tuple(_cell(row[k]) for k in version), row["observed_at"]) in keep
            for row in frame.to_dict("records")
        ]
        kept = frame[np.array(mask, dtype=bool)]
        out[name] = kept
        kept_at[name] = set(zip(kept[ENTITIES[name][0]], kept["observed_at"], strict=True))
    for name, (key, parent) in CHILDREN.items():
        frame = getattr(files, name)
        mask = [k in kept_at[parent] for k in zip(frame[key], frame["observed_at"], strict=True)]
        out[name] = frame[np.array(mask, dtype=bool)]
    return sa.Tables(**out, polls=files.polls)


def _sorted(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    keys = list(ENTITIES.get(name, ())) or [CHILDREN[name][0], "position"]
    keys = [
        *keys,
        "observed_at",
        *(c for c in ("cluster_id", "position") if c in frame and c not in keys),
    ]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_store_equals_files(
    stored: sa.Tables, files: sa.Tables, expected: sa.Tables | None = None
) -> None:
    """Every table of the store equals the files' sightings (``expected``, when computed
    already): columns, dtypes, values."""
    expected = sightings(files) if expected is None else expected
    for name in TABLES:
        mine, theirs = getattr(stored, name), getattr(expected, name)
        if name != "polls":
            mine, theirs = _sorted(name, mine), _sorted(name, theirs)
        pd.testing.assert_frame_equal(
            mine, theirs.reset_index(drop=True), check_exact=True, obj=name
        )
    assert tuple(stored.warnings) == tuple(files.warnings) == ()


def record(states: list[State], path: Path) -> list[dict[str, Any]]:
    """Record ``states`` as polls of a store at ``path``; return the same polls as files."""
    docs = []
    with sa.Store(path) as store:
        for state in states:
            lists = {name: getattr(state, name) for name in ACCOUNT_LISTS}
            store.record_poll(
                state.at,
                clusters=state.clusters,
                instances=state.instances,
                instance_types=state.instance_types,
                **lists,
            )
            stamp = state.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            listed = {
                "/clusters": state.clusters,
                "/instances": state.instances,
                "/instances/types": state.instance_types,
                **{e: lists[name] for name, (e, _, _) in ACCOUNT_LISTS.items()},
            }
            docs += [envelope(body, stamp, e) for e, body in listed.items() if body is not None]
    return docs


def _reads(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[sa.Tables]:
    """The store read three ways: walking every version, deriving row blocks, from the kept
    blocks."""
    reads = []
    for least in (10**9, 0, 0):
        monkeypatch.setattr(store_module, "_DERIVED_MIN_VERSIONS", least)
        with sa.Store(path, create=False) as store, warnings.catch_warnings():
            warnings.simplefilter("error")
            reads.append(store.read())
    return reads


def _check(states: list[State], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Tables:
    docs = record(states, tmp_path / "history.db")
    files = sa.read(docs)
    expected = sightings(files)
    for stored in _reads(tmp_path / "history.db", monkeypatch):
        assert_store_equals_files(stored, files, expected)
    return files



def test_the_sample_reads_from_the_store_as_from_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample's 17 polls: every table of the store equals the files'."""
    files = _check(sample_states(), tmp_path, monkeypatch)
    assert len(files.instances) > 100 and len(files.volumes) > 0
    assert len(files.instance_types) > 0 and len(files.volume_types) > 0


def test_the_fake_apis_scenario_reads_from_the_store_as_from_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake API's scenario with every account list: every table equals the files'."""
    files = _check(default_scenario(), tmp_path, monkeypatch)
    for name in TABLES:
        if name not in ("instance_volumes", "instance_envs"):  # details only
            assert len(getattr(files, name)) > 0, name



@pytest.mark.hardening  # with the six seeds below; the fast tier keeps the sample and the scenario
def test_a_generated_history_reads_from_the_store_as_from_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated history with nulls at random: every table equals the files'."""
    files = _check(generated_with_nulls(11, 12, 0.2), tmp_path, monkeypatch)
    assert files.instances["instance_id"].nunique() > 20
    assert files.instances["cost_estimate_usd"].isna().any()
    assert files.instances["ip"].isna().sum() > files.instances["ip"].notna().sum() / 10


@pytest.mark.hardening
@pytest.mark.parametrize("seed", range(20, 26))
def test_many_generated_histories_read_from_the_store_as_from_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """More seeds, sizes and shares of nulls (none to a quarter): every table equals the
    files'."""
    _check(generated_with_nulls(seed, 10 + seed, 0.05 * (seed - 20)), tmp_path, monkeypatch)
