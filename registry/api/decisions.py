"""Decisions: "may we use data this way?", answered from the set, recorded and citable."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from registry.api.base import (
    PROOF_RESPONSE,
    Blueprint,
    page_after,
    paged,
    problems,
    proof_response,
)
from registry.db import current_session
from registry.errors import Conflict, NotFound
from registry.present.impact import review_impact
from registry.present.policyset import evaluation_set
from registry.schemas.decision import (
    DecisionQuerySchema,
    DecisionRequestSchema,
    DecisionSchema,
    ImpactSchema,
)
from registry.security import Permission, current_actor, requires
from registry.services import audit, chain, decisions, reviews

blp = Blueprint(
    "decisions",
    __name__,
    description="Ask whether a use of data is allowed; every answer is recorded and citable.",
)


def _cited(document: dict[str, Any], status: int = 200) -> Response:
    """A decision is cited: its answer is the same bytes whenever it is read, the RFC 8785
    canonical JSON of the stored document."""
    return Response(chain.canonical(document), status=status, mimetype="application/json")


@blp.route("/decisions")
class Decisions(MethodView):
    @requires(Permission.DECISION_CREATE)
    @blp.arguments(DecisionRequestSchema())
    @blp.response(201, DecisionSchema)
    @problems(404)
    def post(self, body: dict[str, Any]) -> Any:
        """Evaluate a proposed use against the set (now, or at a revision or time) and record it"""
        policy_set = evaluation_set(body.get("revision"), body.get("as_of"))
        _, cited = decisions.decide(current_session(), current_actor(), body, policy_set)
        return Response(cited, status=201, mimetype="application/json")

    @requires(Permission.AUTHENTICATED)
    @blp.arguments(DecisionQuerySchema(), location="query")
    @blp.response(200, DecisionSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List decisions, newest first: your organisation's, or (auditors) everyone's"""
        page = decisions.list_decisions(
            current_session(),
            current_actor(),
            filters=args,
            limit=args["limit"],
            after=page_after(args),
        )
        items, status, headers = paged(page)
        return [d.result for d in items], status, headers


@blp.route("/decisions/<string:decision_id>")
class DecisionItem(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, DecisionSchema)
    def get(self, decision_id: str) -> Any:
        """Show a decision exactly as it was answered"""
        return _cited(decisions.get(current_session(), current_actor(), decision_id).result)


@blp.route("/decisions/<string:decision_id>/proof")
class DecisionProof(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.doc(responses=PROOF_RESPONSE)
    @problems(404)
    def get(self, decision_id: str) -> Response:
        """A c2sp.org/tlog-proof that the decision was logged, checkable offline"""
        session = current_session()
        decision = decisions.get(session, current_actor(), decision_id)
        proof = audit.proof_of(session, "decision", decision.id, "decision.recorded")
        if proof is None:  # recorded before decisions were logged with their own event
            raise NotFound("The decision has no event of its own in the log.")
        return proof_response(proof)


@blp.route("/reviews/<id:review_id>/impact")
class Impact(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, ImpactSchema)
    @problems(409)
    def get(self, review_id: int) -> Any:
        """Replay recorded decisions against the set with the proposed version: what flips"""
        review = reviews.get_review(current_session(), review_id)
        found = review_impact(review, current_actor())
        if found is None:
            status = review.version.status
            raise Conflict(f"The version is {status}: there is no proposal to replay.")
        return found
