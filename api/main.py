"""The REST API's app factory: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis

from api.errors import register_error_handlers
from api.middleware import AppendSlashMiddleware
from api.routes import api_router, health_router, raster_tiles
from api.services.tiles import open_tile_client
from api.settings import ApiSettings
from api.state import Resources
from core.database import make_async_engine, make_async_sessionmaker
from core.security import TokenService
from core.settings import Settings, get_settings

API_PREFIX = "/api/v1"
# The map page (/map/): one HTML file, one script, one stylesheet and MapLibre GL JS.
MAP_DIR = Path(__file__).resolve().parent / "static" / "map"


def create_app(
    settings: Settings | None = None, api_settings: ApiSettings | None = None
) -> FastAPI:
    """A new app; its connections open in the lifespan, never at import."""
    settings = settings or get_settings()
    api_settings = api_settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(settings.db)
        redis = Redis.from_url(settings.redis.redis_url)
        tile_client = open_tile_client(api_settings)
        app.state.resources = Resources(
            settings=settings,
            api_settings=api_settings,
            engine=engine,
            sessionmaker=make_async_sessionmaker(engine),
            redis=redis,
            tokens=TokenService(settings.auth, redis),
            tile_client=tile_client,
        )
        try:
            async with raster_tiles.open_client(app, api_settings.titiler_url):
                yield
        finally:
            del app.state.resources
            await tile_client.aclose()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Maps platform REST API",
        version="1.0.0",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    register_error_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router, prefix=API_PREFIX)
    app.mount("/map", StaticFiles(directory=MAP_DIR, html=True), name="map")
    app.include_router(raster_tiles.router, prefix=API_PREFIX)
    app.add_middleware(AppendSlashMiddleware, router=app.router)
    return app
