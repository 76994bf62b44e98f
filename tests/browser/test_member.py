"""A panel member, in a real browser: logs in, reads a change, votes, changes the vote,
and sees the outcome once the review closes. Every page passes axe-core with no serious
or critical finding and reflows at 320 pixels."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from registry.db import db
from tests import factories as f
from tests.browser.helpers import Audit, check, screenshot
from tests.support.scenes import API, Proposal, make_proposal, votes

pytestmark = pytest.mark.browser


@pytest.fixture
def proposal(app: Flask) -> Proposal:
    made = make_proposal(app)
    db.session.remove()
    return made


def test_a_member_reads_a_change_votes_changes_the_vote_and_sees_the_outcome(
    proposal: Proposal, context: Any, axe: Audit
) -> None:
    p = proposal
    member = p.members[0]
    page = context.new_page()

    # A visitor who follows a link to the review is asked to log in first, then sent on.
    page.goto(f"/panel/reviews/{p.review_id}")
    page.wait_for_url("**/login?next=*")
    check(page, axe, "login")
    page.get_by_label("Email address").fill(member.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").get_by_text("is not right").is_visible()
    axe.check(page, "login-failed")
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/panel/reviews/{p.review_id}")

    page.get_by_role("link", name="Your reviews", exact=True).first.click()
    page.wait_for_url("**/panel")
    assert page.get_by_text("You have not voted yet.").is_visible()
    check(page, axe, "panel")

    page.get_by_role("link", name="Research and development with de-personalised data").click()
    page.wait_for_url(f"**/panel/reviews/{p.review_id}")
    assert page.get_by_text("Condition changed: Time-limited access").is_visible()
    assert page.get_by_role("heading", name="Public benefit assessment").is_visible()
    assert page.get_by_role("heading", name="Impact on past decisions").is_visible()
    check(page, axe, "panel-review")

    # A reason is needed to reject: the form says so, and keeps what was chosen.
    page.get_by_label("Reject").check()
    page.get_by_role("button", name="Record my vote").click()
    alert = page.get_by_role("alert")
    assert alert.get_by_text("Say why in a comment").is_visible()
    assert page.get_by_label("Reject").is_checked()
    axe.check(page, "panel-review-error")
    assert votes(p.review_id) == []

    page.get_by_label("Endorse", exact=True).check()
    page.get_by_role("button", name="Record my vote").click()
    assert page.get_by_text("Your vote is recorded: Endorse.").is_visible()
    assert page.get_by_label("Endorse", exact=True).is_checked()

    page.get_by_label("Endorse with changes").check()
    page.get_by_label("Comment (required unless you endorse)").fill(
        "Endorse, and tell people why 24 months is enough."
    )
    page.get_by_role("button", name="Change my vote").click()
    assert page.get_by_text("Your vote is changed. It is now: Endorse with changes.").is_visible()
    screenshot(page, axe.backend, "panel-review-voted")
    assert [v.choice for v in votes(p.review_id)] == ["endorse_with_changes"]

    closed = p.editor.post(
        f"{API}/reviews/{p.review_id}/close",
        json={"recommendation": "Publish, and explain the shorter limit in the register."},
    )
    assert closed.status_code == 200, closed.get_json()
    db.session.remove()

    page.reload()
    assert page.get_by_text("The review is closed").is_visible()
    assert page.get_by_role("radio").count() == 0
    outcome = page.locator("#outcome").locator("xpath=..")
    assert outcome.get_by_text("Endorsed").first.is_visible()
    assert outcome.get_by_text("Publish, and explain the shorter limit").is_visible()
    assert outcome.get_by_text("Endorse, and tell people why 24 months is enough.").is_visible()
    check(page, axe, "panel-review-closed")

    page.get_by_role("link", name="Your reviews", exact=True).first.click()
    assert page.get_by_text("Your vote was: Endorse with changes.").is_visible()
    axe.check(page, "panel-after-close")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/")
    assert page.get_by_text("You have logged out.").is_visible()


def test_a_reader_sees_a_clear_refusal(proposal: Proposal, context: Any, axe: Audit) -> None:
    reader = f.user("reader")
    db.session.remove()
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email address").fill(reader.email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_text("These pages are for members of a citizen panel").is_visible()
    check(page, axe, "panel-forbidden")
