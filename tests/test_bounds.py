"""Every input bounded with a clear refusal, and text made safe for its medium (issue 21).

Budgets files, webhook URLs and answers, far dates, the FOCUS row count, key files, source
archives, export windows and free-text options: each attack gives a bounded run, one
``Error: ...`` line naming the file or key (never the value) and a documented exit code.
Names with a NUL, an ESC or Slack markup reach a terminal, a page, an SVG, a CSV file and a
webhook in a form each can hold. Slow runs and hostile servers are in the hardening tier.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import cli_env, envelope, make_instance

import shadeanalytics as sa
from shadeanalytics import config, load_budgets
from shadeanalytics._text import for_csv, for_page, for_slack, for_svg, for_terminal
from shadeanalytics.analytics import alerts
from shadeanalytics.analytics.billing import bill_fleet
from shadeanalytics.cli import main
from shadeanalytics.errors import DataWarning
from shadeanalytics.live import notify
from shadeanalytics.live.store import Store
from shadeanalytics.output import focus
from shadeanalytics.output.csvout import write_csv
from shadeanalytics.output.htmlreport import render_html
from shadeanalytics.testing.fakeapi import HostileServer

_T0, _T1 = "2026-11-20T00:00:00Z", "2026-11-20T03:00:00Z"
#: A NUL, an ESC with a terminal sequence, and Slack markup, in the names a fleet gets.
_HOSTILE = {
    "gpu_type": "A\x006000\x1b[2J",
    "name": "node\x00\x1b]0;pwned\x07",
    "cloud": "<!channel>\x1b[31m",
    "shade_instance_type": "<https://evil.example|ok>",
}


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _fleet_file(tmp_path: Path, **second: Any) -> Path:
    """Two polls: i-1 (hyperstack, A6000) at both; i-2 (``second`` fields) new at the second."""
    path = tmp_path / "fleet.jsonl"
    first = [make_instance("i-1", active_at=_T0)]
    docs = [
        envelope({"instances": first}, _T0, "/instances"),
        envelope(
            {"instances": [*first, make_instance("i-2", active_at=_T0, **second)]},
            _T1,
            "/instances",
        ),
    ]
    path.write_text("\n".join(json.dumps(d) for d in docs))
    return path


# -- one helper per medium ----------------------------------------------------------------------


def test_each_medium_gets_its_own_escaping() -> None:
    """Terminal: every control escaped; page, SVG, CSV: the same less tab/LF/CR; Slack: the
    terminal's escapes, then &, <, > as entities."""
    text = "a\x00b\x1b[2J\tc\nd\u202e<!channel>&"
    assert for_terminal(text) == "a\\x00b\\x1b[2J\\tc\\nd\\u202e<!channel>&"
    assert for_page(text) == "a\\x00b\\x1b[2J\tc\nd\\u202e<!channel>&"
    assert for_svg(text) == for_page(text) == for_csv(text)
    assert for_slack(text) == "a\\x00b\\x1b[2J\\tc\\nd\\u202e&lt;!channel&gt;&amp;"
    assert for_terminal(for_terminal(text)) == for_terminal(text)


# -- budgets files ------------------------------------------------------------------------------

_RULE = '[[budget]]\nname = "cap"\nmeasure = "hourly_usd"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            _RULE + "limit = 1" + "0" * 400 + "\n",
            "budget[0] ('cap'): key 'limit': missing or not a finite number below 1e15",
        ),
        (
            _RULE + "limit = inf\n",
            "budget[0] ('cap'): key 'limit': missing or not a finite number below 1e15",
        ),
        (
            _RULE + "limit = -1e16\n",
            "budget[0] ('cap'): key 'limit': missing or not a finite number below 1e15",
        ),
        (
            _RULE + "limit = 1\nwhere = {cloud = " + "[" * 50_000 + "]" * 50_000 + "}\n",
            "not valid TOML (arrays or tables nested too deeply)",
        ),
        (
            "".join(
                f'[[budget]]\nname = "r{i}"\nmeasure = "hourly_usd"\nlimit = 1\n'
                for i in range(alerts.MAX_BUDGETS + 1)
            ),
            "1,001 [[budget]] rules, more than the 1,000 a budgets file may hold",
        ),
        (
            '[[budget]]\nname = "' + "n" * 201 + '"\nmeasure = "hourly_usd"\nlimit = 1\n',
            "budget[0]: key 'name': longer than 200 characters",
        ),
        (
            _RULE + 'limit = 1\nwhere = {cloud = "' + "c" * 201 + '"}\n',
            "budget[0] ('cap'): key 'where.cloud': longer than 200 characters",
        ),
        (
            "# " + "x" * config.MAX_BUDGETS_BYTES + "\n",
            "cannot read the budgets file (larger than the 1,048,576-byte limit for a "
            "budgets file; refused)",
        ),
    ],
)
def test_budgets_files_out_of_bounds_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    """A huge or infinite limit, a 50,000-deep array, 1,001 rules, a long name or where
    value, a file over 1 MiB: one BudgetFileError naming the file, rule and key."""
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    with pytest.raises(alerts.BudgetFileError) as caught:
        load_budgets(path)
    assert str(caught.value) == f"{path}: {problem}"
    assert "0" * 20 not in str(caught.value)


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
def test_budgets_that_are_not_regular_files_are_usage_errors(tmp_path: Path, kind: str) -> None:
    """``check --budgets /dev/zero`` or a FIFO with no writer: exit 2 at once, unread."""
    path = Path("/dev/zero") if kind == "/dev/zero" else tmp_path / "pipe.toml"
    if kind == "fifo":
        os.mkfifo(path)
    what = "a character device" if kind == "/dev/zero" else "a FIFO"
    started = time.monotonic()
    code, out, err = _run("check", str(_fleet_file(tmp_path)), "--budgets", str(path))
    assert time.monotonic() - started < 5
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == (
        f"Error: {path}: cannot read the budgets file (not a regular file ({what}); refused)"
    )


def test_a_where_that_matches_nothing_is_warned(tmp_path: Path) -> None:
    """A where value no instance ever had cannot breach: one warning naming the budget and
    key; a where that matches, and the label of a missing value, warn of nothing."""
    tables = sa.read(_fleet_file(tmp_path))
    budgets = [
        alerts.Budget("typo", "hourly_usd", 1.0, {"cloud": "hyperstak"}),
        alerts.Budget("ok", "hourly_usd", 1.0, {"cloud": "hyperstack"}),
        alerts.Budget("standalone", "hourly_usd", 1.0, {"cluster_id": "(standalone)"}),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = alerts.evaluate(tables, budgets=budgets, as_of=_T1, builtin=False)
    assert [str(w.message) for w in caught] == [
        "budget 'typo': where.cloud matches no instance in the data, so the rule cannot "
        "breach (a typo?)"
    ]
    assert caught[0].category is DataWarning
    # two instances at $2.10/h: 4.20 > 1 for both rules that match
    assert [(b.key, b.value) for b in found] == [("budget:ok", 4.2), ("budget:standalone", 4.2)]


# -- webhooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "http://[::1/x",
            "the webhook URL cannot be parsed (e.g. an unclosed '[' or a port that "
            "is not a number)",
        ),
        (
            "http://hooks.example:99999/T0/SECRET",
            "the webhook URL cannot be parsed (e.g. an "
            "unclosed '[' or a port that is not a number)",
        ),
        ("ftp://hooks.example/T0/SECRET", "the webhook must be an http:// or https:// URL"),
        ("http:///T0/SECRET", "the webhook URL has no host"),
    ],
)
def test_a_bad_webhook_url_is_a_usage_error_before_anything_runs(
    tmp_path: Path, url: str, problem: str
) -> None:
    """Exit 2 before the sources are read (a missing one is not even noticed); the message
    names neither the URL nor its path."""
    code, out, err = _run("check", str(tmp_path / "missing.json"), "--webhook", url)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == (f"Error: --webhook (or {config.WEBHOOK_URL_ENV}): {problem}")
    assert "SECRET" not in err and "Traceback" not in err


def test_a_long_webhook_url_or_billing_account_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Free text options have length caps: 2,048 characters for a URL, 200 for a name."""
    code, _, _ = _run(
        "check", str(tmp_path / "x.json"), "--webhook", "https://hooks.example/" + "s" * 2048
    )
    err = capsys.readouterr().err  # argparse's own errors
    assert code == 2
    assert err.splitlines()[-1].endswith("argument --webhook: expected 1 to 2,048 characters")
    code, _, _ = _run(
        "export",
        str(tmp_path / "x.json"),
        "--format",
        "focus",
        "--out",
        str(tmp_path / "out"),
        "--billing-account",
        "b" * 100_000,
    )
    err = capsys.readouterr().err
    assert code == 2 and "bbbb" not in err
    assert err.splitlines()[-1].endswith("argument --billing-account: expected 1 to 200 characters")
    assert not (tmp_path / "out").exists()


def test_slack_markup_from_the_fleet_reaches_the_webhook_escaped(tmp_path: Path) -> None:
    """A new cloud ``<!channel>`` and instance type ``<https://...|ok>``: the webhook's text
    holds them as &lt;...&gt; (no ping, no link), control characters escaped; the check
    lines print them escaped for the terminal."""
    tables = sa.read(
        _fleet_file(
            tmp_path, cloud=_HOSTILE["cloud"], shade_instance_type=_HOSTILE["shade_instance_type"]
        )
    )
    found = alerts.evaluate(tables, as_of=_T1)
    body = alerts.payload(found, [], bill_fleet(tables, as_of=_T1).as_of)
    assert body["text"].splitlines() == [
        "shadeanalytics: 2 new breaches as of 2026-11-20T03:00:00Z",
        "- new_cloud: new cloud '&lt;!channel&gt;\\x1b[31m' in the fleet (in no snapshot up to "
        "2026-11-20T00:00:00Z)",
        "- new_instance_type: new instance type '&lt;https://evil.example|ok&gt;' in the fleet "
        "(in no snapshot up to 2026-11-20T00:00:00Z)",
    ]
    assert "<" not in body["text"] and "\x1b" not in body["text"]
    code, out, _ = _run("check", str(tmp_path / "fleet.jsonl"))
    assert code == 10
    assert "\x1b" not in out
    assert out.splitlines()[0] == (
        "new_cloud: new cloud '<!channel>\\x1b[31m' in the fleet "
        "(in no snapshot up to 2026-11-20T00:00:00Z)"
    )


# -- control characters in the page, its charts and the CSV files -------------------------------


def test_controls_never_reach_a_page_or_a_csv_file_raw(tmp_path: Path) -> None:
    """The page's text and a CSV cell hold a NUL and an ESC escaped (``\\x00``), a tab as
    it is; a leading ESC escaped still gets no formula escape (it is text)."""
    frame = pd.DataFrame({"gpu_type": [_HOSTILE["gpu_type"], "\x1b=1+1\tx"], "instances": [1, 2]})
    page = render_html({"gpu_inventory": frame}, as_of=pd.Timestamp(_T1))
    assert "\x00" not in page and "\x1b" not in page
    assert "A\\x006000\\x1b[2J" in page
    path = write_csv(frame, tmp_path / "t.csv")
    assert path.read_bytes() == (b"gpu_type,instances\nA\\x006000\\x1b[2J,1\n\\x1b=1+1\tx,2\n")


def test_controls_in_names_are_escaped_in_summary_lines(tmp_path: Path) -> None:
    """``summary --by gpu_type``: the GPU type's NUL and ESC printed escaped."""
    fleet = _fleet_file(tmp_path, gpu_type=_HOSTILE["gpu_type"])
    code, text, _ = _run("summary", str(fleet), "--by", "gpu_type")
    assert code == 0 and "\x00" not in text and "\x1b" not in text
    assert "A\\x006000\\x1b[2J" in text


@pytest.mark.hardening
def test_controls_in_names_never_reach_the_report_raw(tmp_path: Path) -> None:
    """A NUL and an ESC in a GPU type and a name: index.html and every CSV hold them escaped,
    never raw; every inline SVG chart of the page parses as XML and shows the escaped text."""
    fleet = _fleet_file(tmp_path, gpu_type=_HOSTILE["gpu_type"], name=_HOSTILE["name"])
    out = tmp_path / "report"
    code, _, err = _run("report", str(fleet), "--out", str(out))
    assert code == 0, err
    for path in out.rglob("*"):  # Parquet is binary, typed data: no text medium
        if path.is_file() and path.suffix not in (".png", ".parquet"):
            data = path.read_bytes()
            assert b"\x00" not in data and b"\x1b" not in data and b"\x07" not in data, path
    page = (out / "index.html").read_text()
    assert "A\\x006000\\x1b[2J" in page
    with (out / "instances.csv").open(newline="") as file:
        rows = {row["instance_id"]: row for row in csv.DictReader(file)}
    assert rows["i-2"]["name"] == "node\\x00\\x1b]0;pwned\\x07"
    assert rows["i-2"]["gpu_type"] == "A\\x006000\\x1b[2J"
    svgs = [
        base64.b64decode(m).decode("utf-8")
        for m in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)
    ]
    assert svgs
    for svg in svgs:
        ET.fromstring(svg)  # raises on a NUL or ESC
    assert any("A\\x006000\\x1b[2J" in svg for svg in svgs)


# -- far dates and the FOCUS row count ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--as-of", "2262-04-01T00:00:01Z", "--out", "{out}"],
        [
            "export",
            "--format",
            "focus",
            "--as-of",
            "2262-04-10T00:00:00Z",
            "--granularity",
            "hourly",
            "--out",
            "{out}",
        ],
    ],
)
def test_far_dates_are_refused_at_the_argument(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """As-of times from 2200-01-01 on: exit 2 naming the maximum, nothing written."""
    out = tmp_path / "out"
    code, stdout, _ = _run(
        argv[0], str(_fleet_file(tmp_path)), *[a.format(out=out) for a in argv[1:]]
    )
    err = capsys.readouterr().err  # argparse's own errors
    assert (code, stdout, out.exists()) == (2, "", False)
    assert err.splitlines()[-1].endswith(
        "argument --as-of: the time must be from 1970-01-01T00:00:00Z up to (not including) "
        "2200-01-01T00:00:00Z"
    )


def test_an_as_of_far_past_the_data_is_refused(tmp_path: Path) -> None:
    """``now`` set 6 years after the newest snapshot: exit 2 naming the 1,830-day bound."""
    os.environ[config.NOW_ENV] = "2032-11-20T00:00:00Z"
    try:
        code, _, err = _run("summary", str(_fleet_file(tmp_path)), "--as-of", "now")
    finally:
        del os.environ[config.NOW_ENV]
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: --as-of: more than 1,830 days (5 years) after the "
        "newest snapshot (2026-11-20T03:00:00Z); nothing written"
    )


def test_focus_row_bound_counts_periods_before_any_row_is_built(tmp_path: Path) -> None:
    """Two instances billed 00:00-03:00: 3 hourly periods each (6 rows), 1 daily each; no row
    limit any more: the export streams them, the bound sizes its progress bar."""
    billed = bill_fleet(sa.read(_fleet_file(tmp_path)), as_of=_T1)
    assert focus.focus_row_bound(billed, "hourly") == 6
    assert focus.focus_row_bound(billed, "daily") == 2
    assert len(focus.focus_rows(billed, granularity="hourly")) == 6
    assert focus.write_focus(billed, tmp_path / "focus", keep_rows=False).row_count == 6


# -- key files, archives, export windows --------------------------------------------------------


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    """Mode 0644: a DataWarning naming the file and mode, never the key; 0600: none."""
    path = tmp_path / "key"
    path.write_text("sk-secret-key-771\n")
    path.chmod(0o644)
    with pytest.warns(DataWarning) as caught:
        assert config.api_key(key_file=path)[0] == "sk-secret-key-771"
    assert [str(w.message) for w in caught] == [
        f"{path}: the API key file holds the API key and other users may read it (mode "
        f"0644); run chmod 600 {path}"
    ]
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config.api_key(key_file=path)


def test_export_since_after_the_last_poll_keeps_the_earlier_export(tmp_path: Path) -> None:
    """``export --since`` after the last poll: exit 1 saying so; the earlier export stays."""
    db = tmp_path / "history.db"
    with Store(db) as store:
        store.record_poll(
            _T0, clusters=None, instances={"instances": [make_instance()]}, instance_types=None
        )
    out = tmp_path / "parquet"
    assert _run("export", "--store", str(db), "--out", str(out))[0] == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    assert before
    code, stdout, err = _run(
        "export", "--store", str(db), "--out", str(out), "--since", "2026-12-01T00:00:00Z"
    )
    assert (code, stdout) == (1, "")
    assert err == (
        f"Error: {db}: no poll between since and until: nothing to export "
        "(out_dir is left as it was)\n"
    )
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet")) == before


# -- the hardening tier: hostile servers and big files ------------------------------------------


@pytest.mark.hardening
def test_a_webhook_that_trickles_its_answer_ends_at_the_deadline() -> None:
    """Headers one byte a second, never ending: the send ends at its 2 s deadline (each
    byte would reset a socket timeout), one attempt, a clear error naming the host only."""
    with HostileServer({"/T0/SECRET": HostileServer.trickle_headers(0.2)}) as server:
        started = time.monotonic()
        with pytest.raises(notify.WebhookError) as caught:
            notify.send_webhook(f"{server.origin}/T0/SECRET", {"text": "x"}, deadline=2.0)
        took = time.monotonic() - started
    assert 1.9 <= took < 8, took  # the trickle never ends: only the deadline stops it
    assert str(caught.value) == (
        "webhook at 127.0.0.1: no complete answer within the 2 s "
        "deadline after 1 attempt; the alert state is unchanged, the "
        "next run sends again"
    )


@pytest.mark.hardening
def test_check_with_a_trickling_webhook_prints_breaches_and_ends(tmp_path: Path) -> None:
    """``check`` as cron runs it: ends within the 30 s webhook deadline (not 150 s), prints
    its breach lines, then one error line; exit 1, the alert lock released."""
    fleet = _fleet_file(tmp_path, cloud="nebius")
    with HostileServer({"/T0/SECRET": HostileServer.trickle_headers(0.5)}) as server:
        started = time.monotonic()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "shadeanalytics",
                "check",
                str(fleet),
                "--webhook",
                f"{server.origin}/T0/SECRET",
            ],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=90,
        )
        took = time.monotonic() - started
    assert took < notify.WEBHOOK_DEADLINE_S + 15, took
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        "new_cloud: new cloud 'nebius' in the fleet (in no snapshot up to 2026-11-20T00:00:00Z)"
    ]
    assert run.stderr.splitlines()[-1] == (
        "Error: webhook at 127.0.0.1: no complete answer within the 30 s deadline after 1 "
        "attempt; the alert state is unchanged, the next run sends again"
    )
    print(f"trickling webhook: check exit 1 after {took:.1f} s")


@pytest.mark.hardening
def test_a_thousand_budget_rules_check_in_bounded_time(tmp_path: Path) -> None:
    """The most rules a file may hold, every one with its own where: checked in well under
    a minute (one cost breakdown per key set, not per rule)."""
    keys = ["cloud", "region", "gpu_type", "status"]
    path = tmp_path / "budgets.toml"
    path.write_text(
        "".join(
            f'[[budget]]\nname = "r{i}"\nmeasure = "month_forecast_usd"\nlimit = {i}\n'
            f'where = {{{keys[i % 4]} = "v{i}"}}\n'
            for i in range(alerts.MAX_BUDGETS)
        )
    )
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "shadeanalytics",
            "check",
            str(_fleet_file(tmp_path)),
            "--budgets",
            str(path),
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stderr.count("Warning: budget 'r") == alerts.MAX_BUDGETS
    assert took < 60, took
    print(f"1,000 budget rules: check in {took:.1f} s")


@pytest.mark.hardening
def test_a_gzip_source_bomb_names_the_decompressed_cap(tmp_path: Path) -> None:
    """2 MB of gzip expanding past 2 GiB: exit 1 naming the decompressed-size limit (not
    "invalid JSON"), in bounded memory (about the cap, not three times it)."""
    import zlib

    path = tmp_path / "bomb.json.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    with path.open("wb") as file:
        file.write(packer.compress(b'{"instances": ['))
        for _ in range(2100):
            file.write(packer.compress(block))
        file.write(packer.flush())
    peak = tmp_path / "peak"
    probe = (
        "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
        "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN)"
        ".ru_maxrss)); sys.exit(code)"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(peak),
            sys.executable,
            "-m",
            "shadeanalytics",
            "summary",
            str(path),
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1] == (
        f"Error: {path}: expands to more than 2,147,483,648 bytes, the decompressed-size "
        "limit of a source; refused"
    )
    peak_mib = int(peak.read_text()) / 1024
    assert peak_mib < 2600, peak_mib
    print(f"gzip source bomb: peak RSS {peak_mib:.0f} MiB")
