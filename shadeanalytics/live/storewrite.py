"""Writing polls into the history store: each poll validated, redacted and hashed, then
written in one transaction (the change-log step of SCD type 2), refused records quarantined.

The rules are the store's (``store.py`` states them); the database is reached through a
:class:`~shadeanalytics.live.storedb.Backend` only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from ..errors import SchemaError, StoreError, printable
from ..ingest.normalize import redact, type_name
from ..ingest.resources import BY_NAME, RESOURCES, STORE_KINDS
from ..ingest.schema import valid_id
from . import rows as derived
from .endpoints import ACCOUNT_LISTS, ENDPOINTS, endpoint_of
from .storedb import POLL_WARNING_KEY, VOLATILE, Backend, Session, utc_text

__all__ = ["Refusals", "Seen", "account_lists", "add_poll_warning", "prepare_account_list",
           "prepare_poll", "record_failed_poll", "record_poll", "refusals", "seen_of"]

#: where ``rows.records`` places a record: stripped from the path of a refusal
_RECORD_PREFIX = re.compile(r"^\$(?:\.response\.[a-z_]+\[0\])?")
_SCALARS = (str, int, float, type(None))
_LIST_KEYS = {r.endpoint: r.list_key for r in RESOURCES}
#: version kind -> its resource (``ingest/resources.py``)
_RESOURCE_OF = {r.kind: r for r in RESOURCES}
_CLUSTERS, _INSTANCES, _INSTANCE_TYPES, _VOLUMES = (
    BY_NAME[name].endpoint for name in ("clusters", "instances", "instance_types", "volumes"))
_INSTANCE_INFO = BY_NAME["instances"].info or ""
_STORE_KINDS = frozenset(STORE_KINDS)


@dataclass(frozen=True, slots=True)
class Seen:
    """One resource as a successful poll saw it, ready to be written."""

    kind: str
    resource_id: str
    parent_id: str | None
    status: str | None
    payload: str
    payload_hash: str
    cost_estimate: Any
    repeat: bool = False  # a second listing of the same id (see _numbered)
    endpoint: str = ""  # where it was listed, and its JSON path there (for a refusal)
    path: str = "$"


#: Lists whose order the API gives no meaning to: sorted before hashing, so that the same
#: members, tags or regions in another order are not a new version.
_UNORDERED = frozenset({"instances", "tags", "availability", "port_mappings", "volume_mounts",
                        "envs"})
_INT64 = (-(2**63), 2**63 - 1)


def _canonical(value: Any, key: str | None = None) -> Any:
    """``value`` with formatting taken out: integral floats as ints (``1432.0`` is ``1432``),
    unordered lists sorted, so that equal content hashes equal."""
    if isinstance(value, dict):
        return {k: _canonical(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if key in _UNORDERED:
            items.sort(key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
        return items
    if type(value) is float and value.is_integer() and _INT64[0] <= value <= _INT64[1]:
        return int(value)
    return value


def _column_value(cost: Any) -> Any:
    """``cost_estimate`` as SQLite can hold it: an integer past 64 bits becomes a float."""
    if not isinstance(cost, _SCALARS):
        return None
    if type(cost) is int and not _INT64[0] <= cost <= _INT64[1]:
        try:
            return float(cost)
        except OverflowError:
            return None
    return cost


def _items(response: Any, endpoint: str) -> list[Any]:
    key = _LIST_KEYS[endpoint]
    if not isinstance(response, dict):
        raise SchemaError(f"found {type_name(response)}, expected an object with a '{key}' list",
                          source=f"GET {endpoint}", path="$")
    items = response.get(key)
    if not isinstance(items, list):
        raise SchemaError(f"found {type_name(items)}, expected a list",
                          source=f"GET {endpoint}", path=f"$.{key}")
    return items


def _text_field(item: Any, key: str, endpoint: str, path: str) -> str:
    if not isinstance(item, dict):
        raise SchemaError(f"found {type_name(item)}, expected an object",
                          source=f"GET {endpoint}", path=path)
    value = item.get(key)
    if not valid_id(value):  # the record spec's rule for an id
        raise SchemaError(f"'{key}' is {type_name(value)}, expected a non-empty string",
                          source=f"GET {endpoint}", path=f"{path}.{key}")
    return value


def seen_of(kind: str, rid: str, parent: str | None, payload: dict[str, Any], endpoint: str,
          path: str) -> Seen:
    if kind not in _STORE_KINDS:  # the store's tables take any text: the kinds are checked here
        raise ValueError(f"{kind!r} is not a version kind of the store "
                         f"({', '.join(STORE_KINDS)})")
    cost = payload.get(VOLATILE)
    stable = {k: v for k, v in payload.items() if k != VOLATILE}
    try:
        text = orjson.dumps(payload).decode()
        digest = hashlib.sha256(orjson.dumps(_canonical(stable), option=orjson.OPT_SORT_KEYS)
                                ).hexdigest()
    except (orjson.JSONEncodeError, RecursionError):
        raise SchemaError("holds a value JSON cannot represent", source=f"GET {endpoint}",
                          path=path, resource_id=rid) from None
    status = payload.get("status")
    return Seen(kind, rid, parent, status if isinstance(status, str) else None, text, digest,
                 _column_value(cost), endpoint=endpoint, path=path)


def _put(seen: dict[tuple[str, str], list[Seen]], item: Seen) -> None:
    """Add ``item`` to the listings of its id (a second listing is kept: :func:`_numbered`)."""
    seen.setdefault((item.kind, item.resource_id), []).append(item)


def _numbered(seen: dict[tuple[str, str], list[Seen]]) -> dict[tuple[str, str], Seen]:
    """Every listing of a poll, the repeats of an id numbered ``<id>#2``, ``#3``...

    The store keeps every listing the API sent, so that it reads back the rows (and the
    ``duplicate_instance`` finding) the same responses give when loaded from files. The
    listings of one id are ordered by content (parent, then payload), not by their place in
    the response, so the same listings in another order are the same versions.
    """
    out: dict[tuple[str, str], Seen] = {}
    for (kind, rid), items in seen.items():
        if len(items) > 1:
            items.sort(key=lambda s: (s.parent_id or "", s.payload_hash, s.payload))
        out[kind, rid] = items[0]
        n = 1
        for item in items[1:]:
            n += 1
            while (kind, f"{rid}#{n}") in seen:  # an id that is spelled so already
                n += 1
            out[kind, f"{rid}#{n}"] = replace(item, resource_id=f"{rid}#{n}", repeat=True)
    return out


def _account_id(kind: str, item: Any, endpoint: str, path: str) -> str:
    """The resource id of an account list item by its resource's ``id_rule``: its ``id``, or
    (the catalogues have none) its natural key, the fields of the rule joined by ``/``."""
    rule = _RESOURCE_OF[kind].id_rule
    if rule == "id-or-name" and isinstance(item, dict) and item.get("id") is None:
        # the spec's FeaturedTemplate has no id: its name is its key
        return f"name:{_text_field(item, 'name', endpoint, path)}"
    if rule in ("id", "id-or-name"):
        return _text_field(item, "id", endpoint, path)
    parts = []
    for field in rule.split("/"):
        if field.endswith("?"):  # any value, spelled as it is ("" under no object)
            parent, _, name = field[:-1].rpartition(".")
            node = item.get(parent) if parent and isinstance(item, dict) else item
            parts.append(str(node.get(name)) if isinstance(node, dict) else "")
        elif "." in field:
            parent, name = field.rsplit(".", 1)
            node = item.get(parent) if isinstance(item, dict) else None
            parts.append(_text_field(node, name, endpoint, f"{path}.{parent}"))
        else:
            parts.append(_text_field(item, field, endpoint, path))
    return "/".join(parts)


def prepare_account_list(argument: str, response: Any) -> dict[tuple[str, str], Seen]:
    """One account list response (``volumes=``, ``ssh_keys=``... of :meth:`Store.record_poll`)
    validated, redacted and hashed; :class:`SchemaError` when it cannot be recorded."""
    endpoint, key, kind = ACCOUNT_LISTS[argument]
    seen: dict[tuple[str, str], Seen] = {}
    for i, item in enumerate(_items(response, endpoint)):
        path = f"$.{key}[{i}]"
        rid = _account_id(kind, item, endpoint, path)
        payload = redact(item) if _RESOURCE_OF[kind].secrets else item
        seen.setdefault((kind, rid), seen_of(kind, rid, None, payload, endpoint, path))
    return seen


def _prepare_details(details: Mapping[str, Any], seen: dict[tuple[str, str], Seen]
                     ) -> dict[tuple[str, str], Seen]:
    """``/instances/{id}/info`` responses by instance id, redacted, with the instance's cluster."""
    out: dict[tuple[str, str], Seen] = {}
    for iid, info in details.items():
        endpoint = _INSTANCE_INFO
        if not isinstance(info, dict) or info.get("id") != iid:
            raise SchemaError(f"found {type_name(info)} without the instance's id, expected "
                              "the instance object", source=f"GET {endpoint}", path="$",
                              resource_id=iid)
        member = seen.get(("instance", iid))
        parent = member.parent_id if member is not None else None
        out["instance_info", iid] = seen_of("instance_info", iid, parent, redact(info), endpoint,
                                          "$")
    return out


def prepare_poll(clusters: Any, instances: Any, instance_types: Any) -> dict[tuple[str, str], Seen]:
    """Every resource of one poll, validated, redacted and hashed, keyed by (kind, id).

    A resource listed twice is kept twice (the repeat under ``<id>#2``: see :func:`_numbered`), as
    the file loaders keep it; cluster members are read before ``/instances``, and a member
    also listed there keeps its cluster (the file loaders' rule too).
    """
    seen: dict[tuple[str, str], list[Seen]] = {}
    if clusters is not None:
        for i, item in enumerate(_items(clusters, _CLUSTERS)):
            path = f"$.clusters[{i}]"
            cid = _text_field(item, "id", _CLUSTERS, path)
            members = item.get("instances")
            if not isinstance(members, list):
                raise SchemaError(f"'instances' is {type_name(members)}, expected a list",
                                  source="GET /clusters", path=f"{path}.instances",
                                  resource_id=cid)
            ids = []
            for j, member in enumerate(members):
                mpath = f"{path}.instances[{j}]"
                mid = _text_field(member, "id", _CLUSTERS, mpath)
                ids.append({"id": mid})
                _put(seen, seen_of("instance", mid, cid, redact(member), _CLUSTERS, mpath))
            # members are versioned on their own: the cluster keeps only who they are
            payload = redact({**item, "instances": ids})
            _put(seen, seen_of("cluster", cid, None, payload, _CLUSTERS, path))
    if instances is not None:
        for i, item in enumerate(_items(instances, _INSTANCES)):
            path = f"$.instances[{i}]"
            iid = _text_field(item, "id", _INSTANCES, path)
            if any(s.parent_id is not None for s in seen.get(("instance", iid), ())):
                continue  # listed in its cluster too: the cluster's listing is the one kept
            _put(seen, seen_of("instance", iid, None, redact(item), _INSTANCES, path))
    if instance_types is not None:
        for i, item in enumerate(_items(instance_types, _INSTANCE_TYPES)):
            path = f"$.instance_types[{i}]"
            tid = (f"{_text_field(item, 'cloud', _INSTANCE_TYPES, path)}/"
                   f"{_text_field(item, 'shade_instance_type', _INSTANCE_TYPES, path)}")
            if "availability" not in item and isinstance(item.get("region"), str):
                tid += f"/{item['region']}"  # the 2024 shape lists a type once per region
            _put(seen, seen_of("instance_type", tid, None, item, _INSTANCE_TYPES, path))
    return _numbered(seen)


def _digest(endpoints: Iterable[str], seen: dict[tuple[str, str], Seen]) -> str:
    lines = sorted(f"{s.kind}\t{s.resource_id}\t{s.parent_id}\t{s.payload_hash}\t"
                   f"{s.cost_estimate!r}" for s in seen.values())
    return hashlib.sha256("\n".join([",".join(endpoints), *lines]).encode()).hexdigest()


#: what finds the records of a poll the record spec refuses: the store's ``_refusals``
Refusals = Callable[[list[Seen]], dict[int, tuple[Seen, str, str]]]


def account_lists(lists: Mapping[str, Any]) -> dict[str, Any]:
    """The account list responses of a poll by resource name, every account resource present
    (None: not polled); ``TypeError`` for a name no account resource has."""
    unknown = sorted(set(lists) - set(ACCOUNT_LISTS))
    if unknown:
        raise TypeError(f"record_poll() got an unexpected keyword argument {unknown[0]!r} "
                        f"(the account lists: {', '.join(ACCOUNT_LISTS)})")
    return {name: lists.get(name) for name in ACCOUNT_LISTS}


def record_poll(
    backend: Backend,
    refuse: Refusals,
    observed_at: datetime | str,
    *,
    clusters: dict[str, Any] | None,
    instances: dict[str, Any] | None,
    instance_types: dict[str, Any] | None,
    instance_details: Mapping[str, dict[str, Any]] | None = None,
    failures: Sequence[tuple[str, str | None, str]] = (),
    started_at: datetime | str | None = None,
    finished_at: datetime | str | None = None,
    allow_earlier: bool = False,
    **lists: dict[str, Any] | None,
) -> int:
    """:meth:`Store.record_poll <shadeanalytics.live.store.Store.record_poll>` on ``backend``,
    ``refuse`` finding the records to quarantine; ``lists`` are the account lists, by the
    name of their resource (``ingest/resources.py``)."""
    account = account_lists(lists)
    polled = {_CLUSTERS: clusters, _INSTANCES: instances,
              _INSTANCE_TYPES: instance_types,
              **{ACCOUNT_LISTS[name][0]: value for name, value in account.items()}}
    endpoints = [e for e in ENDPOINTS if polled[e] is not None]
    if not endpoints:
        raise ValueError("record_poll needs at least one response")
    observed = utc_text(observed_at)
    started = utc_text(started_at) if started_at is not None else observed
    finished = utc_text(finished_at) if finished_at is not None else None
    seen = prepare_poll(clusters, instances, instance_types)
    for name, value in account.items():
        if value is not None:
            seen.update(prepare_account_list(name, value))
    seen.update(_prepare_details(instance_details or {}, seen))
    failed = [(str(e), None if r is None else str(r), str(x) or "unknown error")
              for e, r, x in failures]
    digest = _digest(endpoints, seen)
    with backend.errors("cannot record poll"), backend.write() as session:
        earlier = session.execute(
            "SELECT poll_id, digest FROM polls WHERE outcome = 'ok' AND observed_at = ?",
            (observed,)).fetchone()
        if earlier is not None:
            if earlier[1] == digest:
                return int(earlier[0])
            raise StoreError(f"{backend.name}: poll {earlier[0]} observed at {observed} is "
                             "already recorded with different content")
        newest = session.execute("SELECT max(observed_at) FROM polls WHERE outcome = 'ok'"
                              ).fetchone()[0]
        if newest is not None and newest > observed and not allow_earlier:
            raise StoreError(f"{backend.name}: cannot record a poll observed at {observed}: "
                             f"polls must be recorded in time order (newest {newest})")
        return _apply(session, refuse, observed, started, finished, endpoints, seen, digest,
                      failed)


def _apply(session: Session, refuse: Refusals, observed: str, started: str,
           finished: str | None, endpoints: list[str], seen: dict[tuple[str, str], Seen],
           digest: str, failed: list[tuple[str, str | None, str]]) -> int:
    """Write one poll inside the open transaction: the change-log step of SCD type 2."""
    current = {(kind, rid): (vid, parent, phash) for vid, kind, rid, parent, phash in
               session.execute("SELECT version_id, kind, resource_id, parent_id, payload_hash "
                            "FROM versions WHERE valid_to IS NULL")}
    touched, closed, opened = [], [], []
    for key, s in seen.items():
        now = current.get(key)
        if now is not None and s.parent_id is None and _CLUSTERS not in endpoints:
            # /clusters not polled: a member seen in /instances is still a member
            s = replace(s, parent_id=now[1])
        if now is None:
            opened.append(s)
        elif now[1] == s.parent_id and now[2] == s.payload_hash:
            touched.append((s.cost_estimate, now[0]))
        else:
            opened.append(s)
    # quarantine at the door: a new payload the record spec refuses is never stored. Its
    # resource keeps its current version, seen by this poll (neither changed nor gone)
    refusals = refuse(opened)
    held = []
    if refusals:
        opened = [s for n, s in enumerate(opened) if n not in refusals]
        held = [current[k][0] for k in ((refusals[n][0].kind, refusals[n][0].resource_id)
                                        for n in refusals) if k in current]
    closed = [current[s.kind, s.resource_id][0] for s in opened
              if (s.kind, s.resource_id) in current]
    added = len(opened) - len(closed)
    polled = set(endpoints)
    gone_keys = [(kind, rid) for (kind, rid), (_, parent, _) in current.items()
                 if kind != "instance_info" and (kind, rid) not in seen
                 and endpoint_of(kind, parent) in polled]
    # an instance's details are listed nowhere: they go with their instance
    gone_instances = {rid for kind, rid in gone_keys if kind == "instance"}
    gone_keys += [("instance_info", rid) for kind, rid in current
                  if kind == "instance_info" and rid in gone_instances]
    gone = [current[key][0] for key in gone_keys]

    def count(kind: str, *by: str) -> int | None:
        return (sum(1 for (k, _), s in seen.items() if k == kind and not s.repeat)
                if polled.intersection(by) else None)

    counts = (count("cluster", _CLUSTERS), count("instance", _CLUSTERS, _INSTANCES),
              count("instance_type", _INSTANCE_TYPES))
    details = sum(1 for k, _ in seen if k == "instance_info")
    poll_id = session.insert(
        "INSERT INTO polls (started_at, finished_at, observed_at, endpoints, outcome, "
        "clusters, instances, instance_types, added, changed, gone, digest, volumes, "
        "details, failures, refused) "
        "VALUES (?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (started, finished, observed, ",".join(endpoints), *counts, added, len(closed),
         len(gone), digest, count("volume", _VOLUMES), details, len(failed),
         len(refusals)))
    session.executemany("INSERT INTO request_failures (poll_id, endpoint, resource_id, error) "
                     "VALUES (?, ?, ?, ?)", [(poll_id, *f) for f in failed])
    session.executemany(
        "INSERT INTO quarantine (poll_id, endpoint, kind, resource_id, path, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(poll_id, s.endpoint, s.kind, s.resource_id, path, reason)
         for s, path, reason in refusals.values()])
    session.executemany("UPDATE versions SET last_seen_poll = ?, last_seen_at = ? "
                     "WHERE version_id = ?", [(poll_id, observed, vid) for vid in held])
    session.executemany("UPDATE versions SET last_seen_poll = ?, last_seen_at = ?, "
                     "last_cost_estimate = ? WHERE version_id = ?",
                     [(poll_id, observed, session.cost(cost), vid) for cost, vid in touched])
    session.executemany("UPDATE versions SET valid_to = ? WHERE version_id = ?",
                     [(poll_id, vid) for vid in closed])
    session.executemany("UPDATE versions SET valid_to = ?, gone = 1 WHERE version_id = ?",
                     [(poll_id, vid) for vid in gone])
    session.executemany(
        "INSERT INTO versions (kind, resource_id, parent_id, valid_from, status, payload, "
        "payload_hash, last_seen_poll, last_seen_at, last_cost_estimate) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(s.kind, s.resource_id, s.parent_id, poll_id, s.status, s.payload, s.payload_hash,
          poll_id, observed, session.cost(s.cost_estimate)) for s in opened])
    return poll_id


def refusals(source: str, opened: list[Seen]) -> dict[int, tuple[Seen, str, str]]:
    """The payloads of ``opened`` that the record spec refuses, by position: (the
    listing, the JSON path of the refused value in its response, the reason)."""
    if not opened:
        return {}
    found = derived.refused(source, [
        (n, s.kind, s.parent_id, orjson.loads(s.payload)) for n, s in enumerate(opened)])
    out = {}
    for n, (path, reason) in sorted(found.items()):
        s = opened[n]
        inner = _RECORD_PREFIX.sub("", path, count=1)
        out[n] = (s, printable(s.path + inner), printable(reason))
    return out


def record_failed_poll(
    backend: Backend,
    observed_at: datetime | str,
    *,
    error: str,
    endpoints: Iterable[str] = ENDPOINTS[:3],
    started_at: datetime | str | None = None,
    finished_at: datetime | str | None = None,
) -> int:
    """:meth:`Store.record_failed_poll <shadeanalytics.live.store.Store.record_failed_poll>`
    on ``backend``."""
    observed = utc_text(observed_at)
    names = list(endpoints)
    unknown = set(names) - set(ENDPOINTS)
    if unknown or not names:
        raise ValueError(f"endpoints must be some of {', '.join(ENDPOINTS)}")
    with backend.errors("cannot record poll"), backend.write() as session:
        poll_id = session.insert(
            "INSERT INTO polls (started_at, finished_at, observed_at, endpoints, outcome, "
            "error) VALUES (?, ?, ?, ?, 'failed', ?)",
            (utc_text(started_at) if started_at is not None else observed,
             utc_text(finished_at) if finished_at is not None else None, observed,
             ",".join(names), error or "unknown error"))
    return poll_id


def add_poll_warning(backend: Backend, poll_id: int, warning: str) -> None:
    """Keep ``warning`` (our own text) with poll ``poll_id`` (``storeread.poll_warnings``)."""
    with backend.errors("cannot record the warning"), backend.write() as session:
        session.upsert("meta", ("key", "value"), [(f"{POLL_WARNING_KEY}{poll_id}", warning)])

