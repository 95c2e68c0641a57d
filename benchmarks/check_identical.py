"""Check that a change of structure or speed changed no output, byte for byte.

    python benchmarks/check_identical.py [--ref COMMIT] [--examples N] [--shapes N]
                                         [--shapes-only] [--added TABLE.COLUMN ...]

The reference is the code of ``--ref`` (default ``b81f589``, the commit before issue 11's
restructuring), checked out into a throw-away git worktree. Then:

1. ``write_csv``: random DataFrames (hypothesis: every dtype the writer handles, any Unicode
   text with the characters that need quoting or escaping, -0.0, NaN, infinities, NA, times
   at s / ms / us precision, one-column and empty frames) written by today's writer and the
   reference's: the files must be identical;
2. reports: ``shadeanalytics report`` and ``summary`` of the reference and of today's code
   (each in its own interpreter) on the sample fleet (several ``--as-of``) and the seed
   example, with charts and page: every file identical, except the columns named by
   ``--added`` (default ``instances.docker_shared_memory_in_gb``, the field issue 11 added),
   which are removed from today's CSV before comparing;
3. the loader: a fleet of ``benchmarks/shapes.py`` (realistic shapes, independent of the
   project's generator) in every container (JSON array of info responses, JSONL, the
   ``/clusters`` wrapper, gzipped) read from files by the typed path gives the tables of the
   general path (the same fleet as parsed objects), exactly (``--shapes N``; ``--shapes-only``
   runs only this check).

Exits 1 at the first difference, naming it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

def reference_checkout(commit: str, where: Path) -> Path:
    """The repository at ``commit`` in a detached worktree at ``where`` (removed by
    ``drop_checkout``)."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where),
                    commit], check=True)
    return where


def drop_checkout(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                   check=False)


def reference_csvout(checkout: Path) -> object:
    """The reference's CSV writer (its module, whichever folder it lived in), imported as
    ``_sa_reference_csvout`` with its package imports pointing at today's package."""
    found = sorted((checkout / "shadeanalytics").rglob("csvout.py"))
    text = found[0].read_text()
    text = re.sub(r"from \.+(\w+(?:\.\w+)*) import",
                  lambda m: f"from shadeanalytics.{m.group(1)} import", text)
    spec = importlib.util.spec_from_loader("_sa_reference_csvout", loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    exec(compile(text, str(found[0]), "exec"), module.__dict__)
    return module


# -- 1. write_csv on random frames ---------------------------------------------------------------


def check_write_csv(ref_csvout: object, examples: int, tmp: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from shadeanalytics.output.csvout import write_csv

    ref_write = ref_csvout.write_csv  # type: ignore[attr-defined]
    special = st.sampled_from(list(",\"'\r\n\t =+-@\uff1d\uff0b\uff0d\uff20x\u00e9\u2028\x00"))
    texts = st.one_of(st.text(max_size=8), st.lists(special, max_size=6).map("".join))

    def column(kind: str, n: int) -> st.SearchStrategy:
        na = st.none()
        if kind == "string":
            return st.lists(st.one_of(na, texts), min_size=n, max_size=n).map(
                lambda v: pd.array(v, dtype="string"))
        if kind == "str":
            return st.lists(texts, min_size=n, max_size=n).map(lambda v: pd.array(v, dtype=str))
        if kind == "object":
            mixed = st.one_of(na, texts, st.integers(-5, 5), st.floats(), st.booleans())
            return st.lists(mixed, min_size=n, max_size=n).map(
                lambda v: np.array([*v, None], dtype=object)[:-1] if v else np.array([], object))
        if kind == "float":
            floats = st.one_of(st.floats(), st.sampled_from([-0.0, 0.0, 1e-7, -4e-7, 5e-7, 1e16,
                                                            1e-5, 2.675, 0.1 + 0.2]))
            return st.lists(floats, min_size=n, max_size=n).map(
                lambda v: np.asarray(v, dtype="float64"))
        if kind == "Float64":
            return st.lists(st.one_of(na, st.floats(allow_nan=False)), min_size=n,
                            max_size=n).map(lambda v: pd.array(v, dtype="Float64"))
        if kind == "Int64":
            return st.lists(st.one_of(na, st.integers(-2**63, 2**63 - 1)), min_size=n,
                            max_size=n).map(lambda v: pd.array(v, dtype="Int64"))
        if kind == "int64":
            return st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n).map(
                lambda v: np.asarray(v, dtype="int64"))
        if kind == "uint64":
            return st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n).map(
                lambda v: np.asarray(v, dtype="uint64"))
        if kind == "boolean":
            return st.lists(st.one_of(na, st.booleans()), min_size=n, max_size=n).map(
                lambda v: pd.array(v, dtype="boolean"))
        if kind == "bool":
            return st.lists(st.booleans(), min_size=n, max_size=n).map(
                lambda v: np.asarray(v, dtype=bool))
        if kind == "category":
            return st.lists(st.one_of(na, st.sampled_from(["active", "=x", "a,b", "q\"", ""])),
                            min_size=n, max_size=n).map(lambda v: pd.Categorical(v))
        # times: microseconds since 1970, rounded to s, ms or us for the whole column
        step = {"time_s": 1_000_000, "time_ms": 1000, "time_us": 1}[kind]
        stamps = st.one_of(na, st.integers(-2**40, 2**52).map(lambda x: x - x % step))
        return st.lists(stamps, min_size=n, max_size=n).map(
            lambda v: pd.DatetimeIndex(np.array([pd.NaT.value if x is None else x for x in v],
                                                dtype="int64").view("datetime64[us]")
                                       ).tz_localize("UTC").tz_convert(
                                           "Europe/Paris" if len(v) % 2 else "UTC"))

    kinds = ["string", "str", "object", "float", "Float64", "Int64", "int64", "uint64",
             "boolean", "bool", "category", "time_s", "time_ms", "time_us"]

    @st.composite
    def frames(draw: st.DrawFn) -> pd.DataFrame:
        n = draw(st.integers(0, 12))
        chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=5))
        names = draw(st.lists(texts, min_size=len(chosen), max_size=len(chosen),
                              unique=True))
        return pd.DataFrame({name: draw(column(kind, n))
                             for name, kind in zip(names, chosen, strict=True)})

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(frames())
    def same(df: pd.DataFrame) -> None:
        warnings.simplefilter("ignore", RuntimeWarning)  # rounding 1e308 overflows, in both
        new, old = tmp / "new.csv", tmp / "old.csv"
        failed = []
        for writer, path in ((write_csv, new), (ref_write, old)):
            try:
                writer(df, path)
            except Exception as exc:  # both must fail alike
                failed.append(type(exc))
        assert len(failed) in (0, 2) and len(set(failed)) <= 1, (failed, df.dtypes)
        if not failed:
            assert new.read_bytes() == old.read_bytes(), (df.dtypes, new.read_bytes(),
                                                           old.read_bytes())

    same()
    print(f"write_csv: {examples} random frames written identically")


# -- 2. reports ----------------------------------------------------------------------------------


def _run(code_root: Path, args: list[str]) -> str:
    """``python -m shadeanalytics ARGS`` with the package of ``code_root``; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "PYTHONHASHSEED": "0"}
    run = subprocess.run([sys.executable, "-m", "shadeanalytics", *args], cwd=code_root,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (code_root, args, run.stderr[-2000:])
    return run.stdout


def _without(path: Path, columns: list[str]) -> bytes:
    """The CSV at ``path`` without ``columns`` (today's file, for the comparison)."""
    if not columns:
        return path.read_bytes()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.drop(columns=columns).to_csv(index=False, lineterminator="\n").encode()


def check_reports(checkout: Path, added: list[str], tmp: Path) -> None:
    drop: dict[str, list[str]] = {}
    for name in added:
        table, column = name.split(".", 1)
        drop.setdefault(f"{table}.csv", []).append(column)
    runs = [("sample", ROOT / "data" / "sample", at) for at in
            ("2026-11-19T12:00:00Z", "2026-11-20T00:00:00Z", "2026-12-31T00:00:00Z")]
    runs.append(("seed", ROOT / "data" / "seed" / "cluster-info-example.json",
                 "2026-11-20T00:00:00Z"))
    for label, source, at in runs:
        out = {}
        for side, code in (("new", ROOT), ("old", checkout)):
            out[side] = tmp / f"{label}-{at[:10]}-{side}"
            _run(code, ["report", str(source), "--out", str(out[side]), "--as-of", at])
            summary = _run(code, ["summary", str(source), "--as-of", at])
            (tmp / f"{label}-{at[:10]}-{side}.summary").write_text(summary)
        # the one money format (issue 11) writes an amount that rounds to zero as $0.00, where
        # the summary's own formatter wrote $-0.00: the one difference made on purpose
        assert (tmp / f"{label}-{at[:10]}-new.summary").read_text() == \
            (tmp / f"{label}-{at[:10]}-old.summary").read_text().replace("$-0.00", "$0.00"), \
            (label, at, "summary")
        files = sorted(p.name for p in out["new"].iterdir())
        assert files == sorted(p.name for p in out["old"].iterdir()), (label, at)
        for name in files:
            new = out["new"] / name
            mine = _without(new, drop[name]) if name in drop else new.read_bytes()
            theirs = (_without(out["old"] / name, []) if name in drop
                      else (out["old"] / name).read_bytes())
            assert mine == theirs, (label, at, name)
        print(f"report {label} at {at}: {len(files)} files and the summary identical")


# -- 3. the loader's two paths on realistic shapes ------------------------------------------------


def check_shapes(n: int, tmp: Path) -> None:
    """``shapes.fleet(n)`` (benchmarks/shapes.py: nulls by lifecycle, unknown fields, drifted
    values) in every container, read by the typed path from files, gives the general path's
    tables (the parsed objects: the walker, then ``msgspec.convert``), row for row."""
    import json
    import warnings

    import shapes  # benchmarks/shapes.py

    import shadeanalytics as sa
    from shadeanalytics.ingest import normalize
    from shadeanalytics.ingest.decode import Cluster, decode_list_response

    fleet = shapes.fleet(n, seed=7)
    typed_items = sum(type(c) is Cluster
                      for c in decode_list_response(shapes.render(fleet, "array")).items)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.DataWarning)
        general = sa.read(json.loads(json.dumps(fleet)))
        for name in ("shapes.json", "shapes.jsonl", "shapes.clusters.json", "shapes.json.gz",
                     "shapes.jsonl.gz"):
            typed = sa.read(shapes.write(tmp / name, fleet))
            for (table, left), (_, right) in zip(general.frames(), typed.frames(), strict=True):
                pd.testing.assert_frame_equal(left, right, check_exact=True,
                                              obj=f"{name} {table}")
            assert len(general.warnings) == len(typed.warnings), name
            assert general.skipped == typed.skipped == 0, name
            # the same file walked by two processes (normalize.splits, forced): the same
            # tables and the same warnings, word for word
            saved = normalize.SPLIT_MIN_BYTES, normalize.SPLIT_MAX_LOAD
            normalize.SPLIT_MIN_BYTES, normalize.SPLIT_MAX_LOAD = 0, float("inf")
            try:
                split = sa.read(tmp / name)
            finally:
                normalize.SPLIT_MIN_BYTES, normalize.SPLIT_MAX_LOAD = saved
            for (table, left), (_, right) in zip(typed.frames(), split.frames(), strict=True):
                pd.testing.assert_frame_equal(left, right, check_exact=True,
                                              obj=f"{name} {table} (split)")
            assert split.warnings == typed.warnings, name
    print(f"loader on shapes: {n:,} info responses ({typed_items:,} typed, "
          f"{n - typed_items:,} the general way), {len(general.instances):,} instances, "
          "5 containers: every table equal to the general path's, and walked by two "
          "processes equal to one's (warnings too)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="b81f589", help="git commit of the reference code")
    parser.add_argument("--examples", type=int, default=1500,
                        help="random frames for write_csv (default 1500)")
    parser.add_argument("--shapes", type=int, default=2000,
                        help="info responses of benchmarks/shapes.py for check 3 (default 2000)")
    parser.add_argument("--shapes-only", action="store_true",
                        help="only check 3: the loader's typed and general paths on shapes")
    parser.add_argument("--added", nargs="*", default=["instances.docker_shared_memory_in_gb"],
                        metavar="TABLE.COLUMN",
                        help="columns added on purpose since --ref (left out of the comparison)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sa-identical-") as where:
        tmp = Path(where)
        check_shapes(args.shapes, tmp)
        if args.shapes_only:
            print("identical: OK")
            return 0
        checkout = reference_checkout(args.ref, tmp / "ref")
        try:
            check_write_csv(reference_csvout(checkout), args.examples, tmp)
            check_reports(checkout, args.added, tmp)
        finally:
            drop_checkout(checkout)
    print("identical: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
