"""Signed notes and transparency log checkpoints, as C2SP specifies them.

- c2sp.org/signed-note: a text ending in a newline, a blank line, then one or more
  signature lines ``— <key name> base64(key ID || signature)``; Ed25519 keys have the
  key ID ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` and the verifier key
  ``<name>+<hex key ID>+base64(0x01 || public key)``.
- c2sp.org/tlog-checkpoint: the note text is the log's origin, its tree size and the
  base64 RFC 6962 root hash, one per line.

Pure functions, no Flask and no database: the registry signs with them and the
standalone verifier checks with them. Other people's tools (Go's
``golang.org/x/mod/sumdb/note``, Sigsum, Trillian Tessera) read the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
DASH = "\u2014"
# Verifiers must accept at least 16 signatures; a note with more than this is refused.
MAX_SIGNATURES = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_SIGNATURE_LINE = re.compile(f"{DASH} (\\S+) (\\S+)")


class NoteError(ValueError):
    """A note (or a key, or a checkpoint) that is malformed, or not verified."""


@dataclass(frozen=True)
class Verifier:
    """A key a note may be signed by: its name, its 4-byte ID and the Ed25519 public key."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def for_key(cls, name: str, public_key: bytes) -> Verifier:
        _check_name(name)
        return cls(name, key_id(name, public_key), public_key)

    @property
    def vkey(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verifies(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Checkpoint:
    """The note text of a checkpoint: origin, tree size, root hash (and extension lines)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def raw_public_key(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: bytes, signature_type: int = ED25519) -> int:
    """The key ID the signed-note spec recommends (and the checkpoint spec expects)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key)
    return int(struct.unpack(">I", digest.digest()[:4])[0])


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"A key name must be non-empty, with no spaces and no '+': {name!r}.")


VKEY = re.compile(r"[^+\s]+\+[0-9a-f]{8}\+\S+")


def _parse_vkey(vkey: str, signature_type: int) -> tuple[str, bytes]:
    """(name, public key) of a verifier key of ``signature_type``, checked against its ID."""
    parts = vkey.strip().split("+", 2)  # the base64 key may hold '+' itself
    if len(parts) != 3:
        raise NoteError("A verifier key is <name>+<key ID in hex>+<base64 key>.")
    name, hex_id, material = parts
    _check_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise NoteError(f"The key ID of a verifier key is 8 lowercase hex digits: {hex_id!r}.")
    try:
        raw = base64.b64decode(material, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("The key of a verifier key is not base64.") from exc
    if len(raw) != 33 or raw[0] != signature_type:
        raise NoteError(
            f"Only Ed25519 verifier keys of type 0x{signature_type:02x} (32 bytes) serve here."
        )
    if key_id(name, raw[1:], signature_type) != int(hex_id, 16):
        raise NoteError(f"The verifier key's ID {hex_id} is not the ID of its key and name.")
    return name, raw[1:]


def parse_vkey(vkey: str) -> Verifier:
    """A log's verifier key ``name+hexid+base64(0x01 || key)``."""
    name, public_key = _parse_vkey(vkey, ED25519)
    return Verifier.for_key(name, public_key)


def signature(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """base64(key ID || Ed25519 signature) of ``name``'s key over ``text``."""
    return signature_by(text, Verifier.for_key(name, raw_public_key(private_key)), private_key)


def signature_by(text: str, verifier: Verifier, private_key: Ed25519PrivateKey) -> str:
    """The same, for a key whose verifier (name and key ID) is already known."""
    _check_text(text)
    signed = struct.pack(">I", verifier.key_id) + private_key.sign(text.encode())
    return base64.b64encode(signed).decode()


def sign(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signature line (with its newline) of ``name``'s Ed25519 key over ``text``."""
    return f"{DASH} {name} {signature(text, name, private_key)}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("A note's text ends with a newline.")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("A note holds no control character but the newline.")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        packed = struct.pack(">I", self.key_id) + self.signature
        return f"{DASH} {self.name} {base64.b64encode(packed).decode()}\n"


def split(note: str) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a note, parsed but not verified."""
    _check_text(note)
    cut = note.rfind("\n\n")
    if cut == -1:
        raise NoteError("A signed note has a blank line between its text and its signatures.")
    text, block = note[: cut + 1], note[cut + 2 :]
    lines = block.split("\n")
    if lines[-1] != "" or len(lines) < 2:
        raise NoteError("A signed note has at least one signature line, each ending in a newline.")
    if len(lines) - 1 > MAX_SIGNATURES:
        raise NoteError(f"The note has more than {MAX_SIGNATURES} signatures.")
    signatures = []
    for line in lines[:-1]:
        matched = _SIGNATURE_LINE.fullmatch(line)
        if matched is None:
            raise NoteError(f"Not a signature line: {line[:80]!r}.")
        name, encoded = matched.groups()
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"The signature of {name} is not base64.") from exc
        if len(raw) < 5:
            raise NoteError(f"The signature of {name} is too short to hold a key ID.")
        signatures.append(Signature(name, int(struct.unpack(">I", raw[:4])[0]), raw[4:]))
    return text, signatures


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The text of ``note`` and the known keys that signed it.

    As the spec says: signatures by unknown keys are ignored; a signature by a known key
    (name and ID both match) that does not verify rejects the whole note; a note with no
    verified signature by a known key is rejected.
    """
    text, signatures = split(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    signed: list[Verifier] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verifies(text.encode(), signature.signature):
            raise NoteError(f"The signature of {verifier.name} does not verify.")
        if verifier not in signed:
            signed.append(verifier)
    if not signed:
        raise NoteError("The note is not signed by any key it was checked against.")
    return text, signed


def decode_hash(line: str, what: str) -> bytes:
    """A base64 SHA-256 hash on a line of its own (a root, a proof line)."""
    try:
        value = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is a base64 hash.") from exc
    if len(value) != 32:
        raise NoteError(f"{what} is 32 bytes (SHA-256).")
    return value


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint's note text: origin, size and root hash, per c2sp.org/tlog-checkpoint."""
    if not text.endswith("\n"):
        raise NoteError("A checkpoint's text ends with a newline.")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("A checkpoint is at least three non-empty lines: origin, size, root.")
    origin, size, root = lines[:3]
    if not _DECIMAL.fullmatch(size):
        raise NoteError(f"A checkpoint's size is a decimal with no leading zero: {size!r}.")
    root_hash = decode_hash(root, "A checkpoint's root hash")
    return Checkpoint(origin, int(size), root_hash, tuple(lines[3:]))


# --- c2sp.org/tlog-proof: an entry's inclusion, checkable offline ---------------------------

PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class Proof:
    """An entry's index, its inclusion path (leaf's sibling first) and the checkpoint the
    path leads to, with optional opaque extra data (not authenticated by the proof)."""

    index: int
    path: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None

    @property
    def text(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(node).decode() for node in self.path]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def parse_proof(text: str) -> Proof:
    """A tlog-proof, parsed; its checkpoint and path are checked by whoever reads it."""
    head, blank, checkpoint = text.partition("\n\n")
    if not blank:
        raise NoteError("A tlog proof has a blank line before its checkpoint.")
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise NoteError(f"A tlog proof starts with the line {PROOF_HEADER}.")
    lines = lines[1:]
    extra = None
    if lines and lines[0].startswith("extra "):
        try:
            extra = base64.b64decode(lines[0][len("extra ") :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("The extra line of a tlog proof is base64.") from exc
        lines = lines[1:]
    if not lines or not lines[0].startswith("index ") or not _DECIMAL.fullmatch(lines[0][6:]):
        raise NoteError("A tlog proof names the entry's index: index <decimal>.")
    index = int(lines[0][6:])
    path = tuple(decode_hash(line, "Each inclusion proof line") for line in lines[1:])
    return Proof(index, path, checkpoint, extra)


# --- c2sp.org/tlog-cosignature: a witness's timestamped Ed25519 cosignature ---------------

COSIGNATURE_ED25519 = 0x04


def cosigner_key_id(name: str, public_key: bytes) -> int:
    return key_id(name, public_key, COSIGNATURE_ED25519)


def cosigner_vkey(name: str, public_key: bytes) -> str:
    """A cosigner's verifier key: ``name+hexid+base64(0x04 || key)``."""
    _check_name(name)
    material = base64.b64encode(bytes([COSIGNATURE_ED25519]) + public_key).decode()
    return f"{name}+{cosigner_key_id(name, public_key):08x}+{material}"


def _cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(checkpoint_text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """The cosignature line of ``name``'s key over a checkpoint's text, at ``timestamp``
    (POSIX seconds): the statement that it is the largest consistent tree seen then."""
    _check_text(checkpoint_text)
    if not 0 < timestamp < 2**63:
        raise NoteError("A cosignature's timestamp is between 1 and 2**63 - 1.")
    public = raw_public_key(private_key)
    signature = private_key.sign(_cosigned_message(checkpoint_text, timestamp))
    packed = struct.pack(">IQ", cosigner_key_id(name, public), timestamp) + signature
    return f"{DASH} {name} {base64.b64encode(packed).decode()}\n"


def cosignature_time(
    checkpoint_text: str, signature: Signature, name: str, public_key: bytes
) -> int | None:
    """The timestamp of a valid cosignature by ``name``'s key; None if it is not one."""
    if signature.name != name or signature.key_id != cosigner_key_id(name, public_key):
        return None
    if len(signature.signature) != 8 + 64:
        return None
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature.signature[8:], _cosigned_message(checkpoint_text, timestamp)
        )
    except (InvalidSignature, ValueError):
        return None
    return int(timestamp)


def parse_cosigner_vkey(vkey: str) -> tuple[str, bytes]:
    """(name, public key) of a cosigner's verifier key (type 0x04)."""
    return _parse_vkey(vkey, COSIGNATURE_ED25519)
