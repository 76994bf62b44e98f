"""This log's checkpoints, cosigned by independent witnesses (c2sp.org/tlog-witness).

After writes, ``submit`` sends the latest checkpoint to each configured witness with a
consistency proof from the size that witness last cosigned, checks the cosignature it
answers against the witness's key, and keeps it. It runs outside any write's
transaction: a witness that is down never blocks a write, and catches up from its last
size at the next submission. ``witnessed`` answers the latest checkpoint that enough
witnesses (k of n) cosigned.
"""

from __future__ import annotations

import base64
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.models.audit import Checkpoint, Cosignature, WitnessProgress
from registry.services import audit, note

log = logging.getLogger("registry.witnessing")

# (url, body) -> (status, body); raises OSError when the witness cannot be reached.
Post = Callable[[str, bytes], tuple[int, bytes]]


@dataclass(frozen=True)
class Cosigner:
    """A witness this log submits to: its name and key (type 0x04), and its submission
    prefix (add-checkpoint is under it)."""

    name: str
    public_key: bytes
    url: str


def parse_witnesses(setting: str) -> list[Cosigner]:
    """``<submission prefix> <cosigner verifier key>`` pairs, separated by commas."""
    found = []
    for entry in setting.split(","):
        if not entry.strip():
            continue
        parts = entry.split()
        if len(parts) != 2 or not re.match(r"https?://", parts[0]):
            raise ValueError(f"A witness is '<submission prefix URL> <verifier key>': {entry!r}")
        name, key = note.parse_cosigner_vkey(parts[1])
        found.append(Cosigner(name, key, parts[0].rstrip("/")))
    return found


def http_post(timeout: float) -> Post:
    def post(url: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "text/plain; charset=utf-8")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310  # nosec B310
                return int(reply.status), reply.read()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read()

    return post


def _body(session: Session, old: int, size: int, signed: str) -> bytes:
    proof: list[bytes] = []
    if 0 < old < size:
        _, _, proof = audit.consistency(session, old, size)
    lines = "".join(base64.b64encode(node).decode() + "\n" for node in proof)
    return f"old {old}\n{lines}\n{signed}".encode()


def _record(
    session: Session,
    name: str,
    *,
    size: int | None = None,
    error: str | None = None,
    cosignature: Cosignature | None = None,
) -> str:
    """Record what one submission came to, in a short write transaction of its own."""
    progress = session.get(WitnessProgress, name)
    if progress is None:
        progress = WitnessProgress(witness=name, size=0)
        session.add(progress)
    if size is not None:
        progress.size = size
    progress.checked_at = datetime.now(UTC)
    progress.last_error = None if error is None else error[:500]
    if cosignature is not None:
        session.add(cosignature)
    session.commit()
    return error or ("cosigned" if cosignature is not None else "already cosigned")


def _submit_one(session: Session, cosigner: Cosigner, size: int, signed: str, post: Post) -> str:
    text = note.split(signed)[0]
    progress = session.get(WitnessProgress, cosigner.name)
    held = progress.size if progress is not None else 0
    if session.get(Cosignature, (size, cosigner.name)) is not None:
        session.rollback()
        return _record(session, cosigner.name)
    for _attempt in range(2):  # a 409 tells the size the witness holds: try once from it
        if held > size:
            session.rollback()
            error = f"the witness holds size {held}, beyond this log's {size}"
            return _record(session, cosigner.name, size=held, error=error)
        body = _body(session, held, size, signed)
        session.rollback()  # no transaction is held while a witness is asked
        try:
            status, reply = post(cosigner.url + "/add-checkpoint", body)
        except OSError as exc:
            return _record(session, cosigner.name, size=held, error=f"unreachable: {exc}")
        if status == 409:
            answered = reply.decode("ascii", "replace").strip()
            if not answered.isdigit():
                error = f"409 without a size: {answered[:100]!r}"
                return _record(session, cosigner.name, size=held, error=error)
            held = int(answered)
            continue
        if status != 200:
            error = f"{status}: {reply.decode('utf-8', 'replace')[:300]}"
            return _record(session, cosigner.name, size=held, error=error)
        try:
            _, lines = note.split(text + "\n" + reply.decode("utf-8"))
        except (UnicodeDecodeError, note.NoteError) as exc:
            error = f"the answer is not signature lines: {exc}"
            return _record(session, cosigner.name, size=held, error=error)
        for line in lines:
            timestamp = note.cosignature_time(text, line, cosigner.name, cosigner.public_key)
            if timestamp is not None:
                cosignature = Cosignature(
                    size=size,
                    witness=cosigner.name,
                    line=line.line,
                    cosigned_at=datetime.fromtimestamp(timestamp, UTC),
                )
                return _record(session, cosigner.name, size=size, cosignature=cosignature)
        error = "no valid cosignature by the witness's key in its answer"
        return _record(session, cosigner.name, size=held, error=error)
    return _record(session, cosigner.name, size=held, error="the witness kept answering 409")


def submit(session: Session, cosigners: Sequence[Cosigner], post: Post) -> dict[str, str]:
    """Submit the latest checkpoint to every witness; the outcome for each, by name. Each
    outcome is committed as it comes; no transaction is open while a witness is asked."""
    checkpoint = audit.latest_checkpoint(session)
    signed = audit.signed_note(checkpoint) if checkpoint else None
    if checkpoint is None or signed is None:
        return {c.name: "no checkpoint note to submit yet" for c in cosigners}
    size = checkpoint.size
    session.rollback()
    outcomes = {}
    for cosigner in cosigners:
        outcomes[cosigner.name] = _submit_one(session, cosigner, size, signed, post)
        if outcomes[cosigner.name] not in ("cosigned", "already cosigned"):
            log.warning(
                "a witness did not cosign",
                extra={"witness": cosigner.name, "reason": outcomes[cosigner.name]},
            )
    return outcomes


def witnessed(
    session: Session, cosigners: Sequence[Cosigner], quorum: int
) -> tuple[Checkpoint, list[str]] | None:
    """The latest checkpoint cosigned by at least ``quorum`` of the configured witnesses,
    and their cosignature lines."""
    names = [c.name for c in cosigners]
    if not names or quorum < 1:
        return None
    size = session.execute(
        select(Cosignature.size)
        .where(Cosignature.witness.in_(names))
        .group_by(Cosignature.size)
        .having(func.count() >= quorum)
        .order_by(Cosignature.size.desc())
        .limit(1)
    ).scalar_one_or_none()
    if size is None:
        return None
    checkpoint = session.get(Checkpoint, size)
    if checkpoint is None:
        return None
    return checkpoint, cosignatures(session, cosigners, size)


def cosignatures(session: Session, cosigners: Sequence[Cosigner], size: int) -> list[str]:
    """The configured witnesses' cosignature lines of the checkpoint at ``size``."""
    names = [c.name for c in cosigners]
    if not names:
        return []
    lines = session.execute(
        select(Cosignature.line)
        .where(Cosignature.size == size, Cosignature.witness.in_(names))
        .order_by(Cosignature.witness)
    ).scalars()
    return list(lines)
