"""A real server at debug level: the API key secret is answered once and never written to a
log line, whether it is created, listed, used, refused after revocation, or mistyped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_JWT_SECRET, free_port

PASSWORD = "correct horse"


def serve(tmp_path: Path, log_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "debug",
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": str(port),
    }
    with log_file.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_api", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log_file.read_text()
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return proc, base_url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.1)


def test_the_secret_never_reaches_the_logs(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    proc, base_url = serve(tmp_path, log_file)
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            body = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
            assert client.post("/v1/auth/register", json=body).status_code == 201
            login = client.post(
                "/v1/auth/login", json={"email": body["email"], "password": PASSWORD}
            )
            session = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
            created = client.post("/v1/api-keys", json={"name": "bot"}, headers=session).json()
            secret = created["data"]["key"]
            key_id = created["data"]["api_key"]["id"]
            with_key = {"Authorization": f"Bearer {secret}"}

            assert client.get("/v1/api-keys", headers=session).status_code == 200
            assert client.get("/v1/auth/me", headers=with_key).status_code == 200
            assert client.get("/v1/api-keys", headers=with_key).status_code == 403
            mistyped = {"Authorization": f"Bearer {secret[:-1]}x"}
            assert client.get("/v1/auth/me", headers=mistyped).status_code == 401
            assert client.delete(f"/v1/api-keys/{key_id}", headers=session).status_code == 204
            assert client.get("/v1/auth/me", headers=with_key).status_code == 401
    finally:
        proc.terminate()
        proc.wait(15)

    logs = log_file.read_text()
    # The capture works: every request above was logged ...
    assert logs.count('"path": "/v1/auth/me"') == 3, logs
    # ... and the secret (or its random part) is in none of the lines.
    assert secret not in logs
    assert secret[3:] not in logs
    assert secret[:-1] not in logs
