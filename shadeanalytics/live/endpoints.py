"""The endpoints a poll records and the version kinds the store keeps for them.

Shared by the store (``store.py``, which writes and reads the versions) and the rows derived
from them (``rows.py``); imports nothing else of the package, so neither imports the other's
constants.
"""

from __future__ import annotations

__all__ = ["ACCOUNT_LISTS", "ENDPOINTS", "KIND_ENDPOINTS", "KIND_LIST_KEYS", "endpoint_of"]

#: The list endpoints a poll may record (the first three are the collector's core).
ENDPOINTS: tuple[str, ...] = ("/clusters", "/instances", "/instances/types", "/volumes",
                              "/volumes/types", "/sshkeys", "/templates", "/templates/featured",
                              "/clusters/types")
#: The account lists :meth:`Store.record_poll` takes beside the core three: argument name ->
#: (endpoint, list key, version kind).
ACCOUNT_LISTS: dict[str, tuple[str, str, str]] = {
    "volumes": ("/volumes", "volumes", "volume"),
    "volume_types": ("/volumes/types", "volume_types", "volume_type"),
    "ssh_keys": ("/sshkeys", "ssh_keys", "ssh_key"),
    "templates": ("/templates", "templates", "template"),
    "featured_templates": ("/templates/featured", "templates", "featured_template"),
    "cluster_types": ("/clusters/types", "cluster_types", "cluster_type"),
}
#: version kind -> the list endpoint whose successful poll proves it present or gone
KIND_ENDPOINTS = {kind: endpoint for endpoint, _, kind in ACCOUNT_LISTS.values()} | {
    "instance_type": "/instances/types"}
#: kinds read back as a one-item list response: kind -> list key
KIND_LIST_KEYS = {kind: key for _, key, kind in ACCOUNT_LISTS.values()} | {
    "instance_type": "instance_types"}


def endpoint_of(kind: str, parent_id: str | None) -> str:
    """The endpoint whose successful poll proves a resource of ``kind`` present or gone (for
    an instance's details: the endpoint of the instance)."""
    if kind in KIND_ENDPOINTS:
        return KIND_ENDPOINTS[kind]
    return "/clusters" if kind == "cluster" or parent_id is not None else "/instances"
