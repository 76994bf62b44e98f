"""The audit trail: events for auditors; checkpoints, proofs and verification for anyone."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
from collections.abc import Iterator
from itertools import islice
from typing import Any

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from sqlalchemy import select

from registry.api.base import TEXT_MEDIA_TYPE, Blueprint, next_link, page_after, problems
from registry.db import current_session
from registry.errors import InvalidInput, NotFound
from registry.models.audit import AuditEvent, Checkpoint
from registry.present.audit import checkpoint_out, verify_report
from registry.schemas.audit import (
    AuditEventSchema,
    AuditQuerySchema,
    CheckpointQuerySchema,
    CheckpointSchema,
    ConsistencyQuerySchema,
    ConsistencySchema,
    ExportQuerySchema,
    InclusionQuerySchema,
    InclusionSchema,
    VerifyReportSchema,
)
from registry.security import Permission, requires
from registry.services import audit, witnessing

blp = Blueprint(
    "audit",
    __name__,
    description="The tamper-evident audit trail: a hash chain with signed Merkle "
    "checkpoints. Events are for auditors; checkpoints, proofs and verification for anyone.",
)

CSV_COLUMNS = (
    "seq",
    "time",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
    "request_id",
    "prev_hash",
    "hash",
)


def _filters(args: dict[str, Any]) -> list[Any]:
    filters = []
    for name, column in (
        ("entity_type", AuditEvent.entity_type),
        ("entity_id", AuditEvent.entity_id),
        ("actor_type", AuditEvent.actor_type),
        ("actor_id", AuditEvent.actor_id),
        ("action", AuditEvent.action),
    ):
        if args.get(name) is not None:
            filters.append(column == args[name])
    if args.get("since") is not None:
        filters.append(AuditEvent.occurred_at >= args["since"])
    if args.get("until") is not None:
        filters.append(AuditEvent.occurred_at < args["until"])
    return filters


@blp.route("/audit-events")
class Events(MethodView):
    @requires(Permission.AUDIT_READ)
    @blp.arguments(AuditQuerySchema(), location="query")
    @blp.response(200, AuditEventSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List audit events in order, filtered by entity, actor, action and time"""
        after = page_after(args) or 0
        filters = _filters(args)
        filters.append(AuditEvent.seq > after)
        documents = audit.iter_documents(
            current_session(), batch=args["limit"] + 1, filters=filters
        )
        rows = list(islice(documents, args["limit"] + 1))
        headers: dict[str, str] = {}
        if len(rows) > args["limit"]:
            rows = rows[: args["limit"]]
            headers["Link"] = next_link(rows[-1]["seq"])
        return rows, 200, headers


@blp.route("/audit-events/export")
class Export(MethodView):
    @requires(Permission.AUDIT_READ)
    @blp.arguments(ExportQuerySchema(), location="query")
    @blp.response(200, description="The whole log as JSON lines or CSV, streamed.")
    @blp.doc(
        responses={
            200: {
                "content": {
                    "application/x-ndjson": {
                        "schema": {
                            "type": "string",
                            "description": "One event per line, as GET /audit-events gives it "
                            "(format=jsonl, the default).",
                        }
                    },
                    "text/csv": {
                        "schema": {
                            "type": "string",
                            "description": "A header row, then one event per row (format=csv).",
                        }
                    },
                }
            }
        }
    )
    def get(self, args: dict[str, Any]) -> Response:
        """Export the whole log, streamed in constant memory (JSON lines or CSV)"""
        documents = _streamed_documents()
        if args["format"] == "csv":
            body: Iterator[str] = _csv(documents)
            mimetype, suffix = "text/csv", "csv"
        else:
            body = (json.dumps(d, separators=(",", ":"), sort_keys=True) + "\n" for d in documents)
            mimetype, suffix = "application/x-ndjson", "jsonl"
        return Response(
            stream_with_context(body),
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="audit-events.{suffix}"'},
        )


def _streamed_documents() -> Iterator[dict[str, Any]]:
    """Every event, read while the body streams.

    The session is taken here, in the contexts ``stream_with_context`` pushes again for
    the body, and so is closed when they end. The request's own session is closed before
    the body starts: a generator given that one would check out a connection no teardown
    returns, and enough exports would leave the pool empty (a 503 for everyone).
    """
    yield from audit.iter_documents(current_session())


def _csv(documents: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for d in documents:
        writer.writerow(
            [
                d["seq"],
                d["time"],
                d["actor"]["type"],
                d["actor"]["id"],
                d["actor"]["label"],
                d["action"],
                d["entity"]["type"],
                d["entity"]["id"],
                json.dumps(d["before"], sort_keys=True),
                json.dumps(d["after"], sort_keys=True),
                d["request_id"],
                d["prev_hash"],
                d["hash"],
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@blp.route("/audit-events/verify")
class Verify(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, VerifyReportSchema)
    def get(self) -> Any:
        """Walk the whole chain and its checkpoints: ok, or the first bad sequence number"""
        return verify_report()


@blp.route("/audit-events/checkpoint")
class LatestCheckpoint(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, CheckpointSchema)
    @blp.doc(
        responses={
            "200": {
                "description": "The latest checkpoint: a C2SP signed note (text/plain, the "
                "default), or the JSON document with the note and the public key inside "
                "(Accept: application/json). A log whose latest checkpoint was issued before "
                "notes were signed answers JSON either way.",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/Checkpoint"}},
                },
            }
        }
    )
    @blp.arguments(CheckpointQuerySchema(), location="query")
    @problems(404)
    def get(self, args: dict[str, Any]) -> Any:
        """The latest signed checkpoint: a C2SP signed note, or JSON when asked"""
        session = current_session()
        cosignatures: list[str] = []
        checkpoint: Checkpoint | None
        if args["witnessed"]:
            found = witnessing.witnessed(
                session,
                current_app.extensions["registry.witnesses"],
                current_app.config["WITNESS_QUORUM"],
            )
            if found is None:
                raise NotFound("No checkpoint is cosigned by enough witnesses yet.")
            checkpoint, cosignatures = found
        else:
            checkpoint = audit.latest_checkpoint(session)
            if checkpoint is not None:  # with whatever cosignatures it has gathered yet
                cosignatures = witnessing.cosignatures(
                    session, current_app.extensions["registry.witnesses"], checkpoint.size
                )
        if checkpoint is None:
            raise NotFound("The log is empty: there is no checkpoint yet.")
        signed = audit.signed_note(checkpoint)
        if signed is not None and not _asks_for_json():
            body = signed + "".join(cosignatures)
            return Response(body, content_type=TEXT_MEDIA_TYPE, headers=_NO_STORE)
        document = checkpoint_out(checkpoint)
        if cosignatures or args["witnessed"]:
            document["cosignatures"] = cosignatures
            if document["note"] is not None:
                document["note"] += "".join(cosignatures)
        return document


@blp.route("/audit-events/verifier-key")
class VerifierKey(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(
        responses={
            "200": {
                "description": "The log's C2SP verifier key: <origin>+<hex key ID>+base64(0x01 "
                "|| Ed25519 public key), followed by a newline.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self) -> Response:
        """The key checkpoints are signed with, as a C2SP verifier key"""
        return Response(audit.log_verifier().vkey + "\n", content_type=TEXT_MEDIA_TYPE)


# A checkpoint changes with every write: kept by no cache for more than a moment.
_NO_STORE = {"Cache-Control": "no-cache"}


def _asks_for_json() -> bool:
    """JSON only when the client prefers it; the note is the default (tlog-tiles)."""
    accept = request.accept_mimetypes
    return bool(accept["application/json"] > accept["text/plain"])


def _size(requested: int | None) -> int:
    checkpoint = audit.latest_checkpoint(current_session())
    latest = checkpoint.size if checkpoint else 0
    if requested is None:
        return latest
    if requested > audit.log_size(current_session()):
        raise InvalidInput("The log is not that long.", {"size": [f"At most {latest}."]})
    return requested


def _checkpoint_at(size: int) -> dict[str, Any] | None:
    checkpoint = current_session().get(Checkpoint, size)
    return checkpoint_out(checkpoint) if checkpoint else None


@blp.route("/audit-events/<seq:seq>/inclusion")
class Inclusion(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(InclusionQuerySchema(), location="query")
    @blp.response(200, InclusionSchema)
    def get(self, args: dict[str, Any], seq: int) -> Any:
        """An RFC 6962 inclusion proof of event ``seq`` in the tree of the given size"""
        size = _size(args.get("size"))
        if seq < 1 or seq > size:
            raise NotFound(f"Event {seq} is not in a tree of size {size}.")
        leaf, root, path = audit.inclusion(current_session(), seq - 1, size)
        event_hash = (
            current_session()
            .execute(select(AuditEvent.hash).where(AuditEvent.seq == seq))
            .scalar_one()
        )
        return {
            "seq": seq,
            "leaf_index": seq - 1,
            "size": size,
            "event_hash": event_hash,
            "leaf_hash": leaf.hex(),
            "root_hash": root.hex(),
            "proof": [node.hex() for node in path],
            "checkpoint": _checkpoint_at(size),
        }


@blp.route("/audit-events/consistency")
class Consistency(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(ConsistencyQuerySchema(), location="query")
    @blp.response(200, ConsistencySchema)
    def get(self, args: dict[str, Any]) -> Any:
        """An RFC 6962 consistency proof that the tree of size ``to`` extends size ``from``"""
        first = args["from_"]
        second = _size(args.get("to"))
        if first > second:
            raise InvalidInput("from is after to.", {"from": [f"At most {second}."]})
        old, new, proof = audit.consistency(current_session(), first, second)
        return {
            "from": first,
            "to": second,
            "from_root": old.hex(),
            "to_root": new.hex(),
            "proof": [n.hex() for n in proof],
            "from_checkpoint": _checkpoint_at(first),
            "to_checkpoint": _checkpoint_at(second),
        }


# --- c2sp.org/tlog-tiles: the log as static resources any monitor can fetch ------------------

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_TILE_PATH = re.compile(r"((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")
_TILE_LEVEL = re.compile(r"0|[1-9][0-9]?")
_BINARY = {
    "200": {
        "description": "The tile, immutable (cache it forever).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _tile_path(index: int) -> str:
    """1234067 -> ``x001/x234/067``."""
    parts = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        parts.insert(0, f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(parts)


def _tile_index(path: str) -> tuple[int, int]:
    """``x001/x234/067.p/12`` -> (1234067, 12); a full tile has width 256."""
    matched = _TILE_PATH.fullmatch(path)
    if matched is None:
        raise NotFound(
            "A tile index is zero-padded 3-digit path elements, all but the last starting "
            "with x (1234067 is x001/x234/067), then .p/<width> for a partial tile."
        )
    index = int(matched.group(1).replace("x", "").replace("/", ""))
    if _tile_path(index) != matched.group(1):  # one spelling per tile: 1 is 001, not x000/001
        raise NotFound(f"Tile {index} is at {_tile_path(index)}.")
    width = int(matched.group(2) or audit.TILE_WIDTH)
    if width > audit.TILE_WIDTH or (matched.group(2) and width == audit.TILE_WIDTH):
        raise NotFound("A partial tile is 1 to 255 hashes wide.")
    return index, width


def _available(level: int, index: int, width: int) -> None:
    """404 unless the latest checkpoint's tree holds the tile (a partial one: at least as
    wide; its hashes never change as the log grows)."""
    checkpoint = audit.latest_checkpoint(current_session())
    size = checkpoint.size if checkpoint else 0
    if index * audit.TILE_WIDTH + width > size >> (8 * level):
        raise NotFound(f"The log of {size} events holds no such tile yet.")


@blp.route("/log/checkpoint")
class LogCheckpoint(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(
        responses={
            "200": {
                "description": "The latest checkpoint, a C2SP signed note (tlog-tiles).",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    @problems(404)
    def get(self) -> Response:
        """The latest checkpoint, where c2sp.org/tlog-tiles clients look for it, with the
        witnesses' cosignatures it has gathered"""
        session = current_session()
        checkpoint = audit.latest_checkpoint(session)
        signed = audit.signed_note(checkpoint) if checkpoint else None
        if checkpoint is None or signed is None:
            raise NotFound("No checkpoint has been signed as a note yet.")
        lines = witnessing.cosignatures(
            session, current_app.extensions["registry.witnesses"], checkpoint.size
        )
        return Response(signed + "".join(lines), content_type=TEXT_MEDIA_TYPE, headers=_NO_STORE)


@blp.route("/log/tile/<string:level>/<path:index>")
class Tile(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(responses=_BINARY)
    @problems(404)
    def get(self, level: str, index: str) -> Response:
        """A tile of the Merkle tree's hashes (c2sp.org/tlog-tiles)"""
        if not _TILE_LEVEL.fullmatch(level) or int(level) > 63:
            raise NotFound("A tile level is 0 to 63, in decimal with no leading zero.")
        number, width = _tile_index(index)
        _available(int(level), number, width)
        body = audit.tile(current_session(), int(level), number, width)
        return Response(body, mimetype="application/octet-stream", headers=_IMMUTABLE)


@blp.route("/log/tile/entries/<path:index>")
class EntryBundle(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(responses=_BINARY)
    @problems(404)
    def get(self, index: str) -> Response:
        """The entries of a level-0 tile: each event's hash, uint16-length-prefixed"""
        number, width = _tile_index(index)
        _available(0, number, width)
        entries = audit.entry_bundle(current_session(), number, width)
        body = b"".join(struct.pack(">H", len(entry)) + entry for entry in entries)
        return Response(body, mimetype="application/octet-stream", headers=_IMMUTABLE)
