"""HTTP basics: 404/405 envelopes, the request id, the one logged 500, the docs and the
OpenAPI bearer scheme, and what the JSON logs carry (and never carry)."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware

from agent_api.api.app import create_app
from agent_api.infrastructure.logging import configure_logging
from tests.conftest import bearer, make_settings, register_and_login, running_app

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

LogReader = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def logs() -> Iterator[LogReader]:
    """Our JSON logging at debug level, its output diverted from stdout into a buffer; returns
    a reader of the parsed lines written so far. The previous logging setup is restored."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("debug", "json")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield read
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the tests that only read (routes, ids, docs): nothing they do lasts."""
    async with running_app(make_settings(tmp_path_factory.mktemp("basics"))) as c:
        yield c


def access_lines(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == "request" and line["path"] == path]


# --- 404 / 405 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/no-such-thing", "/v1/auth/no-such-thing", "/v1/tools/a/b"])
async def test_unknown_native_route_is_an_enveloped_404(
    shared: httpx.AsyncClient, path: str
) -> None:
    response = await shared.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": f"no route for GET {path}"},
    }


@pytest.mark.parametrize(
    "path", ["/v1/chat/no-such-thing", "/v1/no-such-thing", "/v1/embeddings", "/v1/files/f"]
)
async def test_unknown_route_on_the_openai_surface_answers_like_openai(
    shared: httpx.AsyncClient, path: str
) -> None:
    response = await shared.post(path, json={})
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": f"no route for POST {path}",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }


async def test_wrong_method_on_the_openai_surface_answers_like_openai(
    shared: httpx.AsyncClient,
) -> None:
    response = await shared.get("/v1/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "error": {
            "message": "GET is not allowed on /v1/chat/completions",
            "type": "invalid_request_error",
            "param": None,
            "code": "method_not_allowed",
        }
    }


async def test_an_oversized_body_on_the_openai_surface_answers_like_openai(
    tmp_path: Path,
) -> None:
    async with running_app(make_settings(tmp_path, max_body_bytes=2048)) as client:
        declared = await client.post("/v1/chat/completions", content=b"x" * 4096)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 1024

        streamed = await client.post("/v1/chat/completions", content=chunks())
    for response in (declared, streamed):
        assert response.status_code == 413
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "payload_too_large")
        assert error["message"] == "request body exceeds 2048 bytes"


async def test_wrong_method_is_an_enveloped_405(shared: httpx.AsyncClient) -> None:
    response = await shared.get("/v1/auth/login")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "success": False,
        "error": {
            "code": "METHOD_NOT_ALLOWED",
            "message": "GET is not allowed on /v1/auth/login",
        },
    }


# --- X-Request-ID ------------------------------------------------------------------------------


async def test_a_request_id_is_generated(shared: httpx.AsyncClient) -> None:
    first = await shared.get("/health")
    second = await shared.get("/health")
    assert UUID_RE.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "request_id", ["abc-123", "req_1.2:3", "A" * 128, str(uuid.uuid4())], ids=len
)
async def test_a_sane_request_id_is_echoed(shared: httpx.AsyncClient, request_id: str) -> None:
    response = await shared.get("/health", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["", "has spaces", "A" * 129, "semi;colon", "<script>", "new\\nline", "café"],
    ids=["empty", "spaces", "too-long", "semicolon", "markup", "backslash", "non-ascii"],
)
async def test_an_insane_request_id_is_replaced(shared: httpx.AsyncClient, request_id: str) -> None:
    response = await shared.get("/health", headers=[(b"X-Request-ID", request_id.encode())])
    assert UUID_RE.match(response.headers["x-request-id"])


async def test_every_kind_of_answer_carries_the_request_id(shared: httpx.AsyncClient) -> None:
    answers = [
        await shared.get("/health"),
        await shared.get("/nope"),
        await shared.delete("/health"),
        await shared.get("/v1/auth/me"),
        await shared.post("/v1/auth/register", json={}),
        await shared.post(
            "/v1/auth/register", content=b"{", headers={"content-type": "application/json"}
        ),
        await shared.post("/v1/auth/register", content=b"x" * (20 * 1024 * 1024 + 1)),
        await shared.get("/openapi.json"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 405, 401, 422, 400, 413, 200]
    for answer in answers:
        assert UUID_RE.match(answer.headers["x-request-id"]), answer.request.url


# --- the one logged 500 ------------------------------------------------------------------------


async def test_an_unexpected_exception_is_one_enveloped_500(
    tmp_path: Path, logs: LogReader
) -> None:
    app = create_app(make_settings(tmp_path))

    async def explode() -> None:
        raise RuntimeError("connection string postgresql://admin:hunter2@db/prod")

    app.add_api_route("/v1/tools/explode", explode)
    async with serve(app) as client:
        response = await client.get("/v1/tools/explode", headers={"X-Request-ID": "trace-me-42"})
        generated = await client.get("/v1/tools/explode")

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-me-42"
    assert response.json() == {
        "success": False,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "internal server error (request id trace-me-42)",
        },
    }
    for leaked in ("hunter2", "RuntimeError", "Traceback", "explode"):
        assert leaked not in response.text
    request_id = generated.headers["x-request-id"]
    assert request_id in generated.json()["error"]["message"]

    lines = logs()
    errors = [line for line in lines if line["event"] == "unhandled error"]
    assert [line["request_id"] for line in errors] == ["trace-me-42", request_id]
    assert "RuntimeError" in errors[0]["exception"]  # the internals go to the log only
    assert [line["status"] for line in access_lines(lines, "/v1/tools/explode")] == [500, 500]


async def test_an_unexpected_exception_on_the_openai_surface(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))

    async def explode() -> None:
        raise ValueError("internal detail")

    app.add_api_route("/v1/chat/explode", explode, methods=["POST"])
    async with serve(app) as client:
        response = await client.post("/v1/chat/explode")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert response.headers["x-request-id"] in error["message"]
    assert "internal detail" not in response.text


# --- middleware --------------------------------------------------------------------------------


def test_middleware_is_pure_asgi(tmp_path: Path) -> None:
    # BaseHTTPMiddleware buffers streams and costs throughput; every layer must be plain ASGI.
    app = create_app(make_settings(tmp_path, cors_origins="https://app.example"))
    assert app.user_middleware
    for middleware in app.user_middleware:
        assert isinstance(middleware.cls, type)
        assert not issubclass(middleware.cls, BaseHTTPMiddleware), middleware.cls


# --- docs and OpenAPI --------------------------------------------------------------------------


async def test_docs_pages_load(shared: httpx.AsyncClient) -> None:
    docs = await shared.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "/openapi.json" in docs.text
    assert '"persistAuthorization": true' in docs.text
    redoc = await shared.get("/redoc")
    assert redoc.status_code == 200
    assert "redoc" in redoc.text.lower()


async def test_openapi_has_the_bearer_scheme_on_protected_routes(
    shared: httpx.AsyncClient,
) -> None:
    response = await shared.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()

    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = spec["paths"]
    for path, method in [("/v1/auth/me", "get"), ("/v1/auth/logout", "post")]:
        assert {"bearer": []} in paths[path][method]["security"], path
    for path, method in [
        ("/v1/auth/login", "post"),
        ("/v1/auth/register", "post"),
        ("/v1/auth/refresh", "post"),
        ("/health", "get"),
        ("/ready", "get"),
    ]:
        assert "security" not in paths[path][method], path


async def test_openapi_documents_error_answers(shared: httpx.AsyncClient) -> None:
    paths = (await shared.get("/openapi.json")).json()["paths"]
    assert {"401"} <= set(paths["/v1/auth/me"]["get"]["responses"])
    assert {"201", "409", "413", "422"} <= set(paths["/v1/auth/register"]["post"]["responses"])
    assert "503" in paths["/ready"]["get"]["responses"]


# --- logs --------------------------------------------------------------------------------------


async def test_log_lines_carry_the_request_id_and_the_principal(
    client: httpx.AsyncClient, logs: LogReader
) -> None:
    tokens = await register_and_login(client)
    authenticated = await client.get(
        "/v1/auth/me", headers={**bearer(tokens["access_token"]), "X-Request-ID": "me-1"}
    )
    anonymous = await client.get("/health", headers={"X-Request-ID": "health-1"})

    lines = logs()
    (me_line,) = access_lines(lines, "/v1/auth/me")
    assert me_line["request_id"] == authenticated.headers["x-request-id"] == "me-1"
    assert me_line["user_id"] == tokens["user"]["id"]
    session_id = authenticated.json()["data"]["credential"]["id"]
    assert me_line["credential"] == f"session:{session_id}"
    assert (me_line["method"], me_line["status"], me_line["level"]) == ("GET", 200, "info")
    assert isinstance(me_line["duration_ms"], float)
    # The next request is not attributed to the previous caller.
    (health_line,) = access_lines(lines, "/health")
    assert health_line["request_id"] == anonymous.headers["x-request-id"] == "health-1"
    assert health_line["user_id"] is None
    assert health_line["credential"] is None


async def test_passwords_tokens_and_hashes_never_reach_the_logs(
    client: httpx.AsyncClient, logs: LogReader
) -> None:
    password = "a very distinctive passphrase"
    tokens = await register_and_login(client, "secretive@example.com", password)
    rotated = (
        await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()["data"]
    await client.get("/v1/auth/me", headers=bearer(rotated["access_token"]))
    await client.post(
        "/v1/auth/login", json={"email": "secretive@example.com", "password": "nope-nope"}
    )
    await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await client.post("/v1/auth/logout", headers=bearer(rotated["access_token"]))

    output = "\n".join(json.dumps(line) for line in logs())
    assert "/v1/auth/logout" in output  # the capture works
    for secret in (
        password,
        "nope-nope",
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        "$argon2id$",
    ):
        assert secret not in output


async def test_cors_is_off_unless_configured_and_never_with_credentials(tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    async with running_app(make_settings(tmp_path)) as closed:
        answer = await closed.options("/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    async with running_app(make_settings(tmp_path, cors_origins="https://app.example")) as app:
        allowed = await app.options("/v1/chat/completions", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-credentials" not in allowed.headers
        exposed = await app.get("/health", headers={"Origin": "https://app.example"})
        names = exposed.headers["access-control-expose-headers"].lower().split(", ")
        for name in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{name}-requests" in names
        stranger = await app.options(
            "/v1/chat/completions", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert stranger.headers.get("access-control-allow-origin") not in (
            "*",
            "https://evil.example",
        )
