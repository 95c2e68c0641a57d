"""The endpoints a poll records and the version kinds the store keeps for them.

Shared by the store (``store.py``, which writes and reads the versions) and the rows derived
from them (``rows.py``), derived from the one resource table (``ingest/resources.py``); imports
nothing else of the package, so neither imports the other's constants.
"""

from __future__ import annotations

from ..ingest.resources import BY_NAME, RESOURCES

__all__ = ["ACCOUNT_LISTS", "ENDPOINTS", "KIND_ENDPOINTS", "KIND_LIST_KEYS", "endpoint_of"]

#: The list endpoints a poll may record (the first three are the collector's core).
ENDPOINTS: tuple[str, ...] = tuple(r.endpoint for r in RESOURCES)
#: The account lists :meth:`Store.record_poll` takes beside the core three: argument name ->
#: (endpoint, list key, version kind).
ACCOUNT_LISTS: dict[str, tuple[str, str, str]] = {
    r.name: (r.endpoint, r.list_key, r.kind) for r in RESOURCES if r.collect != "core"}
#: version kind -> the list endpoint whose successful poll proves it present or gone
KIND_ENDPOINTS = {kind: endpoint for endpoint, _, kind in ACCOUNT_LISTS.values()} | {
    r.kind: r.endpoint for r in RESOURCES if r.collect == "core" and r.known is not None}
#: kinds read back as a one-item list response: kind -> list key
KIND_LIST_KEYS = {kind: key for _, key, kind in ACCOUNT_LISTS.values()} | {
    r.kind: r.list_key for r in RESOURCES if r.collect == "core" and r.known is not None}

def endpoint_of(kind: str, parent_id: str | None) -> str:
    """The endpoint whose successful poll proves a resource of ``kind`` present or gone (for
    an instance's details: the endpoint of the instance)."""
    if kind in KIND_ENDPOINTS:
        return KIND_ENDPOINTS[kind]
    return (BY_NAME["clusters"].endpoint if kind == "cluster" or parent_id is not None
            else BY_NAME["instances"].endpoint)
