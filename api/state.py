"""What the lifespan opens and the dependencies hand out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import ApiSettings
from core.security import TokenService
from core.settings import Settings


@dataclass(frozen=True)
class Resources:
    """The open connections of one running app."""

    settings: Settings
    api_settings: ApiSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    tokens: TokenService
    # Pooled connections to Martin, for the tile routes.
    tile_client: httpx.AsyncClient


def get_resources(request: Request) -> Resources:
    """The connections opened by the app's lifespan."""
    resources: Resources | None = getattr(request.app.state, "resources", None)
    if resources is None:
        raise RuntimeError("the app's lifespan has not run")
    return resources


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; handlers commit before they answer."""
    async with get_resources(request).sessionmaker() as session:
        yield session
