"""SIGTERM: open streams end at once with a final event and [DONE], an in-flight non-stream
request still completes, and the process exits within the graceful timeout."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid

import httpx

from tests.conftest import server_process
from tests.e2e.conftest import login, server_env
from tests.stub_llm import Reply, StubLLM

WORD = re.compile(r'"content":" ?w\d')


def test_sigterm_ends_streams_with_a_final_event_and_finishes_requests(
    server_pg_url: str, redis_url: str, stub: StubLLM
) -> None:
    env = server_env(
        server_pg_url, redis_url, stub, DB_AUTO_MIGRATE="false", SHUTDOWN_TIMEOUT="10s"
    )
    with server_process(env) as (proc, base):
        headers = {"Authorization": f"Bearer {login(base, f'sigterm-{uuid.uuid4().hex[:8]}@x.io')}"}
        stub.reset()
        stub.enqueue(
            Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay=0.05),  # the stream
            Reply(text="slow but complete", delay=1.5),  # the in-flight non-stream request
        )
        lines: list[str] = []
        non_stream: list[httpx.Response] = []

        def slow_request() -> None:
            non_stream.append(
                httpx.post(
                    f"{base}/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                    headers=headers,
                    timeout=30,
                )
            )

        with httpx.stream(
            "POST",
            f"{base}/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "talk"}],
            },
            headers=headers,
            timeout=30,
        ) as response:
            worker = threading.Thread(target=slow_request)
            for line in response.iter_lines():
                lines.append(line)
                if sum(WORD.search(x) is not None for x in lines) == 3 and not worker.is_alive():
                    worker.start()
                    time.sleep(0.3)  # the second request reaches the server
                    proc.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
        exit_code = proc.wait(15)
        took = time.monotonic() - signalled
        worker.join(15)

    data = [line[6:] for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    final = json.loads(data[-2])
    assert final["error"]["code"] == "server_shutting_down"
    assert sum(WORD.search(line) is not None for line in data) < 400
    assert non_stream[0].status_code == 200
    assert non_stream[0].json()["choices"][0]["message"]["content"] == "slow but complete"
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    assert took < 10
