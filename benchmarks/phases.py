"""Where a warm ``summary --store`` spends its CPU time, phase by phase (issue 24).

``python benchmarks/phases.py STORE`` reads the store once (deriving and keeping its row
blocks if needed), then three times more, billing and summarizing each read, and prints the
best CPU seconds (``time.process_time``: less sensitive to a shared machine's load than wall
time) of: importing the package, ``Store.read()`` and its parts, ``bill()`` and its parts, and
the rest of ``summary_text``. The parts (of the read and one bill) are timed by wrapping the
package's own functions; a part called inside another counts in both.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from cputime import timed

_T0 = time.process_time()
import shadeanalytics as sa  # noqa: E402  (timed: the import is a phase)
from shadeanalytics.analytics import billing  # noqa: E402
from shadeanalytics.ingest import tables  # noqa: E402
from shadeanalytics.live import rows, storeread  # noqa: E402
from shadeanalytics.output.report import summary_text  # noqa: E402

IMPORT = time.process_time() - _T0
#: (module or class, function): the parts timed
PARTS: tuple[tuple[Any, str], ...] = (
    (rows, "read_rows"), (rows, "_texts"), (rows, "polls_frame"), (rows, "decode"),
    (rows.Versions, "of"), (storeread, "_row_blocks"),
    (tables.Tables, "latest"), (billing, "_billed_intervals"), (billing, "_first_seen"),
    (billing, "_basis_split"), (billing, "freshness"), (billing, "resolve_as_of"),
)
spent: dict[str, float] = {}


def _timed(owner: Any, name: str) -> None:
    module = getattr(owner, "__name__", str(owner)).rsplit(".", 1)[-1]
    timed(owner, name, spent, lambda *_: f"{module}.{name}")


def main(path: str) -> None:
    for owner, name in PARTS:
        _timed(owner, name)
    with sa.Store(path) as store:
        store.read()  # derives and keeps the row blocks the first time
    runs = []
    for _ in range(3):
        spent.clear()
        began = time.process_time()
        with sa.Store(path) as store:
            history = store.read()
        read = time.process_time()
        billing.bill(history)
        billed = time.process_time()
        parts = dict(spent)  # of the read and one bill
        summary_text(history)  # bills again: its own bill is subtracted below
        done = time.process_time()
        runs.append((done - began, read - began, billed - read,
                     done - billed - (billed - read), parts))
    _, read, bill, rest, parts = min(runs, key=lambda r: r[0])
    print(f"import {IMPORT:.2f} s, read {read:.2f} s, bill {bill:.2f} s, "
          f"rest of summary_text {rest:.2f} s (CPU, best of 3)")
    for label, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {label:28} {seconds:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1])
