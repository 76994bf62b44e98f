"""What the browser tests do on each page: axe-core, screenshots, the narrow-screen check."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"
AXE_REPORTS = OUTPUT / "axe"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# axe-core's impacts are minor, moderate, serious and critical; these two fail a page.
BLOCKING = frozenset({"serious", "critical"})
# The pages the README shows.
FOR_THE_README = frozenset(
    {"set-in-force", "policy-history", "compare", "change-log", "audit", "panel-review"}
)


@dataclass
class Audit:
    """Runs axe-core on pages, keeps every finding, fails on serious or critical ones."""

    source: str
    backend: str
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def check(self, page: Any, name: str) -> list[dict[str, Any]]:
        page.add_script_tag(content=self.source)
        report = page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
        self.results[name] = report
        AXE_REPORTS.mkdir(parents=True, exist_ok=True)
        (AXE_REPORTS / f"{self.backend}-{name}.json").write_text(
            json.dumps({"url": page.url, "violations": report}, indent=2), encoding="utf-8"
        )
        blocking = [v for v in report if v["impact"] in BLOCKING]
        assert blocking == [], f"axe found serious or critical problems on {name}: {blocking}"
        return list(report)


def screenshot(page: Any, backend: str, name: str) -> Path:
    """A full-page screenshot under test-output/; with REGISTRY_DOCS_SCREENSHOTS=1 the
    README's from the SQLite run go to docs/screenshots/ as well, as the first screen
    only (what a reader of the README needs, at a fraction of the size)."""
    folder = SCREENSHOTS / backend
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    wanted = name in FOR_THE_README and backend == "sqlite"
    if wanted and os.environ.get("REGISTRY_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=False)
    return path


def fits_narrow_screens(page: Any) -> None:
    """At 320 CSS pixels (a phone, or 1280 at 400% zoom) nothing scrolls sideways."""
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    try:
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at 320px"
    finally:
        page.set_viewport_size(size)


def check(page: Any, axe: Audit, name: str) -> None:
    """What every page must pass: one h1, no serious or critical axe-core finding, and no
    sideways scrolling on a phone-width screen; and a screenshot of it."""
    assert page.locator("h1").count() == 1, f"{name}: not exactly one h1"
    axe.check(page, name)
    screenshot(page, axe.backend, name)
    fits_narrow_screens(page)
