"""The committed OpenAPI document is the one the code generates, and it is valid."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from openapi_spec_validator import validate

from registry.extensions import api
from registry.operations import OPERATION_IDS

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.yaml"


def test_committed_spec_matches_the_code(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    with app.app_context():
        generated = api.spec.to_dict()
    committed = yaml.safe_load(SPEC.read_text())
    assert committed == generated, "openapi/openapi.yaml is stale: run `make openapi`"


def test_spec_is_valid_openapi_3_1() -> None:
    document: Any = yaml.safe_load(SPEC.read_text())
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_operation_documents_its_security_and_errors() -> None:
    document: Any = yaml.safe_load(SPEC.read_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert "security" in operation, f"{method.upper()} {path} has no security"
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            if operation["security"]:
                # Either scheme will do; anonymous callers are refused with a 401.
                assert operation["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
                assert "x-permission" in operation, f"{method} {path}"


def test_every_operation_has_its_own_stable_camel_case_operation_id() -> None:
    """Generated clients name their functions after operationIds: one each, unique,
    camelCase, and exactly the contract's list (none missing, none left over)."""
    spec = yaml.safe_load(SPEC.read_text())
    found = {
        (method, path): operation.get("operationId")
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    }
    assert found == OPERATION_IDS
    ids = list(found.values())
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i) for i in ids), ids
    assert spec["servers"] == [{"url": "/", "description": "This registry (paths start /api/v1)."}]


def _walk(node: Any, where: str = "") -> Any:
    """Every (where, dict) in the document, depth first."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


VOCABULARIES = (
    "Purpose",
    "DataCategory",
    "SensitiveCategory",
    "OrganisationKind",
    "Role",
    "DecisionOutcome",
    "ReviewOutcome",
    "ReviewStatus",
    "VersionStatus",
    "PolicyState",
    "VoteChoice",
    "ConditionKind",
    "ConditionStatus",
    "FiveSafes",
    "Direction",
    "ActorType",
)


def test_each_vocabulary_is_declared_once_and_referred_to() -> None:
    """A generated client has one enum per vocabulary: every field drawing from one refers
    to its schema, and a field that may be null says so around the reference, never as a
    null among the values (which generators turn into several enums)."""
    spec = yaml.safe_load(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    values = {name: frozenset(schemas[name]["enum"]) for name in VOCABULARIES}
    for where, node in _walk(spec):
        if "enum" not in node:
            continue
        assert None not in node["enum"], f"{where}: null inside an enum"
        if where.removeprefix("/components/schemas/") in VOCABULARIES:
            continue
        assert frozenset(node["enum"]) not in values.values(), f"{where}: inline vocabulary"
    referred = {
        node["$ref"].rsplit("/", 1)[1] for _, node in _walk(spec["paths"]) if "$ref" in node
    } | {node["$ref"].rsplit("/", 1)[1] for _, node in _walk(schemas) if "$ref" in node}
    assert set(VOCABULARIES) <= referred


def test_types_are_what_generated_clients_need() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    for where, node in _walk(spec):
        if node.get("type") == "array" or "array" in (node.get("type") or []):
            assert "items" in node or "prefixItems" in node, f"{where}: an array of what?"
        for name, field in (node.get("properties") or {}).items():
            if where.startswith("/components/schemas") and (
                name.endswith("_at") or name in ("as_of", "time")
            ):
                assert field.get("format") == "date-time", f"{where}/{name} is not a date-time"
    problem = spec["components"]["schemas"]["Problem"]["properties"]
    for member in ("current_status", "requested_status", "current_etag", "open_version"):
        assert member in problem
    decision = spec["components"]["schemas"]["Decision"]["properties"]
    assert all(
        "additionalProperties" not in field or field.get("type") != "object"
        for field in decision.values()
    ), "a Decision member is an untyped object"
    tags = spec["tags"]
    assert len({t["name"] for t in tags}) == len({t["description"] for t in tags}) == len(tags)


def test_conditional_statuses_are_declared_where_they_are_answered() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    paths = spec["paths"]
    version = "/api/v1/policies/{slug}/versions/{number}"
    for path in (version, f"{version}/odrl", "/api/v1/policy-set"):
        get = paths[path]["get"]
        assert "304" in get["responses"], path
        assert any(p["name"] == "If-None-Match" for p in get["parameters"]), path
    assert {"412", "428"} <= set(paths[version]["patch"]["responses"])
    for action in ("withdraw", "submit", "publish"):
        assert "412" in paths[f"{version}/{action}"]["post"]["responses"], action
    # A public operation declares no security requirement, so a generated client calls
    # it with or without credentials.
    assert paths["/api/v1/audit-events/checkpoint"]["get"]["security"] == []
    assert paths["/api/v1/policy-set"]["get"]["security"] == []
