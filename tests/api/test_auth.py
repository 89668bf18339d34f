"""/auth: register, login, logout, passwords in Django's format, password reset."""

from __future__ import annotations

import base64
import hashlib
import threading

import httpx
import psycopg
import pytest
from fastapi_users.jwt import generate_jwt
from redis.asyncio import Redis

import api.auth.passwords
import core.security
from api.auth.passwords import DjangoPasswordHelper
from api.state import Resources
from core.security import TokenService, verify_password
from tests.api.conftest import PASSWORD, Account

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/user-profile/"


def django_hash(
    password: str, *, salt: str = "seasalt0123456789abcd", iterations: int = 600
) -> str:
    """What Django's PBKDF2PasswordHasher stores, computed independently of core.security."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, data={"username": email, "password": password})


async def test_register_creates_user_and_profile(
    client: httpx.AsyncClient, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "Carol@Example.com", "password": "s3cret-pass"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "Carol@example.com"
    assert body["username"] == "carol@example.com"
    assert isinstance(body["id"], int)
    assert "password" not in body and "hashed_password" not in body
    row = db.execute(
        "SELECT u.username, u.password, u.is_active, u.is_superuser, p.organization, p.preferences "
        "FROM auth_user u JOIN core_userprofile p ON p.user_id = u.id WHERE u.id = %s",
        (body["id"],),
    ).fetchone()
    assert row is not None
    username, stored, active, superuser, organization, preferences = row
    assert username == "carol@example.com"
    assert isinstance(stored, str) and stored.startswith("pbkdf2_sha256$1000$")
    assert verify_password("s3cret-pass", stored)
    assert (active, superuser, organization, preferences) == (True, False, "", {})


async def test_register_cannot_claim_superuser(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "eve@example.com", "password": "pw-pw-pw", "is_superuser": True},
    )
    assert response.status_code == 201
    assert response.json()["is_superuser"] is False


async def test_register_refuses_duplicate_email_whatever_its_case(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "ALICE@example.COM", "password": "another"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "REGISTER_USER_ALREADY_EXISTS"}


async def test_register_validation_errors_are_drf_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": "not-an-email"})
    assert response.status_code == 400
    body = response.json()
    assert body["password"] == ["This field is required."]
    assert list(body) == ["email", "password"]


async def test_login_logout_and_revoked_token(client: httpx.AsyncClient, alice: Account) -> None:
    response = await login(client, "alice@example.com", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await client.get(ME, headers=headers)).status_code == 200

    response = await client.post("/api/v1/auth/logout", headers=headers)
    assert response.status_code == 204
    refused = await client.get(ME, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json() == {"detail": "Invalid token."}
    # Other tokens of the same user still work.
    assert (await client.get(ME, headers=alice.headers)).status_code == 200


async def test_login_is_case_insensitive_on_email(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await login(client, "  ALICE@Example.Com", PASSWORD)
    assert response.status_code == 200, response.text


async def test_bad_credentials(client: httpx.AsyncClient, alice: Account) -> None:
    for email, password in [("alice@example.com", "wrong"), ("nobody@example.com", PASSWORD)]:
        response = await login(client, email, password)
        assert response.status_code == 400
        assert response.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}


async def test_inactive_user_cannot_sign_in(
    client: httpx.AsyncClient, alice: Account, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    db.execute("UPDATE auth_user SET is_active = false WHERE id = %s", (alice.id,))
    response = await login(client, alice.email, PASSWORD)
    assert response.status_code == 400
    assert (await client.get(ME, headers=alice.headers)).status_code == 401


async def test_django_user_signs_in_and_hash_is_upgraded(
    client: httpx.AsyncClient, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    stored = django_hash("old-django-password")
    user_id = db.execute(
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, "
        "is_staff, is_active, date_joined) VALUES (%s, false, 'dj', '', '', 'DJ@Example.com', "
        "false, true, now()) RETURNING id",
        (stored,),
    ).fetchone()
    assert user_id is not None

    response = await login(client, "dj@example.com", "old-django-password")
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    profile = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert profile.status_code == 200
    assert profile.json()["username"] == "dj"

    row = db.execute(
        "SELECT password, last_login FROM auth_user WHERE id = %s", (user_id[0],)
    ).fetchone()
    assert row is not None
    new_hash, last_login = row
    # Rehashed with the configured iteration count, still in Django's format.
    assert isinstance(new_hash, str) and new_hash.startswith("pbkdf2_sha256$1000$")
    assert new_hash != stored
    assert verify_password("old-django-password", new_hash)
    assert last_login is not None
    assert (await login(client, "dj@example.com", "old-django-password")).status_code == 200


async def test_unauthenticated_requests_get_401_with_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    for path in [ME, "/api/v1/sources/", "/api/v1/layers/", "/api/v1/projects/", "/api/v1/wfs/"]:
        response = await client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "Authentication credentials were not provided."}
    garbage = await client.get(ME, headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.headers["www-authenticate"] == "Bearer"


async def test_forgot_password_is_always_202(client: httpx.AsyncClient, alice: Account) -> None:
    for email in ["alice@example.com", "nobody@example.com"]:
        response = await client.post("/api/v1/auth/forgot-password", json={"email": email})
        assert response.status_code == 202


async def test_reset_password(
    client: httpx.AsyncClient,
    alice: Account,
    resources: Resources,
    db: psycopg.Connection[tuple[object, ...]],
) -> None:
    row = db.execute("SELECT password FROM auth_user WHERE id = %s", (alice.id,)).fetchone()
    assert row is not None
    # The token FastAPI-Users mails: the user id and a hash of the current password hash.
    token = generate_jwt(
        {
            "sub": str(alice.id),
            "password_fgpt": django_hash(str(row[0])),
            "aud": "fastapi-users:reset",
        },
        resources.settings.auth.secret_key,
        3600,
    )
    bad = await client.post(
        "/api/v1/auth/reset-password", json={"token": "nonsense", "password": "new-password-1"}
    )
    assert bad.status_code == 400
    assert bad.json() == {"detail": "RESET_PASSWORD_BAD_TOKEN"}

    response = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "new-password-1"}
    )
    assert response.status_code == 200, response.text
    assert (await login(client, alice.email, "new-password-1")).status_code == 200
    assert (await login(client, alice.email, PASSWORD)).status_code == 400
    stored = db.execute("SELECT password FROM auth_user WHERE id = %s", (alice.id,)).fetchone()
    assert stored is not None and str(stored[0]).startswith("pbkdf2_sha256$")
    # The token was bound to the old password: it cannot be used twice.
    again = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "new-password-2"}
    )
    assert again.status_code == 400


async def test_tokens_are_shared_with_core_token_service(
    client: httpx.AsyncClient, alice: Account, resources: Resources, redis_url: str
) -> None:
    token = (await login(client, alice.email, PASSWORD)).json()["access_token"]
    # What the ETL service does: its own TokenService on its own Redis client.
    redis = Redis.from_url(redis_url)
    try:
        other = TokenService(resources.settings.auth, redis)
        claims = await other.decode(token)
        assert claims is not None and claims.user_id == alice.id
        await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert await other.decode(token) is None
    finally:
        await redis.aclose()


async def test_login_keeps_a_current_hash(
    client: httpx.AsyncClient, alice: Account, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    before = db.execute("SELECT password FROM auth_user WHERE id = %s", (alice.id,)).fetchone()
    assert (await login(client, alice.email, PASSWORD)).status_code == 200
    after = db.execute("SELECT password FROM auth_user WHERE id = %s", (alice.id,)).fetchone()
    assert before == after


async def test_logout_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_passwords_are_hashed_off_the_event_loop(
    client: httpx.AsyncClient,
    alice: Account,
    resources: Resources,
    db: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Register, forgot- and reset-password hash in worker threads, never on the loop."""
    loop_thread = threading.get_ident()
    threads: list[int] = []
    hash_now = DjangoPasswordHelper.hash_now
    verify = core.security.verify_password

    def recording_hash(self: DjangoPasswordHelper, password: str) -> str:
        threads.append(threading.get_ident())
        return hash_now(self, password)

    def recording_verify(password: str, encoded: str) -> bool:
        threads.append(threading.get_ident())
        return verify(password, encoded)

    monkeypatch.setattr(DjangoPasswordHelper, "hash_now", recording_hash)
    monkeypatch.setattr(api.auth.passwords, "verify_password", recording_verify)
    registered = await client.post(
        "/api/v1/auth/register", json={"email": "bob@example.com", "password": "bob-password"}
    )
    assert registered.status_code == 201, registered.text
    forgot = await client.post("/api/v1/auth/forgot-password", json={"email": alice.email})
    assert forgot.status_code == 202
    row = db.execute("SELECT password FROM auth_user WHERE id = %s", (alice.id,)).fetchone()
    assert row is not None
    token = generate_jwt(
        {"sub": str(alice.id), "password_fgpt": django_hash(str(row[0])),
         "aud": "fastapi-users:reset"},
        resources.settings.auth.secret_key,
        3600,
    )  # fmt: skip
    reset = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "new-password-1"}
    )
    assert reset.status_code == 200, reset.text
    assert len(threads) >= 4
    assert loop_thread not in threads
