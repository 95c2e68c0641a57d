"""The one resource table (``ingest/resources.py``): every declared resource is served by the
fake API, fetched by the client, collected, stored, loaded and documented; no other module
spells an endpoint of its own."""

from __future__ import annotations

import ast
import functools
import inspect
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import old_versions_table, record_state, store_rows

from shadeanalytics.errors import DataWarning
from shadeanalytics.ingest.resources import BY_NAME, BY_TABLE, RESOURCES, STORE_KINDS
from shadeanalytics.ingest.schema import TABLES, data_dictionary
from shadeanalytics.ingest.tables import Tables
from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.collect import collect
from shadeanalytics.live.endpoints import ACCOUNT_LISTS
from shadeanalytics.live.store import Store
from shadeanalytics.live.storewrite import seen_of
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, State, default_scenario

KEY = "test-key-resources"
PACKAGE = Path(__file__).resolve().parents[1] / "shadeanalytics"
#: the rows one poll of the default scenario gives each account table (its fixture)
ACCOUNT_ROWS = {"volumes": 2, "volume_types": 2, "ssh_keys": 1, "templates": 2,
                "cluster_types": 1}


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """One collector run against the fake API: (the store, the API paths it asked for)."""
    path = tmp_path_factory.mktemp("resources") / "fleet.sqlite"
    at = default_scenario()[0].at
    with FakeShadeformAPI(api_key=KEY, scenario=default_scenario()) as api:
        collect(path, make_client=functools.partial(
            ShadeformClient, api_key=KEY, base_url=api.url,
            policy=ClientPolicy(sleep=lambda s: None)), now=lambda: at)
        asked = [r.path for r in api.requests]
    return path, asked


def test_the_table_declares_the_nine_lists_once() -> None:
    """Nine lists, names and endpoints unique; two lists (featured or not) feed templates."""
    assert [r.endpoint for r in RESOURCES] == [
        "/clusters", "/instances", "/instances/types", "/volumes", "/volumes/types",
        "/sshkeys", "/templates", "/templates/featured", "/clusters/types"]
    assert len(BY_NAME) == len({r.endpoint for r in RESOURCES}) == len(RESOURCES) == 9
    assert [r.name for r in RESOURCES if r.table == "templates"] == [
        "templates", "featured_templates"]
    assert STORE_KINDS == ("cluster", "instance", "instance_type", "instance_info", "volume",
                           "volume_type", "ssh_key", "template", "featured_template",
                           "cluster_type")


def test_each_resource_is_collected_stored_and_loaded(collected: tuple[Path, list[str]]) -> None:
    """A first run asks every list once, records each endpoint in its poll, loads every table."""
    path, asked = collected
    assert sorted(p for p in asked if not p.endswith("/info")) == sorted(
        f"/v1{r.endpoint}" for r in RESOURCES)
    with Store(path) as store:
        polls = store.polls()
        tables = store.read()
    assert polls["endpoints"].tolist() == [",".join(r.endpoint for r in RESOURCES)]
    for table, rows in ACCOUNT_ROWS.items():
        assert len(tables.table(table)) == rows, table
    assert tables.templates.set_index("name")["featured"].to_dict() == {
        "vllm-serve": False, "Jupyter": True}
    for table in ("clusters", "instances", "instance_types"):
        assert len(getattr(tables, table)) > 0, table


def test_each_resource_has_its_client_methods_and_a_documented_table() -> None:
    """client.fetch_list(name) returns the list under its key, fetch_info(name, id) one item;
    every table of the table is in the record spec and the data dictionary."""
    dictionary = data_dictionary()
    with FakeShadeformAPI(api_key=KEY, scenario=default_scenario()) as api, \
            ShadeformClient(api_key=KEY, base_url=api.url,
                            policy=ClientPolicy(sleep=lambda s: None)) as client:
        for r in RESOURCES:
            items = client.fetch_list(r.name)[r.list_key]
            assert isinstance(items, list) and items, r.name
            if r.info is not None:
                first = items[0]["id"]
                assert client.fetch_info(r.name, first)["id"] == first, r.name
    for r in RESOURCES:
        assert r.table in TABLES and f"\n## {r.table}\n" in dictionary, r.table
        for child in r.children:
            assert child in TABLES and f"\n## {child}\n" in dictionary, child
    assert set(BY_TABLE) == {r.table for r in RESOURCES}


def test_the_store_checks_the_kinds_and_record_poll_takes_a_list_per_name(
        tmp_path: Path) -> None:
    """The kinds are checked in Python (no CHECK list in SQL); record_poll takes each account
    list by its resource's name, and names an unknown one."""
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'versions'").fetchone()
    db.close()
    assert "kind IN" not in sql and "CHECK (gone IN (0, 1))" in sql
    with pytest.raises(ValueError) as caught:
        seen_of("toy", "t-1", None, {"id": "t-1"}, "/toys", "$.toys[0]")
    assert str(caught.value) == (
        f"'toy' is not a version kind of the store ({', '.join(STORE_KINDS)})")
    params = inspect.signature(Store.record_poll).parameters
    assert [n for n in params if n in BY_NAME] == ["clusters", "instances", "instance_types"]
    assert params["lists"].kind is inspect.Parameter.VAR_KEYWORD
    state = default_scenario()[0]
    with Store(path) as store:
        with pytest.raises(TypeError) as wrong:
            store.record_poll(state.at, clusters=None, instances=None, instance_types=None,
                              volume=state.volumes)
        assert str(wrong.value) == (
            "record_poll() got an unexpected keyword argument 'volume' (the account lists: "
            "volumes, volume_types, ssh_keys, templates, featured_templates, cluster_types)")
        store.record_poll(state.at, clusters=None, instances=None, instance_types=None,
                          **{name: getattr(state, name) for name in ACCOUNT_LISTS})
        tables = store.read()
    assert {name: len(tables.table(name)) for name in ACCOUNT_ROWS} == ACCOUNT_ROWS


def test_the_client_fetches_any_resource_by_name() -> None:
    """fetch_list(name) / fetch_info(name, id) are the named methods' one path; an unknown
    name or a resource without an info endpoint is a ValueError."""
    with FakeShadeformAPI(api_key=KEY, scenario=default_scenario()) as api, \
            ShadeformClient(api_key=KEY, base_url=api.url,
                            policy=ClientPolicy(sleep=lambda s: None)) as client:
        assert client.fetch_list("volumes") == client.volumes()
        volume = client.volumes()["volumes"][1]["id"]
        assert client.fetch_info("volumes", volume) == client.volume_info(volume)
        with pytest.raises(ValueError) as unknown:
            client.fetch_list("toys")
        assert str(unknown.value) == f"unknown resource 'toys' (known: {', '.join(BY_NAME)})"
        with pytest.raises(ValueError) as no_info:
            client.fetch_info("volume_types", "x")
        assert str(no_info.value) == "the API has no info endpoint for volume_types"


ENDPOINTS = {r.endpoint for r in RESOURCES} | {r.info for r in RESOURCES if r.info}


def _spelled_endpoints(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant that is an endpoint of the table."""
    if not any(f"{q}{e}{q}" in source for e in ENDPOINTS for q in "\"'"):
        return []  # no such constant (parsing only the files that may hold one: fast)
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in ENDPOINTS]


def test_no_module_but_the_table_spells_an_endpoint() -> None:
    """An endpoint written anywhere but ingest/resources.py is a second declaration: fails."""
    found = [f"{path.relative_to(PACKAGE)}:{line}: {text}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "resources.py"
             for line, text in _spelled_endpoints(path.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)
    # the check sees one when it is there
    assert _spelled_endpoints('ENDPOINT = "/volumes/types"\n') == [(1, "/volumes/types")]


#: A resource the API does not have, declared in a fresh interpreter before the package is
#: imported (every module derives its constants from the table at import): the declaration, its
#: columns and its fixture, and no other edit. Prints what came out at each step as JSON.
_TOY_RUN = r'''
import functools, importlib.util, json, sys
from dataclasses import replace
from pathlib import Path

spec = importlib.util.find_spec("shadeanalytics")
package = importlib.util.module_from_spec(spec)
sys.modules["shadeanalytics"] = package  # the package's own __init__ runs after the table grows
from shadeanalytics.ingest import resources, schema

# -- the declaration: one Resource, the columns of its table --
toy = resources.Resource(
    name="toys", table="toys", endpoint="/toys", list_key="toys", kind="toy",
    info="/toys/{id}/info", id_rule="id", collect="every-run",
    described="a toy info response or a /toys list", id_column="toy_id",
    row_key=("toy_id", "observed_at"))
C = schema.Column
schema.TABLES["toys"] = (
    C("toy_id", "string", "id", "", "toy id", required=True),
    C("name", "string", "name", "", "its name"),
    C("size_in_gb", "Int64", "spec.size_in_gb", "GB", "its size", "int"),
    C("created_at", schema.TIMESTAMP, "created_at", "UTC", "creation time", "time"),
    C("observed_at", schema.TIMESTAMP, "(envelope) observed_at", "UTC", "capture", "derived"),
)
schema._TABLE_NOTES["toys"] = "One row per toy per snapshot (`GET /toys`)."
resources.RESOURCES = (*resources.RESOURCES, toy)
resources.BY_NAME["toys"] = resources.BY_TABLE["toys"] = toy
resources.STORE_KINDS = (*resources.STORE_KINDS, toy.kind)
spec.loader.exec_module(package)

from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.collect import collect
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, State, default_scenario

# -- its fixture --
toys = {"toys": [
    {"id": "toy-1", "name": "blue", "spec": {"size_in_gb": 3},
     "created_at": "2026-03-01T10:00:00Z"},
    {"id": "toy-2", "name": "red", "spec": {"size_in_gb": 5}, "created_at": None},
]}
first, second = default_scenario()[:2]
scenario = [replace(first, lists={"toys": toys}),
            replace(second, lists={"toys": {"toys": toys["toys"][:1]}})]
path = Path(sys.argv[1])
out = {}
with FakeShadeformAPI(api_key="k", scenario=scenario) as api:
    client = functools.partial(ShadeformClient, api_key="k", base_url=api.url,
                               policy=ClientPolicy(sleep=lambda s: None))
    for state in scenario:
        collect(path, make_client=client, now=lambda: state.at)
        api.advance()
    with client() as c:
        out["info"] = c.fetch_info("toys", "toy-1")
    out["asked"] = sorted({r.path for r in api.requests if "toy" in r.path})
with Store(path) as store:
    tables = store.read()  # a small store: its versions walked
    out["stats"] = store.stats()["versions"].get("toy")
    out["endpoints"] = store.polls()["endpoints"].str.contains("/toys").tolist()
def rows(frame):
    return json.loads(frame.to_json(orient="records", date_format="iso"))
import shadeanalytics.live.store as store_module
store_module._DERIVED_MIN_VERSIONS = 0  # rows derived once and kept in blocks, then read
with Store(path) as store:
    out["derived"] = [rows(store.read().table("toys")) == rows(tables.table("toys"))
                      for _ in range(2)]
    out["blocks"] = len(store._backend.connection.execute("SELECT * FROM row_blocks").fetchall())
out["dtypes"] = {k: str(v) for k, v in tables.table("toys").dtypes.items()}
out["rows"] = rows(tables.table("toys"))
out["latest"] = rows(tables.latest().table("toys"))
out["warnings"] = list(tables.warnings)
# a snapshot file of the list loads the same rows; the data dictionary has the table
import shadeanalytics as sa
snapshot = path.parent / "toys.json"
snapshot.write_text(json.dumps({"observed_at": "2026-03-02T10:00:00Z", "endpoint": "/toys",
                                "response": toys}))
out["file"] = rows(sa.read(snapshot).table("toys"))
out["dictionary"] = "\n## toys\n\nOne row per toy per snapshot" in schema.data_dictionary()
print(json.dumps(out))
'''


def test_a_toy_resource_declared_once_flows_from_the_fake_api_to_the_tables(
        tmp_path: Path) -> None:
    """A resource declared in the test (one Resource, its columns, its fixture) is served,
    fetched, collected, stored, read back and reduced to its latest rows with no other edit."""
    script = tmp_path / "toy.py"
    script.write_text(_TOY_RUN, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "toy.sqlite")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    first, second = (s.at.isoformat().replace("+00:00", ".000Z")
                     for s in default_scenario()[:2])
    assert out["asked"] == ["/v1/toys", "/v1/toys/toy-1/info"]
    assert out["info"] == {"id": "toy-1", "name": "blue", "spec": {"size_in_gb": 3},
                           "created_at": "2026-03-01T10:00:00Z"}
    assert out["endpoints"] == [True, True]
    assert out["dtypes"] == {"toy_id": "string", "name": "string", "size_in_gb": "Int64",
                             "created_at": "datetime64[us, UTC]",
                             "observed_at": "datetime64[us, UTC]"}
    blue = {"toy_id": "toy-1", "name": "blue", "size_in_gb": 3,
            "created_at": "2026-03-01T10:00:00.000Z"}
    red = {"toy_id": "toy-2", "name": "red", "size_in_gb": 5, "created_at": None}
    assert out["rows"] == [{**blue, "observed_at": first}, {**red, "observed_at": first},
                           {**blue, "observed_at": second}]
    # red vanished from the second /toys poll: its last sighting is its latest row
    assert out["latest"] == [{**red, "observed_at": first}, {**blue, "observed_at": second}]
    assert out["warnings"] == []
    assert out["stats"] == 2  # toy-1 unchanged, toy-2 gone: a version each
    assert out["derived"] == [True, True] and out["blocks"] == 1
    assert out["file"] == [{**blue, "observed_at": first}, {**red, "observed_at": first}]
    assert out["dictionary"]


#: the kinds schemas 2 to 4 listed in a CHECK of ``versions.kind``
_SCHEMA_4_KINDS = ("'cluster', 'instance', 'instance_type', 'instance_info', 'volume', "
                   "'volume_type', 'ssh_key', 'template', 'featured_template', 'cluster_type'")
#: ``versions`` as schema 4 made it in SQLite
_SQLITE_4_VERSIONS = old_versions_table(_SCHEMA_4_KINDS)
_TOY_VERSION = ("INSERT INTO versions (kind, resource_id, valid_from, payload, payload_hash, "
                "last_seen_poll, last_seen_at) VALUES ('toy', 't', 1, '{\"id\": \"t\"}', '', 1, "
                "'2026-03-02T10:00:00Z')")


def _as_schema_4(store_at: str) -> None:
    """Turn a store back into what schema 4 made: the CHECK list on ``versions.kind``."""
    if store_at.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store_at, autocommit=True) as pg:
            pg.execute("ALTER TABLE versions ADD CONSTRAINT versions_kind_check "
                       f"CHECK (kind IN ({_SCHEMA_4_KINDS}))")
            pg.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        return
    with sqlite3.connect(store_at, isolation_level=None) as db:
        db.execute("BEGIN")
        db.execute("ALTER TABLE versions RENAME TO old_versions")
        db.execute(_SQLITE_4_VERSIONS)
        db.execute("INSERT INTO versions SELECT * FROM old_versions")
        db.execute("DROP TABLE old_versions")
        for index in ("CREATE UNIQUE INDEX versions_current ON versions (kind, resource_id) "
                      "WHERE valid_to IS NULL",
                      "CREATE INDEX versions_history ON versions (kind, resource_id, valid_from)",
                      "CREATE INDEX versions_valid_from ON versions (valid_from)"):
            db.execute(index)
        db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        db.execute("PRAGMA user_version = 4")
        db.execute("COMMIT")
    db.close()


def test_a_schema_4_store_loses_the_kind_check_and_keeps_its_history(store_at: str) -> None:
    """Schema 4 -> 5 on both backends: the CHECK list of kinds is dropped (a later kind can be
    stored), every version and id is kept, the next poll records as before."""
    states = default_scenario()[:2]
    with Store(store_at) as store:
        _record_state(store, states[0])
        before = store.read()
        versions = store_rows(store, "SELECT version_id, kind, resource_id FROM versions "
                                     "ORDER BY version_id")
    _as_schema_4(store_at)
    with pytest.raises(Exception, match=r"(?i)check constraint"):
        _raw_execute(store_at, _TOY_VERSION)
    with Store(store_at) as store:
        after = store.read()
        assert store_rows(store, "SELECT version_id, kind, resource_id FROM versions "
                                 "ORDER BY version_id") == versions
        assert store_rows(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            {"value": "5"}]
        assert _record_state(store, states[1]) == 2
        assert store.integrity_check() == "ok"
    for (name, old), (_, new) in zip(before.frames(), after.frames(), strict=True):
        pd.testing.assert_frame_equal(old, new, obj=name)
    _raw_execute(store_at, _TOY_VERSION)  # the database takes any kind now: Python checks
    # a kind of a later version (more resources declared) is left out with a warning
    with Store(store_at) as store, pytest.warns(DataWarning) as caught:
        assert len(store.read().volumes) == 4  # two volumes, two polls
    assert [str(w.message).split(" (first at ")[0] for w in caught] == [
        "$: a record of kind 'toy', which this version of shadeanalytics does not know; "
        "left out"]


def _record_state(store: Store, state: State) -> int:
    return record_state(store, state, account=True)


def _raw_execute(store_at: str, sql: str) -> None:
    """``sql`` on the store's database outside the package (autocommit)."""
    if store_at.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store_at, autocommit=True) as pg:
            pg.execute(sql)
        return
    with sqlite3.connect(store_at, isolation_level=None) as db:
        db.execute(sql)
    db.close()


def test_tables_takes_each_table_of_the_schema_by_name() -> None:
    """Tables(**frames) takes every schema table by its name, names a missing or unknown one,
    and table(name) reads any of them."""
    empty = Tables.empty()
    frames = dict(empty.frames())
    assert list(frames) == list(TABLES)
    assert empty.table("volumes") is empty.volumes and empty.more == {}
    with pytest.raises(TypeError) as unknown:
        Tables(**frames, toys=frames["volumes"])
    assert str(unknown.value) == "Tables() got an unexpected keyword argument 'toys'"
    del frames["instance_types"]
    with pytest.raises(TypeError) as missing:
        Tables(**frames)
    assert str(missing.value) == "Tables() missing a keyword argument: 'instance_types'"
    with pytest.raises(KeyError):
        empty.table("toys")
