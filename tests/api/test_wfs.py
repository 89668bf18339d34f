"""GET /api/v1/wfs/: djangorestframework-gis's paginated FeatureCollection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from api.services.wfs import FeatureFilter
from api.state import Resources
from tests.api.conftest import Account

WFS = "/api/v1/wfs/"
Conn = psycopg.Connection[tuple[object, ...]]


def add_source(db: Conn, sid: str, name: str = "s") -> int:
    row = db.execute(
        "INSERT INTO core_source (sid, name, source_type) VALUES (%s, %s, 'geojson') RETURNING id",
        (sid, name),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def add_feature(db: Conn, source_id: int, wkt: str | None, metadata: dict[str, Any]) -> int:
    row = db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) "
        "VALUES (ST_GeomFromText(%s, 4326), %s, "
        "replace(ST_GeometryType(ST_GeomFromText(%s)), 'ST_', ''), %s) "
        "RETURNING gid",
        (wkt, json.dumps(metadata), wkt, source_id),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.fixture
def world(db: Conn) -> dict[str, int]:
    """Two sources: three points in `a`, a polygon and a null geometry in `b`."""
    a, b = add_source(db, "src_a"), add_source(db, "src_b")
    return {
        "a": a,
        "b": b,
        "p1": add_feature(db, a, "POINT(1 1)", {"name": "one", "n": 1}),
        "p2": add_feature(db, a, "POINT(5 5)", {"name": "two", "n": 2}),
        "p3": add_feature(db, a, "POINT(-20 30.5)", {"name": "three", "n": 3}),
        "poly": add_feature(db, b, "POLYGON((0 0,2 0,2 2,0 2,0 0))", {"kind": "square"}),
        "null": add_feature(db, b, None, {"kind": "nothing"}),
    }


async def get(client: httpx.AsyncClient, user: Account, **params: Any) -> httpx.Response:
    return await client.get(WFS, params=params, headers=user.headers)


async def test_feature_collection_shape(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int]
) -> None:
    response = await get(client, alice)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["type", "count", "next", "previous", "features"]
    assert body["type"] == "FeatureCollection"
    assert (body["count"], body["next"], body["previous"]) == (5, None, None)
    first = body["features"][0]
    assert list(first) == ["id", "type", "geometry", "properties"]
    assert first == {
        "id": world["p1"],
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [1, 1]},
        "properties": {"name": "one", "n": 1, "geometry_type": "Point", "source": world["a"]},
    }
    assert [f["id"] for f in body["features"]] == sorted(f["id"] for f in body["features"])
    null = next(f for f in body["features"] if f["id"] == world["null"])
    assert null["geometry"] is None
    assert null["properties"] == {"kind": "nothing", "geometry_type": None, "source": world["b"]}


async def test_empty_collection(client: httpx.AsyncClient, alice: Account) -> None:
    body = (await get(client, alice)).json()
    assert body == {
        "type": "FeatureCollection",
        "count": 0,
        "next": None,
        "previous": None,
        "features": [],
    }


async def test_paging_links(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int]
) -> None:
    page1 = (await get(client, alice, page_size=2, source="src_a")).json()
    assert page1["count"] == 3
    assert [f["id"] for f in page1["features"]] == [world["p1"], world["p2"]]
    assert page1["next"] == "http://testserver/api/v1/wfs/?page=2&page_size=2&source=src_a"
    assert page1["previous"] is None

    page2 = (await client.get(page1["next"], headers=alice.headers)).json()
    assert [f["id"] for f in page2["features"]] == [world["p3"]]
    assert page2["next"] is None
    assert page2["previous"] == "http://testserver/api/v1/wfs/?page_size=2&source=src_a"

    past = await get(client, alice, page_size=2, source="src_a", page=3)
    assert past.status_code == 404
    assert past.json() == {"detail": "Invalid page."}
    for bad in ("0", "x"):
        assert (await get(client, alice, page=bad)).status_code == 404


async def test_page_size_defaults_and_cap(
    client: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    source = add_source(db, "src_many")
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) "
        "SELECT ST_SetSRID(ST_MakePoint(i %% 180, 0), 4326), jsonb_build_object('i', i), "
        "'Point', %s "
        "FROM generate_series(1, 10005) AS i",
        (source,),
    )
    default = (await get(client, alice)).json()
    assert (default["count"], len(default["features"])) == (10005, 1000)
    assert default["next"] == "http://testserver/api/v1/wfs/?page=2"
    capped = (await get(client, alice, page_size=50000)).json()
    assert len(capped["features"]) == 10000
    assert capped["next"] == "http://testserver/api/v1/wfs/?page=2&page_size=50000"
    last = (await get(client, alice, page_size=50000, page=2)).json()
    assert len(last["features"]) == 5
    nonsense = (await get(client, alice, page_size="abc")).json()
    assert len(nonsense["features"]) == 1000


async def test_links_honour_forwarded_headers(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int]
) -> None:
    headers = {
        **alice.headers,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "maps.example.org, proxy.internal",
    }
    response = await client.get(WFS, params={"page_size": 1, "page": 2}, headers=headers)
    body = response.json()
    assert body["next"] == "https://maps.example.org/api/v1/wfs/?page=3&page_size=1"
    assert body["previous"] == "https://maps.example.org/api/v1/wfs/?page_size=1"


async def test_source_by_id_or_sid(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int]
) -> None:
    by_sid = (await get(client, alice, source="src_b")).json()
    by_id = (await get(client, alice, source=str(world["b"]))).json()
    assert [f["id"] for f in by_sid["features"]] == [world["poly"], world["null"]]
    assert by_id == by_sid
    assert (await get(client, alice, source="src_nope")).json()["count"] == 0
    assert (await get(client, alice, source="99999999999")).json()["count"] == 0


@pytest.mark.parametrize("param", ["in_bbox", "bbox"])
async def test_bbox_intersects(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int], param: str
) -> None:
    body = (await get(client, alice, **{param: "0.5,0.5,1.5,1.5"})).json()
    # The point inside and the polygon crossing the box; not the far points or the null one.
    assert sorted(f["id"] for f in body["features"]) == sorted([world["p1"], world["poly"]])
    assert body["count"] == 2
    combined = (
        await get(client, alice, **{param: "-180,-90,180,90"}, geometry_type="Point")
    ).json()
    assert combined["count"] == 3


@pytest.mark.parametrize(
    "bad", ["1,2,3", "a,b,c,d", "1,2,3,4,5", "5,0,1,1", "nan,0,1,1", "0,0,inf,1"]
)
async def test_malformed_bbox_is_400(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int], bad: str
) -> None:
    response = await get(client, alice, in_bbox=bad)
    assert response.status_code == 400
    # djangorestframework-gis's ParseError body.
    assert response.json() == {"detail": "Invalid bbox string supplied for parameter in_bbox"}


async def test_empty_bbox_filters_nothing(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int]
) -> None:
    everything = (await get(client, alice)).json()
    assert (await get(client, alice, in_bbox="")).json()["count"] == everything["count"]


async def test_geometry_type_filter(
    client: httpx.AsyncClient, alice: Account, world: dict[str, int]
) -> None:
    body = (await get(client, alice, geometry_type="Polygon")).json()
    assert [f["id"] for f in body["features"]] == [world["poly"]]
    assert body["features"][0]["geometry"]["type"] == "Polygon"


async def test_wfs_without_slash_redirects(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/api/v1/wfs?page_size=3", headers=alice.headers)
    assert response.status_code == 301
    assert response.headers["location"] == "/api/v1/wfs/?page_size=3"


async def test_source_filter_reads_only_its_partition(
    client: httpx.AsyncClient, alice: Account, db: Conn, resources: Resources
) -> None:
    """The source filter reaches the planner as constants: one source's part is read (and
    part_0, through its source_id index), not all (each part's CHECK names its source)."""
    a, b = add_source(db, "part_a"), add_source(db, "part_b")
    for source, n in ((a, 1), (b, 2)):
        row = db.execute("SELECT nextval('core_geometry_part_seq')").fetchone()
        assert row is not None
        part = int(row[0])
        table = f"core_geometry_parts.wfs_test_{source}"
        db.execute(
            f"CREATE TABLE {table} (LIKE core_geometry INCLUDING DEFAULTS,"
            f" CHECK (source_id = {source} AND part = {part}))"
        )
        db.execute(
            f"INSERT INTO {table} (geom, metadata, source_id, part) VALUES"
            f" (ST_SetSRID(ST_MakePoint({n}, {n}), 4326), '{{\"n\": {n}}}', {source}, {part})"
        )
        db.execute(f"ALTER TABLE core_geometry ATTACH PARTITION {table} FOR VALUES IN ({part})")
    try:
        features = FeatureFilter(source="part_a")
        async with resources.sessionmaker() as session:
            where, params = await features.where(session)
            plan = await session.scalar(
                text(f"EXPLAIN (FORMAT JSON) SELECT * FROM core_geometry WHERE {where}"), params
            )
        scanned = {
            node["Relation Name"]
            for node in _plan_nodes(plan[0]["Plan"])  # type: ignore[index]
            if "Relation Name" in node
        }
        # (Parts left by earlier tests may name the same id: RESTART IDENTITY reuses it.)
        assert {f"wfs_test_{a}", "part_0"} <= scanned and f"wfs_test_{b}" not in scanned
        body = (await get(client, alice, source="part_a")).json()
        assert [f["properties"]["n"] for f in body["features"]] == [1]
    finally:
        for source in (a, b):
            db.execute(f"DROP TABLE core_geometry_parts.wfs_test_{source}")


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)
