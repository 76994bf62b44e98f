"""Webhooks, as an organisation's receiver sees them: registered through the API, written
to the outbox with the change they announce, delivered by the worker to a real HTTP
server, and verified there with the Standard Webhooks library (code nobody here wrote)."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from registry import delivery
from registry.db import db, utcnow, writing
from registry.delivery import Deliverer, Outcome
from registry.models.audit import AuditEvent
from registry.models.policy import SetRevision
from registry.models.webhook import WebhookEndpoint, WebhookMessage
from registry.services import audit, webhooks
from registry.services.context import Actor
from tests import factories as f
from tests.support.problems import assert_problem
from tests.support.proxy import Proxy
from tests.support.receiver import Receiver
from tests.support.server import environment

API = "/api/v1"
CHANGED = "registry.policy_set.changed"


@pytest.fixture
def hooks(app: Flask, make_app: Any) -> Flask:
    """The registry as tests and local use run it: loopback receivers allowed, retries
    fast."""
    return make_app(  # type: ignore[no-any-return]
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_RETRY_BASE_S=0.01,
        WEBHOOK_RETRY_MAX_S=0.02,
        DELIVERY_POLL_S=0.02,
        DELIVERY_LEASE_S=1.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that, after the test, verifies every delivery it was sent with the
    Standard Webhooks library and the secret of the endpoint it was sent for."""
    SECRETS.clear()
    started = Receiver().start()
    yield started
    started.stop()
    for got in started.received:
        endpoint = int(got.headers["webhook-id"].split("_")[1])
        Webhook(SECRETS[endpoint]).verify(got.body, got.headers)


# Each endpoint's secret, as registration showed it, by endpoint id.
SECRETS: dict[int, str] = {}


def register(
    client: Any, url: str, types: list[str] | None = None, status: int = 201
) -> dict[str, Any]:
    answer = client.post(
        f"{API}/webhooks", json={"url": url, "event_types": types or [], "description": "t"}
    )
    assert answer.status_code == status, answer.get_json()
    created: dict[str, Any] = answer.get_json()
    if status == 201:
        SECRETS[created["id"]] = created["secret"]
    return created


def pinged(app: Flask, receiver: Receiver) -> tuple[Any, dict[str, Any]]:
    """An editor's client, and their endpoint for pings with one ping queued."""
    editor, _ = f.as_role(app, "editor")
    created = register(editor, receiver.url, [webhooks.PING])
    assert editor.post(f"{API}/webhooks/{created['id']}/test").status_code == 202
    return editor, created


def pending() -> int:
    count = db.session.execute(
        select(func.count())
        .select_from(WebhookMessage)
        .join(WebhookEndpoint)
        .where(WebhookMessage.state == "pending", WebhookEndpoint.status == "active")
    ).scalar_one()
    db.session.rollback()
    return int(count)


def drain(deliverer: Deliverer, timeout: float = 15.0) -> None:
    """Run rounds until nothing deliverable is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not deliverer.round():
            if not pending():
                return
            time.sleep(0.02)
    raise AssertionError(f"{pending()} message(s) still pending")


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every delivery the receiver got, each verified as Standard Webhooks prescribes."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.received]


def test_an_organisation_registers_an_endpoint_and_receives_a_signed_publication(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    org = f.organisation("Barts Health")
    editor, _ = f.as_role(hooks, "editor", org=org)
    created = register(editor, receiver.url, [CHANGED])
    assert created["secret"].startswith("whsec_") and created["sequence"] == 0
    assert "secret" not in editor.get(f"{API}/webhooks/{created['id']}").get_json()

    f.published("research-data")
    [message] = db.session.execute(select(WebhookMessage)).scalars()
    assert (message.sequence, message.state) == (1, "pending")  # written with the revision
    db.session.rollback()
    drain(Deliverer(hooks))

    [event] = verified(receiver, created["secret"])
    [got] = receiver.received
    assert got.path == "/hooks"
    assert got.headers["webhook-id"] == event["id"] == f"msg_{created['id']}_1"
    assert event["specversion"] == "1.0" and event["type"] == CHANGED
    assert event["sequence"] == "00000000000000000001"
    assert event["source"].endswith(f"/api/v1/webhooks/{created['id']}")
    assert event["data"]["revision"] == 1 and event["data"]["reason"] == "published"
    # Thin: a link to the set, nothing of the policies themselves.
    assert event["data"]["links"]["self"].endswith("/api/v1/policy-set?revision=1")
    assert "policies" not in event["data"]
    assert datetime.fromisoformat(event["time"]) <= datetime.now(UTC)

    log = editor.get(f"{API}/webhooks/{created['id']}/deliveries").get_json()
    assert [(a["sequence"], a["status_code"], a["error"]) for a in log] == [(1, 200, None)]
    [shown] = editor.get(f"{API}/webhooks/{created['id']}/messages").get_json()
    assert (shown["id"], shown["state"], shown["attempts"]) == (event["id"], "delivered", 1)
    assert json.loads(shown["payload"]) == event


def test_a_forged_body_a_stale_timestamp_and_a_gap_are_each_detectable(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    f.published("research-data")
    f.published("research-data", summary="Second.")
    f.published("research-data", summary="Third.")
    # The second message never gets through: the receiver refuses it until retries end.
    refuse = f"msg_{created['id']}_2"
    receiver.answer = lambda r: 500 if r.headers["webhook-id"] == refuse else 200
    impatient = Deliverer(hooks)
    impatient.max_attempts = 1  # a refused message fails at once
    drain(impatient)
    hook = Webhook(created["secret"])
    accepted = [r for r in receiver.received if r.headers["webhook-id"] != refuse]
    sequences = [int(hook.verify(r.body, r.headers)["sequence"]) for r in accepted]
    assert sequences == [1, 3]  # the consumer sees 2 is missing, and can ask for it
    states = {m.sequence: m.state for m in db.session.execute(select(WebhookMessage)).scalars()}
    assert states == {1: "delivered", 2: "failed", 3: "delivered"}

    first = accepted[0]
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        hook.verify(first.body.replace(b'"revision":1', b'"revision":9'), first.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(webhooks.new_secret()).verify(first.body, first.headers)
    # Replayed later than the tolerance (signed honestly, ten minutes ago).
    old = datetime.now(UTC) - timedelta(minutes=10)
    stale = {
        **first.headers,
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": hook.sign(first.headers["webhook-id"], old, first.body),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        hook.verify(first.body, stale)

    # The replay asked for: the same message, same id and body.
    receiver.received.clear()
    receiver.answer = lambda _r: 200
    replayed = editor.post(f"{API}/webhooks/{created['id']}/replay", json={"from_sequence": 2})
    assert replayed.status_code == 202 and replayed.get_json()["messages"] == 2
    drain(Deliverer(hooks))
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        refuse,
        f"msg_{created['id']}_3",
    ]


def test_a_receiver_down_for_a_while_gets_everything_once_in_order(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    port = receiver.port
    receiver.stop()  # nobody listens: connection refused
    for n in range(4):
        f.published("research-data", summary=f"Change {n}.")
    deliverer = Deliverer(hooks)
    for _ in range(5):
        deliverer.round()
        time.sleep(0.03)
    log = editor.get(f"{API}/webhooks/{created['id']}/deliveries").get_json()
    assert log and all(a["status_code"] is None and a["error"] for a in log)
    assert {a["sequence"] for a in log} == {1}  # nothing overtakes the first message

    back = Receiver(port).start()
    try:
        drain(deliverer)
        hook = Webhook(created["secret"])
        ids = [hook.verify(r.body, r.headers)["id"] for r in back.received]
    finally:
        back.stop()
    assert ids == [f"msg_{created['id']}_{n}" for n in (1, 2, 3, 4)]


def test_410_gone_disables_the_endpoint_and_a_resume_delivers_what_waited(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    receiver.answer = lambda _r: 410
    f.published("research-data")
    drain(Deliverer(hooks))
    shown = editor.get(f"{API}/webhooks/{created['id']}").get_json()
    assert shown["status"] == "disabled" and "410" in shown["status_reason"]
    f.published("research-data", summary="While it was gone.")
    assert len(receiver.received) == 1  # nothing more is sent to it
    disabled = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "webhook.disabled")
    ).scalar_one()
    assert disabled.actor_type == "system"
    db.session.rollback()

    receiver.answer = lambda _r: 200
    assert editor.post(f"{API}/webhooks/{created['id']}/resume").get_json()["status"] == "active"
    drain(Deliverer(hooks))
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        f"msg_{created['id']}_{n}" for n in (1, 1, 2)
    ]


def test_a_paused_endpoint_keeps_its_messages_until_resumed(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    assert editor.post(f"{API}/webhooks/{created['id']}/pause").get_json()["status"] == "paused"
    f.published("research-data")
    f.published("research-data", summary="Again.")
    Deliverer(hooks).round()
    assert receiver.received == []
    editor.post(f"{API}/webhooks/{created['id']}/resume")
    drain(Deliverer(hooks))
    assert [json.loads(r.body)["sequence"][-1] for r in receiver.received] == ["1", "2"]


def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [webhooks.PING])
    rotated = editor.post(f"{API}/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.get_json()["secret"]
    assert new != created["secret"] and rotated.get_json()["previous_secret_until"]
    pinged = editor.post(f"{API}/webhooks/{created['id']}/test")
    assert pinged.status_code == 202 and pinged.get_json()["sequence"] == 1
    drain(Deliverer(hooks))
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (created["secret"], new):  # a receiver on either secret accepts it
        assert Webhook(secret).verify(got.body, got.headers)["type"] == webhooks.PING


def test_each_endpoint_gets_only_the_types_it_asked_for_and_a_referral_only_its_own(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    f.published("research-data")
    trust, other = f.organisation("A trust"), f.organisation("Another trust")
    reader, _ = f.as_role(hooks, "reader", org=trust)
    editor, _ = f.as_role(hooks, "editor", org=trust)
    elsewhere, _ = f.as_role(hooks, "editor", org=other)
    mine = register(editor, receiver.url, ["registry.decision.referred"])
    theirs = register(elsewhere, receiver.url, ["registry.decision.referred", CHANGED])
    decided = reader.post(
        f"{API}/decisions",
        json={
            "purpose": "research",
            "data_category": "depersonalised",
            "circumstances": {"ethics_approval": True, "duration_months": 12},
            "sensitive_categories": ["hiv"],
        },
    ).get_json()
    assert decided["outcome"] == "referred_to_panel"
    drain(Deliverer(hooks))
    [event] = verified(receiver, mine["secret"])
    assert event["type"] == "registry.decision.referred"
    assert event["data"]["decision"] == decided["id"]
    assert event["source"].endswith(f"/webhooks/{mine['id']}")
    assert elsewhere.get(f"{API}/webhooks/{theirs['id']}").get_json()["sequence"] == 0


def test_no_message_without_its_change_and_no_change_without_its_message(
    hooks: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    register(editor, receiver.url, [CHANGED])
    f.published("research-data")
    assert _count(WebhookMessage) == _count(SetRevision) == 1  # one commit wrote both
    # A publication whose commit fails after its messages were written: neither stays.
    monkeypatch.setattr(audit, "store_nodes", _fail)
    with pytest.raises(RuntimeError, match="the disk is full"):
        f.published("research-data", summary="Never published.")
    db.session.rollback()
    assert _count(WebhookMessage) == _count(SetRevision) == 1


def _fail(*_args: Any) -> None:
    raise RuntimeError("the disk is full")


def _count(model: Any) -> int:
    count = db.session.execute(select(func.count()).select_from(model)).scalar_one()
    db.session.rollback()
    return int(count)


def test_two_workers_at_once_send_each_message_once(hooks: Flask, receiver: Receiver) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    created = [register(editor, receiver.url, [webhooks.PING]) for _ in range(4)]
    for endpoint in created:
        for _ in range(5):
            assert editor.post(f"{API}/webhooks/{endpoint['id']}/test").status_code == 202
    workers = [Deliverer(hooks), Deliverer(hooks)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(receiver.received) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # time for a duplicate to show itself
    stop.set()
    for thread in threads:
        thread.join(10)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 20 and len(set(ids)) == 20
    for endpoint in created:  # and each endpoint's in order
        mine = [int(i.rsplit("_", 1)[1]) for i in ids if i.startswith(f"msg_{endpoint['id']}_")]
        assert mine == [1, 2, 3, 4, 5]


def test_a_worker_that_dies_mid_delivery_loses_nothing(hooks: Flask, receiver: Receiver) -> None:
    f.catalogue()
    _editor, created = pinged(hooks, receiver)
    dead = Deliverer(hooks)
    [claim] = dead.claim()  # taken, and then the worker is gone before it records
    dead.send(claim)
    assert Deliverer(hooks).round() == 0  # leased: nobody else takes it yet
    time.sleep(1.1)  # the lease ends
    drain(Deliverer(hooks))
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == [f"msg_{created['id']}_1"] * 2  # at most a duplicate, with the same id


def test_a_scheduled_version_is_announced_when_it_comes_into_force(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    f.published("research-data")
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    starts = utcnow() + timedelta(seconds=3)
    f.published("research-data", summary="Later.", effective_from=starts)
    stop = threading.Event()
    worker = threading.Thread(target=Deliverer(hooks).run, args=(stop,))
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        arrived = utcnow()
    finally:
        stop.set()
        worker.join(10)
    published, in_force = verified(receiver, created["secret"])
    assert published["data"]["reason"] == "published"
    assert in_force["data"]["reason"] == "in_force"
    assert (in_force["data"]["policy"], in_force["data"]["version"]) == ("research-data", 2)
    assert starts <= arrived < starts + timedelta(seconds=3)
    assert datetime.fromisoformat(in_force["time"]) >= starts
    # Announced once, however often a worker looks again.
    Deliverer(hooks).round()
    assert len(receiver.received) == 2


# --- who may, and what is refused ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/in",  # not https
        "https://127.0.0.1/in",  # loopback
        "https://localhost/in",
        "https://[::1]/in",
        "https://10.1.2.3/in",  # private
        "https://192.168.0.10/in",
        "https://172.16.5.4/in",
        "https://[fd00::1]/in",
        "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "https://[fe80::1]/in",
        "https://100.64.0.1/in",  # shared address space
        "https://[::ffff:127.0.0.1]/in",  # loopback, spelt as IPv6
        "https://0.0.0.0/in",
        "https://user:pass@hooks.example.org/in",
        "https://[2002:7f00:1::1]/in",  # 6to4, carrying 127.0.0.1
        "https://[2002:a9fe:a9fe::]/in",  # 6to4, carrying 169.254.169.254
        "https://hooks.example.org/caf\u00e9",  # not percent-encoded
        "https://hooks.example.org/a b",
        "not a url",
    ],
)
def test_forbidden_addresses_are_refused_at_registration(app: Flask, url: str) -> None:
    editor, _ = f.as_role(app, "editor")
    answer = editor.post(f"{API}/webhooks", json={"url": url})
    assert_problem(answer, 422)
    assert "url" in answer.get_json()["errors"]
    assert db.session.execute(select(func.count()).select_from(WebhookEndpoint)).scalar() == 0


def test_a_name_that_resolves_to_a_private_address_is_refused(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "resolve", lambda _host, _port: ["93.184.215.14", "10.0.0.7"])
    editor, _ = f.as_role(app, "editor")
    answer = editor.post(f"{API}/webhooks", json={"url": "https://hooks.example.org/in"})
    assert_problem(answer, 422)
    assert "10.0.0.7" in answer.get_json()["errors"]["url"][0]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1"])
def test_a_name_that_changes_to_a_forbidden_address_is_refused_at_delivery(
    app: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setattr(webhooks, "resolve", lambda _host, _port: ["93.184.215.14"])
    editor, _ = f.as_role(app, "editor")
    created = register(editor, f"https://hooks.example.org:{receiver.port}/in", [webhooks.PING])
    editor.post(f"{API}/webhooks/{created['id']}/test")
    monkeypatch.setattr(webhooks, "resolve", lambda _host, _port: [address])  # DNS changed
    assert Deliverer(app).round() == 1
    [attempt] = editor.get(f"{API}/webhooks/{created['id']}/deliveries").get_json()
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused:") and address in attempt["error"]
    assert receiver.received == []


def test_only_an_organisations_editors_and_administrators_manage_its_endpoints(
    hooks: Flask, receiver: Receiver
) -> None:
    org = f.organisation("A trust")
    editor, _ = f.as_role(hooks, "editor", org=org)
    admin, _ = f.as_role(hooks, "admin", org=org)
    created = register(editor, receiver.url)
    assert admin.get(f"{API}/webhooks").get_json()[0]["id"] == created["id"]
    for role in ("reader", "panel_member", "auditor"):
        client, _ = f.as_role(hooks, role, org=org)
        assert_problem(client.get(f"{API}/webhooks"), 403)
        assert_problem(client.post(f"{API}/webhooks", json={"url": receiver.url}), 403)
    assert_problem(hooks.test_client().get(f"{API}/webhooks"), 401)
    stranger, _ = f.as_role(hooks, "editor")  # another organisation: ids reveal nothing
    assert stranger.get(f"{API}/webhooks").get_json() == []
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/pause"),
        ("post", "/test"),
        ("post", "/rotate-secret"),
        ("get", "/deliveries"),
    ]:
        answer = getattr(stranger, method)(f"{API}/webhooks/{created['id']}{path}", json={})
        assert_problem(answer, 404)
        assert_problem(getattr(stranger, method)(f"{API}/webhooks/999{path}", json={}), 404)
    assert editor.get(f"{API}/webhooks/{created['id']}").get_json()["status"] == "active"


def test_bad_requests_change_nothing(hooks: Flask, receiver: Receiver) -> None:
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    bad = editor.post(f"{API}/webhooks", json={"url": receiver.url, "event_types": ["gossip"]})
    assert_problem(bad, 422)
    changed = editor.patch(
        f"{API}/webhooks/{created['id']}",
        json={"url": "ftp://hooks.example.org/", "description": "x"},
    )
    assert_problem(changed, 422)
    too_far = editor.post(f"{API}/webhooks/{created['id']}/replay", json={"from_sequence": 5})
    assert_problem(too_far, 422)
    assert_problem(editor.post(f"{API}/webhooks/{created['id']}/replay", json={}), 422)
    shown = editor.get(f"{API}/webhooks/{created['id']}").get_json()
    assert (shown["url"], shown["description"], shown["event_types"]) == (
        receiver.url,
        "t",
        [CHANGED],
    )
    assert editor.get(f"{API}/webhooks").get_json() == [shown]
    # Every change that was made is on the record, and no secret is.
    actions = [
        e.action
        for e in db.session.execute(
            select(AuditEvent).where(AuditEvent.entity_type == "webhook")
        ).scalars()
    ]
    assert actions == ["webhook.created"]
    events = db.session.execute(select(AuditEvent.after)).scalars()
    assert not any(created["secret"] in json.dumps(after) for after in events)


def test_an_update_and_a_delete_are_audited(hooks: Flask, receiver: Receiver) -> None:
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url)
    patched = editor.patch(
        f"{API}/webhooks/{created['id']}", json={"event_types": [CHANGED], "description": "new"}
    )
    assert patched.status_code == 200 and patched.get_json()["event_types"] == [CHANGED]
    assert editor.delete(f"{API}/webhooks/{created['id']}").status_code == 204
    assert_problem(editor.get(f"{API}/webhooks/{created['id']}"), 404)
    actions = [
        (e.action, (e.after or e.before)["description"])
        for e in db.session.execute(
            select(AuditEvent).where(AuditEvent.entity_type == "webhook").order_by(AuditEvent.seq)
        ).scalars()
    ]
    assert actions == [
        ("webhook.created", "t"),
        ("webhook.updated", "new"),
        ("webhook.deleted", "new"),
    ]


def test_the_worker_waits_for_a_database_that_went_away_and_then_resumes(
    app: Flask,
    make_app: Any,
    database: Any,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL cut off (every connection dropped, new ones refused); SQLite locked by
    another process. The worker logs, waits and carries on where it was: nothing lost."""
    settings: dict[str, Any] = {
        "WEBHOOK_ALLOW_PRIVATE": True,
        "DELIVERY_POLL_S": 0.05,
        "DB_CONNECT_TIMEOUT_S": 2,
        "DB_LOCK_TIMEOUT_MS": 300,
    }
    proxy: Proxy | None = None
    if database.backend == "postgresql":
        parts = urlsplit(database.url)
        proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        proxy.start()
        settings["SQLALCHEMY_DATABASE_URI"] = proxy.url_for(database.url)
    worker_app = make_app(**settings)
    hooks_client = f.bearer(make_app(WEBHOOK_ALLOW_PRIVATE=True), f.token(f.user("editor")))
    created = register(hooks_client, receiver.url, [webhooks.PING])
    hooks_client.post(f"{API}/webhooks/{created['id']}/test")

    stop = threading.Event()
    holder: sqlite3.Connection | None = None
    if proxy is not None:
        proxy.stop()
    else:
        holder = sqlite3.connect(database.path, timeout=10, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
    worker = threading.Thread(target=Deliverer(worker_app).run, args=(stop,))
    try:
        worker.start()
        time.sleep(2)
        assert worker.is_alive() and receiver.received == []  # waiting, not dead
        assert any("not answering" in r.getMessage() for r in caplog.records)
        if proxy is not None:
            proxy.start()
        elif holder is not None:
            holder.execute("ROLLBACK")
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
        if proxy is not None:
            proxy.stop()
        if holder is not None:
            holder.close()
    assert [r.headers["webhook-id"] for r in receiver.received] == [f"msg_{created['id']}_1"]


def test_the_readmes_receiver_verifies_a_delivery_and_notices_a_missed_one(
    hooks: Flask, receiver: Receiver
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Webhooks, feeds and mail") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 -- the README's own code
    receive = namespace["receive"]
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [webhooks.PING])
    for _ in range(3):
        editor.post(f"{API}/webhooks/{created['id']}/test")
    drain(Deliverer(hooks))
    first, second, third = receiver.received
    assert receive(first.body, first.headers, created["secret"], 0)["type"] == webhooks.PING
    with pytest.raises(LookupError, match="expected message 2, got 3"):
        receive(third.body, third.headers, created["secret"], 1)
    with pytest.raises(WebhookVerificationError):
        receive(second.body + b" ", second.headers, created["secret"], 1)
    assert receive(first.body, first.headers, created["secret"], 2) is None  # a duplicate


@pytest.mark.slow
def test_a_worker_process_killed_mid_delivery_loses_nothing(
    hooks: Flask, receiver: Receiver, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    """``flask registry deliver`` as it runs in production, killed (SIGKILL) while the
    receiver is still holding its request: the next worker sends the message again once
    the lease ends, with the same webhook-id."""
    _editor, created = pinged(hooks, receiver)
    arrived = threading.Event()
    release = threading.Event()

    def hold(_received: Any) -> int:
        arrived.set()
        release.wait(10)
        return 200

    receiver.answer = hold
    config = database.app_config(
        signing_key_file, WEBHOOK_ALLOW_PRIVATE=True, DELIVERY_POLL_S=0.05, DELIVERY_LEASE_S=2.0
    )
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "registry", "deliver"],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment(config, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert arrived.wait(30), "the worker never sent the message"
        worker.kill()  # mid-delivery: the receiver has not answered
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        release.set()
    receiver.answer = lambda _r: 200
    [message] = db.session.execute(select(WebhookMessage)).scalars()
    assert (message.state, message.attempts) == ("pending", 0)  # nothing recorded it as sent
    db.session.rollback()
    time.sleep(2.1)  # the dead worker's lease ends
    drain(Deliverer(hooks))
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == [f"msg_{created['id']}_1"] * 2
    assert [m.state for m in db.session.execute(select(WebhookMessage)).scalars()] == ["delivered"]


def test_a_change_to_an_endpoint_during_a_publication_never_deadlocks(
    hooks: Flask, receiver: Receiver
) -> None:
    """An endpoint paused while a publication commits: the publication's append writes
    the endpoint's row under the chain's lock, so the pause must take the chain's lock
    before the row, or on PostgreSQL each waits for the other and one is killed."""
    f.catalogue()
    editor, account = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    actor = Actor(
        kind="user", user_id=account.id, role="editor", organisation_id=account.organisation_id
    )
    changed, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def pause() -> None:
        try:
            with hooks.app_context(), writing():
                webhooks.set_status(db.session(), actor, created["id"], "paused")
                db.session.flush()
                changed.set()
                go.wait(10)
                db.session.commit()
        except BaseException as exc:  # reported below
            failures.append(exc)
            changed.set()

    def publish() -> None:
        try:
            with hooks.app_context():
                f.published("research-data")
        except BaseException as exc:
            failures.append(exc)

    pausing = threading.Thread(target=pause)
    pausing.start()
    assert changed.wait(10)
    publishing = threading.Thread(target=publish)
    publishing.start()
    time.sleep(0.5)  # the publication is now waiting for the pause's transaction
    go.set()
    pausing.join(30)
    publishing.join(30)
    assert failures == []
    shown = editor.get(f"{API}/webhooks/{created['id']}").get_json()
    assert (shown["status"], shown["sequence"]) == ("paused", 1)


# --- what a hostile receiver or an unlucky moment does ---------------------------------------


class Trickle:
    """A receiver that accepts, then answers one byte every half second, forever."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(65536)
                while not self.stop.is_set():
                    conn.sendall(b"X")
                    time.sleep(0.5)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_receiver_that_trickles_its_answer_is_cut_off_and_holds_up_no_one(
    hooks: Flask, receiver: Receiver
) -> None:
    slow = Trickle()
    try:
        editor, _ = f.as_role(hooks, "editor")
        fast = register(editor, receiver.url, [webhooks.PING])
        stuck = register(editor, slow.url, [webhooks.PING])
        for endpoint in (fast, stuck):
            editor.post(f"{API}/webhooks/{endpoint['id']}/test")
        deliverer = Deliverer(hooks)
        deliverer.timeout = 1.5
        started = time.monotonic()
        assert deliverer.round() == 2
        assert time.monotonic() - started < 5  # not the receiver's forever
    finally:
        slow.close()
    [cut] = editor.get(f"{API}/webhooks/{stuck['id']}/deliveries").get_json()
    assert cut["status_code"] is None and cut["error"] and cut["duration_ms"] < 3000
    [done] = editor.get(f"{API}/webhooks/{fast['id']}/deliveries").get_json()
    assert done["status_code"] == 200 and done["duration_ms"] < 1000


def test_an_outcome_after_the_lease_ran_out_changes_nothing(
    hooks: Flask, receiver: Receiver
) -> None:
    editor, created = pinged(hooks, receiver)
    stale = Deliverer(hooks)
    [claim] = stale.claim()
    time.sleep(1.1)  # its lease ends; another worker delivers the message
    drain(Deliverer(hooks))
    stale.record(Outcome(claim, utcnow(), 500, None, 9000))  # the slow worker comes back
    [message] = editor.get(f"{API}/webhooks/{created['id']}/messages").get_json()
    assert (message["state"], message["attempts"]) == ("delivered", 1)
    log = editor.get(f"{API}/webhooks/{created['id']}/deliveries").get_json()
    assert sorted(a["status_code"] for a in log) == [200, 500]  # both tries are on the log


def test_an_endpoint_deleted_while_its_message_is_in_flight(
    hooks: Flask, receiver: Receiver
) -> None:
    editor, gone = pinged(hooks, receiver)
    deliverer = Deliverer(hooks)
    [claim] = deliverer.claim()
    assert editor.delete(f"{API}/webhooks/{gone['id']}").status_code == 204
    deliverer.record(deliverer.send(claim))  # no error, and nothing is left of it
    assert _count(WebhookMessage) == 0


def test_a_send_that_fails_unexpectedly_is_a_failed_attempt_not_a_dead_worker(
    hooks: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor, created = pinged(hooks, receiver)

    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise UnicodeEncodeError("ascii", "ü", 0, 1, "not ASCII")

    monkeypatch.setattr(delivery, "post", broken)
    assert Deliverer(hooks).round() == 1
    [attempt] = editor.get(f"{API}/webhooks/{created['id']}/deliveries").get_json()
    assert attempt["error"].startswith("UnicodeEncodeError")


def test_a_ping_reaches_an_endpoint_that_filters_it_out(hooks: Flask, receiver: Receiver) -> None:
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    pinged = editor.post(f"{API}/webhooks/{created['id']}/test").get_json()
    assert pinged == {"messages": 1, "sequence": 1}
    drain(Deliverer(hooks))
    [got] = receiver.received
    assert got.headers["content-type"].startswith("application/cloudevents+json")
    assert Webhook(created["secret"]).verify(got.body, got.headers)["type"] == webhooks.PING


def test_the_audit_log_keeps_no_credential_from_an_endpoints_url(
    hooks: Flask, receiver: Receiver
) -> None:
    editor, _ = f.as_role(hooks, "editor")
    register(editor, receiver.url + "?token=receivers-own-secret")
    [event] = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "webhook.created")
    ).scalars()
    assert "receivers-own-secret" not in json.dumps(event.after)
    assert event.after["url_origin"] == f"http://127.0.0.1:{receiver.port}"


def test_an_endpoint_id_is_never_used_twice(hooks: Flask, receiver: Receiver) -> None:
    """A new endpoint with a deleted one's id would repeat its message ids, which a
    receiver that drops duplicates by webhook-id would drop."""
    editor, _ = f.as_role(hooks, "editor")
    first = register(editor, receiver.url)
    assert editor.delete(f"{API}/webhooks/{first['id']}").status_code == 204
    assert register(editor, receiver.url)["id"] != first["id"]


def test_a_scheduled_version_overtaken_before_its_time_is_not_announced(
    hooks: Flask, receiver: Receiver
) -> None:
    f.catalogue()
    f.published("research-data")
    editor, _ = f.as_role(hooks, "editor")
    created = register(editor, receiver.url, [CHANGED])
    f.published(
        "research-data",
        summary="Version 2, from later.",
        effective_from=utcnow() + timedelta(seconds=2),
    )
    f.published(
        "research-data",
        summary="Version 3, from sooner.",
        effective_from=utcnow() + timedelta(seconds=1),
    )
    time.sleep(2.2)
    drain(Deliverer(hooks))
    events = verified(receiver, created["secret"])
    in_force = [(e["data"]["version"]) for e in events if e["data"]["reason"] == "in_force"]
    assert in_force == [3]  # version 2 never applied: 3 came first and outranks it


def test_every_link_in_a_message_leads_somewhere(hooks: Flask, receiver: Receiver) -> None:
    f.catalogue()
    editor, _ = f.as_role(hooks, "editor")
    types = [t for t in webhooks.EVENT_TYPES if t != "registry.checkpoint.issued"]
    created = register(editor, receiver.url, types)
    f.published("research-data")
    drain(Deliverer(hooks))
    events = verified(receiver, created["secret"])
    assert {e["type"] for e in events} >= {
        CHANGED,
        "registry.version.submitted",
        "registry.review.opened",
        "registry.review.closed",
    }
    reader, _ = f.as_role(hooks, "reader")
    for event in events:
        for name, link in event["data"]["links"].items():
            parts = urlsplit(link)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            answer = reader.get(target)
            assert answer.status_code == 200, (event["type"], name, target)
