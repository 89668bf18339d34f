"""Sign-in rate limiting: failures counted per account and per client address, in Redis.

Counters live in Redis so that every API process sees the same ones. Each failed login
increments a counter per submitted username and one per client address, in a fixed
window; once either reaches its limit, logins from it answer 429 with `Retry-After`
(the seconds left in the window) until the window ends, without checking the
password. A successful login clears the account's counter.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from functools import cache

from fastapi import HTTPException, Request
from fastapi_users.router.common import ErrorCode
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from api.state import get_resources
from core.errors import TooManyRequests
from core.settings import ENV_FILE

KEY_PREFIX = "maps:login-failures"


class LoginLimitSettings(BaseSettings):
    """How many failed sign-ins are allowed, per account and per address, in a window."""

    model_config = SettingsConfigDict(
        env_prefix="LOGIN_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    max_failures_per_account: int = 10
    max_failures_per_address: int = 30
    window_seconds: int = 60


@cache
def login_limits() -> LoginLimitSettings:
    """The limits of this process (read from the environment once)."""
    return LoginLimitSettings()


def _key(kind: str, value: str) -> str:
    # Hashed: no email address sits in Redis, and any text makes a valid key.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}:{kind}:{digest}"


def client_address(request: Request) -> str:
    """The client's address: the first X-Forwarded-For hop when the proxy is trusted."""
    if get_resources(request).api_settings.trust_forwarded_headers:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.client.host if request.client else "unknown"


async def _blocked_for(redis: Redis, keys: list[tuple[str, int]]) -> int | None:
    """Seconds until the first of the exhausted counters expires, or None."""
    async with redis.pipeline(transaction=False) as pipe:
        for key, _limit in keys:
            pipe.get(key)
            pipe.ttl(key)
        answers = await pipe.execute()
    waits = []
    for (_key_name, limit), count, ttl in zip(keys, answers[0::2], answers[1::2], strict=True):
        if count is not None and int(count) >= limit:
            waits.append(max(int(ttl), 1))
    return max(waits) if waits else None


async def _count_failure(redis: Redis, keys: list[str], window: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.incr(key)
            # The window starts at the first failure; later ones do not extend it.
            pipe.expire(key, window, nx=True)
        await pipe.execute()


async def limit_logins(request: Request) -> AsyncIterator[None]:
    """Dependency of the auth router: refuse throttled logins, count failed ones."""
    if not request.url.path.endswith("/login"):
        yield
        return
    form = await request.form()
    username = str(form.get("username") or "").strip().lower()
    limits = login_limits()
    account = _key("account", username)
    address = _key("address", client_address(request))
    redis = get_resources(request).redis
    wait = await _blocked_for(
        redis,
        [(account, limits.max_failures_per_account), (address, limits.max_failures_per_address)],
    )
    if wait is not None:
        raise TooManyRequests(retry_after=wait)
    try:
        yield
    except HTTPException as exc:
        if exc.detail == ErrorCode.LOGIN_BAD_CREDENTIALS:
            await _count_failure(redis, [account, address], limits.window_seconds)
        raise
    await redis.delete(account)
