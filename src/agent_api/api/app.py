"""`create_app(settings, **adapters)`: the FastAPI application. Nothing is built at import
time; the lifespan builds the container (engine, Redis, services) and closes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Unpack

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from agent_api import __version__
from agent_api.api.errors import install_error_handlers
from agent_api.api.middleware import (
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    RequestContextMiddleware,
)
from agent_api.api.routers import (
    api_keys,
    auth,
    chat,
    conversations,
    health,
    metrics,
    tools,
    usage,
)
from agent_api.api.timeouts import BodyTimeoutMiddleware
from agent_api.bootstrap import Adapters, build
from agent_api.config import Settings
from agent_api.infrastructure.metrics import Metrics

DESCRIPTION = """
A self-hosted agent API server.

* **OpenAI-compatible**: `POST /v1/chat/completions` and `GET /v1/models` — point any OpenAI SDK
  at `http://HOST:PORT/v1`.
* **Native**: accounts, API keys, tools and conversations with human-in-the-loop approvals,
  answering `{"success": true, "data": ...}` / `{"success": false, "error": {...}}`.

Authenticate with **Authorize**: paste an access token from `POST /v1/auth/login` or an API key.
"""


def create_app(settings: Settings, **adapters: Unpack[Adapters]) -> FastAPI:
    """The application for `settings`. `adapters` replace adapters by name; they go to
    `bootstrap.build` when the application starts."""
    # One Metrics per app, shared by the metrics middleware and the container.
    app_metrics = adapters.setdefault("metrics", Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings, **adapters) as container:
            app.state.container = container
            yield

    app = FastAPI(
        title="agent-api",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    # Set when the server starts draining (SIGTERM): open streams end with a final event.
    app.state.draining = asyncio.Event()
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(api_keys.router)
    app.include_router(usage.router)
    app.include_router(tools.router)
    app.include_router(conversations.router)
    app.include_router(chat.router)

    _add_middleware(app, settings, app_metrics)
    return app


def _add_middleware(app: FastAPI, settings: Settings, app_metrics: Metrics) -> None:
    # Added innermost first: CORS, then the body limits (size, then time), then metrics, then
    # the request context outermost so every answer (413s and 408s included) is counted,
    # carries a request id and is logged.
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
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
                "RateLimit",
                "RateLimit-Policy",
            ],
            allow_credentials=False,
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyTimeoutMiddleware, seconds=settings.request_body_timeout.total_seconds())
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    app.add_middleware(RequestContextMiddleware)
