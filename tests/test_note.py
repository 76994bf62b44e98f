"""Checkpoints as C2SP signed notes: the format, the keys, and what the API serves.

The known answer comes from c2sp.org/signed-note itself: its example verifier key must
verify its example note, byte for byte.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from registry import verify
from registry.services import note
from tests import factories as f

API = "/api/v1"
AS_JSON = {"Accept": "application/json"}
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOB"
    "H3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_specs_own_example_verifies() -> None:
    verifier = note.parse_vkey(SPEC_VKEY)
    assert verifier.vkey == SPEC_VKEY
    text, signed = note.open_note(SPEC_NOTE, [verifier])
    assert text == "This is an example message.\n"
    assert signed == [verifier]
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(SPEC_NOTE.replace("example message", "example massage"), [verifier])


def test_a_note_signed_here_has_the_key_id_the_spec_defines() -> None:
    key = Ed25519PrivateKey.generate()
    raw = note.raw_public_key(key)
    verifier = note.Verifier.for_key("registry.example/log", raw)
    import hashlib

    expected = hashlib.sha256(b"registry.example/log\n\x01" + raw).digest()[:4]
    assert struct.pack(">I", verifier.key_id) == expected
    line = note.sign("hello\n", "registry.example/log", key)
    assert line.startswith("\u2014 registry.example/log ") and line.endswith("\n")
    assert base64.b64decode(line.split(" ")[2])[:4] == expected
    assert note.open_note("hello\n\n" + line, [verifier])[0] == "hello\n"
    assert note.parse_vkey(verifier.vkey) == verifier


def test_unknown_keys_are_ignored_and_a_known_key_that_fails_rejects_the_note() -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    mine = note.Verifier.for_key("a.example/log", note.raw_public_key(ours))
    text = "a.example/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"
    witness = note.sign(text, "w.example/w", theirs)
    signed = text + "\n" + note.sign(text, "a.example/log", ours) + witness
    assert note.open_note(signed, [mine])[1] == [mine]
    with pytest.raises(note.NoteError, match="not signed by any key"):
        note.open_note(text + "\n" + witness, [mine])
    # The same name and ID as a known key, a signature that does not verify: rejected,
    # even beside a good one.
    forged = note.Signature("a.example/log", mine.key_id, bytes(64)).line
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(signed + forged, [mine])


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("text\n", "blank line"),
        ("text\n\n", "at least one signature"),
        ("text\n\nnot a signature\n", "Not a signature line"),
        ("te\x07xt\n\n\u2014 k AAAAAAA=\n", "control character"),
        ("text\n\n\u2014 k !!!!\n", "not base64"),
        ("text\n\n\u2014 k AAAA\n", "too short"),
        ("text\n\n\u2014 k+x AAAAAAA=\n", "no spaces and no"),
        ("text\n\n\u2014 k AAAAAAA=", "ends with a newline"),
        ("text\n\n" + "\u2014 k AAAAAAA=\n" * 101, "more than 100"),
    ],
)
def test_a_malformed_note_is_refused_saying_why(written: str, complaint: str) -> None:
    with pytest.raises(note.NoteError, match=complaint):
        note.split(written)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("origin\n12\n", "three non-empty lines"),
        ("origin\n012\n" + base64.b64encode(bytes(32)).decode() + "\n", "no leading zero"),
        ("origin\n12\n" + base64.b64encode(bytes(31)).decode() + "\n", "32 bytes"),
        ("origin\n12\n%%%\n", "base64"),
        ("origin\n12\n" + base64.b64encode(bytes(32)).decode() + "\n\n", "non-empty"),
    ],
)
def test_a_malformed_checkpoint_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(note.NoteError, match=complaint):
        note.parse_checkpoint(text)


def test_a_verifier_key_whose_base64_holds_a_plus_is_read_whole() -> None:
    while True:
        verifier = note.Verifier.for_key(
            "r.example/log", note.raw_public_key(Ed25519PrivateKey.generate())
        )
        if "+" in verifier.vkey.split("+", 2)[2]:
            break
    assert note.parse_vkey(verifier.vkey) == verifier
    name, kid, key = verifier.vkey.split("+", 2)
    with pytest.raises(note.NoteError, match="not the ID"):
        note.parse_vkey(f"{name}+{(verifier.key_id ^ 1):08x}+{key}")
    with pytest.raises(note.NoteError, match="type 0x01"):
        note.parse_vkey(f"{name}+{kid}+" + base64.b64encode(b"\x02" + bytes(32)).decode())


# --- what the API serves -------------------------------------------------------------------


@pytest.fixture
def logged(app: Flask) -> Flask:
    f.catalogue()
    f.published("research-data")
    return app


def test_the_checkpoint_is_a_signed_note_by_default_and_json_when_asked(logged: Flask) -> None:
    client = logged.test_client()
    vkey = client.get(f"{API}/audit-events/verifier-key")
    assert vkey.status_code == 200
    assert vkey.headers["Content-Type"] == "text/plain; charset=utf-8"
    verifier = note.parse_vkey(vkey.get_data(as_text=True))
    assert verifier.name == logged.config["LOG_ORIGIN"]
    answer = client.get(f"{API}/audit-events/checkpoint")
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    text, _ = note.open_note(answer.get_data(as_text=True), [verifier])
    checkpoint = note.parse_checkpoint(text)
    as_json = client.get(f"{API}/audit-events/checkpoint", headers={"Accept": "application/json"})
    document = as_json.get_json()
    assert (checkpoint.origin, checkpoint.size) == (verifier.name, document["size"])
    assert checkpoint.root_hash.hex() == document["root_hash"]
    assert document["note"] == answer.get_data(as_text=True)
    assert document["verifier_key"] == verifier.vkey
    # A browser, or curl, asks for */*: the note.
    browsing = client.get(f"{API}/audit-events/checkpoint", headers={"Accept": "*/*"})
    assert browsing.mimetype == "text/plain"


def test_the_origin_is_configurable_and_must_be_a_key_name(make_app: Any) -> None:
    named = make_app(LOG_ORIGIN="registry.london.example/audit")
    with named.app_context():
        f.catalogue()
        f.published("research-data")
    client = named.test_client()
    vkey = client.get(f"{API}/audit-events/verifier-key").get_data(as_text=True)
    assert vkey.startswith("registry.london.example/audit+")
    signed = client.get(f"{API}/audit-events/checkpoint").get_data(as_text=True)
    assert signed.startswith("registry.london.example/audit\n")
    with pytest.raises(note.NoteError, match="no spaces"):
        make_app(LOG_ORIGIN="London registry")


# --- the standalone verifier reads notes ------------------------------------------------------


def _files(logged: Flask, tmp_path: Path) -> tuple[str, str, str]:
    client = logged.test_client()
    older = client.get(f"{API}/audit-events/checkpoint").get_data(as_text=True)
    f.published("another-policy")
    newer = client.get(f"{API}/audit-events/checkpoint").get_data(as_text=True)
    auditor, _ = f.as_role(logged, "auditor")
    (tmp_path / "export.jsonl").write_bytes(auditor.get(f"{API}/audit-events/export").data)
    (tmp_path / "older.txt").write_text(older)
    (tmp_path / "newer.txt").write_text(newer)
    vkey = client.get(f"{API}/audit-events/verifier-key").get_data(as_text=True).strip()
    return str(tmp_path / "export.jsonl"), vkey, newer


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = verify.main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out or err)


def test_the_verifier_checks_notes_against_the_verifier_key(
    logged: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, vkey, newer = _files(logged, tmp_path)
    older, latest = str(tmp_path / "older.txt"), str(tmp_path / "newer.txt")
    code, report = _run(capsys, export, latest, "--previous", older, "--public-key", vkey)
    assert code == 0, report
    assert report["checkpoints_checked"] == 2
    # A note alone carries no key: say how to pin one.
    code, report = _run(capsys, export, latest)
    assert code == 2
    assert "verifier-key" in report["error"]
    # A note whose root was changed, still with the genuine signature line, is refused.
    text, signatures = note.split(newer)
    root = note.parse_checkpoint(text).root_hash
    forged = text.replace(base64.b64encode(root).decode(), base64.b64encode(bytes(32)).decode())
    (tmp_path / "forged.txt").write_text(forged + "\n" + signatures[0].line)
    code, report = _run(capsys, export, str(tmp_path / "forged.txt"), "--public-key", vkey)
    assert code == 1
    assert "is not a note signed by key" in report["reason"]
    # Another log's key, even under the same name, vouches for nothing.
    stranger = note.Verifier.for_key(
        logged.config["LOG_ORIGIN"], note.raw_public_key(Ed25519PrivateKey.generate())
    )
    code, report = _run(capsys, export, latest, "--public-key", stranger.vkey)
    assert code == 1


def test_a_note_signature_edited_behind_the_back_fails_verification(logged: Flask) -> None:
    """The JSON signature still holds; the note's does not: the registry's own check says
    which checkpoint, and the API would have served a note no one can verify."""
    from sqlalchemy import text

    from registry.db import db
    from registry.services import audit
    from tests.support.tamper import behind_the_back

    size = logged.test_client().get(f"{API}/audit-events/checkpoint", headers=AS_JSON).json["size"]
    other = note.signature("x\n", logged.config["LOG_ORIGIN"], Ed25519PrivateKey.generate())
    with behind_the_back() as conn:
        conn.execute(
            text("UPDATE audit_checkpoints SET note_signature = :s WHERE size = :n"),
            {"s": other, "n": size},
        )
    db.session.remove()
    report = audit.verify(db.session())
    assert not report.ok
    assert (report.reason or "").startswith(
        f"the checkpoint at size {size} is not signed by the registry's key"
    ), report.reason
