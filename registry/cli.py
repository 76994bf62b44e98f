"""``flask --app wsgi registry ...``: the commands operators and scripts rely on."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from registry.db import set_write_intent

registry_cli = AppGroup("registry", help="Operate the London data policy registry.")


@registry_cli.command("seed")
def seed_command() -> None:
    """Load the starter policy set (idempotent)."""
    set_write_intent(True)
    click.echo("Nothing to seed yet.", err=True)


def register_cli(app: Flask) -> None:
    app.cli.add_command(registry_cli)
