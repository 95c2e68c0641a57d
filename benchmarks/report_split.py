"""How ``write_report`` shares its work between its two processes (issue 24, item 3).

``python benchmarks/report_split.py STORE [--charts]`` reads the store once, then writes the
report three times (into a temporary folder) and prints, for the run of least CPU: the main
thread's CPU seconds (``time.thread_time``) before the second process starts (billing), in
its own part (the newest rows, analytics, forecast and market frames, their files and
charts) and after the two parts (the page, the version files, the manifest); the second
process's CPU seconds (``RUSAGE_CHILDREN``: the history frames, their files and charts); the
version files' thread's; and the wall time. On a shared machine the wall time follows the
load; the CPU seconds do not, so ``before + max(own part, second process) + after`` is what
the wall time would be on two idle cores (the version files' thread fits beside the bill).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import shadeanalytics as sa
from shadeanalytics.output import report

marks: dict[str, float] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _beside(
    first: Callable[[], Any], second: Callable[[], Any], real: Callable[..., Any] = report._beside
) -> Any:
    marks["fork"] = time.thread_time()
    children = _children_cpu()

    def timed_first() -> Any:
        began = time.thread_time()
        try:
            return first()
        finally:
            marks["first"] = time.thread_time() - began

    try:
        return real(timed_first, second)
    finally:
        marks["second"] = _children_cpu() - children
        marks["joined"] = time.thread_time()


def main(path: str, charts: bool) -> None:
    report._beside = _beside
    with sa.Store(path) as store:
        tables = store.read()
    runs = []
    for _ in range(3):
        marks.clear()
        with tempfile.TemporaryDirectory() as out:
            wall, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
            report.write_report(tables, out, charts=charts)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            main_thread = time.thread_time() - thread
        before = marks["fork"] - thread
        after = main_thread - before - (marks["joined"] - marks["fork"])
        runs.append(
            (
                cpu + marks["second"],
                wall,
                before,
                marks["first"],
                marks["second"],
                after,
                cpu - main_thread,
            )
        )
    total, wall, before, first, second, after, versions = min(runs)
    print(
        f"write_report{' with charts' if charts else ''}: {total:.2f} s CPU in all, "
        f"{wall:.2f} s wall"
    )
    print(f"  before the second process (main thread)  {before:6.2f}")
    print(f"  own part (main thread)                   {first:6.2f}")
    print(f"  second process                           {second:6.2f}")
    print(f"  after both (main thread)                 {after:6.2f}")
    print(f"  version files' thread                    {versions:6.2f}")
    print(f"  on two idle cores (before + max + after) {before + max(first, second) + after:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1], "--charts" in sys.argv[2:])
