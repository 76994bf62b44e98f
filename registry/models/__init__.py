"""Typed SQLAlchemy models, one module per noun. Importing this registers every table."""

from registry.models import audit, identity, policy, review

__all__ = ["audit", "identity", "policy", "review"]
