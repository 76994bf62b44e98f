"""Drive a request with wrk (installed with apt-get when missing and we are root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.context import BenchError, Request
from bench.load import LoadResult

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_UNEXPECTED = re.compile(r"^Unexpected statuses: (\d+)$", re.MULTILINE)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def find_or_install() -> str | None:
    """Return wrk's path; as root, try ``apt-get install -y wrk`` first if it is missing."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("bench: wrk not found; installing it with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    # A fresh machine may have no package lists yet: update only if the plain install fails.
    for steps in ([install], [["apt-get", "update", "-q"], install]):
        try:
            ok = all(
                subprocess.run(cmd, env=env, capture_output=True, timeout=300).returncode == 0
                for cmd in steps
            )
        except subprocess.TimeoutExpired:
            ok = False
        if ok and (found := shutil.which("wrk")):
            return found
    return None


def version(wrk: str) -> str:
    """``wrk 4.1.0`` (wrk -v prints it, then its usage, and exits 1)."""
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"wrk (?:\S+/)?(\S+)", out)
    return f"wrk {match.group(1)}" if match else "wrk"


def lua_string(text: str) -> str:
    """A Lua string literal for ``text``: printable ASCII as is, every other byte escaped."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        printable = 0x20 <= byte < 0x7F and char not in '"\\'
        out.append(char if printable else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


# Counts every answer whose status is not the expected one (wrk itself counts only those
# outside 2xx/3xx), and sends the rotating headers in turn; each wrk thread has its own
# Lua state, and ``done`` adds up the threads' counts.
_LUA = """
local expected = %(status)d
local variants = {%(variants)s}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) unexpected = 0; turn = 0 end
if #variants > 0 then
  function request()
    turn = turn %% #variants + 1
    for name, value in pairs(variants[turn]) do wrk.headers[name] = value end
    return wrk.format()
  end
end
function response(status, headers, body)
  if status ~= expected then unexpected = unexpected + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, thread in ipairs(threads) do n = n + thread:get("unexpected") end
  io.write(string.format("Unexpected statuses: %%d\\n", n))
end
"""


def script(request: Request) -> str:
    """The Lua script that sets method, headers and body and counts unexpected statuses."""
    lines = [f"wrk.method = {lua_string(request.method)}"]
    lines += [
        f"wrk.headers[{lua_string(name)}] = {lua_string(value)}"
        for name, value in request.headers.items()
    ]
    if request.body is not None:
        lines.append(f"wrk.body = {lua_string(request.body.decode())}")
    variants = ", ".join(
        "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in extra.items()) + "}"
        for extra in request.rotate
    )
    return "\n".join(lines) + _LUA % {"status": request.status, "variants": variants}


def run(
    wrk: str,
    base_url: str,
    request: Request,
    duration_s: int,
    connections: int,
    threads: int,
    workdir: Path,
) -> LoadResult:
    """Run ``wrk --latency`` once and parse its report."""
    command = [
        wrk,
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        "--timeout=10s",
        "--latency",
    ]
    path = workdir / "request.lua"
    path.write_text(script(request))
    command.append(f"--script={path}")
    command.append(base_url + request.path)
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return parse(proc.stdout)


def parse(report: str) -> LoadResult:
    rps, requests = _RPS.search(report), _REQUESTS.search(report)
    unexpected = _UNEXPECTED.search(report)
    percentiles = {p: float(v) * _UNITS_MS[unit] for p, v, unit in _PERCENTILE.findall(report)}
    if rps is None or requests is None or unexpected is None or set(percentiles) != {"50", "99"}:
        raise BenchError(f"could not read wrk's report:\n{report}")
    socket = _SOCKET.search(report)
    return LoadResult(
        requests=int(requests.group(1)),
        rps=float(rps.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        unexpected=int(unexpected.group(1)),
        socket_errors=sum(map(int, socket.groups())) if socket else 0,
    )
