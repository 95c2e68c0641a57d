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

__all__ = ["LazyClusters", "TypedList", "decode_list_response"]

_Id = Annotated[str, msgspec.Meta(min_length=1)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class Config(_Strict):
    memory_in_gb: Any = None
    storage_in_gb: Any = None
    vcpus: Any = None
    num_gpus: Any = None
    gpu_type: Any = None
    interconnect: Any = None
    nvlink: Any = None
    vram_per_gpu_in_gb: Any = None
    gpu_manufacturer: Any = None
    os: Any = None


class Boot(_Strict):
    min_boot_in_sec: Any = None
    max_boot_in_sec: Any = None


class Rental(_Strict):
    rental_type: Any = None
    hourly_price: Any = None
    ending_at: Any = None


class Port(_Strict):
    internal_port: Any = None
    external_port: Any = None


class Env(_Strict):
    name: Any = None
    value: msgspec.Raw = msgspec.Raw()


class DockerPort(_Strict):
    host_port: Any = None
    container_port: Any = None


class Mount(_Strict):
    host_path: Any = None
    container_path: Any = None


class Docker(_Strict):
    # UNSET (absent) is told from null: the general path treats `{}` and `{"image": null}`
    # differently, and so must this one
    image: Any = msgspec.UNSET
    args: msgspec.Raw = msgspec.Raw()
    shared_memory_in_gb: Any = msgspec.UNSET
    envs: list[Env] | msgspec.UnsetType | None = msgspec.UNSET
    port_mappings: list[DockerPort] | msgspec.UnsetType | None = msgspec.UNSET
    volume_mounts: list[Mount] | msgspec.UnsetType | None = msgspec.UNSET
    registry_credentials: dict[str, msgspec.Raw] | msgspec.UnsetType | None = msgspec.UNSET

    def is_empty(self) -> bool:
        """True for ``{}``."""
        return (self.image is msgspec.UNSET and not self.args
                and self.shared_memory_in_gb is msgspec.UNSET and self.envs is msgspec.UNSET
                and self.port_mappings is msgspec.UNSET and self.volume_mounts is msgspec.UNSET
                and self.registry_credentials is msgspec.UNSET)


class Script(_Strict):
    base64_script: Any = None
    base64_script_sha256: Any = msgspec.UNSET


class Launch(_Strict):
    type: Any = None
    docker_configuration: Docker | None = None
    script_configuration: Script | None = None


class Instance(_Strict):
    id: _Id
    cloud: Any = None
    region: Any = None
    shade_instance_type: Any = None
    cloud_instance_type: Any = None
    cloud_assigned_id: Any = None
    shade_cloud: Any = None
    name: Any = None
    configuration: Config | None = None
    ip: Any = None
    ssh_user: Any = None
    ssh_port: Any = None
    status: Any = None
    status_details: Any = None
    cost_estimate: Any = None
    hourly_price: Any = None
    rental_terms: Rental | None = None
    launch_configuration: Launch | None = None
    tags: list[Any] | None = None
    port_mappings: list[Port] | None = None
    active_at: Any = None
    created_at: Any = None
    deleted_at: Any = None
    boot_time: Boot | None = None
    # the /instances/{id}/info shape adds these (UNSET: absent, the list shape)
    volume_ids: list[Any] | msgspec.UnsetType | None = msgspec.UNSET
    ssh_key_id: Any = msgspec.UNSET
    auto_delete: Threshold | msgspec.UnsetType | None = msgspec.UNSET
    alert: Threshold | msgspec.UnsetType | None = msgspec.UNSET
    volume_mount: VolumeMount | msgspec.UnsetType | None = msgspec.UNSET
    envs: list[Env] | msgspec.UnsetType | None = msgspec.UNSET

    def has_details(self) -> bool:
        """True for the info shape: any of its own fields is present (even null)."""
        return not (self.volume_ids is msgspec.UNSET and self.ssh_key_id is msgspec.UNSET
                    and self.auto_delete is msgspec.UNSET and self.alert is msgspec.UNSET
                    and self.volume_mount is msgspec.UNSET and self.envs is msgspec.UNSET)


class Threshold(_Strict):
    date_threshold: Any = None
    spend_threshold: Any = None


class VolumeMount(_Strict):
    auto: Any = None


class Region(_Strict):
    region: Any = None
    display_name: Any = None


class Cluster(_Strict):
    id: _Id
    instances: list[Instance]
    cloud: Any = None
    name: Any = None
    cloud_cluster_id: Any = None
    region_info: Region | None = None
    status: Any = None
    status_details: Any = None
    created_at: Any = None
    updated_at: Any = None
    hourly_price: Any = None
    cost_estimate: Any = None
    active_at: Any = None


class _Clusters(_Strict):
    # each cluster stays an undecoded view until its turn (LazyClusters)
    clusters: list[msgspec.Raw]


class _Instances(_Strict):
    instances: list[Instance]


class _Envelope(_Strict):
    response: msgspec.Raw
    observed_at: Any = None
    endpoint: Any = None


EMPTY_CONFIG = Config()
EMPTY_BOOT = Boot()
EMPTY_RENTAL = Rental()
EMPTY_REGION = Region()
EMPTY_THRESHOLD = Threshold()
EMPTY_MOUNT = VolumeMount()

_LEADING_SPACE = re.compile(rb"\s*")
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_CLUSTERS = msgspec.json.Decoder(_Clusters)
_CLUSTER = msgspec.json.Decoder(Cluster)
_INSTANCES = msgspec.json.Decoder(_Instances)


class LazyClusters:
    """The clusters of a ``/clusters`` response, each decoded when the walk reaches it.

    Only one cluster's structs are alive at a time instead of the whole document's (a large
    fleet's structs take several times the DataFrames' memory). Every cluster was decoded once
    already, to validate it, so the walk never fails half-way through a document.
    """

    def __init__(self, raws: list[msgspec.Raw]) -> None:
        self._raws = raws

    def __len__(self) -> int:
        return len(self._raws)

    def __iter__(self) -> Iterator[Cluster]:
        for raw in self._raws:
            yield _CLUSTER.decode(raw)


class TypedList(msgspec.Struct):
    """A decoded list response: ``kind`` is ``clusters`` or ``instances``."""

    kind: str
    items: LazyClusters | list[Instance]
    envelope: bool
    observed_at: Any = None


def _decode_list(data: bytes | msgspec.Raw) -> tuple[str, Any] | None:
    try:
        raws = _CLUSTERS.decode(data).clusters
    except (msgspec.MsgspecError, ValueError):  # ValueError: bad UTF-8
        pass
    else:
        try:
            for raw in raws:
                _CLUSTER.decode(raw)
        except (msgspec.MsgspecError, ValueError):
            return None
        return "clusters", LazyClusters(raws)
    try:
        return "instances", _INSTANCES.decode(data).instances
    except (msgspec.MsgspecError, ValueError):
        return None


def decode_list_response(data: bytes) -> TypedList | None:
    """``data`` as a typed ``/clusters`` or ``/instances`` response, or None when it is not
    exactly one (any other response, unknown fields, wrong shapes, invalid JSON)."""
    start = _LEADING_SPACE.match(data).end()  # type: ignore[union-attr]
    if data[start:start + 1] != b"{":
        return None
    if not data.isascii():
        # msgspec leaves Raw fields (the secrets) unchecked: bad UTF-8 there must fail as it
        # does everywhere else, on the general path
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        envelope = _ENVELOPE.decode(data)
    except (msgspec.MsgspecError, ValueError):  # ValueError: bad UTF-8
        found = _decode_list(data)
        return TypedList(found[0], found[1], envelope=False) if found else None
    found = _decode_list(envelope.response)
    if found is None:
        return None
    return TypedList(found[0], found[1], envelope=True, observed_at=envelope.observed_at)
