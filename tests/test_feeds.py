"""The change log as feeds (/changes.atom, /changes.json), read by a feed parser nobody here
wrote: one entry per revision, newest first, saying what changed and why, linking to the
compare page; public, with a strong ETag that a poller's If-None-Match turns into a 304."""

from __future__ import annotations

import feedparser
import pytest
from flask import Flask

from registry.pages import feeds
from tests import factories as f
from tests.support.scenes import SLUG, seed


def test_the_atom_feed_reads_in_a_feed_reader(app: Flask) -> None:
    seed(app)
    f.published(SLUG, summary="Access now lasts at most 24 months.")
    answer = app.test_client().get("/changes.atom")
    assert answer.status_code == 200
    assert answer.mimetype == "application/atom+xml"
    parsed = feedparser.parse(answer.get_data())
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    assert parsed.feed.title == feeds.TITLE
    assert parsed.feed.links[0]["href"] == "http://localhost/changes.atom"
    newest, *older = parsed.entries
    assert newest.title.startswith("Revision 7: ")
    assert [e.title.split(":")[0] for e in older] == [f"Revision {n}" for n in range(6, 0, -1)]
    # What changed and why, and where to see the difference.
    assert newest.link == f"http://localhost/policies/{SLUG}/compare?from=1&to=2"
    content = newest.content[0]["value"]
    assert "Access now lasts at most 24 months." in content
    assert "Endorsed" in content and "Publish." in content  # the outcome, the recommendation
    assert newest.id == "http://localhost/changes#revision-7"
    assert newest.updated_parsed is not None and parsed.feed.updated == newest.updated
    # A first version links to itself: there is nothing to compare it with.
    assert older[-1].link.startswith("http://localhost/policies/")
    assert "/versions/1" in older[-1].link


def test_the_json_feed(app: Flask) -> None:
    seed(app)
    f.published(SLUG, summary="Access now lasts at most 24 months.")
    answer = app.test_client().get("/changes.json")
    assert answer.status_code == 200 and answer.mimetype == "application/feed+json"
    feed = answer.get_json(force=True)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == "http://localhost/changes.json"
    assert feed["home_page_url"] == "http://localhost/changes"
    items = feed["items"]
    assert len(items) == 7 and len({i["id"] for i in items}) == 7
    assert items[0]["url"] == f"http://localhost/policies/{SLUG}/compare?from=1&to=2"
    assert "Access now lasts at most 24 months." in items[0]["content_html"]
    assert items[0]["date_published"] >= items[1]["date_published"]
    # The same entries as the Atom feed, in the same order.
    atom = feedparser.parse(app.test_client().get("/changes.atom").get_data())
    assert [i["id"] for i in items] == [e.id for e in atom.entries]


def test_a_poller_is_answered_304_until_the_set_changes(app: Flask) -> None:
    seed(app)
    client = app.test_client()
    for path in ("/changes.atom", "/changes.json"):
        first = client.get(path)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.get_data() == b""
        assert again.headers["ETag"] == etag
    etags = {p: client.get(p).headers["ETag"] for p in ("/changes.atom", "/changes.json")}
    f.published(SLUG, summary="A change a poller must see.")
    for path, etag in etags.items():
        changed = client.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        assert "A change a poller must see." in changed.get_data(as_text=True)


def test_the_feeds_hold_the_latest_revisions(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(app)
    monkeypatch.setattr(feeds, "ENTRIES", 3)
    atom = feedparser.parse(app.test_client().get("/changes.atom").get_data())
    assert [e.title.split(":")[0] for e in atom.entries] == [
        "Revision 6",
        "Revision 5",
        "Revision 4",
    ]
    assert len(app.test_client().get("/changes.json").get_json(force=True)["items"]) == 3


def test_an_empty_registry_has_empty_feeds(app: Flask) -> None:
    atom = feedparser.parse(app.test_client().get("/changes.atom").get_data())
    assert not atom.bozo and atom.entries == []
    assert app.test_client().get("/changes.json").get_json(force=True)["items"] == []


def test_quoted_text_is_escaped_in_the_entry(app: Flask) -> None:
    seed(app)
    f.published(SLUG, summary="<script>alert(1)</script> & more")
    body = app.test_client().get("/changes.json").get_json(force=True)
    html = body["items"][0]["content_html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; more" in html


def test_a_poll_of_an_unchanged_log_renders_nothing(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(app)
    client = app.test_client()
    etags = {p: client.get(p).headers["ETag"] for p in ("/changes.atom", "/changes.json")}
    rendered: list[str] = []
    real = feeds.render_template
    monkeypatch.setattr(
        feeds, "render_template", lambda *a, **k: rendered.append(a[0]) or real(*a, **k)
    )
    for path, etag in etags.items():
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
        assert client.get(path).headers["ETag"] == etag
    assert rendered == []  # served from what was rendered for this revision
    f.published(SLUG, summary="A new revision is rendered afresh.")
    assert (
        client.get("/changes.atom", headers={"If-None-Match": etags["/changes.atom"]}).status_code
        == 200
    )
    assert rendered
