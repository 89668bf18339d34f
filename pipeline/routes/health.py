"""`GET /health`: liveness and readiness of the database, the broker and the workers (open)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pipeline.broker import CONSUMER_HEARTBEATS_KEY, PENDING_MESSAGE_KEYS
from pipeline.deps import ResourcesDep

router = APIRouter(tags=["health"])
_CHECK_TIMEOUT = 3.0
# Dramatiq's consumers heartbeat at least this often while they run.
_WORKER_WINDOW_MS = 60_000


@router.get("/health")
async def health(resources: ResourcesDep) -> JSONResponse:
    """`healthy` (200) when the database and the broker answer, else `unhealthy` (503).

    Also told, for operators: how many workers are alive (Dramatiq consumers that beat
    their heart within the last minute), the messages waiting in the queue, and the
    tasks running and queued. No worker does not make the service unhealthy (it still
    accepts imports), but `workers_alive` says so.
    """
    body: dict[str, Any] = {
        "database": "ok",
        "broker": "ok",
        "workers": None,
        "workers_alive": None,
        "queue": None,
        "tasks": None,
    }
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT), resources.engine.connect() as conn:
            counts = await conn.execute(
                text("SELECT state, count(*) FROM etl_task WHERE state IN (:a, :b) GROUP BY state"),
                {"a": "queued", "b": "running"},
            )
            body["tasks"] = {"queued": 0, "running": 0, **{k: int(v) for k, v in counts.all()}}
    except Exception as exc:
        body["database"] = f"unavailable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await resources.redis.ping()
            since = int(time.time() * 1000) - _WORKER_WINDOW_MS
            live = await resources.redis.zcount(CONSUMER_HEARTBEATS_KEY, since, "+inf")
            body["workers"] = int(live)
            body["workers_alive"] = live > 0
            waiting, delayed = PENDING_MESSAGE_KEYS
            body["queue"] = {
                "messages": int(await resources.redis.hlen(waiting)),
                "delayed": int(await resources.redis.hlen(delayed)),
            }
    except Exception as exc:
        body["broker"] = f"unavailable: {type(exc).__name__}"
    healthy = body["database"] == "ok" and body["broker"] == "ok"
    body = {"status": "healthy" if healthy else "unhealthy", **body}
    return JSONResponse(body, status_code=200 if healthy else 503)
