"""Where a history store is: an SQLite file (a bare path, or ``sqlite:///path``) or a
PostgreSQL database (``postgresql://user@host:5432/db``), and how to name it safely.

:func:`redact` is the one place a store's URL is made fit for a log, an error or a report:
its password (and any ``password=`` parameter) is replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from .errors import StoreURLError

__all__ = ["is_postgres", "redact", "sqlite_path", "target"]

_PG_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite://"
#: a URL's scheme (``mysql://...``): what a path never starts with
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_KNOWN = ("a path, sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or "
          "postgresql://USER@HOST:PORT/DB")


def is_postgres(store: str | os.PathLike[str]) -> bool:
    """True when ``store`` names a PostgreSQL database (``postgresql://``, ``postgres://``)."""
    return isinstance(store, str) and store.lower().startswith(_PG_SCHEMES)


def sqlite_path(store: str | os.PathLike[str]) -> Path:
    """The SQLite file ``store`` names: a path, or ``sqlite:///path`` (``sqlite:////abs``
    and ``sqlite:///rel`` as SQLAlchemy spells them), ``~`` expanded."""
    text = os.fspath(store)
    if text.lower().startswith(_SQLITE_SCHEME):
        rest = text[len(_SQLITE_SCHEME) :]
        if not rest.startswith("/") or not rest[1:]:
            raise StoreURLError("an SQLite store URL is sqlite:///RELATIVE/PATH or "
                                "sqlite:////ABSOLUTE/PATH (three slashes, then the path)")
        text = rest[1:]
    return Path(text).expanduser()


def target(store: str | os.PathLike[str]) -> str | Path:
    """What ``store`` names: the PostgreSQL URL as given, or the SQLite file's path. An
    empty name or a URL of another scheme (``mysql://``) is a :class:`StoreURLError` (never
    a file of that name)."""
    text = os.fspath(store)
    if not text.strip():
        raise StoreURLError(f"the store name is empty: give {_KNOWN}")
    scheme = _URL.match(text)
    if scheme and not (is_postgres(text) or text.lower().startswith(_SQLITE_SCHEME)):
        raise StoreURLError(f"unsupported store URL scheme {scheme.group(1)!r}: give {_KNOWN}")
    return text if is_postgres(text) else sqlite_path(store)


def redact(store: str | os.PathLike[str] | Path) -> str:
    """``store`` fit to show: a URL's password (in its user part or a ``password=``
    parameter) replaced by ``***``, the rest as written; a path as it is."""
    text = os.fspath(store)
    if not _URL.match(text):  # a path
        return text
    try:
        netloc = urlsplit(text).netloc
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", text)
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            text = text.replace(netloc, f"{user.split(':', 1)[0]}:***@{host}", 1)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", text, flags=re.IGNORECASE)


def password(store: str) -> str | None:
    """The password written in the URL ``store`` (to scrub it from a driver's message)."""
    try:
        parts = urlsplit(store)
        found = parts.password
        for k, v in parse_qsl(parts.query):
            if k.lower() == "password":
                found = v
    except ValueError:  # a URL that does not parse: its user part as written, if any
        match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:([^@]*)@", store)
        return match.group(1) if match else None
    return found or None
