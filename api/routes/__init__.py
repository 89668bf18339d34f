"""The REST API's routers, one module per noun."""

from fastapi import APIRouter

from api.routes import auth, layers, profile, projects, sources, tiles, wfs
from api.routes.health import router as health_router

api_router = APIRouter()
for module in (auth, sources, layers, projects, wfs, profile, tiles):
    api_router.include_router(module.router)

__all__ = ["api_router", "health_router"]
