"""The standalone verifier: clear answers to its common mistakes, and rewrites located."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from registry import verify
from registry.keys import load_signing_key
from registry.services import chain
from tests import factories as f
from tests.support.tamper import behind_the_back, rehash_from

AS_JSON = {"Accept": "application/json"}
API = "/api/v1"
N = 12


@pytest.fixture
def log(app: Flask) -> Flask:
    for i in range(N):
        f.organisation(f"Trust {i}")  # one write, one event, one checkpoint each
    return app


@pytest.fixture
def auditor(log: Flask) -> FlaskClient:
    """Made before any checkpoint is kept: its own events come after the organisations'."""
    client, _ = f.as_role(log, "auditor")
    return client


@pytest.fixture
def signing_key(signing_key_file: Path) -> Ed25519PrivateKey:
    return load_signing_key(str(signing_key_file))


def _checkpoint(app: Flask, size: int | None = None) -> dict[str, Any]:
    client = app.test_client()
    if size is None:
        return dict(client.get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json())
    return dict(
        client.get(f"{API}/audit-events/{size}/inclusion?size={size}").get_json()["checkpoint"]
    )


def _export(client: FlaskClient, path: Path) -> Path:
    with client.get(f"{API}/audit-events/export") as response:
        assert response.status_code == 200
        path.write_bytes(response.get_data())
    return path


def _write(path: Path, value: Any) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, dict[str, Any]]:
    code = verify.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, json.loads(out or err)


def _signed_by(key: Ed25519PrivateKey, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint signed again with ``key``, which it names and carries."""
    kid, signature = chain.sign_checkpoint(
        key,
        size=checkpoint["size"],
        root_hash=checkpoint["root_hash"],
        issued_at=checkpoint["issued_at"],
    )
    public = base64.b64encode(chain.public_key_bytes(key.public_key())).decode()
    return checkpoint | {"key_id": kid, "signature": signature, "public_key": public}


# --- the common mistakes -------------------------------------------------------------------


def test_a_checkpoint_not_signed_by_the_pinned_key_names_both_keys(
    log: Flask, auditor: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genuine = _checkpoint(log)
    other = _signed_by(Ed25519PrivateKey.generate(), genuine)
    export = _export(auditor, tmp_path / "export.jsonl")
    code, report = _run(
        capsys,
        export,
        _write(tmp_path / "other.json", other),
        "--public-key",
        genuine["public_key"],
    )
    assert code == 1
    assert (
        f"is not signed by the pinned key {genuine['key_id']}: it is signed by key "
        f"{other['key_id']}" in report["reason"]
    )
    assert "rewritten" not in report["reason"]
    by_id = _run(capsys, export, tmp_path / "other.json", "--public-key", genuine["key_id"])
    assert by_id[0] == 1
    assert f"is not signed by the pinned key {genuine['key_id']}" in by_id[1]["reason"]


def _without(name: str) -> Any:
    return lambda c: {k: v for k, v in c.items() if k != name}


MALFORMED = [
    ("no public key", _without("public_key"), "pin the registry's key with --public-key"),
    ("no size", _without("size"), "is not a checkpoint: it has no size"),
    ("a size in words", lambda c: c | {"size": "twelve"}, "size must be a whole number"),
    ("a bad root", lambda c: c | {"root_hash": 5}, "root_hash must be 64 lowercase hex"),
    ("a list", lambda c: [c, c], "is not a checkpoint (not a JSON object)"),
    ("not JSON", lambda c: "size=12", "is not JSON"),
]


@pytest.mark.parametrize(("name", "spoil", "said"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_checkpoint_file_says_what_is_wrong_and_what_one_holds(
    log: Flask,
    auditor: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    spoil: Any,
    said: str,
) -> None:
    export = _export(auditor, tmp_path / "export.jsonl")
    spoilt = _write(tmp_path / "checkpoint.json", spoil(_checkpoint(log)))
    code, report = _run(capsys, export, spoilt)
    assert code == 2, name
    assert said in report["error"]
    assert verify.CHECKPOINT_HELP in report["error"] or "must be" in report["error"]


def test_an_export_older_than_the_checkpoint_says_to_export_again(
    log: Flask, auditor: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _export(auditor, tmp_path / "export.jsonl")
    size = _checkpoint(log)["size"]
    f.organisation("Later Trust")
    code, report = _run(capsys, export, _write(tmp_path / "cp.json", _checkpoint(log)))
    assert code == 1
    assert (
        f"the export ends at event {size}, before the checkpoint's size {size + 1}: the export "
        "is older than the checkpoint. Export again" in report["reason"]
    )
    assert report["export_ends_at"] == size


UNREADABLE = [
    ("not JSON", b"{not json\n"),
    ("not an object", b"[1, 2]\n"),
    ("not UTF-8", b'{"seq": "\xff\xfe"}\n'),
    ("nested past any limit", b"[" * 100_000 + b"\n"),
]


@pytest.mark.parametrize(("name", "line"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_an_unreadable_line_of_the_export_is_named_by_its_number(
    log: Flask,
    auditor: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    line: bytes,
) -> None:
    export = _export(auditor, tmp_path / "export.jsonl")
    lines = export.read_bytes().splitlines(keepends=True)
    lines[4] = line
    export.write_bytes(b"".join(lines))
    code, report = _run(capsys, export, _write(tmp_path / "cp.json", _checkpoint(log)))
    assert code == 2, name
    assert f"{export}: line 5 " in report["error"]


ODD = [
    ("an event without its fields", {"export_line": b'{"seq": 1}\n'}, 1),
    ("a huge number", {"export_line": b'{"seq": 1e400, "hash": 1, "prev_hash": 2}\n'}, 1),
    ("a negative size", {"checkpoint": {"size": -1}}, 2),
    ("a size of true", {"checkpoint": {"size": True}}, 2),
    ("a public key not base64", {"checkpoint": {"public_key": "!!"}}, 2),
    ("a pinned key of nonsense", {"pin": "nonsense"}, 2),
]


@pytest.mark.parametrize(("name", "spoil", "code"), ODD, ids=[o[0] for o in ODD])
def test_the_verifier_answers_odd_input_without_a_traceback(
    log: Flask,
    auditor: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    spoil: dict[str, Any],
    code: int,
) -> None:
    export = _export(auditor, tmp_path / "export.jsonl")
    if "export_line" in spoil:
        lines = export.read_bytes().splitlines(keepends=True)
        export.write_bytes(spoil["export_line"] + b"".join(lines[1:]))
    checkpoint = _checkpoint(log) | spoil.get("checkpoint", {})
    pin = ["--public-key", spoil["pin"]] if "pin" in spoil else []
    answer, report = _run(capsys, export, _write(tmp_path / "cp.json", checkpoint), *pin)
    assert answer == code, (name, report)
    assert "could not be checked" not in report.get("error", "")
    if code == 1:
        assert f"{export}: line 1" in report["reason"]


def test_the_report_says_what_it_proves_and_what_it_cannot(
    log: Flask, auditor: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _export(auditor, tmp_path / "export.jsonl")
    code, report = _run(capsys, export, _write(tmp_path / "cp.json", _checkpoint(log)))
    assert code == 0, report
    size = _checkpoint(log)["size"]
    assert report["vouched_up_to"] == size
    assert any(f"events 1 to {size} are intact" in p for p in report["proves"])
    assert any("pass one with --previous" in c for c in report["cannot_prove"])
    assert any("pin it with --public-key" in c for c in report["cannot_prove"])


# --- with checkpoints kept from before -----------------------------------------------------


def _rewrite_from(k: int, key: Ed25519PrivateKey) -> None:
    """Change event ``k``, chain everything after it again, and sign every checkpoint from
    ``k`` on with ``key``: a rewrite by someone holding a signing key."""
    with behind_the_back() as conn:
        conn.execute(text("UPDATE audit_events SET entity_id = 'forged' WHERE seq = :k"), {"k": k})
        rehash_from(conn, k, fix_checkpoint_roots=True)
        checkpoints = conn.execute(
            text("SELECT size, root_hash, issued_at FROM audit_checkpoints WHERE size >= :k"),
            {"k": k},
        ).all()
        for size, root_hash, issued_at in checkpoints:
            moment = (
                issued_at if isinstance(issued_at, datetime) else datetime.fromisoformat(issued_at)
            )
            kid, signature = chain.sign_checkpoint(
                key, size=size, root_hash=root_hash, issued_at=chain.format_time(moment)
            )
            conn.execute(
                text("UPDATE audit_checkpoints SET key_id = :i, signature = :s WHERE size = :n"),
                {"i": kid, "s": signature, "n": size},
            )


@pytest.mark.parametrize("same_key", [True, False], ids=["same key", "another key"])
@pytest.mark.parametrize(
    ("kept_sizes", "first_bad", "said"),
    [
        ((4, None), 5, "history was rewritten at an event from 5 to {size}"),
        ((4, 5, None), 5, "history was rewritten from event 5"),
        ((None,), 1, "history was rewritten at an event from 1 to {size}"),
    ],
    ids=["kept at 4 and the latest", "kept at 4, 5 and the latest", "kept at the latest only"],
)
def test_a_rewrite_is_located_as_closely_as_the_checkpoints_kept_allow(
    log: Flask,
    auditor: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signing_key: Ed25519PrivateKey,
    same_key: bool,
    kept_sizes: tuple[int | None, ...],
    first_bad: int,
    said: str,
) -> None:
    genuine_key, size = _checkpoint(log)["public_key"], _checkpoint(log)["size"]
    kept = [_write(tmp_path / f"kept-{s}.json", _checkpoint(log, s)) for s in kept_sizes]
    said = said.format(size=size)
    forger = signing_key if same_key else Ed25519PrivateKey.generate()
    _rewrite_from(5, forger)
    now = _checkpoint(log)
    if not same_key:  # a registry that took the forger's key would serve it
        now["public_key"] = base64.b64encode(chain.public_key_bytes(forger.public_key())).decode()
    export = _export(auditor, tmp_path / "export.jsonl")
    previous = [arg for path in kept for arg in ("--previous", path)]
    code, report = _run(
        capsys,
        export,
        _write(tmp_path / "now.json", now),
        *previous,
        "--public-key",
        genuine_key,
    )
    assert code == 1
    assert report["first_bad_seq"] == first_bad, report["reason"]
    assert said in report["reason"]
    assert report["extends"]["holds"] is False
    if not same_key:
        assert "is not signed by the pinned key" in report["reason"]


def test_a_file_of_every_checkpoint_kept_locates_the_rewrite_exactly(
    log: Flask,
    auditor: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signing_key: Ed25519PrivateKey,
) -> None:
    size = _checkpoint(log)["size"]
    kept = "\n".join(json.dumps(_checkpoint(log, s)) for s in range(1, size + 1)) + "\n"
    _rewrite_from(7, signing_key)
    export = _export(auditor, tmp_path / "export.jsonl")
    code, report = _run(
        capsys,
        export,
        _write(tmp_path / "now.json", _checkpoint(log)),
        "--previous",
        _write(tmp_path / "kept.jsonl", kept),
    )
    assert code == 1
    assert report["first_bad_seq"] == 7
    assert "event 7 is not the event" in report["reason"]
    assert "events 1 to 6 match" in report["reason"]


def test_a_truncated_log_is_reported_where_it_was_cut(
    log: Flask, auditor: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = _write(tmp_path / "kept.json", _checkpoint(log))
    size = _checkpoint(log)["size"]
    with behind_the_back() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > 8"))
        conn.execute(text("DELETE FROM audit_checkpoints WHERE size > 8"))
    now = _write(tmp_path / "now.json", _checkpoint(log))
    export = _export(auditor, tmp_path / "export.jsonl")
    code, report = _run(capsys, export, now, "--previous", kept)
    assert code == 1
    assert report["first_bad_seq"] == 9
    assert report["export_ends_at"] == 8
    assert "the log was truncated after event 8" in report["reason"]
    assert f"events 9 to {size} are gone" in report["reason"]
