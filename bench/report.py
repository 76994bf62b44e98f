"""The printed tables and the JSON files under bench/results/."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadResult
from bench.micro import Figures
from bench.scenarios import Scenario

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Measured:
    scenario: Scenario
    load: LoadResult
    ratio_to_bare: float


def figures(load: LoadResult) -> dict[str, float | int]:
    return {
        "rps": round(load.rps, 1),
        "p50_ms": round(load.p50_ms, 3),
        "p99_ms": round(load.p99_ms, 3),
        "unexpected_status": load.unexpected,
        "socket_errors": load.socket_errors,
    }


def scenario_row(m: Measured) -> dict[str, Any]:
    s = m.scenario
    return {
        "name": s.name,
        "method": s.method,
        "path": s.path,
        "expected_status": s.status,
        **figures(m.load),
        "ratio_to_bare": round(m.ratio_to_bare, 3),
    }


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A plain-text table; ``align`` has one ``l`` or ``r`` per column."""
    cells = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def http_table(bare: Sequence[LoadResult], measured: Sequence[Measured]) -> str:
    header = ["scenario", "method", "path", "status", "req/s", "p50 ms", "p99 ms", "ratio"]
    header += ["unexpected status", "socket errors"]
    rows = []
    for i, m in enumerate(measured):
        rows.append(_row("(bare app)", "GET", "/", 200, bare[i], ""))
        rows.append(
            _row(
                m.scenario.name,
                m.scenario.method,
                m.scenario.path,
                m.scenario.status,
                m.load,
                f"{m.ratio_to_bare:.3f}",
            )
        )
    rows.append(_row("(bare app)", "GET", "/", 200, bare[-1], ""))
    return table(header, rows, "lllrrrrrrr")


# The targets the registry holds itself to, in the configuration `make run` ships:
# (what, where in the results, at least or at most, the bound per database).
_DECISIONS = {"sqlite": 0.25, "postgresql": 0.15}
TARGETS: list[tuple[str, tuple[str, str], str, dict[str, float]]] = [
    (
        "POST /decisions, ratio",
        ("scenario", "decision"),
        ">=",
        {"sqlite": 0.25, "postgresql": 0.15},
    ),
    ("GET /policy-set 200, ratio", ("scenario", "policy-set"), ">=", {"*": 0.65}),
    ("GET /policy-set 304, ratio", ("scenario", "policy-set-304"), ">=", {"*": 0.75}),
    ("GET /policy-set 200 at 600, ratio", ("scenario", "policy-set-600-br"), ">=", {"*": 0.5}),
    ("verification, events/s", ("micro", "audit-log-100k"), ">=", {"*": 100_000}),
    ("checkpoint delay / interval", ("checkpoints", ""), "<=", {"*": 1.5}),
]


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target this run measured: its bound, the figure, and whether it was met."""
    database = document["database"]
    ratios = {row["name"]: row["ratio_to_bare"] for row in document["scenarios"]}
    found = []
    for what, (kind, name), sense, bounds in TARGETS:
        bound = bounds.get(database, bounds.get("*"))
        figure: float | None = None
        if kind == "scenario":
            figure = ratios.get(name)
        elif kind == "micro" and name in document["micro"]:
            figure = document["micro"][name]["verify_events_per_s"]
        elif kind == "checkpoints" and document["checkpoints"].get("interval_s"):
            delays = document["checkpoints"]
            figure = round(delays["delay_max_s"] / delays["interval_s"], 3)
        if figure is None or bound is None:
            continue
        met = figure >= bound if sense == ">=" else figure <= bound
        found.append({"target": what, "bound": f"{sense} {bound}", "measured": figure, "met": met})
    return found


def targets_table(found: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [t["target"], t["bound"], str(t["measured"]), "met" if t["met"] else "NOT MET"]
        for t in found
    ]
    return table(["target", "bound", "measured", ""], rows, "llrl")


def _row(name: str, method: str, path: str, status: int, load: LoadResult, ratio: str) -> list[str]:
    return [
        name,
        method,
        path,
        str(status),
        f"{load.rps:.1f}",
        f"{load.p50_ms:.2f}",
        f"{load.p99_ms:.2f}",
        ratio,
        str(load.unexpected),
        str(load.socket_errors),
    ]


def micro_table(results: Mapping[str, Figures]) -> str:
    rows = [
        [name, ", ".join(f"{k}={v}" for k, v in figs.items())] for name, figs in results.items()
    ]
    return table(["micro-benchmark", "figures"], rows, "ll")


def write(document: Mapping[str, Any], stamp: str, database: str) -> list[Path]:
    """Write ``<stamp>-<database>.json`` and ``latest-<database>.json``, each atomically."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    paths = [RESULTS / f"{stamp}-{database}.json", RESULTS / f"latest-{database}.json"]
    RESULTS.mkdir(exist_ok=True)
    for path in paths:
        tmp = path.with_name(path.name + ".tmp")  # ignored by git until renamed
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return paths
