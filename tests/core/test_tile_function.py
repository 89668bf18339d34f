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
