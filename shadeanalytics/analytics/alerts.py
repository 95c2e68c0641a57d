"""Budgets and alerts: rules checked against the fleet as billed, for cron and CI.

``load_budgets(path)`` reads a TOML file of ``[[budget]]`` rules; ``evaluate(tables, budgets,
as_of=...)`` returns the ``Breach`` list: the budget rules whose measure exceeds its limit, and
the built-in rules (``BUILTIN_RULES``) that need no file. ``send_webhook`` posts them as JSON
(Slack-compatible ``text`` plus structured fields) with a timeout, bounded retries and a
whole-send deadline; ``run_check`` is the ``shadeanalytics check`` command: it keeps one alert
per *episode* (a breach from the run that first sees it until the run that no longer does) in
the store.

Every figure comes from the billing model (``billing.bill``) and the helpers that add it up
(``cost_breakdown``, ``lifecycle``, ``quality_checks``); nothing here prices or dates a resource.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import random
import socket
import ssl
import threading
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from .._common import TimeLike, key_column, usd
from .._text import for_slack, for_terminal
from ..errors import DataWarning, ShadeanalyticsError
from ..ingest.tables import Tables
from .billing import Bill, bill
from .costs import COST_KEYS, HOURS_PER_DAY, HOURS_PER_MONTH, cost_breakdown
from .finops import billed_cost_between

__all__ = [
    "BUDGET_STATE_COLUMNS",
    "BUILTIN_RULES",
    "BURN_JUMP_SHARE",
    "MAX_BUDGETS",
    "MAX_BUDGETS_BYTES",
    "MAX_BUDGET_TEXT",
    "MAX_WEBHOOK_URL",
    "MEASURES",
    "MIN_TRAILING_HOURS",
    "WEBHOOK_BACKOFF_S",
    "WEBHOOK_DEADLINE_S",
    "Breach",
    "Budget",
    "BudgetFileError",
    "CheckResult",
    "WebhookError",
    "billed_usd_between",
    "budget_state",
    "check_webhook_url",
    "escape_control",
    "evaluate",
    "load_budgets",
    "month_figures",
    "payload",
    "run_check",
    "send_webhook",
]

#: The burn-rate rule fires when the hourly burn exceeds its trailing 7-day mean by this share.
BURN_JUMP_SHARE = 0.5
_TRAILING = pd.Timedelta(days=7)
#: The trailing mean needs at least this much observed history (from the first observation
#: to the newest successful poll); with less, ``burn_rate_jump`` has no signal and stays quiet.
MIN_TRAILING_HOURS = 24
#: The webhook's first backoff (seconds; doubles per attempt, full jitter).
WEBHOOK_BACKOFF_S = 0.5
#: The most one alert may take, every attempt and backoff included (seconds): a server that
#: trickles its answer cannot keep ``check`` (and its alert lock) past it.
WEBHOOK_DEADLINE_S = 30.0
#: The longest webhook URL taken (characters).
MAX_WEBHOOK_URL = 2048
#: The largest budgets file read (bytes), the most rules it may hold, and the longest name or
#: ``where`` value (characters): far above any real file, far below what slows a check.
MAX_BUDGETS_BYTES = 1024 * 1024
MAX_BUDGETS = 1000
MAX_BUDGET_TEXT = 200

#: Measures a ``[[budget]]`` rule can limit, with what each is.
MEASURES: dict[str, str] = {
    "hourly_usd": "burn rate: billed prices of the running instances summed (USD per hour)",
    "daily_usd": "24 x hourly_usd",
    "monthly_usd": "730 x hourly_usd",
    "accrued_usd": "cost accrued so far by the instances billed at as_of",
    "running_instances": "instances running (active)",
    "running_gpus": "GPUs of the running instances",
    "month_to_date_usd": "billed cost since the start of the UTC month of as_of",
    "month_forecast_usd": "month_to_date_usd + hourly_usd x the hours left in the month",
}
#: Built-in rules (no file needed), by the ``rule`` they report.
BUILTIN_RULES: dict[str, str] = {
    "burn_rate_jump": "the hourly burn is more than 50 % above its trailing 7-day mean "
                      "(a dated history with at least 24 h observed)",
    "stale_data": "as_of is past the newest successful poll by more than the staleness "
                  "grace (3 poll intervals, at least 1 h): the figures are extrapolated",
    "new_cloud": "a cloud in the fleet that no snapshot before the newest one showed",
    "new_instance_type": "an instance type in the fleet that no snapshot before the newest "
                         "one showed",
    "pending_too_long": "an instance pending for more than twice its boot estimate "
                        "(boot_time_max_s)",
    "error_listed": "an instance in error still listed",
    "no_auto_delete": "the quality finding of that name (when quality.CHECKS has it)",
    "orphaned_volume": "the quality finding of that name (when quality.CHECKS has it)",
    "quarantined_records": "a history store's newest poll refused records (quarantined, not "
                           "stored), or stored records cannot load and are set aside",
}
_FINDINGS = ("no_auto_delete", "orphaned_volume")
_RULE_KEYS = {"name", "measure", "limit", "where"}


class BudgetFileError(ShadeanalyticsError):
    """A budgets file that cannot be used: names the file, the rule and the key."""


class WebhookError(ShadeanalyticsError):
    """The webhook did not accept the alert after every attempt (or its URL is unusable).

    Raised by ``run_check``, ``breaches`` holds what the run found (the command line still
    prints them); empty otherwise.
    """

    breaches: Sequence[Breach] = ()


@dataclass(frozen=True)
class Budget:
    """One ``[[budget]]`` rule: breached when ``measure`` (over the instances matching
    ``where``) is above ``limit``."""

    name: str
    measure: str
    limit: float
    where: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Breach:
    """A rule breached at ``as_of``. ``key`` names the episode (stable across runs)."""

    rule: str
    key: str
    message: str
    value: float | None = None
    limit: float | None = None

    @property
    def line(self) -> str:
        """``rule: message``: how ``check`` prints the breach and the webhook's text lists it
        (the message names the resource, never the rule again)."""
        return f"{self.rule}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "key": self.key, "message": self.message,
                "value": self.value, "limit": self.limit}


def escape_control(text: str) -> str:
    """``text`` with control characters as ``\\xNN`` / ``\\uNNNN`` escapes: one line, no
    terminal escape sequences (``_text.for_terminal``)."""
    return for_terminal(text)


# -- the budgets file ---------------------------------------------------------------------------


def load_budgets(path: str | Path) -> list[Budget]:
    """The ``[[budget]]`` rules of the TOML file ``path``.

    Each rule has ``name`` (text), ``measure`` (one of ``MEASURES``), ``limit`` (a number) and
    an optional ``[budget.where]`` table of cost dimensions (``COST_KEYS``) = text. Raises
    ``BudgetFileError`` naming the file, the rule (``budget[i]`` and its name) and the key;
    never the offending value.

    Bounded: a regular file of at most ``MAX_BUDGETS_BYTES`` (a FIFO or a device is refused
    unread), at most ``MAX_BUDGETS`` rules, names and ``where`` values of at most
    ``MAX_BUDGET_TEXT`` characters, limits finite and below 1e15.
    """
    from ..ingest.load import read_regular_file

    path = Path(path)
    try:
        data = tomllib.loads(read_regular_file(path, MAX_BUDGETS_BYTES, "budgets file")
                             .decode("utf-8"))
    except OSError as exc:
        raise BudgetFileError(f"{path}: cannot read the budgets file "
                              f"({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise BudgetFileError(f"{path}: the budgets file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetFileError(f"{path}: not valid TOML ({exc})") from None
    except ValueError as exc:  # not a regular file, too large
        raise BudgetFileError(f"{path}: cannot read the budgets file ({exc})") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise BudgetFileError(f"{path}: not valid TOML (arrays or tables nested too "
                              "deeply)") from None
    unknown = sorted(set(data) - {"budget"})
    if unknown:
        raise BudgetFileError(f"{path}: unknown top-level key {unknown[0]!r} "
                              "(expected [[budget]] tables)")
    rules = data.get("budget", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise BudgetFileError(f"{path}: 'budget' must be an array of tables ([[budget]])")
    if len(rules) > MAX_BUDGETS:
        raise BudgetFileError(f"{path}: {len(rules):,} [[budget]] rules, more than the "
                              f"{MAX_BUDGETS:,} a budgets file may hold")
    budgets = []
    names: set[str] = set()
    for i, rule in enumerate(rules):
        name = rule.get("name")
        where_rule = f"budget[{i}]" + (f" ('{escape_control(name)}')"
                                       if isinstance(name, str)
                                       and len(name) <= MAX_BUDGET_TEXT else "")

        def bad(key: str, why: str, where_rule: str = where_rule) -> BudgetFileError:
            return BudgetFileError(f"{path}: {where_rule}: key {key!r}: {why}")

        extra = sorted(set(rule) - _RULE_KEYS)
        if extra:
            raise bad(extra[0], f"unknown key (expected {', '.join(sorted(_RULE_KEYS))})")
        if not isinstance(name, str) or not name.strip():
            raise bad("name", "missing or not a non-empty string")
        if len(name) > MAX_BUDGET_TEXT:
            raise bad("name", f"longer than {MAX_BUDGET_TEXT} characters")
        if name in names:
            raise bad("name", "the same name as an earlier rule")
        names.add(name)
        measure = rule.get("measure")
        if measure not in MEASURES:
            raise bad("measure", f"missing or not one of {', '.join(MEASURES)}")
        limit = rule.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int | float) \
                or not _finite(limit):
            raise bad("limit", "missing or not a finite number below 1e15")
        where = rule.get("where", {})
        if not isinstance(where, dict):
            raise bad("where", "must be a table ([budget.where])")
        for key, value in where.items():
            if key not in COST_KEYS:
                raise bad(f"where.{key}", f"not a cost dimension ({', '.join(COST_KEYS)})")
            if not isinstance(value, str):
                raise bad(f"where.{key}", "must be a string")
            if len(value) > MAX_BUDGET_TEXT:
                raise bad(f"where.{key}", f"longer than {MAX_BUDGET_TEXT} characters")
        budgets.append(Budget(name, measure, float(limit), dict(where)))
    return budgets


def _finite(limit: int | float) -> bool:
    """A limit a check can compare: finite and below 1e15 in size (``10 ** 400`` is an int no
    float holds)."""
    try:
        return math.isfinite(float(limit)) and abs(limit) < 1e15
    except OverflowError:
        return False


# -- figures ------------------------------------------------------------------------------------


def billed_usd_between(billed: Bill, start: pd.Timestamp, end: pd.Timestamp,
                       instance_ids: pd.Series | None = None) -> float:
    """The billed cost of ``billed.intervals`` inside ``[start, end)`` (USD), over the
    instances ``instance_ids`` (default: all): ``finops.billed_cost_between``, the spend over
    time's maths (unknown prices add nothing)."""
    return billed_cost_between(billed, start, end, resource_ids=instance_ids)


def month_figures(billed: Bill, hourly_usd: float,
                  instance_ids: pd.Series | None = None) -> tuple[float, float]:
    """(month-to-date, month forecast) in USD at ``billed.as_of``.

    Month-to-date is ``billed_usd_between`` from the start of the UTC month to ``as_of``; the
    forecast adds ``hourly_usd`` (the current burn) for every hour left in the month. This
    is the hook for the month-forecast module: when it lands, return its two figures here.
    """
    at = billed.as_of
    start = at.tz_convert("UTC").normalize().replace(day=1)
    month_end = start + pd.DateOffset(months=1)
    to_date = billed_usd_between(billed, start, at, instance_ids)
    hours_left = (month_end - at).total_seconds() / 3600
    return to_date, to_date + hourly_usd * hours_left


#: What the rules of one run share: a cost breakdown per set of ``where`` keys, so that a
#: file of many rules costs one breakdown per distinct key set, not one per rule.
_Cache = dict[tuple[str, ...], pd.DataFrame]


def _matching(billed: Bill, where: Mapping[str, str],
              cache: _Cache | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """The cost_breakdown row(s) of the group ``where`` (all rows when empty), and the ids of
    the instances in it."""
    keys = tuple(where) or ("cloud",)
    cache = {} if cache is None else cache
    if keys not in cache:
        cache[keys] = cost_breakdown(billed, by=list(keys))
    rows = cache[keys]
    for key, value in where.items():
        rows = rows[(rows[key] == value).fillna(False).to_numpy(dtype=bool)]
    instances = billed.instances
    ids = instances["instance_id"]
    for key, value in where.items():
        if key == "tag":
            tags = billed.instance_tags
            ids = ids[ids.isin(tags.loc[(tags["tag"] == value).fillna(False), "instance_id"])]
        else:
            column = instances.loc[ids.index, key].astype("string")
            ids = ids[(column == value).fillna(False).to_numpy(dtype=bool)]
    return rows, ids


def _measure(billed: Bill, budget: Budget, cache: _Cache | None = None) -> float | None:
    rows, ids = _matching(billed, budget.where, cache)
    if budget.measure in ("running_instances", "running_gpus"):
        column = "running_instances" if budget.measure == "running_instances" else "gpus"
        return float(rows[column].sum())
    hourly = rows["hourly_usd"].sum(min_count=1)
    hourly = 0.0 if pd.isna(hourly) else float(hourly)
    if budget.measure == "hourly_usd":
        return hourly
    if budget.measure == "daily_usd":
        return HOURS_PER_DAY * hourly
    if budget.measure == "monthly_usd":
        return HOURS_PER_MONTH * hourly
    if budget.measure == "accrued_usd":
        accrued = rows["accrued_usd"].sum(min_count=1)
        return None if pd.isna(accrued) else float(accrued)
    to_date, forecast = month_figures(billed, hourly, ids if budget.where else None)
    return to_date if budget.measure == "month_to_date_usd" else forecast


def _warn_unmatched(tables: Tables | Bill, budgets: Sequence[Budget]) -> None:
    """Warn of each budget whose ``where`` names a value no instance of the data ever had
    (a typo, a renamed tag): such a rule can never breach, and must not pass silently."""
    instances = tables.instances
    tags = tables.instance_tags
    known: dict[str, set[str]] = {}
    for budget in budgets:
        for key, value in budget.where.items():
            if key not in known:
                column = tags["tag"] if key == "tag" else instances[key]
                # the label of a missing value ("(standalone)", ...) is a group too
                missing = key_column(pd.Series([None], dtype="string"), key).iloc[0]
                known[key] = set(column.dropna().astype(str)) | {missing, "(unknown)"}
            if value not in known[key]:
                warnings.warn(f"budget '{escape_control(budget.name)}': where.{key} matches "
                              "no instance in the data, so the rule cannot breach (a typo?)",
                              DataWarning, stacklevel=3)
                break


def _number(value: float, measure: str) -> str:
    return usd(value) if measure.endswith("_usd") else f"{value:,.0f}"


# -- built-in rules -----------------------------------------------------------------------------


def _observed(tables: Tables, at: pd.Timestamp) -> list[pd.Timestamp]:
    times = pd.concat([tables.clusters["observed_at"], tables.instances["observed_at"],
                       tables.polls["observed_at"]]).dropna()
    return sorted(t for t in times.unique() if t <= at)


def _burn_rate_jump(tables: Tables, billed: Bill) -> list[Breach]:
    times = _observed(tables, billed.as_of)
    if len(times) < 2:
        return []  # no history: no mean to compare with
    fresh = billed.freshness
    if fresh is not None and fresh.stale:
        return []  # no observed burn near as_of: stale_data says so
    end = billed.as_of if fresh is None or fresh.newest_poll is None else fresh.newest_poll
    start = max(times[0], end - _TRAILING)
    hours = (end - start).total_seconds() / 3600
    if hours < MIN_TRAILING_HOURS:
        return []  # too little observed history for a mean: no signal, not a number
    mean = billed_usd_between(billed, start, end) / hours
    hourly = cost_breakdown(billed, by="cloud")["hourly_usd"].sum()
    if not mean > 0 or not hourly > (1 + BURN_JUMP_SHARE) * mean:
        return []
    return [Breach("burn_rate_jump", "burn_rate_jump",
                   f"burn rate ${hourly:,.2f}/h is {hourly / mean - 1:.0%} above its trailing "
                   f"mean ${mean:,.2f}/h (over {hours:,.1f} h)", float(hourly),
                   float((1 + BURN_JUMP_SHARE) * mean))]


def _stale_data(billed: Bill) -> list[Breach]:
    """``stale_data``: ``as_of`` is past the newest successful poll by more than the grace."""
    from .asof import stale_sentence

    fresh = billed.freshness
    if fresh is None or not fresh.stale:
        return []
    extrapolated = float(billed.instances["accrued_extrapolated_usd"].sum()
                         + billed.volumes["accrued_extrapolated_usd"].sum())
    text = stale_sentence(fresh, extrapolated) or ""
    return [Breach("stale_data", "stale_data", text.removeprefix("STALE DATA: "),
                   fresh.behind / pd.Timedelta(hours=1), fresh.grace / pd.Timedelta(hours=1))]


def _fleet_values(billed: Bill, column: str) -> set[str]:
    live = billed.instances[(billed.instances["state"] != "stopped").fillna(True)
                            .to_numpy(dtype=bool)]
    return set(live[column].dropna().astype(str))


def _new_in_fleet(tables: Tables, billed: Bill) -> list[Breach]:
    """Clouds and instance types of the fleet at ``as_of`` (instances not stopped) that no
    snapshot before the newest one showed. Read off each value's first sighting (a history
    store keeps a row per version, not per poll, so the fleet at an earlier poll cannot be
    rebuilt from its rows alone)."""
    times = _observed(tables, billed.as_of)
    if len(times) < 2:
        return []
    previous = times[-2]
    rows = tables.instances[(tables.instances["observed_at"] <= billed.as_of)
                            .fillna(False).to_numpy(dtype=bool)]
    found = []
    for rule, column, what in (("new_cloud", "cloud", "cloud"),
                               ("new_instance_type", "shade_instance_type", "instance type")):
        first = rows.groupby(rows[column].astype("string"))["observed_at"].min()
        seen_before = set(first[first <= previous].index)
        for value in sorted(_fleet_values(billed, column) - seen_before):
            shown = escape_control(value)
            found.append(Breach(rule, f"{rule}:{shown}",
                                f"new {what} '{shown}' in the fleet (in no snapshot up to "
                                f"{previous.strftime('%Y-%m-%dT%H:%M:%SZ')})"))
    return found


def _instance_rules(billed: Bill) -> list[Breach]:
    from .lifecycle import lifecycle

    found = []
    life = lifecycle(billed)
    state = billed.instances.set_index("instance_id")["state"]
    state = state[~state.index.duplicated()]
    life = life.assign(state=state.reindex(life["instance_id"]).to_numpy())
    limit = 2 * life["boot_time_max_s"].astype("float64")
    fresh = billed.freshness  # on stale data, an age is measured to the newest poll, not as_of
    behind = 0.0 if fresh is None else (fresh.as_of - fresh.seen_to).total_seconds()
    life = life.assign(age_s=life["age_s"] - behind)
    late = life[(life["state"] == "pending").fillna(False).to_numpy(dtype=bool)
                & (life["age_s"] > limit).fillna(False).to_numpy(dtype=bool)]
    for row in late.itertuples():
        rid = escape_control(str(row.instance_id))
        found.append(Breach("pending_too_long", f"pending_too_long:{rid}",
                            f"instance {rid} pending for {row.age_s / 60:,.0f} min, more than "
                            f"twice its boot estimate ({row.boot_time_max_s / 60:,.0f} min)",
                            float(row.age_s), float(2 * row.boot_time_max_s)))
    errored = life[(life["status"] == "error").fillna(False).to_numpy(dtype=bool)]
    for rid in sorted(set(errored["instance_id"].astype(str))):
        shown = escape_control(rid)
        found.append(Breach("error_listed", f"error_listed:{shown}",
                            f"instance {shown} is in error and still listed"))
    return found


def _findings(billed: Bill) -> list[Breach]:
    from .quality import CHECKS, quality_checks

    wanted = {check.name for check in CHECKS} & set(_FINDINGS)
    if not wanted:
        return []  # those checks are not there yet: they plug in by name when they are
    findings = quality_checks(billed)
    found = []
    for row in findings[findings["check"].isin(wanted)].itertuples():
        rid = escape_control(str(row.resource_id))
        found.append(Breach(str(row.check), f"{row.check}:{rid}",
                            f"{row.kind} {rid}: {escape_control(str(row.message))}"))
    return found


def _quarantined(store: Any, tables: Tables, as_of: pd.Timestamp) -> list[Breach]:
    """``quarantined_records``: the records the store's newest successful poll at or before
    ``as_of`` refused (``Store.quarantine``), and the stored records the read set aside
    (``tables.skipped``)."""
    polls = store.polls()
    ok = polls[(polls["outcome"] == "ok").fillna(False).to_numpy(dtype=bool)
               & (polls["observed_at"] <= as_of).to_numpy(dtype=bool)]
    parts, count = [], tables.skipped
    if len(ok):
        newest = ok.sort_values(["observed_at", "poll_id"]).iloc[-1]
        refused = store.quarantine()
        refused = refused[(refused["poll_id"] == newest["poll_id"]).to_numpy(dtype=bool)]
        if len(refused):
            first = refused.iloc[0]
            count += len(refused)
            parts.append(
                f"poll {newest['poll_id']} at {newest['observed_at']:%Y-%m-%dT%H:%M:%SZ} "
                f"refused {len(refused)} record{'s' * (len(refused) != 1)} (quarantined, not "
                f"stored; first: GET {escape_control(str(first['endpoint']))} at "
                f"{escape_control(str(first['path']))} (id "
                f"{escape_control(str(first['resource_id']))}): "
                f"{escape_control(str(first['reason']))})")
    if tables.skipped:
        parts.append(f"{tables.skipped} stored record{'s' * (tables.skipped != 1)} cannot "
                     "load and {} set aside".format("are" if tables.skipped != 1 else "is"))
    if not parts:
        return []
    return [Breach("quarantined_records", "quarantined_records", "; ".join(parts),
                   float(count))]


#: Columns of ``budget_state``'s result and their dtypes.
BUDGET_STATE_COLUMNS: dict[str, str] = {
    "budget": "string", "measure": "string", "where": "string", "value": "float64",
    "limit": "float64", "share_of_limit": "float64", "breached": "boolean",
}


def budget_state(tables: Tables | Bill, budgets: Sequence[Budget], *,
                 as_of: TimeLike = None) -> pd.DataFrame:
    """Every budget's measure beside its limit at ``as_of``, breached or not (the report's
    ``budgets.csv`` and page section): the same measures as ``evaluate``.

    Returns:
        DataFrame, one row per budget in file order. Columns: ``budget``, ``measure``,
        ``where`` (``key=value`` pairs joined by ``, ``) (string); ``value``, ``limit``,
        ``share_of_limit`` (value / limit; NaN when the value is unknown or the limit 0)
        (float64); ``breached`` (boolean, NA when the value is unknown).
    """
    billed = bill(tables, as_of)
    _warn_unmatched(billed, budgets)
    rows = []
    cache: _Cache = {}
    for budget in budgets:
        value = _measure(billed, budget, cache)
        rows.append({
            "budget": escape_control(budget.name), "measure": budget.measure,
            "where": ", ".join(f"{k}={escape_control(v)}" for k, v in budget.where.items()),
            "value": np.nan if value is None else value, "limit": budget.limit,
            "share_of_limit": (np.nan if value is None or not budget.limit
                               else value / budget.limit),
            "breached": pd.NA if value is None else value > budget.limit,
        })
    frame = pd.DataFrame(rows, columns=list(BUDGET_STATE_COLUMNS))
    return frame.astype(BUDGET_STATE_COLUMNS)


def evaluate(tables: Tables, budgets: Sequence[Budget] = (), *, as_of: TimeLike = None,
             builtin: bool = True, billed: Bill | None = None) -> list[Breach]:
    """Every rule breached at ``as_of``: the ``budgets`` (``measure > limit``) in file order,
    then the built-in rules (``BUILTIN_RULES``) unless ``builtin`` is False.

    A budget whose measure is unknown (e.g. accrued cost of instances without a price) is not
    breached. Messages name rules, ids, clouds and amounts; never names, IPs or SSH details.
    ``billed`` is ``bill(tables, as_of)`` when the caller has it already.
    """
    billed = bill(tables, as_of) if billed is None else billed
    _warn_unmatched(billed, budgets)
    found = []
    cache: _Cache = {}
    for budget in budgets:
        value = _measure(billed, budget, cache)
        if value is None or not value > budget.limit:
            continue
        scope = "".join(f", {k}='{escape_control(v)}'" for k, v in budget.where.items())
        name = escape_control(budget.name)
        found.append(Breach(
            "budget", f"budget:{name}",
            f"'{name}': {budget.measure}{scope} is {_number(value, budget.measure)}, "
            f"above the limit {_number(budget.limit, budget.measure)}", value, budget.limit))
    if builtin:
        found += _stale_data(billed)
        found += _burn_rate_jump(tables, billed)
        found += _new_in_fleet(tables, billed)
        found += _instance_rules(billed)
        found += _findings(billed)
    return found


# -- the webhook --------------------------------------------------------------------------------


def payload(breaches: Sequence[Breach], cleared: Sequence[str], as_of: pd.Timestamp) -> dict:
    """The webhook's JSON body: Slack-compatible ``text``, then the structured fields.

    The ``text`` is Slack markup: every line goes through ``_text.for_slack`` (``&``, ``<``,
    ``>`` escaped), so a cloud or an instance type named ``<!channel>`` pings nobody.
    """
    when = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"shadeanalytics: {len(breaches)} new breach{'es' * (len(breaches) != 1)}"
             + (f", {len(cleared)} cleared" if cleared else "") + f" as of {when}"]
    lines += [f"- {b.line}" for b in breaches]
    lines += [f"- cleared: {key}" for key in cleared]
    return {"text": "\n".join(for_slack(line) for line in lines), "as_of": when,
            "breaches": [b.as_dict() for b in breaches], "cleared": list(cleared)}


def check_webhook_url(url: str) -> str:
    """``url`` checked as a webhook address: ``http://`` or ``https://``, a host, a valid port,
    no whitespace or control character, at most ``MAX_WEBHOOK_URL`` characters. Raises
    ``WebhookError`` naming the host at most (the path of a Slack webhook is its secret)."""
    if len(url) > MAX_WEBHOOK_URL:
        raise WebhookError(f"the webhook URL is longer than {MAX_WEBHOOK_URL:,} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise WebhookError("the webhook URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is no port
    except ValueError:
        raise WebhookError("the webhook URL cannot be parsed (e.g. an unclosed '[' or a "
                           "port that is not a number)") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError("the webhook must be an http:// or https:// URL")
    if not host:
        raise WebhookError("the webhook URL has no host")
    return url


def _host(url: str) -> str:
    """What an error may say about a webhook address: its host (the path of a Slack webhook
    is its secret)."""
    return urlsplit(url).hostname or "?"


class _DeadlinePassed(Exception):
    """The watchdog cut a request at the send's deadline."""


def _post(url: str, data: bytes, timeout: float, give_up_at: float) -> int:
    """One POST of ``data`` to ``url``; its status. A watchdog shuts the socket at
    ``give_up_at`` (``time.monotonic``): a socket timeout bounds one wait for a byte, not a
    server that trickles one byte a second."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    cut = threading.Event()

    def shut() -> None:
        cut.set()
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv()

    watchdog = threading.Timer(max(0.0, give_up_at - time.monotonic()), shut)
    watchdog.daemon = True
    watchdog.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", target, body=data,
                     headers={"Content-Type": "application/json",
                              "User-Agent": "shadeanalytics"})
        # the status is the answer: its body is never read (a server may trickle it forever)
        status = conn.getresponse().status
        if cut.is_set():  # the headers ended at the cut, not at the server's blank line
            raise _DeadlinePassed
        return status
    except (OSError, http.client.HTTPException):
        if cut.is_set():
            raise _DeadlinePassed from None
        raise
    finally:
        watchdog.cancel()
        conn.close()


def send_webhook(url: str, body: Mapping[str, Any], *, timeout: float = 10.0,
                 attempts: int = 3, backoff_base: float | None = None,
                 backoff_cap: float = 10.0, deadline: float | None = None) -> int:
    """POST ``body`` as JSON to ``url``; returns the number of attempts it took.

    Retries connection errors, timeouts, 429 and 5xx with full-jitter exponential backoff
    (the collector's client does the same), at most ``attempts`` times in all; any other
    4xx is final. The whole send, every attempt and wait included, ends within ``deadline``
    seconds (default ``WEBHOOK_DEADLINE_S``), however slowly the server answers. Raises
    ``WebhookError`` naming the host only (a webhook's path is a secret) after the last
    failure. No proxy settings of the environment are used.
    """
    check_webhook_url(url)
    base = WEBHOOK_BACKOFF_S if backoff_base is None else backoff_base
    limit = WEBHOOK_DEADLINE_S if deadline is None else deadline
    give_up_at = time.monotonic() + limit
    late = f"no complete answer within the {limit:g} s deadline"
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    why = ""
    attempt = 0
    for attempt in range(1, attempts + 1):
        try:
            left = give_up_at - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed
            status = _post(url, data, min(timeout, left), give_up_at)
            if 200 <= status < 300:
                return attempt
            why = f"HTTP {status}"
            if status != 429 and status < 500:
                break
        except _DeadlinePassed:
            why = late
            break
        except TimeoutError:  # socket.timeout: one wait for a byte
            why = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            why = f"connection failed ({type(exc).__name__})"
        if attempt < attempts:
            wait = random.random() * min(backoff_cap, base * 2 ** (attempt - 1))
            if time.monotonic() + wait >= give_up_at:
                why = f"{why}, then {late}"
                break
            time.sleep(wait)
    raise WebhookError(f"webhook at {_host(url)}: {why} after {attempt} attempt"
                       f"{'s' * (attempt != 1)}; the alert state is unchanged, the next run "
                       "sends again")


# -- the check command --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """What a check run found and did."""

    breaches: list[Breach]
    new: list[Breach]
    cleared: list[str]
    sent: dict[str, Any] | None
    #: The part of the accrued total that rests on records contradicting themselves, in
    #: words (``asof.trust_notes``; the staleness is the ``stale_data`` breach).
    notes: list[str] = field(default_factory=list)


def run_check(tables: Tables, budgets: Sequence[Budget], *, as_of: pd.Timestamp,
              store: Any | None = None, webhook: str | None = None, dry_run: bool = False,
              notify_clear: bool = False,
              send: Callable[[str, Mapping[str, Any]], int] = send_webhook) -> CheckResult:
    """Evaluate the rules and alert the webhook once per episode.

    With ``store`` (a ``Store``), the episodes already alerted are kept in it: only breaches
    not open before are sent, and the episodes that no longer breach are closed (and sent as
    ``cleared`` with ``notify_clear``). The state advances only after the webhook accepted the
    alert (or when there is nothing to send), never with ``dry_run``. Without a store every
    breach is sent each run. A ``WebhookError`` carries the run's ``breaches``.
    """
    from .asof import trust_notes

    billed = bill(tables, as_of)
    breaches = evaluate(tables, budgets, as_of=as_of, billed=billed)
    if store is not None:
        breaches += _quarantined(store, tables, as_of)
    _, notes = trust_notes(billed, cost_breakdown(billed, by="cloud"), bases=("disputed",))
    current = {b.key: b for b in breaches}
    open_before = store.alert_episodes() if store is not None else {}
    new = [b for b in breaches if b.key not in open_before]
    cleared = sorted(k for k in open_before if k not in current)
    shown_cleared = cleared if notify_clear else []
    body = payload(new, shown_cleared, as_of) if (new or shown_cleared) else None
    if webhook and body is not None and not dry_run:
        try:
            send(webhook, body)
        except WebhookError as exc:
            exc.breaches = breaches
            raise
    if store is not None and webhook and not dry_run:
        store.update_alert_episodes(
            opened=[(b.key, b.rule) for b in new], seen=list(current), closed=cleared,
            at=as_of)
    return CheckResult(breaches, new, cleared, body, notes)

