"""Prometheus metrics.

`GET /metrics` is unauthenticated, like `/health`, so a scraper needs no credential. It exposes
only aggregates labelled by route template, method, status, model, tool and limit scope: no
user, key, path parameter or request content. Restrict it at the reverse proxy if even that
should stay private.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from agent_api.api.deps import ConversationReaderDep, MetricsDep
from agent_api.domain.errors import ServiceUnavailable

router = APIRouter(tags=["health"])

# The classic text format (version 0.0.4) is what `Metrics.render()` writes and what every
# Prometheus version understands.
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

_EXAMPLE = """\
# HELP agent_api_http_requests_total HTTP requests by route template, method and status
# TYPE agent_api_http_requests_total counter
agent_api_http_requests_total{method="GET",route="/health",status="200"} 42.0
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    description=(
        "Request count and latency by route template and status, LLM latency and tokens by "
        "model, tool executions by tool and status, rate-limit rejections and fail-opens, and "
        "approvals pending. No authentication."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The metrics in Prometheus text format 0.0.4.",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        }
    },
)
async def metrics(conversations: ConversationReaderDep, metrics: MetricsDep) -> Response:
    # Pending approvals live in the database (they survive restarts and span replicas), so
    # the gauge is read from there at scrape time; a database outage leaves its last value.
    with contextlib.suppress(ServiceUnavailable):
        pending = await conversations.count_pending_approvals()
        metrics.approvals_pending.set(pending)
    return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)
