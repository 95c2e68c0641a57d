"""The exception and warning tree of shadeanalytics.

::

    ShadeanalyticsError                 every error this package raises on purpose
    ├── InputError                      a source could not be read as Shadeform JSON
    │   ├── InvalidJSONError            not JSON / not UTF-8 / truncated
    │   └── SchemaError                 JSON of the wrong shape: missing field, wrong type, ...
    ├── ApiError                        the Shadeform API could not be used
    │   ├── AuthenticationError         401 / 403: the API key is missing, wrong or expired
    │   ├── NotFoundError               404
    │   ├── RateLimitedError            429 after the retries (or Retry-After past the deadline)
    │   ├── ServerError                 5xx after the retries
    │   ├── TransportError              connection refused, timeout, redirect off the API origin
    │   └── BadResponseError            a 200 whose body is not the JSON the endpoint promises
    ├── StoreError                      the history store could not be used
    │   └── LockedError                 another collector holds the store's lock
    └── ReportError                     a report file could not be written

    DataWarning (UserWarning)           a record loaded, but something about it deserves a look

Messages name the file, the JSON path and the resource id of the problem, never the offending
value: the value may be a secret.
"""

from __future__ import annotations

from ._text import for_terminal

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadResponseError",
    "DamagedStoreError",
    "DataWarning",
    "InputError",
    "InvalidJSONError",
    "LockedError",
    "NotFoundError",
    "RateLimitedError",
    "ReportError",
    "SchemaError",
    "ServerError",
    "ShadeanalyticsError",
    "StoreError",
    "TransportError",
    "printable",
]

def printable(text: object) -> str:
    """``str(text)`` with every control character escaped (``\\x1b``, ``\\n``, ``\\u202e``):
    ``_text.for_terminal``, the one rule for a terminal or a log line.

    Idempotent: its output holds no control character, so escaping twice changes nothing.
    Every message and log line that can carry API or file values goes through it.
    """
    return for_terminal(text)


class ShadeanalyticsError(Exception):
    """Base class of every error shadeanalytics raises on purpose.

    Its text never holds a control character (:func:`printable`): the values it names come
    from files and servers.
    """

    def __str__(self) -> str:
        return printable(super().__str__())


def _where(source: str | None, path: str | None, resource_id: str | None) -> str:
    parts = []
    if source:
        parts.append(source)
    if path:
        parts.append(f"at {path}")
    if resource_id:
        parts.append(f"(id {resource_id})")
    return " ".join(parts)


class InputError(ShadeanalyticsError):
    """A source could not be read as Shadeform JSON.

    ``source`` is the file (or ``<dict>``, ``<text>``...), ``path`` the JSON path such as
    ``$.clusters[3].instances[0].hourly_price`` and ``resource_id`` the id of the cluster or
    instance the problem is in, when known.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        path: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.path = path
        self.resource_id = resource_id
        where = _where(source, path, resource_id)
        super().__init__(printable(f"{where}: {problem}" if where else problem))


class InvalidJSONError(InputError):
    """The bytes are not valid UTF-8 JSON."""


class SchemaError(InputError):
    """The JSON is valid but not of the shape the Shadeform API documents."""


class ApiError(ShadeanalyticsError):
    """The Shadeform API could not be used. ``endpoint`` and ``status`` say where and how."""

    def __init__(self, message: str, *, endpoint: str | None = None,
                 status: int | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(printable(message))


class AuthenticationError(ApiError):
    """401 or 403: the API key is missing, invalid, expired or for another account."""


class NotFoundError(ApiError):
    """404: the resource does not exist (deleted resources vanish from the API)."""


class RateLimitedError(ApiError):
    """429 after the retries, or a ``Retry-After`` beyond the cap or the run deadline."""


class ServerError(ApiError):
    """5xx after the retries."""


class TransportError(ApiError):
    """No usable HTTP answer: connection error, timeout, or a redirect off the API origin."""


class BadResponseError(ApiError):
    """A 200 whose body is not the JSON the endpoint promises (HTML, truncated, empty...)."""


class StoreError(ShadeanalyticsError):
    """The history store could not be opened, read or written."""


class StoreURLError(StoreError, ValueError):
    """A store name that names no store: empty, an unknown URL scheme, ``sqlite://`` without
    its third slash. Its message never holds the name's password."""


class LockedError(StoreError):
    """Another collector holds the store's lock; this run wrote nothing."""


class DamagedStoreError(StoreError):
    """The store fails SQLite's integrity check; the collector wrote nothing into it."""


class ReportError(ShadeanalyticsError):
    """A report file could not be written; the previous file, if any, is left whole."""


class DataWarning(UserWarning):
    """A record loaded, but something about it deserves a look (unknown field, new status...)."""
