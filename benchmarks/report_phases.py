"""Where ``report --store`` spends its CPU time after the read, phase by phase (issue 24).

``python benchmarks/report_phases.py STORE [--charts]`` reads the store once, then writes the
report twice (into a temporary folder) and prints the better run's CPU seconds
(``time.process_time``: every thread's, less sensitive to a shared machine's load than wall
time) of ``write_report`` and of its parts: billing, the history frames, each CSV file, the
version files, and with ``--charts`` each chart's PNG and SVG. The parts are timed by
wrapping the package's own functions; a part called inside another counts in both. The
version files' part is making their Arrow tables: Arrow sorts and encodes them in a thread
beside the rest, which counts in the total only.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cputime import timed

import shadeanalytics as sa
from shadeanalytics.output import report

spent: dict[str, float] = {}


def _timed(owner: Any, name: str, label: Any = None) -> None:
    timed(owner, name, spent, label)


def main(path: str, charts: bool) -> None:
    for name in ("bill_fleet", "analytics", "month_forecast", "history_frames",
                 "status_timeline", "fleet_over_time", "cost_over_time", "market_frames"):
        _timed(report, name)
    _timed(report, "write_csv", lambda args, _: f"csv {Path(args[1]).name}")
    _timed(report, "_write_versions", lambda *_: "versions (start: Arrow tables)")
    if charts:
        from shadeanalytics.output.plots import render

        _timed(render, "save_png", lambda args, _: f"png {Path(args[1]).stem}")
        _timed(render, "svg_document", lambda args, _: f"svg {args[1]}")
    with sa.Store(path) as store:
        tables = store.read()
    runs = []
    for _ in range(2):
        spent.clear()
        with tempfile.TemporaryDirectory() as out:
            began = time.process_time()
            report.write_report(tables, out, charts=charts)
            runs.append((time.process_time() - began, dict(spent)))
    total, parts = min(runs, key=lambda run: run[0])
    print(f"write_report{' with charts' if charts else ''}: {total:.2f} s CPU")
    for name, seconds in sorted(parts.items(), key=lambda item: -item[1]):
        if seconds >= 0.02:
            print(f"  {name:40s} {seconds:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1], "--charts" in sys.argv[2:])
