"""Migrations 0003-0005 on a database with data: existing rows move into one partition
per source (0003), then each becomes a part of its own in place (0005; the DEFAULT
partition becomes part_0), loads then add parts (chunked ones too), and the downgrades
put every row back: into one partition per source (0004), then one plain table."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
from psycopg import sql

from core.database import make_sync_engine
from core.settings import REPO_ROOT, DatabaseSettings
from pipeline.steps import load, stage
from pipeline.tasks import new_sid
from tests.conftest import TEST_DATABASE_URL
from tests.pipeline.conftest import write_shapefile


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """An empty database of its own (migrated up and down by the test)."""
    admin, _, name = TEST_DATABASE_URL.rpartition("/")
    scratch = f"{name}_partitions"
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(scratch)
        ))  # fmt: skip
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    yield f"{admin}/{scratch}"
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )


def alembic(url: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "-x", f"url={url}",
         *args],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _rows(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT gid, source_id, geometry_type, metadata FROM core_geometry ORDER BY gid"
    ).fetchall()


def _layout(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'core_geometry'::regclass ORDER BY 1"
    ).fetchall()


def test_existing_rows_become_parts_in_place_and_go_back(scratch_url: str, tmp_path: Path) -> None:
    alembic(scratch_url, "upgrade", "0002")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for sid in ("src_a", "src_b", "src_c"):
            conn.execute(
                "INSERT INTO core_source (sid, name, source_type) VALUES (%s, %s, 'shapefile')",
                (sid, sid),
            )
        conn.execute(
            "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id)"
            " SELECT ST_SetSRID(ST_MakePoint(i, i), 4326), jsonb_build_object('i', i), 'Point',"
            " 1 + i % 2 FROM generate_series(1, 50) AS i"
        )
    alembic(scratch_url, "upgrade", "0004")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        # A plain INSERT for a source without a partition: the DEFAULT partition's.
        conn.execute(
            "INSERT INTO core_geometry (geom, source_id)"
            " VALUES (ST_SetSRID(ST_MakePoint(0, 0), 4326), 3)"
        )
        assert _layout(conn) == [
            ("source_1", "FOR VALUES IN (1)"),
            ("source_2", "FOR VALUES IN (2)"),
            ("source_default", "DEFAULT"),
        ]
        before = _rows(conn)

    alembic(scratch_url, "upgrade", "head")

    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert _rows(conn) == before
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'core_geometry'::regclass AND contype = 'p'"
        ).fetchone()
        assert key == ("PRIMARY KEY (gid, part)",)
        assert _layout(conn) == [
            ("part_0", "FOR VALUES IN (0)"),
            ("part_1", "FOR VALUES IN (1)"),
            ("part_2", "FOR VALUES IN (2)"),
        ]
        catalog = conn.execute(
            "SELECT name, parts, sources, rows FROM core_geometry_parts.catalog ORDER BY name"
        ).fetchall()
        assert catalog == [("part_1", [1], [1], 25), ("part_2", [2], [2], 25)]
        placed = conn.execute(
            "SELECT source_id, part, count(*) FROM core_geometry GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        assert placed == [(1, 1, 25), (2, 2, 25), (3, 0, 1)]
        # A plain INSERT now lands in part_0, whatever the source; gids go on.
        conn.execute(
            "INSERT INTO core_geometry (geom, source_id)"
            " VALUES (ST_SetSRID(ST_MakePoint(0, 0), 4326), 1)"
        )
        assert conn.execute("SELECT max(gid), max(part) FROM core_geometry").fetchone() == (
            52, 2
        )  # fmt: skip
        indexed = conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
            " WHERE c.relname IN ('core_geometry', 'part_0', 'part_1')"
            " AND pg_get_indexdef(i.indexrelid) LIKE '%(source_id)'"
        ).fetchall()
        assert indexed == [("part_0",)]

    engine = make_sync_engine(DatabaseSettings(database_url=scratch_url))
    try:
        many = gpd.GeoDataFrame(
            {"n": range(5000)},
            geometry=shapely.points([i % 170 for i in range(5000)], [i % 80 for i in range(5000)]),
            crs="EPSG:4326",
        )
        shp = write_shapefile(many, tmp_path / "pts", "pts")
        staged = stage.run(source=shp, destination=tmp_path / "pts.parquet", row_group_rows=2048)
        loaded = load.run(  # built in chunks: a part partitioned again, by gid
            engine=engine,
            path=staged.path,
            sid=new_sid(),
            name="loaded",
            source_type="shapefile",
            attributes={},
            parallelism=2,
            parallel_min_rows=1,
        )
    finally:
        engine.dispose()
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        after_load = _rows(conn)
        chunks = conn.execute(
            "SELECT count(*) FROM pg_inherits"
            " WHERE inhparent = 'core_geometry_parts.part_3'::regclass"
        ).fetchone()
        assert conn.execute(
            "SELECT sources FROM core_geometry_parts.catalog WHERE name = 'part_3'"
        ).fetchone() == ([loaded.source_id],)
    assert chunks == (2,)
    assert len(after_load) == 52 + 5000

    alembic(scratch_url, "downgrade", "0004")

    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert _rows(conn) == after_load
        assert _layout(conn) == [
            ("source_1", "FOR VALUES IN (1)"),
            ("source_2", "FOR VALUES IN (2)"),
            ("source_3", "FOR VALUES IN (3)"),
            (f"source_{loaded.source_id}", f"FOR VALUES IN ({loaded.source_id})"),
            ("source_default", "DEFAULT"),
        ]

    alembic(scratch_url, "downgrade", "0002")

    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert _rows(conn) == after_load
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'core_geometry'")
        assert kind.fetchone() == ("r",)
        schema = conn.execute("SELECT to_regnamespace('core_geometry_parts')").fetchone()
        assert schema == (None,)
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'core_geometry'::regclass AND contype = 'p'"
        ).fetchone()
        assert key == ("PRIMARY KEY (gid)",)

    alembic(scratch_url, "upgrade", "head")
