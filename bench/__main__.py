"""`python -m bench` (`make bench`): runs P1-P7 and M1 and writes docs/benchmarks.md.

    uv run python -m bench [--runs 3] [--seconds 5] [--samples 400] [--no-write]
                           [--database-url URL] [--redis-url URL] [--sqlite]

The server under test runs on a fresh PostgreSQL database (created in the server named by
TEST_DATABASE_URL, dropped afterwards) with its limits in Redis (TEST_REDIS_URL, under a
unique key prefix, deleted afterwards): the production topology. `--sqlite` (or PostgreSQL
being unreachable) uses a temporary SQLite file and in-process limits instead. Needs `wrk`
and two CPU cores (server on one, load generator and stub LLM on the other).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from bench import load
from bench.report import Environment, write_report
from bench.suite import Config, Suite

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
JWT_SECRET = "bench-jwt-secret-" + "x" * 40
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


@contextlib.asynccontextmanager
async def _fresh_pg(admin_url: str) -> AsyncIterator[str]:
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"agent_api_bench_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception):
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@contextlib.contextmanager
def _database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """Yields (DATABASE_URL, description)."""
    if not args.sqlite:
        loop = asyncio.new_event_loop()
        manager = _fresh_pg(args.database_url)
        try:
            url = loop.run_until_complete(manager.__aenter__())
        except Exception as exc:  # unreachable: fall back to SQLite, said in the report
            print(f"PostgreSQL unreachable ({type(exc).__name__}); using SQLite", file=sys.stderr)
        else:
            try:
                yield url, "PostgreSQL (fresh database)"
            finally:
                loop.run_until_complete(manager.__aexit__(None, None, None))
                loop.close()
            return
        loop.close()
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "SQLite (temporary file)"


def _redis(url: str | None, prefix: str) -> str | None:
    """`url` when Redis answers PING, else None (limits then run in process)."""
    if not url:
        return None
    from redis import Redis

    try:
        with Redis.from_url(url, socket_timeout=2) as client:
            client.ping()
    except Exception as exc:
        print(f"Redis unreachable ({type(exc).__name__}); limits in process", file=sys.stderr)
        return None
    return url


def _delete_prefix(url: str, prefix: str) -> None:
    from redis import Redis

    with Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


def _litellm() -> Any:
    """The LiteLLM baseline factory (url -> context manager), or None when unavailable."""
    try:
        from tests.litellm_proxy import LiteLLMProxy
    except ImportError as exc:
        print(f"LiteLLM proxy helper unavailable ({exc}); P4 without baseline", file=sys.stderr)
        return None

    def start(upstream: str) -> Any:
        return LiteLLMProxy(upstream, models=("gpt-4o-mini", "gpt-4o"), master_key="sk-bench")

    return start


def _cores() -> tuple[int, int]:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        sys.exit("the benchmarks need two CPU cores (server on one, load on the other)")
    return cores[0], cores[1]


def main() -> None:
    parser = argparse.ArgumentParser(description="agent-api benchmarks P1-P7, M1")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--samples", type=int, default=400, help="c=1 requests per run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--output", type=Path, default=DOCS)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--sqlite", action="store_true", help="SQLite + in-process limits")
    args = parser.parse_args()

    if not load.wrk_available():
        sys.exit(load.WRK_INSTALL_HINT)
    server_core, load_core = _cores()
    os.sched_setaffinity(0, {load_core})  # this process runs the Python client
    config = Config(
        runs=args.runs,
        seconds=args.seconds,
        samples=args.samples,
        server_core=server_core,
        load_core=load_core,
    )
    started = time.monotonic()
    load_before = os.getloadavg()
    prefix = f"agent-api-bench-{uuid.uuid4().hex[:12]}"
    redis_url = None if args.sqlite else _redis(args.redis_url, prefix)
    with _database(args) as (database_url, database):
        env = {
            "DATABASE_URL": database_url,
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "warning",
            # The largest limits an API key may have (the moving window's cost grows with
            # the per-minute limit); the harness spreads requests over several keys.
            "RATE_LIMIT_PER_MINUTE": "10000",
            "RATE_LIMIT_PER_DAY": "10000000",
            "AUTH_RATE_LIMIT_PER_MINUTE": "10000",
            "RATE_LIMIT_KEY_PREFIX": prefix,
        }
        if redis_url:
            env["REDIS_URL"] = redis_url
        print(f"benchmarks on {database}, limits {'in Redis' if redis_url else 'in process'}")
        try:
            suite = Suite(config, agent_env=env, litellm=_litellm())
            results = suite.run()
        finally:
            if redis_url:
                _delete_prefix(redis_url, prefix)
    environment = Environment.collect(
        config=config,
        database=database,
        limits="Redis" if redis_url else "in process",
        load_before=load_before,
        load_after=os.getloadavg(),
        elapsed=time.monotonic() - started,
        command=" ".join(["uv run python -m bench", *sys.argv[1:]])
        if sys.argv[1:]
        else "make bench",
    )
    for result in results:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[result.met]
        print(f"{result.id}  {result.measured:60}  target {result.target}  [{verdict}]")
    print(f"load average before {load_before}, after {os.getloadavg()}")
    if not args.no_write:
        write_report(args.output, results, environment, suite.load)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
