"""A version's content: the document a citation vouches for, its hash, and what the audit
log keeps of it. Pure: the same version gives the same document and hash anywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.models.policy import PolicyVersion
from registry.services import chain


def _time(value: datetime | None) -> str | None:
    return chain.format_time(value) if value is not None else None


def conditions_document(version: PolicyVersion) -> list[dict[str, Any]]:
    return sorted(
        ({"code": c.type_code, "parameters": c.parameters} for c in version.conditions),
        key=lambda c: c["code"],
    )


def content_document(version: PolicyVersion) -> dict[str, Any]:
    """Everything a citation of the version vouches for, and nothing that changes later."""
    policy = version.policy
    return {
        "policy": policy.slug,
        "title": policy.title,
        "purpose": policy.purpose,
        "data_category": policy.data_category,
        "version": version.number,
        "retirement": version.is_retirement,
        "body": version.body,
        "summary": version.summary,
        "rationale": version.rationale,
        "conditions": conditions_document(version),
        "sensitive_categories": sorted(version.sensitive_categories),
        "effective_from": _time(version.effective_from),
    }


def compute_hash(version: PolicyVersion) -> str:
    """SHA-256 over the RFC 8785 canonical JSON of the version's content."""
    return chain.sha256_hex(chain.canonical(content_document(version)))


def version_snapshot(version: PolicyVersion) -> dict[str, Any]:
    """What the audit log keeps of a version: its identity, status and content hash."""
    return {
        "policy": version.policy.slug,
        "version": version.number,
        "status": version.status,
        "content_hash": version.content_hash,
        "revision": version.revision_number,
        "effective_from": _time(version.effective_from),
        "in_force_from": _time(version.in_force_from),
    }
