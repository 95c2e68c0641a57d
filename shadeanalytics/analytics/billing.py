"""The billing model: every resource's state, billed price and billed intervals at an instant.

This module is the one place that says what a resource costs. Every dollar of the toolkit
(breakdowns, cluster summary, inventory run rate, lifecycle, the quality cost gap, fleet over
time, summary, report CSVs and chart titles) comes from ``bill_fleet``; no other module computes a
price, a billed interval or a state.

The rule (docs/analytics.md's Definitions state it once, in the same words):

- **State** at ``as_of``, from each resource's newest row observed by then: ``running``
  (``active``), ``pending`` (``creating``, ``pending_provider``, ``pending``), ``stopped``
  (``error``, ``deleting``, ``deleted``, or vanished: missing from a later successful poll of
  the list that showed it) or ``held`` (a status the API added since, or none).
- **Billed price**: a spot rental at its own rate (``rental_hourly_price_usd``), everything
  else (and a spot rental without a rate) at the on-demand ``hourly_price_usd``.
- **Billed intervals**: the ``active`` intervals of the status timeline. Billing starts at
  ``active_at`` (or, without it, at the first poll that saw the instance active) and ends at
  the earliest evidence of the end: the start of the next status (the first poll that saw
  ``deleting`` or ``error``, ``deleted_at`` when the API gives it), or the first successful
  poll that no longer listed the instance (``vanished``), or ``as_of``. An instance first seen
  already stopped but with an ``active_at`` was billed from ``active_at`` until that first
  sighting. Undated rows count as observed at ``as_of``.
- **Unknown is not zero**: an instance running without ``active_at`` in a single snapshot has
  an unknown start, so its billed hours and accrued cost are NA; so is the accrued cost of a
  billed instance without a price, of an instance in a status outside the API's enum (the
  model cannot vouch for that time), and of a volume first seen at the only ``/volumes`` poll
  (what it cost before is unknown).
- **Basis** of each billed interval (``asof.BASES``): *inferred* before the first poll that
  saw the instance in it (from ``active_at``, or the one snapshot), *extrapolated* after the
  newest successful poll (``asof.newest_poll``), *observed* between; every interval of an
  instance whose newest record contradicts itself (``active`` with ``deleted_at``) is
  *disputed*. The ``accrued_<basis>_usd`` columns split ``accrued_usd`` by it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import numpy as np
import pandas as pd

from .._common import TimeLike, as_of_time, require
from .._compat import deprecated
from ..ingest.resources import BY_NAME
from ..ingest.schema import STATUSES, TABLES, TIMESTAMP, empty_frame, status_dtype
from ..ingest.tables import CHILD_TABLES, Tables
from .asof import BASES, Freshness, freshness, resolve_as_of
from .periods import as_times as _times
from .periods import as_us as _us

__all__ = [
    "BASIS_COLUMNS",
    "BILL_COLUMNS",
    "CONFIGURATION_COLUMNS",
    "INTERVAL_COLUMNS",
    "PENDING",
    "RUNNING",
    "STATES",
    "STOPPED",
    "VOLUME_BILL_COLUMNS",
    "VOLUME_INTERVAL_COLUMNS",
    "Bill",
    "Fleet",
    "Settled",
    "SettledTables",
    "as_bill",
    "bill",
    "bill_fleet",
    "billed_price_usd",
    "settle",
    "state_of",
    "tables_of",
    "with_billed",
]

_VOLUMES = BY_NAME["volumes"].endpoint  # polls of it prove a volume there or gone

RUNNING = "active"
#: Statuses of an instance on its way up: asked for, not running (not billed) yet.
PENDING: tuple[str, ...] = ("creating", "pending_provider", "pending")
#: Statuses in which billing has stopped.
STOPPED: tuple[str, ...] = ("error", "deleting", "deleted")
#: What a resource is at ``as_of``; ``held`` is any status the model does not know.
STATES: tuple[str, ...] = ("running", "pending", "held", "stopped")

#: ``accrued_usd`` split by the basis of the billed time (``asof.BASES``): the columns of
#: every money table, summing to ``accrued_usd`` (NA together with it).
BASIS_COLUMNS: tuple[str, ...] = tuple(f"accrued_{basis}_usd" for basis in BASES)

#: Columns ``bill_fleet`` adds to each instance row, in order, with their dtypes.
BILL_COLUMNS: dict[str, str] = {
    "state": "string",
    "configuration_source": "string",
    "billed_price_usd": "float64",
    "billed_from": TIMESTAMP,
    "billed_from_source": "string",
    "billed_to": TIMESTAMP,
    "billing_end_source": "string",
    "billed_hours": "float64",
    "accrued_usd": "float64",
    **dict.fromkeys(BASIS_COLUMNS, "float64"),
}
#: Columns ``bill_fleet`` adds to each volume row (``Bill.volumes``), in order, with their dtypes.
VOLUME_BILL_COLUMNS: dict[str, str] = {
    "state": "string",
    "billed_price_usd": "float64",
    "billed_from": TIMESTAMP,
    "billed_to": TIMESTAMP,
    "billing_end_source": "string",
    "billed_hours": "float64",
    "accrued_usd": "float64",
    **dict.fromkeys(BASIS_COLUMNS, "float64"),
}
#: Columns of ``Bill.intervals``: one row per billed interval and basis, ending by ``as_of``
#: (an interval is cut where its basis changes).
INTERVAL_COLUMNS: dict[str, str] = {
    "instance_id": "string",
    "start_at": TIMESTAMP,
    "end_at": TIMESTAMP,
    "billed_price_usd": "float64",
    "basis": "string",
}
#: Columns of ``Bill.volume_intervals``: the volumes' billed intervals, cut by basis.
VOLUME_INTERVAL_COLUMNS: dict[str, str] = {
    "volume_id": "string",
    "start_at": TIMESTAMP,
    "end_at": TIMESTAMP,
    "billed_price_usd": "float64",
    "basis": "string",
}
#: Instance columns that come from its ``configuration`` object, and so from the catalog
#: (``/instances/types``) when an instance's response lacks it.
CONFIGURATION_COLUMNS: tuple[str, ...] = (
    "gpu_type", "gpu_manufacturer", "num_gpus", "vram_per_gpu_in_gb", "total_vram_gb", "vcpus",
    "memory_in_gb", "storage_in_gb", "interconnect", "nvlink",
)

_NAT = np.iinfo(np.int64).min
_US_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class Bill:
    """The fleet as billed at ``as_of``.

    ``instances``: the newest row(s) of each instance observed by ``as_of`` (an instance listed
    in two clusters of one snapshot keeps both rows), a vanished one as ``deleted``, its
    configuration completed from the catalog where missing, with ``BILL_COLUMNS`` after the
    table's own. ``clusters``: the newest row of each cluster, a vanished one ``deleted``, with
    ``state``. ``instance_tags``: the tags of those instance rows. ``intervals``: every billed
    interval (``INTERVAL_COLUMNS``), clipped to ``as_of``; an interval of unknown start is
    left out (its instance's accrued cost is NA). ``snapshots``: distinct observation times.
    ``volumes``: the newest row of each volume, with its ``storage.volume_prices`` price and
    ``VOLUME_BILL_COLUMNS`` (storage is billed from a volume's first sighting until it is gone
    from a later successful ``/volumes`` poll, or ``as_of``), and ``volume_intervals`` their
    billed intervals. Every interval carries its ``basis`` (the module's docstring).
    ``freshness``: how far ``as_of`` is past the newest successful poll.
    """

    as_of: pd.Timestamp
    instances: pd.DataFrame
    clusters: pd.DataFrame
    instance_tags: pd.DataFrame
    intervals: pd.DataFrame
    snapshots: int
    volumes: pd.DataFrame = field(default_factory=lambda: _empty_volumes())
    #: The volumes' billed intervals by basis (``VOLUME_INTERVAL_COLUMNS``).
    volume_intervals: pd.DataFrame = field(
        default_factory=lambda: empty_intervals(VOLUME_INTERVAL_COLUMNS))
    #: How far ``as_of`` is past the newest successful poll (``asof.freshness``).
    freshness: Freshness | None = None
    #: The ``Tables`` it was billed from (a helper given this Bill reads its catalog, polls
    #: or history there); None for a Bill built by hand.
    history: Tables | None = field(default=None, repr=False, compare=False)
    #: What helpers derive from this bill alone, computed once and kept with it (e.g.
    #: ``finops.billed_items``); each new Bill, also one made by ``dataclasses.replace``,
    #: starts empty, and the values go with the Bill.
    derived: dict[str, object] = field(default_factory=dict, init=False, repr=False,
                                       compare=False)

    def frame_once(self, name: str, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """``make()`` of this bill, made once and kept in ``derived`` under ``name``: the
        same frame each time (callers that hand it on give a copy-on-write copy of it)."""
        kept = self.derived.get(name)
        if not isinstance(kept, pd.DataFrame):
            kept = self.derived[name] = make()
        return kept


@dataclass(frozen=True)
class Settled:
    """What ``bill_fleet`` gave the instances whose billing is over, kept so that their rows
    need not be read and billed again (``Store.read_settled``, which the store keeps them
    for): their ``Bill.instances`` and ``Bill.instance_tags`` rows, their
    ``Bill.intervals``, and the distinct ``observed_at`` (int64 µs) of their history rows
    (``Bill.snapshots`` counts them). Made by :func:`settle` from a bill as of ``as_of``;
    it holds at ``as_of`` and later for as long as none of these instances is seen again.
    """

    as_of: pd.Timestamp
    instances: pd.DataFrame
    instance_tags: pd.DataFrame
    intervals: pd.DataFrame
    times: np.ndarray

    @property
    def ids(self) -> pd.Index:
        """The settled instances' ids."""
        return pd.Index(self.instances["instance_id"].astype(str).to_numpy(dtype=object))

    def plus(self, *others: Settled) -> Settled:
        """These outputs and those of ``others`` (of other instances), in turn, as of the
        latest instant (stacked at once: a kept bill in 16 parts is not copied 15 times)."""
        parts = (self, *others)
        times = parts[0].times
        for part in parts[1:]:
            times = np.union1d(times, part.times)
        return Settled(
            as_of=max(part.as_of for part in parts),
            instances=_stack(*(part.instances for part in parts)),
            instance_tags=_stack(*(part.instance_tags for part in parts)),
            intervals=_stack(*(part.intervals for part in parts)),
            times=times)

    def without(self, ids: set[str]) -> Settled:
        """These outputs without the instances ``ids`` (seen again: billed afresh)."""
        if not ids:
            return self
        keep = {name: ~frame["instance_id"].isin(list(ids)).to_numpy(dtype=bool)
                for name, frame in (("instances", self.instances),
                                    ("instance_tags", self.instance_tags),
                                    ("intervals", self.intervals))}
        # (``times`` stay: an instance seen again is read afresh, its old rows with them)
        return replace(self, **{name: getattr(self, name)[mask].reset_index(drop=True)
                                for name, mask in keep.items()})


@dataclass(frozen=True)
class SettledTables(Tables):
    """A history without the rows of the instances of ``settled``, which ``bill_fleet``
    adds back as billed: its ``Bill`` (and every view of it) equals the whole history's.
    The views that read history rows themselves (the status timeline, the fleet over time,
    the lifecycle) need the whole history: ``Store.read()``."""

    settled: Settled | None = field(default=None, repr=False, compare=False)
    #: Their bill at the newest poll, when the read that made them billed it (to find what
    #: settled since): ``bill_fleet`` at that instant returns it rather than bill again.
    billed: Bill | None = field(default=None, repr=False, compare=False)


def settle(billed: Bill, ids: set[str] | frozenset[str]) -> Settled:
    """The outputs of ``billed`` (billed at the newest successful poll or later) for those of
    ``ids`` whose billing is over: instances gone from every list for good (the caller
    knows: no version of them is current in the store), ``deleted`` with their billing ended
    by evidence (not at ``as_of``), their configuration from their own response (a catalog
    lookup may change with the catalog), one row each."""
    inst = billed.instances
    ids_text = inst["instance_id"].astype(str)
    once = ~ids_text.duplicated(keep=False).to_numpy(dtype=bool)
    over = (ids_text.isin(list(ids)).to_numpy(dtype=bool) & once
            & (inst["status"].astype("string") == "deleted").fillna(False).to_numpy(dtype=bool)
            & (inst["state"] == "stopped").fillna(False).to_numpy(dtype=bool)
            & (inst["billing_end_source"] != "as_of").fillna(True).to_numpy(dtype=bool)
            & (inst["configuration_source"] == "response").fillna(False).to_numpy(dtype=bool))
    chosen = set(ids_text[over])
    rows = billed.history.instances if billed.history is not None else inst
    mine = rows["instance_id"].astype(str).isin(list(chosen)).to_numpy(dtype=bool)
    times = np.unique(_us(rows.loc[mine, "observed_at"]))
    return Settled(
        as_of=billed.as_of,
        instances=inst[ids_text.isin(list(chosen)).to_numpy(dtype=bool)].reset_index(drop=True),
        instance_tags=billed.instance_tags[billed.instance_tags["instance_id"].astype(str)
                                           .isin(list(chosen)).to_numpy(dtype=bool)
                                           ].reset_index(drop=True),
        intervals=billed.intervals[billed.intervals["instance_id"].astype(str)
                                   .isin(list(chosen)).to_numpy(dtype=bool)
                                   ].reset_index(drop=True),
        times=times[times != _NAT])


def _stack(*frames: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frames`` in turn (same columns), an ordered status categorical widened to
    every frame's statuses; empty frames add nothing (all empty: the last one)."""
    full = [frame for frame in frames if not frame.empty]
    if len(full) <= 1:
        return (full or list(frames[-1:]))[0].reset_index(drop=True)
    for name in full[0].columns:
        types = [frame[name].dtype for frame in full]
        if isinstance(types[0], pd.CategoricalDtype) and any(t != types[0] for t in types):
            extra = [str(c) for t in types for c in getattr(t, "categories", [])
                     if c not in STATUSES]
            dtype = status_dtype(tuple(dict.fromkeys(extra)))
            full = [frame.assign(**{name: frame[name].astype(object).astype(dtype)})
                    for frame in full]
    return pd.concat(full, ignore_index=True)


def _with_settled(billed: Bill, settled: Settled) -> Bill:
    """``billed`` (a history without the settled instances' rows) with their outputs added
    back, in the order a bill of the whole history gives: instance rows (and their tags) by
    their ``observed_at``, intervals by instance id, as the status intervals sort them."""
    instances = _stack(billed.instances, settled.instances)
    instances = instances.sort_values("observed_at", kind="stable").reset_index(drop=True)
    tags = _stack(billed.instance_tags, settled.instance_tags)
    tags = tags.sort_values("observed_at", kind="stable").reset_index(drop=True)
    spans = _stack(billed.intervals, settled.intervals)
    spans = spans.sort_values("instance_id", kind="stable").reset_index(drop=True)
    return replace(billed, instances=instances, instance_tags=tags, intervals=spans)


def state_of(status: pd.Series) -> pd.Series:
    """Each status's state (``STATES``) as ``string``: ``active`` is running, ... ."""
    text = status.astype("string")
    state = np.select(
        [(text == RUNNING).fillna(False).to_numpy(dtype=bool),
         text.isin(PENDING).to_numpy(dtype=bool), text.isin(STOPPED).to_numpy(dtype=bool)],
        ["running", "pending", "stopped"], "held")
    return pd.Series(state, index=status.index, dtype="string", name="state")


def billed_price_usd(instances: pd.DataFrame) -> pd.Series:
    """The hourly rate each instance row is billed at, in USD.

    For a spot rental, its own discounted rate (``rental_hourly_price_usd``) where the API
    gives one; for everything else (and a spot rental without a rate) the on-demand
    ``hourly_price_usd``. The API documents the spot rate as what a spot instance costs:
    pricing it at the on-demand rate would overstate it (often twice over).

    Returns:
        float64 Series named ``billed_price_usd``, aligned to ``instances``' index.
    """
    require(instances, ["hourly_price_usd"], "instances")
    price = instances["hourly_price_usd"].astype("float64")
    if "rental_hourly_price_usd" in instances and "rental_type" in instances:
        spot = (instances["rental_type"] == "spot").fillna(False).to_numpy(dtype=bool)
        rental = instances["rental_hourly_price_usd"].astype("float64")
        price = price.where(~spot | rental.isna(), rental)
    return price.rename("billed_price_usd")


# -- inputs -------------------------------------------------------------------------------------


def _complete(instances: pd.DataFrame) -> pd.DataFrame:
    """``instances`` with every schema column (a hand-built frame may lack some), as NA."""
    missing = [c for c in TABLES["instances"] if c.name not in instances.columns]
    if not missing:
        return instances
    filler = empty_frame("instances").reindex(range(len(instances)))
    filler.index = instances.index
    return instances.assign(**{c.name: filler[c.name] for c in missing})


def as_tables(source: Tables | pd.DataFrame, what: str = "the helper") -> Tables:
    """``source`` as ``Tables``: a ``Tables`` as it is, an instances DataFrame of ONE snapshot
    as the only table. A DataFrame observed at several times is refused: only the ``Tables``
    of a history say which instances vanished, so only they can be billed by the one rule."""
    if isinstance(source, Tables):
        return source.history or source  # Tables.latest(): bill the history it came from
    if not isinstance(source, pd.DataFrame):
        raise TypeError(f"{what} needs a Tables (from shadeanalytics.read() or Store.read()) "
                        f"or an instances DataFrame, not a {type(source).__name__}")
    require(source, ["instance_id", "status"], "instances")
    if "observed_at" in source.columns:
        times = source["observed_at"].nunique(dropna=False)
        if times > 1:
            raise ValueError(
                f"instances holds rows observed at {times} different times (a history, or "
                "Tables.latest() of one); pass the Tables itself, not one of its tables, so "
                "that the one billing rule closes deleting, errored and vanished instances")
    return replace(Tables.empty(), instances=_complete(source))


def _until(tables: Tables, at: pd.Timestamp) -> Tables:
    """``tables`` as known at ``at``: rows and polls observed later are dropped, undated rows
    count as observed at ``at``.

    A resource seen again after ``at`` was not gone at ``at`` (an absence followed by a later
    sighting is never a vanish, as in the status timeline): its newest row by ``at`` (with its
    child rows) is carried to ``at``. The history store keeps a row per change and the last
    sighting of each version only, so without this a resource unchanged around ``at`` would
    look vanished at the polls between its rows.
    """
    changes: dict[str, pd.DataFrame] = {}
    carried = None  # (instance_id, observed_at) of the instance rows carried to ``at``
    for name, key in (("clusters", "cluster_id"), ("instances", "instance_id"),
                      ("volumes", "volume_id")):
        df = getattr(tables, name)
        if df.empty:
            continue
        later = (df["observed_at"] > at).to_numpy(dtype=bool)
        if not later.any():
            continue
        kept = df[~later]
        again = kept[key].isin(df.loc[later, key]).to_numpy(dtype=bool)
        newest = kept[again].groupby(key, sort=False)["observed_at"].transform("max")
        rows = kept[again][(kept.loc[again, "observed_at"] == newest).to_numpy(dtype=bool)]
        rows = rows[(rows["observed_at"] < at).to_numpy(dtype=bool)]  # seen at ``at``: as is
        if name == "instances":
            carried = rows[["instance_id", "observed_at"]].drop_duplicates()
        changes[name] = pd.concat([kept, rows.assign(observed_at=at)], ignore_index=True)
    for name, df in tables.frames():
        if df.empty or "observed_at" not in df.columns:
            continue
        df = changes.get(name, df)
        later = (df["observed_at"] > at).to_numpy(dtype=bool)
        if later.any():
            df = df[~later]
        if name in CHILD_TABLES and carried is not None and not carried.empty:
            copies = df.merge(carried, on=["instance_id", "observed_at"])
            df = pd.concat([df, copies.assign(observed_at=at)], ignore_index=True)
        undated = df["observed_at"].isna().to_numpy(dtype=bool)
        if undated.any() and name != "polls":
            df = df.assign(observed_at=df["observed_at"].fillna(at))
        if df is not getattr(tables, name):
            changes[name] = df
    return replace(tables, **changes) if changes else tables


def _with_catalog(instances: pd.DataFrame, types: pd.DataFrame) -> pd.DataFrame:
    """Instances whose response has no ``configuration`` take it from the catalog of the same
    sources (same cloud and ``shade_instance_type``); ``configuration_source`` says which."""
    missing = (instances["num_gpus"].isna() & instances["gpu_type"].isna()).to_numpy(dtype=bool)
    source = np.where(missing, "missing", "response").astype(object)
    out = instances
    if missing.any() and not types.empty:
        keys = ["cloud", "shade_instance_type"]
        columns = [c for c in CONFIGURATION_COLUMNS if c in types.columns]
        catalog = types.sort_values("observed_at", kind="stable").drop_duplicates(
            keys, keep="last")[[*keys, *columns]]
        rows = np.flatnonzero(missing)
        found = instances.iloc[rows][keys].merge(catalog, how="left", on=keys)
        known = (found["num_gpus"].notna() | found["gpu_type"].notna()).to_numpy(dtype=bool)
        if known.any():
            out = instances.copy()
            at = out.index[rows[known]]
            for column in columns:
                out.loc[at, column] = found.loc[known, column].astype(
                    out[column].dtype).to_numpy()
            source[rows[known]] = "catalog"
    return out.assign(configuration_source=pd.array(source, dtype="string"))


# -- billed intervals ---------------------------------------------------------------------------


def _billed_intervals(history: Tables, at: int, snapshots: int) -> tuple[pd.DataFrame, set[str]]:
    """Every ``active`` interval of an instance (start, end clipped to ``at``, where the start
    and end came from), and the ids of instances whose billing start is unknown."""
    from .intervals import ACTIVE as _ACTIVE  # the status intervals (the timeline's too)
    from .intervals import status_intervals as _intervals

    empty = pd.DataFrame({"instance_id": pd.Series([], dtype="string"),
                          "start": np.zeros(0, np.int64), "end": np.zeros(0, np.int64),
                          "start_source": pd.Series([], dtype="string"),
                          "end_source": pd.Series([], dtype="string")})
    if history.instances.empty:
        return empty, set()
    found = _intervals(replace(history, clusters=empty_frame("clusters")), at)
    if found is None:
        return empty, set()
    picked = np.flatnonzero(found.status == _ACTIVE)
    ids = found.resources["resource_id"].to_numpy(dtype=object)[found.resource[picked]]
    start, end = found.start[picked], found.end[picked]
    clipped = (end == _NAT) | (end > at)
    end = np.where(clipped, at, end)
    # what ended each interval: the next status of the same instance, read off the timeline
    after = np.minimum(picked + 1, found.status.size - 1)
    statuses = np.array(found.statuses, dtype=object)[found.status[after]]
    ended_by = np.where(
        found.vanished[after], np.where(found.api[after], "deleted_at", "vanished"),
        np.where(statuses == "deleted",
                 np.where(found.api[after], "deleted_at", "deleted_observed"),
                 statuses.astype(str) + "_observed"))
    ended_by = np.where(clipped, "as_of", ended_by)
    # one snapshot, active without active_at: nothing says when billing started
    unknown = (snapshots <= 1) & ~found.api[picked] & found.first[picked]
    frame = pd.DataFrame({
        "instance_id": pd.array(ids, dtype="string"),
        "start": start, "end": end,
        "start_source": pd.array(np.where(found.api[picked], "api", "observed"), dtype="string"),
        "end_source": pd.array(ended_by, dtype="string"),
    })
    return frame[~unknown].reset_index(drop=True), set(ids[unknown])


def _per_instance(intervals: pd.DataFrame) -> pd.DataFrame:
    """Billed hours, first start and last end (with their sources) of each instance."""
    if intervals.empty:
        return pd.DataFrame(index=pd.Index([], dtype="string", name="instance_id"),
                            columns=["billed_hours", "billed_from", "billed_to",
                                     "billed_from_source", "billing_end_source"])
    work = intervals.assign(hours=(intervals["end"] - intervals["start"]) / _US_PER_HOUR)
    grouped = work.groupby("instance_id", sort=False)
    # each column's reduction on its own: what a named agg gives, several times faster
    return pd.DataFrame({
        "billed_hours": grouped["hours"].sum(),
        "billed_from": grouped["start"].first(),
        "billed_to": grouped["end"].last(),
        "billed_from_source": grouped["start_source"].first(),
        "billing_end_source": grouped["end_source"].last(),
    })


# -- the basis of billed time ------------------------------------------------------------------


def empty_intervals(columns: dict[str, str]) -> pd.DataFrame:
    """An empty intervals frame of ``columns``."""
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in columns.items()})


def _cut_by_basis(start: np.ndarray, end: np.ndarray, seen: np.ndarray, newest: int,
                  disputed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray]:
    """Intervals [start, end) (int64 µs) cut where their basis changes: *inferred* before
    ``seen`` (the first poll that saw the resource in it; ``_NAT``: none), *observed* up to
    ``newest`` (the newest successful poll), *extrapolated* after; ``disputed`` ones are
    disputed throughout. Returns (row of the interval, start, end, basis) of the pieces, in
    interval order; an empty interval keeps one piece."""
    a = np.where(seen == _NAT, end, np.clip(seen, start, end))
    b = np.clip(np.full(start.size, newest), a, end)
    rows = np.repeat(np.arange(start.size), 3)
    lo = np.stack([start, a, b], axis=1).ravel()
    hi = np.stack([a, b, end], axis=1).ravel()
    kind = np.tile(np.array(["inferred", "observed", "extrapolated"], dtype=object), start.size)
    empty = np.repeat(end <= start, 3) & (np.tile(np.arange(3), start.size) == 0)
    keep = (hi > lo) | empty
    kind = np.where(np.repeat(disputed, 3), BASES[3], kind)
    return rows[keep], lo[keep], hi[keep], kind[keep]


def _basis_split(ids: np.ndarray, lo: np.ndarray, hi: np.ndarray, basis: np.ndarray,
                 price: np.ndarray, keys: pd.Series) -> pd.DataFrame:
    """The cost of the pieces summed per resource (``keys``' order) and basis:
    ``BASIS_COLUMNS``, zero where a resource has none of a basis."""
    cost = (hi - lo) / _US_PER_HOUR * price
    cost = np.where(hi > lo, cost, 0.0)
    out = np.zeros((len(keys), len(BASES)))
    if len(cost):
        # one group per (resource, basis), summed as pandas sums a group (NA skipped)
        codes, uniques = pd.factorize(np.asarray(ids, dtype=object))
        kinds = pd.Index(BASES).get_indexer(np.asarray(basis, dtype=object))
        sums = pd.Series(cost).groupby(codes * len(BASES) + kinds).sum()
        table = np.zeros(len(uniques) * len(BASES))
        table[sums.index.to_numpy()] = sums.to_numpy()
        at = pd.Index(uniques).get_indexer(keys.to_numpy(dtype=object))
        found = at >= 0
        out[found] = table.reshape(len(uniques), len(BASES))[at[found]]
    return pd.DataFrame(out, columns=list(BASIS_COLUMNS))


def _first_seen(rows: pd.DataFrame, key: str, status: str | None, ids: np.ndarray,
                start: np.ndarray) -> np.ndarray:
    """For each (id, start): the first observation of that resource at or after ``start``
    (with ``status`` when given), int64 µs; ``_NAT`` when none."""
    if rows.empty or not ids.size:
        return np.full(ids.size, _NAT)
    seen = pd.DataFrame({"id": rows[key].astype("string").to_numpy(dtype=object),
                         "t": _us(rows["observed_at"])})
    keep = seen["t"].to_numpy() != _NAT
    if status is not None:  # (the two columns filtered, not every column of the rows)
        keep &= (rows["status"].astype("string") == status).fillna(False).to_numpy(dtype=bool)
    seen = seen[keep].sort_values("t", kind="stable")
    want = pd.DataFrame({"id": ids.astype(object), "t": start, "_row": np.arange(ids.size)})
    found = pd.merge_asof(want.sort_values("t", kind="stable"),
                          seen.rename(columns={"t": "seen"}).assign(t=lambda d: d["seen"]),
                          on="t", by="id", direction="forward")
    out = np.full(ids.size, _NAT)
    got = found["seen"].notna().to_numpy(dtype=bool)
    out[found["_row"].to_numpy()[got]] = found["seen"].to_numpy()[got].astype(np.int64)
    return out


# -- storage ------------------------------------------------------------------------------------


#: ``_empty_volumes``' frame, built once per volumes spec (most fleets have no volume)
_NO_VOLUMES: list[tuple[object, pd.DataFrame]] = []


def _empty_volumes() -> pd.DataFrame:
    """A bill's volumes when there are none: every column and dtype (a new frame each call)."""
    spec = TABLES["volumes"]
    if not _NO_VOLUMES or _NO_VOLUMES[0][0] is not spec:
        frame = empty_frame("volumes").assign(
            **{c: pd.Series([], dtype=d) for c, d in VOLUME_BILL_COLUMNS.items()})
        _NO_VOLUMES[:] = [(spec, frame)]
    return _NO_VOLUMES[0][1].copy()


def _billed_volumes(history: Tables, newest: pd.DataFrame, at: pd.Timestamp,
                    newest_poll: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each volume's newest row with its price, state and billed interval: from its first
    sighting until the first successful ``/volumes`` poll that no longer listed it (``gone``,
    ``vanished``), else ``as_of``; and those intervals cut by basis. A volume first seen at
    the only ``/volumes`` poll of the history has an unknown start: NA hours and cost."""
    # the one rule for "gone from a later successful poll"
    from .intervals import vanished_at as _vanished
    from .storage import volume_prices  # the one rule for a volume's hourly price

    if newest.empty:
        return _empty_volumes(), empty_intervals(VOLUME_INTERVAL_COLUMNS)
    priced = volume_prices(newest, history.volume_types)
    first = history.volumes.groupby("volume_id")["observed_at"].min()
    vanished = _vanished(history.polls, _us(newest["observed_at"]),
                         np.full(len(newest), _VOLUMES, dtype=object))
    gone = newest["gone"].fillna(False).to_numpy(dtype=bool) & (vanished != _NAT)
    billed_from = pd.Series(first.reindex(newest["volume_id"]).to_numpy(),
                            index=newest.index).astype(TIMESTAMP)
    billed_to = pd.Series(_times(np.where(gone, vanished, at.value // 1_000)),
                          index=newest.index).astype(TIMESTAMP)
    hours = ((billed_to - billed_from).dt.total_seconds() / 3600).clip(lower=0) \
        .to_numpy(dtype="float64", na_value=np.nan)
    price = priced["hourly_price_usd"].to_numpy(dtype="float64")
    polls = history.polls
    polls = polls[(polls["ok"].fillna(False) & (polls["endpoint"] == _VOLUMES).fillna(False))
                  .to_numpy(dtype=bool)]
    times = polls["observed_at"] if not polls.empty else history.volumes["observed_at"]
    if len(times.drop_duplicates()) <= 1:  # the only /volumes poll: the past is unknown
        hours = np.full(len(newest), np.nan)
    known = ~np.isnan(hours)
    lo, hi = _us(billed_from), _us(billed_to)
    rows, lo, hi, basis = _cut_by_basis(lo[known], np.maximum(lo[known], hi[known]), lo[known],
                                        newest_poll, np.zeros(int(known.sum()), dtype=bool))
    ids = newest["volume_id"].astype("string").to_numpy(dtype=object)[known][rows]
    prices = price[known][rows]
    spans = pd.DataFrame({"volume_id": pd.array(ids, dtype="string"), "start_at": _times(lo),
                          "end_at": _times(hi), "billed_price_usd": prices,
                          "basis": pd.array(basis, dtype="string")}).astype(
        VOLUME_INTERVAL_COLUMNS)
    split = _basis_split(ids, lo, hi, basis, prices, newest["volume_id"].astype("string"))
    accrued = np.where(hours == 0, 0.0, hours * price)
    split.loc[np.isnan(accrued)] = np.nan
    money = {
        "state": pd.array(np.where(gone, "stopped", "running"), dtype="string"),
        "billed_price_usd": price,
        "billed_from": billed_from,
        "billed_to": billed_to,
        "billing_end_source": pd.array(np.where(gone, "vanished", "as_of"), dtype="string"),
        "billed_hours": hours,
        "accrued_usd": accrued,
        **{c: split[c].to_numpy(dtype="float64") for c in BASIS_COLUMNS},
    }
    return priced.assign(**money).astype(VOLUME_BILL_COLUMNS), spans


# -- the bill -----------------------------------------------------------------------------------


#: What the analytics helpers take first, as ``fleet``: a ``Tables`` (a history of snapshots,
#: or one), a ``Bill`` (which carries the ``Tables`` it was billed from), or an instances
#: DataFrame of one snapshot.
Fleet: TypeAlias = Tables | Bill | pd.DataFrame


def bill_fleet(fleet: Fleet, *, as_of: TimeLike = None) -> Bill:
    """The ``fleet`` as billed at ``as_of`` (tz-aware; default: the newest
    successful poll, ``asof.resolve_as_of``; ``"now"``: ``config.now()``).

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> billed = bill_fleet(tables, as_of="2026-11-20T00:00Z")
        >>> billed.instances["billing_end_source"].value_counts().to_dict()
        {'as_of': 102, 'deleted_at': 61, 'deleting_observed': 18}

    (Each instance's billing ends at ``as_of`` while it runs, else at its ``deleted_at`` or at
    the first poll that showed it ``deleting``.)

    ``fleet`` is a ``Tables`` (a history of snapshots, or one), an instances DataFrame of one
    snapshot, or a ``Bill`` (returned as it is when ``as_of`` is None or its own; billed
    again from the ``Tables`` it carries otherwise). See the module's docstring for the rule.
    """
    if isinstance(fleet, Bill):
        if as_of is None or as_of == "latest" or as_of_time(as_of) == fleet.as_of:
            return fleet
        if fleet.history is None:
            raise ValueError(f"this Bill was made as of {fleet.as_of}; call "
                             "bill_fleet(tables, as_of=...) for another instant")
        fleet = fleet.history
    tables = as_tables(fleet, "bill_fleet")
    at = resolve_as_of(as_of, tables)
    known = tables.billed if isinstance(tables, SettledTables) else None
    if known is not None and known.as_of == at:
        return known
    fresh = freshness(tables, at)
    newest_poll = (at if fresh.newest_poll is None else fresh.newest_poll).value // 1_000
    history = _until(tables, at)
    times = pd.concat([history.clusters["observed_at"], history.instances["observed_at"]])
    snapshots = int(times.nunique())
    settled = tables.settled if isinstance(tables, SettledTables) else None
    if settled is not None:
        if at < settled.as_of:
            raise ValueError(f"these tables leave out the instances settled as of "
                             f"{settled.as_of}; bill the whole history (Store.read()) as "
                             f"of {at}")
        snapshots = int(np.union1d(_us(times.dropna()), settled.times).size)
    latest = history.latest()
    instances = _with_catalog(latest.instances, history.instance_types)
    intervals, unknown = _billed_intervals(history, at.value // 1_000, snapshots)
    # a status outside the API's enum: the model cannot vouch for that time (NA, not $0)
    status = history.instances["status"].astype("string")
    odd = status.notna().to_numpy(dtype=bool) & ~status.isin(STATUSES).to_numpy(dtype=bool)
    unknown |= set(history.instances.loc[odd, "instance_id"].astype(str))
    intervals = intervals[~intervals["instance_id"].isin(unknown).to_numpy(dtype=bool)]
    # a record that contradicts itself: active with deleted_at
    newest_status = instances["status"].astype("string")
    contradicts = ((newest_status == RUNNING).fillna(False).to_numpy(dtype=bool)
                   & instances["deleted_at"].notna().to_numpy(dtype=bool))
    disputed = set(instances.loc[contradicts, "instance_id"].astype(str))

    price = billed_price_usd(instances)
    per = _per_instance(intervals).reindex(instances["instance_id"])
    billed = per["billed_hours"].notna().to_numpy()
    hours = np.where(billed, per["billed_hours"].to_numpy(dtype="float64", na_value=np.nan),
                     0.0)
    is_unknown = instances["instance_id"].isin(unknown).to_numpy(dtype=bool)
    hours[is_unknown] = np.nan
    state = state_of(instances["status"])
    to = per["billed_to"].to_numpy(dtype="float64", na_value=np.nan)
    start = per["billed_from"].to_numpy(dtype="float64", na_value=np.nan)
    ends = np.where(is_unknown, "as_of", per["billing_end_source"].to_numpy(dtype=object))
    money = pd.DataFrame({
        "state": state.to_numpy(),
        "billed_price_usd": price.to_numpy(),
        "billed_from": _times(np.where(np.isnan(start), _NAT, start).astype(np.int64)),
        "billed_from_source": pd.array(per["billed_from_source"].to_numpy(dtype=object),
                                       dtype="string"),
        "billed_to": _times(np.where(is_unknown, at.value // 1_000,
                                     np.where(np.isnan(to), _NAT, to)).astype(np.int64)),
        "billing_end_source": pd.array(ends, dtype="string"),
        "billed_hours": hours,
        # no billed hours cost nothing, whatever the price; billed hours at no price: unknown
        "accrued_usd": np.where(hours == 0, 0.0, hours * price.to_numpy()),
    }, index=instances.index)
    # the new columns' dtypes, set before they join the others (which keep theirs)
    money = money.astype({c: d for c, d in BILL_COLUMNS.items() if c in money.columns})
    instances = pd.concat([instances.drop(columns="configuration_source"),
                           money[["state"]],
                           instances[["configuration_source"]],
                           money.drop(columns="state")], axis=1)

    price_of = pd.Series(price.to_numpy(), index=instances["instance_id"].to_numpy())
    price_of = price_of[~price_of.index.duplicated(keep="first")]
    ids = intervals["instance_id"].to_numpy(dtype=object)
    start, end = intervals["start"].to_numpy(), intervals["end"].to_numpy()
    seen = _first_seen(history.instances, "instance_id", RUNNING, ids, start)
    rows, lo, hi, basis = _cut_by_basis(start, end, seen, newest_poll,
                                        np.isin(ids.astype(str), list(disputed)))
    prices = price_of.reindex(ids[rows]).to_numpy(dtype="float64")
    spans = pd.DataFrame({
        "instance_id": pd.array(ids[rows], dtype="string"),
        "start_at": _times(lo),
        "end_at": _times(hi),
        "billed_price_usd": prices,
        "basis": pd.array(basis, dtype="string"),
    }).astype(INTERVAL_COLUMNS)
    split = _basis_split(ids[rows], lo, hi, basis, prices, instances["instance_id"])
    split.index = instances.index
    split.loc[instances["accrued_usd"].isna().to_numpy(dtype=bool)] = np.nan
    instances = instances.assign(**{c: split[c] for c in BASIS_COLUMNS})
    clusters = latest.clusters.assign(state=state_of(latest.clusters["status"]))
    volumes, volume_spans = _billed_volumes(history, latest.volumes, at, newest_poll)
    billed = Bill(as_of=at, instances=instances, clusters=clusters,
                  instance_tags=latest.instance_tags, intervals=spans, snapshots=snapshots,
                  volumes=volumes, volume_intervals=volume_spans, freshness=fresh,
                  history=tables)
    if history is tables:  # the newest rows of the Tables billed (Tables.latest()), for a report
        billed.derived["latest"] = latest
    return billed if settled is None else _with_settled(billed, settled)


def as_bill(fleet: Fleet, as_of: TimeLike = None) -> tuple[Bill, Tables]:
    """``fleet`` billed at ``as_of`` (``bill_fleet``), with the ``Tables`` it was billed from
    (for a hand-built ``Bill`` without them: empty ``Tables``, its catalog and polls empty)."""
    billed = bill_fleet(fleet, as_of=as_of)
    return billed, billed.history if billed.history is not None else Tables.empty()


def tables_of(fleet: Fleet, what: str = "the helper") -> Tables:
    """The ``Tables`` of ``fleet``: a ``Bill``'s own history, else ``as_tables``."""
    if isinstance(fleet, Bill):
        if fleet.history is None:
            raise ValueError(f"{what} needs the Tables this Bill was billed from; this one "
                             "carries none (made by hand): pass the Tables")
        return fleet.history
    return as_tables(fleet, what)


def with_billed(fleet: Fleet, billed: Bill | None, what: str) -> Fleet:
    """The old spelling ``helper(tables, billed=bill)``, kept for one release: the ``Bill``
    (carrying ``tables`` when it carries no history), with a ``DeprecationWarning``."""
    if billed is None:
        return fleet
    # the caller: past this function, the helper and its old_spellings wrapper
    deprecated(f"{what}(tables, billed=...)", f"{what}(billed): a Bill carries its history",
               stacklevel=5)
    if billed.history is None and not isinstance(fleet, Bill):
        return replace(billed, history=as_tables(fleet, what))
    return billed


def bill(source: Fleet, as_of: TimeLike = None) -> Bill:
    """Deprecated: ``bill_fleet(fleet, as_of=...)``."""
    deprecated("bill()", "bill_fleet(fleet, as_of=...)")
    return bill_fleet(source, as_of=as_of)
