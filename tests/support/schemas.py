"""The request schemas of every API view, read from the views themselves."""

from __future__ import annotations

import inspect

from flask.views import MethodView
from marshmallow import Schema

import registry.api.audit
import registry.api.decisions
import registry.api.identity
import registry.api.policies
import registry.api.policyset
import registry.api.reviews

API_MODULES = (
    registry.api.audit,
    registry.api.decisions,
    registry.api.identity,
    registry.api.policies,
    registry.api.policyset,
    registry.api.reviews,
)


# --- the schemas, walked ----------------------------------------------------------------------


def request_schemas() -> list[tuple[str, str, str, Schema]]:
    """Every (view, method, location, schema) a request is parsed with, from the views."""
    found = []
    for module in API_MODULES:
        for name, view in sorted(vars(module).items()):
            if not (inspect.isclass(view) and issubclass(view, MethodView)):
                continue
            for method in ("get", "post", "put", "patch", "delete"):
                handler = getattr(view, method, None)
                arguments = getattr(handler, "_apidoc", {}).get("arguments", {})
                for parameter in arguments.get("parameters", []):
                    found.append((name, method, parameter["in"], parameter["schema"]))
    return found
