"""The delivery worker: ``flask --app wsgi registry deliver``.

Each round, in short transactions of its own:

1. **Notices**: what time alone makes true is announced, once however many workers look
   (a ``notices`` row marks it): a published version whose ``in_force_from`` has come,
   a review that closes within ``REVIEW_CLOSING_SOON_S``; and reviews past their closing
   time are closed, as any request would close them.
2. **Claim**: the first pending message of each active endpoint that is due, up to
   ``DELIVERY_THREADS`` of them, taken with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (the
   write lock on SQLite) and leased for ``DELIVERY_LEASE_S``. Only an endpoint's first
   pending message is ever taken, so an endpoint receives its messages in order, and a
   second worker never takes the next one while the first is in flight.
3. **Send**, outside any transaction, in parallel: the body as written, signed with the
   endpoint's secrets (Standard Webhooks), to an address checked again now (DNS can
   change since registration), with no redirect followed.
4. **Record** every attempt; a 2xx delivers, a 410 Gone disables the endpoint (its
   messages wait for a resume), anything else is tried again after an exponential
   backoff with jitter until ``WEBHOOK_RETRY_HORIZON_S`` after the message was written,
   then marked failed (the next message goes on; the consumer sees the gap in
   ``sequence`` and can ask for a replay).

A worker killed mid-delivery loses its lease: the message goes again, with the same
``webhook-id``, once the lease ends. A database that goes away is waited for.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from registry.db import current_session, db, is_postgres, table_of, utcnow, writing
from registry.models.policy import PolicyVersion, SetRevision
from registry.models.review import Review
from registry.models.webhook import (
    MailMessage,
    Notice,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from registry.services import audit, chain, mail, policyset, reviews, webhooks
from registry.services.context import Actor
from registry.services.webhooks import ForbiddenAddress

log = logging.getLogger("registry.delivery")
_jitter = random.SystemRandom()
USER_AGENT = "london-health-and-care-data-policy-registry/webhooks"


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: int
    endpoint_id: int
    sequence: int
    payload: str
    attempts: int
    url: str
    secrets: list[str]
    lease: datetime  # the lease this worker took: its outcome is recorded only under it


@dataclass(frozen=True, slots=True)
class Outcome:
    claim: Claim
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow: bool) -> int:
    """POST ``body`` to ``url`` at an address checked now (each checked address in turn
    until one accepts the connection); the status (redirects are answers, never
    followed). The whole exchange has ``timeout`` seconds, however slowly the receiver
    trickles its answer. Raises ``ForbiddenAddress``, ``OSError`` or ``HTTPException``."""
    host, port, addresses = webhooks.safe_addresses(url, allow=allow)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    deadline = time.monotonic() + timeout
    for n, address in enumerate(addresses):
        connection = kind(host, port, address, max(0.1, deadline - time.monotonic()))
        cut = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (connection,))
        cut.start()
        try:
            try:
                connection.connect()
            except OSError:
                if n + 1 < len(addresses) and time.monotonic() < deadline:
                    continue  # the next address
                raise
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            return int(response.status)
        finally:
            cut.cancel()
            connection.close()
    raise OSError(f"{host} has no address to connect to")


def _cut(connection: http.client.HTTPConnection) -> None:
    """The deadline passed mid-exchange: end it (the read under way fails)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def signature_headers(claim: Claim, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: one signature per secret in force."""
    from standardwebhooks.webhooks import Webhook

    msg_id = webhooks.message_id(claim.endpoint_id, claim.sequence)
    body = claim.payload.encode()
    signatures = [Webhook(secret).sign(msg_id, now, body) for secret in claim.secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
        # A CloudEvent in structured mode (the CloudEvents HTTP binding).
        "content-type": "application/cloudevents+json; charset=utf-8",
        "user-agent": USER_AGENT,
    }


class Deliverer:
    def __init__(self, app: Flask) -> None:
        config = app.config
        self.app = app
        self.poll = float(config["DELIVERY_POLL_S"])
        self.lease = timedelta(seconds=float(config["DELIVERY_LEASE_S"]))
        self.threads = int(config["DELIVERY_THREADS"])
        self.timeout = float(config["WEBHOOK_TIMEOUT_S"])
        self.base = float(config["WEBHOOK_RETRY_BASE_S"])
        self.longest = float(config["WEBHOOK_RETRY_MAX_S"])
        self.horizon = timedelta(seconds=float(config["WEBHOOK_RETRY_HORIZON_S"]))
        self.mail_base = float(config["MAIL_RETRY_BASE_S"])
        self.max_attempts = self.attempts_within(self.horizon.total_seconds(), self.base)
        self.mail_attempts = self.attempts_within(self.horizon.total_seconds(), self.mail_base)
        self.closing_soon = timedelta(seconds=float(config["REVIEW_CLOSING_SOON_S"]))
        self.allow = bool(config["WEBHOOK_ALLOW_PRIVATE"])
        self.postbox = mail.Postbox(config, app.instance_path)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="registry-deliver")

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set, waiting out a database that is away."""
        wait = self.poll
        while not stop.is_set():
            try:
                busy = self.round()
                wait = self.poll
            except SQLAlchemyError as exc:
                log.warning("the database is not answering (%s); trying again in %.0f s", exc, wait)
                busy, wait = 0, min(wait * 2, 30.0)
            except Exception:  # a defect must not stop every organisation's deliveries
                log.exception("a delivery round failed; carrying on")
                busy = 0
            if not busy:
                stop.wait(wait)
        self._pool.shutdown(wait=True)

    def round(self) -> int:
        """One round; how many messages (webhooks and mail) it sent or tried to."""
        self.notices()
        claims = self.claim()
        for done in as_completed([self._pool.submit(self.send, c) for c in claims]):
            self.record(done.result())  # as each ends: a slow receiver holds up no other
        return len(claims) + self.post_mail()

    # --- notices ---------------------------------------------------------------------------

    def notices(self) -> int:
        """Announce what time has made true since the last round; how many notices.

        Read first, in a read transaction: most rounds find nothing and write nothing.
        When there is work, the write transaction takes the chain's lock before any
        endpoint row (``audit.hold_chain``), the order every writer of those rows keeps."""
        with self.app.app_context():
            try:
                now = utcnow()
                due, keys = self._due_notices(current_session(), now)
                if not due and not keys:
                    return 0
                db.session.rollback()
                made = 0
                with writing():
                    session = current_session()
                    audit.hold_chain(session)
                    reviews.close_due(session, due)
                    for key, announce in keys.items():
                        if session.get(Notice, key) is None:  # read again, under the lock
                            session.execute(
                                insert(table_of(Notice)), [{"key": key, "made_at": now}]
                            )
                            announce(session, now)
                            made += 1
                    db.session.commit()
                return made
            finally:
                db.session.remove()

    def _due_notices(self, session: Any, now: datetime) -> tuple[list[int], dict[str, Any]]:
        """Reviews past their closing time, and each notice not yet made (by its key,
        with what makes it)."""
        keys: dict[str, Any] = {}
        scheduled = session.execute(
            select(PolicyVersion)
            .join(SetRevision, SetRevision.number == PolicyVersion.revision_number)
            .where(
                PolicyVersion.in_force_from <= now,
                PolicyVersion.in_force_from > now - self.horizon,
                PolicyVersion.in_force_from > SetRevision.recorded_at,
            )
        ).scalars()
        for version in scheduled:
            keys[f"in_force:{version.id}"] = self._in_force(version.id)
        closing = session.execute(
            select(Review.id).where(
                Review.status == "open",
                Review.closes_at > now,
                Review.closes_at <= now + self.closing_soon,
            )
        ).scalars()
        for review_id in closing:
            keys[f"closing_soon:{review_id}"] = self._closing_soon(review_id)
        made = set(session.execute(select(Notice.key).where(Notice.key.in_(list(keys)))).scalars())
        return reviews.due_review_ids(session), {k: v for k, v in keys.items() if k not in made}

    @staticmethod
    def _in_force(version_id: int) -> Any:
        def announce(session: Any, now: datetime) -> None:
            version = session.get(PolicyVersion, version_id)
            timeline = policyset.load_timeline(session, policyset.latest_revision(session))
            applying = [
                e for e in timeline if e.policy_id == version.policy_id and e.in_force_from <= now
            ]
            if max(applying, key=lambda e: e.number).version_id != version_id:
                return  # a later version took its place first: it never came into force
            webhooks.publish(
                session,
                "registry.policy_set.changed",
                webhooks.revision_data(
                    version.revision_number or 0,
                    "in_force",
                    policy=version.policy.slug,
                    version=version.number,
                    in_force_from=chain.format_time(version.in_force_from or now),
                ),
                at=now,
            )

        return announce

    @staticmethod
    def _closing_soon(review_id: int) -> Any:
        def announce(session: Any, now: datetime) -> None:
            review = session.get(Review, review_id)
            if review is None or review.status != "open":
                return
            webhooks.publish(
                session,
                "registry.review.closing_soon",
                webhooks.review_data(reviews.review_snapshot(review)),
                at=now,
            )
            mail.review_closing(session, review)

        return announce

    # --- claim, send, record ---------------------------------------------------------------

    def _any_due(self, model: Any) -> bool:
        """Whether any ``model`` row is pending and due: read before taking a writer's
        transaction, so that an idle worker takes no lock (SQLite's is the database's)."""
        with self.app.app_context():
            try:
                found = (
                    current_session()
                    .execute(
                        select(model.id)
                        .where(model.state == "pending", model.next_attempt_at <= utcnow())
                        .limit(1)
                    )
                    .first()
                )
                return found is not None
            finally:
                db.session.remove()

    def claim(self) -> list[Claim]:
        m, e = WebhookMessage, WebhookEndpoint
        earlier = aliased(WebhookMessage)
        if not self._any_due(m):
            return []
        with self.app.app_context(), writing():
            try:
                session = current_session()
                now = utcnow()
                first_pending = (
                    select(func.min(earlier.sequence))
                    .where(earlier.endpoint_id == m.endpoint_id, earlier.state == "pending")
                    .scalar_subquery()
                )
                statement = (
                    select(
                        m.id,
                        m.endpoint_id,
                        m.sequence,
                        m.payload,
                        m.attempts,
                        e.url,
                        e.secret,
                        e.previous_secret,
                        e.previous_secret_until,
                    )
                    .join(e, e.id == m.endpoint_id)
                    .where(
                        m.state == "pending",
                        e.status == "active",
                        m.next_attempt_at <= now,
                        or_(m.leased_until.is_(None), m.leased_until <= now),
                        m.sequence == first_pending,
                    )
                    .order_by(m.next_attempt_at, m.id)
                    .limit(self.threads)
                )
                if is_postgres():
                    statement = statement.with_for_update(of=m, skip_locked=True)
                rows = session.execute(statement).all()
                lease = now + self.lease
                if rows:
                    session.execute(
                        update(m)
                        .where(m.id.in_([row.id for row in rows]))
                        .values(leased_until=lease)
                    )
                db.session.commit()
            finally:
                db.session.remove()
        return [
            Claim(
                row.id,
                row.endpoint_id,
                row.sequence,
                row.payload,
                row.attempts,
                row.url,
                webhooks.signing_secrets(
                    row.secret, row.previous_secret, row.previous_secret_until, now
                ),
                lease,
            )
            for row in rows
        ]

    def send(self, claim: Claim) -> Outcome:
        at = utcnow()
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            status = post(
                claim.url,
                claim.payload.encode(),
                signature_headers(claim, at),
                timeout=self.timeout,
                allow=self.allow,
            )
        except ForbiddenAddress as exc:
            error = f"refused: {exc}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # recorded as the attempt's failure, like any other
            log.exception("sending message %s failed", claim.message_id)
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration = int((time.monotonic() - started) * 1000)
        return Outcome(claim, at, status, error, duration)

    def backoff(self, attempts: int, base: float | None = None) -> float:
        """Seconds before try ``attempts + 1``: doubling from the base, capped, jittered."""
        delay = min((base or self.base) * 2.0 ** min(attempts - 1, 40), self.longest)
        return float(delay * _jitter.uniform(0.5, 1.0))

    def attempts_within(self, horizon: float, base: float) -> int:
        """How many tries the backoff makes in ``horizon`` seconds (at its longest delays):
        a message fails after that many, counted from its last replay or resume too."""
        tries, spent = 1, 0.0
        while True:
            delay = min(base * 2.0 ** min(tries - 1, 40), self.longest)
            if delay >= self.longest:  # capped from here on: the rest is a division
                return tries + max(0, int((horizon - spent) // self.longest))
            spent += delay
            if spent > horizon:
                return tries
            tries += 1

    def record(self, outcome: Outcome) -> None:
        """Record one attempt, and the message's new state if this worker still holds
        its lease (one whose lease ran out, or whose message was replayed or deleted
        meanwhile, changes nothing but the log)."""
        claim = outcome.claim
        m = table_of(WebhookMessage)
        with self.app.app_context(), writing():
            try:
                session = current_session()
                now = utcnow()
                held = session.execute(
                    select(m.c.leased_until).where(m.c.id == claim.message_id)
                ).first()
                if held is None:  # its endpoint was deleted meanwhile
                    db.session.commit()
                    return
                session.execute(
                    insert(table_of(WebhookAttempt)),
                    [
                        {
                            "endpoint_id": claim.endpoint_id,
                            "message_id": claim.message_id,
                            "sequence": claim.sequence,
                            "attempted_at": outcome.at,
                            "status_code": outcome.status_code,
                            "error": outcome.error,
                            "duration_ms": outcome.duration_ms,
                        }
                    ],
                )
                attempts = claim.attempts + 1
                state, next_at, delivered = "pending", now, None
                if outcome.status_code is not None and 200 <= outcome.status_code < 300:
                    state, delivered = "delivered", now
                elif outcome.status_code == 410:
                    self._disable(session, claim.endpoint_id)
                else:
                    next_at = now + timedelta(seconds=self.backoff(attempts))
                    if attempts >= self.max_attempts:
                        state = "failed"
                session.execute(
                    webhooks.RECORD_MESSAGE,
                    {
                        "message": claim.message_id,
                        "lease": claim.lease,
                        "new_state": state,
                        "new_attempts": attempts,
                        "next_at": next_at,
                        "delivered": delivered,
                    },
                )
                db.session.commit()
            finally:
                db.session.remove()

    @staticmethod
    def _disable(session: Any, endpoint_id: int) -> None:
        """The receiver said it is gone for good: stop sending (its messages wait, for a
        resume), on the record."""
        audit.hold_chain(session)  # before the endpoint's row, as every writer of it
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is not None and endpoint.status == "active":
            webhooks.change_status(
                session,
                Actor.system("delivery"),
                endpoint,
                "disabled",
                "The endpoint answered 410 Gone.",
            )

    # --- mail ------------------------------------------------------------------------------

    def post_mail(self) -> int:
        """Send the mail that is due: taken under a lease (its next try put off, so no
        other worker takes it meanwhile; a batch sized to be sent well within it), sent
        outside any transaction, and recorded where the lease still holds; how many."""
        m = table_of(MailMessage)
        if not self._any_due(MailMessage):
            return 0
        batch = max(1, min(50, int(self.lease.total_seconds() / self.postbox.timeout) - 1))
        with self.app.app_context():
            try:
                with writing():
                    session = current_session()
                    now = utcnow()
                    statement = (
                        select(m)
                        .where(m.c.state == "pending", m.c.next_attempt_at <= now)
                        .order_by(m.c.next_attempt_at, m.c.id)
                        .limit(batch)
                    )
                    if is_postgres():
                        statement = statement.with_for_update(skip_locked=True)
                    letters = [mail.Letter(**row._mapping) for row in session.execute(statement)]
                    lease = now + self.lease
                    if letters:
                        session.execute(
                            update(m)
                            .where(m.c.id.in_([letter.id for letter in letters]))
                            .values(next_attempt_at=lease)
                        )
                    db.session.commit()
                if not letters:
                    return 0
                results = self.postbox.send(letters)
                with writing():
                    session = current_session()
                    now = utcnow()
                    for letter in letters:
                        error = results.get(letter.id)
                        attempts = letter.attempts + 1
                        values: dict[str, Any] = {"attempts": attempts, "last_error": error}
                        if error is None:
                            values |= {"state": "sent", "sent_at": now}
                        else:
                            delay = self.backoff(attempts, self.mail_base)
                            values["next_attempt_at"] = now + timedelta(seconds=delay)
                            if attempts >= self.mail_attempts:
                                values["state"] = "failed"
                        session.execute(
                            update(m)
                            .where(m.c.id == letter.id, m.c.next_attempt_at == lease)
                            .values(**values)
                        )
                    db.session.commit()
                return len(letters)
            finally:
                db.session.remove()
