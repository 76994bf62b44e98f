"""Configuration: defaults, then ``REGISTRY_*`` environment variables, then a mapping.

Secrets that are not configured are generated into the instance folder on first run,
with owner-only permissions, and never written to a log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "REGISTRY_"

DEFAULTS: dict[str, Any] = {
    # Database. None means the embedded SQLite file under the instance folder.
    "SQLALCHEMY_DATABASE_URI": None,
    # PostgreSQL's bounds, so that a database that refuses, stalls or stops answering is
    # a 503 within 15 s and never a hung worker. Each is below the next, and the last below
    # gunicorn's timeout (30 s, `make run`): a lock wait ends first (10 s), a statement
    # next (12 s), then the client's own wait for any answer (13 s). A pooled connection's
    # ping waits 2 s; a new connection 5 s; checking out of a full pool 5 s.
    "DB_LOCK_TIMEOUT_MS": 10_000,
    "DB_STATEMENT_TIMEOUT_MS": 12_000,
    "DB_REPLY_TIMEOUT_S": 13.0,
    "DB_PING_TIMEOUT_S": 2.0,
    "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": 60_000,
    "DB_CONNECT_TIMEOUT_S": 5,
    "DB_POOL_TIMEOUT_S": 5.0,
    "DB_POOL_SIZE": 5,
    # The kernel's watch on a peer that vanishes (packets dropped): unacknowledged data
    # for 10 s, or an idle connection unanswered after 5 + 3 x 2 s, ends the connection.
    "DB_TCP_USER_TIMEOUT_MS": 10_000,
    "DB_KEEPALIVES_IDLE_S": 5,
    "DB_KEEPALIVES_INTERVAL_S": 2,
    "DB_KEEPALIVES_COUNT": 3,
    "RETRY_AFTER_S": 5,
    # Secrets. None means generated into the instance folder on first run.
    "SECRET_KEY": None,
    "SIGNING_KEY_FILE": None,
    # Sessions for people.
    "SESSION_COOKIE_NAME": "registry_session",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    # Requests and lists.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "MAX_JSON_DEPTH": 32,
    # Rate limits (the `limits` notation), counted in a store every worker shares. None
    # means a SQLite file in the instance folder, shared by every worker on the host;
    # redis://HOST:6379/0 shares it between hosts; memory:// counts per process.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": None,
    "RATELIMIT_LOGIN_PER_ACCOUNT": "10 per 15 minutes",
    "RATELIMIT_LOGIN_PER_ADDRESS": "50 per 15 minutes",
    "RATELIMIT_WRITES": "600 per minute",
    # How long a worker may serve the cached policy set before checking for a new revision.
    "POLICY_SET_CHECK_INTERVAL_S": 1.0,
    # Passwords (argon2id).
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_KIB": 65536,
    # How long a verification of the whole audit chain is reused by GET /audit-events/verify.
    "AUDIT_VERIFY_CACHE_S": 10.0,
    # The audit log's identity: the first line of its checkpoints and the name of the key
    # that signs them (c2sp.org/tlog-checkpoint). No spaces, no '+'.
    "LOG_ORIGIN": "london-health-and-care-data-policy-registry/audit",
    # Checkpoints (registry.checkpoints): a request's events are signed into a checkpoint
    # within this many seconds, or once this many are waiting; 0 signs one per write.
    "CHECKPOINT_INTERVAL_S": 1.0,
    "CHECKPOINT_MAX_EVENTS": 256,
    # Witnessing other logs (c2sp.org/tlog-witness): this witness's name (empty: not a
    # witness), its own key, and the verifier keys of the logs it witnesses.
    "WITNESS_NAME": "",
    "WITNESS_KEY_FILE": None,
    "WITNESS_LOGS": "",
    # The witnesses this log submits its checkpoints to: "<submission prefix> <cosigner
    # verifier key>" pairs, separated by commas; and how many must cosign a checkpoint
    # for GET /audit-events/checkpoint?witnessed=1 to answer it (k of n).
    "WITNESSES": "",
    "WITNESS_QUORUM": 1,
    "WITNESS_TIMEOUT_S": 5.0,
    # Where people and systems reach this registry: the links in webhooks (and mail),
    # which are built where no request says which host was asked.
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # Webhooks (registry.services.webhooks, registry.delivery). Endpoint URLs must be https
    # and public; WEBHOOK_ALLOW_PRIVATE lets plain http and loopback or private addresses
    # through, for tests and local use only. A failed delivery is tried again after
    # RETRY_BASE_S, doubling (with jitter) up to RETRY_MAX_S, as many times as those
    # delays fit in RETRY_HORIZON_S (about three days: 24 tries), counted afresh after a
    # replay or resume; a rotated secret keeps signing beside the new one for
    # SECRET_OVERLAP_S.
    "WEBHOOK_ALLOW_PRIVATE": False,
    "WEBHOOK_TIMEOUT_S": 10.0,
    "WEBHOOK_RETRY_BASE_S": 5.0,
    "WEBHOOK_RETRY_MAX_S": 6 * 3600.0,
    "WEBHOOK_RETRY_HORIZON_S": 3 * 86400.0,
    "WEBHOOK_SECRET_OVERLAP_S": 86400.0,
    # The delivery worker: how often it looks for due messages and notices, how long it
    # holds a message it is sending, and how many it sends at once.
    "DELIVERY_POLL_S": 1.0,
    "DELIVERY_LEASE_S": 60.0,
    "DELIVERY_THREADS": 8,
    # How long before a review closes its "closing soon" notice (and reminders) go out.
    "REVIEW_CLOSING_SOON_S": 86400.0,
    # Mail to panel members, sent by the delivery worker: by SMTP when a host is set,
    # otherwise written as .eml files to MAIL_FOLDER (default: the instance folder's
    # mail/). A message that cannot be sent is tried again, doubling from RETRY_BASE_S,
    # as many times as fit in WEBHOOK_RETRY_HORIZON_S.
    "MAIL_SMTP_HOST": "",
    "MAIL_SMTP_PORT": 25,
    "MAIL_SMTP_USER": "",
    "MAIL_SMTP_PASSWORD": "",
    "MAIL_SMTP_STARTTLS": False,
    "MAIL_SMTP_TIMEOUT_S": 10.0,
    "MAIL_FROM": "registry@localhost",
    "MAIL_FOLDER": "",
    "MAIL_RETRY_BASE_S": 60.0,
    # Tokens.
    "TOKEN_DEFAULT_EXPIRY_DAYS": 90,
    "TOKEN_MAX_EXPIRY_DAYS": 366,
    "TOKEN_LAST_USED_RESOLUTION_S": 60,
    # Logging.
    "LOG_LEVEL": "INFO",
    # OpenAPI.
    "API_TITLE": "London health and care data policy registry",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
}


def _coerce(raw: str, default: Any) -> Any:
    """Turn an environment string into the type of the default it overrides."""
    if isinstance(default, bool):
        if raw.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.strip().lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"not a boolean: {raw!r}")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def normalise_database_url(url: str) -> str:
    """Make a PostgreSQL URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load(instance_path: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge defaults, environment and overrides; fill in generated secrets."""
    settings = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        raw = os.environ.get(ENV_PREFIX + key)
        if raw is not None:
            settings[key] = _coerce(raw, default if default is not None else "")
    if os.environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if os.environ.get("RATELIMIT_STORAGE_URI"):
        settings["RATELIMIT_STORAGE_URI"] = os.environ["RATELIMIT_STORAGE_URI"]
    settings.update(overrides or {})

    instance = Path(instance_path)
    private_folder(instance)
    if not settings["SQLALCHEMY_DATABASE_URI"]:
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'registry.sqlite3'}"
    settings["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        settings["SQLALCHEMY_DATABASE_URI"]
    )
    if not settings["RATELIMIT_STORAGE_URI"]:
        settings["RATELIMIT_STORAGE_URI"] = f"sqlite:///{instance / 'ratelimits.sqlite3'}"
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = read_or_create_secret(
            instance / "secret-key", lambda: secrets.token_hex(32).encode()
        ).decode()
    if not settings["SIGNING_KEY_FILE"]:
        settings["SIGNING_KEY_FILE"] = str(instance / "audit-signing-key.pem")
    if not settings["WITNESS_KEY_FILE"]:
        settings["WITNESS_KEY_FILE"] = str(instance / "witness-signing-key.pem")
    return settings


def read_or_create_secret(path: Path, make: Any) -> bytes:
    """Return the secret in ``path``, creating it atomically (owner-only) if absent.

    Several workers may start at once: each writes a private temporary file and links
    it into place; the link fails for all but one, and everyone reads the winner's.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(make())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def private_file(path: str | Path) -> None:
    """Make ``path`` an owner-only (0600) file, creating it empty if absent.

    SQLite creates a database file with the process's umask (0644 as a rule), and its
    -wal and -shm files with the database file's mode: created first, 0600, all three stay
    owner-only. An existing file (and its -wal and -shm) is brought down to 0600; one this
    user does not own and cannot change is left as it is, with a warning.

    An existing file is never opened here: closing any descriptor of a SQLite file
    releases every POSIX lock this process holds on it, under its open connections.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(name).st_mode & 0o077:
                try:
                    os.chmod(name, 0o600)
                except PermissionError:
                    logging.getLogger("registry.config").warning(
                        "a file others can read could not be made owner-only",
                        extra={"path": name},
                    )


def private_folder(path: Path) -> None:
    """Make ``path`` an owner-only (0700) folder, creating it if absent: the instance
    folder holds the embedded database, the rate-limit store and the generated secrets."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
