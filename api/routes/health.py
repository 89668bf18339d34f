"""Liveness and readiness: can the API reach PostgreSQL and Redis?"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ResourcesDep

CHECK_TIMEOUT_SECONDS = 3.0
logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


async def _database_ok(resources: ResourcesDep) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        logger.warning("health: database check failed", exc_info=True)
        return False
    return True


async def _redis_ok(resources: ResourcesDep) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await resources.redis.ping()
    except Exception:
        logger.warning("health: redis check failed", exc_info=True)
        return False
    return True


@router.get("/health")
async def health(resources: ResourcesDep) -> JSONResponse:
    """`healthy` with 200 when the database and Redis answer, else 503 naming the failure."""
    database, redis = await asyncio.gather(_database_ok(resources), _redis_ok(resources))
    body = {
        "status": "healthy" if database and redis else "unhealthy",
        "database": "ok" if database else "unavailable",
        "redis": "ok" if redis else "unavailable",
    }
    return JSONResponse(body, status_code=200 if database and redis else 503)
