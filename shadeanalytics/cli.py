"""The ``shadeanalytics`` command line: a thin layer over the library.

Exit codes: 0 success, 1 error (one ``Error: ...`` line on stderr, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from . import __version__
from .errors import DataWarning, ShadeanalyticsError
from .load import read
from .report import write_report
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
    report.set_defaults(run=_report)

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
    files = write_report(tables, args.out, include_network=args.include_network)
    print(f"wrote {len(files)} files to {args.out} ({len(tables.clusters)} cluster rows, "
          f"{len(tables.instances)} instance rows)", file=stdout)
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

