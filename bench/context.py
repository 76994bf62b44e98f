"""The HTTP vocabulary of the runner, and what a ``prepare`` hook or micro-benchmark gets."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv that runs the bench


class BenchError(RuntimeError):
    """A failure the runner reports in one line (the cause is in the message)."""


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage  # case-insensitive: headers["ETag"]
    body: bytes


@dataclass(frozen=True)
class Request:
    """One request, exactly as every load-generator connection sends it."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    status: int = 200  # the one status expected; any other answer is an error
    # Headers that change from request to request, in turn (many clients' tokens, say).
    rotate: tuple[Mapping[str, str], ...] = ()


def send(base_url: str, request: Request, timeout: float = 10.0) -> Reply:
    """Send one request on a new connection and read the whole answer."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        conn.request(request.method, request.path, body=request.body, headers=dict(request.headers))
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


@dataclass(frozen=True)
class Context:
    """The registry under test: its address, and the environment its CLI needs.

    ``env`` points at the same instance folder and database as the served app, so
    ``ctx.flask("registry", "create-token", email)`` acts on what the load will hit.
    """

    base_url: str
    env: Mapping[str, str]
    workdir: Path  # a scratch folder removed at the end of the run

    def flask(self, *args: str, input: str | None = None) -> str:
        """Run ``flask --app wsgi ARGS`` against the app under test; return its stdout."""
        proc = subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=dict(self.env),
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BenchError(
                f"flask {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}"
            )
        return proc.stdout

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        return send(self.base_url, Request(method, path, headers or {}, body))
