"""The audit chain's rules as pure functions: event hashing, checkpoints, verification.

Nothing here touches Flask or a database: the service, the ``verify`` endpoint and the
standalone verifier (``python -m registry.verify``) all walk the chain with this code.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.services.merkle import Frontier

GENESIS_HASH = "0" * 64
ORIGIN = "london-health-and-care-data-policy-registry/audit"
EVENT_FIELDS = (
    "seq",
    "time",
    "actor",
    "action",
    "entity",
    "before",
    "after",
    "request_id",
    "prev_hash",
)


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value``."""
    return bytes(rfc8785.dumps(value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: the one spelling of a time inside a hash."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_document(
    *,
    seq: int,
    time: datetime | str,
    actor_type: str,
    actor_id: str | None,
    actor_label: str | None,
    action: str,
    entity_type: str,
    entity_id: str,
    before: Any,
    after: Any,
    request_id: str | None,
    prev_hash: str,
) -> dict[str, Any]:
    """The event exactly as it is hashed (and exported, with its ``hash`` added)."""
    return {
        "seq": seq,
        "time": time if isinstance(time, str) else format_time(time),
        "actor": {"type": actor_type, "id": actor_id, "label": actor_label},
        "action": action,
        "entity": {"type": entity_type, "id": entity_id},
        "before": before,
        "after": after,
        "request_id": request_id,
        "prev_hash": prev_hash,
    }


def event_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the event's fields (``hash`` excluded)."""
    return sha256_hex(canonical({k: document[k] for k in EVENT_FIELDS}))


# --- checkpoints -----------------------------------------------------------------------


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: bytes) -> str:
    """A short, stable name for a public key: the hex SHA-256 of its raw bytes."""
    return sha256_hex(public_key)


def checkpoint_message(*, size: int, root_hash: str, issued_at: str, key: str) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical(
        {
            "origin": ORIGIN,
            "size": size,
            "root_hash": root_hash,
            "issued_at": issued_at,
            "key_id": key,
        }
    )


def sign_checkpoint(
    private_key: Ed25519PrivateKey, *, size: int, root_hash: str, issued_at: str
) -> tuple[str, str]:
    """Sign a checkpoint; return (key id, base64 signature)."""
    kid = key_id(public_key_bytes(private_key.public_key()))
    message = checkpoint_message(size=size, root_hash=root_hash, issued_at=issued_at, key=kid)
    return kid, base64.b64encode(private_key.sign(message)).decode()


def checkpoint_signature_valid(public_key: bytes, checkpoint: Mapping[str, Any]) -> bool:
    """Whether ``checkpoint`` (size, root, time, key id, signature) is signed by the key."""
    try:
        if checkpoint["key_id"] != key_id(public_key):
            return False
        message = checkpoint_message(
            size=int(checkpoint["size"]),
            root_hash=str(checkpoint["root_hash"]),
            issued_at=str(checkpoint["issued_at"]),
            key=str(checkpoint["key_id"]),
        )
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            base64.b64decode(checkpoint["signature"], validate=True), message
        )
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


# --- verification ------------------------------------------------------------------------


@dataclass
class Report:
    """The outcome of walking a chain: ``ok``, or the first bad sequence number and why."""

    ok: bool = True
    events: int = 0
    head: str = GENESIS_HASH
    root_hash: str = ""
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints_checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "root_hash": self.root_hash,
            "checkpoints_checked": self.checkpoints_checked,
        }
        if not self.ok:
            out["first_bad_seq"] = self.first_bad_seq
            out["reason"] = self.reason
        return out


@dataclass
class Walker:
    """Walk events in order, checking each link, and checkpoints as their sizes are reached.

    ``checkpoints`` maps size to a checkpoint mapping; each is checked for its signature
    (when ``public_key`` is given) and for its root against the events walked so far.
    """

    checkpoints: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    public_key: bytes | None = None
    report: Report = field(default_factory=Report)
    _frontier: Frontier = field(default_factory=Frontier)
    _last_good_checkpoint: int = 0

    def _fail(self, seq: int, reason: str) -> bool:
        self.report.ok = False
        self.report.first_bad_seq = seq
        self.report.reason = reason
        return False

    def feed(self, document: Mapping[str, Any]) -> bool:
        """Check the next event; False (and the report filled in) at the first fault."""
        expected = self.report.events + 1
        try:
            seq = int(document["seq"])
            stored = str(document["hash"])
            prev = str(document["prev_hash"])
            recomputed = event_hash(document)
        except (KeyError, TypeError, ValueError) as exc:
            return self._fail(expected, f"event {expected} is malformed: {exc}")
        except Exception as exc:  # rfc8785 refuses values it cannot encode
            return self._fail(expected, f"event {expected} cannot be encoded: {exc}")
        if seq != expected:
            what = "missing" if seq > expected else "out of order or duplicated"
            return self._fail(expected, f"event {expected} is {what} (found {seq})")
        if prev != self.report.head:
            return self._fail(seq, f"event {seq} does not link to event {seq - 1}")
        if recomputed != stored:
            return self._fail(seq, f"event {seq} was altered: its content does not match its hash")
        self.report.events = seq
        self.report.head = stored
        self._frontier.append(bytes.fromhex(stored))
        checkpoint = self.checkpoints.get(seq)
        if checkpoint is not None:
            return self._check_checkpoint(checkpoint)
        return True

    def _check_checkpoint(self, checkpoint: Mapping[str, Any]) -> bool:
        size = int(checkpoint["size"])
        if self.public_key is not None and not checkpoint_signature_valid(
            self.public_key, checkpoint
        ):
            return self._fail(
                self._last_good_checkpoint + 1,
                f"the checkpoint at size {size} is not signed by the registry's key",
            )
        if self._frontier.root().hex() != checkpoint["root_hash"]:
            return self._fail(
                self._last_good_checkpoint + 1,
                f"history was rewritten at or after event {self._last_good_checkpoint + 1}: "
                f"the events no longer match the signed checkpoint at size {size}",
            )
        self._last_good_checkpoint = size
        self.report.checkpoints_checked += 1
        return True

    def walk(self, documents: Iterable[Mapping[str, Any]]) -> Report:
        """Feed every document, then check that no checkpoint lies beyond the last event."""
        if 0 in self.checkpoints:
            self._check_checkpoint(self.checkpoints[0])
        for document in documents:
            if not self.report.ok or not self.feed(document):
                return self.report
        return self.finish()

    def finish(self) -> Report:
        if self.report.ok:
            beyond = [s for s in self.checkpoints if s > self.report.events]
            if beyond:
                self._fail(
                    self.report.events + 1,
                    f"events after {self.report.events} are missing: a checkpoint covers "
                    f"{max(beyond)} events",
                )
        self.report.root_hash = self._frontier.root().hex()
        return self.report

    def frontier(self) -> Frontier:
        return self._frontier
