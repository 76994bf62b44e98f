"""Typed SQLAlchemy models, one module per noun. Importing this registers every table."""

from registry.models import audit, identity

__all__ = ["audit", "identity"]
