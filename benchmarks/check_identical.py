"""Check that the speed work changed no output: the CSV writer and the analytics, byte for byte.

    python benchmarks/check_identical.py [--ref COMMIT] [--examples N] [--big N_CLUSTERS]
                                         [--shapes N] [--shapes-only]

The reference is the code of ``--ref`` (default ``7075d58``, the commit before the speed
work): its ``csvout``, ``costs``, ``inventory``, ``lifecycle``, ``quality`` and ``timeline``
modules are taken out of git into a throw-away package (``_sa_reference``) with today's
``report.py`` on top; their imports of every other module point at the installed
``shadeanalytics``. Then (charts off):

1. ``write_csv``: random DataFrames (hypothesis: every dtype the writer handles, any Unicode
   text with the characters that need quoting or escaping, -0.0, NaN, infinities, NA, times
   at s / ms / us precision, one-column and empty frames) written by both writers: the
   files must be identical;
2. reports: ``write_report`` of both on the sample fleet (several ``as_of``), the seed
   example, a 1,000-poll history store and the generated ``--big`` fleet: every file
   identical, and every ``analytics()`` / ``history_frames()`` DataFrame equal
   (``assert_frame_equal``, exact).

3. the loader: a fleet of ``benchmarks/shapes.py`` (realistic shapes, independent of the
   project's generator) in every container (JSON array of info responses, JSONL, the
   ``/clusters`` wrapper, gzipped) read from files by the typed path gives the tables of the
   general path (the same fleet as parsed objects), exactly (``--shapes N``; ``--shapes-only``
   runs only this check).

Exits 1 at the first difference, naming it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
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

#: the modules the speed work changed: taken from the reference commit
_CHANGED = ("csvout", "costs", "inventory", "lifecycle", "quality", "timeline")
#: ... and ``report`` (as it is now) on top of them
_OWN = (*_CHANGED, "report")


def reference_package(commit: str, where: Path) -> object:
    """``report`` over the changed modules as of ``commit``, as the package ``_sa_reference``
    (imported from ``where``); every other module is the installed package's."""
    pkg = where / "_sa_reference"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name in _OWN:
        if name == "report":
            text = (ROOT / "shadeanalytics" / "report.py").read_text()
        else:
            text = subprocess.run(["git", "-C", str(ROOT), "show",
                                   f"{commit}:shadeanalytics/{name}.py"],
                                  check=True, capture_output=True, text=True).stdout
        # modules of the reference stay relative; every other one is the installed package's
        text = re.sub(r"from \.(\w+) import",
                      lambda m: m.group(0) if m.group(1) in _OWN
                      else f"from shadeanalytics.{m.group(1)} import", text)
        (pkg / f"{name}.py").write_text(text)
    sys.path.insert(0, str(where))
    return importlib.import_module("_sa_reference.report")


# -- 1. write_csv on random frames ---------------------------------------------------------------


def check_write_csv(ref_report: object, examples: int, tmp: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from shadeanalytics.output.csvout import write_csv

    ref_write = ref_report.write_csv  # type: ignore[attr-defined]
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


def check_newest_rows(examples: int) -> None:
    """``costs._newest_rows`` (the shortcut) == ``tables._newest`` on random histories."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from shadeanalytics.analytics.costs import _newest_rows
    from shadeanalytics.ingest.tables import _newest

    ids = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
    times = st.one_of(st.none(), st.sampled_from(["2026-01-01T00:00Z", "2026-01-02T00:00Z"]))

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(ids, times, st.integers()), max_size=8), st.booleans())
    def same(rows: list[tuple[object, object, int]], shifted: bool) -> None:
        df = pd.DataFrame({
            "instance_id": pd.array([r[0] for r in rows], dtype="string"),
            "observed_at": pd.to_datetime([r[1] for r in rows], utc=True),
            "value": [r[2] for r in rows],
        })
        if shifted:  # an index that is not 0..n-1
            df.index = df.index * 3 + 7
        pd.testing.assert_frame_equal(_newest_rows(df, ["instance_id"]),
                                      _newest(df, ["instance_id"]), check_exact=True)

    same()
    print(f"_newest_rows: {examples} random histories equal to tables._newest")


# -- 2. reports ----------------------------------------------------------------------------------


def compare_reports(ref_report: object, tables: object, as_of: object, label: str,
                    tmp: Path) -> None:
    from shadeanalytics.output import report

    new_dir, old_dir = tmp / f"{label}-new", tmp / f"{label}-old"
    charts = ({"charts": False} if "charts" in inspect.signature(report.write_report).parameters
              else {})
    report.write_report(tables, new_dir, as_of=as_of, **charts)
    ref_report.write_report(tables, old_dir, as_of=as_of, **charts)  # type: ignore[attr-defined]
    new_files = sorted(p.name for p in new_dir.iterdir())
    assert new_files == sorted(p.name for p in old_dir.iterdir()), label
    for name in new_files:
        assert (new_dir / name).read_bytes() == (old_dir / name).read_bytes(), (label, name)
    frames = {**report.analytics(tables, as_of=as_of),
              **report.history_frames(tables, as_of=as_of)}
    ref = {**ref_report.analytics(tables, as_of=as_of),  # type: ignore[attr-defined]
           **ref_report.history_frames(tables, as_of=as_of)}  # type: ignore[attr-defined]
    assert frames.keys() == ref.keys(), label
    for name, df in frames.items():
        pd.testing.assert_frame_equal(df, ref[name], check_exact=True, obj=f"{label} {name}")
    print(f"report {label}: {len(new_files)} files identical, {len(frames)} frames equal")


def check_reports(ref_report: object, big: int, tmp: Path) -> None:
    import shadeanalytics as sa
    from shadeanalytics.testing.synthetic import big_clusters_response

    sample = sa.read(ROOT / "data" / "sample")
    for as_of in ("2026-11-19T12:00:00Z", "2026-11-20T00:00:00Z", "2026-12-31T00:00:00Z"):
        compare_reports(ref_report, sample, as_of, f"sample@{as_of[:10]}", tmp)
    seed = sa.read_clusters(ROOT / "data" / "seed" / "cluster-info-example.json")
    compare_reports(ref_report, seed, "2026-11-20T00:00:00Z", "seed", tmp)

    from history import build_store  # benchmarks/history.py

    from shadeanalytics.live.store import Store

    store_path = tmp / "history.db"
    end = build_store(store_path, polls=1000, instances=200, seed=3, quiet=True)
    with Store(store_path, create=False) as store:
        history = store.read()
    compare_reports(ref_report, history, end, "store-1000-polls", tmp)
    if big:
        tables = sa.read_clusters(big_clusters_response(big))
        compare_reports(ref_report, tables, "2026-11-20T00:00:00Z", f"big-{big}", tmp)


# -- 3. the loader's two paths on realistic shapes ------------------------------------------------


def check_shapes(n: int, tmp: Path) -> None:
    """``shapes.fleet(n)`` (benchmarks/shapes.py: nulls by lifecycle, unknown fields, drifted
    values) in every container, read by the typed path from files, gives the general path's
    tables (the parsed objects: the walker, then ``msgspec.convert``), row for row."""
    import json
    import warnings

    import shapes  # benchmarks/shapes.py

    import shadeanalytics as sa
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
    print(f"loader on shapes: {n:,} info responses ({typed_items:,} typed, "
          f"{n - typed_items:,} the general way), {len(general.instances):,} instances, "
          "5 containers: every table equal to the general path's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="7075d58", help="git commit of the reference code")
    parser.add_argument("--examples", type=int, default=1500,
                        help="random frames for write_csv (default 1500)")
    parser.add_argument("--big", type=int, default=10_000,
                        help="clusters of the generated fleet (0: skip; default 10000)")
    parser.add_argument("--shapes", type=int, default=2000,
                        help="info responses of benchmarks/shapes.py for check 3 (default 2000)")
    parser.add_argument("--shapes-only", action="store_true",
                        help="only check 3: the loader's typed and general paths on shapes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sa-identical-") as where:
        tmp = Path(where)
        check_shapes(args.shapes, tmp)
        if args.shapes_only:
            print("identical: OK")
            return 0
        ref_report = reference_package(args.ref, tmp / "pkg")
        check_write_csv(ref_report, args.examples, tmp)
        check_newest_rows(args.examples)
        check_reports(ref_report, args.big, tmp)
    print("identical: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
