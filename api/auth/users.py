"""FastAPI-Users over Django's `auth_user`: adapter, manager, backend and the current user."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from anyio import to_thread
from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import BaseUserManager, FastAPIUsers, IntegerIDMixin, exceptions, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport
from fastapi_users.jwt import decode_jwt
from fastapi_users.models import UserProtocol
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import DjangoPasswordHelper
from api.auth.strategy import get_strategy
from api.state import get_resources, get_session
from core.accounts import get_user_by_email
from core.models import User, UserProfile
from core.settings import AuthSettings

LOGIN_URL = "/api/v1/auth/login"
logger = logging.getLogger(__name__)


def _as_protocol(user: User) -> UserProtocol[int]:
    """Where mypy does check it: User satisfies FastAPI-Users' protocol."""
    return user


class UserRead(schemas.BaseUser[int]):
    """A user as the register endpoint answers it."""

    username: str


class UserCreate(schemas.BaseUserCreate):
    """What registration takes: an email and a password."""


# mypy checks generic bounds in base classes before it resolves SQLAlchemy's Mapped
# descriptors; `_as_protocol` below shows that User satisfies UserProtocol[int].
class DjangoUserDatabase(SQLAlchemyUserDatabase[User, int]):  # type: ignore[type-var]
    """The user adapter: emails compared case-insensitively, a profile made with each user."""

    async def get_by_email(self, email: str) -> User | None:
        """The oldest account with this email, whatever its case."""
        return await get_user_by_email(session=self.session, email=email)

    async def create(self, create_dict: dict[str, Any]) -> User:
        """Insert a user as Django would (username = lower-cased email) and its profile."""
        email = str(create_dict["email"]).strip()
        user = User(
            email=email,
            username=email.lower(),
            hashed_password=create_dict["hashed_password"],
            first_name="",
            last_name="",
            is_active=True,
            is_superuser=False,
            is_staff=False,
            is_verified=False,
        )
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # the username is taken (a concurrent registration)
            await self.session.rollback()
            raise exceptions.UserAlreadyExists() from exc
        self.session.add(UserProfile(user_id=user.id, organization="", preferences={}))
        await self.session.commit()
        return user


class UserManager(IntegerIDMixin, BaseUserManager[User, int]):  # type: ignore[type-var]
    """Account logic with Django-compatible passwords."""

    def __init__(self, user_db: DjangoUserDatabase, *, settings: AuthSettings) -> None:
        self.passwords = DjangoPasswordHelper(iterations=settings.password_iterations)
        super().__init__(user_db, self.passwords)
        self.reset_password_token_secret = settings.secret_key
        self.verification_token_secret = settings.secret_key

    async def validate_password(self, password: str, user: schemas.UC | User) -> None:
        """Refuse blank passwords."""
        if not password.strip():
            raise exceptions.InvalidPasswordException("This field may not be blank.")

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        """Check the credentials off the event loop (PBKDF2 takes a while)."""
        user = await self.user_db.get_by_email(credentials.username)
        if user is None:
            # Hash anyway so that unknown emails take as long as wrong passwords.
            await to_thread.run_sync(self.password_helper.hash, credentials.password)
            return None
        verified, new_hash = await to_thread.run_sync(
            self.password_helper.verify_and_update, credentials.password, user.hashed_password
        )
        if not verified:
            return None
        if new_hash is not None:
            await self.user_db.update(user, {"hashed_password": new_hash})
        return user

    async def create(
        self, user_create: schemas.UC, safe: bool = False, request: Request | None = None
    ) -> User:
        """Register, with the password hashed off the event loop."""
        await self.passwords.hash_ahead(user_create.password)
        return await super().create(user_create, safe, request)

    async def _update(self, user: User, update_dict: dict[str, Any]) -> User:
        """Update (password changes and resets too), hashing off the event loop."""
        if update_dict.get("password") is not None:
            await self.passwords.hash_ahead(update_dict["password"])
        return await super()._update(user, update_dict)

    async def forgot_password(self, user: User, request: Request | None = None) -> None:
        """Issue a reset token; its password fingerprint is hashed off the event loop."""
        if user.is_active:
            await self.passwords.hash_ahead(user.hashed_password)
        await super().forgot_password(user, request)

    async def reset_password(
        self, token: str, password: str, request: Request | None = None
    ) -> User:
        """Reset a password; the token's password fingerprint is checked off the event loop."""
        try:
            claims = decode_jwt(
                token, self.reset_password_token_secret, [self.reset_password_token_audience]
            )
            user = await self.get(self.parse_id(claims["sub"]))
            await self.passwords.verify_ahead(user.hashed_password, str(claims["password_fgpt"]))
        except (jwt.PyJWTError, KeyError, exceptions.InvalidID, exceptions.UserNotExists):
            pass  # a bad token: the library refuses it below with its own error
        return await super().reset_password(token, password, request)

    async def on_after_login(
        self, user: User, request: Request | None = None, response: Response | None = None
    ) -> None:
        """Record the sign-in as Django did."""
        await self.user_db.update(user, {"last_login": datetime.now(UTC)})

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        """No mailer exists yet: record that a reset was asked for (never the token)."""
        logger.info("password reset requested for user %s", user.id)


async def get_user_db(
    session: Annotated[AsyncSession, Depends(get_session)],
) -> AsyncIterator[DjangoUserDatabase]:
    """The user adapter on the request's session."""
    yield DjangoUserDatabase(session, User)


async def get_user_manager(
    request: Request, user_db: Annotated[DjangoUserDatabase, Depends(get_user_db)]
) -> AsyncIterator[UserManager]:
    """The user manager with this app's auth settings."""
    yield UserManager(user_db, settings=get_resources(request).settings.auth)


auth_backend: AuthenticationBackend[User, int] = AuthenticationBackend(  # type: ignore[type-var]
    name="bearer", transport=BearerTransport(tokenUrl=LOGIN_URL), get_strategy=get_strategy
)
fastapi_users = FastAPIUsers[User, int](get_user_manager, [auth_backend])  # type: ignore[type-var]
current_active_user = fastapi_users.current_user(active=True)
