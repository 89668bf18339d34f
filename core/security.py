"""Passwords in Django's format and the revocable JWTs both services accept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from redis.asyncio import Redis

from core.settings import AuthSettings

DJANGO_ALGORITHM = "pbkdf2_sha256"
TOKEN_AUDIENCE = ["fastapi-users:auth"]
_REVOKED_PREFIX = "auth:revoked:"


def hash_password(password: str, *, iterations: int, salt: str | None = None) -> str:
    """Hash a password as Django's PBKDF2PasswordHasher does (Django verifies it too)."""
    salt = salt or secrets.token_urlsafe(16).replace("-", "").replace("_", "")[:22]
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{DJANGO_ALGORITHM}${iterations}${salt}${base64.b64encode(digest).decode('ascii')}"


def verify_password(password: str, encoded: str) -> bool:
    """Check a password against a Django `pbkdf2_sha256` hash in constant time."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != DJANGO_ALGORITHM or rounds < 1:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return hmac.compare_digest(base64.b64encode(digest).decode("ascii"), expected)


def needs_rehash(encoded: str, *, iterations: int) -> bool:
    """Whether a stored hash uses fewer iterations than configured (or another scheme)."""
    parts = encoded.split("$", 3)
    return len(parts) != 4 or parts[0] != DJANGO_ALGORITHM or parts[1] != str(iterations)


@dataclass(frozen=True)
class TokenClaims:
    """What a valid access token says."""

    user_id: int
    jti: str
    expires_at: int


class TokenService:
    """Issue, decode and revoke JWT access tokens (revocations are kept in Redis)."""

    algorithm = "HS256"

    def __init__(self, settings: AuthSettings, redis: Redis) -> None:
        self._settings = settings
        self._redis = redis

    def issue(self, user_id: int) -> str:
        """A signed token for the user, valid for the configured lifetime."""
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "aud": TOKEN_AUDIENCE,
            "iat": now,
            "exp": now + self._settings.token_lifetime_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._settings.secret_key, algorithm=self.algorithm)

    async def decode(self, token: str) -> TokenClaims | None:
        """The token's claims, or None when it is malformed, expired or revoked."""
        try:
            data = jwt.decode(
                token,
                self._settings.secret_key,
                algorithms=[self.algorithm],
                audience=TOKEN_AUDIENCE,
                options={"require": ["sub", "exp", "jti"]},
            )
            claims = TokenClaims(int(data["sub"]), str(data["jti"]), int(data["exp"]))
        except (jwt.PyJWTError, ValueError, KeyError):
            return None
        if await self._redis.exists(_REVOKED_PREFIX + claims.jti):
            return None
        return claims

    async def revoke(self, token: str) -> None:
        """Refuse this token from now on (until it would have expired anyway)."""
        claims = await self.decode(token)
        if claims is None:
            return
        ttl = max(1, claims.expires_at - int(time.time()))
        await self._redis.set(_REVOKED_PREFIX + claims.jti, "1", ex=ttl)
