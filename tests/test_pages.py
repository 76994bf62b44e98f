"""The pages for people, through Flask's test client: the public site and the panel's.

Every page renders as HTML from the seeded set; a panel member logs in with the form,
votes, changes the vote and sees the outcome; forms without their CSRF token change
nothing; user text is escaped; errors on pages are pages, and the API's stay problems.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, template_rendered
from sqlalchemy import select

from registry.db import db, utcnow
from registry.models.decision import Decision
from registry.pages import words
from tests import factories as f
from tests.support.scenes import (
    API,
    SLUG,
    Proposal,
    events,
    form_login,
    form_token,
    html,
    make_proposal,
    seed,
    votes,
)


@pytest.fixture
def proposal(app: Flask) -> Proposal:
    return make_proposal(app)


# --- the public pages ---------------------------------------------------------------------


def test_the_set_in_force_in_plain_english(app: Flask) -> None:
    seed(app)
    page = html(app.test_client().get("/"))
    assert '<html lang="en-GB">' in page
    assert page.count("<h1") == 1
    for heading in ("Individual care", "Planning", "Research"):
        assert f">{heading}</h2>" in page
    assert "Research and development with de-personalised data" in page
    assert "Access lasts at most 36 months." in page
    assert "At most 20 named people may have access." in page
    assert "Allowed countries: the United Kingdom (GB)." in page
    assert "Endorsed" in page and "Starter set panel" in page
    for term in (
        "De-personalised data",
        "Anonymous data",
        "Individual care",
        "National data opt-out",
        "Trusted research environment",
    ):
        assert f">{term}</dt>" in page
    assert 'type="date"' in page and '<label for="date">' in page
    assert 'href="/static/registry.css"' in page


def test_the_set_at_a_past_date_uses_the_end_of_that_day(app: Flask) -> None:
    seed(app)
    client = app.test_client()
    before = html(client.get("/?date=2001-02-03"))
    assert "at the end of 3 February 2001" in before
    assert "No policy was in force" in before
    today = utcnow().astimezone(words.LONDON).date()
    now = html(client.get(f"/?date={today.isoformat()}"))
    assert "Research and development with de-personalised data" in now
    wrong = html(client.get("/?date=31-31-2020"), 400)
    assert "Enter a real date" in wrong and 'aria-invalid="true"' in wrong


def test_a_future_version_shows_as_coming_and_in_force_at_its_date(app: Flask) -> None:
    seed(app)
    later = utcnow() + timedelta(days=40)
    f.published(
        SLUG,
        conditions=[{"code": "time_limited", "parameters": {"max_months": 12}}],
        effective_from=later,
    )
    client = app.test_client()
    page = html(client.get("/"))
    assert "Access lasts at most 36 months." in page
    assert "A published change takes effect on" in page
    future = (later + timedelta(days=1)).astimezone(words.LONDON).date()
    then = html(client.get(f"/?date={future.isoformat()}"))
    assert "Access lasts at most 12 months." in then
    assert "Access lasts at most 36 months." not in then


def test_history_version_and_comparison(app: Flask) -> None:
    seed(app)
    f.published(
        SLUG,
        conditions=[
            {"code": "time_limited", "parameters": {"max_months": 24}},
            {"code": "ethics_approval", "parameters": {}},
        ],
        body="# Research\n\nShorter access.\n\n- one\n- two\n",
    )
    client = app.test_client()
    history = html(client.get(f"/policies/{SLUG}"))
    assert "Version 2" in history and "Version 1" in history
    assert "In force" in history and "Replaced by a later version" in history
    assert '<label for="from">' in history and '<label for="to">' in history
    assert "Revision 7" in history

    version = html(client.get(f"/policies/{SLUG}/versions/2"))
    assert "<h3>Research</h3>" in version  # the body's own headings sit under the page's
    assert "<li>one</li>" in version
    assert version.count("<h1") == 1

    compared = html(client.get(f"/policies/{SLUG}/compare?from=1&to=2"))
    meaning = compared.index("What changes in meaning")
    text = compared.index("What changes in the text")
    assert meaning < text
    assert "Condition changed: Time-limited access" in compared
    assert "Before: Access lasts at most 36 months. After: Access lasts at most 24 months." in (
        compared
    )
    assert "Condition removed: Trusted research environment only" in compared
    assert "Tightens" in compared and "Loosens" in compared
    assert "+ Added" in compared and "\u2212 Removed" in compared
    assert "<ins>Shorter access.</ins>" in compared


def test_the_change_log_with_outcomes_tallies_and_recommendations(app: Flask) -> None:
    seed(app)
    f.published(SLUG, summary="A new summary.")
    page = html(app.test_client().get("/changes"))
    assert page.index("Revision 7") < page.index("Revision 1")
    assert "A new summary." in page
    assert "Endorsed" in page
    assert "1 vote counted of 1 eligible member: 1 endorse" in page
    assert "Publish." in page  # the factory's recommendation
    assert f"/policies/{SLUG}/compare?from=1&amp;to=2" in page


def test_the_change_log_pages(app: Flask) -> None:
    seed(app)
    for _ in range(21):
        f.published("planning-anonymous-statistics", summary=f"Summary {_}.")
    client = app.test_client()
    first = html(client.get("/changes"))
    assert "Revision 27" in first and "Revision 8:" in first and "Revision 7:" not in first
    second = html(client.get("/changes?before=8"))
    assert "Revision 7:" in second and "Older changes" not in second
    # Superscript two is a digit to str.isdigit but not to int(): it was a 500.
    for odd in ("%C2%B2", "%D9%A3", "0", "-1", "9" * 4301):  # int() refuses 4,301 digits
        assert "Revision 27" in html(client.get(f"/changes?before={odd}"))


def test_the_audit_page(app: Flask) -> None:
    seed(app)
    page = html(app.test_client().get("/audit"))
    assert "Chain verified." in page
    assert "python -m registry.verify export.jsonl checkpoint.txt" in page
    assert "/api/v1/audit-events/verifier-key" in page
    assert "/api/v1/audit-events/checkpoint" in page
    assert "Public key" in page and "Root hash" in page


def test_the_stylesheet_and_nothing_else(app: Flask) -> None:
    client = app.test_client()
    css = client.get("/static/registry.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert ":focus-visible" in css.get_data(as_text=True)
    for name in ("../app.py", "x.css", "..%2fapp.py"):
        assert client.get(f"/static/{name}").status_code == 404


def test_unknown_things_are_html_pages_and_the_api_keeps_problems(app: Flask) -> None:
    seed(app)
    client = app.test_client()
    missing = html(client.get("/policies/no-such-policy"), 404)
    assert "Page not found" in missing and "problem" not in missing
    html(client.get(f"/policies/{SLUG}/versions/9"), 404)
    html(client.get(f"/policies/{SLUG}/versions/{2**40}"), 404)
    html(client.get(f"/policies/{SLUG}/compare?from=1&to=9"), 404)
    assert "Choose two versions" in html(client.get(f"/policies/{SLUG}/compare?from=x"), 400)
    for odd in ("%C2%B2", "%D9%A3"):
        url = f"/policies/{SLUG}/compare?from={odd}&to=1"
        assert "Choose two versions" in html(client.get(url), 400)
    api = client.get(f"{API}/policies/no-such-policy")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"


def test_user_text_is_escaped(app: Flask) -> None:
    f.catalogue()
    f.published(
        "escaping",
        title="<i>Title</i>",
        summary="<b>bold</b> & more",
        body="# Heading\n\n<script>alert('body')</script>\n\n[x](javascript:alert(1))\n",
    )
    client = app.test_client()
    for path in ("/", "/policies/escaping", "/policies/escaping/versions/1", "/changes"):
        page = html(client.get(path))
        assert "<script>" not in page and "<b>bold</b>" not in page, path
        assert "<i>Title</i>" not in page, path
    version = html(client.get("/policies/escaping/versions/1"))
    assert "&lt;script&gt;alert('body')&lt;/script&gt;" in version
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in version
    assert 'href="javascript:' not in version


def test_public_pages_may_be_cached_only_without_a_session(app: Flask) -> None:
    seed(app)
    response = app.test_client().get("/")
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Cookie" in response.headers["Vary"]
    assert "Set-Cookie" not in response.headers


# --- the panel's pages --------------------------------------------------------------------


def test_a_member_logs_in_votes_changes_the_vote_and_sees_the_outcome(
    proposal: Proposal,
) -> None:
    p = proposal
    client = form_login(p.app, p.members[0])
    home = html(client.get("/panel"))
    assert "North East London panel" in home
    assert "Closes in 13 days" in home or "Closes in 14 days" in home
    assert "You have not voted yet." in home

    review_url = f"/panel/reviews/{p.review_id}"
    page = html(client.get(review_url))
    assert "Condition changed: Time-limited access" in page
    assert "Before: Access lasts at most 36 months. After: Access lasts at most 24 months." in (
        page
    )
    assert "In force now: version 1" in page and "Proposed: version 2" in page
    for question in ("What are the benefits, and how likely are they?", "Better care."):
        assert question in page
    assert "Impact on past decisions" in page
    assert "checked the 2 decisions it has recorded" in page
    assert "1 decision would get a different answer." in page
    assert "1 decision would go from “permitted, with duties” to “refused”." in page
    assert 'for="comment">Comment (required unless you endorse)' in page
    for choice in ("endorse", "endorse_with_changes", "reject", "abstain"):
        assert f'id="choice-{choice}"' in page and f'for="choice-{choice}"' in page
    token = form_token(page)

    refused = client.post(
        f"{review_url}/vote", data={"choice": "reject", "comment": " ", "csrf_token": token}
    )
    assert "Say why in a comment" in html(refused, 422)
    assert votes(p.review_id) == []

    first = client.post(f"{review_url}/vote", data={"choice": "endorse", "csrf_token": token})
    assert first.status_code == 303
    assert first.headers["Location"].endswith(f"{review_url}#your-vote")
    after = html(client.get(review_url))
    assert "Your vote is recorded: Endorse." in after
    assert "You voted <strong>Endorse</strong>" in after
    assert 'value="endorse" aria-describedby="choice-endorse-hint" checked' in after

    changed = client.post(
        f"{review_url}/vote",
        data={
            "choice": "endorse_with_changes",
            "comment": "Say <why> it is 24.",
            "csrf_token": token,
        },
    )
    assert changed.status_code == 303
    after = html(client.get(review_url))
    assert "Your vote is changed. It is now: Endorse with changes." in after
    assert "Say &lt;why&gt; it is 24." in after
    assert [(v.choice, v.comment) for v in votes(p.review_id)] == [
        ("endorse_with_changes", "Say <why> it is 24.")
    ]
    assert "Your vote: <strong>Endorse with changes</strong>" in html(client.get("/panel"))

    closed = p.editor.post(
        f"{API}/reviews/{p.review_id}/close",
        json={"recommendation": "Publish, and explain the shorter limit."},
    )
    assert closed.status_code == 200, closed.get_json()
    outcome = html(client.get(review_url))
    assert "The review is closed" in outcome
    assert 'name="choice"' not in outcome
    assert "Endorsed" in outcome
    assert "1 vote counted of 2 eligible members: 0 endorse, 1 endorse with changes" in outcome
    assert "Publish, and explain the shorter limit." in outcome
    assert "Say &lt;why&gt; it is 24." in outcome
    late = client.post(
        f"{review_url}/vote", data={"choice": "reject", "comment": "x", "csrf_token": token}
    )
    assert late.status_code == 303
    assert "Your vote was not recorded" in html(client.get(review_url))
    assert [v.choice for v in votes(p.review_id)] == ["endorse_with_changes"]
    home = html(client.get("/panel"))
    assert "There are no open reviews for your panels." in home
    assert "Your vote was: Endorse with changes." in home


def test_the_member_sees_how_many_decisions_flip_and_not_which(proposal: Proposal) -> None:
    """The decisions replayed belong to a university: the page counts them, and neither
    the page nor what it is rendered from names one."""
    p = proposal
    db.session.remove()
    recorded = list(db.session.execute(select(Decision.id)).scalars())
    assert len(recorded) == 2
    client = form_login(p.app, p.members[0])
    shown: list[dict[str, Any]] = []

    def keep(_app: Flask, template: Any, context: dict[str, Any], **_extra: Any) -> None:
        if template.name == "pages/review.html":
            shown.append(context["impact"])

    with template_rendered.connected_to(keep, p.app):
        page = html(client.get(f"/panel/reviews/{p.review_id}"))
    assert "1 decision would get a different answer." in page
    assert not any(decision_id in page for decision_id in recorded)
    [impact] = shown
    assert (impact["evaluated"], impact["changed"], impact["decisions"]) == (2, 1, [])


def test_a_review_past_its_closing_time_closes_when_the_page_is_read(
    proposal: Proposal,
) -> None:
    from sqlalchemy import update

    from registry.models.review import Review

    p = proposal
    client = form_login(p.app, p.members[0])
    db.session.execute(
        update(Review)
        .where(Review.id == p.review_id)
        .values(closes_at=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    page = html(client.get(f"/panel/reviews/{p.review_id}"))
    assert "Not decided: too few members voted" in page


def test_without_the_csrf_token_nothing_is_recorded(proposal: Proposal) -> None:
    p = proposal
    client = form_login(p.app, p.members[0])
    before = events()
    url = f"/panel/reviews/{p.review_id}"
    for data in ({"choice": "endorse"}, {"choice": "endorse", "csrf_token": "forged"}):
        refused = client.post(f"{url}/vote", data=data)
        page = html(refused, 403)
        assert "This form has expired" in page
    refused = client.post(f"{url}/conflict", data={"reason": "My employer."})
    html(refused, 403)
    assert votes(p.review_id) == []
    assert events() == before
    fresh = p.app.test_client()
    html(fresh.get("/login"))
    no_token = fresh.post("/login", data={"email": p.members[0].email, "password": f.PASSWORD})
    html(no_token, 403)
    assert "Log out" not in html(fresh.get("/"))


def test_a_reader_cannot_vote(proposal: Proposal) -> None:
    p = proposal
    reader = f.user("reader")
    client = form_login(p.app, reader)
    home = html(client.get("/panel"), 403)
    assert "These pages are for members of a citizen panel" in home
    assert "role is reader" in home
    token = form_token(home)  # the log-out form's token is the session's
    refused = client.post(
        f"/panel/reviews/{p.review_id}/vote", data={"choice": "endorse", "csrf_token": token}
    )
    html(refused, 403)
    assert votes(p.review_id) == []


def test_reviews_that_do_not_exist_are_not_found(proposal: Proposal) -> None:
    client = form_login(proposal.app, proposal.members[0])
    token = form_token(html(client.get("/panel")))
    for review_id in (proposal.review_id + 100, 2**40):
        assert "Page not found" in html(client.get(f"/panel/reviews/{review_id}"), 404)
        refused = client.post(
            f"/panel/reviews/{review_id}/vote", data={"choice": "endorse", "csrf_token": token}
        )
        html(refused, 404)


def test_a_member_of_another_panel_reads_but_cannot_vote(proposal: Proposal) -> None:
    p = proposal
    outsider = f.user("panel_member")
    f.panel([outsider], name="South West London panel")
    client = form_login(p.app, outsider)
    home = html(client.get("/panel"))
    assert "There are no open reviews for your panels." in home
    page = html(client.get(f"/panel/reviews/{p.review_id}"))
    assert "You are not a current member of the North East London panel" in page
    assert 'name="choice"' not in page
    refused = client.post(
        f"/panel/reviews/{p.review_id}/vote",
        data={"choice": "endorse", "csrf_token": form_token(page)},
    )
    assert "Only members of this review" in html(refused, 403)
    assert votes(p.review_id) == []


def test_a_conflict_is_declared_and_the_vote_still_recorded(proposal: Proposal) -> None:
    p = proposal
    client = form_login(p.app, p.members[1])
    url = f"/panel/reviews/{p.review_id}"
    token = form_token(html(client.get(url)))
    blank = client.post(f"{url}/conflict", data={"reason": "  ", "csrf_token": token})
    assert "Say what the conflict is" in html(blank, 422)
    declared = client.post(
        f"{url}/conflict", data={"reason": "I work for a funder.", "csrf_token": token}
    )
    assert declared.status_code == 303
    assert "Your conflict of interest is recorded" in html(client.get(url))
    client.post(f"{url}/vote", data={"choice": "endorse", "csrf_token": token})
    page = html(client.get(url))
    assert "Your conflict of interest is recorded" not in page  # shown once, then gone
    assert "I work for a funder." in page
    assert "Your vote is recorded but not counted, because you declared a conflict" in page
    again = client.post(f"{url}/conflict", data={"reason": "Again.", "csrf_token": token})
    assert again.status_code == 303
    assert "The conflict was not recorded" in html(client.get(url))


def test_panel_pages_send_visitors_to_the_login_form(proposal: Proposal) -> None:
    client = proposal.app.test_client()
    response = client.get(f"/panel/reviews/{proposal.review_id}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/login?next=%2Fpanel%2Freviews%2F{proposal.review_id}"
    page = html(client.get(response.headers["Location"]))
    assert f'name="next" value="/panel/reviews/{proposal.review_id}"' in page
    token = form_token(page)
    member = proposal.members[0]
    back = client.post(
        "/login",
        data={
            "email": member.email,
            "password": f.PASSWORD,
            "csrf_token": token,
            "next": f"/panel/reviews/{proposal.review_id}",
        },
    )
    assert back.headers["Location"] == f"/panel/reviews/{proposal.review_id}"


def test_login_failures_say_nothing_about_which_part_was_wrong(proposal: Proposal) -> None:
    client = proposal.app.test_client()
    token = form_token(html(client.get("/login")))
    for email in (proposal.members[0].email, "nobody@example.org"):
        page = html(
            client.post("/login", data={"email": email, "password": "wrong", "csrf_token": token})
        )
        assert "The email address or password is not right." in page
    empty = html(client.post("/login", data={"csrf_token": token}))
    assert "Enter your email address and your password." in empty
    elsewhere = client.post(
        "/login",
        data={
            "email": proposal.members[0].email,
            "password": f.PASSWORD,
            "csrf_token": token,
            "next": "https://example.com/panel",
        },
    )
    assert elsewhere.headers["Location"] == "/panel"


def test_logging_out(proposal: Proposal) -> None:
    client = form_login(proposal.app, proposal.members[0])
    asks = html(client.get("/logout"))
    assert "Log out now" in asks and proposal.members[0].email in asks
    token = form_token(html(client.get("/panel")))
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"] == "/"
    assert "You have logged out." in html(client.get("/"))
    assert client.get("/panel").status_code == 303
    assert client.get("/logout").headers["Location"] == "/"


def test_the_login_form_is_rate_limited_like_the_api(make_app: Any, proposal: Proposal) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ACCOUNT="2 per minute")
    client = app.test_client()
    token = form_token(html(client.get("/login")))
    data = {"email": proposal.members[0].email, "password": "wrong", "csrf_token": token}
    for _ in range(2):
        html(client.post("/login", data=data))
    limited = client.post("/login", data=data)
    assert "Too many attempts" in html(limited, 429)
    assert limited.headers["Retry-After"]
