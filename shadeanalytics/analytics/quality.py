"""Is the fleet data consistent? Checks that flag what would make the cost figures wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .._common import TimeLike, key_column, usd
from .._compat import old_spellings
from ..ingest.schema import STATUSES
from ..ingest.tables import Tables
from .billing import RUNNING, Bill, bill_fleet
from .costs import GroupSums, as_float, cluster_summary, cluster_sums

__all__ = [
    "CHECKS",
    "COST_GAP_SHARE",
    "COST_GAP_USD",
    "FINDING_COLUMNS",
    "JUDGED_AGAIN",
    "SEVERITIES",
    "Check",
    "SettledFindings",
    "finding_counts",
    "gpu_matches_type",
    "quality_checks",
    "settled_findings",
]

#: Severities, most serious first. ``error``: a figure computed from this data is wrong
#: (double counted, unknown or impossible); ``warning``: inconsistent data worth a look;
#: ``info``: expected for this kind of resource, shown for completeness.
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
FINDING_COLUMNS: tuple[str, ...] = ("severity", "check", "kind", "resource_id", "message")
#: The share of accrued cost, and the dollar amount, a cost gap must both exceed.
COST_GAP_SHARE = 0.10
COST_GAP_USD = 1.0
#: Sums of float dollar prices carry ~1e-15 of rounding noise; never report that as a gap.
_FLOAT_NOISE = 1e-9


@dataclass(frozen=True)
class _Fleet:
    """The fleet as billed at ``as_of``, and the settings of the run."""

    billed: Bill
    tolerance_usd: float

    @property
    def clusters(self) -> pd.DataFrame:
        return self.billed.clusters

    @property
    def instances(self) -> pd.DataFrame:
        return self.billed.instances

    @property
    def as_of(self) -> pd.Timestamp:
        return self.billed.as_of

    @cached_property
    def details(self) -> pd.DataFrame:
        """Running instances whose /instances/{id}/info details were seen (only those say
        whether a threshold is set: a list row without details leaves it unknown); found
        once for the four checks that read them."""
        inst = self.instances
        if "has_details" not in inst.columns:
            return inst.iloc[:0]
        return inst[((inst["state"] == "running") & inst["has_details"].fillna(False))
                    .to_numpy(dtype=bool)]


@dataclass(frozen=True)
class Check:
    """One check: its stable id, the resources it looks at, its usual severity and rule."""

    name: str
    kind: str
    severity: str
    rule: str
    run: Callable[[_Fleet], pd.DataFrame]


def _found(check: str, kind: str, severity: str | np.ndarray, ids: pd.Series,
           messages: pd.Series) -> pd.DataFrame:
    if not len(ids):  # nothing found (most checks, most runs): the one empty frame, not a new one
        return _NOTHING
    return pd.DataFrame({
        "severity": severity, "check": check, "kind": kind,
        "resource_id": ids.to_numpy(), "message": messages.to_numpy(),
    })


#: What a check that found nothing returns (``quality_checks`` leaves it out; never changed).
_NOTHING = pd.DataFrame({"severity": "", "check": "", "kind": "",
                         "resource_id": np.empty(0, dtype=object),
                         "message": np.empty(0, dtype=object)})


def _fmt(values: pd.Series, spec: str) -> pd.Series:
    """``values`` formatted with ``spec``, as ``string`` (also when empty)."""
    return values.map(spec.format, na_action="ignore").astype("string")


def _usd(values: pd.Series) -> pd.Series:
    return values.map(usd, na_action="ignore").astype("string")


def _signed_usd(values: pd.Series) -> pd.Series:
    return ("+" + _usd(values)).where(values >= 0, _usd(values))


def _time(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")


def _by_row(df: pd.DataFrame, id_column: str,
            parts: Sequence[tuple[pd.Series, Callable[..., pd.Series]]]
            ) -> tuple[pd.Series, pd.Series]:
    """(resource ids, messages): the texts of every flagged part of a row, joined by ``; ``.

    Each part is a mask and how to word its rows; only flagged rows are worded (formatting
    times for every row of a large fleet costs more than everything else).
    """
    ids = df[id_column]
    pieces = [text(df[mask]) for mask, text in parts if mask.any()]
    if not pieces:
        return ids.iloc[:0], ids.iloc[:0]
    joined = pd.concat(pieces).groupby(level=0, sort=True).agg("; ".join)
    return ids.loc[joined.index], joined


# -- the checks -----------------------------------------------------------------------------


def _cluster_price_mismatch(fleet: _Fleet) -> pd.DataFrame:
    summary = cluster_summary(fleet.billed)
    bad = summary[summary["hourly_gap_usd"].abs() > fleet.tolerance_usd + _FLOAT_NOISE]
    n = bad["instances"].astype("int64")
    noun = pd.Series(np.where(n == 1, " listed instance (gap ", " listed instances (gap "),
                     index=bad.index, dtype="string")
    message = ("hourly price " + _usd(bad["hourly_price_usd"]) + "/h differs from the "
               + _usd(bad["instances_hourly_usd"]) + "/h summed over its " + n.astype("string")
               + noun + _signed_usd(bad["hourly_gap_usd"]) + "/h)")
    return _found("cluster_price_mismatch", "cluster", "warning", bad["cluster_id"], message)


_SEPARATORS = re.compile(r"[\s_\-]+")
# a GPU count after or before a part that names hardware (with a digit): A100x8, 8xH100;
# the digit keeps RTX4000 whole
_COUNT_AFTER = re.compile(r"(.*\d.*?)x\d{1,2}")
_COUNT_BEFORE = re.compile(r"\d{1,2}x(.*[a-z].*)")
_MEMORY = re.compile(r"(\d+)gb?")


def _tokens(name: str) -> list[str]:
    """Lower-case parts of a type or GPU name, without GPU counts (``x8``, ``8x``); memory
    sizes spelled one way (``80GB`` -> ``80g``)."""
    out = []
    for part in _SEPARATORS.split(name.casefold()):
        for count in (_COUNT_AFTER, _COUNT_BEFORE):
            match = count.fullmatch(part)
            part = match.group(1) if match else part
        memory = _MEMORY.fullmatch(part)
        out.append(f"{memory.group(1)}g" if memory else part)
    return [part for part in out if part]


def gpu_matches_type(gpu_type: str, instance_type: str) -> bool:
    """Whether ``gpu_type`` is the GPU that ``instance_type`` names.

    True when every part of the GPU name (split at ``_``, ``-`` and spaces, case-insensitive)
    is a part of the type name, or when the GPU name without separators equals consecutive
    parts of the type name joined. Parts are compared whole, after dropping a GPU count
    (``x8``, ``8x``) and spelling memory one way (``80GB`` = ``80G``), so that ``A10`` does not
    match ``A100x8`` nor ``L40`` ``L40S``::

        >>> gpu_matches_type("H100", "H100_sxm5x8"), gpu_matches_type("A100_80G", "A100_80Gx8")
        (True, True)
        >>> gpu_matches_type("CPU", "cpu_mini"), gpu_matches_type("A100", "A6000")
        (True, False)
    """
    gpu, kind = _tokens(gpu_type), _tokens(instance_type)
    if not gpu:
        return False
    if set(gpu) <= set(kind):
        return True
    joined = "".join(gpu)
    return any("".join(kind[i:j]) == joined
               for i in range(len(kind)) for j in range(i + 1, len(kind) + 1))


def _gpu_type_mismatch(fleet: _Fleet) -> pd.DataFrame:
    inst = fleet.instances[["instance_id", "gpu_type", "shade_instance_type"]].dropna(
        subset=["gpu_type", "shade_instance_type"])
    pairs = inst[["gpu_type", "shade_instance_type"]].drop_duplicates()
    # few distinct (gpu, type) pairs even in a large fleet: the rule runs once per pair
    ok = [gpu_matches_type(g, t) for g, t in pairs.itertuples(index=False)]
    wrong = pairs[~np.asarray(ok, dtype=bool)]
    bad = inst.merge(wrong, on=["gpu_type", "shade_instance_type"])
    message = ("gpu_type " + bad["gpu_type"] + " does not match shade_instance_type "
               + bad["shade_instance_type"])
    return _found("gpu_type_mismatch", "instance", "warning", bad["instance_id"], message)


def _cloud_mismatch(fleet: _Fleet) -> pd.DataFrame:
    clouds = fleet.clusters[["cluster_id", "cloud"]].drop_duplicates("cluster_id", keep="last")
    inst = fleet.instances[["instance_id", "cluster_id", "cloud"]].dropna()
    both = inst.merge(clouds.dropna(), on="cluster_id", suffixes=("", "_cluster"))
    bad = both[both["cloud"] != both["cloud_cluster"]]
    message = ("instance cloud " + bad["cloud"] + " differs from the cloud "
               + bad["cloud_cluster"] + " of its cluster " + bad["cluster_id"])
    return _found("cloud_mismatch", "instance", "warning", bad["instance_id"], message)


_ORDER = {
    "cluster": (("created_at", "active_at"), ("created_at", "updated_at")),
    "instance": (("created_at", "active_at"), ("active_at", "deleted_at"),
                 ("created_at", "deleted_at")),
}


def _frames(fleet: _Fleet) -> tuple[tuple[str, str, pd.DataFrame], ...]:
    return (("cluster", "cluster_id", fleet.clusters),
            ("instance", "instance_id", fleet.instances))


def _timestamps_out_of_order(fleet: _Fleet) -> pd.DataFrame:
    found = []
    for kind, id_column, df in _frames(fleet):
        parts = []
        for first, then in _ORDER[kind]:
            mask = (df[then] < df[first]).fillna(False).astype(bool)
            parts.append((mask, lambda rows, first=first, then=then: (
                then + " " + _time(rows[then]) + " is before " + first + " "
                + _time(rows[first]))))
        ids, messages = _by_row(df, id_column, parts)
        found.append(_found("timestamps_out_of_order", kind, "error", ids, messages))
    return pd.concat(found)


def _active_without_active_at(fleet: _Fleet) -> pd.DataFrame:
    found = []
    for kind, id_column, df in _frames(fleet):
        bad = df[(df["status"] == RUNNING) & df["active_at"].isna()]
        if kind == "instance":
            observed = (bad["billed_from_source"] == "observed").fillna(False)
            message = pd.Series(np.where(
                observed, "status is active but active_at is missing: billed from the first "
                "poll that saw it active", "status is active but active_at is missing: its "
                "billed time and accrued cost are unknown"), index=bad.index, dtype="string")
            message[observed] = message[observed] + " (" + _time(bad["billed_from"])[observed] \
                + ")"
        else:
            message = pd.Series(f"status is {RUNNING} but active_at is missing",
                                index=bad.index, dtype="string")
        found.append(_found("active_without_active_at", kind, "error", bad[id_column], message))
    return pd.concat(found)


def _deleted_at_while_active(fleet: _Fleet) -> pd.DataFrame:
    inst = fleet.instances
    bad = inst[(inst["status"] == RUNNING) & inst["deleted_at"].notna()]
    message = ("status is active but deleted_at is " + _time(bad["deleted_at"])
               + ": billed as running (the status wins) until it leaves active")
    return _found("deleted_at_while_active", "instance", "warning", bad["instance_id"], message)


def _unknown_status(fleet: _Fleet) -> pd.DataFrame:
    inst = fleet.instances
    status = inst["status"].astype("string")
    bad = inst[(status.notna() & ~status.isin(STATUSES)).to_numpy(dtype=bool)]
    message = ("status " + bad["status"].astype("string").map(repr).astype("string")
               + " is not in the API's enum: its accrued cost is unknown (NA), not $0")
    return _found("unknown_status", "instance", "error", bad["instance_id"], message)


def _missing_configuration(fleet: _Fleet) -> pd.DataFrame:
    inst = fleet.instances
    source = inst["configuration_source"]
    bad = inst[source.isin(["missing", "catalog"]).to_numpy(dtype=bool)]
    catalog = (bad["configuration_source"] == "catalog").to_numpy(dtype=bool)
    message = pd.Series(np.where(
        catalog, "the response has no configuration: GPU type and size taken from the "
        "/instances/types catalog (same cloud and shade_instance_type)",
        "the response has no configuration and no catalog entry matches: its GPUs count as "
        "gpu_type (unknown), not as 0"), index=bad.index, dtype="string")
    severity = np.where(catalog, "info", "warning")
    return _found("missing_configuration", "instance", severity, bad["instance_id"], message)


def _missing_price(fleet: _Fleet) -> pd.DataFrame:
    inst = fleet.instances
    price = inst["hourly_price_usd"]
    bad = inst[(inst["status"] == RUNNING) & ~(price > 0)]
    price = bad["hourly_price_usd"]
    message = pd.Series(np.where(
        price.isna(), "running instance has no hourly price: its run rate and accrued cost "
        "are unknown", "running instance has an hourly price of " + _usd(price) + "/h"),
        index=bad.index)
    severity = np.where(price == 0, "warning", "error")
    return _found("missing_price", "instance", severity, bad["instance_id"], message)


def _cost_gap(fleet: _Fleet) -> pd.DataFrame:
    # (only the columns used: a filter takes every column it keeps)
    inst = fleet.instances[["instance_id", "accrued_usd", "cost_estimate_usd", "billed_hours",
                            "billed_price_usd", "shade_cloud"]]
    accrued = inst["accrued_usd"]
    gap = accrued - inst["cost_estimate_usd"]
    flagged = (gap.abs() > COST_GAP_SHARE * accrued) & (gap.abs() > COST_GAP_USD)
    bad = inst[flagged.fillna(False)]
    hours = _fmt(bad["billed_hours"], "{:,.2f}")
    message = ("accrued " + _usd(accrued[bad.index]) + " (" + hours + " h at "
               + _usd(bad["billed_price_usd"]) + "/h) vs the API's cost_estimate "
               + _usd(bad["cost_estimate_usd"]) + ": gap " + _signed_usd(gap[bad.index]))
    # the API's estimate only covers what Shadeform bills, not a linked cloud account
    own_account = bad["shade_cloud"].eq(False).fillna(False).to_numpy(dtype=bool)
    message = message.where(~own_account, message + " (launched in the user's own cloud "
                            "account: billed by the provider)")
    severity = np.where(own_account, "info", "warning")
    return _found("cost_gap", "instance", severity, bad["instance_id"], message)


def _duplicate_instance(fleet: _Fleet) -> pd.DataFrame:
    inst = fleet.instances
    dup = inst[inst.duplicated("instance_id", keep=False)]
    where = key_column(dup["cluster_id"], "cluster_id")
    grouped = where.groupby(dup["instance_id"], sort=True)
    count = grouped.size()
    places = grouped.agg(lambda s: ", ".join(sorted(s)))
    message = ("listed " + count.astype("string") + " times in its newest snapshot (clusters: "
               + places + "): it counts more than once in costs and inventory")
    return _found("duplicate_instance", "instance", "error", count.index.to_series(), message)


def _future_timestamp(fleet: _Fleet) -> pd.DataFrame:
    stamp = _time(pd.Series([fleet.as_of]))[0]
    found = []
    for kind, id_column, df in _frames(fleet):
        parts = [(df[c] > fleet.as_of,
                  lambda rows, c=c: c + " " + _time(rows[c]) + " is after as_of " + stamp)
                 for c in ("created_at", "active_at")]
        ids, messages = _by_row(df, id_column, parts)
        found.append(_found("future_timestamp", kind, "warning", ids, messages))
    return pd.concat(found)


#: Days an instance may run without an auto-delete threshold before ``no_auto_delete``.
NO_AUTO_DELETE_DAYS = 7
_HOURS_PER_MONTH = 730


def _monthly(price: pd.Series) -> pd.Series:
    return _usd(price * _HOURS_PER_MONTH) + "/month"


def _orphaned_volume(fleet: _Fleet) -> pd.DataFrame:
    volumes = fleet.billed.volumes
    inst = fleet.instances
    live = set(inst.loc[(inst["state"] != "stopped").to_numpy(dtype=bool), "instance_id"])
    held = volumes[(volumes["state"] == "running").to_numpy(dtype=bool)]
    mounter = held["mounted_by"]
    orphan = held[(mounter.isna() | ~mounter.isin(live)).to_numpy(dtype=bool)]
    message = pd.Series(np.where(
        orphan["mounted_by"].isna(), "billed and mounted by no instance",
        "billed and mounted by an instance that is no longer live"), index=orphan.index,
        dtype="string")
    priced = orphan["billed_price_usd"].notna()
    message[priced] = message[priced] + ": " + _monthly(orphan["billed_price_usd"])[priced]
    return _found("orphaned_volume", "volume", "warning", orphan["volume_id"], message)


def _volume_without_price(fleet: _Fleet) -> pd.DataFrame:
    volumes = fleet.billed.volumes
    bad = volumes[(volumes["state"] == "running").to_numpy(dtype=bool)
                  & volumes["billed_price_usd"].isna().to_numpy(dtype=bool)]
    message = pd.Series("no /volumes/types price for its cloud and region: its storage cost is "
                        "unknown", index=bad.index, dtype="string")
    return _found("volume_without_price", "volume", "warning", bad["volume_id"], message)


def _details(fleet: _Fleet) -> pd.DataFrame:
    """``fleet.details``: the running instances with details."""
    return fleet.details


def _no_auto_delete(fleet: _Fleet) -> pd.DataFrame:
    inst = _details(fleet)
    if inst.empty:
        return _found("no_auto_delete", "instance", "warning", inst["instance_id"],
                      inst["instance_id"])
    fresh = fleet.billed.freshness  # on stale data, measured to the newest poll, not as_of
    until = fleet.as_of if fresh is None else fresh.seen_to
    days = (until - inst["billed_from"]).dt.total_seconds() / 86_400
    bad = inst[((days > NO_AUTO_DELETE_DAYS) & inst["auto_delete_at"].isna()
                & inst["auto_delete_spend_threshold_usd"].isna()).fillna(False)
               .to_numpy(dtype=bool)]
    message = ("running for " + _fmt(days[bad.index], "{:,.1f}") + " days with no auto-delete "
               "date or spend threshold: " + _monthly(bad["billed_price_usd"]))
    return _found("no_auto_delete", "instance", "warning", bad["instance_id"], message)


def _past_auto_delete_date(fleet: _Fleet) -> pd.DataFrame:
    inst = _details(fleet)
    if inst.empty:
        return _NOTHING
    bad = inst[(inst["auto_delete_at"] < fleet.as_of).fillna(False).to_numpy(dtype=bool)]
    message = ("still running after its auto-delete date " + _time(bad["auto_delete_at"])
               + ": " + _monthly(bad["billed_price_usd"]))
    return _found("past_auto_delete_date", "instance", "warning", bad["instance_id"], message)


def _over_spend(check: str, column: str, what: str) -> Callable[[_Fleet], pd.DataFrame]:
    def run(fleet: _Fleet) -> pd.DataFrame:
        inst = _details(fleet)
        if inst.empty:
            return _NOTHING
        bad = inst[(inst["accrued_usd"] > inst[column]).fillna(False).to_numpy(dtype=bool)]
        message = ("accrued " + _usd(bad["accrued_usd"]) + " is past its " + what + " of "
                   + _usd(bad[column]))
        return _found(check, "instance", "warning", bad["instance_id"], message)
    return run


#: Every check ``quality_checks`` runs, in the order docs/analytics.md lists them.
CHECKS: tuple[Check, ...] = (
    Check("cluster_price_mismatch", "cluster", "warning",
          "the cluster's hourly_price_usd differs from the sum over its listed instances "
          "(running or not) by more than tolerance_usd", _cluster_price_mismatch),
    Check("gpu_type_mismatch", "instance", "warning",
          "gpu_type is not the GPU shade_instance_type names (see gpu_matches_type)",
          _gpu_type_mismatch),
    Check("cloud_mismatch", "instance", "warning",
          "the instance's cloud differs from its cluster's", _cloud_mismatch),
    Check("timestamps_out_of_order", "cluster, instance", "error",
          "active_at or updated_at before created_at; deleted_at before active_at or "
          "created_at", _timestamps_out_of_order),
    Check("active_without_active_at", "cluster, instance", "error",
          "status active without active_at (billed from the first poll that saw it active; "
          "unknown in a single snapshot)",
          _active_without_active_at),
    Check("deleted_at_while_active", "instance", "warning",
          "status active with deleted_at set (billed as running: the status wins)",
          _deleted_at_while_active),
    Check("unknown_status", "instance", "error",
          "a status outside the API's enum: the instance's accrued cost is unknown (NA)",
          _unknown_status),
    Check("missing_configuration", "instance", "warning",
          "the response has no configuration: taken from the catalog (info), or unknown "
          "(warning): its GPUs count as gpu_type (unknown)", _missing_configuration),
    Check("missing_price", "instance", "error",
          "a running instance without an hourly price, or with a negative one (error), or a "
          "zero one (warning)", _missing_price),
    Check("cost_gap", "instance", "warning",
          "accrued cost and the API's cost_estimate differ by more than 10 % of accrued and "
          "more than $1 (info for instances in the user's own cloud account)", _cost_gap),
    Check("duplicate_instance", "instance", "error",
          "the same instance id listed more than once in one snapshot (in two clusters)",
          _duplicate_instance),
    Check("future_timestamp", "cluster, instance", "warning",
          "created_at or active_at after as_of", _future_timestamp),
    Check("orphaned_volume", "volume", "warning",
          "a billed volume mounted by no live instance (with its monthly cost)",
          _orphaned_volume),
    Check("volume_without_price", "volume", "warning",
          "a billed volume whose cloud and region have no /volumes/types price",
          _volume_without_price),
    Check("no_auto_delete", "instance", "warning",
          f"running longer than {NO_AUTO_DELETE_DAYS} days with no auto-delete date or spend "
          "threshold in its details (with its monthly cost)", _no_auto_delete),
    Check("past_auto_delete_date", "instance", "warning",
          "still running after its own auto-delete date", _past_auto_delete_date),
    Check("over_alert_spend", "instance", "warning",
          "accrued past the instance's own alert spend threshold",
          _over_spend("over_alert_spend", "alert_spend_threshold_usd",
                      "alert spend threshold")),
    Check("over_auto_delete_spend", "instance", "warning",
          "accrued past the instance's own auto-delete spend threshold",
          _over_spend("over_auto_delete_spend", "auto_delete_spend_threshold_usd",
                      "auto-delete spend threshold")),
)


@old_spellings(renamed={"tables": "fleet"})
def quality_checks(fleet: Tables | Bill, *, as_of: TimeLike = None,
                   tolerance_usd: float = 0.01) -> pd.DataFrame:
    """Findings of every check in ``CHECKS`` on the fleet as billed at ``as_of``.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = sa.read(sa.sample_path())
        >>> found = quality_checks(tables, as_of="2026-11-20T00:00Z")
        >>> found[["severity", "check", "kind"]].drop_duplicates("check").head(3)
          severity                     check      kind
        0    error  active_without_active_at  instance
        1  warning            cloud_mismatch  instance
        2  warning    cluster_price_mismatch   cluster

    ``tolerance_usd`` is how far (dollars per hour) a cluster's price may differ from the sum
    over its instances. Messages name ids, statuses, times and amounts, never names or other
    free text that could hold a secret.

    Returns:
        DataFrame sorted by severity (error, warning, info), check, resource_id, message.
        Columns (all string): ``severity``, ``check`` (a stable snake_case id, see
        ``CHECKS``), ``kind`` (``cluster`` or ``instance``), ``resource_id`` (the cluster or
        instance id), ``message``. No findings: no rows, the same columns.
    """
    if not isinstance(fleet, Tables | Bill):
        raise TypeError(f"quality_checks needs a Tables (from shadeanalytics.read()), "
                        f"not a {type(fleet).__name__}")
    if not tolerance_usd >= 0:
        raise ValueError("tolerance_usd must be a number >= 0")
    checked = _Fleet(bill_fleet(fleet, as_of=as_of), float(tolerance_usd))
    found = [f for f in (check.run(checked) for check in CHECKS) if not f.empty]
    if not found:
        return pd.DataFrame({c: pd.Series([], dtype="string") for c in FINDING_COLUMNS})
    out = pd.concat(found, ignore_index=True).astype("string")
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out = out.sort_values(
        ["severity", "check", "resource_id", "message"],
        key=lambda col: col.map(rank) if col.name == "severity" else col, kind="stable")
    return out[list(FINDING_COLUMNS)].reset_index(drop=True)


# -- the findings of instances whose billing is over, kept as counts ---------------------------

#: The checks that look across rows or at ``as_of``: judged again at every instant
#: (``finding_counts``); every other check judges an instance row by itself alone.
JUDGED_AGAIN: tuple[str, ...] = ("cluster_price_mismatch", "cloud_mismatch", "future_timestamp")


@dataclass(frozen=True)
class SettledFindings:
    """What the checks need of rows that no longer change (settled instances: one
    ``deleted`` row each, kept by the store), so that ``finding_counts`` of the other rows
    plus these equals the counts of ``quality_checks`` on all of them. ``fixed``: findings by
    severity of the checks judged on a row alone; ``clusters``: ``costs.cluster_sums`` of the
    rows, the listed instances' prices only; ``clouds``: rows by (cluster_id, cloud);
    ``future``: the later of ``created_at`` and ``active_at`` (µs) of each row where that is
    after ``as_of`` (later instants flag fewer)."""

    fixed: dict[str, int]
    clusters: GroupSums
    clouds: dict[tuple[str, str], int]
    future: list[int]

    def plus(self, other: SettledFindings) -> SettledFindings:
        """The findings of both sets of rows (of different instances)."""
        fixed = {s: self.fixed.get(s, 0) + other.fixed.get(s, 0) for s in SEVERITIES}
        clouds = dict(self.clouds)
        for pair, n in other.clouds.items():
            clouds[pair] = clouds.get(pair, 0) + n
        return SettledFindings(fixed, self.clusters.plus(other.clusters), clouds,
                               sorted(self.future + other.future))


def settled_findings(settled: Bill) -> SettledFindings:
    """``SettledFindings`` of the instance rows of ``settled`` (a ``Bill`` of settled
    instances only: no clusters, no volumes)."""
    fleet = _Fleet(settled, 0.01)
    found = [f for f in (check.run(fleet) for check in CHECKS if check.name not in JUDGED_AGAIN)
             if not f.empty]
    severities = pd.concat(found)["severity"].value_counts() if found else pd.Series()
    inst = settled.instances
    pairs = inst[["cluster_id", "cloud"]].dropna().astype(str)
    clouds = {(str(c), str(k)): int(n)
              for (c, k), n in pairs.value_counts(sort=False).items()}
    later = np.fmax(_us(inst["created_at"]), _us(inst["active_at"]))
    return SettledFindings(
        {s: int(severities.get(s, 0)) for s in SEVERITIES}, _listed_prices(settled), clouds,
        sorted(later[later > settled.as_of.value // 1_000].tolist()))


def _listed_prices(billed: Bill) -> GroupSums:
    """``costs.cluster_sums`` of ``billed``, its listed instances' prices only (what
    ``cluster_price_mismatch`` compares a cluster's price with)."""
    sums = cluster_sums(billed)
    at = len(sums.counted) + sums.summed.index("price_usd")
    m = len(sums.summed)
    return GroupSums(sums.keys, (), ("price_usd",),
                     {key: [row[at], row[at + m]] for key, row in sums.rows.items()})


def _us(values: pd.Series) -> np.ndarray:
    """Timestamps as float µs (NaN for NaT), so ``fmax`` skips a missing one."""
    missing = values.isna().to_numpy(dtype=bool)
    out = values.dt.as_unit("us").to_numpy(dtype="datetime64[us]").astype("int64")
    return np.where(missing, np.nan, out.astype("float64"))


def finding_counts(billed: Bill, settled: SettledFindings | None = None, *,
                   tolerance_usd: float = 0.01) -> dict[str, int]:
    """How many findings of each severity ``quality_checks`` has on ``billed``, with
    ``settled`` the findings of the rows of settled instances it leaves out (the store keeps
    them): the same counts as ``quality_checks`` on a bill of every row."""
    if settled is None:
        found = quality_checks(billed, tolerance_usd=tolerance_usd)["severity"].value_counts()
        return {s: int(found.get(s, 0)) for s in SEVERITIES}
    fleet = _Fleet(billed, float(tolerance_usd))
    found = [f for f in (check.run(fleet) for check in CHECKS
                         if check.name not in ("cluster_price_mismatch", "cloud_mismatch"))
             if not f.empty]
    counts = pd.concat(found)["severity"].value_counts() if found else pd.Series()
    out = {s: int(counts.get(s, 0)) + settled.fixed.get(s, 0) for s in SEVERITIES}
    # the three checks judged again count at their declared severity (``CHECKS``)
    severity = {check.name: check.severity for check in CHECKS}
    # cluster_price_mismatch: cluster_summary's hourly_gap_usd, the same float operations
    sums = _listed_prices(billed).plus(settled.clusters)
    at_price = len(sums.counted) + sums.summed.index("price_usd")
    known = at_price + len(sums.summed)
    none = [0] * (len(sums.counted) + 2 * len(sums.summed))
    own = billed.clusters.drop_duplicates("cluster_id", keep="last")
    listed = np.array([as_float(row[at_price]) if row[known] else 0.0
                       for row in (sums.rows.get((str(c),), none)
                                   for c in own["cluster_id"].tolist())], dtype="float64")
    gap = own["hourly_price_usd"].to_numpy(dtype="float64", na_value=np.nan) - listed
    out[severity["cluster_price_mismatch"]] += int(
        (np.abs(gap) > fleet.tolerance_usd + _FLOAT_NOISE).sum())
    out[severity["cloud_mismatch"]] += len(_cloud_mismatch(fleet))
    clouds = billed.clusters[["cluster_id", "cloud"]].drop_duplicates("cluster_id", keep="last")
    cloud_of = dict(clouds.dropna().astype(str).itertuples(index=False, name=None))
    out[severity["cloud_mismatch"]] += sum(n for (cluster, cloud), n in settled.clouds.items()
                          if cluster in cloud_of and cloud_of[cluster] != cloud)
    at = billed.as_of.value // 1_000
    out[severity["future_timestamp"]] += sum(1 for t in settled.future if t > at)
    return out
