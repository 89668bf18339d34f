"""DRF's HTTP habits: trailing slashes, 404 and 405 bodies, OpenAPI at /api/v1."""

from __future__ import annotations

import httpx
import psycopg

from tests.api.conftest import Account

Conn = psycopg.Connection[tuple[object, ...]]


async def test_get_without_slash_redirects_keeping_the_query(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for path in ("/api/v1/sources", "/api/v1/layers", "/api/v1/projects", "/api/v1/user-profile"):
        response = await client.get(path, params={"page": "1"}, headers=alice.headers)
        assert response.status_code == 301, path
        assert response.headers["location"] == f"{path}/?page=1"
    followed = await client.get("/api/v1/sources", headers=alice.headers, follow_redirects=True)
    assert followed.status_code == 200
    detail = await client.get("/api/v1/sources/5", headers=alice.headers)
    assert (detail.status_code, detail.headers["location"]) == (301, "/api/v1/sources/5/")


async def test_other_methods_without_slash_are_served(
    client: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    created = await client.post(
        "/api/v1/sources", json={"name": "S", "source_type": "csv"}, headers=alice.headers
    )
    assert created.status_code == 201
    source_id = created.json()["id"]
    patched = await client.patch(
        f"/api/v1/sources/{source_id}", json={"name": "T"}, headers=alice.headers
    )
    assert (patched.status_code, patched.json()["name"]) == (200, "T")
    deleted = await client.delete(f"/api/v1/sources/{source_id}", headers=alice.headers)
    assert deleted.status_code == 204
    assert db.execute("SELECT count(*) FROM core_source").fetchone() == (0,)


async def test_declared_routes_are_never_redirected(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for path in ("/api/v1/sources/", "/api/v1/wfs/", "/api/v1/user-profile/"):
        assert (await client.get(path, headers=alice.headers)).status_code == 200
    login = await client.post(
        "/api/v1/auth/login", data={"username": "x@example.com", "password": "y"}
    )
    assert login.status_code == 400


async def test_unknown_paths_and_methods(client: httpx.AsyncClient, alice: Account) -> None:
    unknown = await client.get("/api/v1/nothing/", headers=alice.headers)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not found."})
    not_allowed = await client.post("/api/v1/user-profile/", json={}, headers=alice.headers)
    assert not_allowed.status_code == 405
    assert not_allowed.json() == {"detail": 'Method "POST" not allowed.'}


async def test_openapi_lists_the_contract_paths(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/sources/",
        "/api/v1/sources/{source_id}/",
        "/api/v1/layers/",
        "/api/v1/layers/{layer_id}/",
        "/api/v1/projects/",
        "/api/v1/projects/{project_id}/",
        "/api/v1/wfs/",
        "/api/v1/user-profile/",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/register",
        "/api/v1/auth/forgot-password",
        "/api/v1/auth/reset-password",
    ):
        assert path in paths, path
