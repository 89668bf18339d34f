"""GET /health."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from api.main import create_app
from core.settings import DatabaseSettings, RedisSettings, Settings


async def test_health_reports_database_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "database": "ok", "redis": "ok"}


async def test_health_names_what_is_down(database_url: str) -> None:
    # Nothing listens on port 9 (discard): Redis is unreachable for this app.
    settings = Settings(redis=RedisSettings(redis_url="redis://127.0.0.1:9/0"))
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "database": "ok", "redis": "unavailable"}


def test_creating_the_app_connects_to_nothing() -> None:
    settings = Settings(redis=RedisSettings(redis_url="redis://127.0.0.1:9/0"))
    app = create_app(settings)
    assert not hasattr(app.state, "resources")


async def test_health_names_a_database_outage(redis_url: str) -> None:
    settings = Settings(db=DatabaseSettings(database_url="postgresql://maps:maps@127.0.0.1:9/none"))
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "database": "unavailable", "redis": "ok"}
