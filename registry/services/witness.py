"""This registry as a witness of other logs (c2sp.org/tlog-witness, add-checkpoint).

A regional registry, an auditor or a citizens' organisation runs an instance that
witnesses London's log: it cosigns a checkpoint only if it is signed by the log's key and
extends, by a consistency proof, the last checkpoint it cosigned for that origin. So no
one holding the log's key can show two histories to those who check cosignatures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models.audit import WitnessedLog
from registry.services import merkle, note

MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]*)")


class WitnessRefusal(Exception):
    """The spec's answer to a request it must refuse: a status, and why."""

    def __init__(self, status: int, detail: str, size: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.size = size  # for a 409: the size of the latest checkpoint cosigned


@dataclass(frozen=True)
class Witness:
    """The witness's own name and key, and the logs it witnesses (origin -> key)."""

    name: str
    key: Ed25519PrivateKey
    logs: dict[str, note.Verifier]

    @property
    def vkey(self) -> str:
        return note.cosigner_vkey(self.name, note.raw_public_key(self.key))


def parse_logs(setting: str) -> dict[str, note.Verifier]:
    """The logs to witness: their verifier keys, separated by commas or white space."""
    logs: dict[str, note.Verifier] = {}
    for vkey in re.split(r"[\s,]+", setting.strip()):
        if vkey:
            verifier = note.parse_vkey(vkey)
            logs[verifier.name] = verifier
    return logs


def _request(body: bytes) -> tuple[int, list[bytes], str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessRefusal(400, "The request is not UTF-8 text.") from exc
    head, blank, checkpoint = text.partition("\n\n")
    if not blank:
        raise WitnessRefusal(400, "The request has an empty line before the checkpoint.")
    lines = head.split("\n")
    matched = _OLD.fullmatch(lines[0])
    if matched is None:
        raise WitnessRefusal(400, "The request starts with an old size line: old <size>.")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"A consistency proof has at most {MAX_PROOF_LINES} lines.")
    try:
        proof = [note.decode_hash(line, "Each consistency proof line") for line in lines[1:]]
    except note.NoteError as exc:
        raise WitnessRefusal(400, str(exc)) from exc
    return int(matched.group(1)), proof, checkpoint


def add_checkpoint(session: Session, witness: Witness, body: bytes, now: datetime) -> str:
    """Check a submission as the spec orders and, if it holds, record the new checkpoint
    and return the cosignature line. Raises ``WitnessRefusal`` with the spec's status."""
    old, proof, submitted = _request(body)
    try:
        text, signatures = note.split(submitted)
        checkpoint = note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise WitnessRefusal(400, f"The checkpoint is malformed: {exc}") from exc
    log = witness.logs.get(checkpoint.origin)
    if log is None:
        raise WitnessRefusal(404, f"This witness does not witness {checkpoint.origin}.")
    try:
        note.open_note(submitted, [log])
    except note.NoteError as exc:
        raise WitnessRefusal(403, f"The checkpoint is not signed by the log's key: {exc}") from exc
    del signatures
    if old > checkpoint.size:
        raise WitnessRefusal(400, f"The old size {old} is larger than the checkpoint's size.")
    # The state is read for update: two submissions for one origin are checked and stored
    # one after the other, so none can roll back what the other recorded.
    state = session.execute(
        select(WitnessedLog).where(WitnessedLog.origin == checkpoint.origin).with_for_update()
    ).scalar_one_or_none()
    held = state.size if state is not None else 0
    if old != held:
        raise WitnessRefusal(409, f"This witness holds size {held}, not {old}.", size=held)
    if checkpoint.size == 0 and checkpoint.root_hash != merkle.EMPTY_ROOT:
        raise WitnessRefusal(422, "A checkpoint of size 0 has the empty tree's root.")
    if old == 0:
        if proof:
            raise WitnessRefusal(422, "From size 0 the consistency proof is empty.")
    elif state is not None and old == checkpoint.size:
        if checkpoint.root_hash.hex() != state.root_hash:
            raise WitnessRefusal(422, "Same size, another root: the log forked.")
    elif state is not None and not merkle.verify_consistency(
        old, checkpoint.size, bytes.fromhex(state.root_hash), checkpoint.root_hash, proof
    ):
        raise WitnessRefusal(422, f"The checkpoint does not extend the one at size {old}.")
    cosignature = note.cosign(text, witness.name, witness.key, int(now.timestamp()))
    if state is None:
        state = WitnessedLog(origin=checkpoint.origin)
        session.add(state)
    state.size = checkpoint.size
    state.root_hash = checkpoint.root_hash.hex()
    state.checkpoint = submitted + cosignature
    state.updated_at = now
    session.flush()
    return cosignature


def latest(session: Session, origin_hash: str) -> WitnessedLog | None:
    """The latest checkpoint cosigned for the origin whose SHA-256 (hex) is given."""
    import hashlib

    for state in session.execute(select(WitnessedLog)).scalars():
        if hashlib.sha256(state.origin.encode()).hexdigest() == origin_hash:
            return state
    return None
