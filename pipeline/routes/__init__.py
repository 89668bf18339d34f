"""The ETL service's routes."""

from pipeline.routes.health import router as health_router
from pipeline.routes.tasks import router as tasks_router

__all__ = ["health_router", "tasks_router"]
