"""Load results, and the fallback load generator used when wrk cannot be had.

The fallback keeps N keep-alive ``http.client`` connections busy, one thread each, for a
fixed time and records every request's latency. It is much slower than wrk (the client
shares the GIL and the cores with the servers), so its absolute figures are lower; the
ratios to the bare app, driven by the same generator in the same run, still compare.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.context import BenchError, Request


@dataclass(frozen=True)
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    unexpected: int  # answers with any status but the one expected
    socket_errors: int  # connect/read/write errors and timeouts

    @property
    def errors(self) -> int:
        return self.unexpected + self.socket_errors


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class _Tally:
    latencies: list[float]
    unexpected: int = 0
    socket_errors: int = 0


def run(base_url: str, request: Request, duration_s: float, connections: int) -> LoadResult:
    """Drive ``request`` from ``connections`` keep-alive connections for ``duration_s``."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port
    tallies = [_Tally([]) for _ in range(connections)]
    start = threading.Barrier(connections + 1)
    deadline = 0.0

    variants = [{**request.headers, **extra} for extra in request.rotate] or [request.headers]

    def connection(tally: _Tally) -> None:
        conn: http.client.HTTPConnection | None = None
        turn = 0
        start.wait()
        while time.perf_counter() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            headers = dict(variants[turn % len(variants)])
            turn += 1
            began = time.perf_counter()
            try:
                conn.request(request.method, request.path, request.body, headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                tally.socket_errors += 1
                conn.close()
                conn = None
                continue
            tally.latencies.append(time.perf_counter() - began)
            if response.status != request.status:
                tally.unexpected += 1
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=connection, args=(t,), daemon=True) for t in tallies]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + duration_s
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began

    latencies = sorted(x for t in tallies for x in t.latencies)
    if not latencies:
        raise BenchError(f"no request to {base_url}{request.path} completed")
    return LoadResult(
        requests=len(latencies),
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        unexpected=sum(t.unexpected for t in tallies),
        socket_errors=sum(t.socket_errors for t in tallies),
    )
