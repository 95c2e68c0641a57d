"""What the data knows: the one ``as_of`` rule, the newest poll, and when data is stale.

- **as_of.** Every helper, command and export resolves its ``as_of`` here
  (:func:`resolve_as_of`): by default the data's own time, the newest successful poll (for
  sources without polls, the newest dated row), never after now; ``"now"`` only when asked;
  anything else a timezone-aware instant. Now is always ``config.now()``. Undated responses
  (``observed_at`` empty) have no time of their own: they are refused with
  :class:`UndatedError`, which asks for an ``as_of``.
- **Staleness.** The grace is :data:`STALE_POLLS` poll intervals (the median spacing of the
  successful polls), at least :data:`STALE_MIN`; data is stale at ``as_of`` when ``as_of`` is
  past the newest successful poll by more than that (:func:`freshness`).
- **Basis.** Each billed interval is *observed*, *inferred*, *extrapolated* or *disputed*
  (:data:`BASES`; ``billing.bill_fleet`` assigns it); :func:`basis_sentences` says in words what a
  total rests on, for ``summary``, the page and ``check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from .. import config
from .._common import TimeLike, instant, usd
from ..errors import ShadeanalyticsError
from ..ingest.tables import Tables

__all__ = [
    "BASES",
    "STALE_MIN",
    "STALE_POLLS",
    "Freshness",
    "UndatedError",
    "basis_sentences",
    "freshness",
    "newest_poll",
    "resolve_as_of",
    "stale_sentence",
    "trust_notes",
]

#: The basis of a billed interval, in the order tables show them.
BASES: tuple[str, ...] = ("observed", "inferred", "extrapolated", "disputed")
#: Data is stale when ``as_of`` is past the newest successful poll by more than this many
#: poll intervals ...
STALE_POLLS = 3
#: ... and never less than this.
STALE_MIN = pd.Timedelta(hours=1)


class UndatedError(ShadeanalyticsError, ValueError):
    """The sources are undated (no ``observed_at``), so they have no time of their own."""


def _dated(tables: Tables, until: pd.Timestamp | None) -> tuple[np.ndarray, bool]:
    """The successful poll times (int64 µs, sorted, distinct) by ``until``; without any poll,
    the dated rows' times; and whether they are polls."""
    polls = tables.polls
    if not polls.empty:
        ok = polls[polls["ok"].fillna(False).to_numpy(dtype=bool)]["observed_at"].dropna()
        if until is not None:
            ok = ok[(ok <= until).to_numpy(dtype=bool)]
        if not ok.empty:
            return _distinct(ok.to_numpy(dtype="datetime64[us]").astype(np.int64)), True
    frames = [df["observed_at"].dropna() for df in (tables.clusters, tables.instances,
                                                    tables.volumes)
              if not df.empty and "observed_at" in df.columns]
    times = pd.concat(frames) if frames else pd.Series([], dtype="datetime64[us, UTC]")
    if until is not None:
        times = times[(times <= until).to_numpy(dtype=bool)]
    return np.unique(times.to_numpy(dtype="datetime64[us]").astype(np.int64)), False


def _distinct(times: np.ndarray) -> np.ndarray:
    """``np.unique(times)``; in one pass when they are sorted already (``Tables.polls`` is
    ordered by time: a year's 315,000 poll rows)."""
    if times.size and bool((times[1:] >= times[:-1]).all()):
        first = np.ones(times.size, dtype=bool)
        first[1:] = times[1:] != times[:-1]
        return times[first]
    return np.unique(times)


def newest_poll(tables: Tables, until: TimeLike = None) -> pd.Timestamp | None:
    """The newest successful poll (for sources without polls, the newest dated row), not
    after ``until`` when given; None when nothing is dated."""
    times, _ = _dated(tables, None if until is None else instant(until, "until"))
    return pd.Timestamp(int(times[-1]), unit="us", tz="UTC") if times.size else None


def resolve_as_of(value: TimeLike, tables: Tables) -> pd.Timestamp:
    """The ``as_of`` of every helper, command and export (the one rule; module docstring).

    ``None`` or ``"latest"`` is the data's own time: the newest successful poll not after
    now (a poll dated by a clock that ran ahead is passed over); undated sources raise
    :class:`UndatedError` (sources holding nothing at all: now, as any instant bills them
    alike). ``"now"`` is ``config.now()``; anything else a timezone-aware
    instant (``_common.instant``).
    """
    if value is None or (isinstance(value, str) and value == "latest"):
        now = pd.Timestamp(config.now())
        newest = newest_poll(tables, until=now)
        if newest is None and not any(len(df) for _, df in tables.frames()):
            return instant(now, "as_of")  # nothing at all: every instant bills it alike
        if newest is None:
            raise UndatedError(
                "the sources are undated (no observed_at: a bare API response, not a "
                "snapshot or a store), so they have no time of their own: pass as_of=... "
                "(--as-of TIME, or --as-of now)")
        return newest.as_unit("us")
    if isinstance(value, str) and value == "now":
        return instant(pd.Timestamp(config.now()), "as_of")
    return instant(value, "as_of")


@dataclass(frozen=True)
class Freshness:
    """How far ``as_of`` is past what the data saw.

    ``newest_poll``: the newest successful poll by ``as_of`` (None: undated sources);
    ``grace``: ``STALE_POLLS`` poll intervals, at least ``STALE_MIN``; ``behind``: ``as_of``
    minus ``newest_poll`` (zero without one); ``stale``: ``behind > grace``.
    """

    as_of: pd.Timestamp
    newest_poll: pd.Timestamp | None
    grace: pd.Timedelta
    behind: pd.Timedelta

    @property
    def stale(self) -> bool:
        return self.behind > self.grace

    @property
    def seen_to(self) -> pd.Timestamp:
        """The instant an age ("pending for", "running for") is measured to: the newest poll
        on stale data (what the data saw), else ``as_of``."""
        return self.as_of - self.behind if self.stale else self.as_of


def freshness(tables: Tables, as_of: pd.Timestamp) -> Freshness:
    """``tables``' freshness at ``as_of`` (see :class:`Freshness`)."""
    times, _ = _dated(tables, as_of)
    grace = STALE_MIN
    if times.size >= 2:
        spacing = pd.Timedelta(int(np.median(np.diff(times))), unit="us")
        grace = max(STALE_MIN, STALE_POLLS * spacing)
    if not times.size:
        return Freshness(as_of, None, grace, pd.Timedelta(0))
    newest = pd.Timestamp(int(times[-1]), unit="us", tz="UTC")
    return Freshness(as_of, newest, grace, max(pd.Timedelta(0), as_of - newest))


def _span(delta: pd.Timedelta) -> str:
    hours = delta / pd.Timedelta(hours=1)
    return f"{hours / 24:,.1f} days" if hours >= 48 else f"{hours:,.1f} h"


def stale_sentence(fresh: Freshness, extrapolated_usd: float) -> str | None:
    """The staleness in words, or None when the data is fresh."""
    if not fresh.stale or fresh.newest_poll is None:
        return None
    return (f"STALE DATA: the newest successful poll "
            f"({fresh.newest_poll.strftime('%Y-%m-%dT%H:%M:%SZ')}) is {_span(fresh.behind)} "
            f"before as_of (grace {_span(fresh.grace)}); {usd(extrapolated_usd)} of the "
            "accrued total is extrapolated past it")


def basis_sentences(totals: pd.DataFrame, disputed_records: int,
                    bases: tuple[str, ...] = BASES[1:]) -> list[str]:
    """What an accrued total rests on, in words: one sentence per non-zero basis of ``bases``
    (default: all but observed; ``totals`` has the ``accrued_<basis>_usd`` columns of
    ``cost_breakdown``), disputed first."""
    def total(basis: str) -> float:
        column = f"accrued_{basis}_usd"
        return float(totals[column].sum()) if column in totals.columns else 0.0

    out = []
    disputed = total("disputed")
    if round(disputed, 2) and "disputed" in bases:
        out.append(f"{usd(disputed)} of it rests on {disputed_records} record"
                   f"{'s' * (disputed_records != 1)} that "
                   f"{'contradict themselves' if disputed_records != 1 else 'contradicts itself'}"
                   ": see the quality findings")
    extrapolated = total("extrapolated")
    if round(extrapolated, 2) and "extrapolated" in bases:
        out.append(f"{usd(extrapolated)} of it is extrapolated past the newest successful poll")
    inferred = total("inferred")
    if round(inferred, 2) and "inferred" in bases:
        out.append(f"{usd(inferred)} of it is inferred from API timestamps before the first "
                   "poll that saw it")
    return out


class Billed(Protocol):
    """What ``trust_notes`` reads of a ``billing.Bill`` (billing builds on this module)."""

    @property
    def instances(self) -> pd.DataFrame: ...

    @property
    def freshness(self) -> Freshness | None: ...


def trust_notes(billed: Billed, totals: pd.DataFrame, bases: tuple[str, ...] = BASES[1:]
                ) -> tuple[str | None, list[str]]:
    """What the accrued total of ``totals`` (``cost_breakdown`` of ``billed``) rests on, in
    words: the staleness sentence (None when fresh) and one sentence per basis of ``bases``
    that is not zero (``basis_sentences``); ``summary``, the page and ``check`` say the same
    (``check``: the disputed part only, the staleness being its ``stale_data`` breach)."""
    disputed = int((billed.instances.drop_duplicates("instance_id")["accrued_disputed_usd"]
                    > 0).sum())
    fresh = billed.freshness
    stale = None
    if fresh is not None:
        stale = stale_sentence(fresh, float(totals["accrued_extrapolated_usd"].sum()))
    return stale, basis_sentences(totals, disputed, bases)
