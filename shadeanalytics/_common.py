"""Small rules every module shares: instants, argument checks, group labels, dollars as text."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeAlias

import pandas as pd

__all__ = [
    "CONFIGURATION_KEYS",
    "NA_LABEL",
    "PLACEHOLDER_LABELS",
    "STORAGE_LABEL",
    "TimeLike",
    "as_of_time",
    "count_groups",
    "group_keys",
    "instant",
    "key_column",
    "progress",
    "ratio",
    "require",
    "set_progress",
    "usd",
]

#: A UTC instant: a tz-aware ``pd.Timestamp``, ``datetime`` or RFC 3339 string; None is now.
TimeLike: TypeAlias = pd.Timestamp | datetime | str | None

#: How a missing group key is shown: ``(standalone)`` for an instance outside any cluster,
#: ``(untagged)`` for an instance without tags, ``(unknown)`` for a GPU field of an instance
#: whose configuration is missing (see ``key_column``), ``(none)`` for any other.
NA_LABEL = "(none)"
_NA_LABELS = {"cluster_id": "(standalone)", "tag": "(untagged)"}
_UNKNOWN = "(unknown)"
#: How a volume shows a key that only instances have (gpu_type, cluster_id, tag, ...).
STORAGE_LABEL = "(storage)"
#: The labels that stand for no group of their own: a count of clusters or GPU types leaves
#: them out (``count_groups``).
PLACEHOLDER_LABELS = frozenset({NA_LABEL, *_NA_LABELS.values(), _UNKNOWN, STORAGE_LABEL})
#: Group keys that come from an instance's ``configuration`` object.
CONFIGURATION_KEYS: tuple[str, ...] = ("gpu_type", "gpu_manufacturer", "interconnect")


def instant(value: TimeLike, name: str) -> pd.Timestamp:
    """``value`` as a UTC ``pd.Timestamp`` in microseconds; a naive time or NaT is refused."""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"{name} must be a time, not NaT")
    if stamp.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. '2026-11-21T12:00:00Z' or "
                         "pd.Timestamp.now(tz='UTC')")
    return stamp.tz_convert("UTC").as_unit("us")


def as_of_time(as_of: TimeLike) -> pd.Timestamp:
    """``as_of`` as a UTC ``pd.Timestamp``. A naive time is refused, and so is None: helpers
    resolve their default with ``analytics.asof.resolve_as_of`` (the data's own time, or
    ``config.now()`` when asked for ``now``), never here."""
    if as_of is None:
        raise ValueError("as_of: no time given (resolve the default with asof.resolve_as_of)")
    return instant(as_of, "as_of")


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Refuse ``df`` when it lacks any of ``columns``, naming them and the table to pass."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing the column(s) {', '.join(missing)}; pass the "
                         f"{what} table of shadeanalytics.read()")


def group_keys(by: str | Sequence[str], allowed: Sequence[str], *,
               required: bool = True) -> list[str]:
    """``by`` as a list of group keys, checked against ``allowed`` (at least one if
    ``required``)."""
    keys = [by] if isinstance(by, str) else list(by)
    if required and not keys:
        raise ValueError(f"by needs at least one of {', '.join(allowed)}")
    unknown = [k for k in keys if k not in allowed]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(map(repr, unknown))}; by takes any of "
                         f"{', '.join(allowed)}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"by lists a key twice: {keys}")
    return keys


def key_column(values: pd.Series, key: str, unknown: pd.Series | None = None) -> pd.Series:
    """A group key as ``string``, its missing values labelled.

    ``(standalone)`` for ``cluster_id``, ``(untagged)`` for ``tag``, ``(none)`` otherwise; a
    configuration key (``CONFIGURATION_KEYS``) of a row flagged in ``unknown`` (its
    configuration is missing, so the value is not known to be absent) shows ``(unknown)``.
    """
    out = values.astype("string")
    if unknown is not None and key in CONFIGURATION_KEYS:
        flag = unknown.to_numpy(dtype=bool)
        if flag.any():
            out = out.mask(out.isna().to_numpy() & flag, _UNKNOWN)
    return out.fillna(_NA_LABELS.get(key, NA_LABEL))


def count_groups(labels: pd.Series) -> tuple[int, list[str]]:
    """The rows of ``labels`` that name a group, and the placeholders present (sorted): so
    ``(standalone)`` is not counted as a cluster, nor ``(storage)`` as a GPU type.

    Example::

        >>> count_groups(pd.Series(["H100", "A100", "(storage)"]))
        (2, ['(storage)'])
    """
    text = labels.astype("string")
    placeholder = text.isin(PLACEHOLDER_LABELS).fillna(False).to_numpy(dtype=bool)
    return int((~placeholder).sum()), sorted(set(text[placeholder].tolist()))


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as float64, NaN where the denominator is 0 or missing."""
    den = denominator.astype("float64")
    return (numerator.astype("float64") / den.where(den != 0)).astype("float64")


def usd(value: float, *, cents: bool | None = True, rate: bool = False) -> str:
    """Dollars as text, the one money format of every table, chart, page and message.

    With ``cents`` (the default) ``$1,234.50``; without, whole dollars (``$1,235``); with
    ``cents=None``, cents below $1,000 only (chart labels). With ``rate`` (a unit price, such
    as per GB-hour) every digit up to 6 decimals, at least 2: ``$0.00012``. A negative amount
    gets ``-`` before the ``$`` unless it rounds to zero; NaN or NA is ``n/a``.

    Example::

        >>> usd(1665.01), usd(1234.5, cents=None), usd(9.3, cents=None), usd(-5), usd(-0.001)
        ('$1,665.01', '$1,234', '$9.30', '-$5.00', '$0.00')
        >>> usd(0.0001, rate=True), usd(0.00012, rate=True), usd(2.1, rate=True)
        ('$0.0001', '$0.00012', '$2.10')
    """
    if pd.isna(value):  # NaN or NA
        return "n/a"
    amount = abs(value)
    with_cents = amount < 1000 if cents is None else cents
    if rate:
        whole, _, fraction = f"{amount:,.6f}".partition(".")
        text = f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
    else:
        text = f"{amount:,.2f}" if with_cents else f"{amount:,.0f}"
    return ("-" if value < 0 and text.strip("0.,") else "") + "$" + text
# -- progress bars -----------------------------------------------------------------------------

#: A bar appears only once its work has run this long: quick work shows nothing.
PROGRESS_DELAY_S = 2.0
_progress_default: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """The default of every progress bar: False never (the CLI's ``--quiet``), True always,
    None on a terminal only."""
    global _progress_default
    _progress_default = enabled


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


@contextmanager
def progress(total: int | None, what: str, *, enabled: bool | None = None,
             unit: str = "it") -> Iterator[Any]:
    """A tqdm bar on standard error for work of ``total`` steps (``bar.update(n)``).

    Shown only when ``enabled`` is True, or when it is None, the default
    (:func:`set_progress`) allows it and standard error is a terminal (so never in cron, a
    pipe or a log file), and then only once the work has taken :data:`PROGRESS_DELAY_S`.
    """
    if enabled is None:
        enabled = _progress_default
    if enabled is None:
        enabled = sys.stderr is not None and sys.stderr.isatty()
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit=unit, file=sys.stderr, delay=PROGRESS_DELAY_S,
              leave=False, dynamic_ncols=True) as bar:
        yield bar
