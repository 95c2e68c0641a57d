"""The loader of this tree against the loader of an older commit, on the shapes files, in turns.

    python benchmarks/loader_ab.py [--ref COMMIT] [--rounds N] [--split auto|on|off]

The package of ``--ref`` is extracted (``git archive``) into a temporary folder; each round runs
one interpreter per code (the reference's, then this tree's, alternately first), which loads
every container of ``run.py``'s shapes (made by ``run.py --shapes-only`` first) once after a
small warm-up load, and DuckDB told the columns' types on the same file, and prints per load
the wall seconds and the CPU seconds of the process and its children (a split walk's second
process). The best of the rounds is printed per container and code, with the load average:
on a machine shared with other work, compare CPU seconds; wall seconds only on an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTAINERS = ("array", "jsonl", "array.gz", "wrapper")

_CHILD = """
import json, resource, sys, time, warnings
import shadeanalytics as sa  # (the code on PYTHONPATH)
sys.path.insert(0, {bench!r})
import run
assert sa.__file__.startswith(sys.argv[1]), sa.__file__
from shadeanalytics.ingest import load, normalize
split = {split!r}
if split == "on":
    normalize.SPLIT_MIN_BYTES, normalize.SPLIT_MAX_LOAD = 0, float("inf")
elif split == "off":
    normalize.SPLIT_MIN_BYTES = 2**62
warnings.simplefilter("ignore")
paths = run.shapes_files({n})
stage = {{}}
build, fork_walk = load.build_tables, normalize._Normalizer._fork_walk
def timed_build(norm):
    began = time.thread_time()
    try:
        return build(norm)
    finally:
        stage["build_tables"] = time.thread_time() - began
def timed_fork_walk(self, sizes, walk):
    began = time.thread_time()
    stage["before the fork"] = began - stage.get("start", began)
    try:
        return fork_walk(self, sizes, walk)
    finally:
        stage["loader's split part"] = time.thread_time() - began
load.build_tables, normalize._Normalizer._fork_walk = timed_build, timed_fork_walk
def cpu(who):
    return sum(getattr(resource.getrusage(who), f) for f in ("ru_utime", "ru_stime"))
small = run.shapes_files(10)
sa.read_clusters(small["array"]); run.load_duckdb_shapes(small["array"])
out = {{}}
for name in {containers!r}:
    for who, fn in (("ours", sa.read_clusters), ("duckdb", run.load_duckdb_shapes)):
        stage.clear()
        kids, own = cpu(resource.RUSAGE_CHILDREN), cpu(resource.RUSAGE_SELF)
        wall = time.perf_counter()
        stage["start"] = time.thread_time()
        fn(paths[name])
        wall, own, kids = (time.perf_counter() - wall, cpu(resource.RUSAGE_SELF) - own,
                           cpu(resource.RUSAGE_CHILDREN) - kids)
        del stage["start"]
        out[f"{{name}} {{who}}"] = {{"wall": wall, "cpu": own + kids, "child": kids, **stage}}
print(json.dumps(out))
"""

#: the stages printed (CPU seconds of the loader's thread; the child's: all its CPU)
STAGES = ("before the fork", "loader's split part", "child", "build_tables")


def _extract(ref: str, into: Path) -> None:
    tar = subprocess.run(
        ["git", "archive", ref, "shadeanalytics"], cwd=HERE.parent, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="11dcb98", help="git commit of the reference loader")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--split", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--clusters", type=int, default=10_000)
    args = parser.parse_args(argv)
    code = _CHILD.format(bench=str(HERE), split=args.split, n=args.clusters, containers=CONTAINERS)
    best: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _extract(args.ref, Path(tmp) / "ref")  # (run from tmp: "." holds no package)
        trees = {args.ref: str(Path(tmp) / "ref"), "this tree": str(HERE.parent)}
        for round_no in range(args.rounds):
            order = list(trees) if round_no % 2 == 0 else list(trees)[::-1]
            for label in order:
                env = {**os.environ, "PYTHONPATH": trees[label]}
                done = subprocess.run(
                    [sys.executable, "-c", code, trees[label]],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=tmp,
                )  # (not ".")
                for key, measured in json.loads(done.stdout.splitlines()[-1]).items():
                    seen = best.setdefault((label, key), {})
                    for what, value in measured.items():  # the best of each, apart
                        seen[what] = min(seen.get(what, value), value)
    print(
        f"best of {args.rounds} rounds, split {args.split}; load average after: "
        + " / ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    print(
        "| container | code | ours wall s | ours CPU s | DuckDB wall s | DuckDB CPU s "
        "| wall ratio | CPU ratio | " + " | ".join(STAGES) + " |"
    )
    print("|---|---|" + "---:|" * (6 + len(STAGES)))
    for name in CONTAINERS:
        for label in trees:
            ours, duck = best[(label, f"{name} ours")], best[(label, f"{name} duckdb")]
            stages = " | ".join(f"{ours[s]:.2f}" if s in ours else "" for s in STAGES)
            print(
                f"| {name} | {label} | {ours['wall']:.2f} | {ours['cpu']:.2f} "
                f"| {duck['wall']:.2f} | {duck['cpu']:.2f} | {ours['wall'] / duck['wall']:.2f}x "
                f"| {ours['cpu'] / duck['cpu']:.2f}x | {stages} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
