"""`create_app(settings, **overrides)`: the FastAPI application. Nothing is built at import
time; the lifespan builds the container (engine, Redis, services) and closes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from agent_api import __version__
from agent_api.api.errors import install_error_handlers
from agent_api.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from agent_api.api.routers import auth, health
from agent_api.bootstrap import build
from agent_api.config import Settings

DESCRIPTION = """
A self-hosted agent API server.

* **OpenAI-compatible**: `POST /v1/chat/completions` and `GET /v1/models` — point any OpenAI SDK
  at `http://HOST:PORT/v1`.
* **Native**: accounts, API keys, tools and conversations with human-in-the-loop approvals,
  answering `{"success": true, "data": ...}` / `{"success": false, "error": {...}}`.

Authenticate with **Authorize**: paste an access token from `POST /v1/auth/login` or an API key.
"""


def create_app(settings: Settings, **overrides: Any) -> FastAPI:
    """The application for `settings`. `overrides` replace adapters by name (see bootstrap)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings, **overrides) as container:
            app.state.container = container
            yield

    app = FastAPI(
        title="agent-api",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)

    # Added innermost first: CORS, then the body limit, then the request context outermost so
    # every answer (413s included) carries a request id and is logged.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-ID",
                "X-Conversation-Id",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "RateLimit",
                "RateLimit-Policy",
            ],
            allow_credentials=False,
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app
