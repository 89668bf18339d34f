"""`GET /health`: liveness and readiness of the database and the broker (open, no auth)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pipeline.broker import CONSUMER_HEARTBEATS_KEY
from pipeline.deps import ResourcesDep

router = APIRouter(tags=["health"])
_CHECK_TIMEOUT = 3.0
# Dramatiq's consumers heartbeat at least this often while they run.
_WORKER_WINDOW_MS = 60_000


@router.get("/health")
async def health(resources: ResourcesDep) -> JSONResponse:
    """`healthy` (200) when the database and the broker answer, else `unhealthy` (503).

    The worker count is informational: no worker yet does not make the service unhealthy.
    """
    body: dict[str, Any] = {"database": "ok", "broker": "ok", "workers": None}
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT), resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        body["database"] = f"unavailable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await resources.redis.ping()
            since = int(time.time() * 1000) - _WORKER_WINDOW_MS
            live = await resources.redis.zcount(CONSUMER_HEARTBEATS_KEY, since, "+inf")
        body["workers"] = int(live)
    except Exception as exc:
        body["broker"] = f"unavailable: {type(exc).__name__}"
    healthy = body["database"] == "ok" and body["broker"] == "ok"
    body = {"status": "healthy" if healthy else "unhealthy", **body}
    return JSONResponse(body, status_code=200 if healthy else 503)
