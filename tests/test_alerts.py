"""Budgets and alerts: hand-computed measures and rules on a small fleet, the budgets file's
errors, and `shadeanalytics check` as cron runs it (exit codes, one alert per episode in a real
SQLite store, a webhook received by a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import Hook, envelope, make_instance

import shadeanalytics as sa
from shadeanalytics import load_budgets
from shadeanalytics.analytics import alerts
from shadeanalytics.analytics.alerts import Budget, BudgetFileError, evaluate
from shadeanalytics.analytics.billing import bill_fleet
from shadeanalytics.cli import main
from shadeanalytics.live import notify
from shadeanalytics.live.store import Store

# 24 h of polls: the burn-rate rule's minimum of observed history (MIN_TRAILING_HOURS)
POLLS = ["2026-10-31T12:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T12:00:00Z"]
AS_OF = pd.Timestamp(POLLS[-1])


def _a() -> dict[str, Any]:
    # running since Oct 31 12:00 at $2.10 (1 GPU, hyperstack A6000)
    return make_instance("a", active_at="2026-10-31T12:00:00Z", created_at="2026-10-31T11:50:00Z")


def _b() -> dict[str, Any]:
    # running since 11:00 at $8.40 (4 GPUs, nebius H100x4): first listed at 12:00
    return make_instance("b", cloud="nebius", region="us-central1", shade_instance_type="H100x4",
                         gpu_type="H100", num_gpus=4, hourly_price=840,
                         created_at="2026-11-01T10:50:00Z", active_at="2026-11-01T11:00:00Z")


def _p(iid: str, created: str) -> dict[str, Any]:
    # pending, boot estimate at most 20 min
    return make_instance(iid, status="pending", active_at=None, created_at=created,
                         boot_time={"min_boot_in_sec": 600, "max_boot_in_sec": 1200})


def _e() -> dict[str, Any]:
    return make_instance("e", status="error", active_at=None, created_at="2026-11-01T11:00:00Z")


def fleet_polls() -> list[tuple[str, list[dict[str, Any]]]]:
    """(observed_at, instances listed): a alone until 12:00, then b, p (late), q, e."""
    late = [_a(), _b(), _p("p", "2026-11-01T11:00:00Z"), _p("q", "2026-11-01T11:50:00Z"), _e()]
    return [(POLLS[0], [_a()]), (POLLS[1], [_a()]), (POLLS[2], late)]


def fleet() -> sa.Tables:
    return sa.read([envelope({"instances": listed}, when, "/instances")
                    for when, listed in fleet_polls()])


# -- measures and rules, by hand --------------------------------------------------------------
# At 12:00: hourly 2.10 + 8.40 = 10.50; GPUs 1 + 4 = 5; accrued a 24 h x 2.10 = 50.40 and
# b 1 h x 8.40 = 8.40 -> 58.80. Month to date (from Nov 1 00:00): a 12 h x 2.10 = 25.20 + b
# 8.40 = 33.60; hours left in November at Nov 1 12:00: 30 x 24 - 12 = 708 -> forecast
# 33.60 + 10.50 x 708 = 7467.60. nebius alone: 8.40, 8.40 + 8.40 x 708 = 5955.60.
EXPECTED = {
    "hourly_usd": 10.50, "daily_usd": 252.0, "monthly_usd": 7665.0, "accrued_usd": 58.80,
    "running_instances": 2.0, "running_gpus": 5.0, "month_to_date_usd": 33.60,
    "month_forecast_usd": 7467.60,
}


@pytest.fixture(scope="module")
def fleet_billed() -> sa.Bill:
    """The hand-built fleet billed at AS_OF, once for the module (a Bill is read only)."""
    return bill_fleet(fleet(), as_of=AS_OF)


@pytest.mark.parametrize("measure", sorted(EXPECTED))
def test_each_measure_by_hand(measure: str, fleet_billed: sa.Bill) -> None:
    """Each budget measure of the hand-built fleet is the hand-computed value."""
    billed = fleet_billed
    assert alerts._measure(billed, Budget("x", measure, 0.0)) == pytest.approx(
        EXPECTED[measure], abs=1e-9)


def test_where_narrows_to_one_cloud_and_tag() -> None:
    """A budget's where narrows every measure to that cloud (another cloud: 0)."""
    billed = bill_fleet(fleet(), as_of=AS_OF)
    nebius = {"cloud": "nebius"}
    assert alerts._measure(billed, Budget("n", "hourly_usd", 0, nebius)) == pytest.approx(8.40)
    assert alerts._measure(billed, Budget("n", "month_to_date_usd", 0, nebius)) == \
        pytest.approx(8.40)
    assert alerts._measure(billed, Budget("n", "month_forecast_usd", 0, nebius)) == \
        pytest.approx(5955.60)
    assert alerts._measure(billed, Budget("n", "running_gpus", 0, nebius)) == 4.0
    assert alerts._measure(billed, Budget("n", "hourly_usd", 0, {"cloud": "aws"})) == 0.0


def test_builtin_rules_by_hand() -> None:
    """The built-in rules find the five hand-placed breaches, in order, with their messages."""
    found = evaluate(fleet(), as_of=AS_OF)
    assert [(b.rule, b.key) for b in found] == [
        ("burn_rate_jump", "burn_rate_jump"),
        ("new_cloud", "new_cloud:nebius"),
        ("new_instance_type", "new_instance_type:H100x4"),
        ("pending_too_long", "pending_too_long:p"),
        ("error_listed", "error_listed:e"),
    ]
    # trailing mean over Oct 31 12:00-Nov 1 12:00: (50.40 + 8.40) / 24 h = 2.45/h; 10.50 is
    # 329 % above
    assert found[0].message == ("burn rate $10.50/h is 329% above its trailing mean $2.45/h "
                                "(over 24.0 h)")
    assert found[0].limit == pytest.approx(1.5 * 2.45)
    assert found[3].message == ("instance p pending for 60 min, more than twice its boot "
                                "estimate (20 min)")
    assert found[3].value == 3600.0 and found[3].limit == 2400.0


def test_quiet_fleet_has_no_breach() -> None:
    """At 06:00 nothing has changed: no rule and no budget breaches."""
    # at 06:00 only a runs, as at 00:00: burn equals its mean, nothing new, nothing pending
    assert evaluate(fleet(), as_of=POLLS[1]) == []


def test_one_snapshot_has_no_history_rules() -> None:
    """One snapshot has no history, so the history rules find nothing."""
    one = sa.read(envelope({"instances": [_b()]}, POLLS[2], "/instances"))
    assert evaluate(one, as_of=AS_OF) == []


def test_budget_breach_message_and_order() -> None:
    """Only budgets above their limit breach, with the exact message and key."""
    budgets = [Budget("fleet burn", "hourly_usd", 10.0),
               Budget("nebius month", "month_forecast_usd", 6000.0, {"cloud": "nebius"}),
               Budget("gpus", "running_gpus", 4.0, {"cloud": "nebius"})]
    found = evaluate(fleet(), budgets=budgets, as_of=AS_OF, builtin=False)
    assert [b.message for b in found] == [
        "'fleet burn': hourly_usd is $10.50, above the limit $10.00",
    ]
    assert found[0].key == "budget:fleet burn"
    budgets[1] = Budget("nebius month", "month_forecast_usd", 5955.0, {"cloud": "nebius"})
    found = evaluate(fleet(), budgets=budgets, as_of=AS_OF, builtin=False)
    assert found[1].message == ("'nebius month': month_forecast_usd, cloud='nebius' is "
                                "$5,955.60, above the limit $5,955.00")


def test_findings_plug_in_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quality check added to CHECKS becomes a rule by its name, its id escaped."""
    from shadeanalytics.analytics import quality

    def orphan(fleet: Any) -> pd.DataFrame:
        return pd.DataFrame({"severity": ["warning"], "check": ["orphaned_volume"],
                             "kind": ["volume"], "resource_id": ["vol-\x1b[31m1"],
                             "message": ["billed and mounted by no instance"]})

    extra = quality.Check("orphaned_volume", "volume", "warning", "test", orphan)
    monkeypatch.setattr(quality, "CHECKS", (*quality.CHECKS, extra))
    found = [b for b in evaluate(fleet(), as_of=POLLS[1]) if b.rule == "orphaned_volume"]
    assert [(b.key, b.message) for b in found] == [
        ("orphaned_volume:vol-\\x1b[31m1",
         "volume vol-\\x1b[31m1: billed and mounted by no instance")]
    assert found[0].line == ("orphaned_volume: volume vol-\\x1b[31m1: billed and mounted by "
                             "no instance")


def test_check_lines_name_the_rule_once_and_the_resource() -> None:
    """`check` on the sample: each line is `rule: kind id: what`, the rule named once."""
    out = io.StringIO()
    assert main(["check", str(sa.sample_path())], stdout=out, stderr=io.StringIO()) == 10
    assert out.getvalue().splitlines() == [
        "error_listed: instance 7f1b103c-df15-42b0-aab4-77d26415479c is in error and still listed",
        "error_listed: instance 96d756e0-2184-48e5-a4dc-2b234fae8978 is in error and still listed",
        "orphaned_volume: volume 5a1e0000-0000-4000-8000-000000000002: billed and mounted by no "
        "instance: $146.00/month"]


def test_escape_control() -> None:
    """Control and line-separator characters are shown as escapes, never sent raw."""
    assert alerts.escape_control("a\nb\x1b[2J\u2028c\x7f") == "a\\nb\\x1b[2J\\u2028c\\x7f"


# -- the budgets file -------------------------------------------------------------------------

GOOD = """
[[budget]]
name = "fleet burn"
measure = "hourly_usd"
limit = 400.0

[[budget]]
name = "nebius month"
measure = "month_forecast_usd"
limit = 20000
[budget.where]
cloud = "nebius"
"""


def test_load_budgets(tmp_path: Path) -> None:
    """A budgets TOML file loads into Budget values with their where filters."""
    path = tmp_path / "budgets.toml"
    path.write_text(GOOD)
    assert load_budgets(path) == [Budget("fleet burn", "hourly_usd", 400.0),
                                  Budget("nebius month", "month_forecast_usd", 20000.0,
                                         {"cloud": "nebius"})]


@pytest.mark.parametrize(("text", "message"), [
    ('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\n',
     "budget[0] ('x'): key 'limit': missing or not a finite number below 1e15"),
    ('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\nlimit = "SECRET"\n',
     "budget[0] ('x'): key 'limit': missing or not a finite number below 1e15"),
    ('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\nlimit = 1\n'
     '[[budget]]\nname = "y"\nmeasure = "SECRET"\nlimit = 1\n',
     "budget[1] ('y'): key 'measure': missing or not one of hourly_usd, daily_usd, "
     "monthly_usd, accrued_usd, running_instances, running_gpus, month_to_date_usd, "
     "month_forecast_usd"),
    ('[[budget]]\nmeasure = "hourly_usd"\nlimit = 1\n',
     "budget[0]: key 'name': missing or not a non-empty string"),
    ('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\nlimit = 1\nlimt = 2\n',
     "budget[0] ('x'): key 'limt': unknown key (expected limit, measure, name, where)"),
    ('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\nlimit = 1\n[budget.where]\nip = "1"\n',
     "budget[0] ('x'): key 'where.ip': not a cost dimension (cloud, region, gpu_type, "
     "shade_instance_type, cluster_id, status, rental_type, tag, service)"),
    ('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\nlimit = nan\n',
     "budget[0] ('x'): key 'limit': missing or not a finite number below 1e15"),
    ('budget = 3\n', "'budget' must be an array of tables ([[budget]])"),
])
def test_malformed_budgets_name_file_rule_and_key(tmp_path: Path, text: str,
                                                  message: str) -> None:
    """A malformed budgets file names the file, the budget and the key, never a value."""
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    with pytest.raises(BudgetFileError) as caught:
        load_budgets(path)
    assert str(caught.value) == f"{path}: {message}"
    assert "SECRET" not in str(caught.value)


def test_cli_malformed_budgets_is_usage_error(tmp_path: Path, sources: list[str]) -> None:
    """check with a malformed budgets file exits 2 with one Error line, no traceback."""
    path = tmp_path / "budgets.toml"
    path.write_text('[[budget]]\nname = "x"\nmeasure = "hourly_usd"\n')
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", *sources, "--budgets", str(path)], stdout=out, stderr=err) == 2
    assert err.getvalue().splitlines()[-1] == (
        f"Error: {path}: budget[0] ('x'): key 'limit': missing or not a finite number below 1e15")
    assert "Traceback" not in err.getvalue()
    path.write_text("[[budget]\n")
    assert main(["check", *sources, "--budgets", str(path)], stdout=out, stderr=err) == 2
    assert f"Error: {path}: not valid TOML (" in err.getvalue()


# -- the command, as cron runs it -------------------------------------------------------------


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    path = tmp_path / "fleet.jsonl"
    path.write_text("".join(json.dumps(envelope({"instances": listed}, when, "/instances")) + "\n"
                            for when, listed in fleet_polls()))
    return [str(path)]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_exit_codes(tmp_path: Path, sources: list[str]) -> None:
    """check exits 0 when quiet and 10 with one line per breach when over a budget."""
    budgets = tmp_path / "b.toml"
    budgets.write_text('[[budget]]\nname = "burn"\nmeasure = "hourly_usd"\nlimit = 5\n')
    code, out, _ = run(*sources, "--budgets", str(budgets), "--as-of", POLLS[1])
    assert (code, out) == (0, "")
    code, out, _ = run(*sources, "--budgets", str(budgets))  # latest: 12:00
    assert code == 10
    assert out.splitlines() == [
        "budget: 'burn': hourly_usd is $10.50, above the limit $5.00",
        "burn_rate_jump: burn rate $10.50/h is 329% above its trailing mean $2.45/h (over 24.0 h)",
        "new_cloud: new cloud 'nebius' in the fleet (in no snapshot up to 2026-11-01T06:00:00Z)",
        "new_instance_type: new instance type 'H100x4' in the fleet (in no snapshot up to "
        "2026-11-01T06:00:00Z)",
        "pending_too_long: instance p pending for 60 min, more than twice its boot estimate "
        "(20 min)",
        "error_listed: instance e is in error and still listed",
    ]
    assert run("--as-of", POLLS[1])[0] == 2  # neither SOURCE nor --store


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "WEBHOOK_BACKOFF_S", 0.0)


def store_with(path: Path | str, polls: list[tuple[str, list[dict[str, Any]]]]) -> str:
    with Store(path) as store:
        for when, listed in polls:
            store.record_poll(when, clusters=None, instances={"instances": listed},
                              instance_types=None)
    return str(path)


def test_one_alert_per_episode_across_runs(store_at: str) -> None:
    """A breach is sent once per episode across runs, its clearing once when asked (the alert
    state in either backend)."""
    db = store_at
    polls = fleet_polls()
    store_with(db, polls)
    with Hook() as hook:
        code, out, _ = run("--store", str(db), "--webhook", hook.url, "--notify-clear")
        assert code == 10 and len(out.splitlines()) == 5
        assert len(hook.bodies) == 1
        sent = hook.bodies[0]
        assert [b["key"] for b in sent["breaches"]] == [
            "burn_rate_jump", "new_cloud:nebius", "new_instance_type:H100x4",
            "pending_too_long:p", "error_listed:e"]
        assert sent["text"].splitlines()[0] == ("shadeanalytics: 5 new breaches as of "
                                                "2026-11-01T12:00:00Z")
        assert sent["cleared"] == []
        text = json.dumps(sent)
        for secret in ("10.0.0.1", "shadeform", "ssh", "node-"):
            assert secret not in text
        # the same data again: still breached (exit 10), nothing sent
        code, out, _ = run("--store", str(db), "--webhook", hook.url, "--notify-clear")
        assert code == 10 and len(out.splitlines()) == 5 and len(hook.bodies) == 1
        # 13:00: e gone; nothing new in the fleet since 12:00; burn 10.50 against the mean
        # (13 h x 2.10 + 2 h x 8.40) / 13 h = 3.39; p still late, and now q too (created
        # 11:50, 70 min > 2 x 20 min): only q is new
        rest = [r for r in polls[-1][1] if r["id"] != "e"]
        store_with(db, [("2026-11-01T13:00:00Z", rest)])
        code, out, _ = run("--store", str(db), "--webhook", hook.url, "--notify-clear")
        assert code == 10
        assert [line.split(":")[0] for line in out.splitlines()] == [
            "burn_rate_jump", "pending_too_long", "pending_too_long"]
        assert len(hook.bodies) == 2
        assert [b["key"] for b in hook.bodies[1]["breaches"]] == ["pending_too_long:q"]
        assert hook.bodies[1]["cleared"] == ["error_listed:e", "new_cloud:nebius",
                                             "new_instance_type:H100x4"]
        assert hook.bodies[1]["text"].splitlines() == [
            "shadeanalytics: 1 new breach, 3 cleared as of 2026-11-01T13:00:00Z",
            "- pending_too_long: instance q pending for 70 min, more than twice its boot "
            "estimate (20 min)",
            "- cleared: error_listed:e", "- cleared: new_cloud:nebius",
            "- cleared: new_instance_type:H100x4"]
        # without --notify-clear a run that only clears sends nothing
    with Store(db, create=False) as store:
        assert sorted(store.alert_episodes()) == ["burn_rate_jump", "pending_too_long:p",
                                                  "pending_too_long:q"]
        assert store.alert_episodes()["pending_too_long:p"] == {
            "rule": "pending_too_long", "opened_at": "2026-11-01T12:00:00.000000Z",
            "last_seen_at": "2026-11-01T13:00:00.000000Z"}


def test_dry_run_sends_nothing_and_records_nothing(tmp_path: Path) -> None:
    """--dry-run prints the body it would send and sends and records nothing."""
    db = tmp_path / "history.db"
    store_with(db, fleet_polls())
    with Hook() as hook:
        code, out, _ = run("--store", str(db), "--webhook", hook.url, "--dry-run")
        assert code == 10 and hook.bodies == []
    line = out.splitlines()[-1]
    assert line.startswith("dry run: would send {")
    assert json.loads(line.removeprefix("dry run: would send "))["breaches"][0]["key"] == \
        "burn_rate_jump"
    with Store(db, create=False) as store:
        assert store.alert_episodes() == {}


def test_webhook_5xx_then_success(tmp_path: Path) -> None:
    """A webhook answering 503 then 500 is retried; the third attempt records the episodes."""
    db = tmp_path / "history.db"
    store_with(db, fleet_polls())
    with Hook([503, 500]) as hook:
        code, _, _ = run("--store", str(db), "--webhook", hook.url)
        assert code == 10
        assert len(hook.bodies) == 3 and hook.bodies[0] == hook.bodies[2]
        assert hook.paths == ["/services/T0/SECRETPATH"] * 3
    with Store(db, create=False) as store:
        assert len(store.alert_episodes()) == 5


def test_webhook_failing_every_attempt_advances_nothing(tmp_path: Path) -> None:
    """A webhook failing all 3 attempts: exit 1, state unchanged, no URL secret shown."""
    db = tmp_path / "history.db"
    store_with(db, fleet_polls())
    with Hook([500, 502, 503, 500]) as hook:
        code, out, err = run("--store", str(db), "--webhook", hook.url)
        assert len(hook.bodies) == 3
    # the breaches are still printed, one line each, before the error
    assert code == 1 and [line.split(":")[0] for line in out.splitlines()] == [
        "burn_rate_jump", "new_cloud", "new_instance_type", "pending_too_long", "error_listed"]
    assert err == ("Error: webhook at 127.0.0.1: HTTP 503 after 3 attempts; the alert state is "
                   "unchanged, the next run sends again\n")
    assert "SECRETPATH" not in err
    with Store(db, create=False) as store:
        assert store.alert_episodes() == {}
    # a 4xx is final: one attempt
    with Hook([404]) as hook:
        code, _, err = run("--store", str(db), "--webhook", hook.url)
        assert len(hook.bodies) == 1
    assert code == 1 and "HTTP 404 after 1 attempt;" in err


def test_webhook_refused_connection(tmp_path: Path, sources: list[str]) -> None:
    """A refused connection is retried 3 times, then exit 1 with one Error line."""
    with Hook() as hook:
        url = hook.url
    code, _, err = run(*sources, "--webhook", url)  # the server is gone
    assert code == 1
    assert err.startswith("Error: webhook at 127.0.0.1: connection failed "
                          "(ConnectionRefusedError) after 3 attempts")


def test_a_second_check_on_the_same_store_exits_3(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that alerts takes the store file's own lock (the collector's): while another
    writer holds it, through a symlink too, the check waits its bound, then exits 3."""
    from shadeanalytics import cli
    from shadeanalytics.live.collect import collector_lock

    monkeypatch.setattr(cli, "CHECK_LOCK_WAIT_S", 0.2)
    db = tmp_path / "history.db"
    store_with(db, fleet_polls())
    link = tmp_path / "link.db"
    link.symlink_to(db)
    with Hook() as hook, collector_lock(db):
        code, out, err = run("--store", str(link), "--webhook", hook.url)
        assert hook.bodies == []
    assert (code, out) == (3, "")
    assert err == (f"Error: {link}: another check or collector holds the store's lock; "
                   "nothing sent\n")
    assert not (tmp_path / "history.db.check.lock").exists()


def test_a_check_waits_for_a_postgresql_collector_then_exits_3(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a PostgreSQL store the lock is the collector's advisory lock: held by a collector,
    a check that alerts waits its bound, then exits 3 naming the store without its password."""
    from pgserver import PASSWORD

    from shadeanalytics import cli
    from shadeanalytics._storeurl import redact
    from shadeanalytics.live.collect import collector_lock

    monkeypatch.setattr(cli, "CHECK_LOCK_WAIT_S", 0.2)
    store_with(pg_url, fleet_polls())
    with Hook() as hook, collector_lock(pg_url):
        code, out, err = run("--store", pg_url, "--webhook", hook.url)
        assert hook.bodies == []
    assert (code, out) == (3, "")
    assert err == (f"Error: {redact(pg_url)}: another check or collector holds the store's "
                   "lock; nothing sent\n")
    assert PASSWORD not in err


def test_webhook_that_never_answers_times_out() -> None:
    """A server that accepts the connection and never answers: each attempt ends at the
    timeout, three in all, then one clear error."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # never accepted: the kernel completes the handshake, nobody reads
    try:
        started = time.monotonic()
        with pytest.raises(notify.WebhookError) as caught:
            notify.send_webhook(f"http://127.0.0.1:{listener.getsockname()[1]}/hook",
                                {"text": "x"}, timeout=0.3, backoff_base=0.0)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert str(caught.value) == ("webhook at 127.0.0.1: timeout after 3 attempts; the alert "
                                 "state is unchanged, the next run sends again")
    assert 0.9 <= elapsed < 5.0


@pytest.mark.hardening
def test_concurrent_checks_send_one_alert(tmp_path: Path) -> None:
    """Four `check` processes started at once on one store: the webhook gets one alert; each
    run exits 10 (it checked) or 3 (another held the alert lock), never 1."""
    import subprocess
    import sys

    db = tmp_path / "history.db"
    store_with(db, fleet_polls())
    with Hook() as hook:
        runs = [subprocess.Popen([sys.executable, "-m", "shadeanalytics", "check", "--store",
                                  str(db), "--webhook", hook.url],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
        codes = [run.wait(timeout=120) for run in runs]
        for run in runs:
            assert run.stderr is not None
            run.stderr.close()
    assert set(codes) <= {10, 3} and 10 in codes, codes
    assert len(hook.bodies) == 1
    with Store(db, create=False) as store:
        assert len(store.alert_episodes()) == 5
