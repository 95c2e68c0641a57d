"""``shadeanalytics check``: the rules evaluated (``analytics.alerts``, pure), one alert per
episode kept in the store (``alertstate``), the webhook sent (``notify``).

An *episode* is a breach from the run that first sees it until the run that no longer does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..analytics.alerts import Breach, Budget, evaluate, payload, quarantined_breaches
from ..analytics.asof import trust_notes
from ..analytics.billing import bill_fleet
from ..analytics.costs import cost_breakdown
from ..ingest.tables import Tables
from .notify import WebhookError, send_webhook

__all__ = ["CheckResult", "run_check"]


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


def run_check(
    tables: Tables,
    budgets: Sequence[Budget],
    *,
    as_of: pd.Timestamp,
    store: Any | None = None,
    webhook: str | None = None,
    dry_run: bool = False,
    notify_clear: bool = False,
    send: Callable[[str, Mapping[str, Any]], int] = send_webhook,
) -> CheckResult:
    """Evaluate the rules and alert the webhook once per episode.

    With ``store`` (a ``Store``), the episodes already alerted are kept in it: only breaches
    not open before are sent, and the episodes that no longer breach are closed (and sent as
    ``cleared`` with ``notify_clear``). The state advances only after the webhook accepted the
    alert (or when there is nothing to send), never with ``dry_run``. Without a store every
    breach is sent each run. A ``WebhookError`` carries the run's ``breaches``.
    """
    billed = bill_fleet(tables, as_of=as_of)
    breaches = evaluate(billed, budgets=budgets)
    if store is not None:
        breaches += quarantined_breaches(
            store.polls(), store.quarantine(), skipped=tables.skipped, as_of=as_of
        )
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
            opened=[(b.key, b.rule) for b in new], seen=list(current), closed=cleared, at=as_of
        )
    return CheckResult(breaches, new, cleared, body, notes)
