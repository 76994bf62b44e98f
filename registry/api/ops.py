"""Operations: liveness, readiness, and the interactive API documentation."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import Response, current_app, send_from_directory
from flask.views import MethodView
from sqlalchemy import text

from registry.api.base import Blueprint
from registry.db import db
from registry.errors import Unavailable
from registry.schemas.ops import HealthSchema
from registry.security import Permission, requires

blp = Blueprint("ops", __name__, description="Health and readiness, under the API's prefix.")
# The same checks at the root, where load balancers and orchestrators look for them.
probes = Blueprint(
    "probes", __name__, description="Liveness and readiness at the root, for load balancers."
)
docs = Blueprint("docs", __name__)

SWAGGER_STATIC = Path(str(files("swagger_ui"))) / "static"
_DOCS_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "index.css"}
)


@blp.route("/healthz")
class Health(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """Report that the process is up"""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, response="Unavailable")
    def get(self) -> dict[str, Any]:
        """Report whether the database is reachable and migrated to the head revision"""
        head = current_app.extensions["registry.migration_head"]
        try:
            current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception as exc:
            db.session.rollback()
            raise Unavailable("The database is unreachable or not migrated.") from exc
        finally:
            db.session.rollback()
        if current != head:
            raise Unavailable(
                f"The database is at migration {current}; this code needs {head}.",
                database_revision=current,
                code_revision=head,
            )
        return {"status": "ok", "migration": current}


probes.add_url_rule("/healthz", view_func=Health)
probes.add_url_rule("/readyz", view_func=Ready)


@docs.route("/docs")
@requires(Permission.PUBLIC)
def docs_page() -> Response:
    """Serve the interactive API documentation (assets from a package, no CDN)."""
    return current_app.response_class(_DOCS_HTML, mimetype="text/html")


@docs.route("/docs/assets/<name>")
@requires(Permission.PUBLIC)
def docs_asset(name: str) -> Response:
    """Serve a Swagger UI asset from the installed package."""
    if name == "init.js":
        return current_app.response_class(_DOCS_INIT, mimetype="text/javascript")
    if name not in _DOCS_FILES:
        from registry.errors import NotFound

        raise NotFound(f"No documentation asset named {name!r}.")
    return send_from_directory(SWAGGER_STATIC, name, max_age=86400)


_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>API documentation: London health and care data policy registry</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="stylesheet" href="/docs/assets/index.css">
</head>
<body>
  <main id="swagger-ui"><p>Loading the API documentation&hellip; The raw specification is at
  <a href="/openapi.json">/openapi.json</a>.</p></main>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
"""

_DOCS_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
});
"""
