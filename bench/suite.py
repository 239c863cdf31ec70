"""The benchmarks P1-P7 and M1 of the design (operations.md, "Performance"), each measured
against its baseline in the same run, runs of the two interleaved so that drifting machine
load hits both alike. Every figure is the median over `runs` runs.

Topology: the server under test (agent-api, the bare FastAPI app, the LiteLLM proxy) on the
server core; wrk, the Python client and the stub LLM on the load core. PostgreSQL and Redis
are the machine's own (not pinned).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import load
from bench.load import Request, Throughput
from bench.processes import Service, free_port, pin_tree, python, rss_mb, service

MODEL = "gpt-4o-mini"
KEYS = 16
PASSWORD = "bench password 1234"
EMAIL = "bench@example.com"
CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluates an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}


@dataclass
class Config:
    runs: int = 3
    seconds: float = 5.0
    warmup_seconds: float = 2.0
    samples: int = 400  # c=1 requests per run
    server_core: int = 0
    load_core: int = 1
    connections: int = 32


@dataclass
class Result:
    """One benchmark: the figure, its target, whether it is met, and the raw numbers."""

    id: str
    what: str
    measured: str
    target: str
    met: bool | None
    details: dict[str, Any] = field(default_factory=dict)


def _med(values: list[float]) -> float:
    return load.median(values)


def _throughput_summary(runs: list[Throughput]) -> dict[str, Any]:
    return {
        "rps": round(_med([r.rps for r in runs]), 1),
        "p50_ms": round(_med([r.p50_ms for r in runs]), 3),
        "p99_ms": round(_med([r.p99_ms for r in runs]), 3),
        "errors": sum(r.errors for r in runs),
        "runs_rps": [round(r.rps) for r in runs],
    }


def _latency_summary(runs: list[list[float]]) -> dict[str, Any]:
    return {
        "p50_ms": round(_med([load.percentile(r, 0.5) for r in runs]), 3),
        "p99_ms": round(_med([load.percentile(r, 0.99) for r in runs]), 3),
        "runs_p50_ms": [round(load.percentile(r, 0.5), 3) for r in runs],
    }


class Suite:
    def __init__(
        self,
        config: Config,
        *,
        agent_env: dict[str, str],
        litellm: Callable[[str], contextlib.AbstractContextManager[Any]] | None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.agent_env = agent_env
        self.litellm = litellm
        self.log = log
        self.results: list[Result] = []
        self.load: dict[str, float] = {}

    # --- helpers ---------------------------------------------------------------------------

    def _wrk(self, url: str, request: Request, connections: int | None = None) -> Throughput:
        return load.wrk(
            url,
            request,
            connections=connections or self.config.connections,
            seconds=self.config.seconds,
            core=self.config.load_core,
        )

    def _warm(self, url: str, request: Request, connections: int | None = None) -> None:
        load.wrk(
            url,
            request,
            connections=connections or self.config.connections,
            seconds=self.config.warmup_seconds,
            core=self.config.load_core,
        )

    def _interleaved_wrk(
        self, targets: dict[str, tuple[str, Request]], connections: int | None = None
    ) -> dict[str, list[Throughput]]:
        for url, request in targets.values():
            self._warm(url, request, connections)
        out: dict[str, list[Throughput]] = {name: [] for name in targets}
        for _ in range(self.config.runs):
            for name, (url, request) in targets.items():
                out[name].append(self._wrk(url, request, connections))
        for name, runs in out.items():
            self.log(f"    {name}: " + ", ".join(f"{r.rps:.0f} rps" for r in runs))
        return out

    def _interleaved_c1(
        self,
        targets: dict[str, tuple[str, list[Request]]],
        *,
        ttft: bool = False,
        samples: int | None = None,
    ) -> dict[str, list[list[float]]]:
        out: dict[str, list[list[float]]] = {name: [] for name in targets}
        for run in range(self.config.runs):
            for name, (url, requests) in targets.items():
                out[name].append(
                    load.sequential(
                        url,
                        requests,
                        count=samples or self.config.samples,
                        warmup=50 if run == 0 else 10,
                        ttft=ttft,
                    )
                )
        for name, runs in out.items():
            p50s = ", ".join(f"{load.percentile(r, 0.5):.2f}" for r in runs)
            self.log(f"    {name}: p50 {p50s} ms")
        return out

    # --- the run ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _servers(self) -> Iterator[tuple[Service, Service, Service]]:
        c = self.config
        stub_port, bare_port, agent_port = free_port(), free_port(), free_port()
        with (
            service(
                "stub-llm",
                python("-m", "tests.stub_llm", "--port", str(stub_port)),
                port=stub_port,
                core=c.load_core,
                ready_path="/models",
            ) as stub,
            service(
                "bare-fastapi",
                python(
                    "-m",
                    "uvicorn",
                    "bench.bare_app:app",
                    "--port",
                    str(bare_port),
                    "--no-proxy-headers",
                    "--log-level",
                    "warning",
                ),
                port=bare_port,
                core=c.server_core,
            ) as bare,
            service(
                "agent-api",
                python("-m", "agent_api", "serve"),
                port=agent_port,
                core=c.server_core,
                env={
                    **self.agent_env,
                    "SERVER_HOST": "127.0.0.1",
                    "SERVER_PORT": str(agent_port),
                    "LLM_PROVIDER": "openai",
                    "LLM_BASE_URL": stub.url,
                    "LLM_API_KEY": "sk-bench",
                    "LLM_DEFAULT_MODEL": MODEL,
                    "LLM_MODELS": f"{MODEL},gpt-4o",
                },
            ) as agent,
        ):
            yield stub, bare, agent

    def run(self) -> list[Result]:
        with self._servers() as (stub, bare, agent):
            keys, token = self._accounts(agent.url)
            time.sleep(1.0)
            idle_rss = rss_mb(agent.pid)
            self.log(f"  agent-api idle RSS {idle_rss:.0f} MiB")
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("P1", lambda: self._p1(bare, agent)),
                ("P2", lambda: self._p2(agent, keys)),
                ("P3", lambda: self._p3(stub, agent, keys)),
                ("P4", lambda: self._m1(idle_rss, self._p4(stub, agent, keys))),
                ("P5", lambda: self._p5(stub, agent, keys)),
                ("P6", lambda: self._p6(stub, agent, keys)),
                ("P7", lambda: self._p7(agent)),
            ]
            for name, step in steps:
                # The machine's load when the figure was taken (contention depresses it).
                self.load[name] = os.getloadavg()[0]
                step()
            self.load["M1"] = self.load["P4"]
            _ = token
        order = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "M1"]
        return sorted(self.results, key=lambda r: order.index(r.id))

    def _accounts(self, url: str) -> tuple[tuple[str, ...], str]:
        """Registers the benchmark user; returns (API keys, access token). Requests go to
        the keys in turn, so that no key's minute window nears the limit."""
        with httpx.Client(base_url=url, timeout=30) as client:
            client.post(
                "/v1/auth/register", json={"email": EMAIL, "password": PASSWORD, "name": "Bench"}
            ).raise_for_status()
            login = client.post("/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
            login.raise_for_status()
            token: str = login.json()["data"]["access_token"]
            keys = []
            for number in range(KEYS):
                created = client.post(
                    "/v1/api-keys",
                    json={"name": f"bench {number}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                created.raise_for_status()
                keys.append(created.json()["data"]["key"])
        return tuple(keys), token

    def _p1(self, bare: Service, agent: Service) -> None:
        self.log("  P1 GET /health, c=32: bare FastAPI vs agent-api")
        health = Request("GET", "/health")
        runs = self._interleaved_wrk({"bare": (bare.url, health), "agent": (agent.url, health)})
        b, a = _throughput_summary(runs["bare"]), _throughput_summary(runs["agent"])
        ratio = a["rps"] / b["rps"]
        self.results.append(
            Result(
                "P1",
                "`GET /health` rps, c=32, 1 worker",
                f"{a['rps']:.0f} rps = {ratio:.0%} of bare FastAPI's {b['rps']:.0f} rps",
                ">= 85% of a bare FastAPI app's",
                ratio >= 0.85,
                {"agent-api": a, "bare FastAPI": b},
            )
        )

    def _p2(self, agent: Service, keys: tuple[str, ...]) -> None:
        self.log("  P2 POST /v1/tools/execute (calculator, API key), c=32")
        request = Request(
            "POST",
            "/v1/tools/execute",
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "1337 * 42"}'},
            },
            bearers=keys,
        )
        runs = self._interleaved_wrk({"agent": (agent.url, request)})
        a = _throughput_summary(runs["agent"])
        self.results.append(
            Result(
                "P2",
                "`POST /v1/tools/execute` calculator, API key (auth + limit + audit row), c=32",
                f"{a['rps']:.0f} rps, p99 {a['p99_ms']:.1f} ms",
                ">= 1,500 rps per worker; p99 <= 25 ms",
                a["rps"] >= 1500 and a["p99_ms"] <= 25 and a["errors"] == 0,
                {"agent-api": a},
            )
        )

    def _chat(
        self,
        keys: tuple[str, ...],
        *,
        stream: bool = False,
        text: str = f"Hello there {load.NUMBER}",
    ) -> Request:
        body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        return Request("POST", "/v1/chat/completions", body, bearers=keys)

    def _p3(self, stub: Service, agent: Service, keys: tuple[str, ...]) -> None:
        self.log("  P3 /v1/chat/completions non-stream, c=1: straight to the stub vs agent-api")
        runs = self._interleaved_c1(
            {"stub": (stub.url, [self._chat(("x",))]), "agent": (agent.url, [self._chat(keys)])}
        )
        s, a = _latency_summary(runs["stub"]), _latency_summary(runs["agent"])
        p50, p99 = a["p50_ms"] - s["p50_ms"], a["p99_ms"] - s["p99_ms"]
        self.results.append(
            Result(
                "P3",
                "`/v1/chat/completions` non-stream, added latency over the stub, c=1",
                f"+{p50:.2f} ms p50, +{p99:.2f} ms p99",
                "p50 <= 5 ms, p99 <= 12 ms",
                p50 <= 5 and p99 <= 12,
                {"agent-api": a, "stub LLM direct": s},
            )
        )

    def _p4(self, stub: Service, agent: Service, keys: tuple[str, ...]) -> float:
        self.log("  P4 /v1/chat/completions non-stream, c=32: agent-api vs LiteLLM proxy")
        targets = {"agent": (agent.url, self._chat(keys))}
        if self.litellm is None:
            runs = self._interleaved_wrk(targets)
            rss = rss_mb(agent.pid)
            a = _throughput_summary(runs["agent"])
            self.results.append(
                Result(
                    "P4",
                    "`/v1/chat/completions` non-stream, c=32, vs a LiteLLM proxy",
                    f"{a['rps']:.0f} rps (LiteLLM baseline not available)",
                    ">= 2x the throughput of a LiteLLM proxy",
                    None,
                    {"agent-api": a},
                )
            )
            return rss
        with self.litellm(stub.url + "/v1") as proxy:
            # The proxy's process group leader (its workers are its children).
            pid = getattr(proxy, "pid", None) or proxy._proc.pid
            pin_tree(pid, self.config.server_core)
            request = self._chat((proxy.master_key,))
            targets["litellm"] = (proxy.url, request)
            runs = self._interleaved_wrk(targets)
        rss = rss_mb(agent.pid)
        a, lite = _throughput_summary(runs["agent"]), _throughput_summary(runs["litellm"])
        ratio = a["rps"] / lite["rps"]
        self.results.append(
            Result(
                "P4",
                "`/v1/chat/completions` non-stream, c=32, vs a LiteLLM proxy on the same stub",
                f"{a['rps']:.0f} rps = {ratio:.1f}x LiteLLM's {lite['rps']:.0f} rps",
                ">= 2x the throughput of a LiteLLM proxy",
                ratio >= 2 and a["errors"] == 0,
                {"agent-api": a, "LiteLLM proxy": lite},
            )
        )
        return rss

    def _m1(self, idle: float, after: float) -> None:
        self.results.append(
            Result(
                "M1",
                "agent-api RSS idle / after P4",
                f"{idle:.0f} MiB / {after:.0f} MiB",
                "<= 150 MB / <= 250 MB",
                idle <= 150 and after <= 250,
            )
        )

    def _p5(self, stub: Service, agent: Service, keys: tuple[str, ...]) -> None:
        self.log("  P5 streaming time to first token, c=1: stub vs agent-api")
        runs = self._interleaved_c1(
            {
                "stub": (stub.url, [self._chat(("x",), stream=True)]),
                "agent": (agent.url, [self._chat(keys, stream=True)]),
            },
            ttft=True,
        )
        s, a = _latency_summary(runs["stub"]), _latency_summary(runs["agent"])
        p50 = a["p50_ms"] - s["p50_ms"]
        self.results.append(
            Result(
                "P5",
                "streaming time to first token, added over the stub, c=1",
                f"+{p50:.2f} ms p50",
                "p50 <= 5 ms",
                p50 <= 5,
                {"agent-api": a, "stub LLM direct": s},
            )
        )

    def _p6(self, stub: Service, agent: Service, keys: tuple[str, ...]) -> None:
        self.log("  P6 agent turn with a tool (2 LLM calls + calculator), c=1")
        question = "What is 2 + 2?"
        first = {
            "model": MODEL,
            "messages": [{"role": "user", "content": question}],
            "tools": [CALCULATOR],
        }
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "calculator", "arguments": '{"expression": "2 + 2"}'},
        }
        second = {
            **first,
            "messages": [
                *first["messages"],
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"result": 4}'},
            ],
        }
        direct = [
            Request("POST", "/v1/chat/completions", first),
            Request("POST", "/v1/chat/completions", second),
        ]
        runs = self._interleaved_c1(
            {"stub": (stub.url, direct), "agent": (agent.url, [self._chat(keys, text=question)])},
            samples=max(50, self.config.samples // 4),  # a turn is the slowest request
        )
        s, a = _latency_summary(runs["stub"]), _latency_summary(runs["agent"])
        p50 = a["p50_ms"] - s["p50_ms"]
        self.results.append(
            Result(
                "P6",
                'one agent turn with a tool ("What is 2 + 2?": two LLM calls + calculator), c=1',
                f"+{p50:.2f} ms p50 over the stub's own {s['p50_ms']:.2f} ms",
                "p50 <= 20 ms over the stub's own time",
                p50 <= 20,
                {"agent-api": a, "stub LLM direct (both calls)": s},
            )
        )

    def _p7(self, agent: Service) -> None:
        self.log("  P7 logins/s (server on one core) with /health p99 measured meanwhile")
        login = Request("POST", "/v1/auth/login", {"email": EMAIL, "password": PASSWORD})
        self._warm(agent.url, login, connections=4)
        logins: list[Throughput] = []
        health_p99: list[float] = []
        for _ in range(self.config.runs):
            samples: list[float] = []
            stop = threading.Event()
            probe = threading.Thread(target=_probe_health, args=(agent.url, samples, stop))
            probe.start()
            try:
                logins.append(self._wrk(agent.url, login, connections=4))
            finally:
                stop.set()
                probe.join()
            health_p99.append(load.percentile(samples, 0.99))
        self.log("    logins: " + ", ".join(f"{r.rps:.1f}/s" for r in logins))
        rate = _med([r.rps for r in logins])
        p99 = _med(health_p99)
        self.results.append(
            Result(
                "P7",
                "logins/s on one core (Argon2id), `/health` p99 meanwhile",
                f"{rate:.1f} logins/s, /health p99 {p99:.1f} ms",
                ">= 25 logins/s per core; /health p99 <= 50 ms",
                rate >= 25 and p99 <= 50 and sum(r.errors for r in logins) == 0,
                {
                    "logins": _throughput_summary(logins),
                    "health_p99_ms_runs": [round(v, 1) for v in health_p99],
                },
            )
        )


def _probe_health(url: str, samples: list[float], stop: threading.Event) -> None:
    """`GET /health` every 20 ms until `stop`; latencies in ms into `samples`."""
    client = load.Client(url)
    try:
        while not stop.is_set():
            samples.append(client.latency(Request("GET", "/health")) * 1e3)
            stop.wait(0.02)
    finally:
        client.close()
