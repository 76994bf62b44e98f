"""The set in force answers the past exactly: revisions, as_of, known_at, and caching."""

from __future__ import annotations

import gzip
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import brotli
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from registry.db import db, utcnow
from registry.models.policy import Policy, PolicyVersion
from registry.present.policyset import init_policy_set_cache
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"
SLUGS = ("care-records", "planning-data", "research-data")
OFFSETS = (None, -30 * 86400, -90, 90, 30 * 86400)


def _q(moment: datetime) -> str:
    return quote(moment.isoformat())


def model_set(events: list[dict[str, Any]], revision: int, at: datetime) -> list[tuple[str, int]]:
    """The obvious reading of the history: for each policy, the highest version known by
    ``revision`` and in force at ``at``; retired policies drop out."""
    best: dict[str, dict[str, Any]] = {}
    for event in events:
        known_and_in_force = event["revision"] <= revision and event["in_force_from"] <= at
        current = best.get(event["slug"])
        if known_and_in_force and (current is None or event["number"] > current["number"]):
            best[event["slug"]] = event
    return sorted((s, e["number"]) for s, e in best.items() if not e["retire"])


operations = st.lists(
    st.tuples(st.integers(0, len(SLUGS) - 1), st.booleans(), st.sampled_from(OFFSETS)),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_time_travel_matches_a_simple_model(
    app: Flask, database: Any, ops: list[tuple[int, bool, int | None]]
) -> None:
    database.reset(app)
    f.catalogue()
    events: list[dict[str, Any]] = []
    state: dict[str, str] = {}
    for index, retire, offset in ops:
        slug = SLUGS[index]
        if state.get(slug) == "retired" or (retire and state.get(slug) != "published"):
            continue
        effective = None if offset is None else utcnow() + timedelta(seconds=offset)
        version = f.published(slug, retire=retire, effective_from=effective)
        row = db.session.execute(
            select(PolicyVersion)
            .join(Policy)
            .where(Policy.slug == slug, PolicyVersion.number == version.number)
        ).scalar_one()
        state[slug] = "retired" if retire else "published"
        events.append(
            {
                "slug": slug,
                "number": row.number,
                "revision": row.revision_number,
                "recorded_at": row.published_at,
                "in_force_from": row.in_force_from,
                "retire": retire,
            }
        )
    client = app.test_client()
    moments = {utcnow(), utcnow() - timedelta(days=365), utcnow() + timedelta(days=365)}
    for event in events:
        for delta in (timedelta(microseconds=-1), timedelta(0)):
            moments.add(event["in_force_from"] + delta)
            moments.add(event["recorded_at"] + delta)
    revisions = sorted({e["revision"] for e in events})
    for at in sorted(moments):
        known = max((e["revision"] for e in events if e["recorded_at"] <= at), default=0)
        for revision in revisions:
            body = client.get(f"{API}/policy-set?revision={revision}&as_of={_q(at)}").get_json()
            got = [(p["slug"], p["version"]["number"]) for p in body["policies"]]
            assert got == model_set(events, revision, at), (revision, at)
        body = client.get(f"{API}/policy-set?known_at={_q(at)}").get_json()
        assert body["revision"] == known
        got = [(p["slug"], p["version"]["number"]) for p in body["policies"]]
        assert got == model_set(events, known, at), ("known_at", at)
        body = client.get(f"{API}/policy-set?as_of={_q(at)}").get_json()
        got = [(p["slug"], p["version"]["number"]) for p in body["policies"]]
        assert got == model_set(events, revisions[-1] if revisions else 0, at), ("as_of", at)
    now = client.get(f"{API}/policy-set").get_json()
    assert [(p["slug"], p["version"]["number"]) for p in now["policies"]] == model_set(
        events, revisions[-1] if revisions else 0, utcnow()
    )


def test_the_empty_set(app: Flask) -> None:
    body = app.test_client().get(f"{API}/policy-set").get_json()
    assert body == {
        "revision": 0,
        "revision_recorded_at": None,
        "in_force_since": None,
        "next_change_at": None,
        "policies": [],
        "nothing_in_force": {
            "detail": "No policy has come into force yet: the set is empty.",
            "first_in_force_at": None,
            "first_revision_recorded_at": None,
        },
    }


def test_revision_answers_with_the_set_it_left(app: Flask) -> None:
    f.catalogue()
    f.published("research-data", summary="One.")
    f.published("planning-data", purpose="planning")
    f.published("research-data", summary="Two.")
    client = app.test_client()
    first = client.get(f"{API}/policy-set?revision=1").get_json()
    assert [(p["slug"], p["version"]["summary"]) for p in first["policies"]] == [
        ("research-data", "One.")
    ]
    assert first["revision"] == 1
    assert_problem(client.get(f"{API}/policy-set?revision=9"), 404)
    assert_problem(client.get(f"{API}/policy-set?revision=1&known_at=2026-01-01T00:00:00Z"), 422)
    assert_problem(client.get(f"{API}/policy-set?as_of=yesterday"), 422)
    assert_problem(client.get(f"{API}/policy-set?as_of=2026-01-01T00:00:00"), 422)
    assert_problem(client.get(f"{API}/policy-set?revision=0"), 422)


def test_etag_and_304(app: Flask) -> None:
    f.catalogue()
    f.published("research-data")
    client = app.test_client()
    first = client.get(f"{API}/policy-set")
    etag = first.headers["ETag"]
    assert etag.startswith('"set-')
    assert first.headers["Cache-Control"] == "public, no-cache"
    again = client.get(f"{API}/policy-set", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    assert again.get_data() == b""
    assert (
        client.get(f"{API}/policy-set", headers={"If-None-Match": '"set-old"'}).status_code == 200
    )
    f.published("planning-data", purpose="planning")
    changed = client.get(f"{API}/policy-set", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    past = client.get(f"{API}/policy-set?revision=1")
    assert past.headers["ETag"] != changed.headers["ETag"]
    assert (
        client.get(
            f"{API}/policy-set?revision=1", headers={"If-None-Match": past.headers["ETag"]}
        ).status_code
        == 304
    )


def test_other_workers_see_a_new_revision_within_the_check_interval(
    make_app: Any, database: Any
) -> None:
    """Each worker re-checks the latest revision at most once per interval."""
    reader = make_app(POLICY_SET_CHECK_INTERVAL_S=0.5)
    writer = make_app()
    database.reset(writer)
    database.reset(reader)
    with writer.test_request_context():
        f.catalogue()
        f.published("research-data")
    client = reader.test_client()
    assert client.get(f"{API}/policy-set").get_json()["revision"] == 1
    with writer.test_request_context():
        f.published("planning-data", purpose="planning")
    deadline = time.monotonic() + 2
    while client.get(f"{API}/policy-set").get_json()["revision"] != 2:
        assert time.monotonic() < deadline, "a new revision stayed hidden past the interval"
        time.sleep(0.05)


def test_the_current_set_is_served_compressed_as_the_client_accepts(app: Flask) -> None:
    """Brotli or gzip, each its own representation with its own ETag, made once per
    revision; an If-None-Match naming any representation of this state is a 304."""
    f.catalogue()
    f.published("research-data")
    client = app.test_client()
    plain = client.get(f"{API}/policy-set")
    assert plain.headers.get("Content-Encoding") is None
    assert plain.headers["Vary"] == "Accept-Encoding"
    seen = {plain.headers["ETag"]}
    for accept, coding, decode in (
        ("gzip, deflate, br", "br", brotli.decompress),
        ("gzip", "gzip", gzip.decompress),
        ("br;q=0, gzip;q=0.5", "gzip", gzip.decompress),
        ("*", "br", brotli.decompress),
    ):
        answer = client.get(f"{API}/policy-set", headers={"Accept-Encoding": accept})
        assert answer.status_code == 200
        assert answer.headers["Content-Encoding"] == coding, accept
        assert decode(answer.data) == plain.data
        assert len(answer.data) < len(plain.data)
        assert answer.headers["ETag"].endswith(f'-{coding}"')
        seen.add(answer.headers["ETag"])
        again = client.get(
            f"{API}/policy-set",
            headers={"Accept-Encoding": accept, "If-None-Match": plain.headers["ETag"]},
        )
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == answer.headers["ETag"]
    assert len(seen) == 3
    refused = client.get(f"{API}/policy-set", headers={"Accept-Encoding": "gzip;q=0, br;q=0"})
    assert refused.headers.get("Content-Encoding") is None
    assert refused.data == plain.data
    # A past set is built for the request and served as it is.
    past = client.get(f"{API}/policy-set?revision=1", headers={"Accept-Encoding": "br"})
    assert past.status_code == 200 and past.headers.get("Content-Encoding") is None
    # After a publication the representations are of the new state.
    f.published("research-data-2")
    init_policy_set_cache(app)
    fresh = client.get(
        f"{API}/policy-set", headers={"Accept-Encoding": "br", "If-None-Match": ", ".join(seen)}
    )
    assert fresh.status_code == 200
    assert brotli.decompress(fresh.data) == client.get(f"{API}/policy-set").data
