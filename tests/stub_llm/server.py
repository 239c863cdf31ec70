"""The stub's HTTP/1.1 server: one thread with its own event loop, keep-alive connections,
chunked event streams, and records of what clients sent and when they left."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.stub_llm.answers import Reply, chunks, completion, default_reply

_REASONS = {400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float


@dataclass(frozen=True)
class Disconnect:
    request_index: int
    events_sent: int


class StubLLM:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        record: bool = True,
    ) -> None:
        """`delay`/`chunk_delay` apply to default answers (benchmarks: a model's latency)."""
        self.host, self.port = host, port
        self.delay, self.chunk_delay, self.record = delay, chunk_delay, record
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[Disconnect] = []
        self.completed = 0
        self.connections = 0
        self._count = 0
        self._script: deque[Reply] = deque()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def enqueue(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()
        self.disconnects.clear()
        self.completed = 0
        self.connections = 0

    async def wait_disconnects(self, count: int = 1, timeout: float = 1.0) -> bool:
        """True as soon as `count` disconnects are recorded; False after `timeout` s."""
        deadline = time.monotonic() + timeout
        while len(self.disconnects) < count:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> StubLLM:
        self._thread = threading.Thread(target=self._run, name="stub-llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the stub LLM did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> StubLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        """Serves until `stop()` (or forever when run standalone)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    # --- HTTP ----------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections += 1
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its response; False when the connection is to be closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = await _read_chunked(reader)
        else:
            raw = await reader.readexactly(int(headers.get("content-length") or 0))
        path = target.split("?", 1)[0].removeprefix("/v1")
        keep_alive = headers.get("connection", "").lower() != "close"
        if method == "POST" and path == "/chat/completions":
            return await self._chat(target, headers, raw, reader, writer) and keep_alive
        if method == "GET" and path == "/models":
            data = [{"id": "stub", "object": "model", "created": 0, "owned_by": "stub"}]
            await _send_json(writer, 200, {"object": "list", "data": data})
        else:
            await _send_json(writer, 404, _error("not found", "invalid_request_error"))
        return keep_alive

    async def _chat(
        self,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        number = self._count
        self._count += 1
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if self.record:
            self.requests.append(RecordedRequest("POST", target, headers, body, time.monotonic()))
        if not isinstance(body, dict):
            await _send_json(
                writer, 400, _error("body is not a JSON object", "invalid_request_error")
            )
            return True
        if self._script:
            reply = self._script.popleft()
        else:
            reply = default_reply(body)
            reply.delay, reply.chunk_delay = self.delay, self.chunk_delay
        if reply.delay and await _client_left(reader, writer, reply.delay):
            self.disconnects.append(Disconnect(number, 0))
            return False
        if reply.drop_after == 0:
            writer.transport.abort()
            return False
        if reply.status != 200 or reply.body is not None:
            error = reply.body if reply.body is not None else _error("stub error", "server_error")
            await _send_json(writer, reply.status, error, reply.headers)
            return True
        if not body.get("stream"):
            # Counted before the write: a client that has the whole answer sees it counted.
            self.completed += 1
            await _send_json(writer, 200, completion(body, reply, number), reply.headers)
            return True
        return await self._stream(body, reply, number, reader, writer)

    async def _stream(
        self,
        body: dict[str, Any],
        reply: Reply,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
        writer.write(f"{head}{extra}Transfer-Encoding: chunked\r\n\r\n".encode())
        if reply.raw_stream is not None:
            pieces = list(reply.raw_stream)
        else:
            pieces = [b"data: " + data + b"\n\n" for data in chunks(body, reply, number)]
        for sent, piece in enumerate(pieces):
            if reply.drop_after is not None and sent >= reply.drop_after:
                writer.transport.abort()
                return False
            if reply.stall_after is not None and sent >= reply.stall_after:
                left = await _client_left(reader, writer, None)
            elif sent and reply.chunk_delay:
                left = await _client_left(reader, writer, reply.chunk_delay)
            else:
                left = _gone(reader, writer)
            if left:
                self.disconnects.append(Disconnect(number, sent))
                return False
            frame = b"%x\r\n%s\r\n" % (len(piece), piece)
            if sent == len(pieces) - 1:  # the last piece goes out with the body's end
                self.completed += 1
                frame += b"0\r\n\r\n"
            writer.write(frame)
            try:
                await writer.drain()
            except ConnectionError:
                self.disconnects.append(Disconnect(number, sent))
                return False
        if not pieces:
            self.completed += 1
            writer.write(b"0\r\n\r\n")
        return True


def _gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    return reader.at_eof() or reader.exception() is not None or writer.transport.is_closing()


async def _client_left(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float | None
) -> bool:
    """Waits `seconds` (None: until the client leaves); True as soon as the client left."""
    loop = asyncio.get_running_loop()
    end = None if seconds is None else loop.time() + seconds
    while not _gone(reader, writer):
        left = None if end is None else end - loop.time()
        if left is not None and left <= 0:
            return False
        await asyncio.sleep(0.01 if left is None else min(0.01, left))
    return True


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def _send_json(
    writer: asyncio.StreamWriter, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = (
        body
        if isinstance(body, bytes)
        else body.encode()
        if isinstance(body, str)
        else json.dumps(body).encode()
    )
    kind = "application/json" if not isinstance(body, bytes | str) else "text/plain"
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    reason = _REASONS.get(status, "OK" if status == 200 else "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n{extra}"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
