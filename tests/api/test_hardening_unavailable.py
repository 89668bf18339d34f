"""With PostgreSQL gone, the API answers 503 with a clear message, not 500."""

from __future__ import annotations

import httpx

from api.main import create_app
from core.settings import DatabaseSettings, Settings
from tests.conftest import free_port


async def test_a_database_that_is_gone_answers_503() -> None:
    settings = Settings()
    gone = DatabaseSettings(database_url=f"postgresql://maps:maps@127.0.0.1:{free_port()}/maps")
    app = create_app(settings.model_copy(update={"db": gone}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/api/v1/auth/login", data={"username": "a@example.com", "password": "x"}
            )
    assert response.status_code == 503, response.text
    assert "unavailable" in response.json()["detail"]
