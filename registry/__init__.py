"""The London health and care data policy registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the registry's Flask application.

    Configuration comes from the defaults, then ``REGISTRY_*`` environment variables
    (and ``DATABASE_URL``), then ``config``. The import is deferred so that
    ``python -m registry.verify`` loads neither Flask nor a database driver.
    """
    from registry.app import build_app

    return build_app(config)
