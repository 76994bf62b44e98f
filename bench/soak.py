"""A soak: a mixed load of readers, voters, editors and decision-makers against the real
app under gunicorn on PostgreSQL, for a bounded time on loopback.

    python -m bench.soak [--seconds 60] [--workers 2] [--database postgresql|sqlite]

Reports throughput, p95 and p99 per endpoint, the 5xx rate, and a final verification of
the audit chain. Passes when p95 of every read is under 250 ms, there is no 5xx, and the
chain verifies; exits 1 otherwise. Results go to bench/results/soak-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.__main__ import commit, nproc, registry_env
from bench.context import ROOT, Context
from bench.scenarios import DECISION
from bench.servers import Gunicorn, postgres_database, serve

READ_LIMIT_MS = 250.0
PUBLIC_BENEFIT = (
    "benefits",
    "beneficiaries",
    "harms_and_mitigations",
    "commercial_involvement",
    "benefits_to_nhs_and_public",
    "public_communication",
)
RESULTS = ROOT / "bench" / "results"


class Client:
    """One keep-alive connection, recording each answer's latency under an endpoint name."""

    def __init__(self, base: str, token: str | None, record: Any) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.token, self.record = token, record
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(
        self,
        name: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=sent)
            reply = self.conn.getresponse()
            raw = reply.read()
            status, got = reply.status, dict(reply.getheaders())
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            status, got, raw = 599, {}, b""
        self.record(name, method, status, (time.perf_counter() - started) * 1000)
        parsed = json.loads(raw) if raw and got.get("Content-Type", "").endswith("json") else None
        return status, got, parsed


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.methods: dict[str, str] = {}

    def __call__(self, name: str, method: str, status: int, ms: float) -> None:
        with self.lock:
            self.samples[name].append(ms)
            self.statuses[name][status] += 1
            self.methods[name] = method


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def prepare(ctx: Context, members: int) -> dict[str, Any]:
    """Users and tokens for every kind of client, a panel, and reviews to vote on."""

    def user(email: str, role: str, org: str = "Soak NHS Trust") -> str:
        ctx.flask(
            "registry",
            "create-user",
            email,
            "--role",
            role,
            "--organisation",
            org,
            "--organisation-kind",
            "nhs_trust",
        )
        return ctx.flask("registry", "create-token", email, "--name", "soak").strip()

    tokens = {
        "admin": user("soak-admin@example.org", "admin"),
        "editor": user("soak-editor@example.org", "editor"),
        "reader": user("soak-reader@example.org", "reader"),
        "members": [user(f"soak-member{i}@example.org", "panel_member") for i in range(members)],
    }
    admin = Client(ctx.base_url, tokens["admin"], lambda *a: None)
    status, _, panel = admin.call(
        "setup", "POST", "/api/v1/panels", {"name": "Soak panel", "quorum": 0.25, "threshold": 0.5}
    )
    assert status == 201, status
    for i in range(members):
        status, _, me = Client(ctx.base_url, tokens["members"][i], lambda *a: None).call(
            "setup", "GET", "/api/v1/auth/me"
        )
        admin.call(
            "setup", "POST", f"/api/v1/panels/{panel['id']}/members", {"user_id": me["user"]["id"]}
        )
    tokens["panel_id"] = panel["id"]
    return tokens


def run(args: argparse.Namespace, stack: contextlib.ExitStack[Any]) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="registry-soak-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    (workdir / "logs").mkdir()
    env = registry_env(workdir / "instance")
    env["REGISTRY_AUDIT_VERIFY_CACHE_S"] = "0"
    if args.database == "postgresql":
        env["DATABASE_URL"], _version = stack.enter_context(postgres_database(args.postgres_url))
    setup = Context("", env, workdir)
    setup.flask("db", "upgrade")
    setup.flask("registry", "seed")
    server = Gunicorn(args.workers, 1)
    base = stack.enter_context(
        serve("registry", "wsgi:app", server, env, "/healthz", workdir / "logs")
    )
    ctx = Context(base, env, workdir)
    tokens = prepare(ctx, args.members)
    recorder = Recorder()
    stop = threading.Event()
    editor_lock = threading.Lock()
    open_reviews: list[int] = []

    def reader(n: int) -> None:
        client = Client(base, None if n % 2 else tokens["reader"], recorder)
        etag = ""
        while not stop.is_set():
            _status, headers, _ = client.call(
                "GET /policy-set",
                "GET",
                "/api/v1/policy-set",
                headers={"If-None-Match": etag} if etag else None,
            )
            etag = headers.get("ETag", etag)
            client.call("GET /policies", "GET", "/api/v1/policies?purpose=research")
            client.call("GET /policy-set/revisions", "GET", "/api/v1/policy-set/revisions")
            client.call("GET /conditions", "GET", "/api/v1/conditions")

    def decider() -> None:
        client = Client(base, tokens["reader"], recorder)
        while not stop.is_set():
            body = json.loads(json.dumps(DECISION))
            body["circumstances"]["duration_months"] = random.randint(6, 48)
            client.call("POST /decisions", "POST", "/api/v1/decisions", body)

    def voter(n: int) -> None:
        client = Client(base, tokens["members"][n], recorder)
        while not stop.is_set():
            _, _, listed = client.call("GET /reviews", "GET", "/api/v1/reviews?status=open")
            for review in (listed or [])[:3]:
                choice = random.choice(["endorse", "endorse", "reject"])
                client.call(
                    "PUT /reviews/{id}/votes/me",
                    "PUT",
                    f"/api/v1/reviews/{review['id']}/votes/me",
                    {"choice": choice, "comment": "soak"},
                )
            time.sleep(0.05)

    def editor(n: int) -> None:
        client = Client(base, tokens["editor"], recorder)
        cycle = 0
        while not stop.is_set():
            cycle += 1
            slug = f"soak-{n}-{cycle}"
            body = {
                "slug": slug,
                "title": f"Soak policy {n}.{cycle}",
                "purpose": "research",
                "data_category": "depersonalised",
                "body": "# Soak\n",
                "summary": "Soak.",
                "conditions": [{"code": "time_limited", "parameters": {"max_months": 24}}],
            }
            status, headers, _ = client.call("POST /policies", "POST", "/api/v1/policies", body)
            if status != 201:
                continue
            url = f"/api/v1/policies/{slug}/versions/1"
            status, headers, _ = client.call(
                "PATCH /policies/{slug}/versions/{n}",
                "PATCH",
                url,
                {"summary": "Soaked."},
                {"If-Match": headers.get("ETag", "")},
            )
            status, _, review = client.call(
                "POST /policies/{slug}/versions/{n}/submit",
                "POST",
                f"{url}/submit",
                {
                    "panel_id": tokens["panel_id"],
                    "public_benefit": dict.fromkeys(PUBLIC_BENEFIT, "Soak answer."),
                },
            )
            if status != 201:
                continue
            with editor_lock:
                open_reviews.append(review["id"])
            time.sleep(1.0)  # give the voters a moment
            status, _, closed = client.call(
                "POST /reviews/{id}/close",
                "POST",
                f"/api/v1/reviews/{review['id']}/close",
                {"recommendation": "Soak."},
            )
            if status == 200 and closed["outcome"] == "endorsed":
                client.call("POST /policies/{slug}/versions/{n}/publish", "POST", f"{url}/publish")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(args.readers)]
    threads += [threading.Thread(target=decider) for _ in range(args.deciders)]
    threads += [threading.Thread(target=voter, args=(i,)) for i in range(args.members)]
    threads += [threading.Thread(target=editor, args=(i,)) for i in range(args.editors)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    verify = Client(base, None, lambda *a: None).call(
        "verify", "GET", "/api/v1/audit-events/verify"
    )[2]
    return report(args, recorder, elapsed, verify, server)


def report(
    args: argparse.Namespace, recorder: Recorder, elapsed: float, verify: Any, server: Gunicorn
) -> int:
    rows = []
    total = errors = 0
    failed_reads = []
    for name in sorted(recorder.samples):
        samples = recorder.samples[name]
        statuses = recorder.statuses[name]
        server_errors = sum(n for status, n in statuses.items() if status >= 500)
        total += len(samples)
        errors += server_errors
        p95, p99 = percentile(samples, 0.95), percentile(samples, 0.99)
        if recorder.methods[name] == "GET" and p95 >= READ_LIMIT_MS:
            failed_reads.append(name)
        rows.append(
            {
                "endpoint": name,
                "requests": len(samples),
                "per_s": round(len(samples) / elapsed, 1),
                "p95_ms": round(p95, 1),
                "p99_ms": round(p99, 1),
                "5xx": server_errors,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
            }
        )
    ok = not failed_reads and errors == 0 and bool(verify and verify.get("ok"))
    width = max(len(r["endpoint"]) for r in rows)
    print(
        f"soak: {args.database}, {server.describe()}, {elapsed:.0f} s, {args.readers} readers,"
        f" {args.deciders} deciders, {args.members} voters, {args.editors} editors;"
        f" nproc {nproc()}"
    )
    print(
        f"{'endpoint':<{width}}  {'requests':>8}  {'per s':>7}  {'p95 ms':>7}  "
        f"{'p99 ms':>7}  {'5xx':>4}  statuses"
    )
    for r in rows:
        print(
            f"{r['endpoint']:<{width}}  {r['requests']:>8}  {r['per_s']:>7}  {r['p95_ms']:>7}"
            f"  {r['p99_ms']:>7}  {r['5xx']:>4}  {r['statuses']}"
        )
    print(
        f"total {total} requests, {total / elapsed:.0f}/s, 5xx rate {errors / max(total, 1):.4%};"
        f" audit chain: {'verifies' if verify and verify.get('ok') else 'DOES NOT VERIFY'}"
        f" ({verify.get('events') if verify else '?'} events)"
    )
    print(
        f"soak: {'PASS' if ok else 'FAIL'} (p95 reads < {READ_LIMIT_MS:.0f} ms, no 5xx,"
        f" chain verifies){'; slow reads: ' + ', '.join(failed_reads) if failed_reads else ''}"
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp,
        "commit": commit(),
        "database": args.database,
        "seconds": round(elapsed, 1),
        "workers": args.workers,
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "server_errors": errors,
        "chain_verifies": bool(verify and verify.get("ok")),
        "pass": ok,
        "endpoints": rows,
    }
    for name in (f"soak-{stamp}-{args.database}.json", f"soak-latest-{args.database}.json"):
        (RESULTS / name).write_text(json.dumps(document, indent=2) + "\n")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--deciders", type=int, default=2)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--editors", type=int, default=1)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        return run(args, stack)


if __name__ == "__main__":
    sys.exit(main())
