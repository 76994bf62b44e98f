"""Flask extensions, created unbound and attached in the app factory."""

from __future__ import annotations

import http
from typing import Any

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api as _Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from registry.db import db
from registry.errors import PROBLEM_MEDIA_TYPE
from registry.schemas.problem import ProblemSchema

__all__ = ["api", "db", "login_manager", "migrate"]


class Api(_Api):  # type: ignore[misc]
    """flask-smorest's Api, with every error a problem document, in code and in the spec."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        from registry.errors import handle_http_exception

        return handle_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 400):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
        for name, description in (
            ("Unauthenticated", "No valid credentials: log in or send a bearer token."),
            ("Forbidden", "Your role or your relation to the object does not allow this."),
            ("Unavailable", "The database is unavailable or busy; retry after `Retry-After`."),
        ):
            named: dict[str, Any] = {"description": description, "schema": self.ERROR_SCHEMA}
            prepare_response(named, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(name, named)


migrate = Migrate()
login_manager = LoginManager()
api = Api()
