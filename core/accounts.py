"""Creating accounts without the HTTP API (the CLI's `maps users create`)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.models import User, UserProfile
from core.security import hash_password
from core.settings import AuthSettings


async def get_user_by_email(*, session: AsyncSession, email: str) -> User | None:
    """The user with this email, compared case-insensitively as sign-in does."""
    found = await session.scalars(
        select(User).where(func.lower(User.email) == email.strip().lower()).order_by(User.id)
    )
    return found.first()


async def create_user(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    settings: AuthSettings,
    is_superuser: bool = False,
) -> User:
    """Create an active account with its profile; the email doubles as the username."""
    email = email.strip()
    if "@" not in email:
        raise InvalidInput("Enter a valid email address.", field="email")
    if not password:
        raise InvalidInput("This field may not be blank.", field="password")
    if await get_user_by_email(session=session, email=email) is not None:
        raise InvalidInput("A user with that email already exists.", field="email")
    user = User(
        email=email,
        username=email.lower(),
        hashed_password=hash_password(password, iterations=settings.password_iterations),
        is_superuser=is_superuser,
        is_staff=is_superuser,
        is_active=True,
        is_verified=False,
        first_name="",
        last_name="",
    )
    session.add(user)
    await session.flush()
    session.add(UserProfile(user_id=user.id, organization="", preferences={}))
    await session.commit()
    return user
