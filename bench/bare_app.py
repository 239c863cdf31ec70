"""The P1 baseline: a bare FastAPI app answering `GET /health` with the same body as
agent-api's, with no middleware, no dependencies and no database."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"success": True, "data": {"status": "ok"}}
