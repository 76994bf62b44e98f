"""Check an exported audit log against signed checkpoints, with no database and no Flask.

    python -m registry.verify EXPORT.jsonl CHECKPOINT [--previous OLDER]...
                              [--public-key KEY]

EXPORT.jsonl comes from GET /api/v1/audit-events/export; CHECKPOINT from
GET /api/v1/audit-events/checkpoint, taken with the export: the C2SP signed note it
answers by default, or the JSON document it answers when asked for JSON. OLDER is a
checkpoint kept from before, in either form (a JSON file may hold several, one per line
or as a list; --previous may be given many times). The command recomputes every event's
hash and link, the export's Merkle root at each checkpoint's size, and each checkpoint's
Ed25519 signature (a note's as c2sp.org/signed-note says). Pin the registry's key with
--public-key: its C2SP verifier key (GET /api/v1/audit-events/verifier-key), the key in
base64, or its key id. Otherwise the key named by the oldest JSON checkpoint kept from
before, or else by CHECKPOINT, is used and reported as not pinned; a note carries no key,
so notes alone need --public-key.

What it proves: the export's events are intact and linked, and its first N events are
the ones the signed checkpoints of size N committed to. What it cannot: whoever holds
the signing key can rewrite history and sign the rewrite; only a checkpoint kept from
before the rewrite (--previous) shows it, and it locates the rewrite only as closely as
the sizes of the checkpoints kept allow.

One entry instead, with no export: python -m registry.verify --proof FILE --public-key VKEY
[--decision DECISION.json | --version VERSION.json] checks a c2sp.org/tlog-proof from
GET /api/v1/decisions/{id}/proof or GET /api/v1/policies/{slug}/versions/{n}/proof: the
checkpoint's signature, the event the proof carries, its inclusion in the signed tree,
and that it recorded exactly the decision (or published exactly the version) given.

Exit status: 0 when everything holds, 1 when something does not (the report names the
first sequence number that cannot be vouched for, and why), 2 when the files cannot be
read (the message names the file, and the line).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from registry.services import chain, merkle, note

CHECKPOINT_HELP = (
    "A checkpoint file is what GET /api/v1/audit-events/checkpoint returns: a C2SP signed "
    "note (origin, size, base64 root hash, a blank line, signature lines), or with "
    "Accept: application/json an object with size, root_hash, issued_at, key_id, signature "
    "and public_key."
)
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Unreadable(Exception):
    """A file (or an option) the verifier cannot read: exit status 2."""


@dataclass
class Kept:
    """One checkpoint given on the command line, and what became of it."""

    label: str
    document: dict[str, Any]
    signed: bool = False
    matches: bool | None = None

    @property
    def size(self) -> int:
        return int(self.document["size"])

    @property
    def root_hash(self) -> str:
        return str(self.document["root_hash"])


# --- reading the files ---------------------------------------------------------------------


def _events(path: str) -> Iterator[tuple[int, Any]]:
    """The export's events with their line numbers; any line that is not one is named."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; the generator may stop early)
    except OSError as exc:
        raise Unreadable(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Unreadable(f"{path}: line {number} is not UTF-8 text: {exc.reason}") from exc
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise Unreadable(f"{path}: line {number} is not JSON: {exc}") from exc
            if not isinstance(document, dict):
                raise Unreadable(
                    f"{path}: line {number} is not an audit event (a JSON object), as "
                    "GET /api/v1/audit-events/export writes one per line"
                )
            yield number, document


def _checkpoint(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a checkpoint document; else say what is wrong, and what one is."""
    if not isinstance(value, dict):
        raise Unreadable(f"{where} is not a checkpoint (not a JSON object). {CHECKPOINT_HELP}")
    missing = [
        k for k in ("size", "root_hash", "issued_at", "key_id", "signature") if k not in value
    ]
    if missing:
        raise Unreadable(
            f"{where} is not a checkpoint: it has no {', '.join(missing)}. {CHECKPOINT_HELP}"
        )
    size = value["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise Unreadable(f"{where}: size must be a whole number of events, not {size!r}.")
    for name in ("root_hash", "key_id"):
        if not isinstance(value[name], str) or not _HEX64.fullmatch(value[name]):
            raise Unreadable(
                f"{where}: {name} must be 64 lowercase hex digits, not {value[name]!r}."
            )
    for name in ("issued_at", "signature"):
        if not isinstance(value[name], str):
            raise Unreadable(f"{where}: {name} must be a string, not {value[name]!r}.")
    if "public_key" in value and _raw_key(value["public_key"]) is None:
        raise Unreadable(f"{where}: public_key must be an Ed25519 public key in base64 (32 bytes).")
    return value


def _note_checkpoint(content: str, where: str) -> dict[str, Any]:
    """A signed-note checkpoint, parsed (its signature is checked once the key is known)."""
    try:
        text, _ = note.split(content)
        parsed = note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise Unreadable(f"{where} is not a checkpoint note: {exc} {CHECKPOINT_HELP}") from exc
    return {
        "origin": parsed.origin,
        "size": parsed.size,
        "root_hash": parsed.root_hash.hex(),
        "note": content,
    }


def _is_note(kept: Kept) -> bool:
    return "signature" not in kept.document


def _raw_key(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None


def _read_checkpoints(path: str, label: str, *, one: bool) -> list[Kept]:
    """A file of one checkpoint, or (with ``one`` false) a list of them or one per line."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
    except UnicodeDecodeError as exc:
        raise Unreadable(f"{path} is not UTF-8 text. {CHECKPOINT_HELP}") from exc
    except OSError as exc:
        raise Unreadable(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if content[:1] not in ("{", "[") and f"\n\n{note.DASH} " in content:
        return [Kept(label, _note_checkpoint(content, path))]
    try:
        whole = json.loads(content)
    except (ValueError, RecursionError) as exc:
        if one or len(content.strip().splitlines()) < 2:
            raise Unreadable(f"{path} is not JSON ({exc}). {CHECKPOINT_HELP}") from exc
        found = []
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                try:
                    item = json.loads(line)
                except (ValueError, RecursionError) as inner:
                    raise Unreadable(f"{path}: line {number} is not JSON: {inner}") from inner
                where = f"{path}: line {number}"
                found.append(Kept(f"{label} ({where})", _checkpoint(item, where)))
        return found
    if isinstance(whole, list) and not one:
        return [
            Kept(f"{label} ({path}, item {i})", _checkpoint(item, f"{path}: item {i}"))
            for i, item in enumerate(whole, 1)
        ]
    return [Kept(label, _checkpoint(whole, path))]


def _key(pinned: str | None, newest: Kept, previous: list[Kept]) -> tuple[bytes | None, str, str]:
    """The key to check signatures with (None: known only by its id, and no checkpoint given
    names it, so none is signed by it), its id, and where it came from."""
    embedded = [k for k in (*previous, newest) if "public_key" in k.document]
    if pinned is None:
        if not embedded:
            raise Unreadable(
                "No checkpoint given holds its public key (a note never does): pin the "
                "registry's key with --public-key, as its verifier key from "
                f"GET /api/v1/audit-events/verifier-key. {CHECKPOINT_HELP}"
            )
        source = embedded[0]
        raw = _raw_key(source.document["public_key"])
        assert raw is not None  # checked when read
        return raw, chain.key_id(raw), f"named by {source.label} (not pinned)"
    if note.VKEY.fullmatch(pinned.strip()):
        try:
            verifier = note.parse_vkey(pinned)
        except note.NoteError as exc:
            raise Unreadable(f"--public-key: {exc}") from exc
        return verifier.public_key, chain.key_id(verifier.public_key), "pinned"
    raw = _raw_key(pinned)
    if raw is not None:
        return raw, chain.key_id(raw), "pinned"
    if _HEX64.fullmatch(pinned):
        for kept in embedded:
            candidate = _raw_key(kept.document["public_key"])
            if candidate is not None and chain.key_id(candidate) == pinned:
                return candidate, pinned, "pinned (by key id)"
        if not any(k.document.get("key_id") == pinned for k in (*previous, newest)):
            return None, pinned, "pinned (by key id)"
        raise Unreadable(
            f"--public-key names key {pinned}, and a checkpoint given names it too, but none "
            "holds its public key to check the signature with: pass the key itself (base64)."
        )
    raise Unreadable(
        "--public-key must be the registry's Ed25519 public key in base64 (32 bytes) or its "
        "key id (64 hex digits)."
    )


# --- checking ------------------------------------------------------------------------------


def _note_fault(kept: Kept, key: bytes | None, kid: str) -> str | None:
    """Whether the note is signed by ``key`` under the note's own origin as key name."""
    origin = str(kept.document["origin"])
    if key is None:
        return f"{kept.label} is a note, and key {kid} is known only by its id"
    try:
        text, _ = note.open_note(kept.document["note"], [note.Verifier.for_key(origin, key)])
    except note.NoteError as exc:
        return f"{kept.label} is not a note signed by key {kid} for {origin}: {exc}"
    if "signature" in kept.document and (
        note.parse_checkpoint(text).root_hash.hex() != kept.root_hash
        or note.parse_checkpoint(text).size != kept.size
    ):
        return f"{kept.label}: its note and its JSON disagree on the size or the root"
    return None


def _signature_fault(kept: Kept, key: bytes | None, kid: str, source: str) -> str | None:
    which = "the pinned key" if source.startswith("pinned") else "the key"
    if _is_note(kept):
        return _note_fault(kept, key, kid)
    if kept.document["key_id"] != kid:
        return (
            f"{kept.label} is not signed by {which} {kid}: it is signed by key "
            f"{kept.document['key_id']}"
        )
    if key is None or not chain.checkpoint_signature_valid(key, kept.document):
        return (
            f"{kept.label} does not carry a valid signature by key {kid}: it was altered or forged"
        )
    if kept.document.get("note"):  # a JSON checkpoint that carries its note: both must hold
        return _note_fault(kept, key, kid)
    return None


def verify(
    export: str, checkpoint_path: str, previous_paths: Sequence[str], pinned: str | None
) -> dict[str, Any]:
    """The whole check; returns the report as a dict (``ok`` says whether it held)."""
    [newest] = _read_checkpoints(checkpoint_path, f"the checkpoint {checkpoint_path}", one=True)
    previous: list[Kept] = []
    for path in previous_paths:
        previous += _read_checkpoints(path, f"the checkpoint kept from before {path}", one=False)
    key, kid, source = _key(pinned, newest, previous)
    faults: list[tuple[int, str]] = []
    for kept in (newest, *previous):
        fault = _signature_fault(kept, key, kid, source)
        kept.signed = fault is None
        if fault:
            faults.append((0, fault))  # placed below, once the walk shows what still holds
    signed = sorted((k for k in (newest, *previous) if k.signed), key=lambda k: k.size)

    walker = chain.Walker()
    vouched: Kept | None = None  # the largest signed checkpoint the export matches
    mismatch: Kept | None = None
    forks: list[Kept] = []  # signed checkpoints that agree with the export where another does not
    upcoming = iter(signed)
    nxt = next(upcoming, None)

    def compare() -> None:
        nonlocal vouched, mismatch, nxt
        at_size: list[Kept] = []
        while nxt is not None and nxt.size == walker.report.events:
            at_size.append(nxt)
            nxt = next(upcoming, None)
        if not at_size or mismatch is not None:
            return
        root = walker.root()
        for kept in at_size:
            kept.matches = kept.root_hash == root
        wrong = [k for k in at_size if not k.matches]
        if wrong:
            mismatch = wrong[0]
            forks.extend(k for k in at_size if k.matches)
        else:
            vouched = at_size[-1]

    compare()
    ends_at = 0
    walk_failed = False
    for number, document in _events(export):
        if mismatch is not None:
            break
        if not walker.feed(document):
            seq = walker.report.first_bad_seq or walker.report.events + 1
            faults.append((seq, f"{walker.report.reason} ({export}: line {number})"))
            walk_failed = True
            break
        ends_at = walker.report.events
        compare()
    good = vouched.size if vouched else 0
    since = (
        f"events 1 to {good} match {vouched.label} (size {good})"
        if vouched
        else "no checkpoint given vouches for any earlier size"
    )
    short: int | None = None  # where the export ends, when it ends too soon
    if mismatch is not None:
        if mismatch.size == good + 1:
            reason = (
                f"event {mismatch.size} is not the event {mismatch.label} signed: history was "
                f"rewritten from event {mismatch.size} ({since})"
            )
        else:
            reason = (
                f"the export's first {mismatch.size} events do not match {mismatch.label}: "
                f"history was rewritten at an event from {good + 1} to {mismatch.size}, and "
                f"these checkpoints cannot say which ({since}); checkpoints kept at sizes in "
                "between narrow it: pass every one you kept with --previous"
            )
        if forks:
            reason += (
                f"; yet {forks[0].label} signs the export's own tree at size "
                f"{mismatch.size}: the key has signed two different histories of the log"
            )
        faults.append((good + 1, reason))
    elif not walk_failed and nxt is not None:
        short = ends_at
        beyond = [k for k in signed if k.size > ends_at]
        if newest in beyond:
            reason = (
                f"the export ends at event {ends_at}, before the checkpoint's size "
                f"{newest.size}: the export is older than the checkpoint. Export again after "
                "taking the checkpoint, and verify the two together"
            )
        else:
            largest = beyond[-1]
            reason = (
                f"the export ends at event {ends_at}, but {largest.label} covers "
                f"{largest.size} events: the log was truncated after event {ends_at} at the "
                f"latest (events {ends_at + 1} to {largest.size} are gone)"
            )
        if good < ends_at:
            reason += f"; {since}, and events {good + 1} to {ends_at} by none"
        faults.append((good + 1, reason))
    # A checkpoint not signed by the key vouches for nothing: the fault lies after what the
    # signed ones vouch for.
    faults = [(seq or good + 1, reason) for seq, reason in faults]
    first_bad = min((seq for seq, _ in faults), default=None)
    ok = not faults
    out: dict[str, Any] = {
        "ok": ok,
        "events": walker.report.events,
        "head": walker.report.head,
        "root_hash": walker.root(),
        "checkpoints_checked": sum(1 for k in signed if k.matches),
        "vouched_up_to": good,
        "key_id": kid,
        "key_pinned": pinned is not None,
        "key_source": source,
        "checkpoint": {"size": newest.size, "root_hash": newest.root_hash},
        "checked": [
            {"checkpoint": k.label, "size": k.size, "signed": k.signed, "matches": k.matches}
            for k in (newest, *previous)
        ],
    }
    if not ok:
        out["first_bad_seq"] = first_bad
        out["reason"] = "; and ".join(reason for _, reason in sorted(faults, key=lambda f: f[0]))
    if short is not None:
        out["export_ends_at"] = short
    if previous:
        largest_previous = max(previous, key=lambda k: k.size)
        out["extends"] = {
            "size": largest_previous.size,
            "root_hash": largest_previous.root_hash,
            "holds": all(k.signed and k.matches for k in previous),
        }
    out["proves"], out["cannot_prove"] = _scope(out, previous, walker.report.events)
    return out


def _scope(out: dict[str, Any], previous: list[Kept], events: int) -> tuple[list[str], list[str]]:
    """What this run showed, and what no run of it could have."""
    good = out["vouched_up_to"]
    proves = []
    if out["ok"] or good:
        proves.append(
            f"the export's events 1 to {good} are intact, linked, and exactly the ones "
            f"checkpoints signed by key {out['key_id']} committed to"
        )
    cannot = [
        "that the key is the registry's: "
        + ("it was pinned with --public-key" if out["key_pinned"] else "pin it with --public-key")
    ]
    if events > good:
        cannot.append(f"events after {good}: no checkpoint given vouches for them")
    cannot.append(
        "a rewrite of history by someone holding the signing key, signed again with it: only a "
        "checkpoint kept from before the rewrite shows it"
        + (
            " (as --previous does here, for the sizes kept)"
            if previous
            else "; pass one with --previous"
        )
    )
    return proves, cannot


# --- one entry's proof: c2sp.org/tlog-proof ---------------------------------------------


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise Unreadable(f"{path} is not UTF-8 text ({what}).") from exc
    except OSError as exc:
        raise Unreadable(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(_read_text(path, what))
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"{path} is not JSON ({what}): {exc}") from exc


def verify_proof(
    proof_path: str,
    pinned: str | None,
    decision_path: str | None = None,
    version_path: str | None = None,
) -> dict[str, Any]:
    """Check a tlog proof offline: the checkpoint's signature, the event its extra data
    holds, the event's place in the signed tree, and (given the document) that the event
    recorded that decision or that version."""
    try:
        proof = note.parse_proof(_read_text(proof_path, "a tlog proof"))
    except note.NoteError as exc:
        raise Unreadable(f"{proof_path} is not a tlog proof: {exc}") from exc
    if pinned is None:
        raise Unreadable(
            "Pin the registry's key with --public-key: its verifier key, from "
            "GET /api/v1/audit-events/verifier-key or your own copy."
        )
    faults: list[str] = []
    try:
        checkpoint_text, _ = note.split(proof.checkpoint)
        checkpoint = note.parse_checkpoint(checkpoint_text)
    except note.NoteError as exc:
        raise Unreadable(f"{proof_path}: its checkpoint is not a checkpoint note: {exc}") from exc
    if note.VKEY.fullmatch(pinned.strip()):
        try:
            verifier = note.parse_vkey(pinned)
        except note.NoteError as exc:
            raise Unreadable(f"--public-key: {exc}") from exc
    else:
        raw = _raw_key(pinned)
        if raw is None:
            raise Unreadable("--public-key must be a verifier key or an Ed25519 key in base64.")
        verifier = note.Verifier.for_key(checkpoint.origin, raw)
    try:
        note.open_note(proof.checkpoint, [verifier])
    except note.NoteError as exc:
        faults.append(f"the checkpoint is not signed by {verifier.name}'s key: {exc}")
    event: Any = None
    if proof.extra is None:
        faults.append("the proof carries no event (no extra line): nothing to tie the leaf to")
    else:
        try:
            event = json.loads(proof.extra)
        except ValueError:
            faults.append("the proof's extra data is not the event's JSON")
    if isinstance(event, dict):
        try:
            recomputed = chain.event_hash(event)
        except (KeyError, TypeError, ValueError):
            recomputed = None
        if recomputed is None or recomputed != event.get("hash"):
            faults.append("the event in the proof does not hash to the hash it carries")
        elif event.get("seq") != proof.index + 1:
            faults.append(f"the event is number {event.get('seq')}, not entry {proof.index}")
        else:
            leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
            if not merkle.verify_inclusion(
                leaf, proof.index, checkpoint.size, list(proof.path), checkpoint.root_hash
            ):
                faults.append(
                    f"the inclusion path does not lead from entry {proof.index} to the "
                    f"checkpoint's root at size {checkpoint.size}"
                )
    elif event is not None:
        faults.append("the proof's extra data is not an event")
    subject: dict[str, Any] = {}
    if decision_path is not None and isinstance(event, dict):
        decision = _read_json(decision_path, "a decision from GET /api/v1/decisions/{id}")
        subject = {"decision": decision.get("id") if isinstance(decision, dict) else None}
        wanted = ("decision.recorded", {"type": "decision", "id": subject["decision"]})
        if (event.get("action"), event.get("entity")) != wanted:
            faults.append(f"the event is not the recording of decision {subject['decision']}")
        elif (event.get("after") or {}).get("result_hash") != chain.sha256_hex(
            chain.canonical(decision)
        ):
            faults.append("the decision given is not the one the event recorded: it differs")
    if version_path is not None and isinstance(event, dict):
        version = _read_json(version_path, "a version from GET /api/v1/policies/.../versions/N")
        if not isinstance(version, dict):
            raise Unreadable(f"{version_path} is not a version (not a JSON object).")
        name = f"{version.get('policy')}/{version.get('number')}"
        subject = {"version": name}
        wanted = ("version.published", {"type": "policy_version", "id": name})
        if (event.get("action"), event.get("entity")) != wanted:
            faults.append(f"the event is not the publication of version {name}")
        elif (event.get("after") or {}).get("content_hash") != version.get("content_hash"):
            faults.append(
                f"version {name} as given has another content hash than the one published"
            )
    ok = not faults
    out: dict[str, Any] = {
        "ok": ok,
        "index": proof.index,
        "checkpoint": {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root_hash": checkpoint.root_hash.hex(),
        },
        "key": verifier.vkey,
        **subject,
    }
    if isinstance(event, dict):
        out["event"] = {k: event.get(k) for k in ("seq", "time", "action", "entity")}
    if not ok:
        out["reason"] = "; and ".join(faults)
    out["proves"] = (
        [
            f"event {proof.index + 1} is in the log of {checkpoint.size} events whose root "
            f"{verifier.name}'s key signed"
            + (", and it recorded exactly the document given" if subject else "")
        ]
        if ok
        else []
    )
    out["cannot_prove"] = [
        "that the key is the registry's: pin your own copy of it",
        "that no one holding the key signed another history: a witness's cosignature, or a "
        "checkpoint you kept, shows that",
    ]
    return out


def _fail_io(message: str) -> int:
    print(json.dumps({"ok": False, "error": message}), file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry.verify", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("export", nargs="?", help="audit-events.jsonl from the export endpoint")
    parser.add_argument(
        "checkpoint", nargs="?", help="a checkpoint: its signed note, or its JSON document"
    )
    parser.add_argument(
        "--proof", help="instead: check one entry's tlog proof (GET .../proof) offline"
    )
    parser.add_argument("--decision", help="with --proof: the decision it should prove")
    parser.add_argument("--version", help="with --proof: the policy version it should prove")
    parser.add_argument(
        "--previous",
        action="append",
        default=[],
        help="a checkpoint kept from before (or a file of them); may be repeated",
    )
    parser.add_argument(
        "--public-key",
        help="the registry's key: its C2SP verifier key, the key in base64, or its key id",
    )
    args = parser.parse_args(argv)
    if args.proof is None and (args.export is None or args.checkpoint is None):
        parser.error("give an export and a checkpoint, or --proof")
    try:
        if args.proof is not None:
            report = verify_proof(args.proof, args.public_key, args.decision, args.version)
        else:
            report = verify(args.export, args.checkpoint, args.previous, args.public_key)
    except Unreadable as exc:
        return _fail_io(str(exc))
    except Exception as exc:  # never a traceback: whatever the files hold, a clear answer
        return _fail_io(f"the files could not be checked: {type(exc).__name__}: {exc}")
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
