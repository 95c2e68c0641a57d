"""The one resource table (``ingest/resources.py``): every declared resource is served by the
fake API, fetched by the client, collected, stored, loaded and documented; no other module
spells an endpoint of its own."""

from __future__ import annotations

import ast
import functools
import inspect
import sqlite3
from pathlib import Path

import pytest

from shadeanalytics.ingest.resources import BY_NAME, BY_TABLE, RESOURCES, STORE_KINDS
from shadeanalytics.ingest.schema import TABLES, data_dictionary
from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.collect import collect
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, default_scenario

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
        assert len(getattr(tables, table)) == rows, table
    assert tables.templates.set_index("name")["featured"].to_dict() == {
        "vllm-serve": False, "Jupyter": True}
    for table in ("clusters", "instances", "instance_types"):
        assert len(getattr(tables, table)) > 0, table


def test_each_resource_has_its_client_methods_and_a_documented_table() -> None:
    """client.<name>() returns the list under its key, client.<kind>_info(id) one item; every
    table of the table is in the record spec and the data dictionary."""
    dictionary = data_dictionary()
    with FakeShadeformAPI(api_key=KEY, scenario=default_scenario()) as api, \
            ShadeformClient(api_key=KEY, base_url=api.url,
                            policy=ClientPolicy(sleep=lambda s: None)) as client:
        for r in RESOURCES:
            items = getattr(client, r.name)()[r.list_key]
            assert isinstance(items, list) and items, r.name
            if r.info is not None:
                first = items[0]["id"]
                assert getattr(client, f"{r.kind}_info")(first)["id"] == first, r.name
    for r in RESOURCES:
        assert r.table in TABLES and f"\n## {r.table}\n" in dictionary, r.table
        for child in r.children:
            assert child in TABLES and f"\n## {child}\n" in dictionary, child
    assert set(BY_TABLE) == {r.table for r in RESOURCES}


def test_the_store_and_record_poll_follow_the_table(tmp_path: Path) -> None:
    """A new store's versions take exactly the declared kinds; record_poll a list per name."""
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'versions'").fetchone()
    assert f"kind IN ({', '.join(repr(k) for k in STORE_KINDS)})" in sql
    params = inspect.signature(Store.record_poll).parameters
    assert [n for n in params if n in BY_NAME] == [r.name for r in RESOURCES]


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
