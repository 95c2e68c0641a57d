"""Configuration: the only reader of the ``SHADEFORM_*`` and ``SHADEANALYTICS_*`` environment
variables, and the one rule for an API key, wherever it comes from.

An API key is taken as it was given less surrounding whitespace (a trailing newline of
``echo key > file`` or of a secret manager) and a leading byte order mark (an editor's). The
library (``ShadeformClient(api_key=...)``, or the environment) and the command line
(``SHADEFORM_API_KEY``, ``--api-key-file``) apply the same rule, so a key that works in one
works in the other.

"Now" comes from one place too: :func:`now` is the wall clock, unless ``SHADEANALYTICS_NOW``
holds an ISO-8601 instant with a zone (for tests and replays: the collector dates its poll
with it, and the CLI's ``--as-of now`` / ``latest`` read it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from datetime import UTC, datetime
from pathlib import Path

from .errors import DataWarning, ShadeanalyticsError, printable

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "MAX_KEY_FILE_BYTES",
    "NOW_ENV",
    "WEBHOOK_URL_ENV",
    "ConfigError",
    "api_key",
    "base_url",
    "clean_key",
    "now",
    "webhook_url",
]

API_KEY_ENV = "SHADEFORM_API_KEY"
BASE_URL_ENV = "SHADEFORM_BASE_URL"
WEBHOOK_URL_ENV = "SHADEANALYTICS_WEBHOOK_URL"
NOW_ENV = "SHADEANALYTICS_NOW"
#: An API key file larger than this is not a key file.
MAX_KEY_FILE_BYTES = 64 * 1024


class ConfigError(ShadeanalyticsError):
    """A key file that cannot be read as one (the message names it, never the key)."""


def clean_key(text: str) -> str:
    """The key in ``text``: without surrounding whitespace and a leading byte order mark."""
    return text.strip().removeprefix("\ufeff").strip()


def api_key(explicit: str | None = None, key_file: str | os.PathLike[str] | None = None
            ) -> tuple[str, str]:
    """``(key, where it came from)``: ``explicit`` (``api_key=``), else the file ``key_file``
    (``--api-key-file PATH``), else ``SHADEFORM_API_KEY``. The key may be empty: the caller
    says what to set. A key file is read as a regular file of at most 64 KiB of UTF-8 text;
    one that other users may read gets a ``DataWarning`` (naming the file and its mode,
    never the key)."""
    if explicit is not None:
        return clean_key(explicit), "api_key="
    if key_file is None:
        return clean_key(os.environ.get(API_KEY_ENV, "")), API_KEY_ENV
    from .ingest.load import read_regular_file

    name = printable(os.fspath(key_file))
    try:
        data = read_regular_file(Path(key_file), MAX_KEY_FILE_BYTES, "key file")
        key = clean_key(data.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the API key file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: cannot read the API key file (not UTF-8 text)") from None
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot read the API key file ({exc})") from None
    if not key:
        raise ConfigError(f"{name}: the API key file is empty")
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.stat(key_file).st_mode)
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(f"{name}: the API key file may be read by other users (mode "
                          f"{mode:04o}); chmod 600 it", DataWarning, stacklevel=2)
    return key, f"--api-key-file {name}"


def base_url(explicit: str | None = None) -> tuple[str | None, str]:
    """``(url, where it came from)``: ``explicit`` (``--base-url``), else
    ``SHADEFORM_BASE_URL``, else ``(None, "default")`` (the client's default)."""
    if explicit is not None:
        return explicit, "--base-url"
    if os.environ.get(BASE_URL_ENV):
        return os.environ[BASE_URL_ENV], BASE_URL_ENV
    return None, "default"


def webhook_url() -> str | None:
    """``SHADEANALYTICS_WEBHOOK_URL``, or None when unset or empty."""
    return os.environ.get(WEBHOOK_URL_ENV) or None


def now() -> datetime:
    """The current instant (UTC): ``SHADEANALYTICS_NOW`` when set, else the wall clock.

    The variable is for tests and replays: an ISO-8601 instant with a zone, e.g.
    ``2026-03-02T10:00:00Z``; anything else is a :class:`ConfigError` naming the variable.
    """
    text = os.environ.get(NOW_ENV)
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(f"{NOW_ENV}: not an ISO-8601 instant with a zone "
                          "(e.g. 2026-03-02T10:00:00Z)")
    return moment.astimezone(UTC)
