"""Check an exported audit log against a signed checkpoint, with no database and no Flask.

    python -m registry.verify EXPORT.jsonl CHECKPOINT.json [--previous OLDER.json]
                              [--public-key KEY]

EXPORT.jsonl comes from GET /api/v1/audit-events/export; CHECKPOINT.json (and an older
one kept from before) from GET /api/v1/audit-events/checkpoint. The command recomputes
every event's hash and link, the Merkle root at each checkpoint's size, and each
checkpoint's Ed25519 signature. Pin the registry's key with --public-key (base64 or a
key id to match); otherwise the key inside the checkpoint is used and reported.

Exit status: 0 when everything holds, 1 when something does not (the report names the
first bad sequence number), 2 when the files cannot be read.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from registry.services import chain


def _events(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SystemExit(_fail_io(f"{path}:{number}: not JSON: {exc}")) from exc


def _fail_io(message: str) -> int:
    print(json.dumps({"ok": False, "error": message}), file=sys.stderr)
    return 2


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        value = json.load(handle)
    if not isinstance(value, dict):
        raise ValueError(f"{path} is not a checkpoint document")
    return value


def _key(checkpoint: dict[str, Any], pinned: str | None) -> bytes:
    embedded = base64.b64decode(checkpoint["public_key"], validate=True)
    if pinned is None:
        return embedded
    if pinned == chain.key_id(embedded):
        return embedded
    return base64.b64decode(pinned, validate=True)


def verify(
    export: str, checkpoint_path: str, previous_path: str | None, pinned: str | None
) -> dict[str, Any]:
    """The whole check; returns the report as a dict (``ok`` says whether it held)."""
    checkpoint = _load(checkpoint_path)
    key = _key(checkpoint, pinned)
    checkpoints = [checkpoint]
    previous = _load(previous_path) if previous_path else None
    if previous is not None:
        if int(previous["size"]) > int(checkpoint["size"]):
            previous, checkpoint = checkpoint, previous
            checkpoints = [checkpoint]
        checkpoints.insert(0, previous)
    report = chain.verify_log(_events(export), _beyond(checkpoints), key, all_signatures=True)
    # The export may run past the newest checkpoint we hold: that is not a fault here.
    if not report.ok and report.reason and "not covered by a signed checkpoint" in report.reason:
        report.ok, report.first_bad_seq, report.reason = True, None, None
    out = report.as_dict()
    out["key_id"] = chain.key_id(key)
    out["key_pinned"] = pinned is not None
    out["checkpoint"] = {"size": checkpoint["size"], "root_hash": checkpoint["root_hash"]}
    if previous is not None:
        out["extends"] = {
            "size": previous["size"],
            "root_hash": previous["root_hash"],
            "holds": report.ok,
        }
    return out


def _beyond(checkpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Two checkpoints of one size must agree; keep them in order of size.
    return sorted(checkpoints, key=lambda c: int(c["size"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry.verify", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("export", help="audit-events.jsonl from the export endpoint")
    parser.add_argument("checkpoint", help="a checkpoint JSON document")
    parser.add_argument("--previous", help="an older checkpoint the newer must extend")
    parser.add_argument("--public-key", help="the registry's public key (base64) or key id")
    args = parser.parse_args(argv)
    try:
        report = verify(args.export, args.checkpoint, args.previous, args.public_key)
    except (OSError, ValueError, KeyError, binascii.Error) as exc:
        return _fail_io(str(exc))
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
