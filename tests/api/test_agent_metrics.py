"""After one tool-using chat turn, /metrics shows every series operators need."""

from __future__ import annotations

import httpx

from tests.api.conftest import auth


async def test_metrics_after_a_chat_turn(app_client: httpx.AsyncClient) -> None:
    headers = await auth(app_client)
    turn = await app_client.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "What is 1337 * 42?"}]},
        headers=headers,
    )
    assert turn.status_code == 200
    text = (await app_client.get("/metrics")).text
    chat = 'method="POST",route="/v1/chat/completions"'
    expected = [
        f'agent_api_http_requests_total{{{chat},status="200"}} 1.0',
        f"agent_api_http_request_duration_seconds_count{{{chat}}} 1.0",
        'agent_api_llm_request_duration_seconds_count{model="demo",outcome="ok"} 2.0',
        'agent_api_llm_tokens_total{kind="prompt",model="demo"}',
        'agent_api_llm_tokens_total{kind="completion",model="demo"}',
        'agent_api_tool_executions_total{status="succeeded",tool="calculator"} 1.0',
        "agent_api_approvals_pending 0.0",
        "agent_api_rate_limit_rejections_total",
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, missing
