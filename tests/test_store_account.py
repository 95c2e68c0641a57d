"""The history store keeps the rest of the account like the rest: versions, reading back the
same tables as the file loaders, and stores of schema 1 upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import (
    FIXTURE_SECRETS,
    PUBLIC_KEY_BLOB,
    account_fixture,
    instance_details,
    old_versions_table,
    record_state,
    store_rows,
)

import shadeanalytics as sa
from shadeanalytics.live.store import SCHEMA_VERSION, Store
from shadeanalytics.testing.fakeapi import State, default_scenario

ACCOUNT = ("volumes", "volume_types", "ssh_keys", "templates", "featured_templates",
           "cluster_types")
#: the key of each table's rows, for comparing frames in a fixed order
KEYS = {"clusters": ["cluster_id", "observed_at"],
        "instances": ["instance_id", "observed_at"],
        "instance_types": ["cloud", "shade_instance_type", "region", "rental_type"],
        "volumes": ["volume_id", "observed_at"], "volume_types": ["cloud", "region"],
        "ssh_keys": ["ssh_key_id"], "templates": ["template_id"],
        "cluster_types": ["cloud", "shade_instance_type", "region"]}


def _record(store: Store, state: State) -> int:
    return record_state(store, state, account=True, details=True)


def _as_files(state: State) -> list[dict[str, Any]]:
    """The same responses as snapshot envelopes, the way a user would keep them."""
    at = state.at.isoformat()
    lists = {"/clusters": state.clusters, "/instances": state.instances,
             "/instances/types": state.instance_types, "/volumes": state.volumes,
             "/volumes/types": state.volume_types, "/sshkeys": state.ssh_keys,
             "/templates": state.templates, "/templates/featured": state.featured_templates,
             "/clusters/types": state.cluster_types}
    docs = [{"observed_at": at, "endpoint": e, "response": r} for e, r in lists.items()]
    docs += [{"observed_at": at, "endpoint": f"/instances/{iid}/info", "response": info}
             for iid, info in instance_details(state).items()]
    return docs


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.pg_smoke  # its PostgreSQL half stays in the fast tier
def test_read_gives_the_tables_the_file_loaders_give(store_at: str) -> None:
    """One poll with the account and the details: Store.read() equals loading the responses."""
    state = default_scenario()[0]
    with Store(store_at) as store:
        _record(store, state)
        stored = store.read()
    direct = sa.read(_as_files(state))
    for name, mine in stored.frames():
        theirs = getattr(direct, name)
        if name == "polls":
            assert mine["endpoint"].tolist() == sorted(theirs["endpoint"].tolist())
            continue
        keys = KEYS.get(name) or [c for c in ("instance_id", "template_id", "position", "scope")
                                  if c in mine]
        pd.testing.assert_frame_equal(_sorted(mine, keys), _sorted(theirs, keys), obj=name)
    assert stored.instance_volumes["volume_id"].tolist() == [
        "f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190"]
    assert stored.instances["has_details"].sum() == 3  # the standalone ones


def test_account_versions_change_and_go_like_the_rest(store_at: str) -> None:
    """A volume that vanishes from a successful /volumes poll is closed and gone; its cost
    estimate alone is no new version; a changed template is a new version."""
    states = default_scenario()[:3]
    shrunk = {"volumes": states[2].volumes["volumes"][:1]}
    renamed = {"templates": [{**states[2].templates["templates"][0], "name": "vllm-2"}]}
    with Store(store_at) as store:
        _record(store, states[0])
        _record(store, states[1])
        store.record_poll(states[2].at, clusters=None, instances=None, instance_types=None,
                          volumes=shrunk, templates=renamed)
        latest = store.read().latest()
        rows = [tuple(r.values()) for r in store_rows(
            store, "SELECT kind, resource_id, valid_from, valid_to, gone FROM versions "
            "WHERE kind IN ('volume', 'template') ORDER BY version_id")]
    assert rows == [
        ("volume", "f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190", 1, None, 0),
        ("volume", "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13", 1, 3, 1),
        ("template", "5b1d3f5a-7c9e-4b0d-8f2a-4c6e8a0c2e46", 1, 3, 0),
        ("template", "5b1d3f5a-7c9e-4b0d-8f2a-4c6e8a0c2e46", 3, None, 0),
    ]
    volumes = latest.volumes.set_index("volume_id")
    assert volumes["gone"].to_dict() == {"f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190": False,
                                         "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13": True}
    # the vanished volume's last estimate is that of its last sighting (poll 2, 10:10):
    # 500 GB x $0.0001/GB/h x 24 h 10 min = $1.2083, written with two decimals
    assert volumes.loc["0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13", "cost_estimate_usd"] == 1.21
    assert sorted(latest.templates["name"]) == ["Jupyter", "vllm-2"]


#: the versions table as schema 1 declared it (before the account kinds)
_V1_VERSIONS = old_versions_table("'cluster', 'instance', 'instance_type'")


def _as_schema_1(path: Path) -> None:
    """Turn a store back into the shape schema 1 wrote."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN")
        conn.execute("DROP TABLE row_blocks")  # schema 3
        conn.execute("DROP TABLE quarantine")  # schema 4
        conn.execute("DROP TABLE request_failures")
        for column in ("volumes", "details", "failures", "refused"):
            conn.execute(f"ALTER TABLE polls DROP COLUMN {column}")
        conn.execute("ALTER TABLE versions RENAME TO old_versions")
        conn.execute(_V1_VERSIONS)
        conn.execute("INSERT INTO versions SELECT * FROM old_versions")
        conn.execute("DROP TABLE old_versions")
        conn.execute("CREATE UNIQUE INDEX versions_current ON versions (kind, resource_id) "
                     "WHERE valid_to IS NULL")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute("PRAGMA user_version = 1")
        conn.execute("COMMIT")


def test_a_schema_1_store_is_upgraded_in_place_and_keeps_its_history(tmp_path: Path) -> None:
    """Opening a schema-1 store migrates it once: same history, then account polls work."""
    states = default_scenario()[:2]
    path = tmp_path / "fleet.sqlite"
    with Store(path) as store:
        store.record_poll(states[0].at, clusters=states[0].clusters,
                          instances=states[0].instances, instance_types=states[0].instance_types)
        before = store.read()
    _as_schema_1(path)
    with sqlite3.connect(path) as conn, \
            pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute("INSERT INTO versions (kind, resource_id, valid_from, payload, "
                         "payload_hash, last_seen_poll, last_seen_at) "
                         "VALUES ('volume', 'v', 1, '{}', '', 1, '')")
    with Store(path) as store:
        after = store.read()
        assert store.integrity_check() == "ok"
        assert _record(store, states[1]) == 2
        assert store.poll(1)["volumes"] is None and store.poll(2)["volumes"] == 2
    for (name, old), (_, new) in zip(before.frames(), after.frames(), strict=True):
        pd.testing.assert_frame_equal(old, new, obj=name)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone()[0] == "5"


def test_no_template_secret_or_public_key_reaches_the_store(tmp_path: Path) -> None:
    """Template env values, registry password, docker args, script and the SSH public key are
    in no byte of the store or its WAL; the tables read back hold names and fingerprints."""
    path = tmp_path / "fleet.sqlite"
    with Store(path) as store:
        store.record_poll("2026-11-20T00:00:00Z", clusters=None, instances=None,
                          instance_types=None, templates=account_fixture("templates.json"),
                          featured_templates={"templates": [account_fixture("template-info.json")]},
                          ssh_keys=account_fixture("sshkeys.json"),
                          instance_details={"d290f1ee-6c54-4b01-90e6-d701748f0851":
                                            account_fixture("instance-info.json")})
        tables = store.read()
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert [s for s in (*FIXTURE_SECRETS, PUBLIC_KEY_BLOB) if s.encode() in data] == []
    assert tables.template_envs["name"].tolist() == ["HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY"]
    assert tables.templates["script_sha256"].notna().sum() == 1
    assert tables.ssh_keys["public_key_sha256"].tolist() == [
        "SHA256:ZkAslGjFiUHdGf/WUL8rQvkib4PTvQatUV0OUQSncCA"]
    assert tables.instance_envs["name"].tolist() == ["HF_HOME"]
