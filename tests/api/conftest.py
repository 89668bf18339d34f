"""The REST API in-process (httpx over ASGI) on the session's test database and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from api.main import create_app
from api.state import Resources
from core.accounts import create_user
from core.settings import Settings

TABLES = (
    "core_project_layers, core_project, core_layer, core_geometry, core_source, "
    "core_userprofile, auth_user"
)
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    """A user the tests made, with a valid token."""

    id: int
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of this user."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
async def app(database_url: str, redis_url: str) -> AsyncIterator[FastAPI]:
    """One app for the session, its lifespan running."""
    settings = Settings()
    assert settings.db.libpq_url == database_url
    assert settings.redis.redis_url == redis_url
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def resources(app: FastAPI) -> Resources:
    """The app's open connections."""
    resources: Resources = app.state.resources
    return resources


@pytest.fixture(autouse=True)
def clean(database_url: str) -> Iterator[None]:
    """Empty the tables these tests touch, before each test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    yield


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(resources: Resources) -> MakeAccount:
    """Create a user (as the CLI does) and issue it a token."""

    async def make(email: str = "alice@example.com", *, superuser: bool = False) -> Account:
        async with resources.sessionmaker() as session:
            user = await create_user(
                session=session,
                email=email,
                password=PASSWORD,
                settings=resources.settings.auth,
                is_superuser=superuser,
            )
        return Account(user.id, email, PASSWORD, resources.tokens.issue(user.id))

    return make


@pytest.fixture
async def alice(make_account: MakeAccount) -> Account:
    """A signed-in user."""
    return await make_account("alice@example.com")


@pytest.fixture
async def bob(make_account: MakeAccount) -> Account:
    """Another signed-in user."""
    return await make_account("bob@example.com")
