"""The audit trail's public documents: a checkpoint to keep, and the verification report."""

from __future__ import annotations

import base64
import time
from typing import Any

from flask import current_app

from registry.db import current_session, utcnow
from registry.models.audit import Checkpoint
from registry.services import audit, chain, witnessing

_VERIFY_CACHE = "registry.audit.verify_cache"


def checkpoint_out(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint with everything needed to check it offline."""
    doc = audit.checkpoint_document(checkpoint)
    message = chain.checkpoint_message(
        size=doc["size"], root_hash=doc["root_hash"], issued_at=doc["issued_at"], key=doc["key_id"]
    )
    return {
        "origin": chain.ORIGIN,
        **doc,
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(audit.public_key()).decode(),
        "signed_message": message.decode(),
        "note": audit.signed_note(checkpoint),
        "verifier_key": audit.log_verifier().vkey,
    }


def verify_report() -> dict[str, Any]:
    """The chain's verification, walked at most once per ``AUDIT_VERIFY_CACHE_S`` seconds
    per process (the API and the public audit page share it)."""
    cache = current_app.extensions.setdefault(_VERIFY_CACHE, {})
    ttl = current_app.config["AUDIT_VERIFY_CACHE_S"]
    cached = cache.get("report")
    if cached is not None and time.monotonic() - cached[0] < ttl:
        return dict(cached[1])
    report = audit.verify(current_session()).as_dict()
    report["checked_at"] = chain.format_time(utcnow())
    found = witnessing.witnessed(
        current_session(),
        current_app.extensions["registry.witnesses"],
        current_app.config["WITNESS_QUORUM"],
    )
    report["witnessed_size"] = found[0].size if found else None
    cache["report"] = (time.monotonic(), report)
    return dict(report)
