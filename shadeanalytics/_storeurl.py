"""Where a history store is: an SQLite file (a bare path, or ``sqlite:///path``) or a
PostgreSQL database (``postgresql://user@host:5432/db``), and how to name it safely.

:func:`redact` is the one place a store's URL is made fit for a log, an error or a report:
its password (and any ``password=`` parameter) is replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["is_postgres", "redact", "sqlite_path", "target"]

_PG_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite://"


def is_postgres(store: str | os.PathLike[str]) -> bool:
    """True when ``store`` names a PostgreSQL database (``postgresql://``, ``postgres://``)."""
    return isinstance(store, str) and store.lower().startswith(_PG_SCHEMES)


def sqlite_path(store: str | os.PathLike[str]) -> Path:
    """The SQLite file ``store`` names: a path, or ``sqlite:///path`` (``sqlite:////abs``
    and ``sqlite:///rel`` as SQLAlchemy spells them), ``~`` expanded."""
    text = os.fspath(store)
    if text.lower().startswith(_SQLITE_SCHEME):
        rest = text[len(_SQLITE_SCHEME) :]
        if not rest.startswith("/"):
            raise ValueError("an SQLite store URL is sqlite:///PATH (three slashes)")
        text = rest[1:] or "."
    return Path(text).expanduser()


def target(store: str | os.PathLike[str]) -> str | Path:
    """What ``store`` names: the PostgreSQL URL as given, or the SQLite file's path."""
    return os.fspath(store) if is_postgres(store) else sqlite_path(store)


def redact(store: str | os.PathLike[str] | Path) -> str:
    """``store`` fit to show: a URL's password (in its user part or a ``password=``
    parameter) replaced by ``***``; a path as it is."""
    text = os.fspath(store)
    if not is_postgres(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", text)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = parts.query
    if query:
        pairs = [
            (k, "***" if k.lower() == "password" else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="/=,:*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password(store: str) -> str | None:
    """The password written in the URL ``store`` (to scrub it from a driver's message)."""
    try:
        parts = urlsplit(store)
        found = parts.password
        for k, v in parse_qsl(parts.query):
            if k.lower() == "password":
                found = v
    except ValueError:
        return None
    return found or None
