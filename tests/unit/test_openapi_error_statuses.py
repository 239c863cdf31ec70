"""The OpenAPI document lists every status an operation can answer, so generated clients and
the property-based API tests (tests/reliability/test_schemathesis.py) can rely on it:
- a JSON body can be malformed (400), too large (413) or invalid (422);
- an authenticated operation can answer 401, and 429 (every credential is rate limited);
- a streaming operation documents `text/event-stream` next to JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_api.api.app import create_app
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    spec: dict[str, Any] = create_app(make_settings(tmp)).openapi()
    return spec


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_with_a_body_documents_400_413_and_its_validation_status(
    document: dict[str, Any],
) -> None:
    missing = {}
    for name, operation in _operations(document):
        if "requestBody" in operation:
            # The OpenAI-compatible surface answers validation errors with 400, as OpenAI does.
            needed = {"400", "413"} if "/chat/" in name else {"400", "413", "422"}
            if needed - set(operation["responses"]):
                missing[name] = sorted(needed - set(operation["responses"]))
    assert missing == {}


def test_every_authenticated_operation_documents_401_and_429(document: dict[str, Any]) -> None:
    missing = {}
    for name, operation in _operations(document):
        if operation.get("security"):
            needed = {"401", "429"}
            if needed - set(operation["responses"]):
                missing[name] = sorted(needed - set(operation["responses"]))
    assert missing == {}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/chat/completions", "200"),
        ("/v1/conversations", "201"),
        ("/v1/conversations/{conversation_id}/messages", "200"),
        ("/v1/conversations/{conversation_id}/approve", "200"),
    ],
)
def test_streaming_operations_document_an_event_stream(
    document: dict[str, Any], path: str, status: str
) -> None:
    content = document["paths"][path]["post"]["responses"][status]["content"]
    assert {"application/json", "text/event-stream"} <= set(content)


def test_starting_a_conversation_documents_201_only(document: dict[str, Any]) -> None:
    assert "200" not in document["paths"]["/v1/conversations"]["post"]["responses"]
