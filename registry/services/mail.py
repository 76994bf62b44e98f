"""Mail to panel members: a review opened, a review closing tomorrow (for those who have
not voted and want reminders), a review closed with its outcome.

Each message is written to the mail outbox in the transaction of what it tells (the
audit append's hook, like webhooks), so a member is never told of a review that did not
open; ``registry.delivery`` sends them by SMTP (``MAIL_SMTP_HOST``) or, with no SMTP
configured, writes each as an ``.eml`` file to ``MAIL_FOLDER`` (under the instance
folder), so that ``make run`` needs nothing installed.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from registry.db import table_of, utcnow
from registry.models.review import Review, Vote
from registry.models.webhook import MailMessage
from registry.services import audit, chain, panels
from registry.services.webhooks import public_url

SIGNATURE = "London health and care data policy registry"


def _title(review: Review) -> str:
    """The policy's title on one line (a Subject header cannot break)."""
    title = " ".join(review.version.policy.title.split())
    return f"{title}, version {review.version.number}"


def _when(moment: datetime) -> str:
    return moment.strftime("%A %d %B %Y at %H:%M UTC")


def _serving(session: Session, review: Review) -> list[Any]:
    """The members serving on the review's panel today (active, in their term)."""
    today = utcnow().date()
    return [m.user for m in panels.members(session, review.panel_id) if m.serving(today)]


def _queue(session: Session, kind: str, people: Iterable[Any], subject: str, body: str) -> int:
    now = utcnow()
    rows = [
        {
            "user_id": person.id,
            "to_address": person.email,
            "kind": kind,
            "subject": subject,
            "body": f"Dear {person.display_name},\n\n{body}\n\n{SIGNATURE}\n",
            "created_at": now,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for person in people
    ]
    if rows:
        session.connection().execute(insert(table_of(MailMessage)), rows)
    return len(rows)


def review_opened(session: Session, review: Review) -> int:
    return _queue(
        session,
        "review_opened",
        _serving(session, review),
        f"A review has opened: {_title(review)}",
        f"Your panel has been asked to review a change: {_title(review)}.\n\n"
        f"The review closes on {_when(review.closes_at)}. Read the change and vote:\n"
        f"{public_url(f'/panel/reviews/{review.id}')}",
    )


def review_closing(session: Session, review: Review) -> int:
    """A reminder to each serving member who has not voted and wants reminders."""
    voted = set(session.execute(select(Vote.user_id).where(Vote.review_id == review.id)).scalars())
    people = [p for p in _serving(session, review) if p.id not in voted and p.review_reminders]
    return _queue(
        session,
        "review_closing",
        people,
        f"A review closes tomorrow: {_title(review)}",
        f"The review of {_title(review)} closes on {_when(review.closes_at)}, and you have "
        f"not voted yet. You can vote here:\n{public_url(f'/panel/reviews/{review.id}')}\n\n"
        "To stop these reminders, turn them off on your panel page:\n"
        + public_url("/panel#reminders"),
    )


_OUTCOMES = {
    "endorsed": "endorsed the change",
    "rejected": "did not endorse the change",
    "no_quorum": "closed without a quorum: too few members voted",
}


def review_closed(session: Session, review: Review) -> int:
    said = _OUTCOMES.get(review.outcome or "", f"closed ({review.outcome})")
    return _queue(
        session,
        "review_closed",
        _serving(session, review),
        f"A review has closed: {_title(review)}",
        f"The review of {_title(review)} has closed: the panel {said}.\n\n"
        f"The outcome and the tally are here:\n{public_url(f'/panel/reviews/{review.id}')}",
    )


def announce(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """The audit append's hook: mail for the reviews that opened or closed."""
    for row in rows:
        if row["action"] in ("review.opened", "review.closed"):
            review = session.get(Review, int(row["entity_id"]))
            if review is not None:
                (review_opened if row["action"] == "review.opened" else review_closed)(
                    session, review
                )


audit.ON_APPEND.append(announce)


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Letter:
    """A message from the outbox, as read to be sent (no session behind it)."""

    id: int
    user_id: int | None
    to_address: str
    kind: str
    subject: str
    body: str
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


def compose(message: Letter, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to_address
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = make_msgid(idstring=f"registry-{message.id}")
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body)
    return mail


class Postbox:
    """Where mail goes: an SMTP server, or a folder of ``.eml`` files."""

    def __init__(self, config: Mapping[str, Any], instance_path: str) -> None:
        self.host = str(config["MAIL_SMTP_HOST"] or "")
        self.port = int(config["MAIL_SMTP_PORT"])
        self.user = str(config["MAIL_SMTP_USER"] or "")
        self.password = str(config["MAIL_SMTP_PASSWORD"] or "")
        self.starttls = bool(config["MAIL_SMTP_STARTTLS"])
        self.timeout = float(config["MAIL_SMTP_TIMEOUT_S"])
        self.sender = str(config["MAIL_FROM"])
        self.folder = Path(config["MAIL_FOLDER"] or os.path.join(instance_path, "mail"))

    def send(self, messages: list[Letter]) -> dict[int, str | None]:
        """Send each; by id, None where it went and the error where it did not (a message
        that cannot be sent fails alone)."""
        if not self.host:
            return {m.id: _failure(self._file, m) for m in messages}
        results: dict[int, str | None] = {}
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                for m in messages:
                    results[m.id] = _failure(
                        lambda m: smtp.send_message(compose(m, self.sender)), m
                    )
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            results.update({m.id: error for m in messages if m.id not in results})
        return results

    def _file(self, message: Letter) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = chain.format_time(message.created_at).replace(":", "")
        path = self.folder / f"{stamp}-{message.id}.eml"
        path.write_bytes(bytes(compose(message, self.sender)))


def _failure(send: Any, message: Letter) -> str | None:
    """None if ``send(message)`` went; else what went wrong, in words."""
    try:
        send(message)
    except (OSError, ValueError, smtplib.SMTPException) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None
