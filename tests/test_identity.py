"""Logins for people, tokens for machines, and the administration of both."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from flask import Flask
from sqlalchemy import select, update

from registry.db import db, utcnow
from registry.models.audit import AuditEvent
from registry.models.identity import ApiToken, User
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"


def _events(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).scalars()
    )


# --- sessions ---------------------------------------------------------------------------


def test_login_starts_a_session_with_safe_cookie_flags(make_app: Any, database: Any) -> None:
    app = make_app(SESSION_COOKIE_SECURE=True)
    database.reset(app)
    with app.test_request_context():
        account = f.user("editor")
    client = app.test_client()
    response = client.post(
        f"{API}/auth/login", json={"email": account.email.upper(), "password": f.PASSWORD}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"]["email"] == account.email
    assert body["authenticated_by"] == "session"
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert "password" not in response.get_data(as_text=True)


def test_me_reports_the_session_user(app: Flask) -> None:
    account = f.user("panel_member")
    client, csrf = f.logged_in(app, account)
    me = client.get(f"{API}/auth/me").get_json()
    assert me["user"]["id"] == account.id
    assert me["role"] == "panel_member"
    assert me["csrf_token"] == csrf


def test_wrong_password_and_unknown_email_look_the_same(app: Flask) -> None:
    account = f.user("reader")
    client = app.test_client()
    wrong = client.post(f"{API}/auth/login", json={"email": account.email, "password": "nope" * 4})
    unknown = client.post(
        f"{API}/auth/login", json={"email": "nobody@example.org", "password": "nope" * 4}
    )
    for response in (wrong, unknown):
        assert_problem(response, 401, "unauthenticated")
        assert "Set-Cookie" not in response.headers
    assert wrong.get_json()["detail"] == unknown.get_json()["detail"]
    failures = _events("auth.login_failed")
    assert [e.entity_id for e in failures] == [str(account.id), "unknown"]
    assert all("password" not in str(e.after) for e in failures)


def test_a_bearer_request_never_gets_a_cookie(app: Flask) -> None:
    """Not on any route, not even those that start or use a session: every GET the app
    serves (with its path filled in), the API login and the pages' login form."""
    account = f.user("panel_member")
    secret = f.token(account)
    client = f.bearer(app, secret)
    filled = {"int": "1", "uuid": str(uuid4())}
    asked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        path = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", lambda m: filled.get(m[1] or "", "x"), rule.rule
        )
        response = client.get(path)
        asked += 1
        assert "Set-Cookie" not in response.headers, (path, response.status_code)
    assert asked > 30
    for path in ("/login", "/panel"):
        assert "Set-Cookie" not in client.get(path).headers, path
    login = client.post(f"{API}/auth/login", json={"email": account.email, "password": f.PASSWORD})
    assert_problem(login, 400, "mixed-credentials")
    assert "Set-Cookie" not in login.headers
    assert not _events("auth.login")
    page = client.post(
        "/login", data={"email": account.email, "password": f.PASSWORD, "csrf_token": "x"}
    )
    assert "Set-Cookie" not in page.headers


def test_inactive_users_cannot_log_in(app: Flask) -> None:
    account = f.user("reader")
    db.session.execute(update(User).where(User.id == account.id).values(active=False))
    db.session.commit()
    response = app.test_client().post(
        f"{API}/auth/login", json={"email": account.email, "password": f.PASSWORD}
    )
    assert_problem(response, 401)


def test_login_is_rate_limited_per_account(make_app: Any, database: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ACCOUNT="3 per minute")
    database.reset(app)
    with app.test_request_context():
        account = f.user("reader")
    client = app.test_client()
    statuses = [
        client.post(
            f"{API}/auth/login", json={"email": account.email, "password": "wrong" * 3}
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    limited = client.post(
        f"{API}/auth/login", json={"email": account.email, "password": f.PASSWORD}
    )
    assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1
    # Another account from the same address is not held back by this one's limit.
    other = client.post(f"{API}/auth/login", json={"email": "x@example.org", "password": "y" * 12})
    assert other.status_code == 401


def test_login_is_rate_limited_per_address(make_app: Any, database: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ADDRESS="2 per minute")
    database.reset(app)
    client = app.test_client()
    statuses = [
        client.post(
            f"{API}/auth/login", json={"email": f"p{i}@example.org", "password": "x" * 12}
        ).status_code
        for i in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_cookie_writes_need_the_csrf_token(app: Flask) -> None:
    account = f.user("reader")
    client, csrf = f.logged_in(app, account)
    body = {"name": "laptop"}
    assert_problem(client.post(f"{API}/tokens", json=body), 403, "csrf-failed")
    assert_problem(
        client.post(f"{API}/tokens", json=body, headers={"X-CSRF-Token": "forged"}),
        403,
        "csrf-failed",
    )
    assert db.session.execute(select(ApiToken)).first() is None
    made = client.post(f"{API}/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201


def test_logout_ends_the_session(app: Flask) -> None:
    client, csrf = f.logged_in(app, f.user("reader"))
    assert client.post(f"{API}/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert_problem(client.get(f"{API}/auth/me"), 401)


def test_unauthenticated_is_a_401_problem_never_a_redirect(client: Any) -> None:
    response = client.get(f"{API}/auth/me")
    assert_problem(response, 401, "unauthenticated")
    assert "Location" not in response.headers
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- tokens ---------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_stored_only_as_a_hash(app: Flask) -> None:
    account = f.user("editor")
    client, csrf = f.logged_in(app, account)
    created = client.post(
        f"{API}/tokens",
        json={"name": "ci", "expires_in_days": 7},
        headers={"X-CSRF-Token": csrf},
    ).get_json()
    secret = created["token"]
    assert created["role"] == "editor"
    listed = client.get(f"{API}/tokens").get_json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert secret not in client.get(f"{API}/tokens/{created['id']}").get_data(as_text=True)
    row = db.session.get(ApiToken, created["id"])
    assert row is not None
    # The part after the lookup is the secret; it may itself hold "_" (URL-safe base64).
    _prefix, _lookup, part = secret.split("_", 2)
    assert len(part) >= 43
    assert secret not in (row.lookup, row.secret_hash) and part not in repr(vars(row))
    me = f.bearer(app, secret).get(f"{API}/auth/me")
    assert me.status_code == 200
    assert me.get_json()["authenticated_by"] == "token"
    assert "csrf_token" not in me.get_json()


def test_token_requests_set_no_cookie_and_record_last_use(app: Flask) -> None:
    account = f.user("reader")
    client = f.bearer(app, f.token(account))
    response = client.get(f"{API}/auth/me")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    db.session.remove()
    row = db.session.execute(select(ApiToken)).scalar_one()
    assert row.last_used_at is not None
    assert utcnow() - row.last_used_at < timedelta(minutes=1)


def test_revocation_expiry_and_deactivation_apply_on_the_next_request(app: Flask) -> None:
    account = f.user("reader")
    revoked, expired, owner_gone = (f.token(account, name=n) for n in ("a", "b", "c"))
    for secret in (revoked, expired, owner_gone):
        assert f.bearer(app, secret).get(f"{API}/auth/me").status_code == 200

    token_id = f.bearer(app, revoked).get(f"{API}/tokens").get_json()[0]["id"]
    assert f.bearer(app, revoked).delete(f"{API}/tokens/{token_id}").status_code == 204
    assert_problem(f.bearer(app, revoked).get(f"{API}/auth/me"), 401)

    lookup = expired.split("_")[1]
    db.session.execute(
        update(ApiToken).where(ApiToken.lookup == lookup).values(expires_at=utcnow())
    )
    db.session.commit()
    assert_problem(f.bearer(app, expired).get(f"{API}/auth/me"), 401)

    admin_client, _ = f.as_role(app, "admin")
    patched = admin_client.patch(f"{API}/users/{account.id}", json={"active": False})
    assert patched.status_code == 200
    assert_problem(f.bearer(app, owner_gone).get(f"{API}/auth/me"), 401)
    db.session.remove()
    assert all(
        t.revoked_at
        for t in db.session.execute(
            select(ApiToken).where(ApiToken.user_id == account.id)
        ).scalars()
    )


@pytest.mark.parametrize(
    "header",
    ["Bearer rgt_0000000000000000_nope", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_bad_bearer_tokens_are_401(client: Any, header: str) -> None:
    assert_problem(client.get(f"{API}/auth/me", headers={"Authorization": header}), 401)


def test_a_token_in_the_query_string_is_refused(app: Flask) -> None:
    secret = f.token(f.user("reader"))
    for name in ("access_token", "token"):
        response = app.test_client().get(f"{API}/auth/me?{name}={secret}")
        assert_problem(response, 400, "credentials-in-query")


def test_a_cookie_and_a_bearer_token_together_are_refused(app: Flask) -> None:
    account = f.user("reader")
    client, _ = f.logged_in(app, account)
    response = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {f.token(account)}"})
    assert_problem(response, 400, "mixed-credentials")


def test_a_token_cannot_outrank_its_owner(app: Flask) -> None:
    editor = f.user("editor")
    client, csrf = f.logged_in(app, editor)
    headers = {"X-CSRF-Token": csrf}
    too_high = client.post(f"{API}/tokens", json={"name": "x", "role": "admin"}, headers=headers)
    assert_problem(too_high, 422, "validation-error")
    sideways = client.post(f"{API}/tokens", json={"name": "x", "role": "auditor"}, headers=headers)
    assert_problem(sideways, 422)
    lower = client.post(f"{API}/tokens", json={"name": "x", "role": "reader"}, headers=headers)
    assert lower.status_code == 201
    reader_token = lower.get_json()["token"]
    assert f.bearer(app, reader_token).get(f"{API}/auth/me").get_json()["role"] == "reader"
    # A token acts with its own role: this one cannot administer, even for an editor.
    assert_problem(f.bearer(app, reader_token).post(f"{API}/tokens", json={"name": "y"}), 403)


def test_an_admin_creates_a_token_for_another_user_within_their_role(app: Flask) -> None:
    admin_client, _ = f.as_role(app, "admin")
    auditor = f.user("auditor")
    made = admin_client.post(
        f"{API}/tokens", json={"name": "export", "user_id": auditor.id, "role": "auditor"}
    )
    assert made.status_code == 201
    assert made.get_json()["user_id"] == auditor.id
    higher = admin_client.post(
        f"{API}/tokens", json={"name": "x", "user_id": auditor.id, "role": "editor"}
    )
    assert_problem(higher, 422)


def test_users_see_and_revoke_only_their_own_tokens(app: Flask) -> None:
    alice_client, _alice = f.as_role(app, "reader")
    bob_client, _bob = f.as_role(app, "reader")
    alice_token = alice_client.get(f"{API}/tokens").get_json()[0]["id"]
    assert_problem(bob_client.get(f"{API}/tokens/{alice_token}"), 404)
    assert_problem(bob_client.delete(f"{API}/tokens/{alice_token}"), 404)
    assert_problem(bob_client.get(f"{API}/tokens?user_id={_alice.id}"), 403)
    assert alice_client.get(f"{API}/auth/me").status_code == 200


def test_token_expiry_is_bounded(app: Flask) -> None:
    client, _ = f.as_role(app, "admin")
    assert_problem(client.post(f"{API}/tokens", json={"name": "x", "expires_in_days": 400}), 422)
    assert_problem(client.post(f"{API}/tokens", json={"name": "x", "expires_in_days": 0}), 422)


# --- administration -------------------------------------------------------------------------


def test_admin_creates_organisations_and_users(app: Flask) -> None:
    client, _ = f.as_role(app, "admin")
    org = client.post(f"{API}/organisations", json={"name": "Barts Health", "kind": "nhs_trust"})
    assert org.status_code == 201
    org_id = org.get_json()["id"]
    assert_problem(
        client.post(f"{API}/organisations", json={"name": "Barts Health", "kind": "nhs_trust"}),
        409,
    )
    made = client.post(
        f"{API}/users",
        json={
            "email": "Ed@Example.org",
            "display_name": "Ed",
            "organisation_id": org_id,
            "role": "editor",
            "password": "a long enough password",
        },
    )
    assert made.status_code == 201
    assert made.get_json()["email"] == "ed@example.org"
    assert "password" not in made.get_data(as_text=True)
    assert_problem(
        client.post(
            f"{API}/users",
            json={
                "email": "ed@example.org",
                "display_name": "Ed",
                "organisation_id": org_id,
                "role": "editor",
            },
        ),
        409,
    )
    listed = client.get(f"{API}/users?organisation_id={org_id}").get_json()
    assert [u["email"] for u in listed] == ["ed@example.org"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"email": "not-an-email", "display_name": "x", "organisation_id": 1, "role": "reader"},
            "email",
        ),
        ({"email": "a@b.org", "display_name": "x", "organisation_id": 1, "role": "king"}, "role"),
        (
            {"email": "a@b.org", "display_name": "", "organisation_id": 1, "role": "reader"},
            "display_name",
        ),
        (
            {"email": "a@b.org", "display_name": "x", "organisation_id": "one", "role": "reader"},
            "organisation_id",
        ),
        (
            {
                "email": "a@b.org",
                "display_name": "x",
                "organisation_id": 1,
                "role": "reader",
                "is_admin": True,
            },
            "is_admin",
        ),
        (
            {
                "email": "a@b.org",
                "display_name": "x",
                "organisation_id": 1,
                "role": "reader",
                "password": "short",
            },
            "password",
        ),
    ],
)
def test_bad_user_input_changes_nothing(app: Flask, body: dict[str, Any], field: str) -> None:
    client, admin = f.as_role(app, "admin")
    body = dict(body)
    if body.get("organisation_id") == 1:
        body["organisation_id"] = admin.organisation_id
    response = client.post(f"{API}/users", json=body)
    problem = assert_problem(response, 422, "validation-error")
    assert field in problem["errors"]
    assert db.session.execute(select(User).where(User.email == "a@b.org")).first() is None


def test_a_role_change_ends_sessions_and_is_audited(app: Flask) -> None:
    admin_client, _ = f.as_role(app, "admin")
    editor = f.user("editor")
    session_client, _ = f.logged_in(app, editor)
    assert session_client.get(f"{API}/auth/me").status_code == 200
    changed = admin_client.patch(f"{API}/users/{editor.id}", json={"role": "reader"})
    assert changed.get_json()["role"] == "reader"
    assert_problem(session_client.get(f"{API}/auth/me"), 401)
    [event] = _events("user.role_changed")
    assert (event.before["role"], event.after["role"]) == ("editor", "reader")


def test_admins_cannot_demote_or_deactivate_themselves(app: Flask) -> None:
    client, admin = f.as_role(app, "admin")
    assert_problem(client.patch(f"{API}/users/{admin.id}", json={"active": False}), 403)
    assert_problem(client.patch(f"{API}/users/{admin.id}", json={"role": "reader"}), 403)


def test_passwords_never_reach_the_logs(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    account = f.user("reader")
    with caplog.at_level(logging.DEBUG):
        f.logged_in(app, account)
        app.test_client().post(
            f"{API}/auth/login", json={"email": account.email, "password": "guess-" + "x" * 10}
        )
    assert f.PASSWORD not in caplog.text
    assert "guess-" not in caplog.text


# --- command line -----------------------------------------------------------------------------


def test_cli_creates_a_user_and_prints_only_the_token(app: Flask) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "registry",
            "create-user",
            "ops@example.org",
            "--role",
            "auditor",
            "--organisation",
            "NHS England (London)",
            "--organisation-kind",
            "icb",
            "--password-stdin",
        ],
        input="a very long password\n",
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(args=["registry", "create-token", "ops@example.org", "--name", "x"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert result.stdout == secret + "\n"
    assert secret.startswith("rgt_")
    me = f.bearer(app, secret).get(f"{API}/auth/me").get_json()
    assert me["user"]["organisation"]["kind"] == "icb"
    assert me["role"] == "auditor"
    again = runner.invoke(args=["registry", "create-user", "ops@example.org", "--role", "reader"])
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_a_shared_store_counts_logins_across_workers(make_app: Any, database: Any) -> None:
    """Two apps stand for two gunicorn workers; with Redis they share one count."""
    import uuid

    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379 to share the count")
    settings = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": url,
        "RATELIMIT_LOGIN_PER_ACCOUNT": "2 per minute",
    }
    first, second = make_app(**settings), make_app(**settings)
    database.reset(first)
    email = f"{uuid.uuid4().hex}@example.org"
    attempt = {"email": email, "password": "wrong password"}
    assert first.test_client().post(f"{API}/auth/login", json=attempt).status_code == 401
    assert second.test_client().post(f"{API}/auth/login", json=attempt).status_code == 401
    assert_problem(first.test_client().post(f"{API}/auth/login", json=attempt), 429)
    assert_problem(second.test_client().post(f"{API}/auth/login", json=attempt), 429)


def test_writes_are_rate_limited_per_caller(make_app: Any, database: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_WRITES="3 per minute")
    database.reset(app)
    with app.test_request_context():
        admin, _ = f.as_role(app, "admin")
        other, _ = f.as_role(app, "admin")
    statuses = [
        admin.post(f"{API}/organisations", json={"name": f"Trust {i}", "kind": "icb"}).status_code
        for i in range(4)
    ]
    assert statuses == [201, 201, 201, 429]
    limited = admin.post(f"{API}/organisations", json={"name": "One more", "kind": "icb"})
    assert int(assert_problem(limited, 429)["status"]) == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert admin.get(f"{API}/organisations").status_code == 200  # reads are not counted
    assert (
        other.post(f"{API}/organisations", json={"name": "Theirs", "kind": "icb"}).status_code
        == 201
    )
