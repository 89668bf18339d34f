"""`/auth/*`: FastAPI-Users' login, logout, register, forgot- and reset-password."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import UserCreate, UserRead, auth_backend, fastapi_users
from api.auth.ratelimit import limit_logins

router = APIRouter(prefix="/auth", tags=["auth"])
# Failed sign-ins are counted per account and address in Redis (429 past the limit).
router.include_router(
    fastapi_users.get_auth_router(auth_backend), dependencies=[Depends(limit_logins)]
)
router.include_router(fastapi_users.get_register_router(UserRead, UserCreate))
router.include_router(fastapi_users.get_reset_password_router())
