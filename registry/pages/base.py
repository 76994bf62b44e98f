"""What every page shares: the blueprint, its template filters and cache rules, and its
error pages.

Errors inside this blueprint become HTML pages (an anonymous visitor to a panel page is
sent to the login form); the API keeps its problem+json answers, because these handlers
apply to this blueprint's routes only.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from registry import errors
from registry.errors import DomainError, NotFound
from registry.pages import markdown, words
from registry.security import csrf_token, current_actor
from registry.web import wants_json

blp = Blueprint("pages", __name__, template_folder="../templates")

PANEL_PREFIXES = ("/panel",)
# Ids and version numbers are 32-bit columns: a larger number names nothing.
LARGEST_ID = 2**31 - 1
TITLES = {
    400: "The request could not be understood",
    401: "Log in to see this page",
    403: "You cannot do this",
    404: "Page not found",
    405: "That is not allowed here",
    409: "That could not be done now",
    413: "What you sent is too large",
    422: "Check what you entered",
    429: "Too many attempts",
    500: "Sorry, something went wrong",
    503: "The service is busy",
}


@blp.app_template_filter("london_time")
def _london_time(value: Any) -> str:
    return words.when(value)


@blp.app_template_filter("london_day")
def _london_day(value: Any) -> str:
    return words.day(value)


@blp.app_template_filter("iso_time")
def _iso_time(value: Any) -> str:
    return words.iso(value)


@blp.app_template_filter("policy_markdown")
def _policy_markdown(value: str, offset: int = 2) -> Any:
    return markdown.render(value, offset)


@blp.app_context_processor  # app-wide: a page for a path no route matches needs it too
def _context() -> dict[str, Any]:
    actor = current_actor()
    return {
        "w": words,
        "actor": actor,
        "signed_in": actor.kind == "user",
        "csrf_token": csrf_token,
        "zone_name": words.ZONE_NAME,
    }


@blp.after_request
def _cache_rules(response: Response) -> Response:
    """Pages with a session (a form's CSRF token, a signed-in person) are never stored;
    public pages may be kept but are checked again each time."""
    if request.endpoint == "pages.static":
        return response
    has_session = current_app.config["SESSION_COOKIE_NAME"] in request.cookies
    if has_session or session.modified or current_actor().is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers["Cache-Control"] = "no-cache"
        response.vary.add("Cookie")
    return response


def _problem_of(error: BaseException) -> tuple[int, str, dict[str, str]]:
    """Status, detail and headers, as the API's one error mapping would give them."""
    if isinstance(error, DomainError):
        return error.status, error.detail, dict(error.headers)
    answer = errors.problem_response(error)
    body = json.loads(answer.get_data())
    headers = {k: v for k, v in answer.headers.items() if k in ("Retry-After", "Allow")}
    return answer.status_code, str(body.get("detail") or ""), headers


def existing_id(value: int) -> int:
    """``value``, or a 404 when no row could have it (the database would refuse it)."""
    if not 0 < value <= LARGEST_ID:
        raise NotFound("There is nothing with that number.")
    return value


def safe_next(target: str | None) -> str | None:
    """Only a path on the panel pages may be a place to come back to after logging in."""
    if not target or not target.startswith(PANEL_PREFIXES) or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    return target


@blp.errorhandler(Exception)
def error_page(error: Exception) -> Any:
    """Any error on a page, as a page: the same status as the API would give. Also for a
    path outside the API that no route (or no route's method) matches."""
    if wants_json():  # a program on a page path: the problem, as the API would give it
        return errors.problem_response(error)
    status, detail, headers = _problem_of(error)
    if status == 401 and request.method == "GET":
        place = request.full_path.rstrip("?") if request.query_string else request.path
        query = {"next": place} if safe_next(place) else {}
        target = url_for("pages.login") + ("?" + urlencode(query) if query else "")
        return redirect(target, code=303)
    if status == 401:
        return redirect(url_for("pages.login"), code=303)
    kind = getattr(error, "type", None)
    if isinstance(error, HTTPException) and status < 500:
        detail = error.description or detail
    if kind == "csrf-failed":
        detail = (
            "This form has expired, or it was not sent from this site. Go back, reload the "
            "page and try again."
        )
    elif status == 403 and request.path.startswith(PANEL_PREFIXES):
        role = current_actor().role
        if role != "panel_member":
            detail = (
                "These pages are for members of a citizen panel. Your account's role is "
                f"{(role or 'none').replace('_', ' ')}, so you cannot see or vote on reviews "
                "here. Anyone can read the policy set and its changes without logging in."
            )
    if status >= 500:
        detail = {
            503: "The registry is busy or its database is unavailable. Nothing was changed. "
            "Please try again in a few seconds.",
        }.get(status, "Something went wrong on our side. Nothing was changed.")
    body = render_template(
        "pages/error.html",
        status=status,
        title=TITLES.get(status, "Something went wrong"),
        detail=detail,
        kind=kind,
        request_id=g.get("request_id"),
    )
    return Response(body, status=status, headers=headers, mimetype="text/html")
