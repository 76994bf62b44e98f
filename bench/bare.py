"""The baseline: a Flask app with one route and a constant small JSON body.

Served by the same gunicorn, with the same settings, as the registry, so the ratio of a
registry endpoint's requests/s to this app's says what the registry itself costs.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def status() -> dict[str, str]:
    return {"status": "ok"}
