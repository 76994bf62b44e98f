"""Typed SQLAlchemy models, one module per noun. Importing this registers every table."""

from registry.models import audit, decision, identity, policy, review, webhook

__all__ = ["audit", "decision", "identity", "policy", "review", "webhook"]
