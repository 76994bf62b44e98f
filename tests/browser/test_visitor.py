"""A visitor, in a real browser: the set in force, a policy's history, two versions
compared, the set at a past date, the change log and the audit trail. Every page passes
axe-core with no serious or critical finding and reflows at 320 pixels."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from registry.db import db
from tests import factories as f
from tests.browser.helpers import Audit, check
from tests.support.scenes import SLUG, seed

pytestmark = pytest.mark.browser


@pytest.fixture
def history(app: Flask) -> None:
    """The seeded set, and a second, published version of the research policy."""
    seed(app)
    f.published(
        SLUG,
        summary="Approved researchers may analyse de-personalised data inside a trusted "
        "research environment in the UK, for at most 24 months.",
        conditions=[
            {"code": "trusted_research_environment", "parameters": {}},
            {"code": "processing_location", "parameters": {"allowed_countries": ["GB"]}},
            {"code": "named_users_only", "parameters": {"max_users": 10}},
            {"code": "ethics_approval", "parameters": {}},
            {"code": "time_limited", "parameters": {"max_months": 24}},
            {"code": "national_data_opt_out", "parameters": {}},
            {"code": "no_reidentification", "parameters": {}},
            {"code": "no_onward_sharing", "parameters": {}},
        ],
        body="# Research and development with de-personalised data\n\n"
        "Named researchers (at most 10 per project), for at most 24 months.\n\n"
        "## Safeguards\n"
        "The data stays inside a trusted research environment in the United Kingdom.\n",
        rationale="Members asked for shorter access and fewer people.",
    )
    db.session.remove()


def test_a_visitor_browses_the_set_a_history_a_comparison_and_a_past_date(
    history: None, context: Any, axe: Audit
) -> None:
    page = context.new_page()
    page.goto("/")
    assert page.title().startswith("Policies in force")
    assert page.get_by_role("heading", level=2, name="Research").is_visible()
    assert page.get_by_text("Access lasts at most 24 months.").first.is_visible()
    check(page, axe, "set-in-force")

    # The skip link is the first stop for a keyboard, and it shows when focused.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.bounding_box()["y"] >= 0
    page.keyboard.press("Tab")  # past the skip link, to the site's name
    focused = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.backgroundColor]; }"
    )
    assert focused[0] == "solid" and focused[1] == "3px", f"no visible focus: {focused}"

    page.get_by_role("link", name="Research and development with de-personalised data").click()
    page.wait_for_url(f"**/policies/{SLUG}")
    assert page.get_by_role("heading", name="Version 2").is_visible()
    check(page, axe, "policy-history")

    page.get_by_label("Older version").select_option("1")
    page.get_by_label("Newer version").select_option("2")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare?from=1&to=2")
    assert page.get_by_text("Condition changed: Time-limited access").is_visible()
    assert page.get_by_text("Condition removed: Public benefit outweighs profit").is_visible()
    assert page.locator("tr.added").count() > 0 and page.locator("tr.removed").count() > 0
    check(page, axe, "compare")

    page.get_by_role("link", name="Version 2", exact=True).first.click()
    page.wait_for_url(f"**/policies/{SLUG}/versions/2")
    # The body's own "##" headings sit below the page's h2 "The policy".
    assert page.get_by_role("heading", level=4, name="Safeguards").is_visible()
    check(page, axe, "policy-version")

    page.goto("/")
    page.get_by_label("See the policies in force on a past date").fill("2001-02-03")
    page.get_by_role("button", name="Show the policies").click()
    page.wait_for_url("**/?date=2001-02-03")
    assert page.get_by_text("No policy was in force at the end of that day").is_visible()
    check(page, axe, "set-past-date")

    page.goto("/?date=2001-13-45")
    assert page.get_by_text("Enter a real date").is_visible()
    axe.check(page, "set-bad-date")

    page.get_by_role("link", name="Changes", exact=True).click()
    page.wait_for_url("**/changes")
    assert page.get_by_role("heading", name="Revision 7:").is_visible()
    check(page, axe, "change-log")

    page.get_by_role("link", name="Audit trail", exact=True).click()
    page.wait_for_url("**/audit")
    assert page.get_by_text("Chain verified.").is_visible()
    check(page, axe, "audit")

    page.goto("/policies/no-such-policy")
    assert page.get_by_role("heading", name="Page not found").is_visible()
    check(page, axe, "not-found")


def test_the_pages_need_nothing_the_csp_refuses(history: None, browser: Any, site_url: str) -> None:
    """With the app's own Content-Security-Policy enforced: no refusal, and the
    stylesheet applies (the header is dark blue)."""
    context = browser.new_context(base_url=site_url)
    refused: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    try:
        for path in (
            "/",
            f"/policies/{SLUG}",
            f"/policies/{SLUG}/compare?from=1&to=2",
            "/changes",
            "/audit",
            "/login",
        ):
            page.goto(path)
            colour = page.locator(".site-header").evaluate(
                "e => getComputedStyle(e).backgroundColor"
            )
            assert colour == "rgb(11, 61, 145)", path
    finally:
        context.close()
    assert refused == []
