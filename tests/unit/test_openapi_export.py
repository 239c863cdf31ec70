"""`python -m agent_api.api.openapi_export`: writes the OpenAPI document from the routes alone,
whatever the environment says, and can check that a committed copy is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_api.api.openapi_export import main


def test_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "openapi.json"
    assert main([str(target)]) == 0
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "agent-api"
    assert {"/health", "/ready", "/metrics", "/v1/auth/login"} <= set(document["paths"])


def test_ignores_the_environment_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production environment (PostgreSQL without a secret would refuse to start) or a broken
    .env must not change or break the export: it needs no database and no configuration."""
    clean = tmp_path / "clean.json"
    assert main([str(clean)]) == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LLM_PROVIDER=not-a-provider\nSERVER_PORT=oops\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@unreachable.invalid/db")
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    polluted = tmp_path / "polluted.json"
    assert main([str(polluted)]) == 0
    assert polluted.read_bytes() == clean.read_bytes()


def test_check_reports_a_stale_or_missing_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "openapi.json"
    assert main([str(target), "--check"]) == 1
    assert not target.exists()
    assert main([str(target)]) == 0
    assert main([str(target), "--check"]) == 0
    document = json.loads(target.read_text(encoding="utf-8"))
    document["paths"].pop("/metrics")
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main([str(target), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-"]) == 0
    assert "/metrics" in json.loads(capsys.readouterr().out)["paths"]


def test_metrics_is_documented_as_prometheus_text(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    main([str(target)])
    operation = json.loads(target.read_text(encoding="utf-8"))["paths"]["/metrics"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/plain"]


def test_the_committed_document_is_current() -> None:
    """docs/openapi.json is what `make docs` writes now: regenerate it when routes change."""
    committed = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert main([str(committed), "--check"]) == 0, "docs/openapi.json is stale: run make docs"
