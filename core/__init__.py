"""What the REST API and the ETL service share: settings, database, models, errors."""

from core.errors import (
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UnsupportedFormat,
)
from core.settings import Settings, get_settings

__all__ = [
    "DomainError",
    "InvalidInput",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Settings",
    "UnsupportedFormat",
    "get_settings",
]
