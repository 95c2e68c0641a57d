"""The ``shadeanalytics`` command line: a thin layer over the library.

Exit codes: 0 success, 1 error (one ``Error: ...`` line on stderr, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

import pandas as pd

from . import __version__
from .errors import DataWarning, ShadeanalyticsError
from .load import read
from .report import _SUMMARY_DIMENSIONS, resolve_as_of, summary_text, write_report
from .schema import data_dictionary

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="JSON/JSONL(.gz) files, folders or globs of Shadeform responses")
    parser.add_argument("--errors", choices=("raise", "skip"), default="raise",
                        help="on a record that cannot load: stop (raise, default) or skip it "
                             "with a warning")


def _as_of_value(text: str) -> str:
    if text in ("now", "latest"):
        return text
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected now, latest or an ISO-8601 time with a "
                                         "zone, e.g. 2026-11-20T00:00:00Z") from None
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs a zone, e.g. 2026-11-20T00:00:00Z")
    return text


def _add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=_as_of_value, default="latest", metavar="TIME",
                        help="the instant costs are computed at: an ISO-8601 time with a zone, "
                             "'now', or 'latest' (default: the newest snapshot in the sources)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadeanalytics",
        description="Shadeform GPU fleet analytics: reports from API responses.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = commands.add_parser(
        "report", help="write a CSV report folder from Shadeform responses",
        description="Load Shadeform responses and write a report folder of CSV files.")
    _add_source_options(report)
    report.add_argument("--out", required=True, metavar="DIR", help="report folder to write")
    report.add_argument("--include-network", action="store_true",
                        help="also write the ip, ssh_user and ssh_port columns")
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

    columns = commands.add_parser(
        "columns", help="print the data dictionary (every table's columns) as Markdown",
        description="Print the data dictionary: every column's dtype, unit, source and meaning.")
    columns.set_defaults(run=_columns)
    return parser


def _columns(args: argparse.Namespace, stdout: TextIO) -> int:
    stdout.write(data_dictionary())
    return EXIT_OK


def _report(args: argparse.Namespace, stdout: TextIO) -> int:
    tables = read(args.sources, errors=args.errors)
    as_of = resolve_as_of(args.as_of, tables)
    files = write_report(tables, args.out, as_of=as_of, include_network=args.include_network)
    print(f"wrote {len(files)} files to {args.out} ({len(tables.clusters)} cluster rows, "
          f"{len(tables.instances)} instance rows; as of "
          f"{as_of.strftime('%Y-%m-%dT%H:%M:%SZ')})", file=stdout)
    return EXIT_OK


def _summary(args: argparse.Namespace, stdout: TextIO) -> int:
    tables = read(args.sources, errors=args.errors)
    as_of = resolve_as_of(args.as_of, tables)
    stdout.write(summary_text(tables, by=args.by, as_of=as_of, top=args.top))
    return EXIT_OK


def _show_warning(message: warnings.WarningMessage | object, stderr: TextIO) -> None:
    print(f"Warning: {message}", file=stderr)


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            code = args.run(args, stdout)
        except ShadeanalyticsError as exc:
            code = EXIT_ERROR
            error = exc
        else:
            error = None
        finally:
            for w in caught:
                if issubclass(w.category, DataWarning):
                    _show_warning(w.message, stderr)
    if error is not None:
        print(f"Error: {error}", file=stderr)
    return code

