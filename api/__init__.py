"""The REST API (FastAPI) that replaces the Django REST Framework backend."""

from api.main import create_app

__all__ = ["create_app"]
