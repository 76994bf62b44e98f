"""Rate limits counted in a store every worker shares when one is configured.

``RATELIMIT_STORAGE_URI`` names the store (``memory://`` per process by default; a
``redis://`` URI makes the count shared by all gunicorn workers).
"""

from __future__ import annotations

import time

import limits
from flask import Flask, current_app
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from registry.errors import TooManyRequests

_EXT = "registry.ratelimiter"


def init_rate_limits(app: Flask) -> None:
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions[_EXT] = MovingWindowRateLimiter(storage)


def hit(setting: str, *identifiers: str) -> None:
    """Count one request against the limit named by config key ``setting``.

    Raises ``TooManyRequests`` (429 with ``Retry-After``) once the limit is reached.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    limiter: MovingWindowRateLimiter = current_app.extensions[_EXT]
    item = limits.parse(current_app.config[setting])
    if not limiter.hit(item, setting, *identifiers):
        reset_at, _remaining = limiter.get_window_stats(item, setting, *identifiers)
        raise TooManyRequests(
            "Too many requests: wait before trying again.",
            retry_after=int(reset_at - time.time()) + 1,
        )
