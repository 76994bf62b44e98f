"""The committed OpenAPI document is the one the code generates, and it is valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from openapi_spec_validator import validate

from registry.extensions import api

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
