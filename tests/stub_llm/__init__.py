"""A real OpenAI-compatible LLM server on 127.0.0.1, for tests and benchmarks.

It speaks HTTP/1.1 (keep-alive, chunked streams, TCP_NODELAY on every accepted socket) and
serves `POST /chat/completions` and `GET /models`, with or without a `/v1` prefix, so both
`OpenAICompatibleChatModel(stub.url)` and `openai.OpenAI(base_url=stub.base_url)` work.
It runs on its own thread and event loop, so sync and async tests use it alike:

    with StubLLM() as stub:                  # or stub = StubLLM().start() ... stub.stop()
        stub.url                             # "http://127.0.0.1:<port>"
        stub.base_url                        # stub.url + "/v1" (for the OpenAI SDK)

Default behaviour (no scripted reply queued): when the last message is a user message with
arithmetic ("What is 1337 * 42?") and a `calculator` tool is offered, it calls
`calculator({"expression": "1337 * 42"})`; when the last messages are tool results it answers
from them ("1337 * 42 = 56154."); otherwise it echoes ("Echo: <message>"). Tool call ids are
deterministic, so the same request always gets the same answer.

Scripted mode: `stub.enqueue(Reply(...), ...)` queues answers, used first in, first out, one
per chat request, before falling back to the default behaviour. `Reply` fields:
    text="Hello there"                        # content (streamed word by word)
    tool_calls=[("calculator", {"expression": "2+2"}), ("f", '{"a":', "call_1")]
                                              # (name, arguments as dict or JSON text[, id])
    status=503, body={"error": {...}}, headers={"Retry-After": "1"}
                                              # an HTTP error; `body` (dict -> JSON, str/bytes
                                              # as text) is sent instead of an answer, 200 too
    delay=2.0                                 # seconds before the status line
    chunk_delay=0.5                           # seconds between two stream events
    drop_after=2                              # abort the connection after 2 stream events
                                              # (0: before the status line, streamed or not)
    stall_after=1                             # after 1 event send nothing until the client leaves
    finish_reason="length", usage=(10, 5), send_usage=False, model="x",
    argument_chunk=8                          # characters of arguments per tool-call fragment
    raw_stream=[b"data: {...}\\n", b"\\n"]    # exact body pieces of a 200 event stream
Streams are spec-exact: `role` on the first chunk only; each tool call's first fragment has
`index`, `id`, `type` and `function.name`, later ones `index` and `function.arguments` only;
an empty delta with the finish reason; with `stream_options.include_usage` one more chunk
with `choices: []` and the usage; then `data: [DONE]`.

Records: `stub.requests` (RecordedRequest: method, path, headers with lower-case names, body
as parsed JSON, received_at on time.monotonic()), `stub.disconnects` (Disconnect: which
request, how many stream events had been sent; for every client that left before its response
ended), `stub.completed` (responses sent in full), `stub.connections` (TCP connections
accepted). `await stub.wait_disconnects(1, timeout=1)` polls for disconnects from async
tests. `stub.reset()` clears the queue and the records (do it between tests that share one
stub).

Standalone, for benchmarks (no recording; uvloop when installed):
    python -m tests.stub_llm --port 9999 [--host 127.0.0.1] [--delay S] [--chunk-delay S]
"""

from tests.stub_llm.answers import Reply, default_reply
from tests.stub_llm.server import Disconnect, RecordedRequest, StubLLM

__all__ = ["Disconnect", "RecordedRequest", "Reply", "StubLLM", "default_reply"]
