"""/api/v1/layers/: CRUD, tile URLs, validation, search and pagination."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.api.conftest import Account

LAYERS = "/api/v1/layers/"
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def source_id(db: Conn) -> int:
    row = db.execute(
        "INSERT INTO core_source (sid, name, source_type) VALUES ('src_l', 'S', 'csv') RETURNING id"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


async def test_create_read_and_tile_url(
    client: httpx.AsyncClient, alice: Account, source_id: int
) -> None:
    response = await client.post(
        LAYERS, json={"name": "Roads", "source": source_id}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    layer = response.json()
    assert list(layer) == [
        "id",
        "name",
        "description",
        "source",
        "layer_type",
        "style",
        "is_visible",
        "tile_url",
        "created_at",
        "updated_at",
    ]
    assert (layer["source"], layer["layer_type"], layer["style"], layer["is_visible"]) == (
        source_id,
        "vector",
        {},
        True,
    )
    assert layer["tile_url"] == f"/api/v1/tiles/{source_id}.json"
    assert layer["created_at"].endswith("Z")
    detail = await client.get(f"{LAYERS}{layer['id']}/", headers=alice.headers)
    assert detail.json() == layer


async def test_tile_url_is_read_only(
    client: httpx.AsyncClient, alice: Account, source_id: int
) -> None:
    response = await client.post(
        LAYERS,
        json={"name": "R", "source": source_id, "tile_url": "http://evil/"},
        headers=alice.headers,
    )
    assert response.json()["tile_url"] == f"/api/v1/tiles/{source_id}.json"


async def test_validation(client: httpx.AsyncClient, alice: Account, source_id: int) -> None:
    response = await client.post(
        LAYERS,
        json={"name": "R", "source": 999, "layer_type": "wms", "is_visible": "maybe"},
        headers=alice.headers,
    )
    assert response.status_code == 400
    assert response.json() == {
        "layer_type": ['"wms" is not a valid choice.'],
        "is_visible": ["Must be a valid boolean."],
    }
    response = await client.post(LAYERS, json={"name": "R", "source": 999}, headers=alice.headers)
    assert response.status_code == 400
    assert response.json() == {"source": ['Invalid pk "999" - object does not exist.']}
    response = await client.post(LAYERS, json={}, headers=alice.headers)
    assert response.json() == {
        "name": ["This field is required."],
        "source": ["This field is required."],
    }


async def test_update_and_delete(
    client: httpx.AsyncClient, alice: Account, bob: Account, source_id: int, db: Conn
) -> None:
    created = (
        await client.post(
            LAYERS,
            json={"name": "R", "source": source_id, "style": {"color": "red"}},
            headers=alice.headers,
        )
    ).json()
    url = f"{LAYERS}{created['id']}/"
    assert (await client.put(url, json={"name": "R2"}, headers=bob.headers)).status_code == 400
    put = await client.put(
        url,
        json={"name": "R2", "source": source_id, "layer_type": "raster", "is_visible": False},
        headers=bob.headers,
    )
    assert put.status_code == 200
    body = put.json()
    assert (body["name"], body["layer_type"], body["is_visible"], body["style"]) == (
        "R2",
        "raster",
        False,
        {"color": "red"},
    )
    patched = await client.patch(url, json={"style": {"width": 2}}, headers=alice.headers)
    assert patched.json()["style"] == {"width": 2}
    assert patched.json()["name"] == "R2"
    bad = await client.patch(url, json={"source": 12345}, headers=alice.headers)
    assert bad.status_code == 400
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert db.execute("SELECT count(*) FROM core_layer").fetchone() == (0,)
    assert (await client.get(url, headers=alice.headers)).json() == {"detail": "Not found."}


async def test_list_search_order_and_pages(
    client: httpx.AsyncClient, alice: Account, source_id: int, db: Conn
) -> None:
    db.execute(
        "INSERT INTO core_layer (name, description, source_id) "
        "SELECT 'Layer ' || lpad(i::text, 2, '0'), CASE WHEN i = 7 THEN 'the lucky one' END, %s "
        "FROM generate_series(1, 60) AS i",
        (source_id,),
    )
    page = (await client.get(LAYERS, headers=alice.headers)).json()
    assert (page["count"], len(page["results"])) == (60, 50)
    assert page["next"] == "http://testserver/api/v1/layers/?page=2"
    found = (await client.get(LAYERS, params={"search": "LUCKY"}, headers=alice.headers)).json()
    assert [r["name"] for r in found["results"]] == ["Layer 07"]
    ordered = (
        await client.get(
            LAYERS, params={"ordering": "-name", "page_size": 2}, headers=alice.headers
        )
    ).json()
    assert [r["name"] for r in ordered["results"]] == ["Layer 60", "Layer 59"]
    assert ordered["next"] == "http://testserver/api/v1/layers/?ordering=-name&page=2&page_size=2"
