"""What the fleet costs: run rate and cost so far by group and by cluster.

Every figure is read off the billing model (``billing.bill_fleet``): this module only adds up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .._common import STORAGE_LABEL, TimeLike, group_keys, key_column, ratio, require
from .._compat import deprecated, old_spellings
from ..ingest.tables import Tables
from .billing import BASIS_COLUMNS, Bill, Fleet, as_tables, bill_fleet

__all__ = [
    "COST_KEYS",
    "HOURS_PER_DAY",
    "HOURS_PER_MONTH",
    "TimeLike",
    "cluster_summary",
    "cost_breakdown",
]

HOURS_PER_DAY = 24
#: The billing-industry month: 8,760 hours a year / 12.
HOURS_PER_MONTH = 730

#: Columns ``cost_breakdown`` can group by.
COST_KEYS: tuple[str, ...] = (
    "cloud", "region", "gpu_type", "shade_instance_type", "cluster_id", "status", "rental_type",
    "tag", "service",
)
#: The ``service`` of each kind of billed resource: instances are compute, volumes storage.
SERVICES = {"instances": "compute", "volumes": "storage"}
_VOLUME_KEYS = ("cloud", "region", "service")


def _money(rows: pd.DataFrame, kind: str = "instances") -> pd.DataFrame:
    """Per billed row of ``Bill.instances`` (or of ``Bill.volumes``, ``kind="volumes"``): the
    figures the summaries add up (NaN where unknown), and what the row counts as."""
    instance = kind == "instances"
    running = (rows["state"] == "running").to_numpy(dtype=bool)
    price = rows["billed_price_usd"].to_numpy(dtype="float64")
    accrued = rows["accrued_usd"].to_numpy(dtype="float64")
    reported = rows["cost_estimate_usd"].to_numpy(dtype="float64", na_value=np.nan)
    one = np.ones(len(rows), dtype="int64")
    zero = one * 0
    unpriced = (running & np.isnan(price)).astype("int64")
    return pd.DataFrame({
        "instance": one if instance else zero,
        "volume": zero if instance else one,
        "running": running.astype("int64") if instance else zero,
        "gpus": (rows["num_gpus"].astype("Int64").where(running, 0).astype("float64")
                 if instance else zero.astype("float64")),
        "hourly_usd": np.where(running, price, 0.0),
        "price_usd": price,
        "accrued_usd": accrued,
        "reported_cost_usd": reported,
        "cost_gap_usd": accrued - reported,
        **{c: rows[c].to_numpy(dtype="float64", na_value=np.nan) for c in BASIS_COLUMNS},
        "no_price": unpriced if instance else zero,
        "no_accrued": np.isnan(accrued).astype("int64") if instance else zero,
        "no_volume_accrued": zero if instance else np.isnan(accrued).astype("int64"),
        "no_estimate": np.isnan(reported).astype("int64") if instance else zero,
        "no_volume_price": zero if instance else unpriced,
    }, index=rows.index)


def _instance_money(billed: Bill) -> pd.DataFrame:
    """``_money`` of the bill's instances, made once per Bill (every breakdown and the
    cluster sums add up these same figures)."""
    return billed.frame_once("costs.money", lambda: _money(billed.instances))


def _sums(grouped: pd.core.groupby.DataFrameGroupBy, columns: Sequence[str]) -> pd.DataFrame:
    """Sums of ``columns`` over each group's known values; NA for a group with none known.
    Exact (``exact_sums``): the same float whatever the order of the rows."""
    sums = grouped[list(columns)].sum()
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    for column in columns:
        totals, known = exact_sums(codes, len(sums), grouped.obj[column].to_numpy(
            dtype="float64", na_value=np.nan))
        sums[column] = [as_float(t) if k else np.nan for t, k in zip(totals, known,
                                                                        strict=True)]
    return sums


#: an exact sum is an integer count of 2**-_SCALE: below the last bit of every double
_SCALE = 1126
#: exponents added up at once (2**3: a value shifted to its window's base takes 60 bits)
_WINDOW = 3
#: bits of each float64 half of a window's int64 sum, and the rows summed at once, so that
#: each half's sum stays an exact float64 (30 + 22 bits < 53)
_LIMB = 30
_ROWS = 1 << 22


def exact_sums(codes: np.ndarray, groups: int, values: np.ndarray
               ) -> tuple[list[int | float], np.ndarray]:
    """The exact sum of the known (not NaN) ``values`` of each group (``codes``: 0 ..
    ``groups`` - 1), as an integer count of 2**-1126 (a float where one is infinite), and how
    many are known. Exact sums add up in any order and split in any parts to the same
    total: ``as_float`` of it is the correctly rounded sum (``math.fsum``'s)."""
    known = ~np.isnan(values)
    counts = np.bincount(codes[known], minlength=groups)
    totals: list[int | float] = [0] * groups
    finite = known & np.isfinite(values)
    for g, value in zip(codes[known & ~finite].tolist(), values[known & ~finite].tolist(),
                        strict=True):
        totals[g] = float(totals[g]) + value  # inf, or inf - inf = nan: as a float sum
    if not finite.any():
        return totals, counts
    mantissa, exponent = np.frexp(values[finite])
    whole = (mantissa * 2.0**53).astype(np.int64)  # exact: 53 bits
    shift = exponent.astype(np.int64) - 53 + _SCALE  # 0 .. 2097
    # the values of a group within one window of 2**_WINDOW exponents add up as int64 (each
    # shifted to the window's base: at most 53 + 7 bits), a window's sum in two float64
    # halves of _LIMB bits each (``bincount``: exact while under 2**53); then each (group,
    # window) sum is added to its group's integer
    key = codes[finite].astype(np.int64) * 4096 + (shift >> _WINDOW)
    whole <<= shift & ((1 << _WINDOW) - 1)
    for start in range(0, len(key), _ROWS):
        part_keys, distinct = pd.factorize(key[start:start + _ROWS])
        part = whole[start:start + _ROWS]
        high = np.bincount(part_keys, weights=part >> _LIMB, minlength=len(distinct))
        low = np.bincount(part_keys, weights=part & ((1 << _LIMB) - 1),
                          minlength=len(distinct))
        for k, h, lo in zip(distinct.tolist(), high.astype(np.int64).tolist(),
                            low.astype(np.int64).tolist(), strict=True):
            g, w = divmod(k, 4096)
            total = totals[g]
            if isinstance(total, int):
                totals[g] = total + (((h << _LIMB) + lo) << (w << _WINDOW))
    return totals, counts


def as_float(total: int | float) -> float:
    """An exact sum (``exact_sums``) as the nearest float."""
    return total / (1 << _SCALE) if isinstance(total, int) else float(total)


# -- cost by group ------------------------------------------------------------------------------

_BREAKDOWN_COLUMNS: dict[str, str] = {
    "instances": "Int64", "running_instances": "Int64", "gpus": "Int64",
    "hourly_usd": "float64", "daily_usd": "float64", "monthly_usd": "float64",
    "accrued_usd": "float64", **dict.fromkeys(BASIS_COLUMNS, "float64"),
    "reported_cost_usd": "float64", "cost_gap_usd": "float64",
    "usd_per_gpu_hour": "float64", "share_of_hourly": "float64",
    "instances_without_price": "Int64", "instances_without_accrued": "Int64",
    "instances_without_estimate": "Int64", "volumes": "Int64", "volumes_without_price": "Int64",
    "volumes_without_accrued": "Int64",
}
_SUMMED = ("gpus", "hourly_usd", "accrued_usd", *BASIS_COLUMNS, "reported_cost_usd",
           "cost_gap_usd")
_COUNTED = {"instance": "instances", "running": "running_instances",
            "no_price": "instances_without_price", "no_accrued": "instances_without_accrued",
            "no_estimate": "instances_without_estimate", "volume": "volumes",
            "no_volume_price": "volumes_without_price",
            "no_volume_accrued": "volumes_without_accrued"}


def _tag_rows(work: pd.DataFrame, instances: pd.DataFrame, tags: pd.DataFrame,
              at: pd.Timestamp) -> pd.DataFrame:
    """``work`` with one row per (instance row, distinct tag); untagged rows get an NA tag."""
    require(tags, ["instance_id", "observed_at", "tag"], "instance_tags")
    # a tag listed twice, or an instance listed in two clusters, must not count twice
    distinct = tags[["instance_id", "observed_at", "tag"]].assign(
        observed_at=tags["observed_at"].fillna(at)).drop_duplicates()
    keys = instances[["instance_id", "observed_at"]].assign(_row=np.arange(len(instances)))
    tagged = keys.merge(distinct, on=["instance_id", "observed_at"], how="left")
    return work.iloc[tagged["_row"].to_numpy()].assign(
        tag=tagged["tag"].to_numpy()).reset_index(drop=True)


@old_spellings(positional=("by",), renamed={"source": "fleet"})
def cost_breakdown(
    fleet: Fleet,
    *,
    by: str | Sequence[str] = ("cloud",),
    as_of: TimeLike = None,
    tags: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Run rate and cost so far of the fleet, one row per group.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> cost_breakdown(tables, by="gpu_type", as_of="2026-11-20T00:00Z")[
        ...     ["gpu_type", "running_instances", "gpus", "hourly_usd", "monthly_usd"]].head(3)
           gpu_type  running_instances  gpus  hourly_usd  monthly_usd
        0      H100                 39   291      891.54     650824.2
        1  A100_80G                 28   203      366.14     267282.2
        2      H200                 13   104      354.40     258712.0

    ``fleet`` is a ``Tables`` (one snapshot or a history), a ``Bill`` of ``bill_fleet``, or
    an instances DataFrame of one snapshot; it is billed at ``as_of`` (default: the newest
    poll) by the billing model, which reduces a history to each instance's state at
    ``as_of``. ``by`` is one or several of ``COST_KEYS``: ``cloud``, ``region``,
    ``gpu_type``, ``shade_instance_type``, ``cluster_id``, ``status``, ``rental_type``,
    ``tag``. A missing key forms its own group,
    shown as ``(standalone)`` for ``cluster_id`` (instances outside any cluster),
    ``(untagged)`` for ``tag``, ``(unknown)`` for ``gpu_type`` of an instance without a
    configuration, and ``(none)`` otherwise. ``tag`` takes the tags of the ``Tables``, or
    ``tags=`` with a DataFrame; an instance with two tags counts in both groups, so with
    ``tag`` the ``share_of_hourly`` column can add up to more than 1 (it stays a share of the
    whole fleet's run rate). An instance listed in two clusters of one snapshot counts twice
    (``quality_checks`` reports it).

    Storage is part of the bill: each volume of ``Bill.volumes`` is a member too, of service
    ``storage`` (instances are ``compute``), with its cloud and region; keys only instances
    have show ``(storage)`` for it. ``service`` groups by that.

    Unknown is not zero: each sum adds the members whose value is known and is NA (an empty
    CSV cell) when none is; the ``instances_without_*`` columns count the unknown ones.

    Returns:
        DataFrame sorted by ``hourly_usd`` descending (unknown last), then the keys. Columns:
        the keys (string); ``instances`` (Int64, instance rows), ``running_instances``
        (Int64), ``gpus`` (Int64, GPUs of running instances); float64: ``hourly_usd`` (sum of
        the running instances' ``billed_price_usd``), ``daily_usd`` (x 24), ``monthly_usd``
        (x 730), ``accrued_usd`` (sum of the billing model's ``accrued_usd``),
        ``accrued_observed_usd``, ``accrued_inferred_usd``, ``accrued_extrapolated_usd``,
        ``accrued_disputed_usd`` (``accrued_usd`` split by what the billed time rests on:
        ``billing.BASIS_COLUMNS``; they add up to it), ``reported_cost_usd`` (sum of the
        API's ``cost_estimate_usd``), ``cost_gap_usd`` (sum of accrued - reported over the
        instances where both are known),
        ``usd_per_gpu_hour`` (hourly_usd / gpus; NaN without GPUs), ``share_of_hourly``
        (hourly_usd / the fleet's hourly_usd, 0..1; NaN when the fleet's is 0); Int64:
        ``instances_without_price`` (running, no price), ``instances_without_accrued``,
        ``instances_without_estimate`` (no ``cost_estimate``), ``volumes`` (volume rows),
        ``volumes_without_price`` (held, no volume type price), ``volumes_without_accrued``
        (first seen at the only ``/volumes`` poll, or unpriced: their cost is unknown).
    """
    keys = group_keys(by, COST_KEYS)
    billed = bill_fleet(fleet, as_of=as_of)
    if "tag" in keys and tags is None and isinstance(fleet, pd.DataFrame):
        raise ValueError("by='tag' needs the instance_tags table: pass "
                         "tags=tables.instance_tags, or pass the Tables itself")
    if tags is not None:
        return breakdown_of(breakdown_sums(billed, keys, tags))
    # kept with the Bill: a report asks again (the forecast's burn, by cloud)
    kept = billed.frame_once("cost_breakdown:" + ",".join(keys),
                             lambda: breakdown_of(breakdown_sums(billed, keys)))
    return kept.copy(deep=False)  # copy-on-write: the kept frame never changes


@dataclass(frozen=True)
class GroupSums:
    """What a breakdown adds up, per group, before its columns are derived: separable, so
    that the sums of two sets of rows (e.g. the open instances' and the settled ones' kept
    in the store) add up to those of both (``plus``), to the bit. ``rows``: group key ->
    the ``counted`` counts, then the exact sums (``exact_sums``) of the ``summed`` columns,
    then how many values of each were known; ``total``: the exact sum of ``hourly_usd``
    over every member once (a share's denominator)."""

    keys: tuple[str, ...]
    counted: tuple[str, ...]
    summed: tuple[str, ...]
    rows: dict[tuple[str, ...], list[int | float]]
    total: int | float = 0

    def plus(self, other: GroupSums) -> GroupSums:
        """The sums of both sets of rows (of the same keys and columns)."""
        if (self.keys, self.counted, self.summed) != (other.keys, other.counted, other.summed):
            raise ValueError("cannot add the sums of other groups or columns")
        rows = {key: list(values) for key, values in self.rows.items()}
        for key, values in other.rows.items():
            mine = rows.get(key)
            rows[key] = list(values) if mine is None else [
                a + b for a, b in zip(mine, values, strict=True)]
        return replace(self, rows=rows, total=self.total + other.total)

    def frame(self) -> pd.DataFrame:
        """One row per group: the keys, the counts, the sums (NaN where none is known)."""
        n, m = len(self.counted), len(self.summed)
        rows = list(self.rows.items())
        out: dict[str, object] = {
            key: pd.array([group[i] for group, _ in rows], dtype="string")
            for i, key in enumerate(self.keys)}
        for i, name in enumerate(self.counted):
            out[_COUNTED.get(name, name)] = np.array([v[i] for _, v in rows], dtype="int64")
        for i, name in enumerate(self.summed):
            out[name] = np.array([as_float(v[n + i]) if v[n + m + i] else np.nan
                                  for _, v in rows], dtype="float64")
        return pd.DataFrame(out)


def group_sums(work: pd.DataFrame, keys: Sequence[str], counted: Sequence[str],
               summed: Sequence[str]) -> GroupSums:
    """``GroupSums`` of the rows of ``work`` by ``keys`` (string columns, no NA)."""
    grouped = work.groupby(list(keys), sort=False, dropna=False)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    n = int(codes.max()) + 1 if codes.size else 0
    # each group's keys from one of its rows (the first: ``ngroup`` numbers groups in the
    # order they first appear), not from every row
    _, first = np.unique(codes, return_index=True)
    labels: list[tuple[str, ...]] = list(
        work[list(keys)].take(first).itertuples(index=False, name=None))
    columns: list[list[int | float]] = []
    for c in counted:  # int64 sums: exact
        counts = np.zeros(n, dtype=np.int64)
        np.add.at(counts, codes, work[c].to_numpy(dtype="int64"))
        columns.append([int(v) for v in counts.tolist()])
    known: list[list[int | float]] = []
    for c in summed:
        totals, seen = exact_sums(codes, n, work[c].to_numpy(dtype="float64", na_value=np.nan))
        columns.append(totals)
        known.append([int(v) for v in seen.tolist()])
    columns += known
    rows = {labels[g]: [column[g] for column in columns] for g in range(n)}
    return GroupSums(tuple(keys), tuple(counted), tuple(summed), rows)


def breakdown_sums(billed: Bill, keys: Sequence[str],
                   tags: pd.DataFrame | None = None) -> GroupSums:
    """What ``cost_breakdown`` of ``billed`` by ``keys`` adds up (``GroupSums``)."""
    keys = list(keys)
    instances = billed.instances
    if "tag" in keys and tags is None:
        tags = billed.instance_tags
    plain = [k for k in keys if k != "tag"]
    require(instances, [k for k in plain if k != "service"], "instances")
    money = _instance_money(billed)
    work = pd.concat([instances[[k for k in plain if k != "service"]], money],
                     axis=1).reset_index(drop=True)
    work["service"] = SERVICES["instances"]
    work["_unknown"] = (instances["configuration_source"] == "missing").to_numpy(dtype=bool)
    if "tag" in keys:
        assert tags is not None
        work = _tag_rows(work, instances, tags, billed.as_of)
    for key in keys:
        work[key] = key_column(work[key], key, work["_unknown"])
    volumes = billed.volumes
    members = money["hourly_usd"].to_numpy(dtype="float64")
    if not volumes.empty:
        storage = _money(volumes, "volumes").reset_index(drop=True)
        for key in keys:
            storage[key] = (key_column(volumes[key], key).to_numpy() if key in _VOLUME_KEYS[:2]
                            else SERVICES["volumes"] if key == "service" else STORAGE_LABEL)
        members = np.concatenate([members, storage["hourly_usd"].to_numpy(dtype="float64")])
        work = pd.concat([work, storage], ignore_index=True)
    sums = group_sums(work, keys, list(_COUNTED), _SUMMED)
    whole = exact_sums(np.zeros(members.size, dtype=np.int64), 1, members)[0][0]
    return replace(sums, total=whole)


def breakdown_of(sums: GroupSums) -> pd.DataFrame:
    """``cost_breakdown``'s table of ``sums`` (of ``breakdown_sums``, perhaps added up)."""
    keys = list(sums.keys)
    out = sums.frame()
    out["daily_usd"] = HOURS_PER_DAY * out["hourly_usd"]
    out["monthly_usd"] = HOURS_PER_MONTH * out["hourly_usd"]
    out["usd_per_gpu_hour"] = ratio(out["hourly_usd"], out["gpus"])
    fleet_hourly = as_float(sums.total)
    out["share_of_hourly"] = out["hourly_usd"] / fleet_hourly if fleet_hourly else np.nan
    # float sums of cent prices carry ~1e-15 of noise: equal run rates must tie on the keys
    out["_rate"] = out["hourly_usd"].round(9)
    out = out.sort_values(["_rate", *keys], ascending=[False, *[True] * len(keys)],
                          na_position="last", kind="stable")
    return out[[*keys, *_BREAKDOWN_COLUMNS]].astype(
        {**dict.fromkeys(keys, "string"), **_BREAKDOWN_COLUMNS}).reset_index(drop=True)


# -- cost by cluster ----------------------------------------------------------------------------

_CLUSTER_COLUMNS: dict[str, str] = {
    "instances": "Int64", "running_instances": "Int64", "gpus": "Int64",
    "hourly_price_usd": "float64", "instances_hourly_usd": "float64",
    "hourly_gap_usd": "float64", "accrued_usd": "float64",
    **dict.fromkeys(BASIS_COLUMNS, "float64"), "reported_cost_usd": "float64",
    "instances_reported_cost_usd": "float64", "instances_without_accrued": "Int64",
    "instances_without_estimate": "Int64",
}


@old_spellings(positional=("instances",), renamed={"source": "fleet"},
               positional_warns=False)  # cluster_summary(clusters, instances) warns below
def cluster_summary(
    fleet: Fleet,
    *,
    as_of: TimeLike = None,
    instances: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each cluster's own price and cost beside the sums over the instances it lists.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> summary = cluster_summary(tables, as_of="2026-11-20T00:00Z")
        >>> summary.loc[summary["hourly_gap_usd"].abs() > 0.005,
        ...             ["name", "hourly_price_usd", "instances_hourly_usd", "hourly_gap_usd"]]
                         name  hourly_price_usd  instances_hourly_usd  hourly_gap_usd
        25  +cluster-finetune             14.32                 57.28          -42.96

    Takes a ``Tables`` or a ``Bill`` (the old spelling for one snapshot, the clusters and
    instances DataFrames, is deprecated), billed at ``as_of`` by the billing model: each
    cluster's newest row (a cluster
    gone from a later successful poll is ``deleted``; two rows in its newest snapshot keep the
    last one loaded) and its instances' state at ``as_of``. Instances whose cluster is not in
    ``clusters`` are left out. Sums add the known values (NA when none is known).

    Returns:
        DataFrame, one row per cluster, sorted by ``hourly_price_usd`` descending (unknown
        last), then ``cluster_id``. Columns: ``cluster_id``, ``name``, ``cloud``, ``region``
        (string), ``status`` (the clusters table's ordered categorical); Int64: ``instances``
        (instance rows listing the cluster), ``running_instances``, ``gpus`` (of running
        instances); float64: ``hourly_price_usd`` (the cluster's own), ``instances_hourly_usd``
        (sum of ``hourly_price_usd`` over ALL its listed instances, running or not: what the
        cluster's price should add up to), ``hourly_gap_usd`` (hourly_price_usd -
        instances_hourly_usd), ``accrued_usd`` (sum over its instances) and its split by basis
        (``billing.BASIS_COLUMNS``), ``reported_cost_usd``
        (the cluster's own ``cost_estimate_usd``), ``instances_reported_cost_usd`` (sum of its
        instances' ``cost_estimate_usd``); Int64: ``instances_without_accrued``,
        ``instances_without_estimate``.
    """
    if isinstance(fleet, pd.DataFrame):
        if instances is None:
            raise ValueError("cluster_summary needs the instances: cluster_summary(tables) or "
                             "cluster_summary(clusters, instances)")
        deprecated("cluster_summary(clusters, instances)", "cluster_summary(tables)",
                   stacklevel=4)  # the caller, past the old_spellings wrapper
        tables = as_tables(instances, "cluster_summary")
        fleet = Tables(**{**dict(tables.frames()),
                          "clusters": fleet})
    elif instances is not None:
        raise ValueError("pass either a Tables or (clusters, instances), not both")
    billed = bill_fleet(fleet, as_of=as_of)
    # kept with the Bill: a report asks twice (its table, and a quality check)
    summary = billed.frame_once("cluster_summary",
                                lambda: cluster_summary_of(billed.clusters, cluster_sums(billed)))
    return summary.copy(deep=False)  # copy-on-write: the kept frame never changes


def cluster_sums(billed: Bill) -> GroupSums:
    """What ``cluster_summary`` of ``billed`` adds up over the instances, per cluster id."""
    listed = billed.instances
    money = _instance_money(billed).assign(cluster_id=listed["cluster_id"]).dropna(
        subset=["cluster_id"])
    return group_sums(money.assign(cluster_id=money["cluster_id"].astype(str)), ["cluster_id"],
                      ["instance", "running", "no_accrued", "no_estimate"],
                      ["gpus", "price_usd", "accrued_usd", *BASIS_COLUMNS, "reported_cost_usd"])


def cluster_summary_of(clusters: pd.DataFrame, instance_sums: GroupSums) -> pd.DataFrame:
    """``cluster_summary``'s table of ``clusters`` (a ``Bill``'s) and ``instance_sums`` (of
    ``cluster_sums``, perhaps added up)."""
    require(clusters, ["cluster_id", "name", "cloud", "region", "status", "hourly_price_usd",
                       "cost_estimate_usd", "observed_at"], "clusters")
    sums = instance_sums.frame().set_index("cluster_id").rename(
        columns={"price_usd": "instances_hourly_usd",
                 "reported_cost_usd": "instances_reported_cost_usd"})
    own = clusters.drop_duplicates("cluster_id", keep="last")
    out = own[["cluster_id", "name", "cloud", "region", "status", "hourly_price_usd",
               "cost_estimate_usd"]].rename(columns={"cost_estimate_usd": "reported_cost_usd"})
    out = out.merge(sums, how="left", left_on="cluster_id", right_index=True)
    # a cluster that lists no instance: its sums are empty sums, known to be 0
    empty = out["instances"].isna()
    out.loc[empty, ["instances", "running_instances", "gpus", "instances_hourly_usd",
                    "accrued_usd", *BASIS_COLUMNS, "instances_reported_cost_usd",
                    "instances_without_accrued",
                    "instances_without_estimate"]] = 0
    out["hourly_gap_usd"] = out["hourly_price_usd"] - out["instances_hourly_usd"].fillna(0.0)
    out = out.sort_values(["hourly_price_usd", "cluster_id"], ascending=[False, True],
                          na_position="last", kind="stable")
    return out[["cluster_id", "name", "cloud", "region", "status", *_CLUSTER_COLUMNS]].astype(
        _CLUSTER_COLUMNS).reset_index(drop=True)
