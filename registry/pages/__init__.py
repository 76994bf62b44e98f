"""Pages for people: the public transparency site and the panel member's review pages."""

from __future__ import annotations

from flask import Blueprint

blp = Blueprint("pages", __name__, template_folder="../templates")
