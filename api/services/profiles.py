"""Reading and changing the signed-in user's profile."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.profiles import ProfileRead
from core.errors import InvalidInput
from core.models import User, UserProfile

_USER_FIELDS = ("email", "first_name", "last_name")
_PROFILE_FIELDS = ("organization", "preferences")


async def _profile_of(*, session: AsyncSession, user: User) -> UserProfile:
    profile = await session.scalar(select(UserProfile).where(UserProfile.user_id == user.id))
    if profile is None:
        # Accounts made by Django before profiles existed get theirs on first use.
        profile = UserProfile(user_id=user.id, organization="", preferences={})
        session.add(profile)
        await session.flush()
    return profile


def _read(user: User, profile: UserProfile) -> ProfileRead:
    return ProfileRead(
        id=profile.id,
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        organization=profile.organization,
        preferences=profile.preferences,
    )


async def get_profile(*, session: AsyncSession, user: User) -> ProfileRead:
    """The user's profile (made if missing)."""
    profile = await _profile_of(session=session, user=user)
    await session.commit()
    return _read(user, profile)


async def update_profile(
    *, session: AsyncSession, user: User, changes: dict[str, Any]
) -> ProfileRead:
    """Apply the given fields; an email another account uses is refused."""
    email = changes.get("email")
    if email and email.lower() != user.email.lower():
        taken = await session.scalar(
            select(User.id).where(func.lower(User.email) == email.lower(), User.id != user.id)
        )
        if taken is not None:
            raise InvalidInput("A user with that email already exists.", field="email")
    profile = await _profile_of(session=session, user=user)
    for field in _USER_FIELDS:
        if field in changes:
            setattr(user, field, changes[field])
    for field in _PROFILE_FIELDS:
        if field in changes:
            setattr(profile, field, changes[field])
    await session.commit()
    return _read(user, profile)
