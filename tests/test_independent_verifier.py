"""The audit log, checked by code nobody here wrote.

``tests/support/tlogcheck`` is a few lines of Go around the signed-note and Merkle tree
packages of Go's checksum database (``golang.org/x/mod/sumdb/note`` and ``.../tlog``),
from Debian's packages: the checkpoint notes the registry signs must open with its
verifier key, and its inclusion and consistency proofs must check, there as here.
``make test`` installs Go and the package (golang-go, golang-golang-x-mod-dev).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from registry.services import note
from tests import factories as f
from tests.support.server import call, gunicorn

API = "/api/v1"
SOURCE = Path(__file__).resolve().parent / "support" / "tlogcheck"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-golang-x-mod-dev puts the source
EVENTS = 12


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go, "Go is not installed: make test installs it (apt-get install golang-go)"
    assert (GOPATH / "src/golang.org/x/mod/sumdb/note").is_dir(), (
        "golang.org/x/mod is not installed: make test installs it "
        "(apt-get install golang-golang-x-mod-dev)"
    )
    where = tmp_path_factory.mktemp("go")
    binary = where / "tlogcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",  # the packages come from the GOPATH, not from the network
        "GOPATH": str(GOPATH),
        "GOCACHE": str(where / "cache"),
        "GOFLAGS": "",
    }
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."], cwd=SOURCE, env=env, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    return binary


def _check(binary: Path, *args: str | int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def log(app: Flask) -> Flask:
    for i in range(EVENTS):
        f.organisation(f"Trust {i}")  # one event, one checkpoint each
    return app


def test_go_opens_the_checkpoint_note_with_the_verifier_key(
    log: Flask, tlogcheck: Path, tmp_path: Path
) -> None:
    client = log.test_client()
    vkey = client.get(f"{API}/audit-events/verifier-key").get_data(as_text=True)
    signed = client.get(f"{API}/audit-events/checkpoint").get_data(as_text=True)
    (tmp_path / "checkpoint").write_text(signed)
    opened = _check(tlogcheck, "note", vkey, tmp_path / "checkpoint")
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == note.split(signed)[0]
    assert opened.stdout.splitlines()[:2] == [log.config["LOG_ORIGIN"], str(EVENTS)]
    # A changed size, or another key under the same name, and Go refuses it too.
    (tmp_path / "changed").write_text(signed.replace(f"\n{EVENTS}\n", f"\n{EVENTS + 1}\n", 1))
    assert _check(tlogcheck, "note", vkey, tmp_path / "changed").returncode == 1
    stranger = note.Verifier.for_key(
        log.config["LOG_ORIGIN"], note.raw_public_key(Ed25519PrivateKey.generate())
    )
    assert _check(tlogcheck, "note", stranger.vkey, tmp_path / "checkpoint").returncode == 1


def test_go_checks_every_inclusion_and_consistency_proof(log: Flask, tlogcheck: Path) -> None:
    client = log.test_client()
    for size in range(1, EVENTS + 1):
        for seq in sorted({1, (size + 1) // 2, size}):
            proof = client.get(f"{API}/audit-events/{seq}/inclusion?size={size}").get_json()
            args = (size, proof["root_hash"], proof["leaf_index"], proof["leaf_hash"])
            checked = _check(tlogcheck, "inclusion", *args, *proof["proof"])
            assert checked.returncode == 0, (size, seq, checked.stderr)
        for older in sorted({1, size // 2, size - 1} - {0}):
            proof = client.get(f"{API}/audit-events/consistency?from={older}&to={size}").get_json()
            args = (older, proof["from_root"], size, proof["to_root"])
            checked = _check(tlogcheck, "consistency", *args, *proof["proof"])
            assert checked.returncode == 0, (older, size, checked.stderr)
    # A proof with one hash changed checks nowhere.
    proof = client.get(f"{API}/audit-events/3/inclusion?size={EVENTS}").get_json()
    bent = [("0" * 64), *proof["proof"][1:]]
    args = (EVENTS, proof["root_hash"], proof["leaf_index"], proof["leaf_hash"])
    assert _check(tlogcheck, "inclusion", *args, *bent).returncode == 1


# --- the tiles: the whole tree as static resources ------------------------------------------


def _events(count: int, *, per_commit: int = 100) -> None:
    """``count`` events, ``per_commit`` to a write (and a checkpoint each)."""
    from registry.db import current_session
    from registry.services import audit

    session = current_session()
    for start in range(0, count, per_commit):
        for i in range(start, min(count, start + per_commit)):
            audit.record(session, f.SYSTEM, "test.event", "test", i, after={"i": i})
        session.commit()


def test_tiles_are_ranges_of_the_tree_and_refuse_what_does_not_exist(app: Flask) -> None:
    _events(600)
    client = app.test_client()
    full = client.get(f"{API}/log/tile/0/001")
    assert full.status_code == 200
    assert full.mimetype == "application/octet-stream"
    assert len(full.data) == 256 * 32
    assert "immutable" in full.headers["Cache-Control"]
    partial = client.get(f"{API}/log/tile/0/002.p/88")
    assert len(partial.data) == 88 * 32
    # A narrower partial tile is the same hashes' prefix: it never changes.
    assert client.get(f"{API}/log/tile/0/002.p/10").data == partial.data[: 10 * 32]
    assert len(client.get(f"{API}/log/tile/1/000.p/2").data) == 64
    entries = client.get(f"{API}/log/tile/entries/000").data
    assert len(entries) == 256 * 34 and entries[:2] == b"\x00\x20"
    checkpoint = client.get(f"{API}/log/checkpoint")
    assert checkpoint.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert note.split(checkpoint.get_data(as_text=True))[0].split("\n")[1] == "600"
    for missing in (
        "0/002",  # not full yet
        "0/002.p/89",  # wider than the log
        "0/003.p/1",
        "1/000",
        "0/2",  # not zero-padded
        "00/001",  # a leading zero in the level
        "0/x000/001",  # an x element for a number under 1000
        "0/001.p/256",
        "0/001.p/0",
        "64/000.p/1",
        "entries/002.p/89",
    ):
        answer = client.get(f"{API}/log/tile/{missing}")
        assert answer.status_code == 404, missing


@pytest.mark.slow
def test_go_rebuilds_the_whole_tree_from_the_tiles_alone(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path, tlogcheck: Path
) -> None:
    """Go's tile hash reader checks every tile it reads against the signed root, proves
    records from tiles alone, and holds each entry bundle to its level-0 tile."""
    _events(700, per_commit=230)
    config = database.app_config(signing_key_file)
    with gunicorn(config, tmp_path, workers=1) as base:
        _, _, _ = call(base, "GET", "/healthz")
        import urllib.request

        with urllib.request.urlopen(f"{base}{API}/audit-events/verifier-key") as reply:  # noqa: S310
            vkey = reply.read().decode()
        checked = _check(tlogcheck, "tiles", f"{base}{API}/log", vkey)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "ok 700"


def test_a_proof_reads_a_few_stored_nodes_not_the_whole_log(app: Flask) -> None:
    """An inclusion or consistency proof, on a public endpoint, once read every leaf up to
    the tree size: linear in the log per request. It now reads O(log n) stored nodes in
    one query, whatever the size."""
    from sqlalchemy import event

    from registry.db import db

    _events(1000)
    seen: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        inclusion = client.get(f"{API}/audit-events/500/inclusion?size=1000")
        consistency = client.get(f"{API}/audit-events/consistency?from=333&to=1000")
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert inclusion.status_code == consistency.status_code == 200
    node_reads = [s for s in seen if "audit_tree_nodes" in s]
    assert len(node_reads) == 2  # one per proof
    # Events are read one by one (the event proved) or the newest (the log's size), never
    # in bulk.
    bulk = [s for s in seen if "FROM audit_events" in s and "seq =" not in s and "LIMIT" not in s]
    assert not bulk, bulk


def test_go_checks_a_decisions_tlog_proof(log: Flask, tlogcheck: Path, tmp_path: Path) -> None:
    f.catalogue()
    f.published("research-data")
    reader, _ = f.as_role(log, "reader")
    asked = {"purpose": "research", "data_category": "depersonalised"}
    decision = reader.post(f"{API}/decisions", json=asked).get_json()
    proof = reader.get(f"{API}/decisions/{decision['id']}/proof").get_data(as_text=True)
    (tmp_path / "decision.tlog-proof").write_text(proof)
    vkey = log.test_client().get(f"{API}/audit-events/verifier-key").get_data(as_text=True)
    checked = _check(tlogcheck, "proof", vkey, tmp_path / "decision.tlog-proof")
    assert checked.returncode == 0, checked.stderr
    parsed = note.parse_proof(proof)
    assert checked.stdout.split()[1] == str(parsed.index)
    bent = note.Proof(parsed.index + 1, parsed.path, parsed.checkpoint, parsed.extra)
    (tmp_path / "bent.tlog-proof").write_text(bent.text)
    assert _check(tlogcheck, "proof", vkey, tmp_path / "bent.tlog-proof").returncode == 1
