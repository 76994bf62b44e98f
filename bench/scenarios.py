"""The HTTP scenarios, declared in one place: the list ``SCENARIOS`` at the bottom.

A scenario is one request sent over and over by every connection for the whole run.
Its expected status is checked once before the load; the load then counts the answers
outside 2xx/3xx (wrk's "Non-2xx or 3xx responses"), which for a scenario that expects a
4xx is every answer.

To add one, append a ``Scenario``. A body is any JSON-able value (sent as
``application/json``). When the request depends on state, give a ``prepare`` hook: it
runs once, before the status check, and returns what to change (``path``, ``headers``
merged over the declared ones, ``body``)::

    def _if_none_match(ctx: Context) -> Prepared:
        etag = ctx.get("/api/v1/policy-set").headers["ETag"]
        return {"headers": {"If-None-Match": etag}}

    def _bearer(ctx: Context) -> Prepared:
        ctx.flask("registry", "create-user", "bench@example.org", "--role", "...", ...)
        token = ctx.flask("registry", "create-token", "bench@example.org").strip()
        return {"headers": {"Authorization": f"Bearer {token}"}}

    Scenario("policy-set-304", "GET", "/api/v1/policy-set", 304, prepare=_if_none_match)
    Scenario("decision", "POST", "/api/v1/decisions", 201, body={...}, prepare=_bearer)

Run a subset with ``make bench BENCH_ARGS="--only healthz,decision"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from bench.context import Context, Request


class Prepared(TypedDict, total=False):
    """What a ``prepare`` hook may change; every key is optional."""

    path: str
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[Context], Prepared] | None = None

    def resolve(self, ctx: Context) -> Request:
        """Run the ``prepare`` hook, if any, and build the request the load will send."""
        extra: Prepared = self.prepare(ctx) if self.prepare else {}
        headers = {**self.headers, **extra.get("headers", {})}
        body = extra.get("body", self.body)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        return Request(self.method, extra.get("path", self.path), headers, data)


def _if_none_match(ctx: Context) -> Prepared:
    etag = ctx.get("/api/v1/policy-set").headers["ETag"]
    return {"headers": {"If-None-Match": etag}}


def _nhs_token(ctx: Context) -> Prepared:
    email = "bench-trust@example.org"
    ctx.flask(
        "registry",
        "create-user",
        email,
        "--role",
        "reader",
        "--organisation",
        "Bench NHS Trust",
        "--organisation-kind",
        "nhs_trust",
    )
    token = ctx.flask("registry", "create-token", email, "--name", "bench").strip()
    return {"headers": {"Authorization": f"Bearer {token}"}}


# A research use that meets every condition of the starter research policy: the answer is
# "permitted with duties", the most work an answer takes (every condition evaluated).
DECISION = {
    "purpose": "research",
    "data_category": "depersonalised",
    "commercial_involvement": False,
    "circumstances": {
        "trusted_research_environment": True,
        "processing_location": "GB",
        "named_users": ["analyst one", "analyst two"],
        "ethics_approval": True,
        "duration_months": 24,
        "national_data_opt_out_applied": True,
        "reidentification_intended": False,
        "onward_sharing": False,
    },
}

SCENARIOS: list[Scenario] = [
    Scenario("healthz", "GET", "/healthz", 200),
    Scenario("readyz", "GET", "/readyz", 200),
    Scenario("policy-set", "GET", "/api/v1/policy-set", 200),
    Scenario("policy-set-304", "GET", "/api/v1/policy-set", 304, prepare=_if_none_match),
    Scenario("decision", "POST", "/api/v1/decisions", 201, body=DECISION, prepare=_nhs_token),
]
