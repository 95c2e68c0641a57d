"""Typed decoding of the big list responses (msgspec): fast, and secrets never become strings.

``GET /clusters`` and ``GET /instances`` responses (bare or in a snapshot envelope) are decoded
straight into the structs below: no dict per object, and every secret field (env values,
registry credentials, docker args, the info shape's ``envs``) stays an undecoded
``msgspec.Raw`` view of the input bytes. The structs accept exactly the fields the API
documents; a document with anything else (an unknown field, an object where a list belongs, a
missing id) is not decoded here, and the loader reads it with the general path instead, which
reports the problem with its JSON path. Both paths give the same rows (a test holds them to it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import orjson

from .schema import CLUSTER_RECORD, INSTANCE_RECORD, Node, Record, shape

__all__ = [
    "UNREADABLE",
    "CheckedCluster",
    "CheckedInstance",
    "Cluster",
    "Instance",
    "LazyItems",
    "LenientCluster",
    "LenientInstance",
    "TypedList",
    "decode_list_response",
    "empty",
]

_Id = Annotated[str, msgspec.Meta(min_length=1)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class _Lenient(msgspec.Struct):
    pass


def _structs(record: Record, name: str, strict: bool, members: Any = None,
             raw: bool | None = None) -> type[msgspec.Struct]:
    """The struct of ``record`` (and its nested objects), derived from ``schema.shape``.

    ``strict``: unknown fields, a wrong shape or a bad id are refused (the typed decoder of
    bytes; ``msgspec.convert`` of a parsed object first tries these too); otherwise (the
    converted object, whose problems the walker has reported and set aside) unknown fields are
    ignored. ``raw`` (default: ``strict``): secrets stay undecoded ``msgspec.Raw`` views of the
    input bytes; otherwise they are whatever the parsed object holds, read by nothing but the
    derived columns. ``members``: the type of a cluster's ``instances`` (required when given).
    """
    base = _Strict if strict else _Lenient
    raw = strict if raw is None else raw

    def build(fields: dict[str, Node], label: str, top: bool) -> type[msgspec.Struct]:
        required: list[tuple[Any, ...]] = []
        specs: list[tuple[Any, ...]] = []
        for key, node in fields.items():
            default: Any = msgspec.UNSET if node.absent else None
            if top and key == record.id:
                required.append((key, _Id if strict else Any))
                continue
            if top and key == "instances" and members is not None:
                required.append((key, members))
                continue
            if node.kind == "object":
                kind: Any = build(node.fields or {}, f"{label}.{key}", False)
            elif node.kind == "list":
                element = build(node.fields, f"{label}.{key}[]", False) if node.fields else Any
                kind = list[element]  # type: ignore[valid-type]  # a struct built at run time
            elif node.kind == "raw" and raw:
                specs.append((key, msgspec.Raw, msgspec.Raw()))
                continue
            elif node.kind == "presence" and raw:
                kind = dict[str, msgspec.Raw]
            else:
                specs.append((key, Any, default))
                continue
            kind = kind | msgspec.UnsetType | None if node.absent else kind | None
            specs.append((key, kind, default))
        return msgspec.defstruct(label, [*required, *specs], bases=(base,))

    return build(shape(record), name, True)


#: the typed decoder's structs (strict) and ``msgspec.convert``'s (lenient), from the spec
Instance = _structs(INSTANCE_RECORD, "Instance", True)
Cluster = _structs(CLUSTER_RECORD, "Cluster", True,
                   members=list[Instance])  # type: ignore[valid-type]  # built at run time
CheckedInstance = _structs(INSTANCE_RECORD, "Instance", True, raw=False)
CheckedCluster = _structs(CLUSTER_RECORD, "Cluster", True, members=Any, raw=False)
LenientInstance = _structs(INSTANCE_RECORD, "Instance", False)
#: a parsed cluster's members are walked one by one (``instances`` stays the parsed list)
LenientCluster = _structs(CLUSTER_RECORD, "Cluster", False, members=Any)

class _Clusters(_Strict):
    # each item stays an undecoded view until its turn (LazyItems)
    clusters: list[msgspec.Raw]


class _Instances(_Strict):
    instances: list[msgspec.Raw]


class _Envelope(_Strict):
    response: msgspec.Raw
    observed_at: Any = None
    endpoint: Any = None


def empty(struct: type[msgspec.Struct]) -> msgspec.Struct:
    """``struct`` with every field at its default (required fields None): stands in for an
    absent object, so that the row builder reads its fields as absent."""
    names = [f.name for f in msgspec.structs.fields(struct) if f.required]
    return struct(**dict.fromkeys(names))


_LEADING_SPACE = re.compile(rb"\s*")
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_ITEMS: dict[str, msgspec.json.Decoder[Any]] = {"clusters": msgspec.json.Decoder(_Clusters),
                                                 "instances": msgspec.json.Decoder(_Instances)}
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {"clusters": msgspec.json.Decoder(Cluster),
                                                    "instances": msgspec.json.Decoder(Instance)}


class Unreadable:
    """An item neither the structs nor orjson can read (nested deeper than orjson allows)."""


UNREADABLE = Unreadable()


class LazyItems:
    """The items of a list, each decoded when the walk reaches it.

    Only one item's structs are alive at a time instead of the whole document's (a large
    fleet's structs take several times the DataFrames' memory), and each item is decoded once.
    An item the structs refuse (an unknown field, a wrong shape, a missing id) is parsed into
    plain Python objects instead, which the walk gives to the general path: one odd record
    costs its own time only. The list itself was checked to be JSON, so the walk does not fail
    half-way (``UNREADABLE`` stands for an item orjson refuses, nested too deeply).
    """

    def __init__(self, kind: str, raws: list[msgspec.Raw]) -> None:
        self._decode = _DECODERS[kind].decode
        self._raws = raws

    def __len__(self) -> int:
        return len(self._raws)

    def __iter__(self) -> Iterator[Any]:
        return self.between(0, len(self._raws))

    def sizes(self) -> list[int]:
        """The bytes of each item."""
        return [len(raw) for raw in self._raws]

    def between(self, start: int, stop: int) -> Iterator[Any]:
        """Items ``start`` to ``stop`` (excluded), decoded one at a time."""
        decode = self._decode
        for raw in self._raws[start:stop]:
            try:
                yield decode(raw)
            except (msgspec.MsgspecError, ValueError, RecursionError):
                try:
                    yield orjson.loads(memoryview(raw))
                except orjson.JSONDecodeError:
                    yield UNREADABLE


class TypedList(msgspec.Struct):
    """A decoded response: ``kind`` is ``clusters`` or ``instances`` (a list response),
    ``array`` (a JSON array of cluster info responses) or ``cluster`` (one cluster info
    response, the items its single cluster). Items the structs refuse are parsed objects."""

    kind: str
    items: LazyItems | list[Any]
    envelope: bool
    observed_at: Any = None


def _decode_response(data: bytes | msgspec.Raw, top: bool) -> tuple[str, Any] | None:
    if top and bytes(data[_LEADING_SPACE.match(data).end():][:1]) == b"[":  # type: ignore[union-attr]
        try:
            raws = _ARRAY.decode(data)
        except (msgspec.MsgspecError, ValueError):
            return None
        return ("array", LazyItems("clusters", raws)) if raws else None
    for kind, decoder in _ITEMS.items():
        try:
            raws = getattr(decoder.decode(data), kind)
        except (msgspec.MsgspecError, ValueError):  # ValueError: bad UTF-8
            continue
        return kind, LazyItems(kind, raws)
    try:
        return "cluster", [_DECODERS["clusters"].decode(data)]
    except (msgspec.MsgspecError, ValueError):
        return None


def decode_list_response(data: bytes) -> TypedList | None:
    """``data`` as a typed ``/clusters`` or ``/instances`` response, a JSON array of cluster
    info responses or one cluster info response, or None when it is none of these (any other
    response, wrong shapes, invalid JSON)."""
    start = _LEADING_SPACE.match(data).end()  # type: ignore[union-attr]
    if data[start:start + 1] not in (b"{", b"["):
        return None
    if not data.isascii():
        # msgspec leaves Raw fields (the secrets) unchecked: bad UTF-8 there must fail as it
        # does everywhere else, on the general path
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if data[start:start + 1] == b"[":
        try:
            found = _decode_response(data, top=True)
        except RecursionError:  # nested too deeply: the general path says so
            return None
        return TypedList(found[0], found[1], envelope=False) if found else None
    try:
        envelope = _ENVELOPE.decode(data)
    except (msgspec.MsgspecError, ValueError):  # ValueError: bad UTF-8
        found = _decode_response(data, top=False)
        return TypedList(found[0], found[1], envelope=False) if found else None
    found = _decode_response(envelope.response, top=False)
    if found is None:
        return None
    return TypedList(found[0], found[1], envelope=True, observed_at=envelope.observed_at)
