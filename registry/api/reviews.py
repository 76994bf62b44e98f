"""Citizen panels, their members, and the reviews every change must pass."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from registry import work
from registry.api.base import Blueprint, page_after, paged, problems
from registry.db import current_session, utcnow
from registry.present.reviews import review_detail, review_out, vote_out
from registry.schemas.common import PageArgs
from registry.schemas.review import (
    CloseSchema,
    ConflictInSchema,
    ConflictSchema,
    MemberAddSchema,
    MemberRemoveQuerySchema,
    MemberSchema,
    PanelSchema,
    RecommendationSchema,
    ReviewDetailSchema,
    ReviewQuerySchema,
    ReviewSchema,
    VoteSchema,
)
from registry.security import Permission, current_actor, requires
from registry.services import memberships, panels, reviews

blp = Blueprint(
    "reviews",
    __name__,
    description="Citizen panels and their reviews: no change to the set without one.",
)


def _member_out(member: Any) -> dict[str, Any]:
    serving = member.serving(utcnow().date())
    return {
        "user_id": member.user_id,
        "display_name": member.user.display_name,
        "term_start": member.term_start,
        "term_end": member.term_end,
        "current": serving,
        "chair": serving and member.panel.chair_id == member.user_id,
    }


@blp.route("/panels")
class Panels(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, PanelSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List citizen panels"""
        return paged(
            panels.list_panels(current_session(), limit=args["limit"], after=page_after(args))
        )

    @requires(Permission.PANEL_MANAGE)
    @blp.arguments(PanelSchema())
    @blp.response(201, PanelSchema)
    @problems(409)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a citizen panel"""
        return panels.create_panel(current_session(), current_actor(), body)


@blp.route("/panels/<id:panel_id>")
class PanelItem(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, PanelSchema)
    def get(self, panel_id: int) -> Any:
        """Show a citizen panel"""
        return panels.get_panel(current_session(), panel_id)


@blp.route("/panels/<id:panel_id>/members")
class Members(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, MemberSchema(many=True))
    def get(self, panel_id: int) -> Any:
        """List a panel's members and their terms, past ones included"""
        session = current_session()
        panels.get_panel(session, panel_id)
        return [_member_out(m) for m in panels.members(session, panel_id)]

    @requires(Permission.PANEL_MANAGE)
    @blp.arguments(MemberAddSchema())
    @blp.response(201, MemberSchema)
    @problems(409)
    def post(self, body: dict[str, Any], panel_id: int) -> Any:
        """Give a user with the panel_member role a term on the panel"""
        member = memberships.add_member(
            current_session(),
            current_actor(),
            panel_id,
            body["user_id"],
            body.get("term_start"),
            body.get("term_end"),
            chair=body["chair"],
        )
        return _member_out(member)

    @requires(Permission.PANEL_MANAGE)
    @blp.arguments(MemberRemoveQuerySchema(), location="query")
    @blp.response(200, MemberSchema)
    def delete(self, args: dict[str, Any], panel_id: int) -> Any:
        """End a member's term (?user_id=); their past votes keep counting"""
        member = memberships.end_membership(
            current_session(), current_actor(), panel_id, args["user_id"]
        )
        return _member_out(member)


@blp.route("/reviews")
class Reviews(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(ReviewQuerySchema(), location="query")
    @blp.response(200, ReviewSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List reviews, open or closed, by panel"""
        work.settle_first(reviews.close_due, reviews.due_review_ids(current_session()))
        page = reviews.list_reviews(
            current_session(),
            status=args.get("status"),
            panel_id=args.get("panel"),
            limit=args["limit"],
            after=page_after(args),
        )
        items, status, headers = paged(page)
        return [review_out(r) for r in items], status, headers


@blp.route("/reviews/<id:review_id>")
class ReviewItem(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, ReviewDetailSchema)
    def get(self, review_id: int) -> Any:
        """Show a review: the proposal beside the version in force, tally, and outcome"""
        review = reviews.get_review(current_session(), review_id)
        if reviews.due(review):
            work.settle_first(reviews.close_due, [review_id])
            review = reviews.get_review(current_session(), review_id)
        return review_detail(review, current_actor())


@blp.route("/reviews/<id:review_id>/votes/me")
class MyVote(MethodView):
    @requires(Permission.REVIEW_VOTE)
    @blp.arguments(VoteSchema())
    @blp.response(200, VoteSchema)
    @blp.alt_response(201, schema=VoteSchema, description="First vote recorded.")
    @problems(409)
    def put(self, body: dict[str, Any], review_id: int) -> Any:
        """Cast or change your vote (a comment is needed unless you endorse)"""
        work.settle_first(reviews.close_due, [review_id])
        ballot = reviews.cast_vote(
            current_session(), current_actor(), review_id, body["choice"], body["comment"]
        )
        return vote_out(ballot.vote, ballot.counted, True), 201 if ballot.created else 200


@blp.route("/reviews/<id:review_id>/conflicts")
class Conflicts(MethodView):
    @requires(Permission.REVIEW_VOTE)
    @blp.arguments(ConflictInSchema())
    @blp.response(201, ConflictSchema)
    @problems(409)
    def post(self, body: dict[str, Any], review_id: int) -> Any:
        """Declare a conflict of interest: your vote is recorded but not counted"""
        work.settle_first(reviews.close_due, [review_id])
        return reviews.declare_conflict(
            current_session(), current_actor(), review_id, body["reason"]
        )


@blp.route("/reviews/<id:review_id>/close")
class Close(MethodView):
    @requires(Permission.REVIEW_MANAGE)
    @blp.arguments(CloseSchema())
    @blp.response(200, ReviewDetailSchema)
    @problems(409, 412)
    def post(self, body: dict[str, Any], review_id: int) -> Any:
        """Close a review now: the outcome follows from quorum and threshold"""
        review = reviews.close_by_request(
            current_session(), current_actor(), review_id, body.get("recommendation")
        )
        return review_detail(review, current_actor())


@blp.route("/reviews/<id:review_id>/recommendation")
class Recommendation(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.arguments(RecommendationSchema())
    @blp.response(200, ReviewSchema)
    @problems(409)
    def put(self, body: dict[str, Any], review_id: int) -> Any:
        """Record the panel's written recommendation (editors, administrators, the chair)"""
        review = reviews.record_recommendation(
            current_session(), current_actor(), review_id, body["recommendation"]
        )
        return review_out(review)
