"""The registry as a witness of another log (c2sp.org/tlog-witness, add-checkpoint): it
cosigns a checkpoint only if the log signed it and it extends, by a consistency proof,
the last one it cosigned; a fork, a rollback or a stranger's key is refused with the
spec's status and nothing is recorded."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from registry.keys import load_signing_key
from registry.services import note
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"
NAME = "witness.example/w1"


@pytest.fixture
def log(app: Flask) -> Flask:
    for i in range(5):
        f.organisation(f"Trust {i}")
    return app


@pytest.fixture
def witness(log: Flask, make_app: Any, tmp_path: Path) -> FlaskClient:
    vkey = log.test_client().get(f"{API}/audit-events/verifier-key").get_data(as_text=True)
    other = note.Verifier.for_key("other.example/log", bytes(32))
    app = make_app(
        WITNESS_NAME=NAME,
        WITNESS_KEY_FILE=str(tmp_path / "witness.pem"),
        WITNESS_LOGS=f"{vkey.strip()}, {other.vkey}",
    )
    return app.test_client()


def _checkpoint(log: Flask) -> str:
    return log.test_client().get(f"{API}/log/checkpoint").get_data(as_text=True)


def _size(checkpoint: str) -> int:
    return note.parse_checkpoint(note.split(checkpoint)[0]).size


def _proof(log: Flask, old: int, new: int) -> list[str]:
    if old == 0 or old == new:
        return []
    answer = log.test_client().get(f"{API}/audit-events/consistency?from={old}&to={new}")
    return [base64.b64encode(bytes.fromhex(n)).decode() for n in answer.get_json()["proof"]]


def _submit(client: FlaskClient, old: int, proof: list[str], checkpoint: str) -> Any:
    body = f"old {old}\n" + "".join(p + "\n" for p in proof) + "\n" + checkpoint
    return client.post("/witness/add-checkpoint", data=body, content_type="text/plain")


def _witness_key(client: FlaskClient) -> tuple[str, bytes]:
    return note.parse_cosigner_vkey(client.get("/witness/verifier-key").get_data(as_text=True))


def test_the_witness_cosigns_a_log_that_grows_consistently(
    log: Flask, witness: FlaskClient
) -> None:
    first = _checkpoint(log)
    answer = _submit(witness, 0, [], first)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    name, public = _witness_key(witness)
    assert name == NAME
    text = note.split(first)[0]
    [line] = note.split(text + "\n" + answer.get_data(as_text=True))[1]
    assert note.cosignature_time(text, line, NAME, public) is not None
    # The log grows; the witness follows, with a consistency proof from what it holds.
    for i in range(3):
        f.organisation(f"More {i}")
    second = _checkpoint(log)
    grown = _submit(witness, _size(first), _proof(log, _size(first), _size(second)), second)
    assert grown.status_code == 200, grown.get_data(as_text=True)
    origin = log.config["LOG_ORIGIN"]
    kept = witness.get(f"/witness/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint")
    assert kept.status_code == 200
    assert kept.get_data(as_text=True) == second + grown.get_data(as_text=True)
    # Submitting the same checkpoint again is consistent (same size, same root).
    assert _submit(witness, _size(second), [], second).status_code == 200


def test_a_stale_old_size_is_a_409_with_the_size_the_witness_holds(
    log: Flask, witness: FlaskClient
) -> None:
    first = _checkpoint(log)
    assert _submit(witness, 0, [], first).status_code == 200
    answer = _submit(witness, 0, [], first)
    assert answer.status_code == 409
    assert answer.headers["Content-Type"] == "text/x.tlog.size"
    assert answer.get_data(as_text=True) == f"{_size(first)}\n"


def _forged(key: Ed25519PrivateKey, origin: str, size: int, root: bytes) -> str:
    text = note.Checkpoint(origin, size, root).text
    return text + "\n" + note.sign(text, origin, key)


def test_a_fork_signed_with_the_logs_own_key_is_refused(
    log: Flask, witness: FlaskClient, signing_key_file: Path
) -> None:
    """Whoever holds the log's key and rewrites history can sign the rewrite; the witness,
    holding the last root it cosigned, refuses it."""
    first = _checkpoint(log)
    size = _size(first)
    assert _submit(witness, 0, [], first).status_code == 200
    key = load_signing_key(str(signing_key_file))
    origin = log.config["LOG_ORIGIN"]
    same_size = _forged(key, origin, size, hashlib.sha256(b"another history").digest())
    assert_problem(_submit(witness, size, [], same_size), 422)
    larger = _forged(key, origin, size + 1, hashlib.sha256(b"a longer rewrite").digest())
    bogus = [base64.b64encode(hashlib.sha256(b"x").digest()).decode()]
    assert_problem(_submit(witness, size, bogus, larger), 422)
    # The witness still holds the genuine checkpoint.
    kept = witness.get(f"/witness/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint")
    assert kept.get_data(as_text=True).startswith(first)


def test_what_the_witness_must_refuse_it_refuses(
    log: Flask, witness: FlaskClient, signing_key_file: Path
) -> None:
    first = _checkpoint(log)
    size = _size(first)
    stranger = Ed25519PrivateKey.generate()
    origin = log.config["LOG_ORIGIN"]
    root = note.parse_checkpoint(note.split(first)[0]).root_hash
    assert_problem(_submit(witness, 0, [], _forged(stranger, origin, size, root)), 403)
    unknown = _forged(stranger, "unknown.example/log", size, root)
    assert_problem(_submit(witness, 0, [], unknown), 404)
    assert_problem(_submit(witness, size + 1, [], first), 400)
    proof = [base64.b64encode(bytes(32)).decode()]
    assert_problem(_submit(witness, 0, proof, first), 422)
    key = load_signing_key(str(signing_key_file))
    empty = _forged(key, origin, 0, hashlib.sha256(b"not empty").digest())
    assert_problem(_submit(witness, 0, [], empty), 422)
    for malformed in ("no blank line", "new 3\n\n" + first, "old 03\n\n" + first):
        answer = witness.post("/witness/add-checkpoint", data=malformed, content_type="text/plain")
        assert_problem(answer, 400)
    # Nothing of it was recorded: the first genuine submission is still from size 0.
    assert _submit(witness, 0, [], first).status_code == 200


def test_a_registry_that_is_not_a_witness_says_so(log: Flask) -> None:
    client = log.test_client()
    assert_problem(client.post("/witness/add-checkpoint", data="old 0\n\n"), 404)
    assert_problem(client.get("/witness/verifier-key"), 404)


def test_a_witness_will_not_sign_with_the_logs_own_key(make_app: Any) -> None:
    with pytest.raises(ValueError, match="its own key"):
        make_app(WITNESS_NAME=NAME, WITNESS_KEY_FILE=make_app().config["SIGNING_KEY_FILE"])
