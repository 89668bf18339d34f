"""Tokens through core.security.TokenService, so the ETL service accepts and revokes them too."""

from __future__ import annotations

from fastapi import Request
from fastapi_users import exceptions
from fastapi_users.authentication.strategy import Strategy
from fastapi_users.manager import BaseUserManager

from api.state import get_resources
from core.models import User
from core.security import TokenService


# mypy checks generic bounds in base classes before it resolves SQLAlchemy's Mapped
# descriptors; User does satisfy UserProtocol[int] (checked in api.auth.users).
class RevocableTokenStrategy(Strategy[User, int]):  # type: ignore[type-var]
    """JWTs with a jti whose revocations live in Redis."""

    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens

    async def read_token(
        self,
        token: str | None,
        user_manager: BaseUserManager[User, int],  # type: ignore[type-var]
    ) -> User | None:
        """The token's user, or None when the token is invalid, expired or revoked."""
        if token is None:
            return None
        claims = await self.tokens.decode(token)
        if claims is None:
            return None
        try:
            return await user_manager.get(claims.user_id)
        except exceptions.UserNotExists:
            return None

    async def write_token(self, user: User) -> str:
        """A new access token for the user."""
        return self.tokens.issue(user.id)

    async def destroy_token(self, token: str, user: User) -> None:
        """Revoke the token (logout)."""
        await self.tokens.revoke(token)


def get_strategy(request: Request) -> RevocableTokenStrategy:
    """The strategy bound to this app's Redis client."""
    return RevocableTokenStrategy(get_resources(request).tokens)
