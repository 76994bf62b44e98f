"""The public pages: the set in force (now or at a past date), each policy's history and
versions, comparisons, the change log and the audit trail's state. No login needed.

They show what the public sees, whoever is asking: published and superseded versions
only, read as an anonymous visitor would read them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Response, abort, render_template, request
from sqlalchemy import select

from registry.db import (
    EARLIEST_TIME,
    EARLIEST_YEAR,
    LATEST_TIME,
    LATEST_YEAR,
    current_session,
    utcnow,
)
from registry.models.policy import SetRevision
from registry.pages import diffs, words
from registry.pages.base import blp, existing_id
from registry.present.audit import checkpoint_out, verify_report
from registry.present.policyset import build, current_snapshot
from registry.present.versions import compare, revision_out, version_out
from registry.security import Permission, requires
from registry.services import audit, policies, policyset, reviews
from registry.services.context import Actor
from registry.services.paging import Page, keyset_page
from registry.web import not_modified

STATIC = Path(__file__).resolve().parent.parent / "static"
STYLESHEETS = frozenset({"registry.css"})
VISITOR = Actor.anonymous()
CHANGES_PER_PAGE = 20
MAX_VERSIONS = 1000


@lru_cache(maxsize=len(STYLESHEETS))
def _asset(name: str) -> tuple[bytes, str]:
    content = (STATIC / name).read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


@blp.route("/static/<string:name>")
@requires(Permission.PUBLIC)
def static(name: str) -> Response:
    """The stylesheet (and nothing else: a whitelist, not a folder)."""
    if name not in STYLESHEETS:
        abort(404)
    content, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if not_modified(etag):
        return Response(status=304, headers=headers)
    return Response(content, mimetype="text/css", headers=headers)


def _date_argument() -> tuple[date | None, str | None]:
    raw = request.args.get("date", "").strip()
    if not raw:
        return None, None
    try:
        chosen = date.fromisoformat(raw)
        at = words.end_of_day(chosen)
    except (ValueError, OverflowError):
        return None, "Enter a real date, for example 2025-03-31."
    if not EARLIEST_TIME <= at <= LATEST_TIME:
        return None, f"Enter a date in the years {EARLIEST_YEAR} to {LATEST_YEAR}."
    return chosen, None


def _grouped(policies_in_force: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups = []
    for code in words.PURPOSE_ORDER:
        name, meaning = words.PURPOSES[code]
        members = [p for p in policies_in_force if p["purpose"] == code]
        groups.append({"code": code, "name": name, "meaning": meaning, "policies": members})
    others = [p for p in policies_in_force if p["purpose"] not in words.PURPOSE_ORDER]
    if others:
        groups.append({"code": "other", "name": "Other", "meaning": "", "policies": others})
    return groups


@blp.route("/")
@requires(Permission.PUBLIC)
def policy_set() -> Any:
    """The set in force now, or at the end of a chosen day (London time)."""
    chosen, error = _date_argument()
    if chosen is not None:
        at = words.end_of_day(chosen)
        latest = policyset.resolve(current_session(), revision=None, known_at=None)
        snapshot = build(latest, at, {"as_of": at.isoformat()})
    else:
        snapshot = current_snapshot()
    document = json.loads(snapshot.body)
    body = render_template(
        "pages/policy_set.html",
        section="set",
        document=document,
        groups=_grouped(document["policies"]),
        chosen=chosen,
        date_value=request.args.get("date", "") if error else (chosen or ""),
        date_error=error,
        today=utcnow().astimezone(words.LONDON).date(),
    )
    return body, 400 if error else 200


def _history(slug: str) -> tuple[Any, list[dict[str, Any]]]:
    session = current_session()
    policy = policies.get_policy(session, VISITOR, slug)
    page = policies.list_versions(
        session, VISITOR, slug, status=None, limit=MAX_VERSIONS, after=None
    )
    found = reviews.reviews_for_versions(session, [v.id for v in page.items])
    versions = [version_out(v, found.get(v.id)) for v in page.items]
    return policy, versions


@blp.route("/policies/<string:slug>")
@requires(Permission.PUBLIC)
def policy_history(slug: str) -> Any:
    """Every published version of a policy, newest first, and a form to compare two."""
    policy, versions = _history(slug)
    newest_first = sorted(versions, key=lambda v: v["number"], reverse=True)
    numbers = [v["number"] for v in newest_first]
    return render_template(
        "pages/policy_history.html",
        section="set",
        policy=policy,
        versions=newest_first,
        numbers=numbers,
        default_to=numbers[0] if numbers else None,
        default_from=numbers[1] if len(numbers) > 1 else None,
        now=utcnow(),
    )


@blp.route("/policies/<string:slug>/versions/<int:number>")
@requires(Permission.PUBLIC)
def policy_version(slug: str, number: int) -> Any:
    """One version in full: its text, conditions, review and content hash."""
    session = current_session()
    version = policies.get_version(session, VISITOR, slug, existing_id(number))
    review = reviews.reviews_for_versions(session, [version.id]).get(version.id)
    return render_template(
        "pages/policy_version.html",
        section="set",
        version=version_out(version, review),
        now=utcnow(),
    )


def _whole_number(name: str, below: int) -> int | None:
    """A query argument of ASCII digits from 1 to ``below - 1``, else None ("²" and "٣"
    are digits to ``str.isdigit``; only the first is refused by ``int``)."""
    raw = request.args.get(name, "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not 0 < int(raw) < below:
        return None
    return int(raw)


def _version_number(name: str) -> int:
    number = _whole_number(name, 1_000_000)
    if number is None:
        abort(400, description="Choose two versions to compare, by their numbers.")
    return number


@blp.route("/policies/<string:slug>/compare")
@requires(Permission.PUBLIC)
def policy_compare(slug: str) -> Any:
    """Two versions compared: what changes in meaning first, then the text."""
    session = current_session()
    old_number, new_number = _version_number("from"), _version_number("to")
    policy, versions = _history(slug)
    old = policies.get_version(session, VISITOR, slug, old_number)
    new = policies.get_version(session, VISITOR, slug, new_number)
    diff = compare(old, new)
    return render_template(
        "pages/policy_compare.html",
        section="set",
        policy=policy,
        old=version_out(old),
        new=version_out(new),
        diff=diff,
        meaning=diffs.meaning(diff),
        marks=diffs.marks(diff),
        sections=diffs.text_sections(diff),
        numbers=sorted((v["number"] for v in versions), reverse=True),
    )


@blp.route("/changes")
@requires(Permission.PUBLIC)
def change_log() -> Any:
    """Every revision of the set, newest first, with the review behind each change."""
    session = current_session()
    after = _whole_number("before", 1_000_000_000)
    page: Page[SetRevision] = keyset_page(
        session,
        select(SetRevision),
        SetRevision.number,
        CHANGES_PER_PAGE,
        after,
        descending=True,
    )
    review_ids = [c.get("review_id") for r in page.items for c in r.changes]
    found = {r.id: r for r in reviews.reviews_by_id(session, [i for i in review_ids if i])}
    return render_template(
        "pages/changes.html",
        section="changes",
        revisions=[revision_out(r, found) for r in page.items],
        older=page.next_after,
    )


@blp.route("/audit")
@requires(Permission.PUBLIC)
def audit_trail() -> Any:
    """The latest signed checkpoint, how to check it yourself, and the chain's state."""
    checkpoint = audit.latest_checkpoint(current_session())
    report = verify_report()
    checked_at: datetime | None = words.as_datetime(report.get("checked_at"))
    return render_template(
        "pages/audit.html",
        section="audit",
        checkpoint=checkpoint_out(checkpoint) if checkpoint else None,
        report=report,
        checked_at=checked_at,
        base=request.host_url.rstrip("/"),
    )
