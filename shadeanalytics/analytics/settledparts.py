"""What a report needs of the settled instances beyond their kept bill: their version rows
and their status timeline rows (``Store.read_report``).

An instance whose billing is over (``billing.settle``) is billed from its kept bill rows; a
report also writes every version row of it (``versions/instances.parquet``) and its status
intervals (``timeline.csv``). Both hold at every later instant for as long as the instance is
not seen again, as its bill does, but for ``duration_s`` of its current (last) interval, which
counts up to the report's instant: it is left out here and counted again by
:func:`timeline_with`. The store keeps these parts beside the kept bill (``live.settled``);
:class:`ReportTables` carries them with the open rows, and the report adds them back, in
the order the whole history gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..ingest.arrowrows import pyarrow_or_none
from ..ingest.schema import TABLES
from ..ingest.tables import Tables
from .billing import SettledTables
from .periods import as_us as _us
from .timeline import TIMELINE_COLUMNS, durations_s, status_timeline

__all__ = ["KEPT_TIMELINE", "ReportTables", "SettledParts", "parts_of"]

#: the timeline columns kept (``duration_s`` depends on the report's instant)
KEPT_TIMELINE = tuple(c for c in TIMELINE_COLUMNS if c != "duration_s")
_INSTANCE_COLUMNS = [c.name for c in TABLES["instances"]]


@dataclass(frozen=True)
class SettledParts:
    """The version rows and status timeline rows of settled instances, each made when asked
    for (a store decodes them then: the version rows in the report's Arrow thread, the
    timeline in its second process), and for each instance (``ids``) its newest
    ``observed_at`` (``last``, int64 µs: which read the parts are of) and its number of
    version rows (``rows``)."""

    #: an Arrow table of every ``instances`` column of their version rows, in the history's
    #: row order, when called
    versions_of: Callable[[], Any] = field(repr=False)
    #: their ``KEPT_TIMELINE`` rows, sorted by ``resource_id`` as ``status_timeline`` sorts,
    #: when called
    timeline_of: Callable[[], pd.DataFrame] = field(repr=False)
    ids: np.ndarray
    last: np.ndarray
    rows: np.ndarray

    @property
    def instances(self) -> frozenset[str]:
        """The instances these parts are of."""
        return frozenset(self.ids.tolist())

    def only(self, mask: np.ndarray) -> SettledParts:
        """These parts of the instances ``ids[mask]`` only."""
        if mask.all():
            return self
        keep = self.ids[mask].tolist()
        versions_of, timeline_of = self.versions_of, self.timeline_of

        def versions() -> Any:
            pa = _arrow()
            table = versions_of()
            wanted = pa.compute.is_in(table["instance_id"], value_set=pa.array(keep, pa.string()))
            return table.filter(wanted)

        def timeline() -> pd.DataFrame:
            frame = timeline_of()
            return frame[frame["resource_id"].isin(keep).to_numpy(dtype=bool)].reset_index(
                drop=True
            )

        return SettledParts(versions, timeline, self.ids[mask], self.last[mask], self.rows[mask])

    def plus(self, *others: SettledParts) -> SettledParts:
        """These parts and those of ``others`` (of other instances)."""
        parts = [self, *others]

        def versions() -> Any:
            tables = [part.versions_of() for part in parts]
            return _arrow().concat_tables(tables, promote_options="permissive")

        def timeline() -> pd.DataFrame:
            frame = pd.concat([part.timeline_of() for part in parts], ignore_index=True)
            return frame.take(_id_order(frame["resource_id"])).reset_index(drop=True)

        return SettledParts(
            versions,
            timeline,
            np.concatenate([part.ids for part in parts]),
            np.concatenate([part.last for part in parts]),
            np.concatenate([part.rows for part in parts]),
        )


def _id_order(ids: pd.Series) -> np.ndarray:
    """The stable order of the text ``ids`` by code point, as ``status_timeline`` sorts its
    resources (Arrow's sort of UTF-8 bytes: a year's 2.5 M rows at 10x in a fraction of
    NumPy's sort of Python strings)."""
    pa = _arrow()
    order: np.ndarray = pa.compute.sort_indices(pa.array(ids, type=pa.string())).to_numpy()
    return order


def _arrow() -> Any:
    """pyarrow (the store keeps no parts without it)."""
    pa = pyarrow_or_none()
    if pa is None:  # pragma: no cover - the store keeps no parts without pyarrow
        raise RuntimeError("settled parts need pyarrow")
    return pa


def parts_of(tables: Tables, ids: set[str] | frozenset[str], at: pd.Timestamp) -> SettledParts:
    """The parts of the instances ``ids`` of ``tables`` (a history holding every row of
    them), their timeline as of ``at`` (past their last sighting: their intervals end by it)."""
    pa = _arrow()
    inst = tables.instances
    mine = inst["instance_id"].astype("string").isin(list(ids)).fillna(False).to_numpy(dtype=bool)
    rows = inst[mine].reset_index(drop=True)
    alone = replace(tables, clusters=tables.clusters.iloc[:0], instances=rows)
    timeline = status_timeline(alone, as_of=at)[list(KEPT_TIMELINE)]
    by = rows.groupby(rows["instance_id"].astype(str), sort=False)["observed_at"]
    newest, counts = by.max(), by.size()
    versions = pa.Table.from_pandas(rows[_INSTANCE_COLUMNS], preserve_index=False)
    return SettledParts(
        lambda: versions,
        lambda: timeline,
        newest.index.to_numpy(dtype=object),
        _us(newest),
        counts.reindex(newest.index).to_numpy(dtype=np.int64),
    )


@dataclass(frozen=True)
class ReportTables(SettledTables):
    """A store's history for a report at its newest poll or later (``Store.read_report``):
    the open rows and the kept bill (as ``SettledTables``), with the settled instances'
    version and timeline rows (``parts``), which ``write_report`` adds back: its files equal
    those of the whole history."""

    parts: SettledParts | None = field(default=None, repr=False, compare=False)

    @property
    def instance_rows(self) -> int:
        """The whole history's instance version rows: the open ones and the kept ones."""
        kept = 0 if self.parts is None else int(self.parts.rows.sum())
        return len(self.instances) + kept

    def timeline_with(self, timeline: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
        """``timeline`` (``status_timeline`` of these rows as of ``at``) with the settled
        instances' rows, as ``status_timeline`` of the whole history gives it."""
        kept = None if self.parts is None else self.parts.timeline_of()
        if kept is None or kept.empty:
            return timeline
        seconds = durations_s(_us(kept["start_at"]), _us(kept["end_at"]), at.value // 1_000)
        kept = kept.assign(duration_s=seconds)[list(TIMELINE_COLUMNS)]
        clusters = (timeline["kind"] == "cluster").fillna(False).to_numpy(dtype=bool)
        mine = timeline[~clusters]
        # each resource's rows are together, by resource id: the two merged by id
        both = pd.concat([mine, kept], ignore_index=True)
        both = both.take(_id_order(both["resource_id"]))
        return pd.concat([timeline[clusters], both], ignore_index=True)

    def newest_instances(self, newest: pd.DataFrame) -> pd.DataFrame:
        """``newest`` (the newest rows of these open instances) with the settled ones' (their
        kept bill rows), as ``Tables.latest()`` of the whole history gives them (unsorted)."""
        if self.settled is None or self.settled.instances.empty:
            return newest
        rows = self.settled.instances[list(newest.columns)]
        rows = rows.astype({"status": newest["status"].dtype})
        return pd.concat([newest, rows], ignore_index=True)

    def open_versions(self, columns: list[str]) -> Any:
        """The open instances' version rows (``columns``) as ``pa.Table.from_pandas`` makes
        them (the Arrow table of the whole history is this one's type)."""
        return _arrow().Table.from_pandas(self.instances[columns], preserve_index=False)

    def versions_with(self, table: Any) -> Any:
        """``table`` (:meth:`open_versions`) and the settled instances' version rows (of its
        columns, its type) after it: every version row of the instances. Arrow only: may run
        in a thread of its own."""
        if self.parts is None or not self.parts.rows.sum():
            return table
        pa = _arrow()
        kept = self.parts.versions_of().select(table.column_names).cast(table.schema)
        # (left in chunks: the Parquet writer's take concatenates them column by column)
        both = pa.concat_tables([table, kept]).unify_dictionaries()
        return both.replace_schema_metadata(table.schema.metadata)

    def versions_table(self, columns: list[str]) -> Any:
        """Every version row of the instances (``columns``) as one Arrow table, the open
        rows' first."""
        return self.versions_with(self.open_versions(columns))
