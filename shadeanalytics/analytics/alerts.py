"""Budgets and alerts: rules checked against the fleet as billed, for cron and CI.

``parse_budgets(data, source=...)`` checks the ``[[budget]]`` rules of a parsed budgets file
(``config.read_budgets_file`` reads one; ``shadeanalytics.load_budgets(path)`` does both);
``evaluate(fleet, budgets=..., as_of=...)`` returns the ``Breach`` list: the budget rules whose
measure exceeds its limit, and the built-in rules (``BUILTIN_RULES``) that need no file;
``payload`` is the webhook's JSON body. Pure: no file, socket or store is touched here. The
webhook's delivery is ``live.notify``, the ``shadeanalytics check`` command (one alert per
episode, kept in the store) ``live.check``.

Every figure comes from the billing model (``billing.bill_fleet``) and the helpers that add it
up (``cost_breakdown``, ``instance_lifecycle``, ``quality_checks``); nothing here prices or
dates a resource.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._common import TimeLike, key_column, usd
from .._compat import moved, old_spellings
from .._text import for_slack, for_terminal
from ..config import BudgetFileError
from ..errors import DataWarning
from ..ingest.tables import Tables
from .billing import Bill, Fleet, as_bill, bill_fleet, with_billed
from .costs import COST_KEYS, HOURS_PER_DAY, HOURS_PER_MONTH, cost_breakdown
from .finops import billed_cost_between

__all__ = [
    "BUDGET_STATE_COLUMNS",
    "BUILTIN_RULES",
    "BURN_JUMP_SHARE",
    "MAX_BUDGETS",
    "MAX_BUDGET_TEXT",
    "MEASURES",
    "MIN_TRAILING_HOURS",
    "Breach",
    "Budget",
    "BudgetFileError",
    "billed_usd_between",
    "budget_state",
    "escape_control",
    "evaluate",
    "month_figures",
    "parse_budgets",
    "payload",
    "quarantined_breaches",
]

#: The burn-rate rule fires when the hourly burn exceeds its trailing 7-day mean by this share.
BURN_JUMP_SHARE = 0.5
_TRAILING = pd.Timedelta(days=7)
#: The trailing mean needs at least this much observed history (from the first observation
#: to the newest successful poll); with less, ``burn_rate_jump`` has no signal and stays quiet.
MIN_TRAILING_HOURS = 24
#: The most rules a budgets file may hold, and the longest name or ``where`` value
#: (characters): far above any real file, far below what slows a check (the largest file read
#: is ``config.MAX_BUDGETS_BYTES``).
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


def parse_budgets(data: Mapping[str, Any], *, source: str | Path) -> list[Budget]:
    """The ``[[budget]]`` rules of ``data``, a budgets file parsed from TOML
    (``config.read_budgets_file``); ``source`` names the file in errors.

    Each rule has ``name`` (text), ``measure`` (one of ``MEASURES``), ``limit`` (a number) and
    an optional ``[budget.where]`` table of cost dimensions (``COST_KEYS``) = text. Raises
    ``BudgetFileError`` naming the file, the rule (``budget[i]`` and its name) and the key;
    never the offending value.

    Bounded: at most ``MAX_BUDGETS`` rules, names and ``where`` values of at most
    ``MAX_BUDGET_TEXT`` characters, limits finite and below 1e15.
    """
    path = source
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


@old_spellings(positional=("start", "end", "instance_ids"), renamed={"billed": "fleet"})
def billed_usd_between(fleet: Bill, *, start: pd.Timestamp, end: pd.Timestamp,
                       instance_ids: pd.Series | None = None) -> float:
    """The billed cost of ``billed.intervals`` inside ``[start, end)`` (USD), over the
    instances ``instance_ids`` (default: all): ``finops.billed_cost_between``, the spend over
    time's maths (unknown prices add nothing)."""
    return billed_cost_between(fleet, start=start, end=end, resource_ids=instance_ids)


@old_spellings(positional=("hourly_usd", "instance_ids"), renamed={"billed": "fleet"})
def month_figures(fleet: Bill, *, hourly_usd: float,
                  instance_ids: pd.Series | None = None) -> tuple[float, float]:
    """(month-to-date, month forecast) in USD at ``billed.as_of``.

    Month-to-date is ``billed_usd_between`` from the start of the UTC month to ``as_of``; the
    forecast adds ``hourly_usd`` (the current burn) for every hour left in the month. This
    is the hook for the month-forecast module: when it lands, return its two figures here.
    """
    at = fleet.as_of
    start = at.tz_convert("UTC").normalize().replace(day=1)
    month_end = start + pd.DateOffset(months=1)
    to_date = billed_usd_between(fleet, start=start, end=at, instance_ids=instance_ids)
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
    to_date, forecast = month_figures(billed, hourly_usd=hourly,
                                      instance_ids=ids if budget.where else None)
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
                              DataWarning, stacklevel=4)  # past the helper's wrapper
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
    mean = billed_usd_between(billed, start=start, end=end) / hours
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
    from .lifecycle import instance_lifecycle

    found = []
    life = instance_lifecycle(billed)
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


def quarantined_breaches(polls: pd.DataFrame, quarantine: pd.DataFrame, *, skipped: int,
                         as_of: pd.Timestamp) -> list[Breach]:
    """``quarantined_records``: the records a history store's newest successful poll at or
    before ``as_of`` refused (``polls`` and ``quarantine`` are ``Store.polls()`` and
    ``Store.quarantine()``), and the ``skipped`` stored records the read set aside
    (``Tables.skipped``)."""
    ok = polls[(polls["outcome"] == "ok").fillna(False).to_numpy(dtype=bool)
               & (polls["observed_at"] <= as_of).to_numpy(dtype=bool)]
    parts, count = [], skipped
    if len(ok):
        newest = ok.sort_values(["observed_at", "poll_id"]).iloc[-1]
        refused = quarantine[(quarantine["poll_id"] == newest["poll_id"]).to_numpy(dtype=bool)]
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
    if skipped:
        parts.append(f"{skipped} stored record{'s' * (skipped != 1)} cannot "
                     "load and {} set aside".format("are" if skipped != 1 else "is"))
    if not parts:
        return []
    return [Breach("quarantined_records", "quarantined_records", "; ".join(parts),
                   float(count))]


#: Columns of ``budget_state``'s result and their dtypes.
BUDGET_STATE_COLUMNS: dict[str, str] = {
    "budget": "string", "measure": "string", "where": "string", "value": "float64",
    "limit": "float64", "share_of_limit": "float64", "breached": "boolean",
}


@old_spellings(positional=("budgets",), renamed={"tables": "fleet"})
def budget_state(fleet: Fleet, *, budgets: Sequence[Budget] = (),
                 as_of: TimeLike = None) -> pd.DataFrame:
    """Every budget's measure beside its limit at ``as_of``, breached or not (the report's
    ``budgets.csv`` and page section): the same measures as ``evaluate``.

    Returns:
        DataFrame, one row per budget in file order. Columns: ``budget``, ``measure``,
        ``where`` (``key=value`` pairs joined by ``, ``) (string); ``value``, ``limit``,
        ``share_of_limit`` (value / limit; NaN when the value is unknown or the limit 0)
        (float64); ``breached`` (boolean, NA when the value is unknown).
    """
    billed = bill_fleet(fleet, as_of=as_of)
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


@old_spellings(positional=("budgets",), renamed={"tables": "fleet"})
def evaluate(fleet: Fleet, *, budgets: Sequence[Budget] = (), as_of: TimeLike = None,
             builtin: bool = True, billed: Bill | None = None) -> list[Breach]:
    """Every rule breached at ``as_of``: the ``budgets`` (``measure > limit``) in file order,
    then the built-in rules (``BUILTIN_RULES``) unless ``builtin`` is False.

    A budget whose measure is unknown (e.g. accrued cost of instances without a price) is not
    breached. Messages name rules, ids, clouds and amounts; never names, IPs or SSH details.
    ``fleet`` is a ``Tables`` or a ``Bill`` (which carries the history the built-in rules
    read); ``billed=`` is the deprecated spelling of the latter.
    """
    billed, tables = as_bill(with_billed(fleet, billed, "evaluate"), as_of)
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


# -- old spellings, kept for one release (``_compat``) ------------------------------------------


__getattr__ = moved(__name__, {
    "load_budgets": "shadeanalytics",  # the file is read by config, the rules checked here
    "MAX_BUDGETS_BYTES": "shadeanalytics.config",
    "MAX_WEBHOOK_URL": "shadeanalytics.live.notify",
    "WEBHOOK_BACKOFF_S": "shadeanalytics.live.notify",
    "WEBHOOK_DEADLINE_S": "shadeanalytics.live.notify",
    "WebhookError": "shadeanalytics.live.notify",
    "check_webhook_url": "shadeanalytics.live.notify",
    "send_webhook": "shadeanalytics.live.notify",
    "CheckResult": "shadeanalytics.live.check",
    "run_check": "shadeanalytics.live.check",
})
