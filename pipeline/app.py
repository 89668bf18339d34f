"""The ETL service: `create_app(settings)` builds it; the lifespan opens and closes its resources.

Run it with `uvicorn --factory pipeline.app:create_app --port 8001`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.orm import Session

from core.database import make_async_engine, make_async_sessionmaker
from core.security import TokenService
from core.settings import Settings, get_settings
from pipeline import tasks
from pipeline.broker import (
    ALL_STEP_ACTORS,
    PENDING_MESSAGE_KEYS,
    enqueue_step,
    make_broker,
    message_target,
)
from pipeline.deps import Resources
from pipeline.errors import install_error_handlers
from pipeline.routes import analysis, health_router, imports_router, rasters, tasks_router

logger = logging.getLogger(__name__)


async def reap_once(resources: Resources) -> list[tuple[str, str]]:
    """Give back (and re-enqueue) the steps of tasks whose worker died; fail the hopeless ones."""
    limits = resources.settings.pipeline
    async with resources.sessions() as session:
        requeued = await session.run_sync(
            lambda sync: tasks.reap_stale(
                session=sync,
                stale_after=limits.task_stale_after_seconds,
                max_attempts=limits.task_max_retries + 1,
            )
        )
        await session.commit()
    for task_id, step in requeued:
        logger.warning("task %s: its worker stopped responding; %s step re-queued", task_id, step)
        await anyio.to_thread.run_sync(enqueue_step, resources.broker, step, task_id)
    return requeued + await _resend_lost(resources)


async def _resend_lost(resources: Resources) -> list[tuple[str, str]]:
    """Send again the message of a due step that is nowhere in the broker.

    A message can be lost between a step's commit and its enqueue (the broker down, the
    worker killed), or with a flushed Redis. Without this the task would wait forever.
    """
    idle = float(resources.settings.pipeline.task_stale_after_seconds)
    async with resources.sessions() as session:
        due = await session.run_sync(lambda sync: tasks.find_due(session=sync, idle_after=idle))
    if not due:
        return []
    pending: set[tuple[str, str]] = set()
    for key in PENDING_MESSAGE_KEYS:
        async for _field, raw in resources.redis.hscan_iter(key):
            target = message_target(raw)
            if target is not None:
                pending.add(target)
    resent: list[tuple[str, str]] = []
    for task in due:
        step = task.step
        actor = ALL_STEP_ACTORS.get(step or "")
        if step is None or actor is None or (str(task.id), actor) in pending:
            continue
        logger.warning("task %s: the message of its %s step was lost; sent again", task.id, step)
        await anyio.to_thread.run_sync(enqueue_step, resources.broker, step, task.id)
        note = f"the message of the {step} step was lost; it was sent again"
        async with resources.sessions() as session:
            await session.run_sync(_note_requeued, task.id, step, note)
            await session.commit()
        resent.append((str(task.id), step))
    return resent


async def _reaper(resources: Resources) -> None:
    interval = max(1.0, resources.settings.pipeline.task_stale_after_seconds / 2)
    while True:
        await asyncio.sleep(interval)
        try:
            await reap_once(resources)
        except Exception:
            logger.exception("checking for stale tasks failed")


def _note_requeued(session: Session, task_id: uuid.UUID, step: str, note: str) -> None:
    tasks.requeued(session=session, task_id=task_id, step=step, warning=note)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ETL service for these settings (the process's settings by default)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(settings.db)
        redis = Redis.from_url(settings.redis.redis_url, socket_connect_timeout=3)
        broker = make_broker(settings)
        resources = Resources(
            settings=settings,
            engine=engine,
            sessions=make_async_sessionmaker(engine),
            redis=redis,
            broker=broker,
            tokens=TokenService(settings.auth, redis),
        )
        app.state.resources = resources
        reaper = asyncio.create_task(_reaper(resources))
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            broker.close()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Maps platform ETL service",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(imports_router)
    app.include_router(rasters.router)
    app.include_router(analysis.router)
    app.include_router(tasks_router)
    return app
