"""The pages a problem's ``type`` names: what the problem means and what to do about it.

Every problem the registry answers carries ``type: /problems/<name>``; following it gives
this page, in HTML for a browser or as JSON for a program that asks for it.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template

from registry.errors import PROBLEM_BASE, PROBLEM_TYPES, NotFound, ProblemType
from registry.pages.base import blp
from registry.security import Permission, requires
from registry.web import wants_json


def _document(name: str, kind: ProblemType) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + name,
        "title": kind.title,
        "status": kind.status,
        "means": kind.means,
        "todo": kind.todo,
    }


@blp.route("/problems")
@requires(Permission.PUBLIC)
def problem_types() -> Any:
    """Every kind of problem the registry answers."""
    documents = [_document(name, kind) for name, kind in PROBLEM_TYPES.items()]
    if wants_json():
        return jsonify(documents)
    return render_template("pages/problems.html", problems=documents)


@blp.route("/problems/<string:name>")
@requires(Permission.PUBLIC)
def problem_type(name: str) -> Any:
    """One kind of problem: its status, its title, what it means and what to do."""
    kind = PROBLEM_TYPES.get(name)
    if kind is None:
        raise NotFound(f"The registry has no problem type named {name!r}.")
    document = _document(name, kind)
    if wants_json():
        return jsonify(document)
    return render_template("pages/problem.html", problem=document)
