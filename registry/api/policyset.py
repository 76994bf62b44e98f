"""The set in force, now or at any past point, and its change log (the cache that keeps
serving it cheap is ``registry.present.policyset``)."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from sqlalchemy import select

from registry.api.base import Blueprint, conditional, page_after, paged, problems
from registry.db import current_session, utcnow
from registry.models.policy import SetRevision
from registry.present.policyset import CODINGS, Snapshot, build, current_snapshot
from registry.present.versions import revision_out
from registry.schemas.common import PageArgs
from registry.schemas.policy import (
    PolicySetSchema,
    RevisionSchema,
    SetQuerySchema,
)
from registry.security import Permission, requires
from registry.services import policyset, reviews
from registry.services.paging import Page, keyset_page
from registry.web import not_modified

blp = Blueprint(
    "policy_set",
    __name__,
    description="The London-wide policy set in force, at any revision or time, and its change log.",
)

CACHE_CONTROL = "public, no-cache"


def respond(snap: Snapshot, *, compressed: bool = False) -> Response:
    """The set, or 304. The current set (``compressed``) is also served Brotli- or
    gzip-encoded, as Accept-Encoding asks, from bytes made once per revision; a past one
    is built for the request and served as it is."""
    coding = _coding() if compressed else "identity"
    headers = {"ETag": snap.etag_for(coding), "Cache-Control": CACHE_CONTROL}
    if compressed:
        headers["Vary"] = "Accept-Encoding"
    if not_modified(*snap.etags()):
        return Response(status=304, headers=headers)
    if coding != "identity":
        headers["Content-Encoding"] = coding
    body = snap.body_for(coding)
    return Response(body, status=200, mimetype="application/json", headers=headers)


def _coding() -> str:
    """The most preferred coding the client accepts (a quality above 0), or identity."""
    if not request.environ.get("HTTP_ACCEPT_ENCODING"):
        return "identity"
    accepted = request.accept_encodings
    return next((c for c in CODINGS if accepted.quality(c) > 0), "identity")


@blp.route("/policy-set")
class PolicySet(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(SetQuerySchema(), location="query")
    @blp.response(
        200,
        PolicySetSchema,
        headers={
            "ETag": {"schema": {"type": "string"}},
            "Content-Encoding": {
                "description": "br or gzip when Accept-Encoding asks (the current set only).",
                "schema": {"type": "string", "enum": ["br", "gzip"]},
            },
        },
    )
    @conditional()
    @problems(404)
    def get(self, args: dict[str, Any]) -> Response:
        """The set in force: now, at a revision, as of a time, or as known at a time"""
        if not args:
            return respond(current_snapshot(), compressed=True)
        session = current_session()
        revision = policyset.resolve(
            session, revision=args.get("revision"), known_at=args.get("known_at")
        )
        at = args.get("as_of") or args.get("known_at")
        if at is None:
            at = policyset.get_revision(session, revision).recorded_at if revision else utcnow()
        echo = {"as_of": at.isoformat()}
        if "known_at" in args:
            echo["known_at"] = args["known_at"].isoformat()
        return respond(build(revision, at, echo))


@blp.route("/policy-set/revisions")
class Revisions(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, RevisionSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """The change log: every revision, newest first, with its changes and reviews"""
        session = current_session()
        page: Page[SetRevision] = keyset_page(
            session,
            select(SetRevision),
            SetRevision.number,
            args["limit"],
            page_after(args),
            descending=True,
        )
        review_ids = [c.get("review_id") for r in page.items for c in r.changes]
        found = {r.id: r for r in reviews.reviews_by_id(session, [i for i in review_ids if i])}
        items, status, headers = paged(page)
        return [revision_out(r, found) for r in items], status, headers
