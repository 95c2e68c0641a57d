"""The CPU of each part of ``write_report`` once the fleet is billed (issue 24, items 2-3).

``python benchmarks/report_parts.py STORE [RUNS]`` reads the store once, then RUNS times
(default 3) bills it and makes, in one process and in ``write_report``'s order, the first
part's files (the newest rows' CSV files, the analytics tables, the forecast and the market
frames and their CSV files) and the second part's (the history frames and their CSV files),
and prints each step's least CPU seconds (``time.process_time``) over the runs, and each
part's. A report runs the two parts in two processes (``report._beside``); on two idle cores
its wall time after the bill is about the longer part. Each run bills anew, so that nothing
one run keeps with its Bill (``Bill.derived``) makes the next one faster; the second part
starts from the bill alone, as the forked process does.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import shadeanalytics as sa
from shadeanalytics.analytics.billing import bill_fleet
from shadeanalytics.output import report
from shadeanalytics.output.csvout import write_csv


def _run(tables: Any, out: str) -> dict[str, float]:
    spent: dict[str, float] = {}

    def step(name: str, work: Callable[[], Any]) -> Any:
        began = time.process_time()
        result = work()
        spent[name] = time.process_time() - began
        return result

    billed = bill_fleet(tables, as_of=report.resolve_as_of(None, tables))
    kept = dict(billed.derived)  # what the bill itself keeps (the newest rows)
    began = time.process_time()
    latest = billed.derived.get("latest")  # the bill's newest rows, as the report takes them
    newest = latest if latest is not None else tables.latest()
    for table in ("clusters", "instances", "instance_types"):
        if table == "instance_types" and tables.instance_types.empty:
            continue
        rows = step(
            f"sort {table}",
            lambda t=table: report._sorted(getattr(newest, t), report._SORT_KEYS[t]),
        )
        step(
            f"csv {table}",
            lambda t=table, r=rows: write_csv(r, f"{out}/{t}.csv", report.table_columns(t)),
        )
    frames = {
        name: step(name, lambda f=make: f(billed)) for name, make in report._ANALYTICS.items()
    }
    frames["forecast"] = step("forecast", lambda: report.month_forecast(billed))
    frames |= step("market", lambda: report.market_frames(tables, billed))
    for name, df in frames.items():
        step(f"csv {name}", lambda n=name, d=df: write_csv(d, f"{out}/{n}.csv"))
    spent["first part"] = time.process_time() - began
    billed.derived.clear()  # the second process starts from the bill as it was made
    billed.derived.update(kept)
    began = time.process_time()
    history = step("history frames", lambda: report.history_frames(billed))
    for name, df in history.items():
        step(f"csv {name}", lambda n=name, d=df: write_csv(d, f"{out}/{n}.csv"))
    spent["second part"] = time.process_time() - began
    return spent


def main(path: str, runs: int) -> None:
    with sa.Store(path) as store:
        tables = store.read()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            for name, seconds in _run(tables, out).items():
                best[name] = min(seconds, best.get(name, seconds))
    for name, seconds in best.items():
        if seconds >= 0.01 or name.endswith("part"):
            print(f"  {name:28s} {seconds:6.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
