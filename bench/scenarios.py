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
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from bench.context import BenchError, Context, Request, send


class Prepared(TypedDict, total=False):
    """What a ``prepare`` hook may change; every key is optional."""

    path: str
    headers: Mapping[str, str]
    body: Any
    rotate: tuple[Mapping[str, str], ...]


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
        return Request(
            self.method,
            extra.get("path", self.path),
            headers,
            data,
            self.status,
            extra.get("rotate", ()),
        )


def _if_none_match(ctx: Context) -> Prepared:
    etag = ctx.get("/api/v1/policy-set").headers["ETag"]
    return {"headers": {"If-None-Match": etag}}


CLIENTS = 200  # tokens the decision load rotates through


def _nhs_tokens(ctx: Context) -> Prepared:
    """Many clients, as in production: each token has its own write limit (600 a minute by
    default), so the load goes through the limiter as ``make run`` ships it, and is
    spread as real traffic is. The account logs in once and makes them."""
    email, password = "bench-trust@example.org", secrets.token_urlsafe(18)
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
        "--password-stdin",
        input=password + "\n",
    )
    login = _post(ctx, "/api/v1/auth/login", {"email": email, "password": password}, {})
    session = {
        "Cookie": login.headers["Set-Cookie"].split(";", 1)[0],
        "X-CSRF-Token": json.loads(login.body)["csrf_token"],
    }
    tokens = [
        json.loads(_post(ctx, "/api/v1/tokens", {"name": f"bench {n}"}, session).body)["token"]
        for n in range(CLIENTS)
    ]
    first = tokens[0]
    return {
        "headers": {"Authorization": f"Bearer {first}"},
        "rotate": tuple({"Authorization": f"Bearer {t}"} for t in tokens),
    }


def _post(ctx: Context, path: str, body: Any, headers: Mapping[str, str]) -> Any:
    request = Request(
        "POST", path, {**headers, "Content-Type": "application/json"}, json.dumps(body).encode()
    )
    reply = send(ctx.base_url, request)
    if reply.status not in (200, 201):
        raise BenchError(f"POST {path} answered {reply.status}: {reply.body[:300]!r}")
    return reply


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

BROTLI = {"Accept-Encoding": "gzip, deflate, br"}  # as browsers and most clients ask
LARGE_SET = 600  # published policies, for the scenarios that measure a large set


def _large_set(ctx: Context) -> Prepared:
    """Publish copies of the starter policies, through the same services, until the set
    holds ``LARGE_SET`` (once; the scenarios after the first find it done)."""
    from bench.micro import _app
    from registry.db import db
    from registry.present.policyset import current_snapshot
    from registry.services import seed
    from registry.services.context import Actor

    with _app(ctx):  # a command's writes: each checkpointed as it commits
        missing = LARGE_SET - len(current_snapshot().ids)
        starter = seed.STARTER_SET
        specs = [
            {
                **spec,
                "slug": f"{spec['slug']}-copy-{n}",
                "title": f"{spec['title']} (copy {n})",
            }
            for n in range(1, missing // len(starter) + 2)
            for spec in starter
        ][: max(0, missing)]
        if specs:
            print(f"bench: publishing {len(specs)} more policies", file=sys.stderr)
            seed.load(db.session(), Actor.system(label="bench"), specs)
            db.session.commit()
    time.sleep(1.5)  # every worker's cached set is checked at least once a second
    return {}


SCENARIOS: list[Scenario] = [
    Scenario("healthz", "GET", "/healthz", 200),
    Scenario("readyz", "GET", "/readyz", 200),
    Scenario("policy-set", "GET", "/api/v1/policy-set", 200),
    Scenario("policy-set-304", "GET", "/api/v1/policy-set", 304, prepare=_if_none_match),
    Scenario("decision", "POST", "/api/v1/decisions", 201, body=DECISION, prepare=_nhs_tokens),
    Scenario("policy-set-br", "GET", "/api/v1/policy-set", 200, headers=BROTLI),
    # Last: they grow the set to LARGE_SET policies.
    Scenario("policy-set-600", "GET", "/api/v1/policy-set", 200, prepare=_large_set),
    Scenario(
        "policy-set-600-br", "GET", "/api/v1/policy-set", 200, headers=BROTLI, prepare=_large_set
    ),
]
