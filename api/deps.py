"""The dependencies routes declare, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import current_active_user
from api.schemas.common import INT4_MAX
from api.settings import ApiSettings
from api.state import Resources, get_resources, get_session
from core.models import User
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings this app was made with."""
    return get_resources(request).settings


def get_api_settings(request: Request) -> ApiSettings:
    """The API-only settings this app was made with."""
    return get_resources(request).api_settings


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
CurrentUser = Annotated[User, Depends(current_active_user)]
# The Django-era serial keys are int4: an id outside 1..2**31-1 names no row (404, not a 500).
ObjectId = Annotated[int, Path(ge=1, le=INT4_MAX, examples=[1])]
