"""The fake API's two dialects: *strict* bodies validate against Shadeform's OpenAPI document
(``fixtures/shadeform-openapi.yaml``), *live* bodies show every documented deviation."""

from __future__ import annotations

import functools
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from shadeanalytics.testing.fakeapi import (
    LIVE_STATUS,
    SCENARIOS,
    FakeShadeformAPI,
    scenario_named,
)

KEY = "test-key-dialects"
OPENAPI = Path(__file__).parent / "fixtures" / "shadeform-openapi.yaml"
#: list endpoints -> the document's response schema
LISTS = {
    "/instances": "InstancesResponse",
    "/instances/types": "InstanceTypesResponse",
    "/clusters": "ClustersResponse",
    "/clusters/types": "ClusterTypesResponse",
    "/sshkeys": "SshKeysResponse",
    "/volumes": "VolumesResponse",
    "/volumes/types": "VolumesTypesResponse",
    "/templates": "TemplatesResponse",
    "/templates/featured": "TemplatesResponse",
}
#: info endpoints: (list endpoint, list key, info path, response schema)
INFOS = (
    ("/instances", "instances", "/instances/{}/info", "InstanceInfoResponse"),
    ("/clusters", "clusters", "/clusters/{}/info", "ClusterInfoResponse"),
    ("/volumes", "volumes", "/volumes/{}/info", "Volume"),
    ("/sshkeys", "ssh_keys", "/sshkeys/{}/info", "SshKey"),
    ("/templates", "templates", "/templates/{}/info", "Template"),
)


@functools.cache
def _validator(schema: str) -> OAS30Validator:
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return OAS30Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    )


def _get(api: FakeShadeformAPI, path: str) -> Any:
    request = urllib.request.Request(api.url + path, headers={"X-API-KEY": KEY})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _bodies(api: FakeShadeformAPI) -> list[tuple[str, str, Any]]:
    """(path, schema, body) of every list endpoint and every info endpoint of every resource
    listed, in the current state; cluster nodes' info too."""
    out = [(path, schema, _get(api, path)) for path, schema in LISTS.items()]
    lists = {path: body for path, _, body in out}
    for list_path, key, info, schema in INFOS:
        ids = [item["id"] for item in lists[list_path][key]]
        if list_path == "/instances":
            ids += [node["id"] for c in lists["/clusters"]["clusters"] for node in c["instances"]]
        out += [(info.format(rid), schema, _get(api, info.format(rid))) for rid in ids]
    return out


def _errors(dialect: str) -> set[tuple[str, str, str]]:
    """Every place a body of ``dialect`` breaks the document, over all its states:
    (endpoint with ``{id}``, JSON path with ``[*]``, the rule broken)."""
    found = set()
    with FakeShadeformAPI(api_key=KEY, scenario=dialect) as api:
        for _ in api.scenario:
            for path, schema, body in _bodies(api):
                endpoint = re.sub(r"^/(\w+)/[^/]+/info$", r"/\1/{id}/info", path)
                for error in _validator(schema).iter_errors(body):
                    where = "$" + "".join(
                        f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
                    )
                    found.add((endpoint, re.sub(r"\[\d+\]", "[*]", where), error.validator))
            api.advance()
    return found


def test_every_strict_body_validates_against_the_openapi_document() -> None:
    """Every list and info body of every state of the strict dialect validates."""
    assert _errors("strict") == set()


def test_the_live_dialect_shows_every_documented_deviation() -> None:
    """The live dialect breaks the document exactly where the reference's addendum says the
    real API does (and no field it lists is missing)."""
    assert _errors("live") == {
        # the live nulls (a null where the document forbids one breaks its "type")
        *(
            (endpoint, f"{where}.{name}", "type")
            for endpoint, where in (
                ("/instances", "$.instances[*]"),
                ("/clusters", "$.clusters[*].instances[*]"),
                ("/clusters/{id}/info", "$.instances[*]"),
                ("/instances/{id}/info", "$"),
            )
            for name in (
                "ip",
                "ssh_port",
                "deleted_at",
                "active_at",
                "status_details",
                "cloud_assigned_id",
                "ssh_user",
            )
        ),
        ("/instances", "$.instances[*].status", "enum"),
        ("/instances/{id}/info", "$.status", "enum"),
        ("/instances/{id}/info", "$", "required"),  # no configuration, no cost_estimate
        ("/volumes", "$.volumes[*].mounted_by", "type"),
        ("/volumes/{id}/info", "$.mounted_by", "type"),
        ("/volumes/types", "$.volume_types[*]", "required"),  # supports_multiple_mounts
        # the 2024-era catalogue entry: no deployment_type, gpu_manufacturer, rental_type...
        ("/instances/types", "$.instance_types[*]", "required"),
        ("/instances/types", "$.instance_types[*].configuration", "required"),
        ("/instances/types", "$.instance_types[*].availability[*]", "required"),
        ("/clusters/types", "$.cluster_types[*].cluster_type.availability[*]", "required"),
    }


def test_the_live_catalogue_repeats_hardware_beside_configuration_and_conflicts() -> None:
    """``/instances/types`` in the live dialect: top-level copies on every current entry, an
    ``nvlink`` conflict (nested false, copy true), and a 2024-era entry with a top-level
    ``region``; the info of a ``creating`` instance lacks ``configuration`` and
    ``cost_estimate``, and the last state shows a status outside the enum."""
    states = scenario_named("live")
    types = states[0].instance_types["instance_types"]
    current, legacy = types[:-1], types[-1]
    assert all(
        t[k] == t["configuration"][k]
        for t in current
        for k in ("memory_in_gb", "storage_in_gb", "vcpus", "num_gpus", "gpu_type", "interconnect")
    )
    assert [
        (t["nvlink"], t["configuration"]["nvlink"])
        for t in current
        if t["nvlink"] != t["configuration"]["nvlink"]
    ] == [(True, False)]
    assert (legacy["region"], legacy["availability"]) == (
        "ewr",
        [{"region": "ewr", "available": True}],
    )
    assert not {"deployment_type", "boot_time"} & set(legacy)
    with FakeShadeformAPI(api_key=KEY, scenario="live") as api:
        creating = [i for i in _get(api, "/instances")["instances"] if i["status"] == "creating"]
        assert [(i["cloud_assigned_id"], i["ssh_user"]) for i in creating] == [(None, None)]
        info = _get(api, f"/instances/{creating[0]['id']}/info")
        assert "configuration" not in info and "cost_estimate" not in info
    assert LIVE_STATUS in {i["status"] for i in states[-1].instances["instances"]}


def test_scenarios_are_chosen_by_name() -> None:
    """``scenario=`` takes a name of ``SCENARIOS``; an unknown one is refused, naming them."""
    assert set(SCENARIOS) == {"default", "strict", "live"}
    with pytest.raises(
        ValueError,
        match=r"unknown scenario 'lax'; use one of default, "
        r"strict, live",
    ):
        FakeShadeformAPI(scenario="lax")
