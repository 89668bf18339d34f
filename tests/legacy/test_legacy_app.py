"""The legacy Django app itself: Django's migrations made the tables, and it serves them."""

from __future__ import annotations

import httpx
import psycopg

from tests.legacy.fixtures import LegacyApp


def _token(app: LegacyApp, username: str) -> dict[str, str]:
    user = app.database.data.users[username]
    answer = httpx.post(
        f"{app.url}/rest-auth/login/", json={"username": username, "password": user.password}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Token {answer.json()['key']}"}


def test_django_made_the_contract_tables(legacy_app: LegacyApp) -> None:
    """The core_* tables exist with Django's own bookkeeping beside them."""
    with psycopg.connect(legacy_app.database.url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        applied = conn.execute("SELECT name FROM django_migrations WHERE app = 'core'").fetchall()
    assert {
        "core_source", "core_geometry", "core_layer", "core_project", "core_project_layers",
        "core_userprofile", "auth_user", "authtoken_token", "django_migrations",
    } <= tables  # fmt: skip
    assert applied == [("0001_initial",)]


def test_fixture_users_sign_in_and_see_every_feature(legacy_app: LegacyApp) -> None:
    """A fixture user signs in with the Django hash and the WFS counts every row."""
    headers = _token(legacy_app, "alice")
    wfs = httpx.get(f"{legacy_app.url}/api/v1/wfs/", headers=headers, params={"page_size": 2})
    assert wfs.status_code == 200
    body = wfs.json()
    assert body["type"] == "FeatureCollection"
    assert body["count"] == legacy_app.database.data.geometries
    assert [f["id"] for f in body["features"]] == sorted(f["id"] for f in body["features"])
    assert list(body["features"][0]) == ["id", "type", "geometry", "properties"]


def test_projects_keep_their_layer_order_and_privacy(legacy_app: LegacyApp) -> None:
    """Bob sees Alice's public project with its ordered layers, not her private one."""
    data = legacy_app.database.data
    headers = _token(legacy_app, "bob")
    public = httpx.get(
        f"{legacy_app.url}/api/v1/projects/{data.public_project_ids[0]}/", headers=headers
    )
    assert public.status_code == 200
    assert public.json()["layers"] == list(reversed(data.layer_ids[:3]))
    assert public.json()["center"] == {"type": "Point", "coordinates": [10.5, 45.25]}
    private = httpx.get(
        f"{legacy_app.url}/api/v1/projects/{data.private_project_ids[0]}/", headers=headers
    )
    assert private.status_code == 404
