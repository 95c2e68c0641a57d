"""A measured proposal for the loader (decode.py / normalize.py / load.py, owned elsewhere).

    python benchmarks/proposal_loader.py [N_CLUSTERS]      # default 10000

Not used by ``run.py``: it patches two things in at run time, loads the generated
``/clusters`` response with and without them, each in a fresh process, and prints time, peak
memory and whether every table is identical (``assert_frame_equal``, exact):

1. **decode one cluster at a time** (``decode.decode_list_response``): decode the document as
   ``{"clusters": list[msgspec.Raw]}`` (views into the input bytes, no objects), and hand
   ``normalize`` a lazy sequence that decodes each ``Raw`` into a ``decode.Cluster`` only when
   its turn comes, dropping it after. Only one cluster's structs are alive at a time instead of
   the whole document's (about 200 MB of structs and strings for 10,000 clusters). A document
   that fails the strict decode midway must still go through the general path: the real
   change should catch the ``ValidationError`` in ``_Normalizer._typed_list``, truncate the
   ``Normalized`` lists to their lengths before the document, and re-read it with
   ``orjson.loads`` (or validate all ``Raw`` items first: +0.1 s, measured below as
   ``--validate``).
2. **intern repeated strings** (``normalize._Normalizer._typed_cluster`` /
   ``_typed_instance``): pass the low-cardinality fields (cloud, region, types, status,
   status_details, GPU, OS, rental, timestamps shared by a cluster's members, cost
   estimates, launch columns, tags) through one ``dict.setdefault`` per load, so a value
   seen 85,000 times is one ``str``, not 85,000. With 1., the per-member copies die with
   their struct. It also makes the load faster: every later hash of these strings (the
   ``to_datetime`` cache, dedupe keys, Arrow conversion) hits a cached hash.

3. **build dedupe keys in C** (``tables._dedupe``): ``keys = list(map(operator.itemgetter(
   *key), rows))`` instead of ``[tuple(row[j] for j in key) for row in rows]``: the same
   tuples (every key has two or more fields) without a generator per row. Three passes over
   the instances of every load.

What the prototype does not do yet (estimates, not measured): building the instances table
column by column instead of through row tuples (``tables._Table`` transposes ``norm.instances``
while the rows are still alive: about 30 MB at 10,000 clusters), keeping ``instance_origins``
as integers (about 12 MB of path strings), and freeing each raw column once converted.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from shadeanalytics import decode

HERE = Path(__file__).resolve().parent


class _ClustersRaw(decode._Strict):
    """``GET /clusters`` with each cluster left undecoded (a view into the input bytes)."""

    clusters: list[msgspec.Raw]


def patch(validate: bool = False) -> None:
    """Install the two changes (1. and 2. above) into the loaded package."""
    from shadeanalytics import load
    from shadeanalytics import normalize as nz

    raw_list = msgspec.json.Decoder(_ClustersRaw)
    one = msgspec.json.Decoder(decode.Cluster)
    whole = load.decode_list_response

    class Lazy:
        def __init__(self, raws: list[Any]) -> None:
            self.raws = raws

        def __len__(self) -> int:
            return len(self.raws)

        def __iter__(self) -> Any:
            raws = self.raws
            for k in range(len(raws)):
                cluster = one.decode(raws[k])
                raws[k] = None
                yield cluster

    def decode_list_response(data: bytes) -> Any:
        try:
            raws = raw_list.decode(data).clusters
        except (msgspec.ValidationError, msgspec.DecodeError):
            return whole(data)  # /instances, envelopes...: as today
        if validate:
            for item in raws:
                one.decode(item)
        return decode.TypedList("clusters", Lazy(raws), envelope=False)

    load.decode_list_response = decode_list_response
    seen: dict[str, str] = {}

    def i(value: Any, _get: Any = seen.setdefault) -> Any:
        return _get(value, value) if type(value) is str else value

    def typed_cluster(self: Any, c: Any, path: str, observed_at: str | None) -> None:
        cid = c.id
        region = c.region_info or decode.EMPTY_REGION
        members = c.instances
        self.out.clusters.append((
            cid, c.name, i(c.cloud), i(region.region), i(region.display_name), i(c.status),
            i(c.status_details), i(c.created_at), i(c.updated_at), i(c.active_at),
            c.hourly_price, c.cost_estimate, c.cloud_cluster_id, len(members), observed_at,
        ))
        self.out.cluster_origins.append((self._doc_no, path))
        for j, member in enumerate(members):
            self._typed_instance(member, f"{path}.instances[{j}]", observed_at, cid)

    def typed_instance(self: Any, r: Any, path: str, observed_at: str | None,
                       cluster_id: str | None) -> None:
        iid = r.id
        cfg = r.configuration or decode.EMPTY_CONFIG
        boot = r.boot_time or decode.EMPTY_BOOT
        rental = r.rental_terms or decode.EMPTY_RENTAL
        row_no = len(self.out.instances)
        launch = r.launch_configuration
        launch_cols: tuple[Any, ...] = (None, None, None, None)
        if launch is not None:
            launch_cols = tuple(map(i, self._typed_launch(
                launch, f"{path}.launch_configuration", iid, row_no, observed_at)))
        self.out.instances.append((
            cluster_id, iid, r.name, i(r.cloud), i(r.region), i(r.shade_instance_type),
            i(r.cloud_instance_type), r.cloud_assigned_id, r.shade_cloud, i(r.status),
            i(r.status_details), i(cfg.gpu_type), i(cfg.gpu_manufacturer), cfg.num_gpus,
            cfg.vram_per_gpu_in_gb, cfg.vcpus, cfg.memory_in_gb, cfg.storage_in_gb,
            i(cfg.interconnect), cfg.nvlink, i(cfg.os), r.ip, i(r.ssh_user), r.ssh_port,
            r.hourly_price, i(r.cost_estimate), i(rental.rental_type), i(rental.hourly_price),
            i(rental.ending_at), i(r.created_at), i(r.active_at), i(r.deleted_at),
            boot.min_boot_in_sec, boot.max_boot_in_sec, *launch_cols, observed_at,
        ))
        self.out.instance_origins.append((self._doc_no, path))
        if r.tags:
            rows = self.out.children["instance_tags"]
            for pos, tag in enumerate(r.tags):
                rows.append((row_no, iid, observed_at, pos, i(tag)))
        if r.port_mappings:
            rows = self.out.children["port_mappings"]
            for pos, pm in enumerate(r.port_mappings):
                rows.append((row_no, iid, observed_at, pos, pm.internal_port, pm.external_port))

    nz._Normalizer._typed_cluster = typed_cluster  # type: ignore[method-assign]
    nz._Normalizer._typed_instance = typed_instance  # type: ignore[method-assign]
    patch_dedupe()


def patch_dedupe() -> None:
    """3.: ``tables._dedupe`` with its keys built by ``operator.itemgetter``."""
    import operator

    from shadeanalytics import tables as tb

    def _dedupe(table: Any, rows: list[tuple[Any, ...]], key: tuple[int, ...],
                preferred: Any = None) -> None:
        keys = list(map(operator.itemgetter(*key), rows))  # the only changed line
        try:
            if len(set(keys)) == len(keys):
                return
        except TypeError:
            keys = [tuple(map(tb._hashable, k)) for k in keys]
        seen: dict[tuple[Any, ...], int] = {}
        for i, row in enumerate(rows):
            if i in table.drop:
                continue
            k = keys[i]
            first = seen.setdefault(k, i)
            if first == i:
                continue
            if rows[first] == row:
                table.drop.add(i)
                table.warn(i, "", "the same record was loaded twice; the repeat was dropped")
            elif preferred is not None and preferred(first) != preferred(i):
                table.drop.add(first if preferred(i) else i)
                if preferred(i):
                    seen[k] = i
            else:
                table.warn(i, "", "the same id appears twice in one snapshot with different "
                           "content; both rows kept")

    tb._dedupe = _dedupe


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def child(path: str, mode: str, dump: str) -> None:
    import pickle
    import time

    if mode != "today":
        patch(validate=mode == "proposal+validate")
    import shadeanalytics as sa
    from shadeanalytics.synthetic import big_clusters_response

    sa.read_clusters(big_clusters_response(10))  # warm-up, as run.py's memory children do
    raw = Path(path).read_bytes()
    gc.collect()
    base = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    tables = sa.read_clusters(raw)
    peak = _status("VmHWM") - base
    frames = sum(int(df.memory_usage(deep=True).sum()) for _, df in tables.frames())
    times = []
    for _ in range(3):
        gc.collect()
        began = time.perf_counter()
        sa.read_clusters(raw)
        times.append(time.perf_counter() - began)
    Path(dump).write_bytes(pickle.dumps(tables))
    print(json.dumps({"peak": peak, "frames": frames, "seconds": min(times)}))


def main() -> int:
    import pickle
    import tempfile

    import pandas as pd

    from shadeanalytics.synthetic import big_clusters_response

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    path = HERE / "out" / f"clusters-{n}.json"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        path.write_bytes(big_clusters_response(n))
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for mode in ("today", "proposal", "proposal+validate"):
            dump = f"{tmp}/{mode}.pkl"
            out = subprocess.run([sys.executable, __file__, "--child", str(path), mode, dump],
                                 capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[mode]
            print(f"{mode:<18} load {r['seconds']:.2f} s (best of 3)   peak "
                  f"{r['peak'] / 2**20:.0f} MiB = {r['peak'] / r['frames']:.1f}x the "
                  f"DataFrames ({r['frames'] / 2**20:.0f} MiB)")
        today = pickle.loads(Path(f"{tmp}/today.pkl").read_bytes())
        for mode in ("proposal", "proposal+validate"):
            other = pickle.loads(Path(f"{tmp}/{mode}.pkl").read_bytes())
            for (name, a), (_, b) in zip(today.frames(), other.frames(), strict=True):
                pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{mode} {name}")
            assert (today.warnings, today.skipped) == (other.warnings, other.skipped)
        print("every table identical to today's")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        sys.exit(0)
    sys.exit(main())
