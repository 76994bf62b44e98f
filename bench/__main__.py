"""``make bench``: what the registry's HTTP endpoints cost, relative to a bare Flask app.

The registry is served by gunicorn on loopback, from a fresh instance folder and a fresh
database (SQLite in that folder, or with ``--database postgresql`` a new database on the
server), migrated and seeded. A bare Flask app with one constant JSON route is served
beside it by the same gunicorn with the same settings. Each scenario in
``bench/scenarios.py`` is checked once for its expected status, warmed up, then driven by
wrk (or, without wrk, by ``bench/load.py``) for a fixed time with a fixed number of
keep-alive connections; requests/s and the 50th and 99th latency percentiles are
recorded. Micro-benchmarks from ``bench/micro.py`` run afterwards.

The registry runs as ``make run`` ships it: access log on, rate limits on (in their
default store), checkpoints on their default cadence. Every answer whose status is not
the scenario's expected one counts as an error, and a run with errors exits 1.

Why ratios: the machines are shared and noisy, so an absolute requests/s figure says
little, and says nothing when compared across runs or machines. What does compare is
each endpoint's requests/s divided by the bare app's, measured in the same run on the
same machine. The bare app is measured before every scenario and after the last; each
scenario's divisor is the mean of the bare runs either side of it, and every bare run is
reported, since their spread shows how much the machine drifted during the run.

Results are printed and written to ``bench/results/<UTC time>-<database>.json`` and
``bench/results/latest-<database>.json``. Everything started (gunicorn, temporary
folders, the PostgreSQL database) is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy

from bench import load, report, wrk
from bench.context import ROOT, BenchError, Context, Request, send
from bench.micro import MICRO, Figures, Micro
from bench.scenarios import SCENARIOS, Scenario
from bench.servers import Gunicorn, postgres_database, serve

BARE_REQUEST = Request("GET", "/")
DRIFT_WARNING = 0.10  # bare after/before beyond this: say the run was disturbed


@dataclass(frozen=True)
class Driver:
    """A load generator: (base URL, request, seconds) -> figures."""

    name: str
    run: Callable[[str, Request, int], load.LoadResult]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--database", choices=["sqlite", "postgresql"], default="sqlite")
    add(
        "--postgres-url",
        default=os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="server on which --database postgresql creates (and drops) its own database",
    )
    add("--workers", type=int, default=2, help="gunicorn workers, both apps (default 2)")
    add("--threads", type=int, default=1, help="threads per worker; >1 means gthread")
    add("--connections", type=int, default=4, help="keep-alive connections (default 4)")
    add("--load-threads", type=int, default=2, help="wrk threads (default 2)")
    add("--duration", type=int, help="seconds measured per endpoint (default 10)")
    add("--warmup", type=int, help="seconds of unmeasured load first (default 2)")
    add("--quick", action="store_true", help="3 s per endpoint after a 1 s warm-up")
    add("--only", help="comma-separated scenario and micro-benchmark names")
    add("--micro", action=argparse.BooleanOptionalAction, default=True)
    add("--load", choices=["auto", "wrk", "python"], default="auto", help="load generator")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if min(args.workers, args.threads, args.connections, args.load_threads, args.duration) < 1:
        parser.error("--workers, --threads, --connections, --load-threads, --duration: >= 1")
    if args.warmup < 0:
        parser.error("--warmup: >= 0")
    return args


def select(only: str | None, micro: bool) -> tuple[list[Scenario], list[Micro]]:
    micros = MICRO if micro else []
    if not only:
        return list(SCENARIOS), list(micros)
    names = {n.strip() for n in only.split(",") if n.strip()}
    unknown = names - {s.name for s in SCENARIOS} - {m.name for m in MICRO}
    if unknown:
        known = ", ".join([s.name for s in SCENARIOS] + [m.name for m in MICRO])
        raise BenchError(f"unknown --only name(s): {', '.join(sorted(unknown))} (known: {known})")
    return [s for s in SCENARIOS if s.name in names], [m for m in micros if m.name in names]


def choose_driver(args: argparse.Namespace, workdir: Path) -> Driver:
    if args.load != "python":
        path = wrk.find_or_install()
        if path:
            return Driver(
                wrk.version(path),
                lambda url, request, seconds: wrk.run(
                    path, url, request, seconds, args.connections, args.load_threads, workdir
                ),
            )
        if args.load == "wrk":
            raise BenchError("wrk is not installed and could not be installed")
        print("bench: wrk unavailable; using the Python load generator", file=sys.stderr)
    return Driver(
        "python bench/load.py",
        lambda url, request, seconds: load.run(url, request, seconds, args.connections),
    )


def registry_env(instance: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        REGISTRY_INSTANCE_PATH=str(instance),
    )
    for name in ("REGISTRY_LOG_LEVEL", "REGISTRY_RATELIMIT_ENABLED", "REGISTRY_RATELIMIT_WRITES"):
        env.pop(name, None)  # as `make run` ships: the access log and rate limits on
    return env


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    return head + ("+dirty" if head and git("--no-optional-locks", "status", "--porcelain") else "")


def run(args: argparse.Namespace, stack: contextlib.ExitStack[Any]) -> None:
    scenarios, micros = select(args.only, args.micro)
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    logs = workdir / "logs"
    logs.mkdir()
    driver = choose_driver(args, workdir)
    server = Gunicorn(args.workers, args.threads)

    env = registry_env(workdir / "instance")
    if args.database == "postgresql":
        env["DATABASE_URL"], version = stack.enter_context(postgres_database(args.postgres_url))
        database = f"PostgreSQL {version}"
    else:
        database = f"SQLite {sqlite3.sqlite_version}"
    setup = Context("", env, workdir)
    setup.flask("db", "upgrade")
    setup.flask("registry", "seed")
    registry_url = stack.enter_context(serve("registry", "wsgi:app", server, env, "/healthz", logs))
    ctx = Context(registry_url, env, workdir)
    summary = (
        f"{database}; {server.describe()}; {driver.name}, {args.connections} connections,"
        f" {args.duration} s per endpoint after {args.warmup} s warm-up; nproc {nproc()}"
    )
    print(f"bench: {summary}", file=sys.stderr)

    bare: list[load.LoadResult] = []
    measured: list[report.Measured] = []
    checkpoints: Figures = {}
    if scenarios:
        bare_url = stack.enter_context(serve("bare", "bench.bare:app", server, env, "/", logs))
        measure = _measurer(driver, args.warmup, args.duration)
        results = []
        for scenario in scenarios:  # the bare app between every two, for the drift
            bare.append(measure("bare app", bare_url, BARE_REQUEST))
            before = log_size(ctx)
            results.append((scenario, measure(scenario.name, registry_url, checked(scenario, ctx))))
            if scenario.method != "GET":  # the writes it made under load, and their checkpoints
                checkpoints = dict(checkpoint_delays(ctx, after=before))
        bare.append(measure("bare app", bare_url, BARE_REQUEST))
        measured = [
            report.Measured(s, result, result.rps / ((bare[i].rps + bare[i + 1].rps) / 2))
            for i, (s, result) in enumerate(results)
        ]
    micro_results: dict[str, Figures] = {}
    for micro in micros:
        print(f"bench: micro-benchmark {micro.name}", file=sys.stderr)
        micro_results[micro.name] = dict(micro.run(ctx))

    print(f"\n{summary}\n")
    errors = 0
    if measured:
        bare_rps = sum(b.rps for b in bare) / len(bare)
        print(report.http_table(bare, measured))
        drift = max(b.rps for b in bare) / min(b.rps for b in bare) - 1
        print(
            f"\nratio = req/s / mean of the bare runs either side; bare {len(bare)} runs,"
            f" mean {bare_rps:.1f} req/s, spread {drift:.1%}"
        )
        if drift > DRIFT_WARNING:
            print(
                f"bench: warning: the bare app's req/s moved {drift:.1%} during the run:"
                " the machine was busy; ratios are less reliable, run again",
                file=sys.stderr,
            )
    for m in measured:
        if m.load.errors:
            errors += m.load.errors
            print(
                f"bench: error: {m.scenario.name} had {m.load.unexpected} answers other than"
                f" {m.scenario.status} and {m.load.socket_errors} socket errors under load",
                file=sys.stderr,
            )
    if checkpoints:
        print("\n" + ", ".join(f"{k}={v}" for k, v in checkpoints.items()))
    if micro_results:
        print(f"\n{report.micro_table(micro_results)}")
    document = {
        "started_at": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "database": args.database,
        "settings": {
            "server": server.describe(),
            "load": driver.name,
            "connections": args.connections,
            "load_threads": args.load_threads,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        },
        "machine": {"nproc": nproc(), "python": platform.python_version(), "database": database},
        "bare": [report.figures(result) for result in bare],
        "scenarios": [report.scenario_row(m) for m in measured],
        "checkpoints": checkpoints,
        "micro": micro_results,
        "errors": errors,
    }
    targets = report.targets(document)
    if targets:
        document["targets"] = targets
        print(f"\n{report.targets_table(targets)}")
    print()
    for path in report.write(document, started.strftime("%Y%m%dT%H%M%SZ"), args.database):
        print(f"wrote {path.relative_to(ROOT)}")
    if errors:
        raise BenchError(f"{errors} answers under load were errors (see above)")


def nproc() -> int:
    return len(os.sched_getaffinity(0))


def log_size(ctx: Context) -> int:
    from bench.micro import _app
    from registry.db import db
    from registry.services import audit

    with _app(ctx):
        return audit.log_size(db.session())


def checkpoint_delays(ctx: Context, *, after: int) -> Figures:
    """How long each event appended by a scenario (after event ``after``: its preparation
    and its load) waited for the signed checkpoint that covers it (the checkpoint's time
    less the event's), read from the database once the last checkpoint is due."""
    import time

    from bench.micro import _app
    from registry.db import db
    from registry.models.audit import AuditEvent, Checkpoint

    with _app(ctx) as app:
        interval = float(app.config["CHECKPOINT_INTERVAL_S"])
        time.sleep(2 * interval + 0.5)
        events = db.session.execute(
            sqlalchemy.select(AuditEvent.seq, AuditEvent.occurred_at)
            .where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
        ).all()
        issued = db.session.execute(
            sqlalchemy.select(Checkpoint.size, Checkpoint.issued_at).order_by(Checkpoint.size)
        ).all()
    delays, at = [], 0
    for seq, occurred in events:
        while at < len(issued) and issued[at][0] < seq:
            at += 1
        if at == len(issued):
            raise BenchError(f"event {seq} is not covered by any checkpoint")
        delays.append((issued[at][1] - occurred).total_seconds())
    delays.sort()
    return {
        "interval_s": interval,
        "events": len(delays),
        "checkpoints": len(issued),
        "delay_p50_s": round(load.percentile(delays, 0.5), 3),
        "delay_p99_s": round(load.percentile(delays, 0.99), 3),
        "delay_max_s": round(delays[-1], 3) if delays else 0.0,
    }


def checked(scenario: Scenario, ctx: Context) -> Request:
    """Prepare the scenario's request and check, once, that it gets the expected status."""
    request = scenario.resolve(ctx)
    reply = send(ctx.base_url, request)
    if reply.status != scenario.status:
        raise BenchError(
            f"scenario {scenario.name}: {request.method} {request.path} answered "
            f"{reply.status}, expected {scenario.status}:\n{reply.body[:500]!r}"
        )
    return request


def _measurer(
    driver: Driver, warmup: int, duration: int
) -> Callable[[str, str, Request], load.LoadResult]:
    def measure(name: str, base_url: str, request: Request) -> load.LoadResult:
        if warmup:
            driver.run(base_url, request, warmup)
        result = driver.run(base_url, request, duration)
        print(f"bench: {name}: {result.rps:.1f} req/s", file=sys.stderr)
        return result

    return measure


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so a kill cleans up as Ctrl-C does
    stack = contextlib.ExitStack()
    try:
        try:
            run(args, stack)
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                stack.close()
            finally:
                signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        print("bench: interrupted; everything started was stopped and removed", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
