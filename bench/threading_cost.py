"""What a long client transcript costs on `/v1/chat/completions` (stateless threading).

    uv run python -m bench.threading_cost [--sqlite] [--samples N] [--history N]

A real server (agent-api on one core, the stub LLM on the other, as `make bench` runs them),
one user, c=1, non-stream. Interleaved, sample by sample:

- **short**: a new 1-message request (its own text each time: no match, a new conversation);
- **new long**: a new transcript of `--history` - 2 messages (no match: a new conversation,
  the whole history stored in one batch insert);
- **long**: its stateless continuation, a request of `--history` messages: that transcript,
  the answer echoed back as an SDK does, and a new user message. The server stores only the
  new message.

The figure is long minus short, p50 (target <= 50 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.__main__ import DEFAULT_PG, JWT_SECRET, _database
from bench.processes import free_port, python, service
from bench.suite import MODEL, PASSWORD

CHAT = "/v1/chat/completions"


def _key(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        email = f"threads-{uuid.uuid4().hex[:8]}@example.com"
        client.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Bench"}
        ).raise_for_status()
        login = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["data"]["access_token"]
        created = client.post(
            "/v1/api-keys", json={"name": "threads"}, headers={"Authorization": f"Bearer {token}"}
        )
        created.raise_for_status()
        key: str = created.json()["data"]["key"]
        return key


def _timed(client: httpx.Client, messages: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.post(CHAT, json={"model": MODEL, "messages": messages})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{CHAT} answered {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return elapsed, body


def _transcript(length: int, tag: str) -> list[dict[str, Any]]:
    """A client transcript of `length` messages (odd: it ends with a user message)."""
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"{tag}: message {i}"} for i in range(length)]


def measure(url: str, samples: int, history: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {_key(url)}"}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        for _ in range(5):  # warm-up
            _timed(client, [{"role": "user", "content": uuid.uuid4().hex}])
        short, new_long, long = [], [], []
        for n in range(samples):
            ms, _ = _timed(client, [{"role": "user", "content": f"short {uuid.uuid4().hex}"}])
            short.append(ms)
            transcript = _transcript(history - 2, f"sample {n}")
            ms, body = _timed(client, transcript)
            new_long.append(ms)
            conversation = body["conversation_id"]
            transcript.append(body["choices"][0]["message"])
            transcript.append({"role": "user", "content": f"next question {n}"})
            ms, body = _timed(client, transcript)
            long.append(ms)
            if body["conversation_id"] != conversation:
                raise RuntimeError("the continuation did not find its conversation")
        stored = client.get(f"/v1/conversations/{conversation}").json()["data"]
    if len(stored["messages"]) != history + 1:
        raise RuntimeError(f"{len(stored['messages'])} messages stored, not {history + 1}")
    return {
        "short (1 message) p50 ms": statistics.median(short),
        f"new long ({history - 2} messages) p50 ms": statistics.median(new_long),
        f"long continuation ({history} messages) p50 ms": statistics.median(long),
        "difference": statistics.median(long) - statistics.median(short),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--history", type=int, default=999)
    args = parser.parse_args()
    stub_port, agent_port = free_port(), free_port()
    with (
        _database(args) as (database_url, database),
        service(
            "stub-llm",
            python("-m", "tests.stub_llm", "--port", str(stub_port)),
            port=stub_port,
            core=1,
            ready_path="/models",
        ) as stub,
        service(
            "agent-api",
            python("-m", "agent_api", "serve"),
            port=agent_port,
            core=0,
            env={
                "DATABASE_URL": database_url,
                "JWT_SECRET": JWT_SECRET,
                "LOG_LEVEL": "warning",
                "RATE_LIMIT_PER_MINUTE": "10000",
                "RATE_LIMIT_PER_DAY": "10000000",
                "SERVER_HOST": "127.0.0.1",
                "SERVER_PORT": str(agent_port),
                "LLM_PROVIDER": "openai",
                "LLM_BASE_URL": stub.url,
                "LLM_API_KEY": "sk-bench",
                "LLM_DEFAULT_MODEL": MODEL,
                "LLM_MODELS": MODEL,
            },
        ) as agent,
    ):
        figures = measure(agent.url, args.samples, args.history)
    difference = figures.pop("difference")
    print(f"threading cost on {database}, c=1, {args.samples} samples each")
    for name, value in figures.items():
        print(f"  {name}: {value:.1f}" if isinstance(value, float) else f"  {name}: {value}")
    verdict = "met" if difference <= 50 else "NOT met"
    print(f"  long - short p50: {difference:+.1f} ms (target <= 50 ms: {verdict})")


if __name__ == "__main__":
    main()
