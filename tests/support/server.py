"""The registry under gunicorn, with several workers, on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# As `make run` serves it: above every database bound (registry/config.py), so a worker
# whose database stops answering answers 503 and is never killed for the timeout.
GUNICORN_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(config: Mapping[str, Any], instance: Path) -> dict[str, str]:
    """The app's test configuration as the environment gunicorn's workers read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["DATABASE_URL"] = str(config["SQLALCHEMY_DATABASE_URI"])
    env["REGISTRY_INSTANCE_PATH"] = str(instance)
    for key, value in config.items():
        if key in ("SQLALCHEMY_DATABASE_URI", "TESTING") or value is None:
            continue  # None: the app's default
        env[f"REGISTRY_{key}"] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return env


@contextmanager
def gunicorn(config: Mapping[str, Any], instance: Path, *, workers: int = 4) -> Iterator[str]:
    """Serve the registry; yield its base URL; stop every worker afterwards."""
    from tests.support import watch

    port = free_port()
    log = instance / "gunicorn.log"
    watch.LOG_FILES.append(log)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                str(GUNICORN_TIMEOUT_S),
                "--no-control-socket",  # as make run: no socket shared in the home folder
                # Which worker answered each request: "<pid> method path status".
                "--access-logfile",
                "-",
                "--access-logformat",
                "%(p)s %(m)s %(U)s %(s)s",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=environment(config, instance),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def call(
    base: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Mapping[str, str], Any]:
    """One HTTP request; returns (status, headers, parsed JSON body or None)."""
    import json

    request = urllib.request.Request(base + path, method=method)  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=timeout) as reply:  # noqa: S310
            raw = reply.read()
            status, reply_headers = reply.status, dict(reply.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        status, reply_headers = error.code, dict(error.headers)
    parsed = (
        json.loads(raw) if raw and reply_headers.get("Content-Type", "").endswith("json") else None
    )
    return status, reply_headers, parsed
