"""What the load runs against: gunicorn process groups and a throw-away PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.context import BIN, ROOT, BenchError, Request, send


@dataclass(frozen=True)
class Gunicorn:
    """The settings both apps are served with."""

    workers: int
    threads: int

    @property
    def worker_class(self) -> str:
        return "sync" if self.threads == 1 else "gthread"

    def describe(self) -> str:
        return f"gunicorn -k {self.worker_class} -w {self.workers} --threads {self.threads}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(
    name: str, app: str, settings: Gunicorn, env: Mapping[str, str], ready: str, logs: Path
) -> Iterator[str]:
    """Serve ``app`` (``module:variable``) on a free loopback port until the block ends.

    Yields the base URL once ``ready`` answers 200. gunicorn runs in its own session, so
    the whole group (master and workers) is ended together, and a Ctrl-C meant for the
    runner reaches it only through this clean-up.
    """
    port = free_port()
    log_path = logs / f"{name}.log"
    command = [
        str(BIN / "gunicorn"),
        f"--worker-class={settings.worker_class}",
        f"--workers={settings.workers}",
        f"--threads={settings.threads}",
        f"--bind=127.0.0.1:{port}",
        "--timeout=30",  # as `make run`: above the database's bounds
        "--graceful-timeout=5",
        "--no-control-socket",  # as `make run`
        "--access-logfile=-",  # as `make run`: gunicorn's line (empty), and the app's own
        "--access-logformat=",
        *(["--worker-tmp-dir=/dev/shm"] if Path("/dev/shm").is_dir() else []),
        app,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_ready(proc, base_url, ready, log_path)
            yield base_url
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, path: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError):
            if send(base_url, Request("GET", path), timeout=2).status == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{base_url}{path} did not answer 200 within 60 s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[tuple[str, str]]:
    """Create ``registry_bench_<random>`` on the server; yield (its URL, server version).

    The database is dropped WITH (FORCE) at the end, whatever connections are left.
    """
    server_url = server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    url = urlsplit(server_url)
    name = f"registry_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:  # the message names host and port, never a password
        where = f"{url.hostname}:{url.port or 5432}"
        raise BenchError(f"cannot create a database on PostgreSQL at {where}: {exc}") from exc
    try:
        yield urlunsplit(url._replace(path=f"/{name}")), str(row[0] if row else "?")
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))
