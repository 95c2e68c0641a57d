"""The resources the Shadeform API serves, each declared once.

Every module that names a resource reads it from :data:`RESOURCES`: the loader (which list key
and endpoint feed which table, the fields it knows, how a single object is told apart), the
store (its version kinds, the id rule of each list item, which payloads are redacted), the
collector (what it asks for and how often) and the client (one method per list). A new
endpoint is one :class:`Resource` here plus its fixture in the fake API
(``testing/fakeapi.py``); ``tests/test_resources.py`` checks that no other module spells a
list endpoint or list key of its own.

Imports only the record spec (``schema.py``, for what it declares of instances): everything
else may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import INSTANCE_RECORD

__all__ = ["BY_NAME", "BY_TABLE", "RESOURCES", "STORE_KINDS", "TOP_COPIES", "TYPE_KEYS", "Resource"]


@dataclass(frozen=True)
class Resource:
    """One list endpoint of the API and where its records go.

    ``name`` is the collector's, the store's (:meth:`Store.record_poll` argument) and the
    client's (method) name of the list; ``table`` the table of :class:`Tables` its rows feed
    (two lists may feed one table: ``/templates`` and ``/templates/featured``).
    """

    name: str
    table: str
    #: the list endpoint (``GET``) and the key of the list in its response
    endpoint: str
    list_key: str
    #: the store's version kind of one item
    kind: str
    #: how the store names an item: ``id``, ``id-or-name`` (``name:<name>`` without an id),
    #: or the fields of a catalogue's natural key joined by ``/`` (``cloud/region``): each a
    #: non-empty string (``a.b``: field ``b`` of object ``a``), or, ending in ``?``, any value
    #: as it is spelled (``""`` when its object is missing)
    id_rule: str
    #: ``core``: a failed request fails the poll; ``every-run`` / ``daily``: polled each run
    #: or once a day, a failure never fails the poll
    collect: str
    #: how an error message names a response of it
    described: str
    #: the single-object endpoint, ``{id}`` for the id (None: the API has none)
    info: str | None = None
    #: the fields the API documents for one item (None: the record spec, ``schema.RECORDS``,
    #: declares them, or, for another table, the first fields of its columns' sources)
    known: frozenset[str] | None = None
    #: fields only a single object of it carries: how an info response without an envelope is
    #: told apart (the resource with fewer marks is tried first)
    marks: tuple[str, ...] = ()
    #: payloads hold secrets: the store keeps ``normalize.redact`` of each item
    secrets: bool = False
    #: its child tables (one row per list item of a record; their columns: ``schema.TABLES``)
    children: tuple[str, ...] = ()
    #: the store kind of its info response when the collector fetches one per item
    info_kind: str | None = None
    #: an account table's id column (None: a catalogue, keyed by ``row_key``) and the columns
    #: that make a row unique (``tables``: a repeat is dropped with a warning)
    id_column: str | None = None
    row_key: tuple[str, ...] = ()

    @property
    def primary(self) -> bool:
        """The list that names its table (``/templates``, not ``/templates/featured``)."""
        return self.name == self.table


#: hardware fields that real catalogue responses repeat beside ``configuration``
#: (``schema.CATALOG_RULE`` says how they are read)
TOP_COPIES = ("gpu_type", "interconnect", "memory_in_gb", "num_gpus", "nvlink",
              "storage_in_gb", "vcpus")
#: the fields of an instance type (also the ``cluster_type`` of a cluster type)
TYPE_KEYS = frozenset({
    "cloud", "shade_instance_type", "cloud_instance_type", "configuration", "hourly_price",
    "deployment_type", "availability", "boot_time", "region", *TOP_COPIES,
})
_TEMPLATE_KEYS = frozenset({
    "id", "name", "description", "author", "logo", "public", "launch_configuration",
    "auto_delete", "alert", "volume_mount", "tags", "envs", "networking",
})

#: Every resource, in the store's endpoint order (the first three are the collector's core).
RESOURCES: tuple[Resource, ...] = (
    Resource(
        name="clusters", table="clusters", endpoint="/clusters", list_key="clusters",
        kind="cluster", info="/clusters/{id}/info", id_rule="id", collect="core",
        described="a cluster info response or a /clusters list", secrets=True,
    ),
    Resource(
        name="instances", table="instances", endpoint="/instances", list_key="instances",
        kind="instance", info="/instances/{id}/info", id_rule="id", collect="core",
        described="an instance info response or an /instances list", secrets=True,
        children=INSTANCE_RECORD.children,
        info_kind="instance_info",
    ),
    Resource(
        name="instance_types", table="instance_types", endpoint="/instances/types",
        list_key="instance_types", kind="instance_type",
        # the 2024 shape (one type per region) adds /<region>: storewrite.prepare_poll
        id_rule="cloud/shade_instance_type", collect="core",
        described="an /instances/types response", known=TYPE_KEYS,
    ),
    Resource(
        name="volumes", table="volumes", endpoint="/volumes", list_key="volumes", kind="volume",
        info="/volumes/{id}/info", id_rule="id", collect="every-run",
        described="a volume info response or a /volumes list",
        known=frozenset({"id", "cloud", "cloud_assigned_id", "region", "name", "fixed_size",
                         "size_in_gb", "cost_estimate", "supports_multi_mount", "mounted_by"}),
        marks=("size_in_gb", "mounted_by", "supports_multi_mount", "fixed_size"),
        id_column="volume_id", row_key=("volume_id", "observed_at"),
    ),
    Resource(
        name="volume_types", table="volume_types", endpoint="/volumes/types",
        list_key="volume_types", kind="volume_type", id_rule="cloud/region", collect="every-run",
        described="a /volumes/types response",
        # the docs spell supports_multi_mount supports_multiple_mounts: both are read
        known=frozenset({"cloud", "region", "supports_multi_mount", "supports_multiple_mounts",
                         "fixed_size", "price_per_gb_per_hour"}),
        row_key=("cloud", "region", "observed_at"),
    ),
    Resource(
        name="ssh_keys", table="ssh_keys", endpoint="/sshkeys", list_key="ssh_keys",
        kind="ssh_key", info="/sshkeys/{id}/info", id_rule="id", collect="daily",
        described="an SSH key info response or an /sshkeys list",
        # public_key_sha256 / public_key_type: what the store keeps instead of the key
        known=frozenset({"id", "name", "public_key", "is_default", "public_key_sha256",
                         "public_key_type"}),
        marks=("public_key", "public_key_sha256"), secrets=True,
        id_column="ssh_key_id", row_key=("ssh_key_id", "observed_at"),
    ),
    Resource(
        name="templates", table="templates", endpoint="/templates", list_key="templates",
        kind="template", info="/templates/{id}/info", id_rule="id-or-name", collect="daily",
        described="a template info response or a /templates list", known=_TEMPLATE_KEYS,
        marks=("launch_configuration", "author", "logo", "public", "description", "networking"),
        secrets=True, children=("template_tags", "template_envs"),
        id_column="template_id", row_key=("template_id", "name", "observed_at"),
    ),
    Resource(
        name="featured_templates", table="templates", endpoint="/templates/featured",
        list_key="templates", kind="featured_template", id_rule="id-or-name", collect="daily",
        described="a template info response or a /templates list", known=_TEMPLATE_KEYS,
        secrets=True,
    ),
    Resource(
        name="cluster_types", table="cluster_types", endpoint="/clusters/types",
        list_key="cluster_types", kind="cluster_type",
        id_rule="cloud/cluster_type.shade_instance_type/num_instances?/availability.region?",
        collect="daily", described="a /clusters/types response",
        known=frozenset({"cloud", "num_instances", "availability", "cluster_type"}),
        id_column="shade_instance_type",
        row_key=("cloud", "shade_instance_type", "num_instances", "region", "observed_at"),
    ),
)

#: name -> resource
BY_NAME: dict[str, Resource] = {r.name: r for r in RESOURCES}
#: table -> the resource that names it (its primary list)
BY_TABLE: dict[str, Resource] = {r.table: r for r in RESOURCES if r.primary}
#: the store's version kinds, in the order its schema lists them: the core's, the info
#: responses', then the rest
STORE_KINDS: tuple[str, ...] = (
    *(r.kind for r in RESOURCES if r.collect == "core"),
    *(r.info_kind for r in RESOURCES if r.info_kind is not None),
    *(r.kind for r in RESOURCES if r.collect != "core"),
)
