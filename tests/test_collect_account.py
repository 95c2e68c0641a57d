"""Collection of the rest of the account against the fake API: instance details by age and
budget (exact request counts), daily lists, and side requests that fail without failing a poll."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_instance

from shadeanalytics.cli import main
from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.collect import CollectResult, collect
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import (
    DEFAULT_SECRETS,
    FakeShadeformAPI,
    State,
    default_scenario,
)

KEY = "test-key-account"
T0 = default_scenario()[0].at
IDS = [f"i-{n}" for n in range(7)]
INFO = "/instances/{id}/info"


def _fleet() -> list[State]:
    """Seven standalone instances and nothing else, the same in every state."""
    base = default_scenario()[0]
    instances = {"instances": [make_instance(iid) for iid in IDS]}
    return [State(at=base.at, clusters={"clusters": []}, instances=instances,
                  instance_types={"instance_types": []})]


def _client(api: FakeShadeformAPI) -> Callable[..., ShadeformClient]:
    return functools.partial(ShadeformClient, api_key=KEY, base_url=api.url,
                             policy=ClientPolicy(sleep=lambda s: None))


def _run(path: Path, api: FakeShadeformAPI, at: datetime, **options: Any) -> CollectResult:
    return collect(path, make_client=_client(api), now=lambda: at, **options)


def _info_requests(api: FakeShadeformAPI, since: int) -> list[str]:
    """Instance ids of the info requests received from request number ``since`` on."""
    return [r.path.split("/")[3] for r in api.requests[since:]
            if r.path.startswith("/v1/instances/") and r.path.endswith("/info")]


def test_details_come_at_once_for_new_instances_then_by_age_within_the_budget(
        tmp_path: Path) -> None:
    """Budget 3, max age 1 h: 3 new, 3 new, the last new one, none, then the oldest 3, ..."""
    path = tmp_path / "fleet.sqlite"
    runs = [(0, IDS[0:3]), (10, IDS[3:6]), (20, IDS[6:7]), (50, []),
            # at +70 min the details of +0 are 70 min old, those of +10 60 min (due too)
            (70, IDS[0:3]), (80, IDS[3:6]), (90, IDS[6:7])]
    with FakeShadeformAPI(api_key=KEY, scenario=_fleet()) as api:
        for minutes, expected in runs:
            before = len(api.requests)
            result = _run(path, api, T0 + timedelta(minutes=minutes), info_budget=3,
                          info_max_age_s=3600)
            assert _info_requests(api, before) == expected, minutes
            assert result.counts["details"] == len(expected)
            # 5 lists a run (4 daily ones the first time) and the details
            assert len(api.requests) - before == 5 + (4 if minutes == 0 else 0) + len(expected)
    with Store(path) as store:
        seen = store.details_seen()
    assert seen == {**{i: "2026-03-02T11:10:00.000000Z" for i in IDS[0:3]},
                    **{i: "2026-03-02T11:20:00.000000Z" for i in IDS[3:6]},
                    IDS[6]: "2026-03-02T11:30:00.000000Z"}


def test_a_zero_budget_asks_for_no_details(tmp_path: Path) -> None:
    """--info-budget 0: the lists only."""
    with FakeShadeformAPI(api_key=KEY, scenario=_fleet()) as api:
        result = _run(tmp_path / "fleet.sqlite", api, T0, info_budget=0)
        assert _info_requests(api, 0) == []
    assert result.counts["details"] == 0


def test_a_failing_info_request_is_recorded_and_never_fails_the_poll(tmp_path: Path) -> None:
    """500 after every retry on one instance's info: the poll is ok, the failure is a row,
    the other details are recorded, and the next run asks for it again."""
    path = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY, scenario=_fleet()) as api:
        api.inject(f"/instances/{IDS[1]}/info", 500, times=3)
        result = _run(path, api, T0)
        assert result.outcome == "ok"
        assert result.counts["details"] == 6 and result.counts["failures"] == 1
        assert result.message.endswith("; 0 volumes, 6 instance details, 1 failed requests")
        # the client's three attempts for i-1, one for each of the others
        assert _info_requests(api, 0) == [IDS[0], IDS[1], IDS[1], IDS[1], *IDS[2:]]
        before = len(api.requests)
        second = _run(path, api, T0 + timedelta(minutes=10))
        assert _info_requests(api, before) == [IDS[1]]
    assert second.counts["failures"] == 0
    with Store(path) as store:
        failures = store.request_failures()
        history = store.read()
    assert failures[["poll_id", "endpoint", "resource_id"]].values.tolist() == [
        [1, INFO, IDS[1]]]
    assert "500" in failures["error"].iloc[0]
    assert history.latest().instances["has_details"].tolist() == [True] * 7


def test_an_instance_gone_between_the_list_and_its_info_is_a_recorded_404(
        tmp_path: Path) -> None:
    """404 on the info of a listed instance: recorded, the poll ok, nothing retried."""
    path = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY, scenario=_fleet()) as api:
        api.inject(f"/instances/{IDS[0]}/info", 404)
        result = _run(path, api, T0)
        assert _info_requests(api, 0) == IDS
    assert result.outcome == "ok" and result.counts["failures"] == 1
    with Store(path) as store:
        assert "404" in store.request_failures()["error"].iloc[0]


def test_account_lists_daily_and_volumes_every_run(tmp_path: Path) -> None:
    """/sshkeys, /templates, /templates/featured, /clusters/types at most daily."""
    path = tmp_path / "fleet.sqlite"
    daily = ["/v1/sshkeys", "/v1/templates", "/v1/templates/featured", "/v1/clusters/types"]
    with FakeShadeformAPI(api_key=KEY) as api:
        for minutes, asked in ((0, True), (10, False), (24 * 60 - 1, False), (24 * 60, True)):
            before = len(api.requests)
            _run(path, api, T0 + timedelta(minutes=minutes), info_budget=0)
            paths = [r.path for r in api.requests[before:]]
            assert [p for p in paths if p in daily] == (daily if asked else []), minutes
            assert paths[:4] == ["/v1/clusters", "/v1/instances", "/v1/volumes",
                                 "/v1/volumes/types"]
            assert paths[-1] == "/v1/instances/types"
    with Store(path) as store:
        history = store.read()
    latest = history.latest()
    assert latest.volumes["volume_id"].tolist() == ["f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190",
                                                    "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13"]
    assert latest.volume_types["price_per_gb_per_hour_usd"].tolist() == [0.000097, 0.0001]
    assert latest.ssh_keys["public_key_sha256"].tolist() == [
        "SHA256:ZkAslGjFiUHdGf/WUL8rQvkib4PTvQatUV0OUQSncCA"]
    assert latest.templates.set_index("name")["featured"].to_dict() == {
        "vllm-serve": False, "Jupyter": True}
    assert latest.cluster_types["shade_instance_type"].tolist() == ["A100_80Gx8"]


def test_a_failing_volumes_endpoint_never_fails_the_poll_nor_marks_volumes_gone(
        tmp_path: Path) -> None:
    """503 on /volumes: the poll is ok without /volumes, its volumes stay current."""
    path = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY) as api:
        _run(path, api, T0, info_budget=0)
        api.inject("/volumes", 503, times=3)
        result = _run(path, api, T0 + timedelta(minutes=10), info_budget=0)
    assert result.outcome == "ok" and result.counts["gone"] == 0
    with Store(path) as store:
        poll = store.poll(2)
        failures = store.request_failures()
        volumes = store.read().latest().volumes
    assert poll["endpoints"] == "/clusters,/instances,/instances/types,/volumes/types"
    assert failures["endpoint"].tolist() == ["/volumes"]
    assert failures["resource_id"].isna().all()
    assert volumes["gone"].tolist() == [False, False]


def test_a_malformed_account_list_is_a_recorded_failure(tmp_path: Path) -> None:
    """A volume without an id cannot be versioned: /volumes is left out, the poll is ok."""
    state = default_scenario()[0]
    bad = State(at=state.at, clusters=state.clusters, instances=state.instances,
                instance_types=state.instance_types, volumes={"volumes": [{"name": "x"}]})
    with FakeShadeformAPI(api_key=KEY, scenario=[bad]) as api:
        result = _run(tmp_path / "fleet.sqlite", api, state.at, info_budget=0)
    assert result.outcome == "ok" and result.counts["failures"] == 1
    with Store(tmp_path / "fleet.sqlite") as store:
        failure = store.request_failures().iloc[0]
    assert (failure["endpoint"], failure["error"]) == (
        "/volumes", "GET /volumes at $.volumes[0].id: 'id' is null, expected a non-empty string")


def test_no_secret_of_the_details_reaches_the_store(tmp_path: Path) -> None:
    """The info endpoint's env values (DEFAULT_SECRETS[2]) are in no byte of the store."""
    path = tmp_path / "fleet.sqlite"
    with FakeShadeformAPI(api_key=KEY) as api:
        _run(path, api, T0)
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("fleet"))
    assert [s for s in DEFAULT_SECRETS if s.encode() in data] == []
    with sqlite3.connect(path) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM versions GROUP BY kind"))
    assert kinds == {"cluster": 1, "instance": 5, "instance_type": 8, "instance_info": 5,
                     "volume": 2, "volume_type": 2, "ssh_key": 1, "template": 1,
                     "featured_template": 1, "cluster_type": 1}


@pytest.mark.parametrize("argv, message", [
    (["--info-budget", "-1"], "expected a whole number, 0 or more"),
    (["--info-max-age", "soon"], "expected a number of hours, 0 or more"),
])
def test_collect_refuses_bad_detail_options(argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Usage errors exit 2 with the option's own message."""
    assert main(["collect", "--store", "x.sqlite", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.hardening  # waits out a 2.5 s hang; the fast tier keeps test_collect's deadline test
def test_no_detail_request_starts_in_the_last_quarter_of_the_deadline(tmp_path: Path) -> None:
    """A slow info answer eats the run's first three quarters: the other details wait for the
    next run, and the run still reads /instances/types and records an ok poll."""
    with FakeShadeformAPI(api_key=KEY, scenario=_fleet(), hang_seconds=2.5) as api:
        api.inject(f"/instances/{IDS[0]}/info", "hang")
        result = _run(tmp_path / "fleet.sqlite", api, T0, deadline_s=3.2)
        assert _info_requests(api, 0) == [IDS[0]]
        assert api.requests[-1].path == "/v1/instances/types"
    assert result.outcome == "ok"
    assert (result.counts["details"], result.counts["failures"]) == (1, 0)
