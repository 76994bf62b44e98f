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
            if operation["security"] and {} not in operation["security"]:
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


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
