"""The set in force, now or at any past point, and its change log.

Serving the current set must cost about what a constant answer costs: each worker keeps
the serialised set and its ETag, and asks the database for the latest revision number at
most once per ``POLICY_SET_CHECK_INTERVAL_S`` (so another worker's publication shows here
up to that late). A version whose effective time comes needs no query: the cached set
knows when it next changes by itself and is rebuilt at that instant.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import brotli
from flask import Flask, current_app
from sqlalchemy import select

from registry.db import current_session, utcnow
from registry.models.policy import PolicyVersion, SetRevision
from registry.present.versions import version_out
from registry.schemas.policy import SetVersionSchema
from registry.services import chain, decisions, policyset, reviews
from registry.services.evaluation import CitedPolicy
from registry.services.evaluation import PolicySet as EvaluationSet

_EXT = "registry.policy_set_cache"
_SET_VERSION = SetVersionSchema()


# The content codings the current set is served in besides identity, most preferred
# first, with how each is made: Brotli at quality 5 and gzip at 6 take tens of
# milliseconds for the largest sets, once per revision and worker, and shrink them
# five to ten times.
CODINGS: dict[str, Callable[[bytes], bytes]] = {
    "br": lambda body: brotli.compress(body, quality=5),
    "gzip": lambda body: gzip.compress(body, compresslevel=6, mtime=0),
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    ids: tuple[int, ...]
    valid_until: datetime | None  # when a published version next takes effect
    body: bytes
    etag: str
    # The body in each content coding, made the first time it is asked for.
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False)

    def etag_for(self, coding: str) -> str:
        """Each coding is its own representation, with its own strong ETag (RFC 9110)."""
        return self.etag if coding == "identity" else f'{self.etag[:-1]}-{coding}"'

    def etags(self) -> tuple[str, ...]:
        return (self.etag, *(self.etag_for(c) for c in CODINGS))

    def body_for(self, coding: str) -> bytes:
        if coding == "identity":
            return self.body
        found = self.encoded.get(coding)
        if found is None:
            found = self.encoded[coding] = CODINGS[coding](self.body)
        return found


class SetCache:
    """Per-worker memory of the set: serialised versions (immutable once published),
    the timeline of the latest revision, and the current set's bytes and ETag."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked_at = float("-inf")
        self.current: Snapshot | None = None
        self.timelines: OrderedDict[int, list[policyset.Entry]] = OrderedDict()
        self.versions: dict[int, dict[str, Any]] = {}
        self.cited: dict[int, CitedPolicy] = {}

    def timeline(self, revision: int) -> list[policyset.Entry]:
        found = self.timelines.get(revision)
        if found is None:
            found = policyset.load_timeline(current_session(), revision)
            self.timelines[revision] = found
            while len(self.timelines) > 8:
                self.timelines.popitem(last=False)
        return found

    def version_docs(self, ids: tuple[int, ...]) -> list[dict[str, Any]]:
        missing = [i for i in ids if i not in self.versions]
        if missing:
            session = current_session()
            rows = (
                session.execute(select(PolicyVersion).where(PolicyVersion.id.in_(missing)))
                .unique()
                .scalars()
                .all()
            )
            found = reviews.reviews_for_versions(session, missing)
            for version in rows:
                self.versions[version.id] = {
                    "slug": version.policy.slug,
                    "title": version.policy.title,
                    "purpose": version.policy.purpose,
                    "data_category": version.policy.data_category,
                    "version": _SET_VERSION.dump(version_out(version, found.get(version.id))),
                }
        return [self.versions[i] for i in ids]

    def cited_policies(self, ids: tuple[int, ...]) -> tuple[CitedPolicy, ...]:
        missing = [i for i in ids if i not in self.cited]
        if missing:
            rows = (
                current_session()
                .execute(select(PolicyVersion).where(PolicyVersion.id.in_(missing)))
                .unique()
                .scalars()
            )
            for version in rows:
                self.cited[version.id] = decisions.cited_policy(version)
        return tuple(self.cited[i] for i in ids)


def init_policy_set_cache(app: Flask) -> None:
    app.extensions[_EXT] = SetCache()


def _cache() -> SetCache:
    cache: SetCache = current_app.extensions[_EXT]
    return cache


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build(revision: int, at: datetime, echo: dict[str, Any] | None) -> Snapshot:
    """The set as revision ``revision`` knew it, in force at ``at``."""
    cache = _cache()
    timeline = cache.timeline(revision)
    entries = policyset.in_force(timeline, at)
    ids = tuple(e.version_id for e in entries)
    recorded = None
    if revision:
        recorded = current_session().get(SetRevision, revision)
    document: dict[str, Any] = {
        "revision": revision,
        "revision_recorded_at": _time(recorded.recorded_at) if recorded else None,
        "in_force_since": _time(policyset.since(timeline, at)),
        "next_change_at": _time(policyset.next_change(timeline, at)),
        "policies": sorted(cache.version_docs(ids), key=lambda p: p["slug"]),
    }
    if document["in_force_since"] is None:
        document["nothing_in_force"] = _nothing_in_force(timeline, at, revision)
    if echo:
        document.update(echo)
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    etag = '"set-' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Snapshot(revision, ids, policyset.next_change(timeline, at), body, etag)


def _nothing_in_force(
    timeline: list[policyset.Entry], at: datetime, revision: int
) -> dict[str, Any]:
    """Said plainly: at ``at`` no version had yet come into force, and when one first did
    (or will), and when the first revision was recorded."""
    first_in_force = min((e.in_force_from for e in timeline), default=None)
    first = current_session().get(SetRevision, 1) if revision else None
    if first_in_force is None:
        detail = "No policy has come into force yet: the set is empty."
    elif first_in_force > at:
        detail = (
            f"Nothing was in force at {chain.format_time(at)}: the first policy came (or "
            f"comes) into force at {chain.format_time(first_in_force)}."
        )
    else:
        detail = "Nothing was in force then."
    return {
        "detail": detail,
        "first_in_force_at": _time(first_in_force),
        "first_revision_recorded_at": _time(first.recorded_at) if first else None,
    }


def current_snapshot() -> Snapshot:
    """The set in force now, from memory when nothing can have changed."""
    cache = _cache()
    interval = current_app.config["POLICY_SET_CHECK_INTERVAL_S"]
    now = utcnow()
    snap = cache.current
    fresh = time.monotonic() - cache.checked_at < interval
    if snap is not None and fresh and (snap.valid_until is None or now < snap.valid_until):
        return snap
    with cache.lock:
        latest = policyset.latest_revision(current_session())
        cache.checked_at = time.monotonic()
        snap = cache.current
        if (
            snap is None
            or snap.revision != latest
            or (snap.valid_until is not None and now >= snap.valid_until)
        ):
            snap = build(latest, now, None)
            cache.current = snap
        return snap


def evaluation_set(revision: int | None = None, as_of: datetime | None = None) -> EvaluationSet:
    """The set a decision is evaluated against: now by default, or a past one."""
    cache = _cache()
    if revision is None and as_of is None:
        snap = current_snapshot()
        return EvaluationSet(
            snap.revision, chain.format_time(utcnow()), cache.cited_policies(snap.ids)
        )
    session = current_session()
    number = policyset.resolve(session, revision=revision, known_at=None)
    at = as_of
    if at is None:
        at = policyset.get_revision(session, number).recorded_at if number else utcnow()
    ids = tuple(e.version_id for e in policyset.in_force(cache.timeline(number), at))
    return EvaluationSet(number, chain.format_time(at), cache.cited_policies(ids))
