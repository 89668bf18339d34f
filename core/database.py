"""Database engines: async (asyncpg) for the services, sync (psycopg 3) for workers."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from core.settings import DatabaseSettings

# asyncpg prepares every statement; after five runs PostgreSQL may switch to a generic
# plan, which cannot exclude core_geometry's parts by their CHECK constraints (the
# source's id is a parameter there, not a constant), so a one-source query would read
# every part. Custom plans keep `WHERE source_id = $1` down to that source's parts.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def make_async_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An asyncpg engine; the caller disposes it (an app's lifespan)."""
    return create_async_engine(
        settings.async_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": dict(SERVER_SETTINGS)},
    )


def make_async_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def make_sync_engine(settings: DatabaseSettings) -> Engine:
    """A psycopg 3 engine for workers, the CLI and Alembic."""
    return create_engine(settings.sync_url, pool_pre_ping=True, pool_size=5)


def make_sync_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sync sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
