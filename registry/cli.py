"""``flask --app wsgi registry ...``: the commands operators and scripts rely on."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from registry.db import current_session, db, utcnow, writing
from registry.errors import DomainError
from registry.models.identity import Role
from registry.services import identity
from registry.services.context import Actor
from registry.vocabulary import OrganisationKind

registry_cli = AppGroup("registry", help="Operate the London data policy registry.")

F = TypeVar("F", bound=Callable[..., Any])
REGISTRY_ORGANISATION = "London data policy registry"


def writes(func: F) -> F:
    """Run a command as one write transaction; a rule broken is a clean error, not a trace."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        db.session.rollback()  # start from no transaction, so the first BEGIN is a writer's
        try:
            with writing():
                return func(*args, **kwargs)
        except DomainError as exc:
            db.session.rollback()
            raise click.ClickException(exc.detail) from exc

    return wrapper  # type: ignore[return-value]


def cli_actor() -> Actor:
    return Actor.system(label=f"cli:{getpass.getuser()}")


@registry_cli.command("seed")
@writes
def seed_command() -> None:
    """Load the starter policy set (idempotent)."""
    from registry.services import seed

    published = seed.load(current_session(), cli_actor())
    db.session.commit()
    if published:
        click.echo(f"published {len(published)} starter policies: {', '.join(published)}", err=True)
    else:
        click.echo("the starter policy set is already loaded", err=True)


@registry_cli.command("create-user")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([str(r) for r in Role]))
@click.option(
    "--organisation",
    "organisation_name",
    default=REGISTRY_ORGANISATION,
    show_default=True,
    help="Created if it does not exist.",
)
@click.option(
    "--organisation-kind",
    default="nhs_trust",
    show_default=True,
    type=click.Choice([str(k) for k in OrganisationKind]),
    help="The kind, if the organisation is created.",
)
@click.option("--display-name", default=None, help="Defaults to the part before the @.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
@writes
def create_user_command(
    email: str,
    role: str,
    organisation_name: str,
    organisation_kind: str,
    display_name: str | None,
    password_stdin: bool,
) -> None:
    """Create a user (without --password-stdin the account can use only tokens)."""
    actor = cli_actor()
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    org = identity.find_organisation(current_session(), organisation_name)
    if org is None:
        kind = "registry" if organisation_name == REGISTRY_ORGANISATION else organisation_kind
        org = identity.create_organisation(current_session(), actor, organisation_name, kind)
        click.echo(f"created organisation {org.name!r} ({org.kind})", err=True)
    user = identity.create_user(
        current_session(),
        actor,
        email=email,
        display_name=display_name or email.split("@", 1)[0],
        organisation_id=org.id,
        role=role,
        password=password,
    )
    db.session.commit()
    click.echo(f"created user {user.id} {user.email} ({user.role})", err=True)


@registry_cli.command("create-token")
@click.argument("email")
@click.option("--name", default="cli", show_default=True)
@click.option(
    "--expires-days",
    type=click.IntRange(1),
    default=None,
    help="Default from REGISTRY_TOKEN_DEFAULT_EXPIRY_DAYS (90).",
)
@click.option(
    "--role",
    type=click.Choice([str(r) for r in Role]),
    default=None,
    help="Defaults to the user's role; may not exceed it.",
)
@writes
def create_token_command(email: str, name: str, expires_days: int | None, role: str | None) -> None:
    """Print a new API token for EMAIL, and nothing else, on standard output."""
    user = identity.find_user(current_session(), email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    # The command runs with the operator's authority, on the user's behalf.
    actor = Actor(kind="system", user_id=user.id, role=str(Role.ADMIN), label=cli_actor().label)
    days = expires_days or current_app.config["TOKEN_DEFAULT_EXPIRY_DAYS"]
    _token, secret = identity.create_token(
        current_session(),
        actor,
        name=name,
        expires_at=utcnow() + timedelta(days=days),
        role=role,
        user_id=user.id,
        max_days=current_app.config["TOKEN_MAX_EXPIRY_DAYS"],
    )
    db.session.commit()
    click.echo(secret)


audit_cli = AppGroup("audit", help="The tamper-evident audit trail.")
registry_cli.add_command(audit_cli)


@audit_cli.command("verify")
@click.option(
    "--all-signatures",
    is_flag=True,
    help="Check every checkpoint's signature, not only the latest's (slower).",
)
def audit_verify_command(all_signatures: bool) -> None:
    """Walk the chain and its checkpoints: exit 0 if they hold, 1 with the first bad seq."""
    from registry.services import audit

    report = audit.verify(current_session(), all_signatures=all_signatures)
    click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    for check in report.checks:
        verdict = {True: "ok", False: "FAILED", None: "not checked"}[check["ok"]]
        click.echo(f"{check['name']}: {verdict}. Proves: {check['proves']}", err=True)
        click.echo(f"  Does not prove: {check['does_not_prove']}", err=True)
    if report.mismatch is not None:
        m = report.mismatch
        click.echo(
            f"live state disagrees with the log: {m['entity_type']} {m['entity_id']}, "
            f"field {m['field']}, event {m['seq']}",
            err=True,
        )
    if not report.ok:
        click.echo(f"first bad sequence number: {report.first_bad_seq}", err=True)
        sys.exit(1)


@registry_cli.command("witness")
@click.option(
    "--every",
    type=click.FloatRange(min=1),
    default=None,
    help="Keep submitting, every this many seconds (default: once).",
)
def witness_command(every: float | None) -> None:
    """Submit the latest checkpoint to every configured witness (REGISTRY_WITNESSES) and
    keep their cosignatures; exit 1 if one did not cosign. A witness that is down is
    retried next time, from the size it last cosigned."""
    import time

    from registry.services import witnessing

    cosigners = current_app.extensions["registry.witnesses"]
    if not cosigners:
        raise click.ClickException("No witness is configured: set REGISTRY_WITNESSES.")
    post = witnessing.http_post(current_app.config["WITNESS_TIMEOUT_S"])
    while True:
        outcomes = witnessing.submit(current_session(), cosigners, post)
        db.session.remove()  # the next round reads the log afresh
        for name, outcome in sorted(outcomes.items()):
            click.echo(f"{name}: {outcome}", err=True)
        failed = [o for o in outcomes.values() if o not in ("cosigned", "already cosigned")]
        if every is None:
            sys.exit(1 if failed else 0)
        time.sleep(every)


@registry_cli.command("deliver")
@click.option("--once", is_flag=True, help="Run one round and exit (default: until stopped).")
def deliver_command(once: bool) -> None:
    """Send webhook messages from the outbox and make the notices time brings (a
    scheduled version in force, a review closing soon), until SIGTERM or Ctrl-C. Several
    may run at once on PostgreSQL; nothing is sent twice but after a worker dies."""
    import signal
    import threading

    from registry.delivery import Deliverer

    deliverer = Deliverer(current_app._get_current_object())  # type: ignore[attr-defined]
    db.session.remove()
    if once:
        click.echo(f"deliver: {deliverer.round()} message(s) sent or tried", err=True)
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("deliver: sending webhook messages (stop with SIGTERM or Ctrl-C)", err=True)
    deliverer.run(stop)
    click.echo("deliver: stopped", err=True)


@registry_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def backup_command(path: str) -> None:
    """Write a consistent, signed backup of the whole registry to PATH (owner-only)."""
    from registry.services import backup

    counts = backup.write(
        current_session(),
        Path(path),
        _migration(),
        current_app.extensions["registry.signing_key"],
        progress=lambda table, n: click.echo(f"  {table}: {n} rows", err=True),
    )
    click.echo(f"backed up {sum(counts.values())} rows to {path} (signed, mode 0600)", err=True)


@registry_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--unsigned",
    is_flag=True,
    help="Accept a version 1 backup, which has no signed manifest: an edit to it cannot be "
    "detected. Only for a file kept where no one could change it.",
)
@writes
def restore_command(path: str, unsigned: bool) -> None:
    """Check a signed backup whole, restore it into this empty database and verify the audit
    trail, all in one transaction: anything wrong and nothing is written."""
    from registry.services import audit, backup

    session = current_session()
    counts = backup.restore(
        session,
        Path(path),
        _migration(),
        audit.public_key(),
        unsigned=unsigned,
        progress=lambda table, n: click.echo(f"  {table}: {n} rows", err=True),
    )
    # Verified inside the restore's transaction: a restore that does not verify is undone.
    report = audit.verify(session)
    if not report.ok:
        db.session.rollback()
        raise click.ClickException(
            f"refused {path}: the restored audit trail does not verify (first bad sequence "
            f"number {report.first_bad_seq}: {report.reason}); nothing was restored."
        )
    backup.reset_sequences(session)
    db.session.commit()
    click.echo(
        f"restored {sum(counts.values())} rows from {path}; audit trail verifies "
        f"({report.events} events, root {report.root_hash})",
        err=True,
    )


def _migration() -> str | None:
    from sqlalchemy import text

    return db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()


def register_cli(app: Flask) -> None:
    app.cli.add_command(registry_cli)
