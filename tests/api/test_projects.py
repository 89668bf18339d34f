"""/api/v1/projects/: ownership, public read-only access, superusers, ordered layers."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.api.conftest import Account, MakeAccount

PROJECTS = "/api/v1/projects/"
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def layer_ids(db: Conn) -> list[int]:
    source = db.execute(
        "INSERT INTO core_source (sid, name, source_type) VALUES ('src_p', 'S', 'csv') RETURNING id"
    ).fetchone()
    assert source is not None
    rows = db.execute(
        "INSERT INTO core_layer (name, source_id) SELECT 'L' || i, %s "
        "FROM generate_series(1, 3) AS i RETURNING id",
        (source[0],),
    ).fetchall()
    return [int(str(r[0])) for r in rows]


async def create(client: httpx.AsyncClient, user: Account, **fields: object) -> dict[str, object]:
    response = await client.post(PROJECTS, json={"name": "Map", **fields}, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_with_center_and_ordered_layers(
    client: httpx.AsyncClient, alice: Account, layer_ids: list[int], db: Conn
) -> None:
    order = [layer_ids[2], layer_ids[0], layer_ids[1]]
    project = await create(
        client, alice, center=[-3.7038, 40.4168], zoom=11.5, layers=order, description="d"
    )
    assert list(project) == [
        "id",
        "name",
        "description",
        "owner",
        "is_public",
        "center",
        "zoom",
        "layers",
        "created_at",
        "updated_at",
    ]
    assert project["owner"] == alice.id
    assert project["is_public"] is False
    # Written as a bare pair, answered as djangorestframework-gis renders a PointField.
    assert project["center"] == {"type": "Point", "coordinates": [-3.7038, 40.4168]}
    assert project["zoom"] == 11.5
    assert project["layers"] == order
    stored = db.execute(
        "SELECT layer_id, position FROM core_project_layers WHERE project_id = %s "
        "ORDER BY position",
        (project["id"],),
    ).fetchall()
    assert stored == [(lid, i) for i, lid in enumerate(order)]
    center = db.execute(
        "SELECT ST_X(center), ST_Y(center), ST_SRID(center) FROM core_project WHERE id = %s",
        (project["id"],),
    ).fetchone()
    assert center == (-3.7038, 40.4168, 4326)
    detail = await client.get(f"{PROJECTS}{project['id']}/", headers=alice.headers)
    assert detail.json() == project


async def test_owner_cannot_be_set(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    project = await create(client, alice, owner=bob.id)
    assert project["owner"] == alice.id


async def test_layers_can_be_reordered_and_cleared(
    client: httpx.AsyncClient, alice: Account, layer_ids: list[int]
) -> None:
    project = await create(client, alice, layers=layer_ids)
    url = f"{PROJECTS}{project['id']}/"
    reordered = await client.patch(url, json={"layers": layer_ids[::-1]}, headers=alice.headers)
    assert reordered.json()["layers"] == layer_ids[::-1]
    renamed = await client.patch(url, json={"name": "Renamed"}, headers=alice.headers)
    assert renamed.json()["layers"] == layer_ids[::-1]
    cleared = await client.patch(url, json={"layers": [], "center": None}, headers=alice.headers)
    assert (cleared.json()["layers"], cleared.json()["center"]) == ([], None)


async def test_validation(client: httpx.AsyncClient, alice: Account, layer_ids: list[int]) -> None:
    response = await client.post(
        PROJECTS,
        json={"name": "M", "center": [200, 0], "layers": [layer_ids[0], 999]},
        headers=alice.headers,
    )
    assert response.status_code == 400
    assert response.json() == {"center": ["Ensure this value is less than or equal to 180."]}
    response = await client.post(
        PROJECTS, json={"name": "M", "layers": [layer_ids[0], 999]}, headers=alice.headers
    )
    assert response.status_code == 400
    assert response.json() == {"layers": ['Invalid pk "999" - object does not exist.']}
    response = await client.post(
        PROJECTS, json={"name": "M", "layers": [layer_ids[0], layer_ids[0]]}, headers=alice.headers
    )
    assert response.status_code == 400
    assert list(response.json()) == ["layers"]
    response = await client.post(PROJECTS, json={"center": [1]}, headers=alice.headers)
    assert set(response.json()) == {"name", "center"}


async def test_visibility_and_permissions(
    client: httpx.AsyncClient, alice: Account, bob: Account, make_account: MakeAccount
) -> None:
    private = await create(client, alice, name="Private")
    public = await create(client, alice, name="Public", is_public=True)
    own = await create(client, bob, name="Bob's")

    listed = (await client.get(PROJECTS, headers=bob.headers)).json()
    assert [p["name"] for p in listed["results"]] == ["Public", "Bob's"]
    assert listed["count"] == 2

    private_url, public_url = f"{PROJECTS}{private['id']}/", f"{PROJECTS}{public['id']}/"
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        hidden = await client.request(method, private_url, json={"name": "x"}, headers=bob.headers)
        assert hidden.status_code == 404, method
        assert hidden.json() == {"detail": "Not found."}
    assert (await client.get(public_url, headers=bob.headers)).status_code == 200
    for method in ("PUT", "PATCH", "DELETE"):
        denied = await client.request(method, public_url, json={"name": "x"}, headers=bob.headers)
        assert denied.status_code == 403, method
        assert denied.json() == {"detail": "You do not have permission to perform this action."}
    assert (await client.get(public_url, headers=bob.headers)).json()["name"] == "Public"

    root = await make_account("root@example.com", superuser=True)
    everything = (await client.get(PROJECTS, headers=root.headers)).json()
    assert everything["count"] == 3
    edited = await client.patch(private_url, json={"is_public": True}, headers=root.headers)
    assert edited.status_code == 200
    assert edited.json()["owner"] == alice.id
    assert (await client.delete(f"{PROJECTS}{own['id']}/", headers=root.headers)).status_code == 204


async def test_owner_updates_and_deletes(client: httpx.AsyncClient, alice: Account) -> None:
    project = await create(client, alice, description="keep", zoom=3)
    url = f"{PROJECTS}{project['id']}/"
    missing = await client.put(url, json={"description": "no name"}, headers=alice.headers)
    assert missing.status_code == 400
    assert missing.json() == {"name": ["This field is required."]}
    replaced = await client.put(url, json={"name": "New", "is_public": True}, headers=alice.headers)
    body = replaced.json()
    assert (body["name"], body["is_public"], body["description"], body["zoom"]) == (
        "New",
        True,
        "keep",
        3.0,
    )
    deleted = await client.delete(url, headers=alice.headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(url, headers=alice.headers)).status_code == 404


async def test_search_ordering_pagination(client: httpx.AsyncClient, alice: Account) -> None:
    for name in ("Zeta", "Alpha", "Mu"):
        await create(client, alice, name=name, description=f"about {name.lower()}")
    body = (
        await client.get(
            PROJECTS, params={"ordering": "name", "page_size": 2}, headers=alice.headers
        )
    ).json()
    assert [p["name"] for p in body["results"]] == ["Alpha", "Mu"]
    assert body["next"] == "http://testserver/api/v1/projects/?ordering=name&page=2&page_size=2"
    found = (await client.get(PROJECTS, params={"search": "ZETA"}, headers=alice.headers)).json()
    assert [p["name"] for p in found["results"]] == ["Zeta"]


async def test_center_written_as_geojson_point(
    client: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    point = {"type": "Point", "coordinates": [2.3522, 48.8566]}
    project = await create(client, alice, center=point)
    assert project["center"] == point
    stored = db.execute(
        "SELECT ST_X(center), ST_Y(center) FROM core_project WHERE id = %s", (project["id"],)
    ).fetchone()
    assert stored == (2.3522, 48.8566)
    bad = await client.post(
        PROJECTS, json={"name": "M", "center": {"type": "LineString", "coordinates": [0, 0]}},
        headers=alice.headers,
    )  # fmt: skip
    assert bad.status_code == 400
    assert list(bad.json()) == ["center"]
