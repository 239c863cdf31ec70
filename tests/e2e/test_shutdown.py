"""Graceful shutdown of a real `agent-api serve` process: on SIGTERM it stops accepting, lets
the request in flight finish, and exits; a request that never finishes cannot hold the exit
past SHUTDOWN_TIMEOUT.

The request in flight is a registration whose body the client holds back: it sends the headers
with `Expect: 100-continue` and waits for the server's `100 Continue`, which the server sends
only once the application reads the body. That proves the request is being handled before
SIGTERM is sent, without sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, TEST_JWT_SECRET, free_port

BODY = json.dumps(
    {"email": "late@example.com", "password": "correct horse battery", "name": "Late"}
).encode()


@contextmanager
def server(tmp_path: Path, shutdown_timeout: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shutdown.db'}",
        "LOG_LEVEL": "info",
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SHUTDOWN_TIMEOUT": shutdown_timeout,
    }
    # Output goes to a file: a pipe nobody reads could fill up and block the server.
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_api", "serve"],
        env=env,
        cwd=str(ROOT),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{server_log(tmp_path)}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not become healthy")
            time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        log.close()


def server_log(tmp_path: Path) -> str:
    return (tmp_path / "server.log").read_text(errors="replace")


def start_held_request(port: int) -> socket.socket:
    """A registration whose handler is running and waiting for the body we hold back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        "POST /v1/auth/register HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n"
        "Expect: 100-continue\r\n"
        "\r\n"
    )
    sock.sendall(head.encode())
    interim = sock.recv(1024)
    assert interim.startswith(b"HTTP/1.1 100"), interim
    return sock


def read_response(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)


def assert_exited_gracefully(proc: subprocess.Popen[bytes], tmp_path: Path) -> None:
    """uvicorn re-raises the signal once its shutdown is done, so the exit status is SIGTERM's;
    the log shows the application's own shutdown (resources closed) ran to its end."""
    assert proc.returncode in (0, -signal.SIGTERM)
    output = server_log(tmp_path)
    assert "Application shutdown complete" in output, output


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path: Path) -> None:
    with server(tmp_path, shutdown_timeout="20s") as (proc, port):
        sock = start_held_request(port)
        proc.send_signal(signal.SIGTERM)
        # Stops accepting at once, while the held request is still open.
        wait_for(lambda: refuses_connections(port), timeout=5)
        assert proc.poll() is None
        sock.sendall(BODY)
        response = read_response(sock)
        sock.close()
        status_line, _, rest = response.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 201 Created", response
        assert b'"success":true' in rest
        proc.wait(10)
        assert_exited_gracefully(proc, tmp_path)


def test_a_request_that_never_finishes_cannot_hold_the_exit(tmp_path: Path) -> None:
    with server(tmp_path, shutdown_timeout="1s") as (proc, port):
        sock = start_held_request(port)  # its body never comes
        proc.send_signal(signal.SIGTERM)
        try:
            # Without the graceful timeout the server would wait for this client forever.
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not exit after SHUTDOWN_TIMEOUT")
        finally:
            sock.close()
        assert_exited_gracefully(proc, tmp_path)
