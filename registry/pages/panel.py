"""The panel member's pages: log in, the reviews for their panels, and a review page with
the change beside what is in force, the public benefit assessment, the impact on past
decisions, and the vote and conflict forms.

Every form carries the session's CSRF token (``registry.security`` checks it on every
cookie-authenticated write; the login form, sent before there is a login, is checked
here). Writes go through the review services, then redirect (POST-redirect-GET).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import logout_user
from marshmallow import ValidationError

from registry import work
from registry.db import current_session, db, utcnow
from registry.errors import Conflict, InvalidInput, Unauthenticated
from registry.models.review import Review
from registry.pages import diffs, words
from registry.pages.base import blp, existing_id, safe_next
from registry.present.impact import review_impact
from registry.present.reviews import review_detail, review_out
from registry.present.versions import version_out
from registry.ratelimit import hit
from registry.schemas.identity import LoginSchema
from registry.schemas.review import ConflictInSchema, VoteSchema
from registry.security import CsrfFailed, Permission, current_actor, requires, start_session
from registry.services import identity, lifecycle, panels, policies, reviews
from registry.services.context import Actor
from registry.vocabulary import PUBLIC_BENEFIT_QUESTIONS

LOGIN_FAILED = "The email address or password is not right. Check both and try again."
REVIEWS_PER_PANEL = 100


# --- logging in and out ---------------------------------------------------------------------


def _login_form(target: str | None, error: str | None = None, email: str = "") -> str:
    return render_template(
        "pages/login.html", section="login", next=target, error=error, email=email
    )


def _check_form_token() -> None:
    """The login form is sent before there is a login: check its token against the session."""
    expected = session.get("csrf")
    supplied = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(str(expected), str(supplied)):
        raise CsrfFailed("The form's token is missing or wrong.")


@blp.route("/login", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def login() -> Any:
    """Log in with email and password (rate-limited like the API's login)."""
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_actor().kind == "user":
            return redirect(target or url_for("pages.panel_home"), code=303)
        return _login_form(target)
    _check_form_token()
    email = request.form.get("email", "")
    try:
        body = LoginSchema().load({"email": email, "password": request.form.get("password", "")})
    except ValidationError:
        hit("RATELIMIT_LOGIN_PER_ADDRESS", request.remote_addr or "unknown")
        return _login_form(target, "Enter your email address and your password.", email)
    try:
        user = start_session(body["email"], body["password"])
    except Unauthenticated:
        return _login_form(target, LOGIN_FAILED, email)
    flash(f"You are logged in as {user.display_name or user.email}.", "success")
    return redirect(target or url_for("pages.panel_home"), code=303)


@blp.route("/logout", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def logout() -> Any:
    """End the session (its CSRF token is checked like any other write's); a link to it
    asks first, since only a form may change anything."""
    actor = current_actor()
    if request.method == "GET":
        if actor.kind != "user":
            return redirect(url_for("pages.policy_set"), code=303)
        return render_template("pages/logout.html", section="panel")
    if actor.kind == "user":
        identity.record_logout(current_session(), actor)
        logout_user()
    session.clear()
    flash("You have logged out.", "success")
    return redirect(url_for("pages.policy_set"), code=303)


# --- the member's reviews -------------------------------------------------------------------


def _my_vote(review: Review, actor: Actor) -> Any:
    mine = [v for v in reviews.votes(current_session(), review.id) if v.user_id == actor.user_id]
    return mine[0] if mine else None


@blp.route("/panel")
@requires(Permission.REVIEW_VOTE)
def panel_home() -> Any:
    """Open reviews for the member's panels, with time left, and closed ones with outcomes."""
    session = current_session()
    actor = current_actor()
    work.settle_first(reviews.close_due, reviews.due_review_ids(session))
    today = utcnow().date()
    now = utcnow()
    memberships = panels.memberships(session, actor.user_id)
    by_panel: dict[int, dict[str, Any]] = {}
    for member in memberships:
        entry = by_panel.setdefault(
            member.panel_id,
            {"panel": panels.get_panel(session, member.panel_id), "current": False, "terms": []},
        )
        entry["terms"].append(member)
        entry["current"] = entry["current"] or member.serving(today)
    open_reviews, closed_reviews = [], []
    for panel_id, entry in by_panel.items():
        page = reviews.list_reviews(
            session, status=None, panel_id=panel_id, limit=REVIEWS_PER_PANEL, after=None
        )
        for review in page.items:
            item = {
                "review": review_out(review),
                "title": review.version.policy.title,
                "my_vote": _my_vote(review, actor),
                "author": lifecycle.is_author(session, review.version, actor.user_id),
            }
            if review.status == "open":
                if entry["current"]:
                    item["time_left"] = words.time_left(review.closes_at, now)
                    open_reviews.append(item)
            else:
                closed_reviews.append(item)
    open_reviews.sort(key=lambda i: i["review"]["closes_at"])
    closed_reviews.sort(key=lambda i: i["review"]["closed_at"] or now, reverse=True)
    return render_template(
        "pages/panel.html",
        section="panel",
        panels=list(by_panel.values()),
        open_reviews=open_reviews,
        closed_reviews=closed_reviews,
        reminders=identity.get_user(session, actor.user_id or 0).review_reminders,
    )


@blp.route("/panel/reminders", methods=["POST"])
@requires(Permission.REVIEW_VOTE)
def set_reminders() -> Any:
    """Turn the day-before reminder on or off, then come back to the panel page."""
    choice = request.form.get("review_reminders", "")
    if choice not in ("on", "off"):
        flash("Choose whether to turn reminders on or off.", "error")
        return redirect(url_for("pages.panel_home", _anchor="reminders"), 303)
    identity.set_preferences(
        current_session(), current_actor(), {"review_reminders": choice == "on"}
    )
    flash(f"Reminders are {choice}.", "success")
    return redirect(url_for("pages.panel_home", _anchor="reminders"), 303)


def _review_page(
    review_id: int,
    *,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    status: int = 200,
) -> Any:
    session = current_session()
    actor = current_actor()
    review = reviews.get_review(session, existing_id(review_id))
    if reviews.due(review):
        work.settle_first(reviews.close_due, [review_id])
        review = reviews.get_review(session, review_id)
    detail = review_detail(review, actor)
    in_force = None
    if detail["in_force"] is not None:
        current = policies.get_version(
            session, Actor.anonymous(), review.version.policy.slug, detail["in_force"]
        )
        in_force = version_out(current)
    today = utcnow().date()
    member = panels.serves(session, review.panel_id, actor.user_id, today)
    author = lifecycle.is_author(session, review.version, actor.user_id)
    is_open = review.status == "open"
    diff = detail["diff"]
    body = render_template(
        "pages/review.html",
        section="panel",
        review=detail,
        title=review.version.policy.title,
        proposed=detail["proposed"],
        in_force=in_force,
        meaning=diffs.meaning(diff) if diff else [],
        marks=diffs.marks(diff),
        sections=diffs.text_sections(diff) if diff else [],
        direction=diff["direction"] if diff else None,
        questions=PUBLIC_BENEFIT_QUESTIONS,
        impact=review_impact(review, actor),
        member=member,
        author=author,
        can_vote=is_open and member and not author,
        time_left=words.time_left(review.closes_at, utcnow()) if is_open else None,
        errors=errors or {},
        form=form or {},
    )
    return body, status


@blp.route("/panel/reviews/<int:review_id>")
@requires(Permission.REVIEW_VOTE)
def review_page(review_id: int) -> Any:
    """A review: the change beside what is in force, its assessment, impact and the vote."""
    return _review_page(review_id)


def _back(review_id: int, anchor: str) -> Any:
    return redirect(
        url_for("pages.review_page", review_id=review_id, _anchor=anchor),
        code=303,
    )


def _first_messages(messages: Mapping[str, Any], wording: Mapping[str, str]) -> dict[str, str]:
    return {field: wording.get(field, "Check this answer.") for field in messages}


@blp.route("/panel/reviews/<int:review_id>/vote", methods=["POST"])
@requires(Permission.REVIEW_VOTE)
def vote(review_id: int) -> Any:
    """Cast or change the member's vote, then come back to the review."""
    existing_id(review_id)
    work.settle_first(reviews.close_due, [review_id])
    form = {
        "choice": request.form.get("choice", ""),
        "comment": request.form.get("comment", ""),
    }
    try:
        body = VoteSchema().load(form)
    except ValidationError as exc:
        wording = {
            "choice": "Choose how you vote: endorse, endorse with changes, reject or abstain.",
            "comment": "Keep your comment under 5,000 characters.",
        }
        errors = _first_messages(exc.messages_dict, wording)
        return _review_page(review_id, errors=errors, form=form, status=422)
    try:
        created = reviews.cast_vote(
            current_session(), current_actor(), review_id, body["choice"], body["comment"]
        ).created
    except InvalidInput as exc:
        db.session.rollback()
        errors = {
            field: "Say why in a comment: it is needed unless you endorse."
            if field == "comment"
            else "; ".join(str(m) for m in messages)
            for field, messages in exc.errors.items()
        }
        return _review_page(review_id, errors=errors, form=form, status=422)
    except Conflict as exc:
        db.session.rollback()
        flash(f"Your vote was not recorded: {exc.detail}", "error")
        return _back(review_id, "outcome")
    choice = words.choice(body["choice"])
    flash(
        f"Your vote is recorded: {choice}."
        if created
        else f"Your vote is changed. It is now: {choice}.",
        "success",
    )
    return _back(review_id, "your-vote")


@blp.route("/panel/reviews/<int:review_id>/conflict", methods=["POST"])
@requires(Permission.REVIEW_VOTE)
def declare_conflict(review_id: int) -> Any:
    """Declare a conflict of interest: the member's vote is recorded but not counted."""
    existing_id(review_id)
    work.settle_first(reviews.close_due, [review_id])
    form = {"reason": request.form.get("reason", "")}
    try:
        body = ConflictInSchema().load(form)
        if not body["reason"].strip():
            raise ValidationError({"reason": ["blank"]})
    except ValidationError:
        errors = {"reason": "Say what the conflict is, in under 2,000 characters."}
        return _review_page(review_id, errors=errors, form=form, status=422)
    try:
        reviews.declare_conflict(current_session(), current_actor(), review_id, body["reason"])
    except Conflict as exc:
        db.session.rollback()
        flash(f"The conflict was not recorded: {exc.detail}", "error")
        return _back(review_id, "conflict")
    flash(
        "Your conflict of interest is recorded. You can still vote; your vote will be "
        "recorded but not counted.",
        "success",
    )
    return _back(review_id, "conflict")
