"""/api/v1/sources/: CRUD, computed fields, search, ordering, pagination."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import psycopg

from tests.api.conftest import Account

SOURCES = "/api/v1/sources/"
Conn = psycopg.Connection[tuple[object, ...]]
DRF_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def create(client: httpx.AsyncClient, user: Account, **fields: object) -> dict[str, object]:
    body = {"name": "Roads", "source_type": "shapefile", **fields}
    response = await client.post(SOURCES, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


async def test_create_and_read(client: httpx.AsyncClient, alice: Account, db: Conn) -> None:
    created = await create(client, alice, description="All roads", attributes={"crs": "EPSG:4326"})
    assert list(created) == [
        "id",
        "sid",
        "name",
        "description",
        "source_type",
        "attributes",
        "feature_count",
        "bbox",
        "created_at",
        "updated_at",
    ]
    assert isinstance(created["id"], int)
    assert re.fullmatch(r"src_[0-9a-f]{16}", str(created["sid"]))
    assert created["feature_count"] == 0 and created["bbox"] is None
    assert created["attributes"] == {"crs": "EPSG:4326"}
    for key in ("created_at", "updated_at"):
        assert DRF_TIMESTAMP.match(str(created[key])), created[key]
    row = db.execute(
        "SELECT sid, name, description, source_type, attributes FROM core_source WHERE id = %s",
        (created["id"],),
    ).fetchone()
    assert row == (created["sid"], "Roads", "All roads", "shapefile", {"crs": "EPSG:4326"})

    detail = await client.get(f"{SOURCES}{created['id']}/", headers=alice.headers)
    assert detail.status_code == 200
    assert detail.json() == created


async def test_feature_count_and_bbox_come_from_geometries(
    client: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    source = await create(client, alice, sid="src_pts")
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) VALUES "
        "(ST_GeomFromText('POINT(-3 40)', 4326), '{}', 'Point', %(id)s), "
        "(ST_GeomFromText('POINT(2.5 51)', 4326), '{}', 'Point', %(id)s), "
        "(NULL, '{}', NULL, %(id)s)",
        {"id": source["id"]},
    )
    body = (await client.get(f"{SOURCES}{source['id']}/", headers=alice.headers)).json()
    assert body["feature_count"] == 3
    assert body["bbox"] == [-3.0, 40.0, 2.5, 51.0]
    listed = (await client.get(SOURCES, headers=alice.headers)).json()
    assert listed["results"][0]["feature_count"] == 3


async def test_validation_errors(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(SOURCES, json={"name": "  "}, headers=alice.headers)
    assert response.status_code == 400
    assert response.json() == {
        "name": ["This field may not be blank."],
        "source_type": ["This field is required."],
    }
    response = await client.post(
        SOURCES,
        json={"name": "x" * 256, "source_type": "kml", "attributes": None},
        headers=alice.headers,
    )
    assert response.status_code == 400
    assert response.json() == {
        "name": ["Ensure this field has no more than 255 characters."],
        "source_type": ['"kml" is not a valid choice.'],
        "attributes": ["This field may not be null."],
    }
    broken = await client.post(
        SOURCES,
        content=b"{not json",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error")


async def test_duplicate_sid(client: httpx.AsyncClient, alice: Account) -> None:
    await create(client, alice, sid="src_same")
    response = await client.post(
        SOURCES, json={"sid": "src_same", "name": "B", "source_type": "csv"}, headers=alice.headers
    )
    assert response.status_code == 400
    assert response.json() == {"sid": ["source with this sid already exists."]}


async def test_put_requires_all_fields_and_patch_is_partial(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    source = await create(client, alice, description="first")
    url = f"{SOURCES}{source['id']}/"
    incomplete = await client.put(url, json={"name": "Only name"}, headers=alice.headers)
    assert incomplete.status_code == 400
    assert incomplete.json() == {"source_type": ["This field is required."]}

    # Sources are shared: another user may change them.
    replaced = await client.put(
        url, json={"name": "Rivers", "source_type": "geojson"}, headers=bob.headers
    )
    assert replaced.status_code == 200
    body = replaced.json()
    assert (body["name"], body["source_type"], body["sid"]) == (
        "Rivers",
        "geojson",
        source["sid"],
    )
    assert datetime.fromisoformat(body["updated_at"]) >= datetime.fromisoformat(
        str(source["updated_at"])
    )

    patched = await client.patch(url, json={"description": None}, headers=alice.headers)
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["description"]) == ("Rivers", None)
    refused = await client.patch(url, json={"name": None}, headers=alice.headers)
    assert refused.status_code == 400
    assert refused.json() == {"name": ["This field may not be null."]}
    ignored = await client.patch(url, json={"feature_count": 99, "id": 5}, headers=alice.headers)
    assert (ignored.json()["feature_count"], ignored.json()["id"]) == (0, source["id"])


async def test_delete_removes_geometries_and_layers(
    client: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    source = await create(client, alice)
    other = await create(client, alice, name="Other")
    for sid in (source["id"], other["id"]):
        db.execute(
            "INSERT INTO core_geometry (geom, metadata, source_id) "
            "VALUES (ST_GeomFromText('POINT(0 0)', 4326), '{}', %s)",
            (sid,),
        )
    db.execute("INSERT INTO core_layer (name, source_id) VALUES ('L', %s)", (source["id"],))
    response = await client.delete(f"{SOURCES}{source['id']}/", headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""
    counts = db.execute(
        "SELECT (SELECT count(*) FROM core_geometry WHERE source_id = %(a)s), "
        "(SELECT count(*) FROM core_layer), "
        "(SELECT count(*) FROM core_geometry WHERE source_id = %(b)s)",
        {"a": source["id"], "b": other["id"]},
    ).fetchone()
    assert counts == (0, 0, 1)
    again = await client.delete(f"{SOURCES}{source['id']}/", headers=alice.headers)
    assert again.status_code == 404
    assert again.json() == {"detail": "Not found."}


async def test_missing_and_malformed_ids_are_404(client: httpx.AsyncClient, alice: Account) -> None:
    for path in (f"{SOURCES}999/", f"{SOURCES}abc/"):
        for method in ("GET", "PATCH", "DELETE"):
            response = await client.request(method, path, json={}, headers=alice.headers)
            assert response.status_code == 404, (method, path)
            assert response.json() == {"detail": "Not found."}


async def test_pagination(client: httpx.AsyncClient, alice: Account, db: Conn) -> None:
    db.execute(
        "INSERT INTO core_source (sid, name, source_type) "
        "SELECT 'src_' || i, 'Source ' || lpad(i::text, 3, '0'), 'csv' "
        "FROM generate_series(1, 120) AS i"
    )
    first = (await client.get(SOURCES, headers=alice.headers)).json()
    assert list(first) == ["count", "next", "previous", "results"]
    assert (first["count"], len(first["results"]), first["previous"]) == (120, 50, None)
    assert first["next"] == "http://testserver/api/v1/sources/?page=2"

    third = await client.get(SOURCES, params={"page": 3, "search": "Source"}, headers=alice.headers)
    body = third.json()
    assert len(body["results"]) == 20
    assert body["next"] is None
    assert body["previous"] == "http://testserver/api/v1/sources/?page=2&search=Source"

    big = (await client.get(SOURCES, params={"page_size": 5000}, headers=alice.headers)).json()
    assert len(big["results"]) == 120
    small = (await client.get(SOURCES, params={"page_size": 7}, headers=alice.headers)).json()
    assert len(small["results"]) == 7
    for page in ("4", "0", "-1", "two"):
        response = await client.get(SOURCES, params={"page": page}, headers=alice.headers)
        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid page."}
    last = (await client.get(SOURCES, params={"page": "last"}, headers=alice.headers)).json()
    assert len(last["results"]) == 20


async def test_empty_list_first_page(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get(SOURCES, headers=alice.headers)
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


async def test_search_and_ordering(client: httpx.AsyncClient, alice: Account) -> None:
    await create(client, alice, name="Alpha roads", description="paved")
    await create(client, alice, name="Beta rivers", description="Blue WATER", source_type="csv")
    await create(client, alice, name="Gamma", description=None, source_type="geojson")

    async def names(**params: str) -> list[str]:
        body = (await client.get(SOURCES, params=params, headers=alice.headers)).json()
        return [r["name"] for r in body["results"]]

    assert await names(search="water") == ["Beta rivers"]
    assert await names(search="roads") == ["Alpha roads"]
    assert await names(search="beta blue") == ["Beta rivers"]
    assert await names(search="beta paved") == []
    assert await names(search="%") == []
    assert await names(ordering="-name") == ["Gamma", "Beta rivers", "Alpha roads"]
    assert await names(ordering="source_type") == ["Beta rivers", "Gamma", "Alpha roads"]
    assert await names(ordering="nonsense,-id") == ["Gamma", "Beta rivers", "Alpha roads"]
    assert await names(ordering="password") == ["Alpha roads", "Beta rivers", "Gamma"]
