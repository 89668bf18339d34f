"""/api/v1/tiles/: a source's vector tiles from the real Martin process, and its TileJSON."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest
from fastapi import FastAPI

from api.auth.tile_tokens import issue_tile_token
from api.main import create_app
from api.settings import ApiSettings
from core.settings import Settings
from tests.api.conftest import Account
from tests.conftest import Stack, free_port
from tests.tiling import Martin, drop_source, import_sample

Conn = psycopg.Connection[tuple[object, ...]]
TILES = "/api/v1/tiles"
# Martin's default buffer: features this close outside the tile are in it too.
ENVELOPE = "ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096), 4326)"


@pytest.fixture(scope="module")
def martin(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Martin]:
    """Martin over the test database, for this module."""
    server = Martin(
        database_url=database_url, port=free_port(), workdir=tmp_path_factory.mktemp("martin")
    ).start()
    yield server
    server.stop()


async def _client_of(application: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture(scope="module")
async def tiles(martin: Martin) -> AsyncIterator[httpx.AsyncClient]:
    """The REST API in-process, fetching its tiles from the module's Martin."""
    async for http in _client_of(create_app(Settings(), ApiSettings(martin_url=martin.url))):
        yield http


def _source(db: Conn, sid: str = "src_tiles") -> int:
    row = db.execute(
        "INSERT INTO core_source (sid, name, source_type) VALUES (%s, %s, 'geojson') RETURNING id",
        (sid, sid),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.fixture
def paris(db: Conn) -> int:
    """A source of one point, Paris, with two attributes."""
    source_id = _source(db)
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) VALUES "
        "(ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326), "
        """'{"city": "Paris", "population": 2100000}', 'Point', %s)""",
        (source_id,),
    )
    return source_id


# The zoom-4 tile holding Paris, and one in the South Pacific.
PARIS_TILE = (4, 8, 5)
EMPTY_TILE = (4, 1, 10)


def _url(source: int | str, tile: tuple[int, int, int]) -> str:
    return f"{TILES}/{source}/{tile[0]}/{tile[1]}/{tile[2]}.mvt"


async def test_a_tile_of_an_imported_source_holds_the_features_it_intersects(
    tiles: httpx.AsyncClient, stack: Stack, alice: Account, db: Conn, database_url: str
) -> None:
    source_id = import_sample(stack, alice.headers, "cities.zip")
    try:
        await _check_imported_tiles(tiles, alice, db, source_id)
    finally:
        drop_source(database_url, source_id)


async def _check_imported_tiles(
    tiles: httpx.AsyncClient, alice: Account, db: Conn, source_id: int
) -> None:
    total = db.execute("SELECT count(*) FROM core_geometry WHERE source_id = %s", (source_id,))
    for tile in [(0, 0, 0), (2, 2, 1), (3, 4, 2)]:
        rows = db.execute(
            f"SELECT gid, metadata, geometry_type FROM core_geometry "
            f"WHERE source_id = %s AND ST_Intersects(geom, {ENVELOPE})",
            (source_id, *tile),
        ).fetchall()
        response = await tiles.get(_url(source_id, tile), headers=alice.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-protobuf"
        layer = mapbox_vector_tile.decode(response.content)["core_geometry"]
        decoded = {feature["id"]: feature for feature in layer["features"]}
        assert rows and set(decoded) == {row[0] for row in rows}
        for gid, metadata, geometry_type in rows:
            assert isinstance(metadata, dict)
            feature = decoded[gid]
            assert feature["geometry"]["type"] == geometry_type
            expected: dict[str, Any] = {
                **{k: v for k, v in metadata.items() if v is not None},
                "geometry_type": geometry_type,
                "source_id": source_id,
            }
            assert feature["properties"] == pytest.approx(expected)
    # zoom 3's tile holds only some of the 200 cities: the tile really is filtered
    count = total.fetchone()
    assert count is not None and len(rows) < int(str(count[0]))


async def test_lines_and_polygons_are_clipped_and_keep_their_attributes(
    tiles: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    source_id = _source(db, "src_shapes")
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) VALUES "
        "(ST_GeomFromText('LINESTRING(-20 10, 20 10.5, 40 30)', 4326), "
        """'{"road": "long"}', 'LineString', %s),"""
        "(ST_GeomFromText('POLYGON((1 1, 60 1, 60 60, 1 60, 1 1))', 4326), "
        """'{"parcel": "big"}', 'Polygon', %s)""",
        (source_id, source_id),
    )
    response = await tiles.get(_url(source_id, (2, 2, 1)), headers=alice.headers)
    assert response.status_code == 200
    features = mapbox_vector_tile.decode(response.content)["core_geometry"]["features"]
    kinds = {f["properties"].get("road") or f["properties"]["parcel"]: f for f in features}
    assert set(kinds) == {"long", "big"}
    assert kinds["big"]["geometry"]["type"] == "Polygon"
    assert kinds["long"]["geometry"]["type"] == "LineString"
    # clipped to the tile and its 64-unit buffer (y grows downwards in mapbox-vector-tile's
    # default y-up frame too: the bound holds either way)
    for feature in features:
        coords = feature["geometry"]["coordinates"]
        flat = coords[0] if feature["geometry"]["type"] == "Polygon" else coords
        assert all(-64 <= x <= 4096 + 64 and -64 <= y <= 4096 + 64 for x, y in flat)


async def test_an_empty_tile_is_204(tiles: httpx.AsyncClient, alice: Account, paris: int) -> None:
    response = await tiles.get(_url(paris, EMPTY_TILE), headers=alice.headers)
    assert response.status_code == 204 and response.content == b""


async def test_a_tile_by_sid_and_its_etag(
    tiles: httpx.AsyncClient, alice: Account, paris: int
) -> None:
    first = await tiles.get(_url("src_tiles", PARIS_TILE), headers=alice.headers)
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("private, max-age=")
    etag = first.headers["etag"]
    again = await tiles.get(
        _url(paris, PARIS_TILE), headers={**alice.headers, "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.headers["etag"] == etag
    other = await tiles.get(
        _url(paris, PARIS_TILE), headers={**alice.headers, "If-None-Match": '"nope"'}
    )
    assert other.status_code == 200 and other.content == first.content


async def test_gzip_is_passed_through(tiles: httpx.AsyncClient, alice: Account, paris: int) -> None:
    response = await tiles.get(
        _url(paris, PARIS_TILE), headers={**alice.headers, "Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert b"Paris" in response.content  # httpx decompressed what Martin compressed


async def test_without_a_token_the_answer_is_401(tiles: httpx.AsyncClient, paris: int) -> None:
    for url in (_url(paris, PARIS_TILE), f"{TILES}/{paris}.json"):
        response = await tiles.get(url)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "detail" in response.json()


async def test_a_revoked_token_is_refused(
    tiles: httpx.AsyncClient, alice: Account, paris: int
) -> None:
    assert (await tiles.get(_url(paris, PARIS_TILE), headers=alice.headers)).status_code == 200
    logout = await tiles.post("/api/v1/auth/logout", headers=alice.headers)
    assert logout.status_code in (200, 204)
    assert (await tiles.get(_url(paris, PARIS_TILE), headers=alice.headers)).status_code == 401


async def test_an_unknown_source_is_404(tiles: httpx.AsyncClient, alice: Account) -> None:
    for source in ("999999", "src_nobody"):
        response = await tiles.get(_url(source, PARIS_TILE), headers=alice.headers)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    response = await tiles.get(f"{TILES}/999999.json", headers=alice.headers)
    assert response.status_code == 404


async def test_coordinates_outside_the_pyramid_are_400(
    tiles: httpx.AsyncClient, alice: Account, paris: int
) -> None:
    for tile in [(4, 16, 0), (23, 0, 0), (2, 0, 4)]:
        response = await tiles.get(_url(paris, tile), headers=alice.headers)
        assert response.status_code == 400, response.text


async def test_tilejson_points_at_the_route_with_a_tile_token(
    tiles: httpx.AsyncClient, alice: Account, paris: int
) -> None:
    response = await tiles.get(f"{TILES}/{paris}.json", headers=alice.headers)
    assert response.status_code == 200
    doc = response.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["bounds"] == pytest.approx([2.35, 48.85, 2.35, 48.85])
    assert doc["vector_layers"][0]["id"] == "core_geometry"
    (template,) = doc["tiles"]
    assert template.startswith(f"http://testserver{TILES}/{paris}/{{z}}/{{x}}/{{y}}.mvt?token=")
    assert doc["tile_token_expires_at"] > time.time()
    z, x, y = PARIS_TILE
    url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    with_token = await tiles.get(url)  # no Authorization header
    assert with_token.status_code == 200 and b"Paris" in with_token.content
    # the TileJSON through the tile token hands the same token back: it never extends itself
    again = await tiles.get(f"{TILES}/{paris}.json", params={"token": doc["tile_token"]})
    assert again.status_code == 200
    assert (again.json()["tile_token"], again.json()["tile_token_expires_at"]) == (
        doc["tile_token"],
        doc["tile_token_expires_at"],
    )


async def test_tile_tokens_are_for_one_source_and_expire(
    tiles: httpx.AsyncClient, alice: Account, paris: int, db: Conn
) -> None:
    other = _source(db, "src_other")
    secret = Settings().auth.secret_key
    url = _url(paris, PARIS_TILE)

    def token(source_id: int, ttl: int, key: str = secret) -> dict[str, str]:
        made = issue_tile_token(secret=key, user_id=alice.id, source_id=source_id, ttl_seconds=ttl)
        return {"token": made.token}

    assert (await tiles.get(url, params=token(paris, 60))).status_code == 200
    for params in (
        token(other, 60),
        token(paris, -10),
        token(paris, 60, "another secret, long enough for HS256 keys"),
    ):
        refused = await tiles.get(url, params=params)
        assert refused.status_code == 401, params
        assert refused.json() == {"detail": "Invalid or expired tile token."}
    # an access token is not a tile token, nor a tile token an access token
    assert (await tiles.get(url, params={"token": alice.token})).status_code == 401
    bearer = {"Authorization": f"Bearer {token(paris, 60)['token']}"}
    assert (await tiles.get(url, headers=bearer)).status_code == 401


async def test_when_martin_is_stopped_the_answer_is_503(
    database_url: str, tmp_path: Path, alice: Account, paris: int
) -> None:
    own = Martin(database_url=database_url, port=free_port(), workdir=tmp_path).start()
    try:
        app = create_app(Settings(), ApiSettings(martin_url=own.url))
        async for http in _client_of(app):
            assert (
                await http.get(_url(paris, PARIS_TILE), headers=alice.headers)
            ).status_code == 200
            own.stop()
            response = await http.get(_url(paris, PARIS_TILE), headers=alice.headers)
            assert response.status_code == 503
            assert "tile server is not available" in response.json()["detail"]
    finally:
        own.stop()
