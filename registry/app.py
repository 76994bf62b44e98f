"""The application factory's body (``registry.create_app`` defers to it)."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

import registry.services.mail  # noqa: F401 -- registers the mail outbox with the audit append
from registry import checkpoints, work
from registry import config as config_module
from registry.api import (
    audit,
    decisions,
    identity,
    ops,
    policies,
    policyset,
    reviews,
    webhooks,
    witness,
)
from registry.api.base import refuse_nul_characters, refuse_unknown_query_parameters
from registry.checkpoints import init_checkpoints
from registry.db import current_session, db, init_db, set_write_intent
from registry.errors import handle_http_exception, register_error_handlers
from registry.extensions import api, migrate
from registry.keys import load_signing_key
from registry.logs import assign_request_id, configure_logging, log_access
from registry.present.policyset import init_policy_set_cache
from registry.ratelimit import hit, init_rate_limits
from registry.security import UNSAFE_METHODS, Permission, init_security, load_identity, requires
from registry.services import merkle, note, passwords
from registry.services.audit import appended as appended_entries
from registry.web import is_api_path, wants_json

log = logging.getLogger("registry.db")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT_ROOT / "migrations"

# Registered in this order; each later issue adds its blueprints here.
BLUEPRINTS: tuple[tuple[Any, str], ...] = (
    (ops.probes, ""),
    (ops.blp, "/api/v1"),
    (identity.blp, "/api/v1"),
    (policyset.blp, "/api/v1"),
    (policies.blp, "/api/v1"),
    (reviews.blp, "/api/v1"),
    (decisions.blp, "/api/v1"),
    (audit.blp, "/api/v1"),
    (webhooks.blp, "/api/v1"),
    (witness.blp, ""),
)


class Registry(Flask):
    """Flask, for an app with no async views, and with the unit of work's commit point.

    Every hook and view is called as it is.

    Flask asks ``inspect`` whether each one is a coroutine on every call (a dozen times a
    request here, about a fifth of the hot path's own cost); the answer is always no.
    """

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    def dispatch_request(self) -> Any:
        """The view, then the unit of work's one commit point for requests that write."""
        answer = super().dispatch_request()
        if request.method in UNSAFE_METHODS:
            work.commit()
        return answer


def build_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    instance_path = os.environ.get("REGISTRY_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")
    app = Registry("registry", instance_path=instance_path, static_folder=None)
    app.config.update(config_module.load(app.instance_path, overrides))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app)
    configure_logging(app.config["LOG_LEVEL"])

    app.before_request(_before)
    init_db(app)
    migrate.init_app(app, directory=str(MIGRATIONS), compare_type=True)
    app.extensions["registry.migration_head"] = _migration_head()
    app.extensions["registry.signing_key"] = load_signing_key(app.config["SIGNING_KEY_FILE"])
    # The log's verifier key: the origin names the key, so a bad origin stops here.
    app.extensions["registry.log_verifier"] = note.Verifier.for_key(
        app.config["LOG_ORIGIN"], note.raw_public_key(app.extensions["registry.signing_key"])
    )
    if app.config["WITNESS_NAME"]:
        app.extensions["registry.witness"] = _witness(app)
    from registry.services.witnessing import parse_witnesses

    app.extensions["registry.witnesses"] = parse_witnesses(app.config["WITNESSES"])
    passwords.configure(app.config["ARGON2_TIME_COST"], app.config["ARGON2_MEMORY_KIB"])
    init_rate_limits(app)
    init_checkpoints(app)
    init_policy_set_cache(app)
    init_security(app)
    app.after_request(_after)
    app.teardown_request(work.end)

    api.init_app(app)
    _document_security(app)
    spec_view = "api-docs.openapi_json"
    app.view_functions[spec_view] = requires(Permission.PUBLIC)(app.view_functions[spec_view])
    for blueprint, prefix in BLUEPRINTS:
        api.register_blueprint(blueprint, url_prefix=prefix or None)
    app.register_blueprint(ops.docs)
    from registry import pages

    app.register_blueprint(pages.blp)
    register_error_handlers(app)

    @app.errorhandler(HTTPException)
    def _unrouted(error: HTTPException) -> Any:
        """An HTTP error outside a blueprint that handles its own. A path no route (or no
        method of it) matches is an HTML page where people are; anything else, and the
        API, or a client that asks for JSON, gets the problem."""
        if request.url_rule is None and not is_api_path(request.path) and not wants_json():
            return pages.error_page(error)
        return handle_http_exception(error)

    from registry.cli import register_cli

    register_cli(app)
    return app


def _engine_options(app: Flask) -> dict[str, Any]:
    from registry.db import engine_options

    return engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config)


def _migration_head() -> str | None:
    script = ScriptDirectory.from_config(_alembic_config())
    return script.get_current_head()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _before() -> None:
    """Every request, in order: its id, who is asking, and whether it will write.

    Identity is read first, and on SQLite in a transaction of its own (``registry.work``
    says why).
    """
    context = g._get_current_object()
    req = request._get_current_object()  # type: ignore[attr-defined]
    assign_request_id(req.environ, context)
    checkpoints.start()
    refuse_nul_characters(req)
    load_identity()
    refuse_unknown_query_parameters(req)
    work.end_identity_read()
    writes = req.method in UNSAFE_METHODS
    set_write_intent(writes)
    if writes:
        actor = context.actor
        hit("RATELIMIT_WRITES", actor.audit_id or req.remote_addr or "unknown", actor.kind)


_HTML_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _after(response: Response) -> Response:
    """The request id, security headers, no caching of anything personal, the access log."""
    context = g._get_current_object()
    headers = response.headers
    # Appended, not looked up first: nothing else in the app sets these, and a lookup of a
    # missing header costs Werkzeug a raised KeyError each time.
    html = response.mimetype == "text/html" and response.status_code != 304
    headers.add("X-Request-ID", context.get("request_id", ""))
    headers.add("X-Content-Type-Options", "nosniff")
    headers.add("Referrer-Policy", "no-referrer")
    headers.add("X-Frame-Options", "DENY")
    headers.add("Content-Security-Policy", _HTML_POLICY if html else _API_POLICY)
    actor = context.get("actor")
    if actor is not None and actor.is_authenticated:
        headers["Cache-Control"] = "no-store"
    if response.status_code < 300 and request.method in UNSAFE_METHODS:
        _log_entries(headers)
    log_access(response, context)
    return response


def _log_entries(headers: Any) -> None:
    """Where the write's events went in the audit log, at once: each one's index (from 0)
    and RFC 6962 leaf hash (base64), in order. They are chained now; a signed checkpoint
    covers them within CHECKPOINT_INTERVAL_S (their proofs follow from it)."""
    if not db.session.registry.has():
        return
    entries = appended_entries(current_session())
    if entries:
        headers.add("Audit-Log-Index", ", ".join(str(seq - 1) for seq, _ in entries))
        headers.add(
            "Audit-Log-Leaf-Hash",
            ", ".join(
                base64.b64encode(merkle.leaf_hash(bytes.fromhex(value))).decode()
                for _, value in entries
            ),
        )


def _witness(app: Flask) -> Any:
    """This registry as a witness: its own key (never the log's) and the logs it trusts."""
    from registry.services.witness import Witness, parse_logs

    key_file = app.config["WITNESS_KEY_FILE"]
    if os.path.realpath(key_file) == os.path.realpath(app.config["SIGNING_KEY_FILE"]):
        raise ValueError("A witness signs with its own key: set REGISTRY_WITNESS_KEY_FILE apart.")
    found = Witness(
        app.config["WITNESS_NAME"],
        load_signing_key(key_file),
        parse_logs(app.config["WITNESS_LOGS"]),
    )
    note.cosigner_vkey(found.name, note.raw_public_key(found.key))  # a name it can sign under
    return found


def _document_security(app: Flask) -> None:
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from POST /api/v1/tokens or "
            "`flask registry create-token`.",
        },
    )
    api.spec.components.security_scheme(
        "sessionCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": app.config["SESSION_COOKIE_NAME"],
            "description": "A session from POST /api/v1/auth/login. Writes also need the "
            "X-CSRF-Token header.",
        },
    )
