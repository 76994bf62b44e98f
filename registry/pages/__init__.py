"""Pages for people: the public transparency site and the panel member's review pages.

Server-rendered, no JavaScript, nothing from a CDN. Every route declares its permission
with ``@requires`` like the API's.
"""

from __future__ import annotations

from registry.pages import feeds, panel, problems, public  # noqa: F401  (their routes register on blp)
from registry.pages.base import blp, error_page

__all__ = ["blp", "error_page"]
