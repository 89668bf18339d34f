"""`/auth/*`: FastAPI-Users' login, logout, register, forgot- and reset-password."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import UserCreate, UserRead, auth_backend, fastapi_users

router = APIRouter(prefix="/auth", tags=["auth"])
router.include_router(fastapi_users.get_auth_router(auth_backend))
router.include_router(fastapi_users.get_register_router(UserRead, UserCreate))
router.include_router(fastapi_users.get_reset_password_router())
