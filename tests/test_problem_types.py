"""A problem's ``type`` resolves to a page that explains it, and errors on the pages'
paths are pages, not problem documents."""

from __future__ import annotations

import pytest
from flask import Flask

from registry import errors
from registry.errors import PROBLEM_BASE, PROBLEM_TYPES, DomainError
from tests import factories as f
from tests.support.problems import assert_problem
from tests.support.scenes import html

JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_problem_the_code_can_answer_has_a_type_page() -> None:
    raised = {sub.type for sub in _subclasses(DomainError)}
    by_status = {errors.problem_type_for(status) for status in range(400, 600)} - {"error"}
    assert raised | by_status <= set(PROBLEM_TYPES)
    # Titles are one style: a capital first letter only, as in "Not found".
    for kind in PROBLEM_TYPES.values():
        assert kind.title[0].isupper() and kind.means and kind.todo


@pytest.mark.parametrize("name", sorted(PROBLEM_TYPES))
def test_each_type_is_a_page_for_people_and_a_document_for_programs(app: Flask, name: str) -> None:
    kind = PROBLEM_TYPES[name]
    client = app.test_client()
    page = html(client.get(PROBLEM_BASE + name, headers=BROWSER))
    assert f"<h1>{kind.title}</h1>" in page
    assert f"HTTP status {kind.status}" in page
    answer = client.get(PROBLEM_BASE + name, headers=JSON)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.get_json() == {
        "type": PROBLEM_BASE + name,
        "title": kind.title,
        "status": kind.status,
        "means": kind.means,
        "todo": kind.todo,
    }


def test_the_index_lists_every_type_and_an_unknown_one_is_a_404(app: Flask) -> None:
    client = app.test_client()
    listed = client.get("/problems", headers=JSON).get_json()
    assert [p["type"] for p in listed] == [PROBLEM_BASE + n for n in PROBLEM_TYPES]
    page = html(client.get("/problems", headers=BROWSER))
    assert all(f'href="{PROBLEM_BASE}{n}"' in page for n in PROBLEM_TYPES)
    html(client.get("/problems/no-such-problem", headers=BROWSER), 404)
    assert_problem(client.get("/problems/no-such-problem", headers=JSON), 404, "not-found")


def test_a_problem_answered_by_the_api_can_be_followed_to_its_page(app: Flask) -> None:
    client, _ = f.as_role(app, "reader")
    problem = assert_problem(client.post("/api/v1/decisions", json={}), 422)
    followed = client.get(problem["type"], headers=JSON).get_json()
    assert (followed["title"], followed["status"]) == (problem["title"], 422)


def test_a_404_has_one_title_whoever_raised_it(app: Flask) -> None:
    client = app.test_client()
    by_router = assert_problem(client.get("/api/v1/no-such-thing"), 404, "not-found")
    by_service = assert_problem(client.get("/api/v1/policies/no-such-policy"), 404, "not-found")
    assert by_router["title"] == by_service["title"] == "Not found"
    unrouted = assert_problem(client.delete("/api/v1/policy-set"), 405, "method-not-allowed")
    assert unrouted["title"] == "Method not allowed"


def test_a_browser_off_the_map_gets_an_html_page(app: Flask) -> None:
    client = app.test_client()
    page = html(client.get("/nonexistent", headers=BROWSER), 404)
    assert "Page not found" in page
    refused = client.post("/policies/anything", headers=BROWSER)
    assert refused.status_code == 405
    assert refused.mimetype == "text/html"
    assert "GET" in refused.headers["Allow"]
    # A program that asks for JSON on a page path gets the problem; the API stays JSON
    # even for a browser.
    assert_problem(client.get("/nonexistent", headers=JSON), 404, "not-found")
    assert_problem(client.get("/api/v1/no-such-thing", headers=BROWSER), 404, "not-found")
    assert_problem(client.get("/healthz/extra", headers=BROWSER), 404, "not-found")
