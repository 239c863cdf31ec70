"""`python -m tests.stub_llm --port N`: the stub as a process, for benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tests.stub_llm.server import StubLLM


def main() -> None:
    parser = argparse.ArgumentParser(description="A stub OpenAI-compatible LLM server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between events")
    args = parser.parse_args()
    stub = StubLLM(
        args.host, args.port, delay=args.delay, chunk_delay=args.chunk_delay, record=False
    )
    print(f"stub LLM on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:
            asyncio.run(stub.serve())
        else:
            uvloop.run(stub.serve())


if __name__ == "__main__":
    main()
