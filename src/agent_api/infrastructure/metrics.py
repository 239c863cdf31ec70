"""Prometheus metrics, held by one `Metrics` object built in the composition root (no
import-time globals, so every app and test gets its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    # One declaration per metric, read as the catalogue of what is exported: splitting the
    # list would only scatter it.
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "agent_api_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "agent_api_http_request_duration_seconds",
            "HTTP request latency (to the end of the body, streams included)",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_latency = Histogram(
            "agent_api_llm_request_duration_seconds",
            "LLM call latency by model and outcome",
            ["model", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "agent_api_llm_tokens_total",
            "LLM tokens by model and kind (prompt, completion)",
            ["model", "kind"],
            registry=r,
        )
        self.tool_executions = Counter(
            "agent_api_tool_executions_total",
            "Tool executions by tool and final status",
            ["tool", "status"],
            registry=r,
        )
        self.rate_limit_rejections = Counter(
            "agent_api_rate_limit_rejections_total",
            "Requests refused by a rate limit, by scope "
            "(minute, day, user-minute, user-day, auth, auth-failures, runs)",
            ["scope"],
            registry=r,
        )
        self.rate_limit_fail_open = Counter(
            "agent_api_rate_limit_fail_open_total",
            "Requests let through unlimited because the limit store (Redis) was unreachable",
            registry=r,
        )
        self.approvals_pending = Gauge(
            "agent_api_approvals_pending",
            "Tool calls waiting for a human decision",
            registry=r,
        )

    def count_rejection(self, scope: str) -> None:
        """One request refused by the limit named `scope` (`minute`, `runs`...)."""
        self.rate_limit_rejections.labels(scope=scope).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
