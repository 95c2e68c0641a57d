"""The ``shadeanalytics`` command line: a thin layer over the library.

Exit codes: 0 success, 1 error (one ``Error: ...`` line on stderr, no traceback), 2 usage error,
3 another collector holds the store's lock (``collect``; nothing written), 75 the API is
temporarily unavailable (``collect``: rate limited, 5xx, timeouts; the failed poll is recorded).
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
from typing import TextIO

import pandas as pd

from . import __version__
from .errors import DataWarning, ShadeanalyticsError
from .load import read
from .report import _SUMMARY_DIMENSIONS, resolve_as_of, summary_text, write_report
from .schema import data_dictionary
from .tables import Tables

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """Arguments that parse but do not fit together."""


class _FileError(ShadeanalyticsError):
    """A file named on the command line could not be read."""


class _Exit(Exception):
    """An error to report with a specific exit code."""

    def __init__(self, code: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.code = code


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="JSON/JSONL(.gz) files, folders or globs of Shadeform responses")
    parser.add_argument("--store", metavar="PATH",
                        help="read the history store written by `shadeanalytics collect` "
                             "instead of files")
    parser.add_argument("--errors", choices=("raise", "skip"), default="raise",
                        help="on a record that cannot load: stop (raise, default) or skip it "
                             "with a warning")


def _instant_value(text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO-8601 time with a zone, e.g. "
                                         "2026-11-20T00:00:00Z") from None
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs a zone, e.g. 2026-11-20T00:00:00Z")
    return stamp.tz_convert("UTC")


def _as_of_value(text: str) -> str | pd.Timestamp:
    return text if text in ("now", "latest") else _instant_value(text)


def _add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=_as_of_value, default="latest", metavar="TIME",
                        help="the instant costs are computed at: an ISO-8601 time with a zone, "
                             "'now', or 'latest' (default: the newest snapshot in the sources)")


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


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("expected a whole number, 0 or more")
    return int(text)


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
    report.add_argument("--out", required=True, metavar="DIR", help="report folder to write")
    report.add_argument("--include-network", action="store_true",
                        help="also write the ip, ssh_user and ssh_port columns")
    report.add_argument("--no-charts", action="store_true",
                        help="write the CSV files only (no PNG charts; matplotlib is not "
                             "loaded)")
    _add_as_of(report)
    report.set_defaults(run=_report)

    summary = commands.add_parser(
        "summary", help="print the fleet at a glance: burn rate, GPUs, top costs, findings",
        description="Print the fleet at a glance: burn rate, month projection, GPUs by type, "
                    "top costs and the number of quality findings.")
    _add_source_options(summary)
    summary.add_argument("--by", default="cloud", choices=_SUMMARY_DIMENSIONS,
                         help="dimension of the top-costs table (default: cloud)")
    summary.add_argument("--top", type=int, default=10, metavar="N",
                         help="rows of the top-costs table (default: 10)")
    _add_as_of(summary)
    summary.set_defaults(run=_summary)

    collect = commands.add_parser(
        "collect", help="poll the Shadeform API once into the history store (for cron)",
        description="Poll GET /clusters, /instances and /instances/types once (with /volumes, "
                    "/volumes/types, instance details and, daily, SSH keys, templates and "
                    "cluster types) and record the poll in the history store. The API key "
                    "comes from SHADEFORM_API_KEY (or --api-key-file). Prints one line per "
                    "run. Exit codes: 0 ok, 1 error, 3 another collector holds the lock "
                    "(nothing written), 75 the API is temporarily unavailable (the failed poll "
                    "is recorded).")
    collect.add_argument("--store", required=True, metavar="PATH",
                         help="the history store (an SQLite file; created when missing)")
    collect.add_argument("--base-url", metavar="URL",
                         help="API base URL (default: SHADEFORM_BASE_URL or "
                              "https://api.shadeform.ai/v1)")
    collect.add_argument("--api-key-file", metavar="PATH",
                         help="read the API key from this file instead of SHADEFORM_API_KEY")
    collect.add_argument("--deadline", type=_positive, default=240.0, metavar="SECONDS",
                         help="give up the run after this long (default: 240, below a 5-minute "
                              "cron interval)")
    collect.add_argument("--info-max-age", type=_hours, default=24.0, metavar="HOURS",
                         help="fetch an instance's details (/instances/{id}/info) again when "
                              "they are older than this (default: 24; new instances at once)")
    collect.add_argument("--info-budget", type=_count, default=50, metavar="N",
                         help="at most this many detail requests a run, oldest first "
                              "(default: 50; 0: none)")
    collect.add_argument("--verbose", action="store_true",
                         help="log every request (method, path, status, time) to stderr")
    collect.set_defaults(run=_collect)

    export = commands.add_parser(
        "export", help="write the history store as Hive-partitioned Parquet (by day)",
        description="Write the history store as Parquet partitioned by day, for DuckDB, Spark "
                    "and Trino (needs the parquet extra: pip install 'shadeanalytics[parquet]').")
    export.add_argument("--store", required=True, metavar="PATH", help="the history store")
    export.add_argument("--format", choices=("parquet",), default="parquet",
                        help="output format (default: parquet)")
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    export.add_argument("--since", type=_instant_value, metavar="TIME",
                        help="first poll time to export (ISO-8601 with a zone; inclusive)")
    export.add_argument("--until", type=_instant_value, metavar="TIME",
                        help="last poll time to export (ISO-8601 with a zone; inclusive)")
    export.add_argument("--include-network", action="store_true",
                        help="also write the ip, ssh_user and ssh_port columns")
    export.set_defaults(run=_export)

    columns = commands.add_parser(
        "columns", help="print the data dictionary (every table's columns) as Markdown",
        description="Print the data dictionary: every column's dtype, unit, source and meaning.")
    columns.set_defaults(run=_columns)
    return parser


def _tables(args: argparse.Namespace) -> Tables:
    if bool(args.sources) == bool(args.store):
        raise _UsageError("give SOURCE files or --store PATH (one of the two)")
    if args.store:
        from .store import Store

        with Store(args.store, create=False) as store:
            return store.read(errors=args.errors)
    return read(args.sources, errors=args.errors)


def _report(args: argparse.Namespace, stdout: TextIO) -> int:
    tables = _tables(args)
    as_of = resolve_as_of(args.as_of, tables)
    files = write_report(tables, args.out, as_of=as_of, include_network=args.include_network,
                         charts=not args.no_charts)
    print(f"wrote {len(files)} files to {args.out} ({len(tables.clusters)} cluster rows, "
          f"{len(tables.instances)} instance rows; as of "
          f"{as_of.strftime('%Y-%m-%dT%H:%M:%SZ')})", file=stdout)
    return EXIT_OK


def _summary(args: argparse.Namespace, stdout: TextIO) -> int:
    tables = _tables(args)
    as_of = resolve_as_of(args.as_of, tables)
    stdout.write(summary_text(tables, by=args.by, as_of=as_of, top=args.top))
    return EXIT_OK


def _api_key(args: argparse.Namespace) -> str:
    if not args.api_key_file:
        key = os.environ.get("SHADEFORM_API_KEY", "").strip()
        if not key:
            raise _FileError("no API key: set SHADEFORM_API_KEY or pass --api-key-file PATH")
        return key
    try:
        key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise _FileError(f"{args.api_key_file}: cannot read the API key file "
                         f"({reason})") from None
    if not key:
        raise _FileError(f"{args.api_key_file}: the API key file is empty")
    return key


def _collect(args: argparse.Namespace, stdout: TextIO) -> int:
    from .client import ShadeformClient
    from .collect import collect, exit_code_for

    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    key = _api_key(args)  # before the store is touched: a missing key leaves no empty store
    make_client = functools.partial(ShadeformClient, api_key=key, base_url=args.base_url)
    try:
        result = collect(args.store, make_client=make_client, deadline_s=args.deadline,
                         info_max_age_s=args.info_max_age * 3600, info_budget=args.info_budget)
    except ShadeanalyticsError as exc:
        raise _Exit(exit_code_for(exc), exc) from None
    print(result.message, file=stdout)
    return EXIT_OK


def _export(args: argparse.Namespace, stdout: TextIO) -> int:
    from .export import export_parquet  # pyarrow only when exporting

    files = export_parquet(args.store, args.out, since=args.since, until=args.until,
                           include_network=args.include_network)
    print(f"wrote {len(files)} Parquet files to {args.out}", file=stdout)
    return EXIT_OK


def _columns(args: argparse.Namespace, stdout: TextIO) -> int:
    stdout.write(data_dictionary())
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    error: str | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            code = args.run(args, stdout)
        except _UsageError as exc:
            parser.print_usage(stderr)
            error, code = str(exc), EXIT_USAGE
        except _Exit as exc:
            error, code = str(exc), exc.code
        except ShadeanalyticsError as exc:
            error, code = str(exc), EXIT_ERROR
        except OSError as exc:  # e.g. the report folder is a file; never a traceback
            name = f"{exc.filename}: " if exc.filename else ""
            error, code = f"{name}{exc.strerror or type(exc).__name__}", EXIT_ERROR
        finally:
            for w in caught:
                if issubclass(w.category, DataWarning):
                    print(f"Warning: {w.message}", file=stderr)
    if error is not None:
        print(f"Error: {error}", file=stderr)
    return code

