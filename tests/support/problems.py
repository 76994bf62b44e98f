"""What every problem answer must be, for any test that expects one."""

from __future__ import annotations

from typing import Any

from registry.errors import PROBLEM_BASE, PROBLEM_TYPES

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with ``status`` (and a type ending in ``type_suffix``)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if type_suffix:
        assert body["type"].endswith("/" + type_suffix)
    # Every type names a page that explains it, and one type has one title everywhere.
    assert body["type"].startswith(PROBLEM_BASE), body["type"]
    kind = PROBLEM_TYPES[body["type"].removeprefix(PROBLEM_BASE)]
    assert (body["status"], body["title"]) == (kind.status, kind.title)
    return body
