"""Django-compatible passwords and revocable tokens."""

from __future__ import annotations

import base64
import hashlib

import pytest
import redis.asyncio as aioredis

from core.security import TokenService, hash_password, needs_rehash, verify_password
from core.settings import DEV_SECRET, AuthSettings


def django_hash(password: str, salt: str, iterations: int) -> str:
    """What Django's PBKDF2PasswordHasher.encode writes, computed independently."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def test_a_django_hash_verifies() -> None:
    encoded = django_hash("correct horse", "Zm9vYmFyc2FsdA", 260000)
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong horse", encoded)


def test_our_hashes_are_django_format() -> None:
    encoded = hash_password("s3cret!", iterations=1200, salt="abcdefgh")
    assert encoded == django_hash("s3cret!", "abcdefgh", 1200)
    assert verify_password("s3cret!", hash_password("s3cret!", iterations=1000))


@pytest.mark.parametrize("encoded", ["", "md5$x$y", "pbkdf2_sha256$notanumber$s$h", "bcrypt$$"])
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not verify_password("anything", encoded)


def test_rehash_when_iterations_change() -> None:
    assert needs_rehash(hash_password("p", iterations=1000), iterations=2000)
    assert not needs_rehash(hash_password("p", iterations=2000), iterations=2000)


async def test_tokens_decode_and_revoke(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    service = TokenService(AuthSettings(secret_key="k" * 40), client)
    token = service.issue(42)
    claims = await service.decode(token)
    assert claims is not None and claims.user_id == 42
    assert await TokenService(AuthSettings(secret_key="x" * 40), client).decode(token) is None
    await service.revoke(token)
    assert await service.decode(token) is None
    assert await service.decode("not-a-token") is None
    await client.aclose()


def test_default_secret_refused_in_production() -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        AuthSettings(environment="production", secret_key=DEV_SECRET)
