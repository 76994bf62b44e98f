"""A proof with every answer: a decision, or a published version, comes with a
c2sp.org/tlog-proof that anyone can check offline, with no access to the registry."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from registry import verify
from registry.services import note
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"
SLUG = "research-data"
ASKED = {
    "purpose": "research",
    "data_category": "depersonalised",
    "commercial_involvement": False,
}


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    f.catalogue()
    f.published(SLUG)
    reader, _ = f.as_role(app, "reader")
    answer = reader.post(f"{API}/decisions", json=ASKED)
    assert answer.status_code == 201, answer.get_json()
    vkey = app.test_client().get(f"{API}/audit-events/verifier-key").get_data(as_text=True)
    return {"reader": reader, "decision": answer.data, "vkey": vkey.strip(), "app": app}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = verify.main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out or err)


def _save(tmp_path: Path, name: str, content: bytes | str) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_a_decision_proof_checks_offline_and_binds_the_decision(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reader: FlaskClient = world["reader"]
    decision = json.loads(world["decision"])
    answer = reader.get(f"{API}/decisions/{decision['id']}/proof")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    text = answer.get_data(as_text=True)
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    proof = note.parse_proof(text)
    event = json.loads(proof.extra or b"")
    assert event["action"] == "decision.recorded"
    assert event["entity"] == {"type": "decision", "id": decision["id"]}
    proof_file = _save(tmp_path, "decision.tlog-proof", text)
    decision_file = _save(tmp_path, "decision.json", world["decision"])
    args = ("--proof", proof_file, "--public-key", world["vkey"])
    code, report = _run(capsys, *args, "--decision", decision_file)
    assert code == 0, report
    assert report["decision"] == decision["id"]
    assert report["index"] == event["seq"] - 1
    # The decision changed by one word is not the one the log recorded.
    altered = world["decision"].replace(b'"research"', b'"planning"', 1)
    code, report = _run(capsys, *args, "--decision", _save(tmp_path, "other.json", altered))
    assert code == 1
    assert "not the one the event recorded" in report["reason"]


def _bent(text: str, how: str) -> str:
    proof = note.parse_proof(text)
    if how == "path":
        path = (bytes(32), *proof.path[1:])
        return note.Proof(proof.index, path, proof.checkpoint, proof.extra).text
    if how == "index":
        return note.Proof(proof.index + 1, proof.path, proof.checkpoint, proof.extra).text
    if how == "event":
        event = json.loads(proof.extra or b"")
        event["after"]["outcome"] += " (rewritten)"
        extra = json.dumps(event).encode()
        return note.Proof(proof.index, proof.path, proof.checkpoint, extra).text
    if how == "checkpoint":
        signed_text, signatures = note.split(proof.checkpoint)
        lines = signed_text.split("\n")
        lines[2] = base64.b64encode(bytes(32)).decode()
        forged = "\n".join(lines) + "\n" + signatures[0].line
        return note.Proof(proof.index, proof.path, forged, proof.extra).text
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "complaint"),
    [
        ("path", "does not lead from entry"),
        ("index", "not entry"),
        ("event", "does not hash to the hash it carries"),
        ("checkpoint", "is not signed by"),
    ],
)
def test_a_bent_proof_is_refused_naming_what_is_wrong(
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: str,
    complaint: str,
) -> None:
    decision = json.loads(world["decision"])
    text = world["reader"].get(f"{API}/decisions/{decision['id']}/proof").get_data(as_text=True)
    bent = _save(tmp_path, "bent.tlog-proof", _bent(text, how))
    code, report = _run(capsys, "--proof", bent, "--public-key", world["vkey"])
    assert code == 1
    assert complaint in report["reason"]


def test_a_proof_checked_with_another_key_vouches_for_nothing(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decision = json.loads(world["decision"])
    text = world["reader"].get(f"{API}/decisions/{decision['id']}/proof").get_data(as_text=True)
    stranger = note.Verifier.for_key(
        world["app"].config["LOG_ORIGIN"], note.raw_public_key(Ed25519PrivateKey.generate())
    )
    proof_file = _save(tmp_path, "p.tlog-proof", text)
    code, report = _run(capsys, "--proof", proof_file, "--public-key", stranger.vkey)
    assert code == 1
    assert "is not signed by" in report["reason"]
    code, report = _run(capsys, "--proof", proof_file)
    assert code == 2
    assert "verifier-key" in report["error"]


def test_only_those_who_may_read_a_decision_get_its_proof(world: dict[str, Any]) -> None:
    app: Flask = world["app"]
    decision = json.loads(world["decision"])
    stranger, _ = f.as_role(app, "reader", org=f.organisation("Another trust"))
    assert_problem(stranger.get(f"{API}/decisions/{decision['id']}/proof"), 404)
    assert_problem(app.test_client().get(f"{API}/decisions/{decision['id']}/proof"), 401)
    auditor, _ = f.as_role(app, "auditor")
    assert auditor.get(f"{API}/decisions/{decision['id']}/proof").status_code == 200


def test_a_published_version_has_a_public_proof_and_a_draft_has_none(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app: Flask = world["app"]
    client = app.test_client()
    text = client.get(f"{API}/policies/{SLUG}/versions/1/proof").get_data(as_text=True)
    version = client.get(f"{API}/policies/{SLUG}/versions/1").data
    args = ("--proof", _save(tmp_path, "v.tlog-proof", text), "--public-key", world["vkey"])
    code, report = _run(capsys, *args, "--version", _save(tmp_path, "v.json", version))
    assert code == 0, report
    assert report["version"] == f"{SLUG}/1"
    other = json.loads(version) | {"content_hash": "0" * 64}
    code, report = _run(capsys, *args, "--version", _save(tmp_path, "o.json", json.dumps(other)))
    assert code == 1
    assert "another content hash" in report["reason"]
    editor, _ = f.as_role(app, "editor")
    assert editor.post(f"{API}/policies/{SLUG}/versions", json={}).status_code == 201
    assert_problem(editor.get(f"{API}/policies/{SLUG}/versions/2/proof"), 404)


def test_a_decision_cites_its_own_place_in_the_log(world: dict[str, Any]) -> None:
    """The index is in the decision itself, so it is in the bytes that are cited, and it
    is where the proof finds the event, however other writes interleave."""
    app: Flask = world["app"]
    reader: FlaskClient = world["reader"]
    auditor, _ = f.as_role(app, "auditor")
    cited = []
    for i in range(3):
        f.organisation(f"Between {i}")  # another write, another event, between decisions
        cited.append(reader.post(f"{API}/decisions", json=ASKED).get_json())
    for decision in [json.loads(world["decision"]), *cited]:
        assert decision["log"]["origin"] == app.config["LOG_ORIGIN"]
        index = decision["log"]["index"]
        event = auditor.get(f"{API}/audit-events?entity_type=decision&entity_id={decision['id']}")
        [recorded] = event.get_json()
        assert recorded["seq"] == index + 1
        proof = note.parse_proof(
            reader.get(f"{API}/decisions/{decision['id']}/proof").get_data(as_text=True)
        )
        assert proof.index == index
