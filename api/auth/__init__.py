"""Sign-in, tokens and accounts (FastAPI-Users over Django's auth_user)."""

from api.auth.passwords import DjangoPasswordHelper
from api.auth.strategy import RevocableTokenStrategy, get_strategy
from api.auth.users import (
    UserCreate,
    UserManager,
    UserRead,
    auth_backend,
    current_active_user,
    fastapi_users,
    get_user_manager,
)

__all__ = [
    "DjangoPasswordHelper",
    "RevocableTokenStrategy",
    "UserCreate",
    "UserManager",
    "UserRead",
    "auth_backend",
    "current_active_user",
    "fastapi_users",
    "get_strategy",
    "get_user_manager",
]
