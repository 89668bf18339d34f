"""The ETL service's dependencies, as `Annotated` aliases defined once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from dramatiq.brokers.redis import RedisBroker
from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.errors import NotAuthenticated
from core.models import User
from core.security import TokenService
from core.settings import Settings
from pipeline.errors import ServiceUnavailable


@dataclass
class Resources:
    """What the lifespan opens and closes: engine, sessions, Redis, broker, tokens."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    broker: RedisBroker
    tokens: TokenService


def get_resources(request: Request) -> Resources:
    """The app's open resources."""
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(resources: ResourcesDep) -> Settings:
    """The app's settings."""
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """A session per request (handlers commit themselves, before answering)."""
    async with resources.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_current_user(request: Request, resources: ResourcesDep, session: SessionDep) -> User:
    """The active user whose bearer token (issued by the REST API) came with the request."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authentication credentials were not provided.")
    try:
        claims = await resources.tokens.decode(token.strip())
    except (RedisError, OSError) as exc:
        # Revocations live in Redis: without it no token can be trusted.
        raise ServiceUnavailable("cannot check the token: Redis is unavailable") from exc
    if claims is None:
        raise NotAuthenticated("Invalid or expired token.")
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("Invalid or expired token.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
