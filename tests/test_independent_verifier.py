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

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from registry.services import note
from tests import factories as f

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
