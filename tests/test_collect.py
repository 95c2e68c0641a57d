"""Collection runs against the fake API: polls, failures, the lock, the deadline, kill -9."""

from __future__ import annotations

import fcntl
import functools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import fake_client, kill_loop, store_rows

from shadeanalytics.cli import EXIT_LOCKED, EXIT_UNAVAILABLE, exit_code_for
from shadeanalytics.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    LockedError,
    RateLimitedError,
    SchemaError,
    ServerError,
    StoreError,
    TransportError,
)
from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.collect import (
    CollectResult,
    collect,
    collector_lock,
)
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, State, default_scenario

KEY = "test-key-collect"
TRAIN = "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40"
BATCH = "c7b3e2f9-1d64-4a0b-b5e8-9f2c4d6a8e12"
BURST = "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f"


@pytest.fixture
def api() -> Iterator[FakeShadeformAPI]:
    with FakeShadeformAPI(api_key=KEY, hang_seconds=5.0) as fake:
        yield fake


def _client(api: FakeShadeformAPI, api_key: str = KEY) -> Callable[..., ShadeformClient]:
    return fake_client(api, api_key)


def _run(path: Path | str, api: FakeShadeformAPI, **kwargs: object) -> CollectResult:
    """One run dated by the fake's current state."""
    state = api.state
    return collect(path, make_client=_client(api), now=lambda: state.at, **kwargs)  # type: ignore[arg-type]


def _gone(path: Path | str) -> set[tuple[str, str, int]]:
    with Store(path) as store:
        return {(r["kind"], r["resource_id"], r["valid_to"]) for r in store_rows(
            store, "SELECT kind, resource_id, valid_to FROM versions WHERE gone = 1")}


def _current(path: Path | str) -> int:
    with Store(path) as store:
        return int(store_rows(store, "SELECT count(*) AS n FROM versions WHERE valid_to IS NULL"
                              )[0]["n"])


#: per dialect of the fake API: instance types listed, versions changed by the last poll (the
#: live dialect adds a 2024-era catalogue entry, and spot-rtx6000 turns ``stopped`` at last)
DIALECTS = {"default": (8, 2), "strict": (8, 2), "live": (9, 3)}


# the PostgreSQL half of the default dialect stays in the fast tier (the rest: hardening)
@pytest.mark.parametrize("dialect", [pytest.param("default", marks=pytest.mark.pg_smoke),
                                     "strict", "live"])
def test_a_scenario_run_records_every_poll_and_gone_marker(store_at: str, dialect: str) -> None:
    """Seven runs, one per state, give seven ok polls and the expected gone markers, in every
    dialect of the fake API (strict: as the OpenAPI document says; live: every documented
    deviation), with nothing refused."""
    path = store_at
    types, changed = DIALECTS[dialect]
    results = []
    with FakeShadeformAPI(api_key=KEY, scenario=dialect) as api:
        for _ in range(7):
            results.append(_run(path, api))
            api.advance()
    assert [r.poll_id for r in results] == [1, 2, 3, 4, 5, 6, 7]
    assert {r.outcome for r in results} == {"ok"}
    assert results[3].counts["gone"] == 2  # batch-a6000 and its details
    # versions of every kind: train-h100 and the two h100-burst nodes take their details along
    assert results[6].counts == {"clusters": 1, "instances": 5, "instance_types": types,
                                 "added": 0, "changed": changed, "gone": 7, "volumes": 2,
                                 "details": 0, "failures": 0, "refused": 0}
    assert {r.refused for r in results} == {()}
    assert results[6].message.startswith("poll 7 ok in ")
    assert results[6].message.endswith(
        f": 1 clusters, 5 instances, {types} instance types; 0 new, {changed} changed, 7 gone; "
        "2 volumes, 0 instance details, 0 failed requests")
    gone = _gone(path)
    assert ("instance", BATCH, 4) in gone
    assert ("instance", TRAIN, 7) in gone
    assert ("cluster", BURST, 7) in gone
    assert len([g for g in gone if g[0] != "instance_info"]) == 5
    # an instance's details are closed with it
    assert {(rid, at) for kind, rid, at in gone if kind == "instance_info"} == {
        (rid, at) for kind, rid, at in gone if kind == "instance"}
    with Store(path) as store:
        log = store.polls()
    every_run = "/clusters,/instances,/instances/types,/volumes,/volumes/types"
    assert log["endpoints"].tolist() == [
        f"{every_run},/sshkeys,/templates,/templates/featured,/clusters/types", *[every_run] * 6]
    assert log["observed_at"].is_monotonic_increasing
    assert (log["finished_at"] >= log["started_at"]).all()
    # five lists a run, the four daily ones in the first run, and the details of each instance
    # when it is first listed: 5 (3 standalone, 2 cluster nodes), spot-rtx6000, the two
    # h100-burst nodes, notebook-a6000
    assert log["details"].tolist() == [5, 1, 2, 0, 1, 0, 0]
    assert len(api.requests) == 7 * 5 + 4 + 9


def test_server_error_records_a_failed_poll_and_keeps_resources(store_at: str,
                                                                api: FakeShadeformAPI) -> None:
    """A 503 that outlasts the retries is a failed poll; nothing is marked gone; it raises."""
    path = store_at
    _run(path, api)
    current = _current(path)
    api.advance()
    api.inject("/instances", 503, times=3)
    with pytest.raises(ServerError) as caught:
        _run(path, api)
    assert exit_code_for(caught.value) == EXIT_UNAVAILABLE
    assert _current(path) == current
    assert _gone(path) == set()
    with Store(path) as store:
        failed = store.poll(2)
        assert store.read().polls.groupby("observed_at")["ok"].all().tolist() == [True, False]
    assert failed["outcome"] == "failed"
    assert "503" in failed["error"]
    assert failed["clusters"] is None
    # the next run succeeds and judges the fleet again
    assert _run(path, api).poll_id == 3


def test_authentication_error_is_recorded_and_maps_to_exit_1(store_at: str,
                                                             api: FakeShadeformAPI) -> None:
    """A rejected key is a failed poll and exit code 1; a missing key writes no poll."""
    path = store_at
    state = api.state
    with pytest.raises(AuthenticationError) as caught:
        collect(path, make_client=_client(api, api_key="wrong"), now=lambda: state.at)
    assert exit_code_for(caught.value) == 1
    with Store(path) as store:
        assert store.polls()["outcome"].tolist() == ["failed"]
    with pytest.raises(AuthenticationError):
        collect(path, make_client=functools.partial(ShadeformClient, api_key=""),
                now=lambda: state.at)
    with Store(path) as store:
        assert len(store.polls()) == 1


def test_malformed_response_is_a_failed_poll(store_at: str) -> None:
    """A list item without an id makes the run fail, recorded, with nothing else written."""
    good = default_scenario()[0]
    bad = State(at=good.at, clusters={"clusters": [{"name": "no id", "instances": []}]},
                instances=good.instances, instance_types=good.instance_types)
    path = store_at
    with FakeShadeformAPI(api_key=KEY, scenario=[bad]) as api, pytest.raises(SchemaError):
        _run(path, api)
    with Store(path) as store:
        assert store.polls()["outcome"].tolist() == ["failed"]
    assert _current(path) == 0


def test_exit_codes() -> None:
    """Locked -> 3; rate limit, 5xx and transport errors -> 75; anything else -> 1."""
    assert (EXIT_LOCKED, EXIT_UNAVAILABLE) == (3, 75)
    assert exit_code_for(LockedError("x")) == EXIT_LOCKED
    for exc in (RateLimitedError("x"), ServerError("x"), TransportError("x")):
        assert exit_code_for(exc) == EXIT_UNAVAILABLE
    for other in (AuthenticationError("x"), BadResponseError("x"), ApiError("x"),
                  StoreError("x"), SchemaError("x"), ValueError("x")):
        assert exit_code_for(other) == 1


def test_lock_held_in_another_process_refuses_at_once(tmp_path: Path,
                                                       api: FakeShadeformAPI) -> None:
    """While another process holds the lock, a run raises LockedError at once, writes nothing
    and sends no request; once that process dies, the next run succeeds."""
    path = tmp_path / "fleet.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        began = time.monotonic()
        with pytest.raises(LockedError, match="another collector is running") as caught:
            _run(path, api)
        # at once: not after a wait for the holder (60 s) or a busy timeout (5 s); 2 s of
        # slack for a loaded CI machine (0.5 s failed there)
        assert time.monotonic() - began < 2
        assert exit_code_for(caught.value) == EXIT_LOCKED
        assert path.stat().st_size == 0  # the holder's lock created it; this run wrote nothing
        assert api.requests == []
    finally:
        holder.kill()
        holder.wait()
    assert _run(path, api).poll_id == 1


def test_lock_held_in_this_process_refuses_and_is_private(tmp_path: Path,
                                                          api: FakeShadeformAPI) -> None:
    """A second open file description conflicts too; the lock is the store file itself (0600)."""
    path = tmp_path / "fleet.sqlite"
    _run(path, api)
    lock = path
    assert not Path(f"{path}.lock").exists()
    assert lock.stat().st_mode & 0o777 == 0o600
    with collector_lock(path), pytest.raises(LockedError):
        _run(path, api)
    with Store(path) as store:
        assert len(store.polls()) == 1
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after each run
    finally:
        os.close(fd)


def test_deadline_bounds_a_hanging_api(tmp_path: Path, api: FakeShadeformAPI) -> None:
    """With a hanging endpoint, the run stops at its deadline and records a failed poll."""
    path = tmp_path / "fleet.sqlite"
    api.inject("/instances", "hang", times=5)
    began = time.monotonic()
    with pytest.raises(TransportError) as caught:
        _run(path, api, deadline_s=0.5)
    elapsed = time.monotonic() - began
    assert 0.4 < elapsed < 3  # the hang is 5 s: well before it, with room for a busy machine
    assert exit_code_for(caught.value) == EXIT_UNAVAILABLE
    with Store(path) as store:
        assert store.polls()["outcome"].tolist() == ["failed"]


def test_the_runs_deadline_joins_the_clients_policy(tmp_path: Path, api: FakeShadeformAPI) -> None:
    """collect gives the client's policy its run deadline; a policy deadline already passed
    (earlier than the run's) holds: no request, a failed poll."""
    path = tmp_path / "fleet.sqlite"
    seen: list[ShadeformClient] = []

    def make(policy: ClientPolicy) -> ShadeformClient:
        seen.append(ShadeformClient(KEY, base_url=api.url, policy=policy))
        return seen[-1]

    state = api.state
    began = time.monotonic()
    collect(path, make_client=functools.partial(make, ClientPolicy()), deadline_s=30.0,
            now=lambda: state.at)
    deadline = seen[0].policy.deadline
    assert deadline is not None and began + 30.0 <= deadline <= time.monotonic() + 30.0
    sent = len(api.requests)
    late = ClientPolicy(deadline=time.monotonic() - 1)
    with pytest.raises(TransportError, match=r"^GET /clusters: the run deadline has passed; "
                                             r"no request sent$"):
        collect(path, make_client=functools.partial(make, late), now=lambda: state.at)
    assert seen[1].policy is late
    assert len(api.requests) == sent
    with Store(path) as store:
        assert store.polls()["outcome"].tolist() == ["ok", "failed"]


def test_a_factory_with_the_old_keywords_warns_at_the_callers_line(
    tmp_path: Path, api: FakeShadeformAPI
) -> None:
    """partial(ShadeformClient, sleep=...) still collects; the DeprecationWarning points at the
    code calling collect, not into the package."""
    make = functools.partial(ShadeformClient, api_key=KEY, base_url=api.url,
                             sleep=lambda s: None)
    state = api.state
    old = r"^ShadeformClient\(sleep=\) is deprecated"
    with pytest.warns(DeprecationWarning, match=old) as caught:
        result = collect(tmp_path / "fleet.sqlite", make_client=make, now=lambda: state.at)
    assert result.outcome == "ok"
    assert [w.filename for w in caught if "ShadeformClient" in str(w.message)] == [__file__]


# -- kill -9 ----------------------------------------------------------------------------------


@pytest.mark.hardening  # a race / a kill / a signal: the long tier
def test_killed_collector_leaves_a_consistent_store(tmp_path: Path) -> None:
    """SIGKILL at random moments (10 times): integrity ok, committed polls kept, none partial,
    lock free, the next run succeeds."""
    kill_loop(tmp_path, kills=10, seed=1, expect_commits=False)


@pytest.mark.hardening
def test_killed_collector_leaves_a_consistent_store_200_times(tmp_path: Path) -> None:
    """The same as the quick kill test, 200 times."""
    kill_loop(tmp_path, kills=200, seed=2)
