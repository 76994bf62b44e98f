"""The audit chain's rules as pure functions: event hashing, checkpoints, verification.

Nothing here touches Flask or a database: the service, the ``verify`` endpoint and the
standalone verifier (``python -m registry.verify``) all walk the chain with this code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.services import note
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


_MAX_SAFE_INTEGER = 2**53 - 1
# The key a reader puts in place of a row it could not read, with the reason.
UNREADABLE = "_unreadable"


def _plain(value: Any) -> bool:
    """Whether ``json.dumps`` already writes ``value`` exactly as RFC 8785 would.

    True for trees of dicts with ASCII keys (UTF-16 and code point order then agree),
    lists and tuples, strings, booleans, None and integers within I-JSON's safe range. Floats need
    RFC 8785's number formatting, so they take the slow path.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) or item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:
                continue
            return False
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str) or not key.isascii():
                    return False
            stack.extend(item.values())
        elif isinstance(item, list | tuple):  # both are JSON arrays, to json.dumps and RFC 8785
            stack.extend(item)
        else:
            return False
    return True


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value``.

    Audit events, content documents and decisions hold no floats, so the C encoder
    produces the canonical form about five times faster; anything else goes through the
    reference implementation. A property test holds the two to the same bytes.
    """
    if _plain(value):
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference implementation refuse it
    return bytes(rfc8785.dumps(value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: the one spelling of a time inside a hash.

    The year always has four digits: ``strftime("%Y")`` writes the year 999 as ``999``,
    which RFC 3339 and ``datetime.fromisoformat`` refuse.
    """
    t = moment.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
        f"T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"
    )


_SHORT_YEAR = re.compile(r"^(\d{1,3})-")


def parse_time(value: str) -> datetime:
    """A time as ``format_time`` writes it (or any RFC 3339 time), aware.

    Rows written before years were padded spell the years before 1000 with fewer digits;
    they are read too, rather than failing every page that shows them.
    """
    value = _SHORT_YEAR.sub(lambda m: f"{int(m.group(1)):04d}-", value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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


def checkpoint_note(origin: str, size: int, root_hash: str, note_signature: str) -> str:
    """A stored checkpoint (hex root, the base64 note signature) as its signed note."""
    text = note.Checkpoint(origin, size, bytes.fromhex(root_hash)).text
    return f"{text}\n{note.DASH} {origin} {note_signature}\n"


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
        if checkpoint.get("note_signature") is not None:
            # Signed as a C2SP note too (since notes were): that signature must hold as well.
            origin = str(checkpoint["origin"])
            signed = checkpoint_note(
                origin,
                int(checkpoint["size"]),
                str(checkpoint["root_hash"]),
                str(checkpoint["note_signature"]),
            )
            note.open_note(signed, [note.Verifier.for_key(origin, public_key)])
    except (InvalidSignature, KeyError, ValueError, TypeError):  # NoteError is a ValueError
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
    latest_checkpoint: dict[str, Any] | None = None
    # Events after the latest checkpoint that are within the interval of their checkpoint.
    awaiting_checkpoint: int = 0
    # The first live row that disagrees with the log (entity_type, entity_id, field, seq).
    mismatch: dict[str, Any] | None = None
    # What each check found, proves and cannot prove (see ``CHECKS``).
    checks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "root_hash": self.root_hash,
            "checkpoints_checked": self.checkpoints_checked,
            "latest_checkpoint": self.latest_checkpoint,
            "awaiting_checkpoint": self.awaiting_checkpoint,
            "checks": self.checks,
        }
        if not self.ok:
            out["first_bad_seq"] = self.first_bad_seq
            out["reason"] = self.reason
        if self.mismatch is not None:
            out["mismatch"] = self.mismatch
        return out


@dataclass
class Walker:
    """Walk events in order, checking each link and hash, and checkpoint roots on the way."""

    report: Report = field(default_factory=Report)
    _frontier: Frontier = field(default_factory=Frontier)
    last_good_checkpoint: int = 0

    def fail(self, seq: int, reason: str) -> bool:
        if self.report.ok:
            self.report.ok = False
            self.report.first_bad_seq = seq
            self.report.reason = reason
        return False

    def feed(self, document: Mapping[str, Any]) -> bool:
        """Check the next event; False (and the report filled in) at the first fault."""
        expected = self.report.events + 1
        if UNREADABLE in document:
            return self.fail(expected, f"event {expected} cannot be read: {document[UNREADABLE]}")
        try:
            seq = int(document["seq"])
            stored = str(document["hash"])
            prev = str(document["prev_hash"])
            recomputed = event_hash(document)
        except (KeyError, TypeError, ValueError) as exc:
            return self.fail(expected, f"event {expected} is malformed: {exc}")
        except Exception as exc:  # the canonical encoder refuses values it cannot encode
            return self.fail(expected, f"event {expected} cannot be encoded: {exc}")
        if seq != expected:
            what = "missing" if seq > expected else "out of order or duplicated"
            return self.fail(expected, f"event {expected} is {what} (found {seq} there)")
        if prev != self.report.head:
            return self.fail(seq, f"event {seq} does not link to event {seq - 1}")
        if recomputed != stored:
            return self.fail(seq, f"event {seq} was altered: its content does not match its hash")
        self.report.events = seq
        self.report.head = stored
        self._frontier.append(bytes.fromhex(stored))  # hex: it equals a recomputed digest
        return True

    def check_root(self, checkpoint: Mapping[str, Any]) -> bool:
        """The events walked so far must have the checkpoint's root."""
        if UNREADABLE in checkpoint:
            start = self.last_good_checkpoint + 1
            return self.fail(
                start,
                f"a checkpoint after size {self.last_good_checkpoint} cannot be read: "
                f"{checkpoint[UNREADABLE]}",
            )
        size = int(checkpoint["size"])
        if self._frontier.root().hex() != checkpoint["root_hash"]:
            start = self.last_good_checkpoint + 1
            return self.fail(
                start,
                f"history was rewritten at or after event {start}: the events no longer "
                f"match the checkpoint at size {size}",
            )
        self.last_good_checkpoint = size
        self.report.checkpoints_checked += 1
        self.report.latest_checkpoint = {
            "size": size,
            "root_hash": checkpoint["root_hash"],
            "issued_at": checkpoint["issued_at"],
        }
        return True

    def root(self) -> str:
        return self._frontier.root().hex()


def verify_log(
    documents: Iterable[Mapping[str, Any]],
    checkpoints: Iterable[Mapping[str, Any]],
    public_key: bytes | None,
    *,
    all_signatures: bool = False,
    pending_since: str | None = None,
) -> Report:
    """Walk a log and its checkpoints (both in order) and report the first fault.

    Every checkpoint's root is checked against the events; signatures are checked for the
    latest checkpoint, or for all of them with ``all_signatures`` (slower; it names the
    first forged checkpoint when only the latest one was found wanting). Events after
    the latest checkpoint are a fault, unless the first of them occurred at or after
    ``pending_since`` (a ``format_time`` string): those are still within the interval in
    which a checkpoint is due (``registry.checkpoints``), and are counted as awaiting one.
    """
    walker = Walker()
    report = walker.report
    pending = iter(checkpoints)
    upcoming = next(pending, None)
    latest: Mapping[str, Any] | None = None
    last_good_signature = 0

    def take(checkpoint: Mapping[str, Any]) -> bool:
        nonlocal latest, last_good_signature
        if all_signatures and public_key is not None:
            if not checkpoint_signature_valid(public_key, checkpoint):
                return walker.fail(
                    last_good_signature + 1,
                    f"the checkpoint at size {checkpoint['size']} is not signed by the "
                    "registry's key: history was rewritten at or after event "
                    f"{last_good_signature + 1}",
                )
            last_good_signature = int(checkpoint["size"])
        if not walker.check_root(checkpoint):
            return False
        latest = checkpoint
        return True

    while upcoming is not None and int(upcoming["size"]) == 0:
        if not take(upcoming):
            return report
        upcoming = next(pending, None)
    first_unsigned: str | None = None  # when the first event after the latest checkpoint occurred
    for document in documents:
        if not walker.feed(document):
            return report
        if report.events == (int(latest["size"]) if latest is not None else 0) + 1:
            first_unsigned = str(document.get("time"))
        while upcoming is not None and int(upcoming["size"]) == report.events:
            if not take(upcoming):
                return report
            upcoming = next(pending, None)
    report.root_hash = walker.root()
    covered = int(latest["size"]) if latest is not None else 0
    waiting = (
        pending_since is not None
        and report.events > covered
        and first_unsigned is not None
        and first_unsigned >= pending_since
    )
    if upcoming is not None:
        # Everything after the last checkpoint that held is in doubt, not only the gap.
        walker.fail(
            walker.last_good_checkpoint + 1,
            f"events after {report.events} are missing: a checkpoint covers "
            f"{upcoming['size']} events, and nothing after event "
            f"{walker.last_good_checkpoint} can be vouched for",
        )
    elif report.events > covered and not waiting:
        if latest is None:
            walker.fail(1, "no checkpoint covers the log")
        else:
            walker.fail(
                covered + 1, f"events after {covered} are not covered by a signed checkpoint"
            )
    elif (
        latest is not None
        and public_key is not None
        and not all_signatures
        and not checkpoint_signature_valid(public_key, latest)
    ):
        walker.fail(
            int(latest["size"]),
            f"the latest checkpoint (size {latest['size']}) is not signed by the registry's key",
        )
    if report.ok and waiting:
        report.awaiting_checkpoint = report.events - covered
    return report
