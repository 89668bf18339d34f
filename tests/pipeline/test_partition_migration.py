"""Migration 0003 on a database with data: existing rows move into one partition per
source (gids kept), loads then add partitions (chunked ones too), and the downgrade
puts every row back into one plain table."""

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


def test_existing_rows_move_into_partitions_and_back(scratch_url: str, tmp_path: Path) -> None:
    alembic(scratch_url, "upgrade", "0002")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for sid in ("src_a", "src_b"):
            conn.execute(
                "INSERT INTO core_source (sid, name, source_type) VALUES (%s, %s, 'shapefile')",
                (sid, sid),
            )
        conn.execute(
            "INSERT INTO core_geometry (geom, metadata, geometry_type, source_id)"
            " SELECT ST_SetSRID(ST_MakePoint(i, i), 4326), jsonb_build_object('i', i), 'Point',"
            " 1 + i % 2 FROM generate_series(1, 50) AS i"
        )
        before = _rows(conn)

    alembic(scratch_url, "upgrade", "head")

    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert _rows(conn) == before
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'core_geometry'")
        assert kind.fetchone() == ("p",)
        parts = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'core_geometry'::regclass ORDER BY 1"
        ).fetchall()
        assert parts == [
            ("source_1", "FOR VALUES IN (1)"),
            ("source_2", "FOR VALUES IN (2)"),
            ("source_default", "DEFAULT"),
        ]
        # New rows keep taking gids after the old ones.
        conn.execute(
            "INSERT INTO core_geometry (geom, source_id)"
            " VALUES (ST_SetSRID(ST_MakePoint(0, 0), 4326), 1)"
        )
        assert conn.execute("SELECT max(gid) FROM core_geometry").fetchone() == (51,)

    engine = make_sync_engine(DatabaseSettings(database_url=scratch_url))
    try:
        many = gpd.GeoDataFrame(
            {"n": range(5000)},
            geometry=shapely.points([i % 170 for i in range(5000)], [i % 80 for i in range(5000)]),
            crs="EPSG:4326",
        )
        shp = write_shapefile(many, tmp_path / "pts", "pts")
        staged = stage.run(source=shp, destination=tmp_path / "pts.parquet", row_group_rows=2048)
        load.run(  # built in chunks: a partition partitioned again, by gid
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
            " WHERE inhparent = 'core_geometry_parts.source_3'::regclass"
        ).fetchone()
    assert chunks == (2,)
    assert len(after_load) == 51 + 5000
    # 0004: the source_id btree only on the DEFAULT partition, none in a source's.
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        indexed = conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indrelid"
            " WHERE c.relname IN ('core_geometry', 'source_default', 'source_1', 'source_3_0')"
            " AND pg_get_indexdef(i.indexrelid) LIKE '%(source_id)'"
        ).fetchall()
    assert [table for table, _ in indexed] == ["source_default"]

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
