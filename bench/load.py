"""Load generators: `wrk` for throughput (and latency under load), and a sequential Python
client for c=1 latencies and time-to-first-token.

The Python client is only used at c=1, where it waits on the server between requests; its own
cost per request (~0.1 ms) is the same for the request and its baseline, so it cancels out in
the "added latency" figures. Both run on the load generator's core (see `bench.__main__`).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRK_INSTALL_HINT = "wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu)"

_LUA = """
wrk.method = {method}
wrk.body = {body}
{headers}
{rotation}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d %f %f %f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""

_ROTATION = """
local tokens = {TOKENS}
local template = wrk.body
local sent = 0
request = function()
  sent = sent + 1
  wrk.headers["Authorization"] = tokens[(sent % #tokens) + 1]
  if template then
    return wrk.format(nil, nil, nil, (string.gsub(template, "__N__", tostring(sent))))
  end
  return wrk.format()
end
"""
# In a body, replaced by the request's number: identical concurrent chat requests of one user
# are one request retried (answered 409 while the first runs), not load.
NUMBER = "__N__"


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


@dataclass(frozen=True)
class Throughput:
    """One wrk run: requests per second and latency percentiles in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    # Bearer credentials used in turn, one per request (spreads the rate-limit windows).
    bearers: tuple[str, ...] = ()

    def encoded_body(self, number: int = 0) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body).replace(NUMBER, str(number)).encode()

    def all_headers(self, number: int = 0) -> dict[str, str]:
        headers = dict(self.headers)
        if self.bearers:
            headers["Authorization"] = f"Bearer {self.bearers[number % len(self.bearers)]}"
        if self.body is not None:
            headers.setdefault("Content-Type", "application/json")
        return headers


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    base_url: str,
    request: Request,
    *,
    connections: int,
    seconds: float,
    core: int | None,
    threads: int = 1,
) -> Throughput:
    """Runs wrk for `seconds` with `connections` keep-alive connections."""
    body = request.encoded_body()
    headers = "\n".join(
        f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}"
        for k, v in request.all_headers().items()
    )
    rotation = ""
    if request.bearers:
        rotation = _ROTATION.replace(
            "TOKENS", ", ".join(_lua_string(f"Bearer {b}") for b in request.bearers)
        )
    script = _LUA.format(
        method=_lua_string(request.method),
        body=_lua_string(body.decode()) if body is not None else "nil",
        headers=headers,
        rotation=rotation,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        lua.name,
        base_url + request.path,
    ]
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(core), *argv]
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    finally:
        Path(lua.name).unlink(missing_ok=True)
    match = re.search(r"^BENCH (.*)$", out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    fields = match.group(1).split()
    requests, duration_us = int(fields[0]), int(fields[1])
    errors = sum(int(f) for f in fields[2:7])
    return Throughput(
        rps=requests / (duration_us / 1e6),
        p50_ms=float(fields[7]) / 1e3,
        p99_ms=float(fields[8]) / 1e3,
        requests=requests,
        errors=errors,
    )


class Client:
    """A keep-alive HTTP/1.1 client (http.client sets TCP_NODELAY) for sequential requests."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self._sent = 0

    def _request(self, request: Request) -> http.client.HTTPResponse:
        self._sent += 1
        self._conn.request(
            request.method,
            request.path,
            request.encoded_body(self._sent),
            request.all_headers(self._sent),
        )
        return self._conn.getresponse()

    def close(self) -> None:
        self._conn.close()

    def send(self, request: Request) -> tuple[int, bytes]:
        response = self._request(request)
        return response.status, response.read()

    def latency(self, request: Request) -> float:
        """Seconds for one whole request; raises on a non-2xx answer."""
        start = time.perf_counter()
        status, body = self.send(request)
        elapsed = time.perf_counter() - start
        if not 200 <= status < 300:
            raise RuntimeError(f"{request.path} answered {status}: {body[:300]!r}")
        return elapsed

    def first_token(self, request: Request) -> float:
        """Seconds until the first event carrying non-empty `content` of a streamed answer
        (the whole stream is then read to its end)."""
        start = time.perf_counter()
        response = self._request(request)
        if response.status != 200:
            raise RuntimeError(f"{request.path} answered {response.status}: {response.read()!r}")
        seen = b""
        first: float | None = None
        while first is None:
            piece = response.read1(65536)
            if not piece:
                raise RuntimeError(f"stream ended with no content: {seen[-300:]!r}")
            seen += piece
            if _CONTENT.search(seen):
                first = time.perf_counter() - start
        response.read()
        return first


_CONTENT = re.compile(rb'"content":\s*"[^"]')


def sequential(
    base_url: str, requests: list[Request], *, count: int, warmup: int, ttft: bool = False
) -> list[float]:
    """Latency in ms of `count` rounds (after `warmup`); a round sends `requests` in order and
    counts the sum of their times (or, with `ttft`, the time to first token of the first)."""
    client = Client(base_url)
    try:
        samples = []
        for i in range(warmup + count):
            if ttft:
                total = client.first_token(requests[0])
            else:
                total = sum(client.latency(r) for r in requests)
            if i >= warmup:
                samples.append(total * 1e3)
        return samples
    finally:
        client.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def median(values: list[float]) -> float:
    return statistics.median(values)
