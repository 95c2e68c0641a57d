"""Configuration: the only reader of the ``SHADEFORM_*`` and ``SHADEANALYTICS_*`` environment
variables, and the one rule for an API key, wherever it comes from.

An API key is taken as it was given less surrounding whitespace (a trailing newline of
``echo key > file`` or of a secret manager) and a leading byte order mark (an editor's). The
library (``ShadeformClient(api_key=...)``, or the environment) and the command line
(``SHADEFORM_API_KEY``, ``--api-key-file``) apply the same rule, so a key that works in one
works in the other.

"Now" comes from one place too: :func:`now` is the wall clock, unless ``SHADEANALYTICS_NOW``
holds an ISO-8601 instant with a zone (for tests and replays: the collector dates its poll
with it, and the CLI's ``--as-of now`` / ``latest`` read it), or ``SHADEANALYTICS_CLOCK`` a
fast clock (:func:`fast_clock`, for the demo and the fake API served from the command line).

The settings file, ``shadeanalytics.toml`` (:func:`find_file`, :func:`settings`), is read here
too: flags override the environment, the environment overrides the file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._storeurl import redact
from .errors import DataWarning, ShadeanalyticsError, printable

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "CLOCK_ENV",
    "CONFIG_ENV",
    "CONFIG_NAME",
    "MAX_BUDGETS_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_KEY_FILE_BYTES",
    "NOW_ENV",
    "SETTINGS",
    "WEBHOOK_URL_ENV",
    "BudgetFileError",
    "ConfigError",
    "ConfigWarning",
    "Setting",
    "api_key",
    "base_url",
    "clean_key",
    "clock_text",
    "fast_clock",
    "find_file",
    "now",
    "read_budgets_file",
    "settings",
    "webhook_url",
]

API_KEY_ENV = "SHADEFORM_API_KEY"
BASE_URL_ENV = "SHADEFORM_BASE_URL"
WEBHOOK_URL_ENV = "SHADEANALYTICS_WEBHOOK_URL"
NOW_ENV = "SHADEANALYTICS_NOW"
CLOCK_ENV = "SHADEANALYTICS_CLOCK"
CONFIG_ENV = "SHADEANALYTICS_CONFIG"
#: The settings file's name, in the working directory or the user's config directory.
CONFIG_NAME = "shadeanalytics.toml"
#: A settings file larger than this is not one.
MAX_CONFIG_BYTES = 64 * 1024
#: An API key file larger than this is not a key file.
MAX_KEY_FILE_BYTES = 64 * 1024
#: The largest budgets file read (bytes): far above any real file.
MAX_BUDGETS_BYTES = 1024 * 1024


class ConfigError(ShadeanalyticsError):
    """A key file or settings file that cannot be read as one (the message names it and the
    setting, never the key or the value)."""


class BudgetFileError(ConfigError):
    """A budgets file that cannot be used: names the file, the rule and the key."""


class ConfigWarning(DataWarning):
    """A settings or key file its group or others can read holds a secret (the API key or the
    webhook)."""


def clean_key(text: str) -> str:
    """The key in ``text``: without surrounding whitespace and a leading byte order mark."""
    return text.strip().removeprefix("\ufeff").strip()


def api_key(explicit: str | None = None, key_file: str | os.PathLike[str] | None = None
            ) -> tuple[str, str]:
    """``(key, where it came from)``: ``explicit`` (``api_key=``), else the file ``key_file``
    (``--api-key-file PATH``), else ``SHADEFORM_API_KEY``. The key may be empty: the caller
    says what to set. A key file is read as a regular file of at most 64 KiB of UTF-8 text;
    one that its group or other users may read gets a :class:`ConfigWarning` (naming the file
    and its mode, never the key), by the same rule as a settings file holding a secret."""
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
    _warn_if_shared(Path(key_file), name, "the API key file holds the API key")
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
    Without it, ``SHADEANALYTICS_CLOCK`` (:func:`clock_text`) runs a fast clock.
    """
    text = os.environ.get(NOW_ENV)
    if not text:
        clock = os.environ.get(CLOCK_ENV)
        return _parse_clock(clock)() if clock else datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(f"{NOW_ENV}: not an ISO-8601 instant with a zone "
                          "(e.g. 2026-03-02T10:00:00Z)")
    return moment.astimezone(UTC)


# -- fast clocks ------------------------------------------------------------------------------


def fast_clock(start: datetime, speed: float, epoch: float | None = None
               ) -> Callable[[], datetime]:
    """A clock that reads ``start`` at the Unix time ``epoch`` (default: now) and runs
    ``speed`` times faster than the wall clock (3600: an hour a second)."""
    if start.tzinfo is None:
        raise ValueError("start needs a zone")
    if not speed > 0:
        raise ValueError("speed must be positive")
    began = time.time() if epoch is None else epoch

    def clock() -> datetime:
        return (start + timedelta(seconds=(time.time() - began) * speed)).astimezone(UTC)

    return clock


def clock_text(start: datetime, speed: float, epoch: float) -> str:
    """The ``SHADEANALYTICS_CLOCK`` value of :func:`fast_clock` ``(start, speed, epoch)``:
    ``START SPEED EPOCH``, e.g. ``2026-03-02T10:00:00+00:00 3600 1795000000.0``."""
    return f"{start.astimezone(UTC).isoformat()} {speed:g} {epoch!r}"


def _parse_clock(text: str) -> Callable[[], datetime]:
    try:
        start_text, speed, epoch = text.split()
        start = datetime.fromisoformat(start_text)
        return fast_clock(start, float(speed), float(epoch))
    except ValueError:
        raise ConfigError(f"{CLOCK_ENV}: expected START SPEED EPOCH (an ISO-8601 instant with "
                          "a zone, a positive speed, a Unix time)") from None


# -- the settings file --------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting's value and where it came from: a flag (``--store``), a variable
    (``SHADEANALYTICS_STORE``), a settings file (its path) or ``default``."""

    value: Any
    source: str
    secret: bool = False

    def shown(self) -> str:
        """The value as ``config`` prints it; a secret only as ``set (from ...)``."""
        if self.value is None:
            return "not set"
        if self.secret:
            return f"set (from {self.source})"
        return f"{printable(redact(str(self.value)))} (from {self.source})"


@dataclass(frozen=True)
class _Spec:
    key: str  # in the file
    flag: str | None
    env: str | None
    kind: str  # "text", "path", "store" (a path or a PostgreSQL URL), "count", "hours"
    secret: bool = False
    default: Any = None


#: The settings a file, the environment and the flags can give, by name (the file's key).
SETTINGS: dict[str, _Spec] = {spec.key: spec for spec in (
    _Spec("api_key", None, API_KEY_ENV, "text", secret=True),
    _Spec("api_key_file", "--api-key-file", "SHADEANALYTICS_API_KEY_FILE", "path"),
    _Spec("base_url", "--base-url", BASE_URL_ENV, "text"),
    _Spec("store", "--store", "SHADEANALYTICS_STORE", "store"),
    _Spec("info_budget", "--info-budget", "SHADEANALYTICS_INFO_BUDGET", "count", default=50),
    _Spec("info_max_age_hours", "--info-max-age", "SHADEANALYTICS_INFO_MAX_AGE", "hours",
          default=24.0),
    _Spec("budgets", "--budgets", "SHADEANALYTICS_BUDGETS", "path"),
    _Spec("webhook", "--webhook", WEBHOOK_URL_ENV, "text", secret=True),
    _Spec("as_of", "--as-of", "SHADEANALYTICS_AS_OF", "text", default="latest"),
    _Spec("report_dir", "--out", "SHADEANALYTICS_REPORT_DIR", "path"),
)}


def find_file(explicit: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """The settings file and how it was found: ``explicit`` (``--config FILE``), else
    ``SHADEANALYTICS_CONFIG``, else ``shadeanalytics.toml`` in the working directory, else in
    the user's config directory (``$XDG_CONFIG_HOME/shadeanalytics/``, by default
    ``~/.config/shadeanalytics/``); ``(None, "none")`` when there is none. A file named by
    the flag or the variable must exist."""
    if explicit is not None:
        return _must_exist(Path(explicit).expanduser(), "--config"), "--config"
    if os.environ.get(CONFIG_ENV):
        return _must_exist(Path(os.environ[CONFIG_ENV]).expanduser(), CONFIG_ENV), CONFIG_ENV
    here = Path.cwd() / CONFIG_NAME
    if here.exists():
        return here, "working directory"
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "shadeanalytics" / CONFIG_NAME
    if user.exists():
        return user, "user config directory"
    return None, "none"


def _must_exist(path: Path, by: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{printable(str(path))}: no such settings file (named by {by})")
    return path


def read_file(path: Path) -> dict[str, Any]:
    """The settings of the TOML file ``path``, checked (unknown keys and wrong types are a
    ``ConfigError`` naming the file and the key, never the value); relative paths in it are
    relative to its folder. A file its group or others can read that holds ``api_key`` or
    ``webhook`` gets a :class:`ConfigWarning`."""
    from .ingest.load import read_regular_file

    name = printable(str(path))
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES, "settings file")
        table = tomllib.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the settings file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: cannot read the settings file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        where = str(exc).rpartition("(at ")[2].rstrip(")") if "(at " in str(exc) else ""
        raise ConfigError(f"{name}: not a valid TOML file"
                          + (f" (at {where})" if where else "")) from None
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot read the settings file ({exc})") from None
    values: dict[str, Any] = {}
    for key, value in table.items():
        spec = SETTINGS.get(key)
        if spec is None:
            raise ConfigError(f"{name}: unknown setting {printable(key)!r} (known: "
                              f"{', '.join(SETTINGS)})")
        values[key] = _checked(spec, value, f"{name}: {key}", path.parent)
    secrets = [key for key in values if SETTINGS[key].secret]
    if secrets:
        _warn_if_shared(path, name, f"the settings file holds {' and '.join(secrets)}")
    return values


def _warn_if_shared(path: Path, name: str, holds: str) -> None:
    """The one rule for a file holding a secret: a :class:`ConfigWarning` when its group or
    other users may read it (``holds`` says what it holds; never the value)."""
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(f"{name}: {holds} and other users may read it (mode {mode:04o}); "
                          f"run chmod 600 {name}", ConfigWarning, stacklevel=3)


def read_budgets_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML budgets file ``path`` parsed (its rules are checked by
    ``analytics.alerts.parse_budgets``; ``shadeanalytics.load_budgets`` does both).

    A regular file of at most ``MAX_BUDGETS_BYTES`` (a FIFO or a device is refused unread),
    UTF-8 TOML; else ``BudgetFileError`` naming the file, never its content.
    """
    from .ingest.load import read_regular_file

    path = Path(path)
    try:
        return tomllib.loads(read_regular_file(path, MAX_BUDGETS_BYTES, "budgets file")
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


def _checked(spec: _Spec, value: Any, where: str, folder: Path | None) -> Any:
    """``value`` of the setting ``spec`` as the program uses it, or a ``ConfigError`` naming
    ``where`` (never the value)."""
    if spec.kind == "count":
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: expected a whole number, 0 or more")
        return value
    if spec.kind == "hours":
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ConfigError(f"{where}: expected a number of hours, 0 or more")
        return float(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 4096:
        raise ConfigError(f"{where}: expected a non-empty text")
    if spec.kind == "store" and "://" in value:
        return value  # a URL (checked where it is opened): taken as it is written
    if spec.kind in ("path", "store"):
        path = Path(value).expanduser()
        return path if folder is None or path.is_absolute() else folder / path
    return clean_key(value) if spec.key == "api_key" else value


def settings(flags: Mapping[str, Any] | None = None,
             config_file: str | os.PathLike[str] | None = None) -> dict[str, Setting]:
    """Every setting of :data:`SETTINGS` and where it came from: a flag given (``flags``:
    setting name -> value, None when not given), else its environment variable, else the
    settings file (:func:`find_file` ``(config_file)``), else its default. The key file named
    by a setting is not read here (:func:`api_key` does)."""
    flags = flags or {}
    path, _ = find_file(config_file)
    from_file = read_file(path) if path is not None else {}
    result: dict[str, Setting] = {}
    for key, spec in SETTINGS.items():
        if flags.get(key) is not None and spec.flag is not None:
            result[key] = Setting(flags[key], spec.flag, spec.secret)
        elif spec.env is not None and os.environ.get(spec.env):
            value = _checked(spec, os.environ[spec.env], spec.env, None)
            result[key] = Setting(value, spec.env, spec.secret)
        elif key in from_file:
            result[key] = Setting(from_file[key], printable(str(path)), spec.secret)
        else:
            result[key] = Setting(spec.default, "default", spec.secret)
    return result
