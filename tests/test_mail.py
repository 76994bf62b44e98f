"""Mail to panel members, received by a real SMTP server running in the test (aiosmtpd):
a review opened, a reminder a day before it closes to those who have not voted (unless
they turned reminders off), and the outcome when it closes. With no SMTP server set,
the same messages are files in the instance folder."""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Iterator
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select

from registry.db import db
from registry.delivery import Deliverer
from registry.models.webhook import MailMessage
from tests import factories as f
from tests.support.problems import assert_problem
from tests.support.scenes import form_login, form_token, html

API = "/api/v1"


class Sink:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[str]:
        return [str(m["Subject"]) for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def _review(app: Flask, members: list[Any]) -> tuple[Any, int]:
    """A change submitted to a panel of ``members``: the editor's client, the review id."""
    f.catalogue()
    board = f.panel(members, quorum=0.3, threshold=0.5)
    editor, _ = f.as_role(app, "editor")
    assert editor.post(f"{API}/policies", json=f.policy_body("mail-policy")).status_code == 201
    opened = editor.post(
        f"{API}/policies/mail-policy/versions/1/submit",
        json={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
    )
    assert opened.status_code == 201, opened.get_json()
    return editor, opened.get_json()["id"]


def test_a_panel_member_receives_the_three_mails(
    app: Flask, make_app: Any, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    mailer = make_app(
        MAIL_SMTP_HOST="127.0.0.1",
        MAIL_SMTP_PORT=port,
        MAIL_FROM="registry@london.example",
        REVIEW_CLOSING_SOON_S=60 * 86400,  # the review closes "soon" at once
    )
    voter, quiet, forgetful = (f.user("panel_member") for _ in range(3))
    editor, review_id = _review(app, [voter, quiet, forgetful])
    # One member turns reminders off; one votes before the reminder goes out.
    off = f.bearer(app, f.token(quiet)).patch(f"{API}/auth/me", json={"review_reminders": False})
    assert off.status_code == 200 and off.get_json()["user"]["review_reminders"] is False
    voted = f.bearer(app, f.token(voter)).put(
        f"{API}/reviews/{review_id}/votes/me", json={"choice": "endorse"}
    )
    assert voted.status_code == 201

    Deliverer(mailer).round()
    opened = sink.messages[:3]
    assert sorted(m["To"] for m in opened) == sorted(p.email for p in (voter, quiet, forgetful))
    for message in opened:
        assert message["Subject"] == "A review has opened: Policy mail-policy, version 1"
        assert message["From"] == "registry@london.example"
        text = message.get_content()
        # The link is written with the message, from where the review opened.
        assert f"{app.config['PUBLIC_URL']}/panel/reviews/{review_id}" in text
        assert "The review closes on " in text
    # The reminder: only to the member who has not voted and wants reminders.
    assert sink.to(forgetful.email)[1:] == [
        "A review closes tomorrow: Policy mail-policy, version 1"
    ]
    assert sink.to(voter.email)[1:] == sink.to(quiet.email)[1:] == []
    Deliverer(mailer).round()  # made once, however often the worker looks
    assert len(sink.messages) == 4

    closed = editor.post(f"{API}/reviews/{review_id}/close", json={})
    assert closed.status_code == 200
    Deliverer(mailer).round()
    for person in (voter, quiet, forgetful):
        assert sink.to(person.email)[-1] == "A review has closed: Policy mail-policy, version 1"
    outcome = next(m for m in sink.messages[4:] if m["To"] == voter.email).get_content()
    assert "the panel endorsed the change" in outcome
    states = set(db.session.execute(select(MailMessage.state)).scalars())
    assert states == {"sent"}


def test_with_no_smtp_server_mail_is_written_to_the_instance_folder(
    app: Flask, make_app: Any, tmp_path: Path
) -> None:
    mailer = make_app(MAIL_FOLDER=str(tmp_path / "mail"))
    member = f.user("panel_member")
    _editor, review_id = _review(app, [member])
    Deliverer(mailer).round()
    [written] = list((tmp_path / "mail").glob("*.eml"))
    message = email.message_from_bytes(written.read_bytes(), policy=default)
    assert message["To"] == member.email
    assert message["Subject"].startswith("A review has opened")
    assert f"/panel/reviews/{review_id}" in message.get_content()


def test_mail_waits_for_an_smtp_server_that_is_down(
    app: Flask, make_app: Any, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    down = _free_port()
    mailer = make_app(MAIL_SMTP_HOST="127.0.0.1", MAIL_SMTP_PORT=down, MAIL_RETRY_BASE_S=0.01)
    member = f.user("panel_member")
    _review(app, [member])
    Deliverer(mailer).round()
    [queued] = db.session.execute(select(MailMessage)).scalars()
    assert (queued.state, queued.attempts) == ("pending", 1) and queued.last_error
    db.session.rollback()
    back = make_app(MAIL_SMTP_HOST="127.0.0.1", MAIL_SMTP_PORT=port)
    time.sleep(0.05)
    Deliverer(back).round()
    assert [m["To"] for m in sink.messages] == [member.email]


def test_reminders_are_a_members_own_setting(app: Flask) -> None:
    member = f.user("panel_member")
    client = f.bearer(app, f.token(member))
    assert client.get(f"{API}/auth/me").get_json()["user"]["review_reminders"] is True
    assert_problem(client.patch(f"{API}/auth/me", json={"review_reminders": "no"}), 422)
    assert_problem(client.patch(f"{API}/auth/me", json={"role": "admin"}), 422)
    assert client.get(f"{API}/auth/me").get_json()["user"]["review_reminders"] is True


def test_a_member_turns_reminders_off_and_on_from_the_panel_page(app: Flask) -> None:
    member = f.user("panel_member")
    browser = form_login(app, member)
    page = html(browser.get("/panel"))
    assert "Turn reminders off" in page
    # Without the form's token: refused, nothing changed.
    refused = browser.post("/panel/reminders", data={"review_reminders": "off"})
    assert refused.status_code == 403
    assert "Turn reminders off" in html(browser.get("/panel"))
    done = browser.post(
        "/panel/reminders", data={"review_reminders": "off", "csrf_token": form_token(page)}
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/panel#reminders")
    assert "Turn reminders on" in html(browser.get("/panel"))
    db.session.expire_all()
    assert db.session.get(type(member), member.id).review_reminders is False
    db.session.rollback()
    # Someone else's role cannot.
    editor = f.user("editor")
    client = f.bearer(app, f.token(editor))
    assert client.post("/panel/reminders", data={"review_reminders": "off"}).status_code == 403


def test_a_title_that_breaks_lines_makes_a_one_line_subject(
    app: Flask, make_app: Any, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    mailer = make_app(MAIL_SMTP_HOST="127.0.0.1", MAIL_SMTP_PORT=port)
    member = f.user("panel_member")
    f.catalogue()
    board = f.panel([member], quorum=0.3, threshold=0.5)
    editor, _ = f.as_role(app, "editor")
    body = f.policy_body("broken-title", title="Line one\u2028Line two")
    assert editor.post(f"{API}/policies", json=body).status_code == 201
    opened = editor.post(
        f"{API}/policies/broken-title/versions/1/submit",
        json={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
    )
    assert opened.status_code == 201
    Deliverer(mailer).round()
    [message] = sink.messages
    assert message["Subject"] == "A review has opened: Line one Line two, version 1"
