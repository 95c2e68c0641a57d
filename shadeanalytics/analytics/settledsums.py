"""The summary's views of instances whose billing is over, kept as sums.

A settled instance (``billing.Settled``: gone for good, ``deleted``, its billing ended by
evidence) adds the same to every view of the summary at every later instant: its accrued
cost and its parts to each group of ``cost_breakdown`` (``costs.GroupSums``, exact, so that
sums of two sets of rows add up to the bit), one to "besides N deleted", its findings to the
quality counts (``quality.SettledFindings``), and its billed intervals to the month's
forecast only while they reach last month. :func:`settled_sums` makes those sums from the
settled instances' ``Bill`` rows with the helpers the views use (no second rule);
``SummedTables`` carries them beside the rows of the other instances, for the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import pandas as pd

from .billing import Bill, Settled, SettledTables
from .costs import GroupSums, breakdown_sums
from .quality import SettledFindings, settled_findings

__all__ = [
    "SUMMED_KEYS",
    "SettledSums",
    "SummedTables",
    "decode",
    "encode",
    "recent",
    "settled_sums",
]

#: The keys whose ``cost_breakdown`` sums are kept: the summary's ``--by`` and ``service``.
SUMMED_KEYS: tuple[str, ...] = (
    "cloud",
    "region",
    "gpu_type",
    "shade_instance_type",
    "cluster_id",
    "status",
    "rental_type",
    "tag",
    "service",
)


@dataclass(frozen=True)
class SettledSums:
    """The summary's sums of the settled instances billed as of ``as_of``: ``instances``
    (all ``deleted``), ``breakdowns`` (``costs.breakdown_sums`` by each of ``SUMMED_KEYS``;
    read from the store as bytes, each decoded when first asked for: :meth:`breakdown`)
    and ``findings``."""

    as_of: pd.Timestamp
    instances: int
    breakdowns: dict[str, GroupSums | bytes]
    findings: SettledFindings

    def breakdown(self, key: str) -> GroupSums:
        """The sums by ``key`` (one of ``SUMMED_KEYS``)."""
        sums = self.breakdowns[key]
        if isinstance(sums, bytes):
            sums = self.breakdowns[key] = _decode_sums(sums)
        return sums

    def plus(self, other: SettledSums) -> SettledSums:
        """The sums of both (of different instances), as of the later instant."""
        return SettledSums(
            max(self.as_of, other.as_of),
            self.instances + other.instances,
            {key: self.breakdown(key).plus(other.breakdown(key)) for key in self.breakdowns},
            self.findings.plus(other.findings),
        )


@dataclass(frozen=True)
class SummedTables(SettledTables):
    """A history without the rows of the settled instances, whose views the summary takes
    from ``sums``; ``settled`` then holds no instance rows, only the billed intervals that
    reach back to the month before its instant (the forecast's) and the observation times.
    Only ``output.report.summary_text`` reads it whole: any other view needs
    ``Store.read_settled()`` or ``Store.read()``."""

    sums: SettledSums | None = field(default=None, repr=False, compare=False)


def settled_sums(settled: Settled, clusters: pd.DataFrame) -> SettledSums:
    """The summary's sums of ``settled`` (``clusters``: any clusters table, for its columns)."""
    billed = Bill(
        as_of=settled.as_of,
        instances=settled.instances,
        clusters=clusters.iloc[:0],
        instance_tags=settled.instance_tags,
        intervals=settled.intervals,
        snapshots=0,
    )
    return SettledSums(
        settled.as_of,
        int(settled.instances["instance_id"].nunique()),
        {key: breakdown_sums(billed, [key]) for key in SUMMED_KEYS},
        settled_findings(billed),
    )


def recent(settled: Settled) -> Settled:
    """``settled`` without instance rows, with the intervals that end after the start of the
    month before its instant's (all a forecast at that instant or later itemizes)."""
    at = settled.as_of
    month = pd.Timestamp(year=at.year, month=at.month, day=1, tz="UTC").as_unit("us")
    start = month - pd.offsets.MonthBegin(1)
    end = settled.intervals["end_at"]
    later = ((end > start) | end.isna()).to_numpy(dtype=bool)
    return replace(
        settled,
        instances=settled.instances.iloc[:0],
        instance_tags=settled.instance_tags.iloc[:0],
        intervals=settled.intervals[later].reset_index(drop=True),
    )


# -- kept as msgpack-able values (integers of any size as hex text) -----------------------------


def _number(value: int | float) -> str | float:
    """An exact sum as text: ``<hex>.<shift>`` (its significant bits, then the zero bits
    after them: a few dozen characters, not the ~280 of its whole hex); a float as it is."""
    if not isinstance(value, int):
        return value
    shift = (value & -value).bit_length() - 1 if value else 0
    return f"{value >> shift:x}.{shift}"


def _value(text: str | float) -> int | float:
    if isinstance(text, float):
        return text
    digits, shift = text.split(".")
    return int(digits, 16) << int(shift)


def _encode_sums(sums: GroupSums) -> bytes:
    """``sums`` as msgpack: the keys, the counts as they are, the exact sums as text, the
    known counts as they are (a summary decodes the few breakdowns it prints)."""
    n, m = len(sums.counted), len(sums.summed)
    return msgspec.msgpack.encode(
        {
            "keys": list(sums.keys),
            "counted": list(sums.counted),
            "summed": list(sums.summed),
            "total": _number(sums.total),
            "rows": [
                [*key, *values[:n], *map(_number, values[n : n + m]), *values[n + m :]]
                for key, values in sums.rows.items()
            ],
        }
    )


def _decode_sums(data: bytes) -> GroupSums:
    raw = msgspec.msgpack.decode(data)
    k, n, m = len(raw["keys"]), len(raw["counted"]), len(raw["summed"])
    a, b = k + n, k + n + m
    return GroupSums(
        tuple(raw["keys"]),
        tuple(raw["counted"]),
        tuple(raw["summed"]),
        {tuple(row[:k]): [*row[k:a], *map(_value, row[a:b]), *row[b:]] for row in raw["rows"]},
        _value(raw["total"]),
    )


def encode(sums: SettledSums) -> dict[str, Any]:
    """``sums`` as a value msgpack keeps."""
    found = sums.findings
    return {
        "as_of": sums.as_of.value,
        "instances": sums.instances,
        "breakdowns": {
            k: v if isinstance(v, bytes) else _encode_sums(v) for k, v in sums.breakdowns.items()
        },
        "fixed": found.fixed,
        "clusters": _encode_sums(found.clusters),
        "clouds": [[c, k, n] for (c, k), n in found.clouds.items()],
        "future": found.future,
    }


def decode(raw: dict[str, Any]) -> SettledSums:
    """What :func:`encode` made."""
    return SettledSums(
        pd.Timestamp(raw["as_of"], tz="UTC"),
        int(raw["instances"]),
        dict(raw["breakdowns"]),
        SettledFindings(
            dict(raw["fixed"]),
            _decode_sums(raw["clusters"]),
            {(c, k): n for c, k, n in raw["clouds"]},
            list(raw["future"]),
        ),
    )
