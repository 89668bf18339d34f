"""The ETL service's routes."""

from pipeline.routes.health import router as health_router
from pipeline.routes.imports import router as imports_router
from pipeline.routes.tasks import router as tasks_router

__all__ = ["health_router", "imports_router", "tasks_router"]
