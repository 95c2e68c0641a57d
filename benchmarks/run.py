"""shadeanalytics benchmarks: loader, report, growth and history store (see README.md).

    python benchmarks/run.py            # the full run (about 10 minutes; 15 the first time)
    python benchmarks/run.py --quick    # smaller sizes, a smoke run (about a minute)
    python benchmarks/run.py --shapes-only   # only part 1b, the loader on realistic shapes

Every timing is the best of ``--repeat`` runs (default 3) in one process, garbage collected
before each; peak memory is measured in a fresh child process (``ru_maxrss``). Results are
printed and written to ``benchmarks/out/results.json``; the growth plot to
``benchmarks/growth.png`` (``--quick``: ``benchmarks/out/growth-quick.png``). Inputs are
generated (deterministically) into ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

#: the instant the generated fleet is observed at (synthetic._BIG_OBSERVED)
AS_OF = "2026-11-20T00:00:00Z"

# -- targets of the issue -------------------------------------------------------------------------
NAIVE_OVER_OURS = 5.0  # ours at least 5x faster than the naive method
OURS_OVER_DUCKDB = 1.5  # ours within 1.5x of DuckDB's read_json
PEAK_OVER_FRAMES = 3.0  # peak memory at most 3x the DataFrames' deep memory
REPORT_OVER_LOAD = 2.0  # the report's CSVs in at most 2x the load time
GROWTH_SPREAD = 1.3  # cost per instance within 1.3x across sizes
COMMIT_MEDIAN_S = 0.2  # one poll of 1,000 instances committed in 200 ms (median)
HISTORY_FRAMES_S = 5.0  # status_timeline + fleet_over_time over a year
STORE_REPORT_S = 3.0  # the report from the store (issue 16; issue 10 asked for 10 s)
STORE_READ_S = 2.0  # Store.read() of the year
SUMMARY_S = 1.0  # `summary --store` of the year
DIRTY_OVER_CLEAN = 1.2  # nulls, unknown fields and drifted values cost at most 1.2x


# -- helpers ------------------------------------------------------------------------------------


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """(best seconds, last result) of ``repeat`` calls, each after a full collection."""
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None
        gc.collect()
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    return best, result


def cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def frames_bytes(tables: Any) -> int:
    """``memory_usage(deep=True)`` summed over every table of a ``Tables``."""
    return int(sum(df.memory_usage(deep=True).sum() for _, df in tables.frames()))


def clusters_file(n: int) -> Path:
    """The generated ``GET /clusters`` response of ``n`` clusters (written once per run)."""
    from shadeanalytics.testing.synthetic import big_clusters_response

    path = OUT / f"clusters-{n}.json"
    data = big_clusters_response(n)
    if not path.exists() or path.stat().st_size != len(data) or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def machine() -> dict[str, Any]:
    import duckdb
    import msgspec
    import numpy
    import orjson
    import pandas

    try:
        import pyarrow
        arrow = pyarrow.__version__
    except ImportError:
        arrow = "not installed"
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    ram = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    return {
        "nproc": os.cpu_count(), "cpu": model, "ram_gib": round(ram / 2**30, 1),
        "python": platform.python_version(), "pandas": pandas.__version__,
        "numpy": numpy.__version__, "msgspec": msgspec.__version__,
        "orjson": orjson.__version__, "duckdb": duckdb.__version__, "pyarrow": arrow,
        "load_average": os.getloadavg(),
    }


# -- the loaders --------------------------------------------------------------------------------

_CLUSTER_META = ["id", "name", "cloud", ["region_info", "region"], "status", "created_at",
                 "updated_at", "active_at", "hourly_price", "cost_estimate", "cloud_cluster_id"]
_NAIVE_TIMES = ["created_at", "active_at", "deleted_at", "rental_terms.ending_at",
                "cluster.created_at", "cluster.updated_at", "cluster.active_at"]


def load_naive(raw: bytes) -> Any:
    """``json.loads`` + ``pd.json_normalize`` (one row per instance, cluster fields as meta)
    + ``pd.to_datetime`` on the timestamp columns."""
    import json as std_json


    return _naive_frame(std_json.loads(raw)["clusters"])


def _naive_frame(clusters: list[Any]) -> Any:
    """``pd.json_normalize`` of parsed clusters (one row per instance, cluster fields as
    meta) + ``pd.to_datetime`` on the timestamp columns."""
    import pandas as pd

    df = pd.json_normalize(clusters, record_path="instances", meta=_CLUSTER_META,
                           meta_prefix="cluster.", errors="ignore")
    for column in _NAIVE_TIMES:
        if column in df:
            df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
    return df


def load_orjson(raw: bytes) -> Any:
    import orjson

    return orjson.loads(raw)


#: one row per instance: its cluster's id and the scalar columns of our instances table
DUCKDB_QUERY = """
WITH c AS (
    SELECT unnest(clusters) AS c
    FROM read_json(?, maximum_object_size = 2000000000, format = 'auto')
), i AS (SELECT c.id AS cluster_id, unnest(c.instances) AS i FROM c)
SELECT
    cluster_id::VARCHAR AS cluster_id, i.id::VARCHAR AS instance_id, i.name, i.cloud, i.region,
    i.shade_instance_type, i.cloud_instance_type, i.cloud_assigned_id::VARCHAR AS
    cloud_assigned_id, i.shade_cloud, i.status, i.status_details,
    i.configuration.gpu_type AS gpu_type, i.configuration.gpu_manufacturer AS gpu_manufacturer,
    i.configuration.num_gpus AS num_gpus, i.configuration.vram_per_gpu_in_gb AS
    vram_per_gpu_in_gb, i.configuration.vcpus AS vcpus, i.configuration.memory_in_gb AS
    memory_in_gb, i.configuration.storage_in_gb AS storage_in_gb,
    i.configuration.interconnect AS interconnect, i.configuration.nvlink AS nvlink,
    i.configuration.os AS os, i.ip, i.ssh_user, i.ssh_port, i.hourly_price AS
    hourly_price_cents, i.hourly_price / 100 AS hourly_price_usd, i.cost_estimate,
    i.rental_terms.rental_type AS rental_type,
    TRY_CAST(i.created_at AS TIMESTAMPTZ) AS created_at,
    TRY_CAST(i.active_at AS TIMESTAMPTZ) AS active_at,
    TRY_CAST(i.deleted_at AS TIMESTAMPTZ) AS deleted_at,
    i.boot_time.min_boot_in_sec AS boot_time_min_s, i.boot_time.max_boot_in_sec AS
    boot_time_max_s, i.launch_configuration.type AS launch_type
FROM i
"""


def load_duckdb(path: Path) -> Any:
    import duckdb

    with duckdb.connect() as con:
        return con.execute(DUCKDB_QUERY, [str(path)]).df()


def load_ours(raw: bytes) -> Any:
    import shadeanalytics as sa

    return sa.read_clusters(raw)


# -- peak memory (child process) ------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _child_memory(method: str, path: str) -> None:
    """Run in a fresh interpreter: load ``path`` with ``method``; print the memory figures.

    The baseline is the resident set once the libraries are imported, warmed up by loading a
    10-cluster response the same way, and the file's bytes read; then the kernel's high-water
    mark is reset (``/proc/self/clear_refs``), the file loaded, and the new high-water mark
    (``VmHWM``) read: peak - baseline is what the load itself needed at its worst moment,
    whatever allocated it (Python objects, numpy, Arrow's allocator, DuckDB; ``tracemalloc``
    sees only the first two). Without ``clear_refs`` (not
    Linux) it falls back to ``ru_maxrss``, which an import-time peak can hide.
    """
    import duckdb  # noqa: F401 (every child imports the same libraries)
    import pandas  # noqa: F401

    import shadeanalytics  # noqa: F401

    def run(file: Path, raw: bytes) -> Any:
        if method == "duckdb":
            return load_duckdb(file)  # it reads the file itself
        if method == "ours-shapes":  # as "ours": from the bytes read before the baseline
            return load_ours(raw)
        if method.endswith("-shapes"):  # they read the file themselves
            return {"naive-shapes": load_naive_shapes,
                    "duckdb-shapes": load_duckdb_shapes}[method](file)
        return {"naive": load_naive, "orjson": load_orjson, "ours": load_ours}[method](raw)

    # one small load first: lazy imports, caches and allocator arenas that the first call of
    # a library sets up once per process are not the cost of a load
    small = shapes_files(10)["array"] if method.endswith("-shapes") else clusters_file(10)
    run(small, small.read_bytes())
    raw = Path(path).read_bytes()
    gc.collect()
    try:
        base = _status_kib("VmRSS") * 1024
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        high_water: Callable[[], int] = lambda: _status_kib("VmHWM") * 1024  # noqa: E731
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        high_water = lambda: resource.getrusage(  # noqa: E731
            resource.RUSAGE_SELF).ru_maxrss * 1024
    result = run(Path(path), raw)
    peak = high_water()
    frames = None
    if method in ("ours", "ours-shapes"):
        frames = frames_bytes(result)
        rows = len(result.instances)
    elif method in ("naive", "duckdb", "naive-shapes", "duckdb-shapes"):
        frames = int(result.memory_usage(deep=True).sum())
        rows = len(result)
    else:
        rows = None
    # a big list's second part is walked by a forked child (ingest.normalize.splits): its
    # resident peak, which counts the pages it shares with this process until it writes them
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"base": base, "peak": peak, "delta": peak - base, "frames": frames,
                      "rows": rows, "split_child_peak": child_peak}))


def peak_memory(method: str, path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child-memory", method, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- 1. the loader ------------------------------------------------------------------------------


def bench_loader(n: int, repeat: int) -> dict[str, Any]:
    path = clusters_file(n)
    raw = path.read_bytes()
    times: dict[str, float] = {}
    # interleaved: each round runs every method once, so that load on the machine hits all
    for _ in range(repeat):
        for name, fn in (("naive", lambda: load_naive(raw)), ("orjson", lambda: load_orjson(raw)),
                         ("duckdb", lambda: load_duckdb(path)), ("ours", lambda: load_ours(raw))):
            seconds, result = best_of(1, fn)
            times[name] = min(times.get(name, float("inf")), seconds)
            if name == "ours":
                tables = result
            del result
    memory = {name: peak_memory(name, path) for name in ("ours", "duckdb", "naive")}
    return {
        "clusters": n, "bytes": len(raw), "instances": len(tables.instances),
        "frames_bytes": frames_bytes(tables), "seconds": times, "memory": memory,
        "tables": tables,
    }


# -- 1b. the loader on realistic shapes (shapes.py) ------------------------------------------------

#: the containers of shapes.py: name -> file name (its suffix says the format)
SHAPES_FILES = {"array": "shapes.json", "jsonl": "shapes.jsonl",
                "wrapper": "shapes.clusters.json", "array.gz": "shapes.json.gz",
                "clean array": "shapes-clean.json"}


def shapes_files(n: int) -> dict[str, Path]:
    """The fleet of ``shapes.fleet(n)`` in every container, and its clean twin as an array
    (written once: regenerated only when missing or of another size)."""
    import shapes

    paths = {name: OUT / (f"{n}-" + file) for name, file in SHAPES_FILES.items()}
    stamp = OUT / f"{n}-shapes.done"
    if not stamp.exists() or not all(p.exists() for p in paths.values()):
        dirty = shapes.fleet(n)
        for name, path in paths.items():
            if name != "clean array":
                shapes.write(path, dirty)
        del dirty
        shapes.write(paths["clean array"], shapes.fleet(n, dirty=False))
        stamp.write_text("ok\n")
    return paths


def _shape_format(path: Path) -> tuple[str, bool]:
    name = path.name
    gz = name.endswith(".gz")
    stem = name[:-3] if gz else name
    fmt = "wrapper" if stem.endswith(".clusters.json") else \
        "jsonl" if stem.endswith(".jsonl") else "array"
    return fmt, gz


def load_naive_shapes(path: Path) -> Any:
    """The naive method on a shapes file: ``json.loads`` (of each line for JSONL) +
    ``pd.json_normalize(record_path="instances")`` + ``pd.to_datetime``."""
    import gzip
    import json as std_json

    fmt, gz = _shape_format(path)
    raw = path.read_bytes()
    if gz:
        raw = gzip.decompress(raw)
    if fmt == "jsonl":
        clusters = [std_json.loads(line) for line in raw.splitlines() if line.strip()]
    else:
        data = std_json.loads(raw)
        clusters = data["clusters"] if fmt == "wrapper" else data
    return _naive_frame(clusters)


#: the JSON types of the fields the instances frame reads, as an expert declares them to
#: ``read_json(columns=...)`` (issue 24, item 5): DuckDB parses only these, typed (times as
#: TIMESTAMPTZ, dollar strings as DOUBLE), and skips every other field without inferring it
DUCKDB_INSTANCE = """STRUCT(
    id VARCHAR, name VARCHAR, cloud VARCHAR, region VARCHAR, shade_instance_type VARCHAR,
    cloud_instance_type VARCHAR, cloud_assigned_id VARCHAR, shade_cloud BOOLEAN,
    status VARCHAR, status_details VARCHAR,
    configuration STRUCT(memory_in_gb BIGINT, storage_in_gb BIGINT, vcpus BIGINT,
        num_gpus BIGINT, gpu_type VARCHAR, interconnect VARCHAR, vram_per_gpu_in_gb BIGINT,
        gpu_manufacturer VARCHAR, os VARCHAR, nvlink BOOLEAN),
    ip VARCHAR, ssh_user VARCHAR, ssh_port BIGINT, cost_estimate DOUBLE,
    created_at TIMESTAMPTZ, active_at TIMESTAMPTZ, deleted_at TIMESTAMPTZ, hourly_price BIGINT,
    launch_configuration STRUCT(type VARCHAR,
        docker_configuration STRUCT(image VARCHAR, shared_memory_in_gb BIGINT,
            registry_credentials JSON),
        script_configuration STRUCT(base64_script VARCHAR)),
    rental_terms STRUCT(rental_type VARCHAR, hourly_price DOUBLE, ending_at TIMESTAMPTZ),
    boot_time STRUCT(min_boot_in_sec BIGINT, max_boot_in_sec BIGINT),
    ssh_key_id VARCHAR)"""
DUCKDB_CLUSTER = f"STRUCT(id VARCHAR, instances {DUCKDB_INSTANCE}[])"

#: every column of our instances table, from one row per (cluster id, instance ``i``): the
#: same names, in the same order (detail columns NULL: the cluster info shape has none), the
#: script's sha256 and the registry-credentials flag derived as ours are. The casts are no-ops
#: on the declared columns and read the inferred ones the same way.
DUCKDB_INSTANCES_SELECT = """
SELECT
    cluster_id::VARCHAR AS cluster_id, i.id::VARCHAR AS instance_id, i.name, i.cloud,
    i.region, i.shade_instance_type, i.cloud_instance_type,
    i.cloud_assigned_id::VARCHAR AS cloud_assigned_id, i.shade_cloud, i.status,
    i.status_details, i.configuration.gpu_type AS gpu_type,
    i.configuration.gpu_manufacturer AS gpu_manufacturer,
    i.configuration.num_gpus AS num_gpus,
    i.configuration.vram_per_gpu_in_gb AS vram_per_gpu_in_gb,
    i.configuration.num_gpus * i.configuration.vram_per_gpu_in_gb AS total_vram_gb,
    i.configuration.vcpus AS vcpus, i.configuration.memory_in_gb AS memory_in_gb,
    i.configuration.storage_in_gb AS storage_in_gb,
    i.configuration.interconnect AS interconnect, i.configuration.nvlink AS nvlink,
    i.configuration.os AS os, i.ip, i.ssh_user, i.ssh_port::BIGINT AS ssh_port,
    i.hourly_price::BIGINT AS hourly_price_cents, i.hourly_price / 100 AS hourly_price_usd,
    TRY_CAST(i.cost_estimate AS DOUBLE) AS cost_estimate_usd,
    i.rental_terms.rental_type AS rental_type,
    TRY_CAST(i.rental_terms.hourly_price AS DOUBLE) AS rental_hourly_price_usd,
    TRY_CAST(i.rental_terms.ending_at AS TIMESTAMPTZ) AS rental_ending_at,
    TRY_CAST(i.created_at AS TIMESTAMPTZ) AS created_at,
    TRY_CAST(i.active_at AS TIMESTAMPTZ) AS active_at,
    TRY_CAST(i.deleted_at AS TIMESTAMPTZ) AS deleted_at,
    i.boot_time.min_boot_in_sec AS boot_time_min_s,
    i.boot_time.max_boot_in_sec AS boot_time_max_s,
    i.launch_configuration.type AS launch_type,
    i.launch_configuration.docker_configuration.image AS docker_image,
    i.launch_configuration.docker_configuration.shared_memory_in_gb::BIGINT
        AS docker_shared_memory_in_gb,
    CASE WHEN i.launch_configuration.docker_configuration IS NULL THEN NULL
        ELSE i.launch_configuration.docker_configuration.registry_credentials IS NOT NULL
        END AS has_registry_credentials,
    sha256(from_base64(i.launch_configuration.script_configuration.base64_script))
        AS script_sha256,
    NULL::VARCHAR AS ssh_key_id, NULL::TIMESTAMPTZ AS auto_delete_at,
    NULL::DOUBLE AS auto_delete_spend_threshold_usd, NULL::TIMESTAMPTZ AS alert_at,
    NULL::DOUBLE AS alert_spend_threshold_usd, NULL::BOOLEAN AS volume_mount_auto,
    false AS has_details, NULL::TIMESTAMPTZ AS details_observed_at,
    NULL::TIMESTAMPTZ AS observed_at
FROM i
"""


def duckdb_shapes_query(path: Path, declared: bool = True) -> str:
    """The DuckDB query of a shapes file: ``read_json`` (array, newline-delimited, or the
    wrapper's ``clusters``; gzip by its suffix), its columns declared (``columns=``) or
    inferred, + ``unnest`` of each cluster's instances to our instances columns."""
    fmt, _ = _shape_format(path)
    columns = ""
    if fmt == "wrapper":
        if declared:
            columns = f", columns = {{clusters: '{DUCKDB_CLUSTER}[]'}}"
        source = (f"SELECT unnest(clusters) AS c FROM read_json(?, format = 'auto', "
                  f"maximum_object_size = 2000000000{columns})")
    else:
        if declared:
            columns = f", columns = {{id: 'VARCHAR', instances: '{DUCKDB_INSTANCE}[]'}}"
        json_format = "newline_delimited" if fmt == "jsonl" else "array"
        source = (f"SELECT c FROM read_json(?, format = '{json_format}', "
                  f"maximum_object_size = 2000000000{columns}) AS c")
    return (f"WITH c AS ({source}),\n"
            "i AS (SELECT c.id AS cluster_id, unnest(c.instances) AS i FROM c)"
            + DUCKDB_INSTANCES_SELECT)


def load_duckdb_shapes(path: Path, declared: bool = True) -> Any:
    """DuckDB on a shapes file (``duckdb_shapes_query``), to a pandas DataFrame of our
    instances table's columns; it reads the file, gzip too, on both cores."""
    import duckdb

    with duckdb.connect() as con:
        return con.execute(duckdb_shapes_query(path, declared), [str(path)]).df()


def instances_differences(ours: Any, duck: Any, rows: int = 2000, seed: int = 0) -> list[str]:
    """Where DuckDB's instances frame differs from ours: column names and order, row count,
    and, on ``rows`` rows drawn at random (matched by instance id), every value (times as
    instants, numbers within 1e-9, status as text). Empty when they agree."""
    import numpy as np
    import pandas as pd

    problems = []
    if list(duck.columns) != list(ours.columns):
        problems.append(f"columns differ: {sorted(set(duck.columns) ^ set(ours.columns))} "
                        "or their order")
        return problems
    if len(duck) != len(ours):
        return [f"{len(duck)} rows, ours {len(ours)}"]
    key = ["cluster_id", "instance_id"]
    a = ours.sort_values(key, kind="stable").reset_index(drop=True)
    b = duck.sort_values(key, kind="stable").reset_index(drop=True)
    pick = np.random.default_rng(seed).choice(len(a), size=min(rows, len(a)), replace=False)
    a, b = a.iloc[pick], b.iloc[pick]
    for column in a.columns:
        x, y = a[column], b[column]
        if isinstance(x.dtype, pd.DatetimeTZDtype):
            y = pd.to_datetime(y, utc=True).astype(x.dtype)
            same = (x.to_numpy() == y.to_numpy()) | (x.isna().to_numpy() & y.isna().to_numpy())
        elif x.dtype.kind == "f":
            xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float, na_value=np.nan)
            same = np.isclose(xv, yv, rtol=0, atol=1e-9, equal_nan=True)
        else:
            xv = x.astype(object).where(x.notna(), None).to_numpy()
            yv = y.astype(object).where(y.notna(), None).to_numpy()
            same = np.array([u == v or (u is None and v is None) for u, v in
                             zip(xv.tolist(), yv.tolist(), strict=True)])
        if not same.all():
            problems.append(f"{column}: {int((~same).sum())} of {len(same)} sampled rows differ")
    return problems


def load_ours_shapes(path: Path) -> Any:
    import shadeanalytics as sa

    return sa.read_clusters(path)


def _general_items(path: Path) -> int:
    """How many info responses of ``path`` the typed structs refuse (read the general way)."""
    from shadeanalytics.ingest.decode import Cluster, decode_list_response
    from shadeanalytics.ingest.load import _gunzip

    fmt, gz = _shape_format(path)
    raw = path.read_bytes()
    if gz:
        raw = _gunzip(raw, 2**31)
    lines = raw.splitlines() if fmt == "jsonl" else [raw]
    count = 0
    for line in lines:
        typed = decode_list_response(line)
        if typed is None:
            count += 1
            continue
        count += sum(type(item) is not Cluster for item in typed.items)
    return count


def bench_shapes(n: int, repeat: int) -> dict[str, Any]:
    import warnings

    paths = shapes_files(n)
    times: dict[str, dict[str, float]] = {name: {} for name in paths}
    cpu: dict[str, dict[str, float]] = {name: {} for name in paths}
    tables: dict[str, Any] = {}
    ours: dict[str, Any] = {}
    differences: dict[tuple[str, str], list[str]] = {}
    from shadeanalytics.ingest import normalize

    # whether our loader walks the big files in two processes (it decides per load, from the
    # 1-minute load average: on a busy machine it keeps to one)
    split = {"at start": normalize.splits(paths["array"].stat().st_size),
             "load average at start": os.getloadavg()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dirty fleet's unknown fields and drifted values
        # one small load each first: lazy imports are not the cost of the first container
        for small in shapes_files(10).values():
            load_ours_shapes(small), load_duckdb_shapes(small), load_naive_shapes(small)
            load_duckdb_shapes(small, declared=False)
        for _ in range(repeat):
            for name, path in paths.items():
                methods = [("ours", lambda p=path: load_ours_shapes(p))]
                if name in ("array", "jsonl", "wrapper", "array.gz", "clean array"):
                    methods += [("duckdb", lambda p=path: load_duckdb_shapes(p)),
                                ("duckdb-inferred",
                                 lambda p=path: load_duckdb_shapes(p, declared=False))]
                if name in ("array", "clean array"):
                    methods += [("naive", lambda p=path: load_naive_shapes(p))]
                for method, fn in methods:
                    began = cpu_seconds()
                    seconds, result = best_of(1, fn)
                    used = cpu_seconds() - began
                    times[name][method] = min(times[name].get(method, float("inf")), seconds)
                    cpu[name][method] = min(cpu[name].get(method, float("inf")), used)
                    if method == "ours":
                        tables[name] = (len(result.instances), frames_bytes(result),
                                        len(result.warnings))
                        ours[name] = result.instances
                    elif method.startswith("duckdb") and (name, method) not in differences:
                        # DuckDB's frame holds our instances columns, value for value
                        differences[(name, method)] = instances_differences(ours[name],
                                                                            result)
                    del result
                ours.pop(name, None)
    memory = {name: peak_memory(name, paths["array"]) for name in
              ("ours-shapes", "duckdb-shapes", "naive-shapes")}
    return {
        "clusters": n, "files": {name: str(p.name) for name, p in paths.items()},
        "bytes": {name: p.stat().st_size for name, p in paths.items()},
        "instances": {name: t[0] for name, t in tables.items()},
        "frames_bytes": {name: t[1] for name, t in tables.items()},
        "warnings": {name: t[2] for name, t in tables.items()},
        "general_items": {name: _general_items(p) for name, p in paths.items()},
        "seconds": times, "cpu_seconds": cpu, "memory": memory,
        "load_average_after": os.getloadavg(),
        "split": {**split, "at end": normalize.splits(paths["array"].stat().st_size)},
        "differences": {f"{name} {method}": found for (name, method), found in
                        differences.items()},
    }


def print_shapes(r: dict[str, Any]) -> dict[str, Any]:
    """Print part 1b; returns the ratios against the targets."""
    t = r["seconds"]
    arr = t["array"]
    print(f"\n1b. Loader on realistic shapes (benchmarks/shapes.py, independent of the test "
          f"kit): {r['clusters']:,} cluster info responses, {r['instances']['array']:,} "
          f"instances, {r['bytes']['array'] / 2**20:.0f} MiB as a JSON array")
    print("   DuckDB: read_json with the columns' types declared (the reference); inferred: "
          "its schema inferred")
    print(f"   {'container':<12} {'MiB':>5} {'naive s':>8} {'DuckDB s':>9} {'inferred s':>10} "
          f"{'ours s':>7} {'naive/ours':>10} {'ours/DuckDB':>11} {'general':>8}")
    for name in r["seconds"]:
        row = t[name]
        naive = f"{row['naive']:8.2f}" if "naive" in row else f"{'':8}"
        ratio = f"{row['naive'] / row['ours']:9.1f}x" if "naive" in row else f"{'':10}"
        print(f"   {name:<12} {r['bytes'][name] / 2**20:5.0f} {naive} {row['duckdb']:9.2f} "
              f"{row['duckdb-inferred']:10.2f} {row['ours']:7.2f} {ratio} "
              f"{row['ours'] / row['duckdb']:10.2f}x {r['general_items'][name]:8,}")
    cpu = r["cpu_seconds"]
    print("   CPU seconds (this process's threads and its children; best of the runs):")
    print(f"   {'container':<12} {'DuckDB':>7} {'ours':>6} {'ours/DuckDB':>11}")
    for name in cpu:
        print(f"   {name:<12} {cpu[name]['duckdb']:7.2f} {cpu[name]['ours']:6.2f} "
              f"{cpu[name]['ours'] / cpu[name]['duckdb']:10.2f}x")
    print("   load average after: " + ", ".join(f"{x:.2f}" for x in r["load_average_after"]))
    if "split" in r:  # whether our loader used the second core (its own decision, per load)
        split = r["split"]
        print(f"   our split walk (two processes for a big file): "
              f"{'engaged' if split['at start'] else 'not engaged'} at the start (load "
              f"{split['load average at start'][0]:.2f}), "
              f"{'engaged' if split['at end'] else 'not engaged'} at the end")
    differing = {k: v for k, v in r["differences"].items() if v}
    print(f"   DuckDB's instances frames == ours (columns, rows, 2,000 sampled rows' values): "
          f"{_mark(not differing)}" + "".join(f"\n     {k}: {'; '.join(v)}"
                                              for k, v in differing.items()))
    naive_ratio = arr["naive"] / arr["ours"]
    duck_ratio = max(t[name]["ours"] / t[name]["duckdb"] for name in t)
    per = {name: t[name]["ours"] / r["instances"][name] for name in t}
    dirty_ratio = per["array"] / per["clean array"]
    print("   (general: info responses the typed structs refuse, read the general way)")
    print(f"   naive / ours (array) = {naive_ratio:.1f} (target >= {NAIVE_OVER_OURS}): "
          f"{_mark(naive_ratio >= NAIVE_OVER_OURS)}")
    cpu_ratio = max(cpu[name]["ours"] / cpu[name]["duckdb"] for name in cpu)
    print(f"   ours / DuckDB, worst container = {duck_ratio:.2f} (target <= "
          f"{OURS_OVER_DUCKDB}): {_mark(duck_ratio <= OURS_OVER_DUCKDB)}; in CPU seconds "
          f"{cpu_ratio:.2f}")
    print(f"   dirty / clean, per instance = {dirty_ratio:.2f} (target <= {DIRTY_OVER_CLEAN}): "
          f"{_mark(dirty_ratio <= DIRTY_OVER_CLEAN)}")
    peak_ratio = print_memory(r["memory"], "-shapes", r["frames_bytes"]["array"])
    return {"naive_over_ours": naive_ratio, "ours_over_duckdb_worst": duck_ratio,
            "ours_over_duckdb_worst_cpu": cpu_ratio,
            "dirty_over_clean": dirty_ratio, "peak_over_frames": peak_ratio}


# -- 2. the report ------------------------------------------------------------------------------


def _write_csvs(tables: Any, frames: dict[str, Any], out: Path) -> None:
    """Every CSV ``write_report`` writes, from analytics already computed (charts off)."""
    from shadeanalytics.output import report

    for table in ("clusters", "instances", "instance_types"):
        df = getattr(tables, table)
        if table == "instance_types" and df.empty:
            continue
        report.write_csv(report._sorted(df, report._SORT_KEYS[table]), out / f"{table}.csv",
                         report.table_columns(table))
    for name, df in frames.items():
        report.write_csv(df, out / f"{name}.csv")


def report_kwargs() -> dict[str, Any]:
    from shadeanalytics.output import report

    return {"charts": False} if "charts" in inspect.signature(
        report.write_report).parameters else {}


def bench_report(tables: Any, as_of: str, repeat: int, label: str) -> dict[str, Any]:
    from shadeanalytics.output import report

    out = OUT / f"report-{label}"
    shutil.rmtree(out, ignore_errors=True)
    kwargs = report_kwargs()
    full, files = best_of(repeat, lambda: report.write_report(tables, out, as_of=as_of,
                                                              **kwargs))
    analytics_s, frames = best_of(repeat, lambda: report.analytics(tables, as_of=as_of))
    history_s, history = best_of(repeat, lambda: report.history_frames(tables, as_of=as_of))
    csv_s, _ = best_of(repeat, lambda: _write_csvs(tables, {**frames, **history}, out))
    sorted_instances = report._sorted(tables.instances, report._SORT_KEYS["instances"])
    columns = report.table_columns("instances")
    to_csv_s, _ = best_of(repeat, lambda: sorted_instances[columns].to_csv(
        out / "to_csv.csv", index=False))
    write_csv_s, _ = best_of(repeat, lambda: report.write_csv(
        sorted_instances, out / "write_csv.csv", columns))
    (out / "to_csv.csv").unlink()
    (out / "write_csv.csv").unlink()
    return {
        "seconds": full, "analytics_s": analytics_s, "history_frames_s": history_s,
        "csv_s": csv_s, "files": len(files),
        "bytes": sum(Path(f).stat().st_size for f in files),
        "instances_rows": len(tables.instances), "instances_to_csv_s": to_csv_s,
        "instances_write_csv_s": write_csv_s,
    }


# -- 3. growth ----------------------------------------------------------------------------------


def bench_growth(sizes: list[int], repeat: int, known: dict[int, dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        if n in known:
            seconds, memory = known[n]["seconds"]["ours"], known[n]["memory"]["ours"]
            instances, frames = known[n]["instances"], known[n]["frames_bytes"]
        else:
            path = clusters_file(n)
            raw = path.read_bytes()
            seconds, tables = best_of(repeat, lambda raw=raw: load_ours(raw))
            instances, frames = len(tables.instances), frames_bytes(tables)
            del tables
            memory = peak_memory("ours", path)
        rows.append({"clusters": n, "instances": instances, "seconds": seconds,
                     "peak_delta": memory["delta"], "frames_bytes": frames,
                     "us_per_instance": seconds / instances * 1e6,
                     "peak_per_instance": memory["delta"] / instances})
    return rows


def growth_title(info: dict[str, Any], repeat: int) -> str:
    return (f"shadeanalytics.read_clusters on generated /clusters responses ({info['nproc']} "
            f"cores, Python {info['python']}, pandas {info['pandas']})\ntime: best of {repeat} "
            "in one process; memory: peak RSS over the baseline, in a child process")


def plot_growth(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["instances"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    panels = (
        (axes[0], "load time per instance (µs)", [r["us_per_instance"] for r in rows],
         [r["seconds"] for r in rows], "s", "{:.2f} s"),
        (axes[1], "peak memory per instance (KiB)", [r["peak_per_instance"] / 1024
                                                     for r in rows],
         [r["peak_delta"] / 2**20 for r in rows], "MiB", "{:.0f} MiB"),
    )
    for ax, label, per, total, _, fmt in panels:
        ax.plot(x, per, "o-", color="tab:blue", linewidth=2, markersize=8)
        for xi, yi, ti, r in zip(x, per, total, rows, strict=True):
            ax.annotate(f"{r['clusters']:,} clusters\n{fmt.format(ti)} in all",
                        (xi, yi), textcoords="offset points", xytext=(0, 12), ha="center",
                        fontsize=9)
        low, high = min(per), max(per)
        ax.axhspan(low, low * GROWTH_SPREAD, color="tab:green", alpha=0.12,
                   label=f"target band: min .. {GROWTH_SPREAD}x min")
        ax.set_xscale("log")
        ax.set_xlim(min(x) / 2.5, max(x) * 2.5)
        ax.set_xticks(x, labels=[f"{v:,}" for v in x])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("instances in the /clusters response (log scale)")
        ax.set_ylabel(label)
        ax.set_ylim(0, max(high, low * GROWTH_SPREAD) * 1.35)
        ax.set_title(f"{label.split(' (')[0]}: max/min = {high / low:.2f}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    fig.suptitle(title, fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- 4. the history store -----------------------------------------------------------------------


def history_base(polls: int, instances: int, real: int, seed: int) -> tuple[Path, Any, float]:
    """The store of all polls but the last ``real`` (bulk-built once, then reused)."""
    import history

    from shadeanalytics.live.rows import spec_fingerprint

    key = {"polls": polls, "instances": instances, "real": real, "seed": seed,
           "builder": history.BUILDER_VERSION, "rows": spec_fingerprint()}
    base = OUT / f"history-{polls}-{instances}-base.db"
    meta = base.with_suffix(".json")
    year = history.simulate(polls, instances, seed)
    if base.exists() and meta.exists() and json.loads(meta.read_text()).get("key") == key:
        return base, year, json.loads(meta.read_text())["bulk_s"]
    began = time.perf_counter()
    history.write_bulk(base, year, polls - real)
    bulk_s = time.perf_counter() - began
    # the rows of every version, derived once (as the first read of a migrated store does)
    from shadeanalytics.live.store import Store

    began = time.perf_counter()
    with Store(base) as store:
        store.read(progress_bar=False)
    derive_s = time.perf_counter() - began
    meta.write_text(json.dumps({"key": key, "bulk_s": bulk_s, "derive_s": derive_s}))
    return base, year, bulk_s


def bench_history(polls: int, instances: int, real: int, repeat: int) -> dict[str, Any]:
    import history
    import numpy as np

    from shadeanalytics.analytics.timeline import fleet_over_time, status_timeline
    from shadeanalytics.live.store import Store
    from shadeanalytics.output.report import summary_text, write_report

    base, year, bulk_s = history_base(polls, instances, real, seed=1)
    path = OUT / "history.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(base, path)
    commits = []
    with Store(path) as store:
        for p in range(polls - real, polls):
            took = history.record(store, year, p)
            if p not in year.failed:
                commits.append(took)
        stats = store.stats()
    as_of = year.observed(polls - 1)
    size = sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal")
               if Path(f"{path}{s}").exists())

    def read() -> Any:
        with Store(path, create=False) as store:
            return store.read()

    # the first read after the last 300 polls derives their versions' rows and keeps them
    began = time.perf_counter()
    read()
    incremental_read_s = time.perf_counter() - began
    read_s, tables = best_of(repeat, read)
    timeline_s, timeline = best_of(repeat, lambda: status_timeline(tables, as_of=as_of))
    fleet_s, fleet = best_of(repeat, lambda: fleet_over_time(tables, freq="1h", as_of=as_of))
    timeline_rows, fleet_rows = len(timeline), len(fleet)
    kwargs = report_kwargs()
    out = OUT / "report-history"
    shutil.rmtree(out, ignore_errors=True)
    report_only_s, _ = best_of(repeat, lambda: write_report(tables, out, as_of=as_of,
                                                            **kwargs))
    tables = timeline = fleet = None  # free the year before reading it again

    def store_report() -> None:
        with Store(path, create=False) as store:
            write_report(store.read(), out, as_of=as_of, **kwargs)

    store_report_s, _ = best_of(repeat, store_report)

    def store_summary() -> None:
        with Store(path, create=False) as store:
            summary_text(store.read(), as_of=as_of)

    summary_s, _ = best_of(repeat, store_summary)
    # the commands as a user runs them (interpreter start and imports included)
    cli = {}
    for name, command in (("report", ["report", "--store", str(path), "--out", str(out),
                                      "--no-charts", "--force", "--quiet"]),
                          ("summary", ["summary", "--store", str(path), "--quiet"])):
        cli[name], _ = best_of(repeat, lambda c=command: subprocess.run(
            [sys.executable, "-m", "shadeanalytics", *c], check=True, capture_output=True,
            timeout=600))
    derive_s = json.loads(base.with_suffix(".json").read_text()).get("derive_s")
    alive = year_alive(year, polls)
    return {
        "polls": polls, "polls_ok": stats["polls_ok"], "polls_failed": stats["polls_failed"],
        "versions": stats["versions"], "resources": stats["resources"],
        "instances_alive_mean": alive[0], "instances_alive_max": alive[1],
        "size_bytes": size, "bulk_build_s": bulk_s, "real_polls": len(commits),
        "commit_median_s": float(np.median(commits)),
        "commit_p90_s": float(np.percentile(commits, 90)),
        "commit_max_s": float(np.max(commits)),
        "read_s": read_s, "timeline_s": timeline_s, "timeline_rows": timeline_rows,
        "fleet_s": fleet_s, "fleet_rows": fleet_rows, "report_s": report_only_s,
        "store_report_s": store_report_s, "store_summary_s": summary_s,
        "cli_report_s": cli["report"], "cli_summary_s": cli["summary"],
        "derive_all_s": derive_s, "incremental_read_s": incremental_read_s,
    }


def year_alive(year: Any, polls: int) -> tuple[float, int]:
    """Mean and most instances listed at a poll (sampled every 12th poll)."""
    import numpy as np

    spans = [(r.first_ms, r.until_ms) for r in year.resources if r.kind == "instance"]
    firsts = np.array([s[0] for s in spans])
    untils = np.array([np.inf if s[1] is None else s[1] for s in spans])
    counts = [int(((firsts <= t) & (untils > t)).sum())
              for t in range(0, polls * history_every(), 12 * history_every())]
    return float(np.mean(counts)), int(max(counts))


def history_every() -> int:
    import history

    return history.EVERY_MS


# -- the run ------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "MET " if ok else "MISSED"


def print_history(h: dict[str, Any], hist: dict[str, int]) -> None:
    """Part 4's figures, each against its target."""
    print(f"\n4. History store: {h['polls']:,} polls every 5 minutes "
          f"({h['polls_failed']} failed), {h['instances_alive_mean']:.0f} instances "
          f"listed on average (max {h['instances_alive_max']:,}); "
          + ", ".join(f"{n:,} {kind} versions" for kind, n in h["versions"].items())
          + f"; store {h['size_bytes'] / 1e6:.0f} MB")
    print(f"   built: all but the last {hist['real']} polls in bulk "
          f"({h['bulk_build_s']:.0f} s, once, cached), the last {h['real_polls']} "
          "successful polls through Store.record_poll")
    print(f"   record_poll commit: median {h['commit_median_s'] * 1000:.0f} ms, p90 "
          f"{h['commit_p90_s'] * 1000:.0f} ms, max {h['commit_max_s'] * 1000:.0f} ms "
          f"(target median <= {COMMIT_MEDIAN_S * 1000:.0f} ms): "
          f"{_mark(h['commit_median_s'] <= COMMIT_MEDIAN_S)}")
    frames_s = h["timeline_s"] + h["fleet_s"]
    print(f"   Store.read(): {h['read_s']:.2f} s (target <= {STORE_READ_S} s): "
          f"{_mark(h['read_s'] <= STORE_READ_S)}; the first read after the last "
          f"{h['real_polls']} polls (deriving their versions' rows): "
          f"{h['incremental_read_s']:.2f} s; deriving every version once (the first read "
          f"of a migrated store): {h['derive_all_s'] or 0:.1f} s")
    print(f"   status_timeline {h['timeline_s']:.2f} s ({h['timeline_rows']:,} intervals) "
          f"+ fleet_over_time {h['fleet_s']:.2f} s ({h['fleet_rows']:,} hours) = "
          f"{frames_s:.2f} s on the read history (target <= {HISTORY_FRAMES_S} s): "
          f"{_mark(frames_s <= HISTORY_FRAMES_S)}; with Store.read(): "
          f"{frames_s + h['read_s']:.2f} s: {_mark(frames_s + h['read_s'] <= 5)}")
    print(f"   report from the store (Store.read + write_report, charts off): "
          f"{h['store_report_s']:.2f} s (write_report alone {h['report_s']:.2f} s) "
          f"(target <= {STORE_REPORT_S} s): {_mark(h['store_report_s'] <= STORE_REPORT_S)}"
          f"; as the command `report --store --no-charts`: {h['cli_report_s']:.2f} s")
    print(f"   summary from the store (Store.read + summary_text): "
          f"{h['store_summary_s']:.2f} s (target <= {SUMMARY_S} s): "
          f"{_mark(h['store_summary_s'] <= SUMMARY_S)}; as the command "
          f"`summary --store`: {h['cli_summary_s']:.2f} s")
def print_memory(memory: dict[str, Any], suffix: str, frames: int) -> float:
    """Print the peak memory of our load (``ours<suffix>``) against its DataFrames, and the
    other methods' for scale; returns the ratio."""
    mem = memory[f"ours{suffix}"]
    ratio = mem["delta"] / frames
    print(f"   peak memory of our load: {mem['delta'] / 2**20:.0f} MiB over a baseline of "
          f"{mem['base'] / 2**20:.0f} MiB; DataFrames (deep): {frames / 2**20:.0f} MiB; "
          f"ratio {ratio:.1f} (target <= {PEAK_OVER_FRAMES}): {_mark(ratio <= PEAK_OVER_FRAMES)}")
    if mem.get("split_child_peak"):
        print(f"   the second process of the split walk peaked at "
              f"{mem['split_child_peak'] / 2**20:.0f} MiB resident (shared pages included)")
    for key in ("duckdb", "naive"):
        m = memory[f"{key}{suffix}"]
        print(f"   (for scale: {key} peaks {m['delta'] / 2**20:.0f} MiB for a "
              f"{m['frames'] / 2**20:.0f} MiB DataFrame)")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best of)")
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--history-only", action="store_true",
                        help="only part 4 (the year of history); writes results-history.json")
    parser.add_argument("--shapes-only", action="store_true",
                        help="only part 1b (realistic shapes); updates it in the results file")
    parser.add_argument("--split", choices=("auto", "on", "off"), default="auto",
                        help="our loader's two processes for a big list: as the loader "
                             "decides (auto: 20 MiB and more, machine not busy), always, never")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw growth.png from out/results.json")
    parser.add_argument("--child-memory", nargs=2, metavar=("METHOD", "FILE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        _child_memory(*args.child_memory)
        return 0
    OUT.mkdir(exist_ok=True)
    if args.split != "auto":
        from shadeanalytics.ingest import normalize

        normalize.SPLIT_MIN_BYTES, normalize.SPLIT_MAX_LOAD = \
            (0, float("inf")) if args.split == "on" else (2**62, 0.0)
    if args.replot:
        name = "quick" if args.quick else ""
        saved = json.loads((OUT / f"results{'-' * bool(name)}{name}.json").read_text())
        plot_growth(saved["growth"]["rows"],
                    OUT / "growth-quick.png" if args.quick else HERE / "growth.png",
                    growth_title(saved["machine"], saved["repeat"]))
        return 0
    if args.quick:
        main_n, sizes = 1000, [200, 1000, 5000]
        hist = {"polls": 4032, "instances": 200, "real": 100}  # two weeks
    else:
        main_n, sizes = 10_000, [1000, 10_000, 50_000]
        hist = {"polls": 365 * 24 * 12, "instances": 1000, "real": 300}
    info = machine()
    print(f"machine: {info['nproc']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM; "
          f"load average {', '.join(f'{x:.2f}' for x in info['load_average'])}")
    print("versions: " + ", ".join(f"{k} {info[k]}" for k in ("python", "pandas", "numpy",
                                                             "msgspec", "orjson", "duckdb",
                                                             "pyarrow")))
    print(f"timings: best of {args.repeat} in one process" + (" (--quick)" if args.quick
                                                              else "")
          + ("" if args.split == "auto" else f"; our loader's split walk {args.split}"))
    results: dict[str, Any] = {"machine": info, "repeat": args.repeat, "quick": args.quick}
    if args.history_only:
        began = time.perf_counter()
        h = bench_history(hist["polls"], hist["instances"], hist["real"], args.repeat)
        print_history(h, hist)
        results["history"] = h
        results["seconds_total"] = time.perf_counter() - began
        name = f"results-history{'-quick' if args.quick else ''}.json"
        (OUT / name).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nresults: benchmarks/out/{name}")
        return 0
    results_file = OUT / ("results-quick.json" if args.quick else "results.json")
    if args.shapes_only:
        shapes_r = bench_shapes(main_n, args.repeat)
        shapes_r["targets"] = print_shapes(shapes_r)
        saved = json.loads(results_file.read_text()) if results_file.exists() else results
        saved["shapes"] = shapes_r | {"machine": info, "repeat": args.repeat,
                                      "split": args.split}
        results_file.write_text(json.dumps(saved, indent=2, default=str))
        print(f"\nresults: {results_file.relative_to(HERE.parent)} (part 1b updated)")
        return 0

    # 1. loader
    began = time.perf_counter()
    loader = bench_loader(main_n, args.repeat)
    tables = loader.pop("tables")
    s = loader["seconds"]
    print(f"\n1. Loader: {main_n:,} clusters, {loader['instances']:,} instances, "
          f"{loader['bytes'] / 1e6:.1f} MB of JSON (raw bytes to typed tables)")
    print(f"   {'method':<58} {'seconds':>8} {'ours vs it':>10}")
    rows = (("naive: json.loads + pd.json_normalize + pd.to_datetime", "naive"),
            ("orjson.loads alone (no table)", "orjson"),
            ("DuckDB read_json + unnest to pandas", "duckdb"),
            ("shadeanalytics.read_clusters (this project)", "ours"))
    for label, key in rows:
        print(f"   {label:<58} {s[key]:8.2f} {s[key] / s['ours']:9.2f}x")
    naive_ratio, duck_ratio = s["naive"] / s["ours"], s["ours"] / s["duckdb"]
    print(f"   naive / ours = {naive_ratio:.1f} (target >= {NAIVE_OVER_OURS}): "
          f"{_mark(naive_ratio >= NAIVE_OVER_OURS)}")
    print(f"   ours / DuckDB = {duck_ratio:.2f} (target <= {OURS_OVER_DUCKDB}): "
          f"{_mark(duck_ratio <= OURS_OVER_DUCKDB)}")
    print_memory(loader["memory"], "", loader["frames_bytes"])
    results["loader"] = loader

    # 1b. the loader on realistic shapes
    shapes_r = bench_shapes(main_n, args.repeat)
    shapes_r["targets"] = print_shapes(shapes_r)
    results["shapes"] = shapes_r

    # 2. report
    rep = bench_report(tables, AS_OF, args.repeat, f"{main_n}")
    report_ratio = rep["seconds"] / s["ours"]
    print(f"\n2. Report of that fleet (write_report, charts off): {rep['files']} CSV files, "
          f"{rep['bytes'] / 1e6:.0f} MB in {rep['seconds']:.2f} s = {report_ratio:.2f}x the "
          f"load (target <= {REPORT_OVER_LOAD}): {_mark(report_ratio <= REPORT_OVER_LOAD)}")
    print(f"   of which analytics() {rep['analytics_s']:.2f} s, writing every CSV "
          f"{rep['csv_s']:.2f} s; the {rep['instances_rows']:,}-row instances table alone: "
          f"write_csv {rep['instances_write_csv_s']:.2f} s (DataFrame.to_csv: "
          f"{rep['instances_to_csv_s']:.2f} s)")
    results["report"] = rep
    del tables
    gc.collect()

    # 3. growth
    growth = bench_growth(sizes, args.repeat, {main_n: loader})
    print("\n3. Growth (our load):")
    print(f"   {'clusters':>9} {'instances':>10} {'seconds':>8} {'µs/inst':>8} "
          f"{'peak MiB':>9} {'KiB/inst':>9}")
    for r in growth:
        print(f"   {r['clusters']:>9,} {r['instances']:>10,} {r['seconds']:>8.2f} "
              f"{r['us_per_instance']:>8.1f} {r['peak_delta'] / 2**20:>9.0f} "
              f"{r['peak_per_instance'] / 1024:>9.2f}")
    t_spread = max(r["us_per_instance"] for r in growth) / min(r["us_per_instance"]
                                                               for r in growth)
    m_spread = max(r["peak_per_instance"] for r in growth) / min(r["peak_per_instance"]
                                                                 for r in growth)
    print(f"   time per instance max/min = {t_spread:.2f}, memory per instance max/min = "
          f"{m_spread:.2f} (target <= {GROWTH_SPREAD}): "
          f"{_mark(t_spread <= GROWTH_SPREAD and m_spread <= GROWTH_SPREAD)}")
    png = OUT / "growth-quick.png" if args.quick else HERE / "growth.png"
    plot_growth(growth, png, growth_title(info, args.repeat))
    print(f"   plot: {png.relative_to(HERE.parent)}")
    results["growth"] = {"rows": growth, "time_spread": t_spread, "memory_spread": m_spread}

    # 4. history
    if not args.skip_history:
        h = bench_history(hist["polls"], hist["instances"], hist["real"], args.repeat)
        print_history(h, hist)
        results["history"] = h
    results["seconds_total"] = time.perf_counter() - began
    results_file.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: benchmarks/out/results{'-quick' if args.quick else ''}.json "
          f"({results['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
