"""Property-based tests of the whole API with schemathesis, in-process, from the committed spec.

The spec is the one in ``openapi/openapi.yaml`` (what clients are given), loaded from the
file; the app is the WSGI target, so no socket is opened. Each role in turn (anonymous,
reader, panel_member, auditor, editor, admin) gets a database with the starter set, a
panel with members, an open review and recorded decisions, and a bearer token that the
auth hook puts on every request. Then:

- ``test_operation`` runs every operation as that role with schemathesis's examples,
  coverage (boundary and negative values) and fuzzing phases, valid and invalid data;
- ``test_stateful`` follows the links schemathesis infers between operations (create a
  policy, then read, change, submit and withdraw it; decide, then read the decision...)
  and runs the object-level authorisation check on what each identity created.

``REGISTRY_FUZZ_EXAMPLES`` sets the number of examples per operation and role (default
15, which keeps this file to a few minutes); ``make fuzz`` sets it much higher.
``REGISTRY_FUZZ_SEED`` fixes the seed (default: fixed for the bounded run so CI is
repeatable; a random one whenever the examples are raised).

Checks, on every response: ``not_a_server_error``; ``status_code_conformance`` (the spec
lists every status an operation answers: there is no catch-all ``default`` response, which
would make this check pass whatever came back); ``content_type_conformance``;
``response_schema_conformance``; ``response_headers_conformance``; ``ignored_auth`` (an
operation that declares security refuses the same request without credentials and with
bad ones); ``missing_required_header`` (no ``If-Match``, a 428); ``unsupported_method`` and
``allow_header_conformance`` (a 405 with the right ``Allow``); and this project's own
``registry_response_hygiene`` (security headers, no caching of authenticated answers, no
traceback or SQL in an error body, as ``tests/support/watch.py`` asserts elsewhere).

In ``test_stateful`` the same checks run from the configuration, with two more:
``object_level_authorization``, schemathesis's object-level authorisation (BOLA) check,
which replays a peer's successful read of what it created or listed as every other peer
and fails if one of them gets the same object while an anonymous caller does not; and
``ensure_resource_availability`` (what a POST created can be read at once). The first
needs a run that knows several identities, so there the auth hook's tokens for every
identity are wrapped in schemathesis's ``EscalatingAuthProvider``, pinned to the role under
test. It only looks at sequences (a value the same identity created or listed before),
which is why it runs in the stateful test and not in ``test_operation``.

Checks not run, and why:

- ``ensure_resource_availability`` on ``getVersionProof``: a version has a proof only once
  it is published (its ``version.published`` event is what the proof includes), so the
  proof of a version just created is a 404 by design, which the check would report as a
  created resource not found. The check runs on every other operation.
- ``use_after_free``: ``DELETE /tokens/{id}`` revokes a token and ``DELETE
  /panels/{id}/members`` ends a term; both stay readable afterwards on purpose (a revoked
  token shows its ``revoked_at``, a past member their ``term_end``), which this check
  would report as a resource used after deletion.
- ``positive_data_acceptance``: schema-valid requests are refused by rules a schema cannot
  state (an opaque ``cursor`` that is not one of ours, ``from`` after ``to``, a name
  already taken, a version not in a state that allows the change), with 409 and 422.
- ``negative_data_rejection``: marshmallow reads ``0`` and ``1`` as booleans and ``"5"`` as
  an integer, and a ``PATCH`` without a body changes nothing; those are accepted rather
  than refused. Lenient, not unsafe; making every field strict is a change of behaviour
  for clients, not a fix.
- ``max_response_time``: timings belong to ``make bench`` and ``make soak``.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import hypothesis
import pytest
import schemathesis
from flask import Flask
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.wfc.escalation import EscalatingAuthProvider
from sqlalchemy import select, text

from registry import create_app
from registry.db import db, utcnow
from registry.models.identity import ApiToken, User
from registry.services import seed
from tests import factories as f
from tests.conftest import RegistryClient, TestDatabase
from tests.support import watch

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.yaml"
API = "/api/v1"
ROLES = ("anonymous", "reader", "panel_member", "auditor", "editor", "admin")
# Identities that must never see each other's objects: decisions belong to an
# organisation, tokens to their owner, drafts to editors. Each is in its own organisation.
PEERS = ("reader", "reader_elsewhere", "panel_member", "editor")
IDENTITIES = (*ROLES, "reader_elsewhere")

_DEFAULT_EXAMPLES = 15
EXAMPLES = int(os.environ.get("REGISTRY_FUZZ_EXAMPLES", str(_DEFAULT_EXAMPLES)))
SEED = int(
    os.environ.get("REGISTRY_FUZZ_SEED")
    or (20261122 if EXAMPLES <= _DEFAULT_EXAMPLES else random.getrandbits(32))
)
STATEFUL_SCENARIOS = 4 * EXAMPLES
_REPRODUCE = f"Run again with REGISTRY_FUZZ_EXAMPLES={EXAMPLES} REGISTRY_FUZZ_SEED={SEED}."
STATEFUL_STEPS = 8


# --- the world each role is tested in ---------------------------------------------------------


@dataclass
class World:
    """A database with realistic data, and what the hooks need to reach it."""

    app: Flask
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    # Values that name real objects, by path or body parameter name.
    known: dict[str, list[Any]] = field(default_factory=dict)

    def token_for(self, identity: str) -> str | None:
        """A working bearer token for ``identity``: a new one if the fuzzer revoked it."""
        if identity == "anonymous":
            return None
        secret = self.tokens[identity]
        with self.app.app_context():
            user = db.session.get(User, self.users[identity].id)
            assert user is not None and user.active, f"the {identity} account was deactivated"
            lookup = secret.split("_", 2)[1]
            token = db.session.execute(
                select(ApiToken).where(ApiToken.lookup == lookup)
            ).scalar_one()
            if token.revoked_at is None and token.expires_at > utcnow():
                return secret
            secret = f.token(user, name="fuzzing, again")
            db.session.remove()
        self.tokens[identity] = secret
        return secret


def build_world(app: Flask) -> World:
    """The starter set, a user with a token for every role, a panel, an open review and
    decisions: enough for every operation to reach its business logic."""
    world = World(app)
    result = app.test_cli_runner().invoke(args=["registry", "seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        for identity in IDENTITIES[1:]:
            role = "reader" if identity == "reader_elsewhere" else identity
            world.users[identity] = user = f.user(role)
            world.tokens[identity] = f.token(user, name="fuzzing")
        second_member = f.user("panel_member")
        board = f.panel(
            [world.users["panel_member"], second_member], name="North East London panel"
        )
        panel_id = board.id
        user_ids = [u.id for u in (*world.users.values(), second_member)]
        organisation_ids = [u.organisation_id for u in world.users.values()]
        db.session.remove()

    editor = _client(world, "editor")
    # An open review of a new draft of a starter policy, with one vote cast.
    made = editor.post(f"{API}/policies/research-depersonalised/versions", json={})
    assert made.status_code == 201, made.get_json()
    number = made.get_json()["number"]
    submitted = editor.post(
        f"{API}/policies/research-depersonalised/versions/{number}/submit",
        json={"panel_id": panel_id, "public_benefit": f.ASSESSMENT},
    )
    assert submitted.status_code == 201, submitted.get_json()
    review_id = submitted.get_json()["id"]
    voted = _client(world, "panel_member").put(
        f"{API}/reviews/{review_id}/votes/me", json={"choice": "endorse"}
    )
    assert voted.status_code == 201, voted.get_json()
    # A draft of a new policy, never submitted.
    drafted = editor.post(
        f"{API}/policies", json=f.policy_body("research-linked-genomics", title="Genomics")
    )
    assert drafted.status_code == 201, drafted.get_json()
    # Decisions, each in its own organisation.
    decision_ids = []
    for identity in ("reader", "reader_elsewhere", "editor"):
        decided = _client(world, identity).post(
            f"{API}/decisions",
            json={
                "purpose": "research",
                "data_category": "depersonalised",
                "circumstances": {"ethics_approval": True, "duration_months": 12},
            },
        )
        assert decided.status_code == 201, decided.get_json()
        decision_ids.append(decided.get_json()["id"])
    reviews = editor.get(f"{API}/reviews").get_json()
    panels = editor.get(f"{API}/panels").get_json()
    tokens = _client(world, "admin").get(f"{API}/tokens?limit=200").get_json()

    slugs = [p["slug"] for p in seed.STARTER_SET] + ["research-linked-genomics"]
    world.known = {
        "slug": slugs,
        "number": [1, 2],
        "review_id": [r["id"] for r in reviews],
        "panel_id": [p["id"] for p in panels],
        "user_id": user_ids,
        "token_id": [t["id"] for t in tokens],
        "decision_id": decision_ids,
        "seq": [1, 2, 10],
        "organisation_id": organisation_ids,
        "based_on": [1],
    }
    return world


def _client(world: World, identity: str) -> Any:
    secret = world.tokens[identity]
    return f.bearer(world.app, secret)


class Active:
    """The world and role the test being run uses (tests run one at a time)."""

    world: World | None = None
    role: str = "anonymous"
    generation: int = 0


def _active_world() -> World:
    assert Active.world is not None, "no world: the `world` fixture sets it up"
    return Active.world


# --- authentication: the auth hook ----------------------------------------------------------


class RoleToken:
    """schemathesis's auth hook: a bearer token for one identity (by default the role
    under test), fetched from the world and replaced if the fuzzer revoked it.

    With the provider's cache and ``retry_on=[401]``, a 401 (say after ``DELETE
    /tokens/{id}`` revoked the token in use) makes schemathesis fetch a fresh token and
    replay the request once, as it would after a token expired.
    """

    def __init__(self, identity: str | None = None) -> None:
        self.identity = identity

    def get(self, case: Any, context: Any) -> str | None:
        return _active_world().token_for(self.identity or Active.role)

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def _cache_key(case: Any, context: Any) -> str:
    return f"{Active.generation}:{Active.role}"


# --- the project's own check ------------------------------------------------------------------


class HygieneFailure(Failure):
    def __init__(self, operation: str, message: str) -> None:
        super().__init__(operation=operation, title="Response hygiene", message=message)
        self.code = "registry_response_hygiene"

    @property
    def _unique_key(self) -> str:
        return self.message


@schemathesis.check
def registry_response_hygiene(ctx: Any, response: Any, case: Any) -> bool | None:
    """Security headers on every answer, no caching of an authenticated one, and no
    traceback or SQL in an error body (what ``tests/support/watch.py`` asserts for the
    rest of the suite)."""
    problems = []
    headers = {name.lower(): values[0] for name, values in response.headers.items()}
    if not headers.get("x-request-id"):
        problems.append("no X-Request-ID")
    if headers.get("x-content-type-options") != "nosniff":
        problems.append("X-Content-Type-Options is not nosniff")
    if headers.get("referrer-policy") != "no-referrer":
        problems.append("Referrer-Policy is not no-referrer")
    policy = headers.get("content-security-policy", "")
    html = headers.get("content-type", "").startswith("text/html")
    if "frame-ancestors 'none'" not in policy:
        problems.append("the Content-Security-Policy does not forbid framing")
    if html and response.status_code != 304:
        if "default-src 'self'" not in policy or "script-src 'self'" not in policy:
            problems.append("an HTML answer without the HTML Content-Security-Policy")
    elif not policy.startswith("default-src 'none'"):
        problems.append("an answer that is not HTML without Content-Security-Policy 'none'")
    sent = {k.lower() for k in response.request.headers}
    if (
        "authorization" in sent
        and response.status_code < 300
        and headers.get("cache-control") != "no-store"
    ):
        problems.append("an authenticated answer may be cached (no Cache-Control: no-store)")
    if response.status_code >= 400:
        body = response.content.decode(errors="replace")
        # What the request sent and the answer echoes (a generated slug "psycopg" in
        # ``instance``) is not a leak: take the echoes out, then look.
        sent_body = response.request.body or b""
        if isinstance(sent_body, bytes):
            sent_body = sent_body.decode(errors="replace")
        url = urlsplit(str(response.request.url))
        echoes = [unquote(url.path), *(v for _k, v in parse_qsl(url.query)), str(sent_body)]
        for echo in sorted(filter(None, echoes), key=len, reverse=True):
            body = body.replace(echo, "")
        problems += [f"the error body leaks {leak!r}" for leak in watch.LEAKS if leak in body]
    if problems:
        raise HygieneFailure(case.operation.label, "; ".join(problems))
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    registry_response_hygiene,
]


# --- loading the committed spec, per role --------------------------------------------------


def _dictionaries(world: World) -> dict[str, Any]:
    """Generated ids, slugs and numbers also take the values of real objects."""
    dictionaries = {name: {"values": values} for name, values in world.known.items()}
    parameters: dict[str, Any] = {}
    for name in world.known:
        for location in ("path", "query", "body"):
            parameters[f"{location}.{name}"] = {"dictionary": name, "probability": 0.6}
    return {"dictionaries": dictionaries, "parameters": parameters}


def load_schema(world: World, role: str, **extra: Any) -> Any:
    """The committed spec, read from its file, with the app as the WSGI target."""
    generation = {"mode": "all", "max-examples": EXAMPLES, "database": "none"}
    if role == "anonymous":
        # No credentials at all: schemathesis would otherwise make some up for the
        # declared schemes (a random cookie and token together, which is a 400).
        generation["with-security-parameters"] = False
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": generation,
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
            },
            **_dictionaries(world),
            **extra,
        }
    )
    loaded = schemathesis.openapi.from_path(SPEC, config=config)
    loaded.app = world.app
    return loaded


@contextmanager
def world_for(role: str, database: TestDatabase, signing_key_file: Path) -> Iterator[World]:
    """A fresh database with realistic data, made the active world for ``role``."""
    app = create_app(database.app_config(signing_key_file))
    app.test_client_class = RegistryClient
    database.reset(app)
    with app.app_context():
        # A migrated database: resetting empties the tables but not alembic_version, which
        # an earlier test may have left behind on purpose (tests/test_ops.py on PostgreSQL).
        head = app.extensions["registry.migration_head"]
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    world = build_world(app)
    Active.world, Active.role = world, role
    Active.generation += 1
    try:
        yield world
    finally:
        Active.world = None
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(params=ROLES)
def api_schema(
    request: pytest.FixtureRequest, database: TestDatabase, signing_key_file: Path
) -> Iterator[Any]:
    """The spec, as one role sees the API: its own database, and its token on every
    request through the auth hook."""
    with world_for(request.param, database, signing_key_file) as world:
        loaded = load_schema(world, request.param)
        loaded.auth(cache_by_key=_cache_key, retry_on=[401])(RoleToken)
        yield loaded
        if os.environ.get("REGISTRY_FUZZ_STATS"):
            _report(request.param)


STATS: Counter[tuple[str, str, int]] = Counter()


def _report(role: str) -> None:
    by_operation: dict[str, Counter[int]] = {}
    for (seen_role, label, status), count in STATS.items():
        if seen_role == role:
            by_operation.setdefault(label, Counter())[status] += count
    with open(os.environ["REGISTRY_FUZZ_STATS"], "a") as out:
        for label, statuses in sorted(by_operation.items()):
            out.write(f"{role:13} {label:60} {dict(sorted(statuses.items()))}\n")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's ``from_fixture`` reads and rewrites ``Node._nodeid``, which
    pytest 9.2 no longer has (it keeps ``Node._id``): give it the attribute it expects.
    It only renames the node in schemathesis's own per-operation reports."""
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


# --- every operation, as every role -------------------------------------------------------------


@schema.parametrize()
def test_operation(case: Any) -> None:
    # The app is called directly, with no HTTP client to undo a content coding: ask for
    # the set as it is (its Brotli and gzip forms are tests/test_policy_set.py's).
    case.headers = {**(case.headers or {}), "Accept-Encoding": "identity"}
    try:
        response = case.call_and_validate(checks=CHECKS)
    except FailureGroup as failure:
        failure.add_note(_REPRODUCE)
        raise
    STATS[(Active.role, case.operation.label, response.status_code)] += 1


# --- links between operations, and object-level authorisation -----------------------------------

STATEFUL_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "ignored_auth",
    "object_level_authorization",
    "ensure_resource_availability",
)


@pytest.mark.parametrize("role", ROLES)
def test_stateful(role: str, database: TestDatabase, signing_key_file: Path) -> None:
    """Sequences along the links schemathesis infers from the spec (what one operation
    returns, the next one names), as ``role``; what a peer created is replayed as every
    other peer, who must not get it (``object_level_authorization``)."""
    with world_for(role, database, signing_key_file) as world:
        loaded = load_schema(
            world,
            role,
            checks={
                "enabled": False,
                **{name: {"enabled": True} for name in STATEFUL_CHECKS},
            },
            operations=[
                {
                    "include-operation-id": "getVersionProof",
                    "checks": {"ensure_resource_availability": {"enabled": False}},
                }
            ],
            phases={
                "stateful": {
                    "enabled": True,
                    "max-steps": STATEFUL_STEPS,
                    "inference": {"algorithms": ["dependency-analysis"]},
                }
            },
        )
        # Every identity is loaded, so the peers can be probed; the role under test sends
        # every request of the run.
        loaded.auth.providers.append(
            EscalatingAuthProvider(
                [RoleToken(identity) for identity in IDENTITIES],
                list(IDENTITIES),
                peers=PEERS,
                pinned=role,
            )
        )
        run_scenarios(loaded.as_state_machine(), role)
        if os.environ.get("REGISTRY_FUZZ_STATS"):
            _report(role + " (stateful)")


def run_scenarios(machine: Any, role: str) -> None:
    """Run ``STATEFUL_SCENARIOS`` scenarios of ``machine``, failing on the first check that
    fails.

    The database is not rolled back between scenarios (a server is not either), so
    Hypothesis may see a replayed prefix behave differently and stop with a ``Flaky``
    error. That is not a finding: the scenarios run so far passed every check, and the
    remaining ones run afresh, as schemathesis's own runner does.
    """
    completed = 0
    found: list[FailureGroup] = []

    class Scenario(machine):  # type: ignore[misc, valid-type]
        def validate_response(
            self,
            response: Any,
            case: Any,
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            STATS[(role + " (stateful)", case.operation.label, response.status_code)] += 1
            try:
                super().validate_response(
                    response, case, additional_checks=[registry_response_hygiene], **kwargs
                )
            except FailureGroup as failure:
                failure.add_note(_REPRODUCE)
                found.append(failure)
                raise

        def teardown(self) -> None:
            nonlocal completed
            completed += 1
            super().teardown()

    stalled = 0
    for attempt in range(100):
        if completed >= STATEFUL_SCENARIOS or stalled == 3:
            break
        before = completed
        runner = hypothesis.seed(SEED + attempt)(Scenario)
        try:
            runner.run(
                settings=hypothesis.settings(
                    max_examples=STATEFUL_SCENARIOS - completed,
                    stateful_step_count=STATEFUL_STEPS,
                    deadline=None,
                    database=None,
                    # Replaying a scenario to shrink it would not behave the same, for the
                    # same reason: report the sequence as it was found.
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                )
            )
        except hypothesis.errors.Flaky:
            if found:
                raise found[0] from None
        stalled = stalled + 1 if completed == before else 0
    assert completed >= STATEFUL_SCENARIOS // 2, f"only {completed} scenarios ran"


def test_a_streamed_export_gives_its_connection_back(
    database: TestDatabase, signing_key_file: Path
) -> None:
    """Found by the long run: each export kept a database connection after its body was
    sent, so a few more exports than the pool holds made every request a 503."""
    with world_for("auditor", database, signing_key_file) as world:
        client = _client(world, "auditor")
        with world.app.app_context():
            pool = db.engine.pool
            for _ in range(pool.size() + 2):
                for fmt in ("jsonl", "csv"):
                    with client.get(f"{API}/audit-events/export?format={fmt}") as response:
                        assert response.status_code == 200
                        assert response.get_data()
            assert pool.checkedout() == 0
