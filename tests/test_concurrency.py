"""Concurrency through the real app under gunicorn with several workers."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from registry.db import db
from registry.models.review import Review, Vote
from registry.services import audit
from tests import factories as f
from tests.support.server import call, gunicorn

pytestmark = pytest.mark.slow
API = "/api/v1"


@pytest.fixture
def served(app: Flask, database: Any, signing_key_file: Path, tmp_path: Path) -> Any:
    config = database.app_config(signing_key_file)
    with gunicorn(config, tmp_path, workers=4) as base:
        yield base


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive()


def test_conditional_patches_never_lose_an_update(app: Flask, served: str) -> None:
    f.catalogue()
    editor = f.token(f.user("editor"))
    status, _, _ = call(served, "POST", f"{API}/policies", token=editor, body=f.policy_body())
    assert status == 201
    url = f"{API}/policies/research-data/versions/1"
    statuses: list[int] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for attempt in range(100):
            _, headers, _ = call(served, "GET", url, token=editor)
            status, _, _ = call(
                served,
                "PATCH",
                url,
                token=editor,
                headers={"If-Match": headers["ETag"]},
                body={"summary": f"client {n}, attempt {attempt}"},
            )
            with lock:
                statuses.append(status)

    _run([threading.Thread(target=client, args=(n,)) for n in range(8)])
    counts = Counter(statuses)
    assert set(counts) <= {200, 412}, counts
    _, headers, body = call(served, "GET", url, token=editor)
    lock_version = int(headers["ETag"].strip('"').split(".")[1])
    assert lock_version - 1 == counts[200]
    assert counts[200] >= 100
    assert body["summary"].startswith("client ")


def test_voting_publishing_and_deciding_at_once(app: Flask, served: str) -> None:
    f.catalogue()
    editor = f.token(f.user("editor"))
    members = [f.user("panel_member") for _ in range(8)]
    tokens = [f.token(m) for m in members]
    board = f.panel(members, quorum=0.5, threshold=0.5)
    reader = f.token(f.user("reader"))
    slugs = [f"policy-{i}" for i in range(4)]
    reviews = {}
    for slug in slugs:
        assert (
            call(served, "POST", f"{API}/policies", token=editor, body=f.policy_body(slug))[0]
            == 201
        )
        status, _, review = call(
            served,
            "POST",
            f"{API}/policies/{slug}/versions/1/submit",
            token=editor,
            body={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
        )
        assert status == 201
        reviews[slug] = review["id"]
    final: dict[tuple[int, int], str] = {}
    lock = threading.Lock()
    failures: list[str] = []

    def member(index: int) -> None:
        for round_ in range(3):
            for review_id in reviews.values():
                choice = "endorse" if (index + round_) % 3 else "reject"
                status, _, _ = call(
                    served,
                    "PUT",
                    f"{API}/reviews/{review_id}/votes/me",
                    token=tokens[index],
                    body={"choice": choice, "comment": f"round {round_}"},
                )
                if status in (200, 201):
                    with lock:
                        final[(review_id, members[index].id)] = choice
                elif status != 409:  # closed meanwhile
                    failures.append(f"vote {status}")

    def decider() -> None:
        for _ in range(40):
            status, _, _ = call(
                served,
                "POST",
                f"{API}/decisions",
                token=reader,
                body={
                    "purpose": "research",
                    "data_category": "depersonalised",
                    "circumstances": {"ethics_approval": True, "duration_months": 6},
                },
            )
            if status != 201:
                failures.append(f"decision {status}")

    def publisher() -> None:
        for slug, review_id in list(reviews.items())[:2]:
            status, _, _ = call(
                served,
                "POST",
                f"{API}/reviews/{review_id}/close",
                token=editor,
                body={"recommendation": "Publish."},
            )
            if status != 200:
                failures.append(f"close {status}")
                continue
            status, _, _ = call(
                served, "POST", f"{API}/policies/{slug}/versions/1/publish", token=editor
            )
            if status not in (200, 409):  # 409: the panel rejected it
                failures.append(f"publish {status}")

    threads = [threading.Thread(target=member, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=decider) for _ in range(2)]
    threads.append(threading.Thread(target=publisher))
    _run(threads)
    assert failures == []
    db.session.remove()
    stored = {
        (v.review_id, v.user_id): v.choice for v in db.session.execute(select(Vote)).scalars()
    }
    assert stored == final, "a vote was lost or a stale one kept"
    for review in db.session.execute(select(Review)).unique().scalars():
        if review.status == "closed":
            choices = [c for (rid, _), c in stored.items() if rid == review.id]
            assert review.tally["cast"] == len(choices)
    report = audit.verify(db.session())
    assert report.ok, report.reason
