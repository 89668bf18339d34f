"""Sign-in rate limiting: per account and per address, shared through Redis by API processes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from api.auth.ratelimit import KEY_PREFIX, login_limits
from tests.api.conftest import Account
from tests.conftest import Stack

LOGIN = "/api/v1/auth/login"


@pytest.fixture(autouse=True)
def no_counters(redis_url: str) -> Iterator[None]:
    """Start and leave with no failure counted (other tests sign in from the same address)."""
    client = redis.Redis.from_url(redis_url)

    def clear() -> None:
        for key in client.scan_iter(f"{KEY_PREFIX}:*"):
            client.delete(key)

    clear()
    yield
    clear()
    client.close()


def _form(email: str, password: str) -> dict[str, str]:
    return {"username": email, "password": password}


async def test_an_account_is_throttled_after_ten_failures(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    limit = login_limits().max_failures_per_account
    assert limit == 10
    for _ in range(limit):
        response = await client.post(LOGIN, data=_form(alice.email, "wrong"))
        assert response.status_code == 400
        assert response.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}
    # Now even the right password is refused, without being checked.
    throttled = await client.post(LOGIN, data=_form(alice.email.upper(), alice.password))
    assert throttled.status_code == 429, throttled.text
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= login_limits().window_seconds
    assert "throttled" in throttled.json()["detail"]
    # Another account from the same address is not affected.
    other = await client.post(LOGIN, data=_form(bob.email, bob.password))
    assert other.status_code == 200, other.text


async def test_a_success_clears_the_accounts_failures(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(9):
        assert (await client.post(LOGIN, data=_form(alice.email, "wrong"))).status_code == 400
    assert (await client.post(LOGIN, data=_form(alice.email, alice.password))).status_code == 200
    for _ in range(9):
        assert (await client.post(LOGIN, data=_form(alice.email, "wrong"))).status_code == 400
    assert (await client.post(LOGIN, data=_form(alice.email, alice.password))).status_code == 200


async def test_an_address_is_throttled_across_accounts(
    client: httpx.AsyncClient, alice: Account
) -> None:
    limit = login_limits().max_failures_per_address
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for number in range(limit):
        response = await client.post(
            LOGIN, data=_form(f"guess{number}@example.com", "x"), headers=attacker
        )
        assert response.status_code == 400, number
    blocked = await client.post(LOGIN, data=_form(alice.email, alice.password), headers=attacker)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    elsewhere = await client.post(
        LOGIN, data=_form(alice.email, alice.password), headers={"X-Forwarded-For": "198.51.100.2"}
    )
    assert elsewhere.status_code == 200


async def test_two_api_processes_share_the_counters(
    client: httpx.AsyncClient, stack: Stack, alice: Account
) -> None:
    # The in-process app and the stack's API process: two processes, one Redis.
    half = login_limits().max_failures_per_account // 2
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as other_process:
        for _ in range(half):
            failed = await other_process.post(LOGIN, data=_form(alice.email, "no"))
            assert failed.status_code == 400
            assert (await client.post(LOGIN, data=_form(alice.email, "no"))).status_code == 400
        refused = await other_process.post(LOGIN, data=_form(alice.email, alice.password))
        assert refused.status_code == 429
    assert (await client.post(LOGIN, data=_form(alice.email, alice.password))).status_code == 429
