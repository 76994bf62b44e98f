"""The change log as feeds: Atom (RFC 4287, written by feedgen) at ``/changes.atom`` and
JSON Feed 1.1 at ``/changes.json``, for feed readers and simple tools. Public, one entry
per revision of the set (newest first, the latest ``ENTRIES``), saying what changed and why
and linking to the page that compares each replaced version with the one before.

A revision never changes once recorded, so each feed's strong ETag is the digest of its
bytes, and a feed is rendered once per latest revision (and host) in each process: a
reader that polls with ``If-None-Match`` is answered 304 after one small query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from feedgen.feed import FeedGenerator
from flask import Response, render_template, request, url_for
from sqlalchemy import select

from registry.db import current_session
from registry.models.policy import SetRevision
from registry.pages import words
from registry.pages.base import blp
from registry.present.versions import revision_out
from registry.security import Permission, requires
from registry.services import reviews
from registry.web import not_modified

ENTRIES = 50
TITLE = "Changes to London's health and care data policy set"
DESCRIPTION = (
    "Every change to the London-wide policies on how health and care data may be used, "
    "each reviewed by a citizen panel before it was published."
)
AUTHOR = "London health and care data policy registry"


def _revisions() -> list[dict[str, Any]]:
    session = current_session()
    found = list(
        session.execute(
            select(SetRevision).order_by(SetRevision.number.desc()).limit(ENTRIES)
        ).scalars()
    )
    review_ids = [c.get("review_id") for r in found for c in r.changes if c.get("review_id")]
    by_id = {r.id: r for r in reviews.reviews_by_id(session, review_ids)}
    return [revision_out(r, by_id) for r in found]


def _link(change: dict[str, Any]) -> str:
    """The compare page for a replaced version; the version itself otherwise."""
    if change.get("previous_version"):
        return url_for(
            "pages.policy_compare",
            slug=change["policy"],
            _external=True,
            **{"from": change["previous_version"], "to": change["version"]},
        )
    return url_for(
        "pages.policy_version", slug=change["policy"], number=change["version"], _external=True
    )


def _entry(revision: dict[str, Any]) -> dict[str, Any]:
    changes = [{**change, "link": _link(change)} for change in revision["changes"]]
    anchor = url_for("pages.change_log", _external=True) + f"#revision-{revision['number']}"
    return {
        "id": anchor,
        "title": f"Revision {revision['number']}: {revision['summary']}",
        "url": changes[0]["link"] if changes else anchor,
        "time": revision["recorded_at"],
        "summary": "; ".join(
            f"{c['title']}: version {c['version']} {words.CHANGES.get(c['change'], c['change'])}"
            for c in changes
        ),
        "html": render_template("feeds/entry.html", revision=revision, changes=changes),
    }


# Rendered feeds by (feed, latest revision's number and time, host, entries): a revision
# never changes, so neither does a feed until the next one (or a restore, whose revisions
# carry other times).
_RENDERED: dict[tuple[Any, ...], tuple[str, bytes]] = {}
_RENDERED_MAX = 16


def _answer(feed: str, mimetype: str, render: Callable[[], bytes]) -> Response:
    latest = (
        current_session()
        .execute(
            select(SetRevision.number, SetRevision.recorded_at)
            .order_by(SetRevision.number.desc())
            .limit(1)
        )
        .first()
    )
    key = (feed, tuple(latest or ()), request.host_url, ENTRIES)
    held = _RENDERED.get(key)
    if held is None:
        body = render()
        held = ('"' + hashlib.sha256(body).hexdigest()[:32] + '"', body)
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.pop(next(iter(_RENDERED)), None)
        _RENDERED[key] = held
    etag, body = held
    response = Response(status=304) if not_modified(etag) else Response(body, mimetype=mimetype)
    response.headers["ETag"] = etag
    return response


@blp.route("/changes.atom")
@requires(Permission.PUBLIC)
def changes_atom() -> Response:
    """The change log as an Atom feed."""
    return _answer("atom", "application/atom+xml", _atom)


def _atom() -> bytes:
    entries = [_entry(r) for r in _revisions()]
    feed = FeedGenerator()
    feed.id(url_for("pages.changes_atom", _external=True))
    feed.title(TITLE)
    feed.subtitle(DESCRIPTION)
    feed.author({"name": AUTHOR})
    feed.link(href=url_for("pages.changes_atom", _external=True), rel="self")
    feed.link(href=url_for("pages.change_log", _external=True), rel="alternate")
    feed.language("en-GB")
    feed.updated(entries[0]["time"] if entries else None)
    for item in entries:
        entry = feed.add_entry(order="append")
        entry.id(item["id"])
        entry.title(item["title"])
        entry.link(href=item["url"], rel="alternate")
        entry.published(item["time"])
        entry.updated(item["time"])
        entry.summary(item["summary"])
        entry.content(item["html"], type="html")
    body: bytes = feed.atom_str(pretty=False)
    return body


@blp.route("/changes.json")
@requires(Permission.PUBLIC)
def changes_json() -> Response:
    """The change log as a JSON Feed (version 1.1)."""
    return _answer("json", "application/feed+json", _json_feed)


def _json_feed() -> bytes:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": TITLE,
        "description": DESCRIPTION,
        "home_page_url": url_for("pages.change_log", _external=True),
        "feed_url": url_for("pages.changes_json", _external=True),
        "language": "en-GB",
        "authors": [{"name": AUTHOR}],
        "items": [
            {
                "id": item["id"],
                "url": item["url"],
                "title": item["title"],
                "summary": item["summary"],
                "content_html": item["html"],
                "date_published": item["time"].isoformat(),
                "date_modified": item["time"].isoformat(),
            }
            for item in (_entry(r) for r in _revisions())
        ],
    }
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()
