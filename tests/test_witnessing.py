"""Two registries that witness each other (c2sp.org/tlog-witness, both ways): each
submits its checkpoints to the other and keeps the cosignature; a witness that is down
holds no write back and catches up; a forked history is refused by the witness, which
keeps the checkpoint it cosigned."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from registry.checkpoints import Checkpointer
from registry.db import db
from registry.keys import load_signing_key
from registry.models.audit import WitnessProgress
from registry.services import note, witnessing
from tests import factories as f
from tests.support.tamper import behind_the_back

API = "/api/v1"


@dataclass
class Registry:
    app: Flask
    origin: str
    witness_name: str
    witness_vkey: str

    def write(self, count: int) -> None:
        with self.app.app_context():
            for _ in range(count):
                f.organisation()

    def submit(self, post: witnessing.Post) -> dict[str, str]:
        with self.app.app_context():
            outcome = witnessing.submit(
                db.session(), self.app.extensions["registry.witnesses"], post
            )
            db.session.remove()
            return outcome

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.app.test_client().get(path, **kwargs)


@pytest.fixture
def pair(
    app: Flask, make_app: Callable[..., Flask], fresh_database: str, tmp_path: Path
) -> tuple[Registry, Registry]:
    keys = {name: tmp_path / f"{name}.pem" for name in ("a-log", "a-wit", "b-log", "b-wit")}
    raw = {name: note.raw_public_key(load_signing_key(str(path))) for name, path in keys.items()}
    log_vkey = {
        side: note.Verifier.for_key(f"{side}.example/log", raw[f"{side}-log"]).vkey for side in "ab"
    }
    witness_vkey = {
        side: note.cosigner_vkey(f"{side}.example/witness", raw[f"{side}-wit"]) for side in "ab"
    }
    other = {"a": "b", "b": "a"}

    def build(side: str, **database: Any) -> Registry:
        peer = other[side]
        made = make_app(
            SIGNING_KEY_FILE=str(keys[f"{side}-log"]),
            LOG_ORIGIN=f"{side}.example/log",
            WITNESS_NAME=f"{side}.example/witness",
            WITNESS_KEY_FILE=str(keys[f"{side}-wit"]),
            WITNESS_LOGS=log_vkey[peer],
            WITNESSES=f"http://{peer}.test/witness {witness_vkey[peer]}",
            WITNESS_QUORUM=1,
            **database,
        )
        return Registry(made, f"{side}.example/log", f"{side}.example/witness", witness_vkey[side])

    a = build("a")
    b = build("b", SQLALCHEMY_DATABASE_URI=fresh_database)
    with b.app.app_context():
        upgrade()
    return a, b


def router(*registries: Registry, down: set[str] | None = None) -> witnessing.Post:
    """HTTP between the registries, in process: a.test is a, b.test is b."""
    by_host = {f"{r.origin.split('.')[0]}.test": r for r in registries}

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if down and parts.netloc in down:
            raise ConnectionRefusedError(f"{parts.netloc} is down")
        answer = (
            by_host[parts.netloc]
            .app.test_client()
            .post(parts.path, data=body, content_type="text/plain")
        )
        return answer.status_code, answer.data

    return post


def _witnessed(registry: Registry) -> tuple[note.Checkpoint, list[note.Signature]]:
    answer = registry.get(f"{API}/audit-events/checkpoint?witnessed=1")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    text, signatures = note.split(answer.get_data(as_text=True))
    return note.parse_checkpoint(text), signatures


def test_two_registries_witness_each_other(pair: tuple[Registry, Registry]) -> None:
    a, b = pair
    post = router(a, b)
    a.write(3)
    b.write(2)
    assert a.get(f"{API}/audit-events/checkpoint?witnessed=1").status_code == 404
    assert a.submit(post) == {"b.example/witness": "cosigned"}
    assert b.submit(post) == {"a.example/witness": "cosigned"}
    for registry, witness in ((a, b), (b, a)):
        checkpoint, signatures = _witnessed(registry)
        name, key = note.parse_cosigner_vkey(witness.witness_vkey)
        text = checkpoint.text
        assert [note.cosignature_time(text, s, name, key) is not None for s in signatures] == [
            False,  # the log's own signature
            True,  # the witness's cosignature
        ]
        report = registry.get(f"{API}/audit-events/verify").get_json()
        assert report["witnessed_size"] == checkpoint.size
    # Each grows; the witness follows by a consistency proof from what it cosigned.
    a.write(4)
    assert a.submit(post) == {"b.example/witness": "cosigned"}
    assert a.submit(post) == {"b.example/witness": "already cosigned"}
    grown, _ = _witnessed(a)
    with a.app.app_context():
        assert db.session.get(WitnessProgress, "b.example/witness").size == grown.size


def test_a_witness_that_is_down_holds_nothing_back_and_catches_up(
    pair: tuple[Registry, Registry],
) -> None:
    a, b = pair
    a.write(2)
    assert a.submit(router(a, b)) == {"b.example/witness": "cosigned"}
    first, _ = _witnessed(a)
    a.write(3)  # writes go on while b is down
    outcome = a.submit(router(a, b, down={"b.test"}))
    assert outcome["b.example/witness"].startswith("unreachable")
    assert _witnessed(a)[0].size == first.size  # still the last one witnessed
    with a.app.app_context():
        progress = db.session.get(WitnessProgress, "b.example/witness")
        assert progress.size == first.size and "down" in (progress.last_error or "")
    a.write(1)
    assert a.submit(router(a, b)) == {"b.example/witness": "cosigned"}
    assert _witnessed(a)[0].size > first.size


def test_a_forked_history_is_refused_and_the_witness_keeps_what_it_cosigned(
    pair: tuple[Registry, Registry],
) -> None:
    """Whoever holds a's key and database replaces its history and signs the new one.
    b cosigned the old one: it refuses the fork, and still serves the checkpoint it
    cosigned, which anyone can hold against a."""
    a, b = pair
    post = router(a, b)
    a.write(3)
    assert a.submit(post) == {"b.example/witness": "cosigned"}
    genuine, _ = _witnessed(a)
    with a.app.app_context(), behind_the_back() as conn:
        for table in ("checkpoint_cosignatures", "audit_tree_nodes"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("DELETE FROM audit_checkpoints"))
        conn.execute(text("DELETE FROM audit_events"))
        conn.execute(
            text("UPDATE audit_head SET size = 0, hash = :h, frontier = '[]'"), {"h": "0" * 64}
        )
    a.write(genuine.size + 2)  # another history, longer, signed with the same key
    outcome = a.submit(post)["b.example/witness"]
    assert outcome.startswith("422"), outcome
    origin = hashlib.sha256(a.origin.encode()).hexdigest()
    kept = b.get(f"/witness/{origin}/checkpoint").get_data(as_text=True)
    held = note.parse_checkpoint(note.split(kept)[0])
    assert (held.size, held.root_hash) == (genuine.size, genuine.root_hash)
    assert a.get(f"{API}/audit-events/checkpoint?witnessed=1").status_code == 404


def test_witnesses_are_configured_as_url_and_key() -> None:
    with pytest.raises(ValueError, match="submission prefix URL"):
        witnessing.parse_witnesses("not-a-url someone+00000000+AA==")
    with pytest.raises(note.NoteError):
        witnessing.parse_witnesses("https://w.example/witness not-a-key")
    assert witnessing.parse_witnesses("") == []


def test_no_transaction_is_held_while_a_witness_is_asked(pair: tuple[Registry, Registry]) -> None:
    """A witness may take its time answering (up to WITNESS_TIMEOUT_S): the registry's own
    writes go on meanwhile, because nothing of the submission holds the database."""
    a, b = pair
    a.write(2)
    inner = router(a, b)
    written = []

    def slow(url: str, body: bytes) -> tuple[int, bytes]:
        a.write(1)  # on SQLite this would wait for the write lock, then fail, if it were held
        written.append(True)
        return inner(url, body)

    assert a.submit(slow) == {"b.example/witness": "cosigned"}
    assert written == [True]


def test_a_serving_registry_submits_each_checkpoint_to_its_witnesses_by_itself(
    pair: tuple[Registry, Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With checkpoints on their cadence, the process that signs one hands it to its
    witness thread: no command to run. The tiles' checkpoint carries the cosignature."""
    a, b = pair
    monkeypatch.setattr(witnessing, "http_post", lambda timeout: router(a, b))
    a.app.config["CHECKPOINT_INTERVAL_S"] = 0.2
    a.app.extensions["registry.checkpointer"] = Checkpointer(a.app)
    with a.app.app_context():
        f.catalogue()
        f.published("research-data")
    reader, _ = f.as_role(a.app, "reader")
    asked = {"purpose": "research", "data_category": "depersonalised"}
    answer = reader.post(f"{API}/decisions", json={**asked, "commercial_involvement": False})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    index = int(answer.headers["Audit-Log-Index"])
    deadline = time.monotonic() + 5
    while True:
        served = a.get(f"{API}/log/checkpoint").get_data(as_text=True)
        text, signatures = note.split(served)
        if note.parse_checkpoint(text).size > index and len(signatures) == 2:
            break
        assert time.monotonic() < deadline, served
        time.sleep(0.05)
    name, key = note.parse_cosigner_vkey(b.witness_vkey)
    assert note.cosignature_time(text, signatures[1], name, key) is not None
    a.app.extensions["registry.checkpointer"].close()
