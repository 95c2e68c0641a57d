"""The year rows of issue 24's table, measured in one run: ``summary --store``, ``report
--store --no-charts`` and ``report --store`` (with charts) on a year of polls, at 1x and,
if given, at 10x.

    python benchmarks/history.py --real 20 --out Y/history.db             # 1x: ~3 min
    python benchmarks/history.py --instances 10000 --real 20 --out X/history.db   # 10x: ~20 min
    python benchmarks/year.py Y/history.db [--ten-x X/history.db] [--repeat 3]

Each command runs as the user runs it (``shadeanalytics ...`` in a child process, so the
import counts), warm (one ``summary --store --quiet`` and one ``report --store --no-charts``
first derive and keep what a store keeps between reads), best of ``--repeat`` by wall time;
CPU time (user + system) and peak RSS are the child's own (``os.wait4``). The load average
before and after is printed beside them: on a shared machine compare CPU times, and re-run
idle for the wall times. The 10x store is measured once per command (a read of it takes tens
of seconds and GiBs). Results go to ``benchmarks/out/results-year.json`` and a Markdown table
to standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"

#: (label, arguments after ``shadeanalytics``, target wall seconds at 1x, at 10x); ``{out}``
#: is a fresh report folder per run.
COMMANDS: tuple[tuple[str, list[str], float | None, float | None], ...] = (
    ("summary --store", ["summary", "--store", "{store}"], 1.0, 5.0),
    ("report --store --no-charts", ["report", "--store", "{store}", "--no-charts",
                                    "--out", "{out}", "--quiet"], 3.0, 30.0),
    ("report --store (charts)", ["report", "--store", "{store}", "--out", "{out}", "--quiet"],
     6.0, None),
)


def _executable() -> list[str]:
    """The command line of the installed CLI (the one a user runs), else ``python -m``."""
    found = shutil.which("shadeanalytics")
    return [found] if found else [sys.executable, "-m", "shadeanalytics"]


def _run(argv: list[str]) -> dict[str, float]:
    """Run ``argv`` once; its wall seconds, CPU seconds and peak RSS (MiB)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 10):  # 10: findings reported, not a failure
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}:\n"
                         f"{stderr.decode(errors='replace')[-2000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_mib": round(usage.ru_maxrss / 1024, 1)}


def measure(store: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Every command on ``store``, warm, best of ``repeat`` by wall time."""
    cli = _executable()
    # warm: a summary and a report keep what their reads keep (the sums, the report's parts)
    _run([*cli, "summary", "--store", str(store), "--quiet"])
    with tempfile.TemporaryDirectory(prefix="year-bench-") as folder:
        _run([*cli, "report", "--store", str(store), "--no-charts", "--quiet",
              "--out", str(Path(folder) / "report")])
    results: dict[str, dict[str, float]] = {}
    for label, args, _, _ in COMMANDS:
        runs = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="year-bench-") as folder:
                argv = [a.format(store=store, out=Path(folder) / "report") for a in args]
                runs.append(_run([*cli, *argv]))
        best = min(runs, key=lambda r: r["wall_s"])
        results[label] = {**best, "runs": len(runs)}
        print(f"  {label}: {best['wall_s']:.2f} s wall, {best['cpu_s']:.2f} s CPU, "
              f"{best['peak_mib']:.0f} MiB", file=sys.stderr)
    return results


def _cell(result: dict[str, float] | None, target: float | None) -> str:
    if result is None:
        return "not measured"
    verdict = "" if target is None else (
        " (met)" if result["wall_s"] <= target else
        f" (**missed, {result['wall_s'] / target:.1f}x**)")
    return (f"{result['wall_s']:.2f} s{verdict}; {result['cpu_s']:.2f} s CPU, "
            f"{result['peak_mib']:,.0f} MiB")


def table(one: dict[str, dict[str, float]], ten: dict[str, dict[str, float]] | None) -> str:
    """The results as a Markdown table beside the targets."""
    lines = ["| on the year, warm | 1x: wall, CPU, peak | target | 10x: wall, CPU, peak "
             "| target |", "|---|---|---:|---|---:|"]
    for label, _, target, target_10x in COMMANDS:
        lines.append(
            f"| `{label}` | {_cell(one.get(label), target)} | "
            f"{'' if target is None else f'<= {target:g} s'} | "
            f"{_cell(ten.get(label) if ten else None, target_10x)} | "
            f"{'' if target_10x is None else f'<= {target_10x:g} s'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="the year store at 1x")
    parser.add_argument("--ten-x", type=Path, help="the year store at 10x (measured once)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N at 1x (default 3)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    print(f"1x: {args.store}", file=sys.stderr)
    one = measure(args.store, args.repeat)
    ten = None
    if args.ten_x is not None:
        print(f"10x: {args.ten_x}", file=sys.stderr)
        ten = measure(args.ten_x, 1)
    load_after = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": load_before, "load_after": load_after},
        "1x": one, "10x": ten,
    }
    (OUT / "results-year.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(one, ten))
    print(f"\nload average before {load_before[0]:.2f} / {load_before[1]:.2f}, after "
          f"{load_after[0]:.2f} / {load_after[1]:.2f} (1 / 5 min); {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
