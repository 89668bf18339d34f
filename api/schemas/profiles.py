"""The signed-in user's profile: auth_user's names and email with core_userprofile's fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, StringConstraints

from api.schemas.common import Email, JsonObject, NotNull, ReadModel

PersonName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=150)]
Organization = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]


class ProfileRead(ReadModel):
    """A profile as answered."""

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    organization: str
    preferences: JsonObject


class ProfileUpdate(BaseModel):
    """Changes to a profile; every field may be left out (Django allowed them blank)."""

    email: NotNull[Email] = None
    first_name: NotNull[PersonName] = None
    last_name: NotNull[PersonName] = None
    organization: NotNull[Organization] = None
    preferences: NotNull[JsonObject] = None
