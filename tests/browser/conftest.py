"""A real headless Chromium (Debian's, driven by Playwright) against the app served by a
real HTTP server in this process, on the test database; axe-core checks each page.

Chromium comes from Debian (``apt-get install chromium``), axe-core from the npm registry
(``npm ci``); Playwright never downloads a browser here. Without either, these tests skip
and say why, unless ``REQUIRE_BROWSER=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from registry.db import db
from tests.browser.helpers import Audit

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def _chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, with nothing that phones home."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        _unavailable("the playwright package is not installed")
    executable = _chromium_path()
    if executable is None:
        _unavailable("no Chromium found (install Debian's: apt-get install -y chromium)")
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    except PlaywrightError as exc:
        manager.stop()
        _unavailable(f"Chromium at {executable} did not start: {str(exc).splitlines()[0]}")
    yield launched
    launched.close()
    manager.stop()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _unavailable(f"axe-core is not installed ({AXE} is missing: run npm ci)")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def site_url(app: Flask) -> Iterator[str]:
    """The test app behind a real threaded HTTP server on a free loopback port."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        db.session.remove()


@pytest.fixture
def axe(axe_source: str, database: Any) -> Audit:
    return Audit(axe_source, database.backend)


@pytest.fixture
def context(browser: Any, site_url: str) -> Iterator[Any]:
    """A fresh browser profile. CSP is bypassed only so that axe can be injected; a
    separate test checks that the pages need nothing the CSP refuses."""
    made = browser.new_context(base_url=site_url, viewport=DESKTOP, bypass_csp=True, locale="en-GB")
    made.set_default_timeout(15_000)
    yield made
    made.close()
