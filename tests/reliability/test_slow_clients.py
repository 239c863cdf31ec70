"""Slow clients against a real `agent-api serve`: half-sent headers, silent connections,
stalled bodies and idle keep-alive connections are all closed within their limits, and many
slow connections at once do not keep `/health` from answering."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import live_server

LIMIT = "1s"
# Well above every limit: a socket still open after this was held open by the server.
PATIENCE = 6.0
SLOW_CONNECTIONS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = Path(tmp_path_factory.mktemp("slow")) / "slow.db"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "REQUEST_HEADER_TIMEOUT": LIMIT,
        "REQUEST_BODY_TIMEOUT": LIMIT,
        "KEEPALIVE_TIMEOUT": LIMIT,
    }
    with live_server(env, timeout=120) as url:
        yield url


def connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection. Raises TimeoutError when
    the server keeps the connection open longer than PATIENCE."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_half_sent_headers_are_closed(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        assert read_until_closed(sock) == b""


def test_a_silent_connection_is_closed(server: str) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""


def test_a_stalled_body_gets_408_and_the_socket_closes(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"email": '
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"REQUEST_TIMEOUT" in answer
    assert b"connection: close" in answer.lower()


def test_an_idle_keep_alive_connection_is_closed(server: str) -> None:
    with connect(server) as sock:
        # Below uvicorn's own default (5 s): the configured limit is the one that holds.
        sock.settimeout(3.5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"connection: close" not in answer.lower()  # it was kept alive, then closed


def test_health_answers_while_many_slow_connections_are_open(server: str) -> None:
    slow = [connect(server) for _ in range(SLOW_CONNECTIONS)]
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        response = httpx.get(f"{server}/health", timeout=5)
        assert response.status_code == 200
        # Then every slow one is closed by the server.
        assert [read_until_closed(sock) for sock in slow] == [b""] * SLOW_CONNECTIONS
    finally:
        for sock in slow:
            sock.close()
