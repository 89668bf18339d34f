"""core_geometry's layout of parts (migration 0005): a fresh part per load, part_0 for
plain INSERTs, compaction in the background. On a scratch database of its own, so that
the counts of parts are this module's alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pytest
import shapely
from psycopg import sql
from sqlalchemy import Engine, text

from api.services.wfs import FeatureFilter
from core.database import make_async_engine, make_async_sessionmaker, make_sync_engine
from core.settings import REPO_ROOT, DatabaseSettings
from pipeline.steps import compact, load, partitions, stage
from pipeline.tasks import new_sid
from tests.conftest import TEST_DATABASE_URL
from tests.pipeline.conftest import write_shapefile

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def layout_url() -> Iterator[str]:
    """A database of this module's own, at head."""
    admin, _, name = TEST_DATABASE_URL.rpartition("/")
    scratch = f"{name}_layout"
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(scratch)
        ))  # fmt: skip
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    url = f"{admin}/{scratch}"
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "-x", f"url={url}",
         "upgrade", "head"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield url
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )


@pytest.fixture(scope="module")
def layout_engine(layout_url: str) -> Iterator[Engine]:
    engine = make_sync_engine(DatabaseSettings(database_url=layout_url))
    yield engine
    engine.dispose()


@pytest.fixture
def conn(layout_url: str) -> Iterator[Conn]:
    with psycopg.connect(layout_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def staged_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Staged files of a few sizes, made once."""
    folder = tmp_path_factory.mktemp("layout")
    files = {}
    for count in (10, 40, 300, 2000):
        lon, lat = [(i % 340) - 170 for i in range(count)], [i % 80 for i in range(count)]
        frame = gpd.GeoDataFrame(
            {"n": range(count)}, geometry=shapely.points(lon, lat), crs="EPSG:4326"
        )
        shp = write_shapefile(frame, folder / f"p{count}", "pts")
        files[count] = stage.run(source=shp, destination=folder / f"p{count}.parquet").path
    return files


def _load(engine: Engine, path: Path, source_id: int | None = None, **kw: Any) -> load.LoadResult:
    return load.run(
        engine=engine,
        path=path,
        sid=new_sid(),
        name="layout",
        source_type="shapefile",
        attributes={},
        source_id=source_id,
        **kw,
    )


def _parts_of(conn: Conn, source_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM core_geometry_parts.catalog WHERE %s = ANY(sources) ORDER BY name",
        (source_id,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _attached(conn: Conn) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'core_geometry'::regclass"
    ).fetchall()
    return {str(row[0]) for row in rows}


def _count(conn: Conn, source_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM core_geometry WHERE source_id = %s", (source_id,)
    ).fetchone()
    return int(row[0]) if row else -1


def _compact_all(conn: Conn, **kw: Any) -> compact.CompactResult:
    return compact.run(conn, **kw)


def _start_empty(conn: Conn) -> None:
    """No source left from earlier tests (their emptied parts dropped by compaction)."""
    conn.execute("DELETE FROM core_source")
    _compact_all(conn)
    assert _attached(conn) == {"part_0"}


def test_every_load_gets_a_fresh_part_and_the_catalog_matches_the_partitions(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path]
) -> None:
    first = _load(layout_engine, staged_files[40])
    second = _load(layout_engine, staged_files[40])
    (a,), (b,) = _parts_of(conn, first.source_id), _parts_of(conn, second.source_id)
    assert a != b
    catalog = {str(r[0]) for r in conn.execute("SELECT name FROM core_geometry_parts.catalog")}
    assert _attached(conn) == catalog | {"part_0"}
    bound = conn.execute(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class"
        " WHERE oid = ('core_geometry_parts.' || %s)::regclass",
        (a,),
    ).fetchone()
    assert bound == (f"FOR VALUES IN ({a.removeprefix('part_')})",)
    assert _count(conn, first.source_id) == 40


def test_a_reimport_replaces_a_source_in_a_shared_part_and_in_part_0(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path]
) -> None:
    loaded = [_load(layout_engine, staged_files[10]) for _ in range(8)]
    result = _compact_all(conn, fanout=8)
    assert result.merged, result
    shared = _parts_of(conn, loaded[3].source_id)
    assert len(shared) == 1 and shared == _parts_of(conn, loaded[4].source_id)
    conn.execute(  # a plain INSERT (the REST API's way) lands in part_0
        "INSERT INTO core_geometry (geom, source_id)"
        " VALUES (ST_SetSRID(ST_MakePoint(1, 1), 4326), %s)",
        (loaded[3].source_id,),
    )
    assert _count(conn, loaded[3].source_id) == 11

    again = _load(layout_engine, staged_files[300], source_id=loaded[3].source_id)

    assert again.replaced
    assert _count(conn, loaded[3].source_id) == 300
    assert all(_count(conn, other.source_id) == 10 for other in loaded if other is not loaded[3])
    (own,) = _parts_of(conn, loaded[3].source_id)
    assert own not in shared
    sources = conn.execute(
        "SELECT sources FROM core_geometry_parts.catalog WHERE name = %s", (shared[0],)
    ).fetchone()
    assert sources is not None and loaded[3].source_id not in sources[0]


def test_a_deleted_sources_part_is_dropped_by_maintenance_not_by_the_next_import(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path]
) -> None:
    gone = _load(layout_engine, staged_files[300])
    (part,) = _parts_of(conn, gone.source_id)
    conn.execute("DELETE FROM core_source WHERE id = %s", (gone.source_id,))
    assert _count(conn, gone.source_id) == 0

    _load(layout_engine, staged_files[10])
    assert part in _attached(conn)  # the import left it alone

    result = _compact_all(conn)
    assert part in result.dropped
    assert part not in _attached(conn)


def test_compaction_merges_while_a_reader_never_sees_a_mix(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path], layout_url: str
) -> None:
    _start_empty(conn)
    loaded = [_load(layout_engine, staged_files[40]) for _ in range(8)]
    expected = {result.source_id: 40 for result in loaded}
    ids = list(expected)
    seen: list[dict[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(layout_url, autocommit=True) as reader:
            while not stop.is_set():
                rows = reader.execute(
                    "SELECT source_id, count(*), count(DISTINCT gid) FROM core_geometry"
                    " WHERE source_id = ANY(%s) GROUP BY 1",
                    (ids,),
                ).fetchall()
                seen.append({int(s): int(n) for s, n, d in rows if n == d})

    thread = threading.Thread(target=read)
    thread.start()
    try:
        time.sleep(0.2)
        result = _compact_all(conn, fanout=8)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()

    assert result.merged
    merged = {_parts_of(conn, source_id)[0] for source_id in ids}
    assert len(merged) == 1
    assert len(seen) > 2
    assert all(view == expected for view in seen)  # every read: all rows, each once
    check = conn.execute(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class"
        " WHERE oid = ('core_geometry_parts.' || %s)::regclass",
        (merged.pop(),),
    ).fetchone()
    assert check is not None and str(check[0]).count(",") == 7  # FOR VALUES IN (8 parts)


def test_the_partition_count_stays_bounded_after_many_small_loads(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path]
) -> None:
    _start_empty(conn)
    fanout, seal = 4, 1000
    counts = []
    for _ in range(40):
        _load(layout_engine, staged_files[10])
        _compact_all(conn, fanout=fanout, seal_rows=seal)
        counts.append(len(_attached(conn)))

    parts = partitions.parts(conn)
    sealed = sum(1 for part in parts if part.rows >= seal)
    tiers = compact.tier(seal - 1, fanout=fanout) + 1
    bound = (fanout - 1) * tiers + sealed + 1  # + part_0
    assert max(counts[-10:]) <= bound
    assert len(_attached(conn)) < 40 // 2  # 40 loads, far fewer parts
    small = [part for part in parts if part.rows < seal]
    by_tier: dict[int, int] = {}
    for part in small:
        by_tier[compact.tier(part.rows, fanout=fanout)] = (
            by_tier.get(compact.tier(part.rows, fanout=fanout), 0) + 1
        )
    assert all(count < fanout for count in by_tier.values())


def _scans(conn: Conn, table: str) -> tuple[int, int]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables"
        " WHERE schemaname = 'core_geometry_parts' AND relname = %s",
        (table,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _settled_scans(conn: Conn, table: str) -> tuple[int, int]:
    """The counters once every backend has flushed its statistics (at most a second idle)."""
    last = _scans(conn, table)
    for _ in range(20):
        time.sleep(0.6)
        now = _scans(conn, table)
        if now == last:
            return now
        last = now
    return last


def test_an_import_does_not_scan_part_0(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path], layout_url: str
) -> None:
    conn.execute(
        "INSERT INTO core_source (sid, name, source_type) VALUES ('src_plain', 'plain', 'csv')"
    )
    conn.execute(
        "INSERT INTO core_geometry (geom, source_id) SELECT ST_SetSRID(ST_MakePoint(i % 90, 0),"
        " 4326), (SELECT id FROM core_source WHERE sid = 'src_plain')"
        " FROM generate_series(1, 20000) AS i"
    )
    before = _settled_scans(conn, "part_0")

    _load(layout_engine, staged_files[2000])
    _load(layout_engine, staged_files[2000], parallelism=2, parallel_min_rows=1)

    assert _settled_scans(conn, "part_0") == before
    # The counters do move when something reads part_0 (the measure can fail).
    with psycopg.connect(layout_url, autocommit=True) as other:
        other.execute("SELECT count(*) FROM core_geometry_parts.part_0").fetchone()
    assert _settled_scans(conn, "part_0")[0] == before[0] + 1


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Relation Name" in node:
            found.add(str(node["Relation Name"]))
        stack.extend(node.get("Plans", []))
    return found


def test_a_one_source_read_through_the_api_engine_reads_its_part_only(
    layout_engine: Engine, conn: Conn, staged_files: dict[int, Path], layout_url: str
) -> None:
    _start_empty(conn)
    mine, other = _load(layout_engine, staged_files[40]), _load(layout_engine, staged_files[300])
    (own,), (others,) = _parts_of(conn, mine.source_id), _parts_of(conn, other.source_id)
    query = "SELECT gid FROM core_geometry WHERE {where} ORDER BY gid LIMIT 10"

    async def through_the_api() -> tuple[list[tuple[Any, ...]], int]:
        engine = make_async_engine(DatabaseSettings(database_url=layout_url))
        try:
            async with make_async_sessionmaker(engine)() as session:
                where, params = await FeatureFilter(source=str(mine.source_id)).where(session)
                for _ in range(8):  # past the five runs after which a generic plan may win
                    rows = (await session.execute(text(query.format(where=where)), params)).all()
                plans = (
                    await session.execute(
                        text(
                            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                            " WHERE statement LIKE '%ORDER BY gid LIMIT 10%'"
                            " AND statement NOT LIKE '%pg_prepared_statements%'"
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
        assert plans, "the API's statements are prepared"
        return [tuple(row) for row in rows], sum(int(generic) for generic, _ in plans)

    rows, generic = asyncio.run(through_the_api())
    assert len(rows) == 10 and generic == 0  # every run planned for the source's constants

    # What a generic plan would read: every part. A custom plan: the source's, and part_0.
    conn.execute(
        "PREPARE one_source(int[]) AS SELECT gid FROM core_geometry"
        " WHERE source_id = ANY($1) ORDER BY gid LIMIT 10"
    )
    try:
        read = {}
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Literal(mode)))
            plan = conn.execute(
                sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE one_source({})").format(
                    sql.Literal([mine.source_id])
                )
            ).fetchone()
            assert plan is not None
            read[mode] = _relations(plan[0])
    finally:
        conn.execute("DEALLOCATE one_source")
        conn.execute("RESET plan_cache_mode")
    assert read["force_custom_plan"] == {own, "part_0"}
    assert {own, others, "part_0"} <= read["force_generic_plan"]
