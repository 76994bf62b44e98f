"""The witness protocol's HTTP interface (c2sp.org/tlog-witness): add-checkpoint, and the
latest cosigned checkpoint of each log witnessed, for monitors."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from registry.api.base import TEXT_MEDIA_TYPE, Blueprint, problems
from registry.db import current_session, utcnow
from registry.errors import NotFound, problem
from registry.security import Permission, requires
from registry.services import witness

blp = Blueprint(
    "witness",
    __name__,
    description="This registry as a witness of other logs (c2sp.org/tlog-witness): it "
    "cosigns a checkpoint only if it extends the last one it cosigned for that log.",
)

SIZE_MEDIA_TYPE = "text/x.tlog.size"
_TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _witness() -> witness.Witness:
    found: witness.Witness | None = current_app.extensions.get("registry.witness")
    if found is None:
        raise NotFound("This registry is not configured as a witness (REGISTRY_WITNESS_NAME).")
    return found


@blp.route("/witness/add-checkpoint")
class AddCheckpoint(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(
        requestBody={
            "required": True,
            "description": "UTF-8 text, as the spec defines it: old <size>, the consistency "
            "proof (base64 lines), an empty line, then the checkpoint note. Read as bytes "
            "whatever its Content-Type.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        responses={
            "200": {"description": "The witness's cosignature line(s).", "content": _TEXT},
            "400": {"$ref": "#/components/responses/BadRequest"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "404": {"$ref": "#/components/responses/NotFound"},
            "409": {
                "description": "The old size is not the size this witness holds: the body is "
                "that size.",
                "content": {SIZE_MEDIA_TYPE: {"schema": {"type": "string"}}},
            },
            "422": {"$ref": "#/components/responses/UnknownParameter"},
        },
    )
    def post(self) -> Any:
        """Submit a checkpoint with a consistency proof; answers the cosignature"""
        me = _witness()
        try:
            line = witness.add_checkpoint(current_session(), me, request.get_data(), utcnow())
        except witness.WitnessRefusal as refused:
            if refused.status == 409:
                return Response(f"{refused.size}\n", status=409, content_type=SIZE_MEDIA_TYPE)
            return problem(refused.status, refused.detail)
        return Response(line, content_type=TEXT_MEDIA_TYPE)


@blp.route("/witness/verifier-key")
class WitnessKey(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(responses={"200": {"description": "The cosigner's verifier key.", "content": _TEXT}})
    @problems(404)
    def get(self) -> Response:
        """The key this witness cosigns with, as a verifier key (type 0x04)"""
        return Response(_witness().vkey + "\n", content_type=TEXT_MEDIA_TYPE)


@blp.route("/witness/<string:origin_hash>/checkpoint")
class Witnessed(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(
        responses={
            "200": {
                "description": "The latest checkpoint cosigned for the log whose origin's "
                "SHA-256 (lowercase hex) is given, with the log's and this witness's "
                "signatures.",
                "content": _TEXT,
            }
        }
    )
    @problems(404)
    def get(self, origin_hash: str) -> Response:
        """The latest checkpoint this witness cosigned for a log, for monitors"""
        _witness()
        state = witness.latest(current_session(), origin_hash)
        if state is None:
            raise NotFound("This witness has cosigned no checkpoint for that origin.")
        return Response(
            state.checkpoint, content_type=TEXT_MEDIA_TYPE, headers={"Cache-Control": "no-cache"}
        )
