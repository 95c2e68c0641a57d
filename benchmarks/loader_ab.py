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
sys.path.insert(0, {bench!r})
import run
import shadeanalytics as sa
from shadeanalytics.ingest import normalize
split = {split!r}
if split == "on":
    normalize.SPLIT_MIN_BYTES, normalize.SPLIT_MAX_LOAD = 0, float("inf")
elif split == "off":
    normalize.SPLIT_MIN_BYTES = 2**62
warnings.simplefilter("ignore")
paths = run.shapes_files({n})
def cpu():
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
small = run.shapes_files(10)
sa.read_clusters(small["array"]); run.load_duckdb_shapes(small["array"])
out = {{}}
for name in {containers!r}:
    for who, load in (("ours", sa.read_clusters), ("duckdb", run.load_duckdb_shapes)):
        c, w = cpu(), time.perf_counter()
        load(paths[name])
        out[f"{{name}} {{who}}"] = (time.perf_counter() - w, cpu() - c)
print(json.dumps(out))
"""


def _extract(ref: str, into: Path) -> None:
    tar = subprocess.run(["git", "archive", ref, "shadeanalytics"], cwd=HERE.parent,
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="11dcb98", help="git commit of the reference loader")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--split", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--clusters", type=int, default=10_000)
    args = parser.parse_args(argv)
    code = _CHILD.format(bench=str(HERE), split=args.split, n=args.clusters,
                         containers=CONTAINERS)
    best: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _extract(args.ref, Path(tmp))
        trees = {args.ref: tmp, "this tree": str(HERE.parent)}
        for round_no in range(args.rounds):
            order = list(trees) if round_no % 2 == 0 else list(trees)[::-1]
            for label in order:
                env = {**os.environ, "PYTHONPATH": trees[label]}
                done = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                      capture_output=True, text=True)
                for key, (wall, cpu) in json.loads(done.stdout.splitlines()[-1]).items():
                    seen = best.setdefault((label, key), [wall, cpu])
                    seen[:] = [min(seen[0], wall), min(seen[1], cpu)]
    print(f"best of {args.rounds} rounds, split {args.split}; load average after: "
          + " / ".join(f"{x:.1f}" for x in os.getloadavg()))
    print("| container | code | ours wall s | ours CPU s | DuckDB wall s | DuckDB CPU s "
          "| wall ratio | CPU ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in CONTAINERS:
        for label in trees:
            (ow, oc), (dw, dc) = best[(label, f"{name} ours")], best[(label, f"{name} duckdb")]
            print(f"| {name} | {label} | {ow:.2f} | {oc:.2f} | {dw:.2f} | {dc:.2f} "
                  f"| {ow / dw:.2f}x | {oc / dc:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
