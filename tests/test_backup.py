"""Backups: owner-only from the moment they exist."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from flask import Flask

from tests import factories as f


@pytest.fixture
def source(app: Flask) -> Flask:
    """A registry with a published policy, a reader and the reader's token."""
    f.catalogue()
    f.published("research-data")
    reader = f.user("reader", email="reader@example.org")
    f.token(reader)
    return app


@pytest.fixture
def taken(source: Flask, tmp_path: Path) -> Path:
    path = tmp_path / "registry.backup.gz"
    result = source.test_cli_runner().invoke(args=["registry", "backup", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_the_backup_command_writes_owner_only(taken: Path) -> None:
    assert stat.S_IMODE(taken.stat().st_mode) == 0o600
    assert [p.name for p in taken.parent.iterdir()] == [taken.name]
