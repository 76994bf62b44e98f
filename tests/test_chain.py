"""The chain's pure rules: canonical JSON, event hashes, walking a log with checkpoints."""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from registry.services import chain, merkle

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_the_fast_canonical_form_is_rfc_8785(value: Any) -> None:
    try:
        expected = bytes(rfc8785.dumps(value))
    except Exception:  # values the reference refuses (lone surrogates) must be refused too
        try:
            chain.canonical(value)
        except Exception:
            return
        raise AssertionError("canonical accepted what RFC 8785 refuses") from None
    assert chain.canonical(value) == expected


def test_canonical_sorts_keys_and_drops_whitespace() -> None:
    assert (
        chain.canonical({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )


def _log(
    n: int, key: Ed25519PrivateKey, every: int = 1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events, checkpoints = [], []
    head = chain.GENESIS_HASH
    frontier = merkle.Frontier()
    for seq in range(1, n + 1):
        document = chain.event_document(
            seq=seq,
            time="2026-11-22T10:00:00.000000Z",
            actor_type="system",
            actor_id=None,
            actor_label="tests",
            action="thing.done",
            entity_type="thing",
            entity_id=str(seq),
            before=None,
            after={"n": seq},
            request_id=None,
            prev_hash=head,
        )
        head = chain.event_hash(document)
        events.append(document | {"hash": head})
        frontier.append(bytes.fromhex(head))
        if seq % every == 0 or seq == n:
            issued = "2026-11-22T10:00:01.000000Z"
            kid, sig = chain.sign_checkpoint(
                key, size=seq, root_hash=frontier.root().hex(), issued_at=issued
            )
            checkpoints.append(
                {
                    "size": seq,
                    "root_hash": frontier.root().hex(),
                    "issued_at": issued,
                    "key_id": kid,
                    "signature": sig,
                }
            )
    return events, checkpoints


def test_a_sound_log_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    events, checkpoints = _log(20, key, every=3)
    public = chain.public_key_bytes(key.public_key())
    report = chain.verify_log(events, checkpoints, public)
    assert report.ok, report.reason
    assert (report.events, report.checkpoints_checked) == (20, 7)
    assert report.root_hash == checkpoints[-1]["root_hash"]
    assert chain.verify_log(events, checkpoints, public, all_signatures=True).ok


def test_faults_name_the_first_bad_sequence_number() -> None:
    key = Ed25519PrivateKey.generate()
    public = chain.public_key_bytes(key.public_key())
    events, checkpoints = _log(10, key)
    altered = [dict(e) for e in events]
    altered[4]["after"] = {"n": 99}
    report = chain.verify_log(altered, checkpoints, public)
    assert (report.ok, report.first_bad_seq) == (False, 5)
    assert chain.verify_log(events[:4] + events[5:], checkpoints, public).first_bad_seq == 5
    assert chain.verify_log(events[:7], checkpoints, public).first_bad_seq == 8
    other = Ed25519PrivateKey.generate()
    forged = [dict(c) for c in checkpoints]
    forged[-1]["signature"] = chain.sign_checkpoint(
        other, size=10, root_hash=forged[-1]["root_hash"], issued_at=forged[-1]["issued_at"]
    )[1]
    report = chain.verify_log(events, forged, public)
    assert not report.ok and "not signed" in (report.reason or "")
    assert json.dumps(report.as_dict())


def test_tuples_take_the_fast_path_like_lists(monkeypatch: Any) -> None:
    """A decision's audit event cites its policies as tuples; they are JSON arrays, and
    were sent down the reference implementation's slow path for nothing."""
    value = {"policies": [("research-data", 1, "ab" * 32)], "n": 1}
    expected = bytes(rfc8785.dumps(value))

    def refuse(*_: Any) -> bytes:
        raise AssertionError("the slow path")

    monkeypatch.setattr(chain.rfc8785, "dumps", refuse)
    assert chain.canonical(value) == expected
