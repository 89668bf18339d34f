"""The per-source tile function that Martin publishes (migration 0002)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest


@pytest.fixture
def two_sources(db: psycopg.Connection[Any]) -> Iterator[tuple[int, int]]:
    ids = []
    for sid in ("src_tile_a", "src_tile_b"):
        row = db.execute(
            "INSERT INTO core_source (sid, name, source_type) VALUES (%s, %s, 'shapefile') "
            "RETURNING id",
            (sid, sid),
        ).fetchone()
        assert row is not None
        ids.append(row[0])
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) VALUES "
        "(ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326), '{\"city\": \"Paris\"}', 'Point', %s),"
        "(ST_SetSRID(ST_MakePoint(-0.12, 51.5), 4326), '{\"city\": \"London\"}', 'Point', %s)",
        (ids[0], ids[1]),
    )
    yield ids[0], ids[1]
    db.execute("DELETE FROM core_source WHERE id = ANY(%s)", (ids,))


def tile(db: psycopg.Connection[Any], z: int, x: int, y: int, params: str) -> bytes:
    row = db.execute(
        "SELECT core_geometry_by_source(%s, %s, %s, %s::json)", (z, x, y, params)
    ).fetchone()
    assert row is not None
    return bytes(row[0])


def test_a_tile_holds_only_its_source(
    db: psycopg.Connection[Any], two_sources: tuple[int, int]
) -> None:
    paris, london = two_sources
    mvt = tile(db, 0, 0, 0, f'{{"source_id": "{paris}"}}')
    assert b"core_geometry" in mvt and b"Paris" in mvt and b"London" not in mvt
    assert b"London" in tile(db, 0, 0, 0, f'{{"source_id": "{london}"}}')


def test_no_source_or_a_malformed_one_gives_an_empty_tile(
    db: psycopg.Connection[Any], two_sources: tuple[int, int]
) -> None:
    assert tile(db, 0, 0, 0, "{}") == b""
    assert tile(db, 0, 0, 0, '{"source_id": "1; DROP TABLE core_source"}') == b""
    # Paris is not in the south-western quadrant at zoom 1.
    assert tile(db, 1, 0, 1, f'{{"source_id": "{two_sources[0]}"}}') == b""


def test_lines_are_simplified_at_low_zooms_only(db: psycopg.Connection[Any]) -> None:
    import mapbox_vector_tile

    row = db.execute(
        "INSERT INTO core_source (sid, name, source_type) VALUES ('src_wiggle', 'w', 'csv') "
        "RETURNING id"
    ).fetchone()
    assert row is not None
    source_id = row[0]
    # a 2,000-vertex zigzag 11 m high along 111 m of the equator
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id) "
        "SELECT ST_MakeLine(ST_MakePoint(i / 2000000.0, (i %% 2) * 0.0001) ORDER BY i), "
        "'{\"kind\": \"zigzag\"}', 'LineString', %s FROM generate_series(0, 2000) AS i",
        (source_id,),
    )
    params = f'{{"source_id": "{source_id}"}}'
    try:

        def vertices(z: int, x: int, y: int) -> int:
            layer = mapbox_vector_tile.decode(tile(db, z, x, y, params))["core_geometry"]
            (feature,) = layer["features"]
            assert feature["properties"] == {
                "kind": "zigzag", "geometry_type": "LineString", "source_id": source_id
            }  # fmt: skip
            coords = feature["geometry"]["coordinates"]
            return (
                len(coords)
                if feature["geometry"]["type"] == "LineString"
                else sum(len(part) for part in coords)
            )

        # a tile unit (a 4096th of the tile) is 19 m at zoom 9: the zigzag is a straight
        # line there; at zoom 18 it is 4 cm, and every turn shows
        low, high = vertices(9, 256, 255), vertices(18, 131072, 131071)
        assert low <= 3 and high > 100
    finally:
        db.execute("DELETE FROM core_source WHERE id = %s", (source_id,))


def test_the_function_asks_for_custom_plans(db: psycopg.Connection[Any]) -> None:
    row = db.execute(
        "SELECT proconfig FROM pg_proc WHERE proname = 'core_geometry_by_source'"
    ).fetchone()
    assert row is not None and row[0] == ["plan_cache_mode=force_custom_plan"]
