"""Liveness, readiness and the documentation page."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from registry.db import db
from tests.support.problems import assert_problem
from tests.support.server import ROOT, free_port


def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert client.get("/api/v1/healthz").status_code == 200


def test_readyz_when_migrated(client: Any, app: Flask) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["migration"] == app.extensions["registry.migration_head"]


def test_readyz_is_503_when_the_database_is_behind(client: Any, app: Flask) -> None:
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        db.session.commit()
    response = client.get("/readyz")
    body = assert_problem(response, 503, "unavailable")
    assert body["database_revision"] == "older"


def test_docs_page_serves_assets_from_the_package(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "init.js"):
        assert f"/docs/assets/{asset}" in html
        with client.get(f"/docs/assets/{asset}") as response:
            assert response.status_code == 200
            assert len(response.get_data()) > 100
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["openapi"].startswith("3.1")


def test_make_run_serves_without_a_control_socket_in_the_home_folder(tmp_path: Path) -> None:
    """The gunicorn command make run ships, run as it is: it serves, and it opens no
    control socket in the home folder (one every gunicorn on the machine would share)."""
    port = free_port()
    dry = subprocess.run(
        ["make", "-n", "run", f"PORT={port}", "WORKERS=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    [line] = [line for line in dry.stdout.replace("\\\n", " ").splitlines() if "gunicorn " in line]
    command = shlex.split(line[line.index(".venv/bin/gunicorn") :])
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env |= {"HOME": str(home), "REGISTRY_INSTANCE_PATH": str(tmp_path / "instance")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    command[0] = str(ROOT / command[0])
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        assert not (home / ".gunicorn").exists()
        assert list(home.iterdir()) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _processes_with(instance: Path, word: str) -> list[int]:
    """Processes of this test's ``make run`` (by its instance folder) whose command line
    holds ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if word in command and f"REGISTRY_INSTANCE_PATH={instance}".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_make_run_starts_the_delivery_worker_and_stops_it_with_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env |= {"REGISTRY_INSTANCE_PATH": str(instance), "HOME": str(tmp_path)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", "WORKERS=1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (_processes_with(instance, "registry deliver") and _answers(port)):
            assert make.poll() is None, "make run exited"
            assert time.monotonic() < deadline, "make run did not start both"
            time.sleep(0.2)
        # gunicorn stops (as it would on its own SIGTERM): the worker stops with it.
        for pid in _processes_with(instance, "gunicorn"):
            os.kill(pid, signal.SIGTERM)
        make.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _processes_with(instance, "registry deliver"):
            assert time.monotonic() < deadline, "the delivery worker outlived gunicorn"
            time.sleep(0.1)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False
