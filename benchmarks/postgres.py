"""The PostgreSQL store against SQLite (issue 25): ``record_poll`` of ~1,000 instances, and
``summary --store`` of a long history.

Starts a PostgreSQL server of its own (the tests' ``tests/pgserver.py``, with PostgreSQL's
default, durable fsync and synchronous commit: SQLite runs with ``synchronous = FULL``) and
talks to it over its Unix socket.

1. record_poll: the history benchmark's simulated ~1,000-instance fleet (``history.simulate``);
   the same ``--polls-recorded`` polls recorded through ``Store.record_poll`` into a new SQLite
   file and a new PostgreSQL schema; the median commit of each (the first ``--warm`` polls,
   which add every resource, left out).
2. summary: a history of ``--history-polls`` 5-minute polls built in SQLite by
   ``history.build_store`` (bulk, then 300 polls through record_poll), copied into PostgreSQL
   with ``store copy`` (timed too), then ``shadeanalytics summary --store X --as-of latest``
   in a subprocess, each store warmed by one run first (its derived rows kept), median of
   ``--repeat``.

    python benchmarks/postgres.py                       # the defaults below
    python benchmarks/postgres.py --history-polls 105120   # the full year (slow to build)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"  # git-ignored
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import history  # noqa: E402
from pgserver import PgServer, find_bindir  # noqa: E402

from shadeanalytics.live.store import Store  # noqa: E402


def _schema(server: PgServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.socket_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return f"{server.socket_url}&options=-csearch_path%3D{name}"


def bench_record(server: PgServer, folder: Path, polls: int, warm: int) -> dict[str, float]:
    year = history.simulate(polls + 300, 1000, seed=7)
    first = 300  # a steady fleet already
    out = {}
    for label, target in (
        ("sqlite", str(folder / "record.db")),
        ("postgresql", _schema(server, "record")),
    ):
        with Store(target) as store:
            took = [
                history.record(store, year, p)
                for p in range(first, first + polls)
                if p not in year.failed
            ]
        out[label] = statistics.median(took[warm:]) * 1000
        listed = len(year.responses(first + polls - 1)["instances"]["instances"])
        print(
            f"record_poll {label}: median {out[label]:.1f} ms over {len(took) - warm} polls "
            f"(~{listed} standalone + cluster members listed)",
            flush=True,
        )
    return out


def _summary_s(store: str, repeat: int) -> float:
    cmd = [sys.executable, "-m", "shadeanalytics", "summary", "--store", store, "--as-of", "latest"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm: derived rows kept
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench_summary(server: PgServer, folder: Path, polls: int, repeat: int) -> dict[str, float]:
    path = OUT / f"history-{polls}-v{history.BUILDER_VERSION}.db"  # kept: a year takes minutes
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        began = time.perf_counter()
        history.build_store(path, polls=polls, instances=1000, real=300, quiet=True)
        print(f"built {polls} polls in SQLite in {time.perf_counter() - began:.0f} s", flush=True)
    url = _schema(server, "history")
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "shadeanalytics", "store", "copy", str(path), url],
        check=True,
        capture_output=True,
    )
    copied = time.perf_counter() - began
    print(f"store copy into PostgreSQL: {copied:.1f} s", flush=True)
    out = {"copy_s": copied}
    for label, store in (("sqlite", str(path)), ("postgresql", url)):
        out[label] = _summary_s(store, repeat)
        print(f"summary --store {label}: median {out[label]:.2f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls-recorded", type=int, default=60)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--history-polls", type=int, default=30 * 24 * 12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-summary", action="store_true")
    parser.add_argument("--skip-record", action="store_true")
    args = parser.parse_args(argv)
    bindir = find_bindir()
    if bindir is None:
        print("no PostgreSQL server binaries: apt-get install postgresql", file=sys.stderr)
        return 1
    server = PgServer(bindir).start(durable=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.skip_record:
                record = bench_record(server, Path(tmp), args.polls_recorded, args.warm)
                print(
                    f"record_poll PostgreSQL / SQLite: "
                    f"{record['postgresql'] / record['sqlite']:.2f}x (target: within 2x)"
                )
            if not args.skip_summary:
                summary = bench_summary(server, Path(tmp), args.history_polls, args.repeat)
                print(
                    f"summary PostgreSQL / SQLite: "
                    f"{summary['postgresql'] / summary['sqlite']:.2f}x (target: within 1.5x)"
                )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
