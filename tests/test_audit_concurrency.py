"""Appends from many processes at once: no fork, no gap, no duplicate, and the chain holds."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from registry.db import db
from registry.models.audit import AuditEvent, Checkpoint
from registry.services import audit

PROCESSES = 8
APPENDS = 150


def _append_many(config: dict[str, Any], worker: int, start: Any) -> None:
    from registry import create_app
    from registry.db import current_session, writing
    from registry.services.context import Actor

    app = create_app(config)
    actor = Actor.system(label=f"worker-{worker}")
    start.wait()
    with app.app_context():
        for n in range(APPENDS):
            with writing():
                audit.record(
                    current_session(),
                    actor,
                    "test.appended",
                    "worker",
                    f"{worker}-{n}",
                    after={"n": n},
                )
                db.session.commit()
        db.engine.dispose()


def test_eight_processes_append_without_forking_the_chain(
    app: Flask, database: Any, signing_key_file: Path
) -> None:
    config = database.app_config(signing_key_file)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_append_many, args=(config, n, start)) for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    db.session.remove()
    total = PROCESSES * APPENDS
    seqs = list(db.session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq)).scalars())
    assert seqs == list(range(1, total + 1))
    assert (
        db.session.execute(select(func.count(func.distinct(AuditEvent.prev_hash)))).scalar_one()
        == total
    )
    entities = set(db.session.execute(select(AuditEvent.entity_id)).scalars())
    assert len(entities) == total
    assert db.session.execute(select(func.count()).select_from(Checkpoint)).scalar_one() == total
    report = audit.verify(db.session())
    assert report.ok, report.reason
    assert report.events == total
