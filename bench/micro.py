"""Micro-benchmarks: measurements that need no HTTP, run after the HTTP scenarios.

Each is a plain function registered in ``MICRO`` under a name. It receives the run's
``Context`` (the migrated, seeded instance and database the HTTP scenarios used, its
environment in ``ctx.env``, and a scratch folder in ``ctx.workdir``) and returns a small
dict of figures, printed as one table row and written under ``"micro"`` in the JSON.
Keep each to seconds, do the set-up outside the timed part, and report rates or
per-item times rather than totals alone. ``--only NAME`` selects one by name.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.context import Context

Figures = Mapping[str, float | int | str]
EVENTS = 100_000
EVENTS_PER_CHECKPOINT = 2  # a write request appends one to three events and signs once


@dataclass(frozen=True)
class Micro:
    name: str
    run: Callable[[Context], Figures]


@contextmanager
def _app(ctx: Context, database_url: str | None = None) -> Iterator[Any]:
    """The registry's app, in process, on the run's database (or another one)."""
    import os

    from registry import create_app

    saved = dict(os.environ)
    os.environ.update(ctx.env)
    try:
        config = {"RATELIMIT_ENABLED": False, "AUDIT_VERIFY_CACHE_S": 0.0}
        if database_url:
            config["SQLALCHEMY_DATABASE_URI"] = database_url
        app = create_app(config)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with app.app_context():
        yield app
        from registry.db import db

        db.session.remove()
        db.engine.dispose()


@contextmanager
def _scratch_database(ctx: Context, name: str = "audit-micro") -> Iterator[str]:
    """An empty database of the run's kind, migrated, removed afterwards."""
    server = ctx.env.get("DATABASE_URL")
    if server:
        from bench.servers import postgres_database

        with postgres_database(server) as (url, _name):
            yield url
    else:
        yield f"sqlite:///{ctx.workdir / f'{name}.sqlite3'}"


def _fill_log(app: Any, count: int) -> None:
    """Append ``count`` events (and a checkpoint every few) as the service would, in bulk."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from registry.db import db
    from registry.models.audit import AuditEvent, Checkpoint
    from registry.services import chain, merkle
    from registry.services.audit import _signing_key
    from registry.services.merkle import Frontier

    upgrade()
    key = _signing_key()
    head = chain.GENESIS_HASH
    frontier = Frontier()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    nodes: list[tuple[merkle.Node, bytes]] = []
    for seq in range(1, count + 1):
        when = start + timedelta(seconds=seq)
        row = {
            "seq": seq,
            "occurred_at": when,
            "actor_type": "user",
            "actor_id": str(seq % 50),
            "actor_label": f"user{seq % 50}@example.org",
            "action": "decision.recorded",
            "entity_type": "decision",
            "entity_id": f"{seq:036d}",
            "before": None,
            "after": {"outcome": "permitted", "revision": 6, "result_hash": "ab" * 32},
            "request_id": f"{seq:032x}",
        }
        document = chain.event_document(
            seq=seq,
            time=when,
            actor_type=row["actor_type"],
            actor_id=row["actor_id"],
            actor_label=row["actor_label"],
            action=row["action"],
            entity_type=row["entity_type"],
            entity_id=row["entity_id"],
            before=None,
            after=row["after"],
            request_id=row["request_id"],
            prev_hash=head,
        )
        row["prev_hash"] = head
        head = chain.event_hash(document)
        row["hash"] = head
        events.append(row)
        frontier.append_leaf_hash(merkle.leaf_hash(bytes.fromhex(head)), nodes)
        if seq % EVENTS_PER_CHECKPOINT == 0 or seq == count:
            issued = chain.format_time(when)
            kid, signature = chain.sign_checkpoint(
                key, size=seq, root_hash=frontier.root().hex(), issued_at=issued
            )
            checkpoints.append(
                {
                    "size": seq,
                    "root_hash": frontier.root().hex(),
                    "issued_at": when,
                    "key_id": kid,
                    "signature": signature,
                    "frontier": frontier.to_json(),
                }
            )
        if len(events) >= 5000:
            db.session.execute(insert(AuditEvent), events)
            db.session.execute(insert(Checkpoint), checkpoints)
            _insert_nodes(nodes)
            events, checkpoints = [], []
    if events:
        db.session.execute(insert(AuditEvent), events)
    if checkpoints:
        db.session.execute(insert(Checkpoint), checkpoints)
    _insert_nodes(nodes)
    _set_head(count, head, frontier)
    db.session.commit()


def _set_head(size: int, head: str, frontier: Any) -> None:
    """Where the filled log ends, as the service's appends keep it."""
    from sqlalchemy import update

    from registry.db import db
    from registry.models.audit import LogHead

    db.session.execute(update(LogHead).values(size=size, hash=head, frontier=frontier.to_json()))


def _insert_nodes(nodes: list[Any]) -> None:
    from registry.db import db
    from registry.services.audit import store_nodes

    store_nodes(db.session(), nodes)
    nodes.clear()


PROOF_SIZES = (10_000, 1_000_000)
PROOFS = 300


def _fill_tree(count: int) -> None:
    """The stored nodes of a tree of ``count`` leaves (what proofs read), and nothing else."""
    import hashlib

    from flask_migrate import upgrade

    from registry.db import db
    from registry.services import merkle

    upgrade()
    frontier = merkle.Frontier()
    nodes: list[Any] = []
    for i in range(count):
        frontier.append_leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest(), nodes)
        if len(nodes) >= 20_000:
            _insert_nodes(nodes)
    _insert_nodes(nodes)
    db.session.commit()


def audit_proofs(ctx: Context) -> Figures:
    """The time to answer an inclusion and a consistency proof from the stored nodes, at
    10,000 and at 1,000,000 events: it should grow with log n, not with n."""
    import random
    import statistics

    from registry.db import db
    from registry.services import audit

    figures: dict[str, float | int | str] = {}
    medians = {}
    for size in PROOF_SIZES:
        with _scratch_database(ctx, f"proofs-{size}") as url, _app(ctx, url):
            _fill_tree(size)
            pick = random.Random(size)
            timings = []
            for _ in range(PROOFS):
                db.session.remove()
                session = db.session()
                index = pick.randrange(size)
                first = pick.randrange(1, size)
                started = time.perf_counter()
                audit.inclusion(session, index, size)
                audit.consistency(session, first, size)
                timings.append(time.perf_counter() - started)
            medians[size] = statistics.median(timings)
            figures[f"proofs_ms_at_{size}"] = round(medians[size] * 1000, 2)
    figures["ratio_1m_to_10k"] = round(medians[PROOF_SIZES[1]] / medians[PROOF_SIZES[0]], 2)
    return figures


def audit_log(ctx: Context) -> Figures:
    """Over a log of 100,000 events (50,000 checkpoints): a full verification from the
    database, and the peak Python memory of streaming the JSON-lines export."""
    import json

    from registry.db import db
    from registry.services import audit

    with _scratch_database(ctx) as url, _app(ctx, url) as app:
        _fill_log(app, EVENTS)
        db.session.remove()
        started = time.perf_counter()
        report = audit.verify(db.session())
        verify_s = time.perf_counter() - started
        assert report.ok, report.reason
        assert report.events == EVENTS
        db.session.remove()
        tracemalloc.start()
        started = time.perf_counter()
        size = lines = 0
        for document in audit.iter_documents(db.session()):
            size += len(json.dumps(document, separators=(",", ":"), sort_keys=True)) + 1
            lines += 1
        export_s = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert lines == EVENTS
        return {
            "events": EVENTS,
            "verify_s": round(verify_s, 2),
            "verify_events_per_s": round(EVENTS / verify_s),
            "export_mb": round(size / 1e6, 1),
            "export_s": round(export_s, 2),
            "export_peak_python_mb": round(peak / 1e6, 2),
        }


def decision_evaluation(ctx: Context) -> Figures:
    """The pure evaluation of one request against the seeded starter set, in process."""
    from bench.scenarios import DECISION
    from registry.present.policyset import evaluation_set
    from registry.services import decisions, evaluation

    with _app(ctx) as app, app.test_request_context():
        policy_set = evaluation_set()
        request = {**DECISION, "organisation_kind": "nhs_trust", "sensitive_categories": []}
        proposal = decisions.proposal(request)
        outcome = evaluation.evaluate(policy_set, proposal)["outcome"]
        rounds = 20_000
        started = time.perf_counter()
        for _ in range(rounds):
            evaluation.evaluate(policy_set, proposal)
        elapsed = time.perf_counter() - started
        return {
            "policies_in_set": len(policy_set.policies),
            "outcome": outcome,
            "us_per_request": round(elapsed / rounds * 1e6, 1),
        }


def _fill_state(app: Any, count: int) -> None:
    """A log of ``count`` events that each create a live row (half users, half their
    tokens), with the rows, as the service would write them: what the state check reads."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from registry.db import db
    from registry.models.audit import AuditEvent, Checkpoint
    from registry.models.identity import ApiToken, Organisation, User
    from registry.services import chain, ledger
    from registry.services.audit import _signing_key
    from registry.services.merkle import Frontier

    upgrade()
    key = _signing_key()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    db.session.execute(
        insert(Organisation),
        [{"id": 1, "name": "Bench Trust", "kind": "nhs_trust", "created_at": start}],
    )
    head, frontier = chain.GENESIS_HASH, Frontier()
    events: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []
    tokens: list[dict[str, Any]] = []

    def flush() -> None:
        for model, rows in (
            (User, users),
            (ApiToken, tokens),
            (AuditEvent, events),
            (Checkpoint, checkpoints),
        ):
            if rows:
                db.session.execute(insert(model), rows)
                rows.clear()

    for seq in range(1, count + 1):
        when = start + timedelta(seconds=seq)
        n = (seq + 1) // 2
        if seq % 2:
            users.append(
                {
                    "id": n,
                    "email": f"user{n}@example.org",
                    "display_name": f"User {n}",
                    "organisation_id": 1,
                    "role": "reader",
                    "active": True,
                    "password_hash": None,
                    "session_epoch": 0,
                    "created_at": when,
                }
            )
            entity, action = "user", "user.created"
            after: dict[str, Any] = {
                "id": n,
                "email": f"user{n}@example.org",
                "display_name": f"User {n}",
                "organisation_id": 1,
                "role": "reader",
                "active": True,
                "has_password": False,
            }
        else:
            lookup, secret_hash = f"{n:016x}", chain.sha256_hex(str(n).encode())
            tokens.append(
                {
                    "id": n,
                    "user_id": n,
                    "name": "bench",
                    "role": "reader",
                    "lookup": lookup,
                    "secret_hash": secret_hash,
                    "created_at": when,
                    "expires_at": expires,
                    "revoked_at": None,
                    "last_used_at": None,
                    "created_by_id": n,
                }
            )
            entity, action = "api_token", "token.created"
            after = {
                "id": n,
                "user_id": n,
                "name": "bench",
                "role": "reader",
                "expires_at": expires.isoformat(),
                "revoked_at": None,
                "credential": ledger.credential_digest(lookup, secret_hash),
            }
        row = {
            "seq": seq,
            "occurred_at": when,
            "actor_type": "system",
            "actor_id": None,
            "actor_label": "bench",
            "action": action,
            "entity_type": entity,
            "entity_id": str(n),
            "before": None,
            "after": after,
            "request_id": None,
        }
        document = chain.event_document(
            seq=seq,
            time=when,
            actor_type="system",
            actor_id=None,
            actor_label="bench",
            action=action,
            entity_type=entity,
            entity_id=str(n),
            before=None,
            after=after,
            request_id=None,
            prev_hash=head,
        )
        row["prev_hash"] = head
        row["hash"] = head = chain.event_hash(document)
        events.append(row)
        frontier.append(bytes.fromhex(head))
        if seq % EVENTS_PER_CHECKPOINT == 0 or seq == count:
            issued = chain.format_time(when)
            kid, signature = chain.sign_checkpoint(
                key, size=seq, root_hash=frontier.root().hex(), issued_at=issued
            )
            checkpoints.append(
                {
                    "size": seq,
                    "root_hash": frontier.root().hex(),
                    "issued_at": when,
                    "key_id": kid,
                    "signature": signature,
                    "frontier": frontier.to_json(),
                }
            )
        if len(events) >= 5000:
            flush()
    flush()
    _set_head(count, head, frontier)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # As autovacuum would after a load this size: without statistics the planner
        # reads the fresh tables badly and the state check took 25 times longer at 100k.
        db.session.execute(text("ANALYZE"))
        db.session.commit()


STATE_SIZES = (10_000, 100_000)


def audit_state(ctx: Context) -> Figures:
    """audit verify with and without the check of the live tables against the log, over
    logs of 10,000 and 100,000 events that each create a live row (users and tokens)."""
    from registry.db import db
    from registry.services import audit, ledger

    figures: dict[str, float | int | str] = {}
    for count in STATE_SIZES:
        with _scratch_database(ctx, f"audit-state-{count}") as url, _app(ctx, url) as app:
            _fill_state(app, count)
            key = audit.public_key()
            db.session.remove()
            started = time.perf_counter()
            walked = audit._walk(db.session(), key)
            chain_s = time.perf_counter() - started
            assert walked.ok, walked.reason
            db.session.remove()
            started = time.perf_counter()
            report = audit.verify(db.session(), key)
            full_s = time.perf_counter() - started
            assert report.ok, report.reason
            db.session.remove()
            started = time.perf_counter()
            assert ledger.check(db.session()) is None
            state_s = time.perf_counter() - started
            db.session.remove()
        label = f"{count // 1000}k"
        figures[f"{label}_chain_events_per_s"] = round(count / chain_s)
        figures[f"{label}_with_state_events_per_s"] = round(count / full_s)
        figures[f"{label}_state_only_rows_per_s"] = round(count / state_s)
    return figures


PUBLICATIONS = 30  # timed per configuration
ENDPOINTS = 100


def _endorsed_versions(count: int) -> tuple[int, list[tuple[Any, str]]]:
    """``count`` new policies, each with a version endorsed by a panel and ready to
    publish, as an editor would leave them: the organisation's id, and (editor actor,
    slug) pairs."""
    from registry.db import db
    from registry.models.review import Choice
    from registry.services import identity, memberships, panels, policies, reviews
    from registry.services.context import Actor

    system = Actor.system(label="bench")
    session = db.session()
    policies.sync_catalogue(session, system)
    org = identity.create_organisation(session, system, "Bench publications", "nhs_trust")
    made = []
    for kind in ("editor", "panel_member"):
        user = identity.create_user(
            session,
            system,
            email=f"{kind}@publications.example",
            display_name=kind,
            organisation_id=org.id,
            role=kind,
            password=None,
        )
        made.append(Actor(kind="user", user_id=user.id, role=kind, label=user.email))
    editor, member = made
    board = panels.create_panel(session, system, {"name": "Bench", "quorum": 1, "threshold": 1})
    memberships.add_member(session, system, board.id, member.user_id, None, None)
    db.session.commit()
    ready = []
    for n in range(count):
        slug = f"bench-publication-{n}"
        body = {
            "slug": slug,
            "title": f"Bench {n}",
            "purpose": "research",
            "data_category": "depersonalised",
            "body": "# Rules\n",
            "summary": "s",
            "rationale": "r",
            "sensitive_categories": [],
            "conditions": [{"code": "ethics_approval", "parameters": {}}],
        }
        version = policies.create_policy(session, editor, body)
        assessment = dict.fromkeys(
            (
                "benefits",
                "beneficiaries",
                "harms_and_mitigations",
                "commercial_involvement",
                "benefits_to_nhs_and_public",
                "public_communication",
            ),
            "Yes.",
        )
        review = reviews.submit(session, editor, version, board.id, None, assessment)
        reviews.cast_vote(session, member, review.id, Choice.ENDORSE, "")
        reviews.close(session, editor, review, "Publish.")
        db.session.commit()
        ready.append((editor, slug))
    return org.id, ready


def publication_outbox(ctx: Context) -> Figures:
    """A publication's own transaction (publish and commit, in process), with no webhook
    endpoint and with 100 that all want it, beside writing 100 outbox rows alone: the
    outbox should cost the publication what its rows cost, no more."""
    import statistics

    from flask_migrate import upgrade
    from sqlalchemy import insert

    from registry.db import db, writing
    from registry.models.webhook import WebhookEndpoint
    from registry.services import policies, webhooks

    timings: dict[int, list[float]] = {0: [], ENDPOINTS: []}
    rows_alone: list[float] = []
    with _scratch_database(ctx, "publications") as url, _app(ctx, url) as app:
        upgrade()
        with writing(), app.test_request_context():
            org_id, ready = _endorsed_versions(2 * PUBLICATIONS)
            for endpoints, batch in ((0, ready[:PUBLICATIONS]), (ENDPOINTS, ready[PUBLICATIONS:])):
                if endpoints:
                    db.session.execute(
                        insert(WebhookEndpoint),
                        [
                            {
                                "organisation_id": org_id,
                                "url": f"https://hooks{n}.example.org/",
                                "event_types": "",
                                "description": "",
                                "status": "paused",
                                "secret": webhooks.new_secret(),
                                "sequence": 0,
                            }
                            for n in range(endpoints)
                        ],
                    )
                    db.session.commit()
                for editor, slug in batch:
                    started = time.perf_counter()
                    policies.publish(db.session(), editor, slug, 1)
                    db.session.commit()
                    timings[endpoints].append(time.perf_counter() - started)
            for _ in range(PUBLICATIONS):
                started = time.perf_counter()
                webhooks.publish(db.session(), webhooks.PING, {"links": {}})
                db.session.commit()
                rows_alone.append(time.perf_counter() - started)
        # The publications' checkpoints, before the scratch database goes.
        app.extensions["registry.checkpointer"].close()
    none, hundred = (statistics.median(timings[n]) for n in (0, ENDPOINTS))
    rows = statistics.median(rows_alone)
    return {
        "publish_ms_0_endpoints": round(none * 1000, 2),
        "publish_ms_100_endpoints": round(hundred * 1000, 2),
        "ratio_100_to_0": round(hundred / none, 2),
        "outbox_100_rows_alone_ms": round(rows * 1000, 2),
        "added_ms_over_rows_alone": round((hundred - none - rows) * 1000, 2),
    }


MICRO: list[Micro] = [
    Micro("decision-evaluation", decision_evaluation),
    Micro("audit-log-100k", audit_log),
    Micro("audit-state", audit_state),
    Micro("audit-proofs", audit_proofs),
    Micro("publication-outbox", publication_outbox),
]
