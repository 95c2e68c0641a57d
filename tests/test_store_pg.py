"""The history store in PostgreSQL: the same polls give the same frames and the same report
as SQLite; URLs and passwords; the collector's advisory lock; concurrency and kill -9."""

from __future__ import annotations

import filecmp
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from conftest import cli_env, fake_client, fixed_clock, store_rows
from pgserver import PASSWORD, PgServer

from shadeanalytics._storeurl import redact, sqlite_path
from shadeanalytics.cli import main
from shadeanalytics.errors import LockedError, ServerError, StoreError
from shadeanalytics.live.collect import collect, collector_lock
from shadeanalytics.live.locks import store_lock
from shadeanalytics.live.store import Store
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, default_scenario

KEY = "test-key-pg"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _collect_scenario(store: str, *, fail_at: int | None = None) -> None:
    """One collect per state of the default scenario from the fake API into ``store`` (the
    run ``fail_at`` fails: a 503 on /instances)."""
    with FakeShadeformAPI(api_key=KEY, scenario="default") as api:
        for n, state in enumerate(default_scenario()):
            if n == fail_at:
                api.inject("/instances", 503, times=3)
                with pytest.raises(ServerError):
                    collect(store, make_client=fake_client(api, KEY), now=fixed_clock(state.at))
            else:
                collect(store, make_client=fake_client(api, KEY), now=fixed_clock(state.at))
            api.advance()


# -- one contract, two backends -------------------------------------------------------------


@pytest.mark.hardening  # ~10 s: four commands twice, a FOCUS export among them
def test_the_same_polls_read_back_as_equal_frames_and_an_identical_report(
    tmp_path: Path, pg_url: str
) -> None:
    """The scenario collected into SQLite and into PostgreSQL (a failed poll included): every
    frame of read(), the poll log and the quarantine are equal; `summary` and `check` print
    the same, and `report` and `export --format focus` write byte-identical folders."""
    sqlite = str(tmp_path / "history.db")
    for store in (sqlite, pg_url):
        _collect_scenario(store, fail_at=3)
    with Store(sqlite) as a, Store(pg_url) as b:
        pd.testing.assert_frame_equal(a.polls(), b.polls())
        pd.testing.assert_frame_equal(a.quarantine(), b.quarantine())
        pd.testing.assert_frame_equal(a.request_failures(), b.request_failures())
        mine, theirs = a.read(), b.read()
        for (name, left), (_, right) in zip(mine.frames(), theirs.frames(), strict=True):
            pd.testing.assert_frame_equal(left, right, obj=name)
        assert len(a.polls()) == 7 and a.polls()["outcome"].tolist().count("failed") == 1
        assert a.details_seen() == b.details_seen()
        assert a.stats()["versions"] == b.stats()["versions"]
    printed = []
    for n, store in enumerate((sqlite, pg_url)):
        printed.append(
            [
                cli("summary", "--store", store, "--as-of", "latest"),
                cli("check", "--store", store, "--as-of", "latest"),
            ]
        )
        for command in (["report"], ["export", "--format", "focus"]):
            code, _, err = cli(
                *command,
                "--store",
                store,
                "--out",
                str(tmp_path / f"{command[0]}-{n}"),
                "--as-of",
                "latest",
            )
            assert (code, err) == (0, "")
    assert printed[0] == printed[1]
    assert printed[0][0][0] == 0 and printed[0][0][1]
    for folder in ("report", "export"):
        one, two = tmp_path / f"{folder}-0", tmp_path / f"{folder}-1"
        names = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
        assert names and names == sorted(
            p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file()
        )
        _, mismatch, errors = filecmp.cmpfiles(one, two, names, shallow=False)
        assert (mismatch, errors) == ([], []), folder


def test_cost_estimates_keep_their_type(store_at: str) -> None:
    """A cost estimate read back is the value the API sent: a number, a text, an integer."""
    from conftest import make_instance

    with Store(store_at) as store:
        values = [1.5, "2.25", 7, None]
        store.record_poll(
            "2026-03-02T10:00:00Z",
            clusters=None,
            instance_types=None,
            instances={
                "instances": [
                    make_instance(f"i-{n}", cost_estimate=v) for n, v in enumerate(values)
                ]
            },
        )
        rows = store_rows(
            store, "SELECT resource_id, last_cost_estimate FROM versions ORDER BY resource_id"
        )
    got = [r["last_cost_estimate"] for r in rows]
    assert got == [1.5, "2.25", 7, None]
    assert [type(v) for v in got] == [float, str, int, type(None)]


# -- URLs and passwords ---------------------------------------------------------------------


def test_redact_hides_the_password_of_a_url_and_leaves_a_path() -> None:
    """The one redaction: the password of the user part and of a password= parameter."""
    assert (
        redact("postgresql://ops:s3cr%40t@db.example:5432/fleet")
        == "postgresql://ops:***@db.example:5432/fleet"
    )
    assert (
        redact("postgres://ops@db/fleet?password=hunter2&sslmode=require")
        == "postgres://ops@db/fleet?password=***&sslmode=require"
    )
    assert redact("postgresql://db/fleet") == "postgresql://db/fleet"
    assert redact("history.db") == "history.db"
    assert sqlite_path("sqlite:////var/lib/sa/history.db") == Path("/var/lib/sa/history.db")
    assert sqlite_path("sqlite:///history.db") == Path("history.db")


def test_the_password_is_in_no_repr_error_or_stats(pg_server: PgServer, pg_url: str) -> None:
    """repr(Store), Store.path, stats()['path'] and a refused login show no password."""
    with Store(pg_url) as store:
        shown = [repr(store), str(store.path), str(store.stats())]
    assert all(PASSWORD not in text and ":***@" in text for text in shown), shown
    wrong = pg_url.replace(PASSWORD, "not-the-Password-42")
    with pytest.raises(StoreError) as caught:
        Store(wrong)
    message = str(caught.value)
    assert "not-the-Password-42" not in message and PASSWORD not in message
    assert message.startswith(f"postgresql://postgres:***@127.0.0.1:{pg_server.port}/postgres")
    assert "cannot open: " in message and "password authentication failed" in message


def test_the_password_may_come_from_pgpassword(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL without a password takes PGPASSWORD (libpq's rule)."""
    bare = pg_url.replace(f":{PASSWORD}@", "@")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with Store(bare) as store:
        assert store.newest_poll() is None
    monkeypatch.setenv("PGPASSWORD", "wrong")
    with pytest.raises(StoreError, match="password authentication failed"):
        Store(bare)


def test_a_missing_or_foreign_or_newer_schema_is_refused(pg_url: str) -> None:
    """A reader refuses an empty schema; tables of another application and a newer schema
    are refused by name."""
    name = redact(pg_url)
    nowhere = pg_url.rsplit("%3D", 1)[0] + "%3Dno_such_schema"
    with pytest.raises(StoreError) as caught:
        Store(nowhere)
    assert str(caught.value) == (
        f"{redact(nowhere)}: no schema to keep the store in (the "
        "search_path names none that exists)"
    )
    with pytest.raises(StoreError) as caught:
        Store(pg_url, create=False)
    assert str(caught.value) == f"{name}: no such store (no shadeanalytics tables in the schema)"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE polls (id int)")
    with pytest.raises(StoreError) as caught:
        Store(pg_url)
    assert (
        str(caught.value) == f"{name}: not a shadeanalytics store (tables of another application)"
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE polls")
    Store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError) as caught:
        Store(pg_url)
    assert str(caught.value) == (
        f"{name}: made by a newer shadeanalytics (store schema 99, this version reads 5); upgrade"
    )


def test_the_settings_file_and_environment_keep_a_url_as_it_is(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHADEANALYTICS_STORE holding a URL reaches `summary` untouched (not made a path)."""
    with Store(pg_url) as store:
        store.record_poll(
            "2026-03-02T10:00:00Z", clusters=None, instance_types=None, instances={"instances": []}
        )
    monkeypatch.setenv("SHADEANALYTICS_STORE", pg_url)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("config")
    assert code == 0 and PASSWORD not in out + err
    code, out, err = cli("collect", "--quiet", "--base-url", "http://127.0.0.1:9")
    assert PASSWORD not in out + err
    assert list(tmp_path.iterdir()) == []  # no file named like the URL


# -- one collector at a time ------------------------------------------------------------------


def test_a_second_collector_is_refused_and_a_killed_ones_lock_goes(pg_url: str) -> None:
    """The collector's advisory lock refuses a second collector at once; a process killed
    (-9) while holding it leaves no lock behind: its session ends with it."""
    Store(pg_url).close()
    with collector_lock(pg_url), pytest.raises(LockedError) as caught, collector_lock(pg_url):
        pass
    assert str(caught.value) == (
        f"{redact(pg_url)}: another collector is running (it holds "
        "the store's lock); this run wrote nothing"
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from shadeanalytics.live.collect import collector_lock\n"
            "with collector_lock(sys.argv[1]):\n    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            pg_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockedError), collector_lock(pg_url):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        with store_lock(pg_url, "busy", wait_s=10):
            pass  # the server dropped the dead session's lock
    finally:
        if holder.poll() is None:
            holder.kill()
        if holder.stdout is not None:
            holder.stdout.close()


def _poll_ids(url: str) -> list[int]:
    with Store(url, create=False) as store:
        return store.polls()["poll_id"].tolist()


@pytest.mark.hardening
def test_two_collector_processes_never_lose_or_duplicate_a_poll(pg_url: str) -> None:
    """Two `collect --every` loops against one PostgreSQL store for a few seconds: each poll
    is recorded once (distinct observed_at), ids without gaps, every run either recorded or
    refused by the lock."""
    env = cli_env(KEY)
    with FakeShadeformAPI(api_key=KEY, scenario="default") as api:
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shadeanalytics",
                    "collect",
                    "--store",
                    pg_url,
                    "--base-url",
                    api.url,
                    "--every",
                    "1s",
                    "--log-format",
                    "json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        time.sleep(8)
        for run in runs:
            run.send_signal(signal.SIGTERM)
        outs = [run.communicate(timeout=60) for run in runs]
    assert PASSWORD not in "".join(out + err for out, err in outs)
    reported = [json.loads(line).get("poll_id") for out, _ in outs for line in out.splitlines()]
    reported = [p for p in reported if p is not None]
    assert len(reported) == len(set(reported)) >= 2  # each poll reported by one run only
    with Store(pg_url, create=False) as store:
        polls = store.polls()
        ok = polls[polls["outcome"] == "ok"]
        assert len(polls) >= 2
        assert polls["poll_id"].tolist() == list(range(1, len(polls) + 1))
        assert ok["observed_at"].is_unique and ok["observed_at"].is_monotonic_increasing
        assert sorted(reported) == polls["poll_id"].tolist()  # none lost, none extra
        assert store.integrity_check() == "ok"
        assert store.read().instances["observed_at"].notna().all()


@pytest.mark.hardening
def test_a_collector_killed_mid_poll_loses_nothing_committed(pg_url: str) -> None:
    """kill -9 of collectors at random moments (after their first poll): every poll a run
    reported stays, the store reads, and the next run records on top."""
    import random

    rng = random.Random(25)
    env = cli_env(KEY)
    reported: set[int] = set()
    with FakeShadeformAPI(api_key=KEY, scenario="default") as api:
        for _ in range(8):
            run = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shadeanalytics",
                    "collect",
                    "--store",
                    pg_url,
                    "--base-url",
                    api.url,
                    "--every",
                    "1s",
                    "--log-format",
                    "json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            assert run.stdout is not None
            first = run.stdout.readline()  # one poll done (however loaded the machine is)
            time.sleep(rng.uniform(0.0, 1.5))  # then a random moment, often mid-poll
            os.kill(run.pid, signal.SIGKILL)
            out, _ = run.communicate(timeout=30)
            for line in filter(str.strip, [first, *out.splitlines()]):
                record = json.loads(line)
                if record.get("outcome") == "ok":
                    reported.add(int(record["poll_id"]))
    ids = set(_poll_ids(pg_url))
    assert reported and reported <= ids
    with Store(pg_url, create=False) as store:
        assert store.integrity_check() == "ok"
        store.read()


# -- moving a store ---------------------------------------------------------------------------


def test_store_copy_into_postgresql_and_back_is_resumable_and_verified(
    tmp_path: Path, pg_url: str
) -> None:
    """`store copy` SQLite -> PostgreSQL copies every poll and version (ids kept), resumes
    after more polls without duplicating, and back into a new SQLite file gives the same
    frames; a destination of another history is refused; each run prints counts and one
    checksum for both stores."""
    src = str(tmp_path / "history.db")
    states = default_scenario()
    with FakeShadeformAPI(api_key=KEY, scenario="default") as api:
        for state in states[:4]:
            collect(src, make_client=fake_client(api, KEY), now=fixed_clock(state.at))
            api.advance()
        with Store(src) as store:
            store.add_poll_warning(2, "clock went backwards")
            store.update_alert_episodes(
                opened=[("new_cloud:x", "new_cloud")], seen=[], closed=[], at=states[3].at
            )
        code, out, err = cli("store", "copy", src, pg_url)
        assert (code, err) == (0, "")
        first = out.splitlines()
        assert first[0].startswith("copied 4 polls, ")
        assert first[0].endswith(f"1 poll warnings, 1 alert episodes into {redact(pg_url)}")
        assert PASSWORD not in out
        # three more polls into the source, then the copy again: only they are copied
        for state in states[4:]:
            collect(src, make_client=fake_client(api, KEY), now=fixed_clock(state.at))
            api.advance()
    code, out, err = cli("store", "copy", src, pg_url)
    assert (code, err) == (0, "")
    again = out.splitlines()
    assert again[0].startswith("copied 3 polls, ")
    with Store(src) as a, Store(pg_url) as b:
        assert b.polls()["poll_id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
        pd.testing.assert_frame_equal(a.polls(), b.polls())
        assert b.poll_warnings() == {2: "clock went backwards"}
        assert b.alert_episodes() == a.alert_episodes()
        stats = a.stats()
        checksum = again[1].rsplit("sha256:", 1)[1]
        assert again[1] == (
            f"verified: both stores hold {stats['polls']} polls, "
            f"{sum(stats['versions'].values())} versions, 0 request_failures, "
            f"0 quarantine; checksum sha256:{checksum}"
        )
    # a third run copies nothing and verifies again; back into a new SQLite file
    code, out, err = cli("store", "copy", src, pg_url)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith("copied 0 polls, 0 versions updated, 0 versions, ")
    assert out.splitlines()[1] == again[1]
    back = str(tmp_path / "back.db")
    code, out, err = cli("store", "copy", pg_url, back)
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == again[1]  # the same checksum in all three stores
    with Store(pg_url) as b, Store(back) as c:
        pd.testing.assert_frame_equal(b.polls(), c.polls())
        for (name, left), (_, right) in zip(b.read().frames(), c.read().frames(), strict=True):
            pd.testing.assert_frame_equal(left, right, obj=name)
        # the copy records on as the original would: ids follow on
        assert b.record_failed_poll(states[-1].at, error="x") == 8
    # the source holds no poll 8: the PostgreSQL store is no copy of it any more
    code, out, err = cli("store", "copy", src, pg_url)
    assert code == 1
    assert err == (
        f"Error: {redact(pg_url)}: holds poll 8, which {src} does not: it is not a "
        "copy of that store (copy into an empty store)\n"
    )


def test_sqlite_urls_and_a_settings_files_url_reach_the_commands(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--store sqlite:///PATH` is that file; `store = "postgresql://..."` in a settings file
    is used as it is (not made relative to the file's folder)."""
    path = tmp_path / "history.db"
    for where in (str(path), pg_url):
        with Store(where) as store:
            store.record_poll(
                "2026-03-02T10:00:00Z",
                clusters=None,
                instance_types=None,
                instances={"instances": []},
            )
    code, out, err = cli("summary", "--store", f"sqlite:///{path}", "--as-of", "latest")
    assert (code, err) == (0, "") and out
    settings = tmp_path / "shadeanalytics.toml"
    settings.write_text(f'store = "{pg_url}"\n')
    settings.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("config")
    assert code == 0 and redact(pg_url) in out and PASSWORD not in out
    code, out, err = cli("summary", "--as-of", "latest")  # the settings file's store
    assert (code, err) == (0, "") and out
    assert not (tmp_path / "postgresql:").exists()
