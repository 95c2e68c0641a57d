"""The ``shadeanalytics`` command line: a thin layer over the library.

Exit codes: 0 success, 1 error (one ``Error: ...`` line on stderr, no traceback), 2 usage error,
3 another collector or check holds the store's lock (``collect``, ``check``), 10 a rule is
breached (``check``), 65 the poll was recorded but some records were refused and quarantined
(``collect``), 74 the store fails SQLite's integrity check (``collect``: nothing written), 75 the
API is temporarily unavailable (``collect``: rate limited, 5xx, timeouts; the failed poll is
recorded).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from . import config
from ._common import set_progress, usd
from ._storeurl import redact, target
from ._version import __version__
from .errors import DataWarning, ShadeanalyticsError, StoreURLError, printable
from .ingest.load import gc_paused, read
from .ingest.schema import data_dictionary
from .ingest.tables import Tables
from .output.focus import FOCUS_VERSIONS
from .output.report import (
    SUMMARY_DIMENSIONS,
    resolve_as_of,
    summary_text,
    write_report,
)

if TYPE_CHECKING:
    from .analytics.alerts import Breach, Budget

__all__ = ["EXIT_BREACH", "EXIT_DAMAGED", "EXIT_ERROR", "EXIT_LOCKED", "EXIT_OK",
           "EXIT_REFUSED", "EXIT_UNAVAILABLE", "EXIT_USAGE", "exit_code_for", "main"]

# Exit codes belong to the command line (the library raises typed errors):
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
#: Another collector (or check) holds the store's lock; this run wrote nothing.
EXIT_LOCKED = 3
#: ``check``: at least one budget or built-in rule is breached.
EXIT_BREACH = 10
#: ``collect``: the poll was recorded, but records the record spec refuses were quarantined
#: (not stored; ``Store.quarantine``): sysexits' EX_DATAERR.
EXIT_REFUSED = 65
#: ``collect``: the store fails SQLite's integrity check; nothing was written (EX_IOERR).
EXIT_DAMAGED = 74
#: The API is temporarily unavailable (rate limited, 5xx, network, timeout, the deadline):
#: sysexits' EX_TEMPFAIL, "try again later".
EXIT_UNAVAILABLE = 75


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error ``collect`` raised: :data:`EXIT_LOCKED` for
    ``LockedError``; :data:`EXIT_DAMAGED` for ``DamagedStoreError``; :data:`EXIT_UNAVAILABLE`
    for ``collect.TEMPORARY_ERRORS``;
    :data:`EXIT_ERROR` for everything else (a bad key, a malformed response, the store)."""
    from .errors import DamagedStoreError, LockedError
    from .live.collect import TEMPORARY_ERRORS

    if isinstance(exc, LockedError):
        return EXIT_LOCKED
    if isinstance(exc, DamagedStoreError):
        return EXIT_DAMAGED
    if isinstance(exc, TEMPORARY_ERRORS):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


class _UsageError(Exception):
    """Arguments that parse but do not fit together."""


class _FileError(ShadeanalyticsError):
    """A file named on the command line could not be read."""


class _Exit(Exception):
    """An error to report with a specific exit code."""

    def __init__(self, code: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.code = code


def _store_value(text: str) -> str:
    """A ``--store`` (or ``store copy``'s SRC and DST): not empty (an empty name would be the
    working directory); its scheme is checked where it is opened."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the store name is empty: give a path, "
                                         "sqlite:///PATH or postgresql://USER@HOST/DB")
    return text


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="JSON/JSONL(.gz) files, folders or globs of Shadeform responses")
    parser.add_argument("--store", metavar="PATH", type=_store_value,
                        help="read the history store written by `shadeanalytics collect` "
                             "instead of files (a path, sqlite:///PATH or postgresql://...)")
    parser.add_argument("--errors", choices=("raise", "skip"), default="raise",
                        help="on a record that cannot load: stop (raise, default) or skip it "
                             "with a warning")


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (one shows on standard error when it is a "
                             "terminal and loading, reading the store, exporting or fetching "
                             "instance details takes more than about 2 seconds)")


#: The instants a command accepts: well inside the span of the tables' nanosecond arithmetic
#: (which ends on 2262-04-11), so that every month, week and forecast past one still fits.
_EARLIEST = pd.Timestamp("1970-01-01T00:00:00Z")
_LATEST = pd.Timestamp("2200-01-01T00:00:00Z")
#: How far past the newest snapshot an as-of time may be: a bill runs hour by hour up to it,
#: so a far one costs time and memory for figures no one asked for.
_MAX_AHEAD_DAYS = 1830
#: The largest API key file read (a key is a few dozen bytes).


def _instant_value(text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise argparse.ArgumentTypeError("expected an ISO-8601 time with a zone, e.g. "
                                         "2026-11-20T00:00:00Z")
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs a zone, e.g. 2026-11-20T00:00:00Z")
    stamp = stamp.tz_convert("UTC")
    if not _EARLIEST <= stamp < _LATEST:
        raise argparse.ArgumentTypeError(
            "the time must be from 1970-01-01T00:00:00Z up to (not including) "
            "2200-01-01T00:00:00Z")
    return stamp


def _as_of_value(text: str) -> str | pd.Timestamp:
    return text if text in ("now", "latest") else _instant_value(text)


def _resolve_as_of(value: str | pd.Timestamp | None, tables: Tables) -> pd.Timestamp:
    """``--as-of`` by the one rule (``asof.resolve_as_of``); undated sources: a usage error."""
    from .analytics.asof import UndatedError, newest_poll

    try:
        as_of = resolve_as_of(value, tables)
    except UndatedError as exc:
        raise _UsageError(str(exc).replace("pass as_of=... (", "pass ").rstrip(")")) from None
    # refused past the accepted span (`now` and `latest` come from a clock or the data) or
    # more than _MAX_AHEAD_DAYS after the newest snapshot (the as_of rule's own newest poll)
    if not _EARLIEST <= as_of < _LATEST:
        raise _UsageError("--as-of: the time must be from 1970-01-01T00:00:00Z up to (not "
                          "including) 2200-01-01T00:00:00Z")
    newest = newest_poll(tables)
    if newest is not None and as_of - newest > pd.Timedelta(days=_MAX_AHEAD_DAYS):
        raise _UsageError(f"--as-of: more than {_MAX_AHEAD_DAYS:,} days (5 years) after the "
                          f"newest snapshot ({newest.strftime('%Y-%m-%dT%H:%M:%SZ')}); "
                          "nothing written")
    return as_of


def _add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=_as_of_value, default=None, metavar="TIME",
                        help="the instant costs are computed at: an ISO-8601 time with a zone, "
                             "'now', or 'latest' (default: the settings' as_of, else the "
                             "newest successful poll in the sources; undated sources need a "
                             "time)")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="the settings file (default: SHADEANALYTICS_CONFIG, else "
                             "shadeanalytics.toml in the working directory, else in "
                             "~/.config/shadeanalytics/)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a positive number of seconds")
    return value


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError("expected a number of hours, 0 or more")
    return value


#: The longest free text an option takes (characters): a name, not a document.
_MAX_NAME = 200
#: The longest URL an option takes.
_MAX_URL = 2048


def _text_value(limit: int) -> functools.partial[str]:
    """An argparse type: text of 1 to ``limit`` characters without control characters."""
    return functools.partial(_bounded_text, limit=limit)


def _bounded_text(text: str, *, limit: int) -> str:
    if not text or len(text) > limit:
        raise argparse.ArgumentTypeError(f"expected 1 to {limit:,} characters")
    if not text.isprintable():
        raise argparse.ArgumentTypeError("expected text without control characters")
    return text


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("expected a whole number, 0 or more")
    return int(text)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str) -> float:
    """``--every``: a number with an optional unit (``ms``, ``s``, ``m``, ``h``, ``d``;
    seconds without one), at least 1 second."""
    number = text.strip().rstrip("smhd")
    unit = text.strip()[len(number):]
    try:
        value = float(number) * _UNITS[unit or "s"]
    except (ValueError, KeyError):
        value = -1.0
    if not 1 <= value <= 7 * 86400:
        raise argparse.ArgumentTypeError("expected a duration from 1s to 7d, e.g. 30s, 5m, 1h")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadeanalytics",
        description="Shadeform GPU fleet analytics: reports from API responses.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = commands.add_parser(
        "report", help="write a CSV report folder from Shadeform responses or the store",
        description="Load Shadeform responses (files, or the history store) and write a report "
                    "folder of CSV files.")
    _add_source_options(report)
    report.add_argument("--out", metavar="DIR",
                        help="report folder to write (default: the settings' report_dir)")
    report.add_argument("--include-network", action="store_true",
                        help="also write the ip, ssh_user and ssh_port columns")
    report.add_argument("--force", action="store_true",
                        help="write into --out even when it holds files an earlier report did "
                             "not write (they are left alone; the earlier report's files are "
                             "always replaced)")
    report.add_argument("--no-charts", action="store_true",
                        help="no PNG charts, and an index.html without pictures "
                             "(matplotlib is not loaded)")
    report.add_argument("--no-html", action="store_true",
                        help="write no index.html (the page of the report's tables and charts)")
    report.add_argument("--all-versions-csv", action="store_true",
                        help="write every version row of clusters, instances and instance "
                             "types as versions/<table>.csv instead of .parquet (the top-level "
                             "CSV files hold each one's newest row)")
    report.add_argument("--budgets", metavar="FILE",
                        help="a TOML file of [[budget]] rules (as for `check`): budgets.csv and "
                             "the page show each budget's measure beside its limit")
    _add_as_of(report)
    _add_config(report)
    _add_quiet(report)
    report.set_defaults(run=_report)

    summary = commands.add_parser(
        "summary", help="print the fleet at a glance: burn rate, GPUs, top costs, findings",
        description="Print the fleet at a glance: burn rate, month projection, GPUs by type, "
                    "top costs and the number of quality findings.")
    _add_source_options(summary)
    summary.add_argument("--by", default="cloud", choices=SUMMARY_DIMENSIONS,
                         help="dimension of the top-costs table (default: cloud)")
    summary.add_argument("--top", type=_positive_int, default=10, metavar="N",
                         help="rows of the top-costs table (default: 10)")
    _add_as_of(summary)
    _add_config(summary)
    _add_quiet(summary)
    summary.set_defaults(run=_summary)

    collect = commands.add_parser(
        "collect", help="poll the Shadeform API once into the history store (for cron)",
        description="Poll GET /clusters, /instances and /instances/types once (with /volumes, "
                    "/volumes/types, instance details and, daily, SSH keys, templates and "
                    "cluster types) and record the poll in the history store. The API key "
                    "comes from SHADEFORM_API_KEY (or --api-key-file). Prints one line per "
                    "run. Exit codes: 0 ok, 1 error, 3 another collector or check holds the "
                    "store's lock (nothing written), 65 records refused by the record spec were "
                    "quarantined (the rest of the poll is recorded), 74 the store fails "
                    "SQLite's integrity check (nothing written), 75 the API is temporarily "
                    "unavailable (the failed poll is recorded). With --every, one process polls "
                    "on a schedule until SIGTERM or Ctrl-C (exit 0), printing one line per poll.")
    collect.add_argument("--store", metavar="PATH", type=_store_value,
                         help="the history store (an SQLite file, or postgresql://user@host/db"
                              "; created when missing; default: the settings' store)")
    collect.add_argument("--base-url", metavar="URL", type=_text_value(_MAX_URL),
                         help="API base URL (default: SHADEFORM_BASE_URL or "
                              "https://api.shadeform.ai/v1)")
    collect.add_argument("--api-key-file", metavar="PATH",
                         help="read the API key from this file instead of SHADEFORM_API_KEY")
    collect.add_argument("--deadline", type=_positive, default=240.0, metavar="SECONDS",
                         help="give up the run after this long (default: 240, below a 5-minute "
                              "cron interval)")
    collect.add_argument("--info-max-age", type=_hours, default=None, metavar="HOURS",
                         help="fetch an instance's details (/instances/{id}/info) again when "
                              "they are older than this (default: 24; new instances at once)")
    collect.add_argument("--info-budget", type=_count, default=None, metavar="N",
                         help="at most this many detail requests a run, oldest first "
                              "(default: 50; 0: none)")
    collect.add_argument("--verbose", action="store_true",
                         help="log every request (method, path, status, time) to stderr")
    collect.add_argument("--every", type=_duration, metavar="DURATION",
                         help="keep polling: at every multiple of DURATION (30s, 5m, 1h) plus "
                              "a random jitter of up to a tenth of it (at most 30 s), until "
                              "SIGTERM or Ctrl-C; SIGHUP re-reads the settings")
    collect.add_argument("--max-polls", type=_positive_int, metavar="N",
                         help="with --every: stop after N polls (exit code of the last one)")
    collect.add_argument("--log-format", choices=("text", "json"), default="text",
                         help="with --every: one line per poll as text (default) or a JSON "
                              "object")
    _add_config(collect)
    _add_quiet(collect)
    collect.set_defaults(run=_collect)

    export = commands.add_parser(
        "export", help="write the history store as Parquet, or the bill as FOCUS cost data",
        description="--format parquet: write the history store as Parquet partitioned by "
                    "day, for DuckDB, Spark and Trino. --format focus: write the FOCUS 1.3 "
                    "(or 1.2) cost and usage dataset (one row per billed resource per hour "
                    "or day) as CSV and Parquet, for FinOps tools. Both need the parquet "
                    "extra: pip "
                    "install 'shadeanalytics[parquet]'.")
    _add_source_options(export)
    export.add_argument("--format", choices=("parquet", "focus"), default="parquet",
                        help="parquet (the store's tables; default) or focus (cost data)")
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    export.add_argument("--since", type=_instant_value, metavar="TIME",
                        help="parquet: first poll time to export (ISO-8601 with a zone; "
                             "inclusive)")
    export.add_argument("--until", type=_instant_value, metavar="TIME",
                        help="parquet: last poll time to export (ISO-8601 with a zone; "
                             "inclusive)")
    export.add_argument("--include-network", action="store_true",
                        help="parquet: also write the ip, ssh_user and ssh_port columns")
    _add_config(export)
    export.add_argument("--as-of", type=_as_of_value, default=None, metavar="TIME",
                        help="focus: the instant the bill is made at: an ISO-8601 time with a "
                             "zone, 'now', or 'latest' (default: the newest snapshot)")
    export.add_argument("--granularity", choices=("hourly", "daily"), default=None,
                        help="focus: the length of a charge period (default: hourly)")
    export.add_argument("--billing-account", default=None, metavar="NAME",
                        type=_text_value(_MAX_NAME),
                        help="focus: BillingAccountId and BillingAccountName, at most 200 "
                             "characters (default: shadeform)")
    export.add_argument("--focus-version", choices=FOCUS_VERSIONS, default=None,
                        help=f"focus: the FOCUS version of the columns (default: "
                             f"{FOCUS_VERSIONS[-1]}, the newest)")
    _add_quiet(export)
    export.set_defaults(run=_export)

    check = commands.add_parser(
        "check", help="check budgets and the built-in alert rules (for cron and CI)",
        description="Check the [[budget]] rules of a TOML file and the built-in rules (burn "
                    "rate up 50 % on its 7-day mean, a new cloud or instance type, an instance "
                    "pending for twice its boot estimate, one in error still listed, records "
                    "quarantined by the store's newest poll or set aside when reading it) at "
                    "--as-of. Prints one line per breach. Exit codes: 0 no breach, 10 a "
                    "breach, 1 error (e.g. the webhook failed every attempt; no alert state "
                    "recorded), 2 usage error (e.g. a malformed budgets file), 3 another check "
                    "or collector holds the store's lock.")
    _add_source_options(check)
    check.add_argument("--budgets", metavar="FILE", help="a TOML file of [[budget]] rules")
    _add_as_of(check)
    check.add_argument("--webhook", metavar="URL", type=_text_value(_MAX_URL),
                       help="POST new breaches here as JSON (Slack-compatible); default: "
                            "SHADEANALYTICS_WEBHOOK_URL, else the settings' webhook")
    check.add_argument("--notify-clear", action="store_true",
                       help="also send a breach once when it clears (needs --store)")
    check.add_argument("--dry-run", action="store_true",
                       help="print what would be sent; send nothing and record nothing")
    _add_config(check)
    _add_quiet(check)
    check.set_defaults(run=_check)

    store = commands.add_parser(
        "store", help="manage a history store (copy it into another backend)",
        description="Manage a history store: an SQLite file (PATH or sqlite:///PATH) or a "
                    "PostgreSQL database (postgresql://user@host:5432/db).")
    store_commands = store.add_subparsers(dest="store_command", metavar="COMMAND",
                                          required=True)
    copy = store_commands.add_parser(
        "copy", help="copy every poll and version of SRC into DST (resumable, verified)",
        description="Copy every poll, version, failed request, quarantined record, poll "
                    "warning and open alert episode of the store SRC into DST (created when "
                    "missing), in one transaction: SQLite into PostgreSQL, or back. Run it "
                    "again to copy what SRC recorded since (nothing is copied twice). Then "
                    "prints both stores' counts and checksum, which must agree (else exit 1). "
                    "Holds DST's collector lock meanwhile (exit 3 when a collector runs).")
    copy.add_argument("src", metavar="SRC", type=_store_value,
                      help="the store to copy from (not changed)")
    copy.add_argument("dst", metavar="DST", type=_store_value, help="the store to copy into")
    copy.set_defaults(run=_store_copy)

    columns = commands.add_parser(
        "columns", help="print the data dictionary (every table's columns) as Markdown",
        description="Print the data dictionary: every column's dtype, unit, source and meaning.")
    columns.set_defaults(run=_columns)

    settings = commands.add_parser(
        "config", help="print the effective settings and where each came from",
        description="Print every setting (flags override the environment, the environment "
                    "overrides the settings file) and where it came from; secrets (the API "
                    "key, the webhook) only as 'set (from ...)'.")
    _add_config(settings)
    settings.set_defaults(run=_config)

    demo = commands.add_parser(
        "demo", help="see the live flow in a minute: a fake API, a collector, a report",
        description="Start the fake Shadeform API on 127.0.0.1 with a fleet whose clock runs "
                    "fast (an hour a second by default), collect it into a store every "
                    "second, then check the alert rules and write a report and its page. "
                    "Everything goes into DIR (created; nothing outside it). Ctrl-C stops it.")
    demo.add_argument("dir", metavar="DIR", nargs="?", default="shadeanalytics-demo",
                      help="the folder to write (default: ./shadeanalytics-demo)")
    demo.add_argument("--polls", type=_positive_int, default=30, metavar="N",
                      help="polls before the report (default: 30: 30 hours of the fleet)")
    demo.add_argument("--speed", type=_positive, default=3600.0, metavar="X",
                      help="fleet seconds per real second (default: 3600, an hour a second)")
    demo.add_argument("--every", type=_duration, default=1.0, metavar="DURATION",
                      help="real time between polls (default: 1s)")
    demo.add_argument("--no-charts", action="store_true", help="a report without charts")
    demo.set_defaults(run=_demo)

    fake = commands.add_parser(
        "fake-api", help="serve the fake Shadeform API on 127.0.0.1 until stopped",
        description="Serve the demo fleet on 127.0.0.1 on a free port (its clock running "
                    "--speed times faster than the wall clock) until Ctrl-C or SIGTERM; print "
                    "its URL, its key and the SHADEANALYTICS_CLOCK a collector needs to date "
                    "its polls.")
    fake.add_argument("--key", default="demo-key", help="the API key it accepts")
    fake.add_argument("--speed", type=_positive, default=60.0, metavar="X",
                      help="fleet seconds per real second (default: 60, an hour a minute)")
    fake.set_defaults(run=_fake_api)
    for command in commands.choices.values():  # a usage error shows its own command's usage
        command.set_defaults(parser=command)
    return parser


def _tables(args: argparse.Namespace, *, settled: bool = False,
            summed: bool = False, report: bool = False) -> Tables:
    """The SOURCE files or the store; ``settled``: a store read without the rows of the
    instances whose bill it keeps (``Store.read_settled``: for a bill at its newest poll);
    ``summed``: with their sums instead of their bill where the store keeps them
    (``Store.read_summed``: for the summary); ``report``: with the version and timeline
    rows the store keeps of those instances (``Store.read_report``: for a report)."""
    if bool(args.sources) == bool(args.store):
        raise _UsageError("give SOURCE files or --store PATH (one of the two)")
    if args.store:
        from .live.store import Store

        with Store(args.store, create=False) as store:
            if summed and (tables := store.read_summed()) is not None:
                return tables
            if report:
                return store.read_report()
            return store.read_settled() if settled else store.read(errors=args.errors)
    return read(args.sources, errors=args.errors)


def _budgets(path: str) -> list[Budget]:
    """The rules of the budgets file ``path``: read by ``config``, checked by ``alerts``."""
    from .analytics.alerts import parse_budgets

    return parse_budgets(config.read_budgets_file(path), source=path)


def _report(args: argparse.Namespace, stdout: TextIO) -> int:
    try:
        budgets = _budgets(args.budgets) if args.budgets else None
    except config.BudgetFileError as exc:
        raise _UsageError(str(exc)) from None
    if args.out is None:
        raise _UsageError("no report folder: pass --out DIR, set SHADEANALYTICS_REPORT_DIR or "
                          "set report_dir in shadeanalytics.toml")
    # the cyclic GC paused, as for the summary: a store's read and bill make a few million
    # objects and no cycles
    with gc_paused():
        # the store's kept parts of settled instances hold at and after the read that kept
        # them; before that, the whole history is read
        tables = _tables(args, report=True)
        as_of = _resolve_as_of(args.as_of, tables)
        settled = getattr(tables, "settled", None)
        if settled is not None and as_of < settled.as_of:
            tables = _tables(args)
        files = write_report(tables, args.out, as_of=as_of,
                             include_network=args.include_network,
                             charts=not args.no_charts, html=not args.no_html,
                             force=args.force, budgets=budgets,
                             all_versions_csv=args.all_versions_csv)
    print(f"wrote {len(files)} files to {args.out} ({len(tables.clusters)} cluster rows, "
          f"{getattr(tables, 'instance_rows', len(tables.instances))} instance rows; as of "
          f"{as_of.strftime('%Y-%m-%dT%H:%M:%SZ')})", file=stdout)
    return EXIT_OK


def _summary(args: argparse.Namespace, stdout: TextIO) -> int:
    # the cyclic GC paused: a store's read and bill make a few million objects and no
    # cycles, and its passes over them were a tenth of a summary's time
    with gc_paused():
        # the store's kept bill of settled instances holds at and after the bill that kept
        # it; before that, the whole history is read
        tables = _tables(args, settled=True, summed=True)
        as_of = _resolve_as_of(args.as_of, tables)
        settled = getattr(tables, "settled", None)
        if settled is not None and as_of < settled.as_of:
            tables = _tables(args)
        # ids and names come from files or the API: escaped, line by line, as every
        # message is
        text = summary_text(tables, by=args.by, as_of=as_of, top=args.top)
    stdout.write("\n".join(printable(line) for line in text.split("\n")))
    return EXIT_OK


#: argparse destination -> setting of ``config.SETTINGS`` a command's option gives
_FLAG_SETTINGS = {"api_key_file": "api_key_file", "base_url": "base_url", "store": "store",
                  "info_budget": "info_budget", "info_max_age": "info_max_age_hours",
                  "budgets": "budgets", "webhook": "webhook", "as_of": "as_of",
                  "out": "report_dir"}


def _settings(args: argparse.Namespace) -> dict[str, config.Setting]:
    """The effective settings of a command: its flags, the environment, the settings file."""
    flags = {key: getattr(args, dest) for dest, key in _FLAG_SETTINGS.items()
             if hasattr(args, dest)}
    return config.settings(flags, getattr(args, "config", None))


def _apply_settings(args: argparse.Namespace) -> None:
    """Fill the options a command was not given from the environment and the settings file
    (``store`` only when no SOURCE is given; ``as_of`` for ``export`` only with focus)."""
    values = _settings(args)
    for dest, key in _FLAG_SETTINGS.items():
        if not hasattr(args, dest) or getattr(args, dest) is not None:
            continue
        if dest == "store" and getattr(args, "sources", None):
            continue
        if dest == "as_of" and getattr(args, "format", "focus") != "focus":
            continue
        setting = values[key]
        value = setting.value
        if dest == "as_of" and isinstance(value, str):
            try:
                value = _as_of_value(value)
            except argparse.ArgumentTypeError as exc:
                raise _UsageError(f"{setting.source}: as_of: {exc}") from None
        setattr(args, dest, value)


_ENV_NAMES = {spec.env for spec in config.SETTINGS.values()}


def _rank(setting: config.Setting) -> int:
    """Precedence of where a setting came from: a flag, the environment, the file, nothing."""
    if setting.source.startswith("--"):
        return 0
    if setting.source == "default":
        return 3
    return 1 if setting.source in _ENV_NAMES else 2


def _api_key(values: dict[str, config.Setting]) -> tuple[str, str]:
    """The API key and where it came from (named in the messages that ask to check it): the
    key file or the key, whichever was given with the higher precedence (the key on a tie)."""
    key, key_file = values["api_key"], values["api_key_file"]
    if key_file.value is not None and _rank(key_file) < _rank(key):
        try:
            found, source = config.api_key(key_file=key_file.value)
        except config.ConfigError as exc:
            raise _FileError(str(exc)) from None
        if key_file.source != "--api-key-file":
            source = f"the key file {printable(str(key_file.value))} ({key_file.source})"
        return found, source
    if not key.value:
        raise _FileError(f"no API key: set {config.API_KEY_ENV} or pass --api-key-file PATH")
    source = key.source if key.source in _ENV_NAMES else f"api_key in {key.source}"
    return config.clean_key(key.value), source


def _base_url(setting: config.Setting) -> str:
    from .live.client import DEFAULT_BASE_URL, check_base_url

    if setting.value is None:
        return DEFAULT_BASE_URL
    try:
        return check_base_url(setting.value)
    except ValueError as exc:  # the URL is not quoted: it may carry credentials
        raise _UsageError(f"{setting.source}: {exc}") from None


def _collect_options(args: argparse.Namespace) -> tuple[Path | str, dict[str, object]]:
    """The store and ``collect``'s options from the flags, the environment and the settings
    file (read again on SIGHUP)."""
    from .live.client import ShadeformClient

    values = _settings(args)
    store = values["store"].value
    if store is None:
        raise _UsageError("no store: pass --store PATH, set SHADEANALYTICS_STORE or set store "
                          "in shadeanalytics.toml")
    # both before the store is touched: a bad URL or a missing key leaves no file behind
    base_url = _base_url(values["base_url"])
    key, source = _api_key(values)
    config.now()  # a bad SHADEANALYTICS_NOW is refused here too, before the store exists
    make_client = functools.partial(ShadeformClient, api_key=key, base_url=base_url,
                                    key_source=source)
    return target(store), {"make_client": make_client, "deadline_s": args.deadline,
                         "info_max_age_s": values["info_max_age_hours"].value * 3600,
                         "info_budget": values["info_budget"].value}


def _collect(args: argparse.Namespace, stdout: TextIO) -> int:
    from .live.collect import collect

    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.every is not None:
        return _collect_every(args, stdout)
    if args.max_polls is not None:
        raise _UsageError("--max-polls is only for --every")
    store, options = _collect_options(args)
    try:
        result = collect(store, **options)  # type: ignore[arg-type]
    except ShadeanalyticsError as exc:
        raise _Exit(exit_code_for(exc), exc) from None
    for warning in (*result.warnings, *result.refused):
        warnings.warn(warning, DataWarning, stacklevel=1)  # printed as "Warning: ..."
    print(result.message, file=stdout)
    return EXIT_REFUSED if result.refused else EXIT_OK


def _collect_every(args: argparse.Namespace, stdout: TextIO) -> int:
    import json
    from datetime import UTC, datetime

    from .live.collect import PollLog, Schedule, StopSignals, collect_every

    def options() -> tuple[Path | str, dict[str, object]]:
        """The settings, their warnings (a readable file holding a key) printed at once: the
        process may run for weeks."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            try:
                return _collect_options(args)
            finally:
                for w in caught:
                    print(f"Warning: {printable(w.message)}", file=sys.stderr, flush=True)

    first = [options()]  # errors at the start end the command as usual

    def configure() -> tuple[Path | str, dict[str, object]]:
        if first:
            return first.pop()
        try:
            return options()
        except _UsageError as exc:
            raise config.ConfigError(str(exc)) from None

    def on_poll(log: PollLog) -> None:
        print(log.line(args.log_format), file=stdout, flush=True)
        for warning in (*log.result.warnings, *log.result.refused) if log.result else ():
            print(f"Warning: {printable(warning)}", file=sys.stderr, flush=True)

    def on_reload(error: str | None) -> None:
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if args.log_format == "json":
            line = json.dumps({"time": at, "event": "reload", "ok": error is None,
                               **({"error": printable(error)} if error else {})})
        elif error is None:
            line = f"{at} settings re-read (SIGHUP)"
        else:
            line = f"{at} settings not re-read (SIGHUP): {printable(error)}; the previous ones stay"
        print(line, file=stdout, flush=True)

    signals = StopSignals()
    print(f"collecting into {printable(redact(first[0][0]))} every {args.every:g} s; SIGTERM or "
          "Ctrl-C stops after the poll in flight, SIGHUP re-reads the settings",
          file=sys.stderr, flush=True)
    with signals.installed():
        last = collect_every(Schedule.jittered(args.every), configure, signals=signals,
                             max_polls=args.max_polls, on_poll=on_poll, on_reload=on_reload)
    if signals.stop_requested:
        print(f"stopped ({signals.stop_requested})", file=sys.stderr, flush=True)
        return EXIT_OK
    if last is None or last.error is None:
        return EXIT_OK
    return exit_code_for(last.error)


def _verb(flags: list[str]) -> str:
    return "is" if len(flags) == 1 else "are"


def _export(args: argparse.Namespace, stdout: TextIO) -> int:
    if args.format == "focus":
        return _export_focus(args, stdout)
    focus_only = [flag for flag, value in (("--as-of", args.as_of),
                                           ("--granularity", args.granularity),
                                           ("--billing-account", args.billing_account),
                                           ("--focus-version", args.focus_version))
                  if value is not None]
    if focus_only:
        raise _UsageError(f"{', '.join(focus_only)} {_verb(focus_only)} only for --format focus")
    if args.sources or not args.store:
        raise _UsageError("--format parquet exports the history store: give --store PATH")
    from .output.export import export_parquet  # pyarrow only when exporting

    if args.since is not None and args.until is not None and args.since > args.until:
        raise _UsageError("--since is later than --until: nothing to export (the folder is "
                          "left as it was)")
    files = export_parquet(args.store, args.out, since=args.since, until=args.until,
                           include_network=args.include_network)
    print(f"wrote {len(files)} Parquet files to {args.out}", file=stdout)
    return EXIT_OK


def _export_focus(args: argparse.Namespace, stdout: TextIO) -> int:
    parquet_only = [flag for flag, value in (("--since", args.since), ("--until", args.until),
                                             ("--include-network", args.include_network))
                    if value]
    if parquet_only:
        raise _UsageError(f"{', '.join(parquet_only)} {_verb(parquet_only)} only for --format "
                          "parquet")
    from .output.focus import FOCUS_VERSION, write_focus

    version = args.focus_version or FOCUS_VERSION

    tables = _tables(args)
    as_of = _resolve_as_of(args.as_of or "latest", tables)
    export = write_focus(tables, args.out, as_of=as_of,
                         granularity=args.granularity or "hourly",
                         billing_account=args.billing_account or "shadeform",
                         focus_version=version, keep_rows=False)
    total = export.billed_usd
    left_out = (f"; {len(export.unpriced)} resource(s) billed at an unknown price left out"
                if export.unpriced else "")
    if export.start_unknown:
        left_out += (f"; {len(export.start_unknown)} volume(s) whose billing start is unknown "
                     "left out")
    extrapolated = export.extrapolated_usd
    if round(extrapolated, 2):  # billed past the newest successful poll: say so
        left_out += (f"; {usd(extrapolated)} of it extrapolated after the newest successful "
                     "poll (x_Basis)")
    print(f"wrote {export.row_count} FOCUS {version} rows (${total:,.2f} billed, as of "
          f"{as_of.strftime('%Y-%m-%dT%H:%M:%SZ')}) to {args.out}: "
          f"{', '.join(p.name for p in export.files)}{left_out}", file=stdout)
    return EXIT_OK


#: how long ``check`` waits for the store's lock (a collector's run) before exiting 3
CHECK_LOCK_WAIT_S = 30.0


def _check(args: argparse.Namespace, stdout: TextIO) -> int:
    import json
    from contextlib import nullcontext

    from .live.check import CheckResult, run_check
    from .live.notify import WebhookError, check_webhook_url

    if args.webhook:  # before anything runs: a URL no parser takes is a usage error
        try:
            check_webhook_url(args.webhook)
        except WebhookError as exc:
            raise _UsageError(f"--webhook (or {config.WEBHOOK_URL_ENV}): {exc}") from None
    try:
        budgets = _budgets(args.budgets) if args.budgets else []
    except config.BudgetFileError as exc:
        raise _UsageError(str(exc)) from None
    tables = _tables(args)
    as_of = _resolve_as_of(args.as_of, tables)

    def checked(*args_: Any, **options: Any) -> CheckResult:
        try:
            return run_check(*args_, **options)
        except WebhookError as exc:  # the breaches are still shown, then the error
            _print_breaches(exc.breaches, stdout)
            raise

    if not args.store:
        result = checked(tables, budgets, as_of=as_of, webhook=args.webhook,
                         dry_run=args.dry_run)
    else:
        from .errors import LockedError
        from .live.locks import store_lock
        from .live.store import Store

        store_path = target(args.store)
        writes = bool(args.webhook) and not args.dry_run
        # the one lock rule of a store's writers: the store file itself (a symlink or a hard
        # link to it is the same lock); a collector's run is waited for, briefly
        lock = store_lock(store_path, f"{redact(store_path)}: another check or collector holds "
                          "the store's lock; nothing sent", CHECK_LOCK_WAIT_S) \
            if writes else nullcontext()
        try:
            with Store(store_path, create=False) as store, lock:
                result = checked(tables, budgets, as_of=as_of, store=store,
                                 webhook=args.webhook, dry_run=args.dry_run,
                                 notify_clear=args.notify_clear)
        except LockedError as exc:
            raise _Exit(3, exc) from None
    _print_breaches(result.breaches, stdout)
    for note in result.notes:  # what the accrued total rests on: not a breach
        print(f"note: {note.replace(' of it ', ' of the accrued total ', 1)}", file=stdout)
    if args.dry_run:
        sent = json.dumps(result.sent, ensure_ascii=True) if result.sent else "nothing"
        print(f"dry run: would send {sent}", file=stdout)
    elif args.webhook and result.sent:
        print(f"sent {len(result.new)} new and {len(result.sent['cleared'])} cleared to the "
              "webhook", file=sys.stderr)
    return EXIT_BREACH if result.breaches else EXIT_OK


def _print_breaches(breaches: Sequence[Breach], stdout: TextIO) -> None:
    """One line per breach, ``rule: message``, safe for a terminal."""
    for breach in breaches:
        print(printable(breach.line), file=stdout)


def _columns(args: argparse.Namespace, stdout: TextIO) -> int:
    stdout.write(data_dictionary())
    return EXIT_OK


def _store_copy(args: argparse.Namespace, stdout: TextIO) -> int:
    from .errors import LockedError
    from .live.locks import store_lock
    from .live.store import Store

    src, dst = target(args.src), target(args.dst)
    if redact(src) == redact(dst) or (isinstance(src, Path) and isinstance(dst, Path)
                                      and src.resolve() == dst.resolve()):
        raise _UsageError("SRC and DST are the same store")
    try:
        with Store(src, create=False) as source, \
                store_lock(dst, f"{redact(dst)}: a collector or check holds the store's lock; "
                           "nothing copied"), Store(dst) as into:
            result = into.copy_from(source)
    except LockedError as exc:
        raise _Exit(3, exc) from None
    copied = ", ".join(f"{n} {name}" for name, n in result.copied.items())
    counts = ", ".join(f"{n} {name}" for name, n in result.counts.items())
    print(f"copied {copied} into {printable(redact(dst))}", file=stdout)
    print(f"verified: both stores hold {counts}; checksum sha256:{result.checksum}",
          file=stdout)
    return EXIT_OK


def _config(args: argparse.Namespace, stdout: TextIO) -> int:
    path, how = config.find_file(args.config)
    values = config.settings(None, args.config)
    where = (f"{printable(str(path))} ({how})" if path is not None else
             f"none ({config.CONFIG_NAME} in the working directory or the user config "
             "directory, --config FILE or SHADEANALYTICS_CONFIG)")
    print(f"settings file: {where}", file=stdout)
    width = max(map(len, values))
    for key, setting in values.items():
        print(f"{key:<{width}}  {setting.shown()}", file=stdout)
    return EXIT_OK


def _demo(args: argparse.Namespace, stdout: TextIO) -> int:
    from .demo import run_demo

    run_demo(Path(args.dir), polls=args.polls, speed=args.speed, every_s=args.every,
             charts=not args.no_charts, out=stdout)
    return EXIT_OK


def _fake_api(args: argparse.Namespace, stdout: TextIO) -> int:
    from .demo import serve_fake_api

    serve_fake_api(key=args.key, speed=args.speed, out=stdout)
    return EXIT_OK


def _arrow_memory_pool() -> None:
    """Arrow's jemalloc pool for this process, unless ``ARROW_DEFAULT_MEMORY_POOL`` names
    one or this pyarrow has none. pyarrow's default, mimalloc, made a year's ``report
    --store`` 15-30 % slower here (its fresh pages: 1.5-2x the system time), the 10x year's
    by about 20 %; summaries are the same either way (benchmarks/README.md, issue 24)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (ImportError, NotImplementedError):  # (ArrowNotImplementedError: no jemalloc)
        pass


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    _arrow_memory_pool()
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    error: str | None = None
    set_progress(False if getattr(args, "quiet", False) else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            if hasattr(args, "config") and args.command not in ("config", "collect"):
                _apply_settings(args)
            code = args.run(args, stdout)
        except _UsageError as exc:
            args.parser.print_usage(stderr)
            error, code = str(exc), EXIT_USAGE
        except _Exit as exc:
            error, code = str(exc), exc.code
        except StoreURLError as exc:  # a --store that names no store: a usage error
            error, code = str(exc), EXIT_USAGE
        except ShadeanalyticsError as exc:
            error, code = str(exc), EXIT_ERROR
        except OSError as exc:  # e.g. the report folder is a file; never a traceback
            name = f"{exc.filename}: " if exc.filename else ""
            error, code = f"{name}{exc.strerror or type(exc).__name__}", EXIT_ERROR
        except MemoryError:
            error, code = "out of memory", EXIT_ERROR
        finally:
            set_progress(None)
            for w in caught:
                if issubclass(w.category, DataWarning):
                    print(f"Warning: {printable(w.message)}", file=stderr)
    if error is not None:
        print(f"Error: {printable(error)}", file=stderr)
    return code

