"""Policy bodies are Markdown: rendered with raw HTML switched off, so text stays text.

markdown-it-py escapes everything it does not itself produce, refuses ``javascript:``,
``vbscript:``, ``file:`` and ``data:`` links, and here renders no images (the page would
fetch them). Headings move down the page's outline so a body's ``#`` never competes with
the page's own ``h1``.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_MD = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
_MD.disable("image")


def render(text: str, heading_offset: int = 2) -> Markup:
    """Safe HTML for ``text``; a heading of level n becomes n + ``heading_offset`` (max 6)."""
    tokens = _MD.parse(text or "")
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + heading_offset)}"
    # The renderer escapes all text and attributes; raw HTML is off, so this is safe.
    return Markup(_MD.renderer.render(tokens, _MD.options, {}))  # noqa: S704  # nosec B704
