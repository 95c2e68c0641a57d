"""Alert state in the history store: the open alert episodes of ``shadeanalytics check``.

One small table, created on demand by the first run that alerts: an open episode per breach
key (a breach alerted and not cleared since). Additive: stores without it read as having no
open episode. The database is reached through a
:class:`~shadeanalytics.live.storedb.Backend` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .storedb import Backend, utc_text

__all__ = ["alert_episodes", "update_alert_episodes"]


def alert_episodes(backend: Backend) -> dict[str, dict[str, str]]:
    """The open alert episodes, by key: ``rule``, ``opened_at``, ``last_seen_at``."""
    with backend.snapshot() as session:
        if not session.has_table("alert_episodes"):
            return {}
        rows = session.execute("SELECT key, rule, opened_at, last_seen_at FROM "
                               "alert_episodes").fetchall()
    return {key: {"rule": rule, "opened_at": opened, "last_seen_at": seen}
            for key, rule, opened, seen in rows}


def update_alert_episodes(backend: Backend, *, opened: Iterable[tuple[str, str]],
                          seen: Iterable[str], closed: Iterable[str], at: datetime | str
                          ) -> None:
    """In one transaction: open an episode per ``(key, rule)`` of ``opened``, mark the
    ``seen`` keys seen at ``at``, and close (delete) the ``closed`` ones."""
    when = utc_text(at)
    with backend.errors("cannot record alerts"), backend.write() as session:
        session.ensure_table("alert_episodes")
        session.insert_ignore("alert_episodes", ("key", "rule", "opened_at", "last_seen_at"),
                              [(key, rule, when, when) for key, rule in opened])
        session.executemany("UPDATE alert_episodes SET last_seen_at = ? WHERE key = ?",
                            [(when, key) for key in seen])
        session.executemany("DELETE FROM alert_episodes WHERE key = ?",
                            [(key,) for key in closed])
