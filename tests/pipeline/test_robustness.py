"""Robustness against the real services: a worker SIGKILLed in the middle of a load, a
failure injected at the last moment of a load, retries that must not duplicate rows.

The kill test runs an ETL service and workers of its own, on a Redis database of their
own (12) with a short staleness, so that no other worker takes its messages and the
recovery happens in seconds; the database is the session's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import pytest
import redis
import shapely
from sqlalchemy import Engine

from core.settings import REPO_ROOT
from pipeline.steps import load, load_chunks, partitions, profile, stage
from pipeline.tasks import new_sid
from tests.conftest import Stack, _wait_healthy, free_port
from tests.pipeline.conftest import Account, assert_same_features, features_of, write_shapefile

Conn = psycopg.Connection[tuple[Any, ...]]
BIN = Path(sys.executable).parent
FINAL = ("succeeded", "failed")


def _many_points(folder: Path, count: int) -> Path:
    lon = [(i % 360) - 179.5 for i in range(count)]
    lat = [i % 80 for i in range(count)]
    frame = gpd.GeoDataFrame(
        {"n": range(count), "label": [f"p{i}" for i in range(count)]},
        geometry=shapely.points(lon, lat),
        crs="EPSG:4326",
    )
    return write_shapefile(frame, folder, "many")


@dataclass
class Private:
    """An ETL service of the test's own, and a way to start workers for it."""

    url: str
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen[bytes]]

    def worker(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        """A `dramatiq pipeline.worker` process in a session of its own (to be killed whole)."""
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(BIN / "dramatiq"), "pipeline.worker", "--processes", "1", "--threads", "1"],
                cwd=REPO_ROOT,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process


@pytest.fixture
def private(stack: Stack, tmp_path: Path) -> Iterator[Private]:
    """An ETL service on Redis database 12 that declares a worker dead after 3 s."""
    redis_url = stack.env["REDIS_URL"].rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        **stack.env,
        "REDIS_URL": redis_url,
        "ETL_SERVICE_URL": f"http://127.0.0.1:{port}",
        "TASK_HEARTBEAT_SECONDS": "1",
        "TASK_STALE_AFTER_SECONDS": "3",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    with (logs / "etl.log").open("wb") as log:
        etl = subprocess.Popen(
            [str(BIN / "uvicorn"), "--factory", "pipeline.app:create_app", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    made = Private(env["ETL_SERVICE_URL"], env, logs, [etl])
    try:
        _wait_healthy(made.url, etl, logs / "etl.log")
        yield made
    finally:
        for process in made.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM) if process is not etl else etl.terminate()
        for process in made.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(
    url: str, task_id: str, account: Account, until: Any, timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = httpx.get(f"{url}/tasks/{task_id}", headers=account.headers).json()
        if until(task):
            return task
        assert time.monotonic() < deadline, f"task never got there: {task}"
        time.sleep(0.2)


def _leftover_build_tables(db: Conn) -> list[str]:
    rows = db.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'core_geometry_parts'::regnamespace"
        " AND relname LIKE 'load\\_%' AND relkind IN ('r', 'p')"
    ).fetchall()
    return [row[0] for row in rows]


def test_a_worker_killed_in_the_middle_of_a_load_is_replaced_and_the_import_succeeds(
    private: Private, account: Account, tmp_path: Path, db: Conn
) -> None:
    shp = _many_points(tmp_path / "many", 3000)
    doomed = private.worker("doomed", IMPORT_PAUSE_AT="load.copied", IMPORT_PAUSE_SECONDS="300")
    parts = [p for p in shp.parent.iterdir() if p.stem == "many"]
    answer = httpx.post(
        f"{private.url}/tasks/import/shapefile",
        data={"name": "survivor"},
        files=[("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in parts],
        headers=account.headers,
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]

    # The rows are COPYed, the load's transaction is open: kill the worker there.
    paused = _wait(private.url, task_id, account, lambda t: t["progress"].get("phase") == "paused")
    assert paused["step"] == "load" and paused["state"] == "running"
    private.worker("rescuer")  # idle until the step is given back (it boots meanwhile)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)

    task = _wait(private.url, task_id, account, lambda t: t["state"] in FINAL)

    assert task["state"] == "succeeded", task
    assert task["attempts"] == 2  # the load's: the killed attempt and the one that finished
    assert any("stopped responding" in warning for warning in task["warnings"])
    source_id = task["result"]["source_id"]
    counts = db.execute(
        "SELECT count(*), count(DISTINCT gid), count(DISTINCT metadata->>'n') FROM core_geometry"
        " WHERE source_id = %s",
        (source_id,),
    ).fetchone()
    assert counts == (3000, 3000, 3000)
    partitions = db.execute(
        "SELECT count(*) FROM core_geometry_parts.catalog WHERE %s = ANY(sources)",
        (source_id,),
    ).fetchone()
    assert partitions == (1,)
    assert _leftover_build_tables(db) == []
    sources = db.execute(
        "SELECT count(*) FROM core_source WHERE name = 'survivor' AND id = %s", (source_id,)
    ).fetchone()
    assert sources == (1,)


def _staged(shp: Path, tmp_path: Path) -> Path:
    return stage.run(source=shp, destination=tmp_path / "staged" / f"{shp.stem}.parquet").path


def test_a_failure_at_the_swap_leaves_no_source_no_partition_and_no_table(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    staged = _staged(_many_points(tmp_path / "many", 500), tmp_path)
    sid = new_sid()
    phases: list[str] = []

    def fail_at_attach(phase: str, *_: int) -> None:
        phases.append(phase)
        if phase == "attach":
            raise RuntimeError("the database went away")

    partitions_before = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'core_geometry'::regclass"
    ).fetchone()
    with pytest.raises(RuntimeError, match="went away"):
        load.run(
            engine=engine,
            path=staged,
            sid=sid,
            name="doomed",
            source_type="shapefile",
            attributes=profile.run(path=staged).attributes,
            on_progress=fail_at_attach,
        )

    assert "copy" in phases and "analyze" in phases  # it failed after the heavy work
    assert db.execute("SELECT count(*) FROM core_source WHERE sid = %s", (sid,)).fetchone() == (0,)
    partitions_after = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'core_geometry'::regclass"
    ).fetchone()
    assert partitions_after == partitions_before
    assert _leftover_build_tables(db) == []
    orphans = db.execute(
        "SELECT count(*) FROM core_geometry g LEFT JOIN core_source s ON s.id = g.source_id"
        " WHERE s.id IS NULL"
    ).fetchone()
    assert orphans == (0,)


def test_reimporting_into_a_source_replaces_its_rows_atomically(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    first = _staged(_many_points(tmp_path / "one", 300), tmp_path / "a")
    second = _staged(_many_points(tmp_path / "two", 120), tmp_path / "b")
    loaded = load.run(
        engine=engine,
        path=first,
        sid=new_sid(),
        name="twice",
        source_type="shapefile",
        attributes=profile.run(path=first).attributes,
    )
    # A row added by a plain INSERT (the REST API's way) lands in the default partition.
    db.execute(
        "INSERT INTO core_geometry (geom, metadata, source_id)"
        " VALUES (ST_SetSRID(ST_MakePoint(1, 1), 4326), '{}', %s)",
        (loaded.source_id,),
    )
    key = new_sid()
    attributes = profile.run(path=second).attributes

    def again() -> load.LoadResult:
        return load.run(
            engine=engine,
            path=second,
            sid=key,
            name=None,
            source_type="shapefile",
            attributes=attributes,
            source_id=loaded.source_id,
        )

    replaced = again()
    repeated = again()  # a redelivered message: the same import, already done

    assert (replaced.source_id, replaced.replaced, replaced.already_loaded) == (
        loaded.source_id, True, False
    )  # fmt: skip
    assert (repeated.already_loaded, repeated.feature_count) == (True, 120)
    rows = db.execute(
        "SELECT count(*), max((metadata->>'n')::int) FROM core_geometry WHERE source_id = %s",
        (loaded.source_id,),
    ).fetchone()
    assert rows == (120, 119)
    source = db.execute(
        "SELECT name, sid, attributes->'feature_count' FROM core_source WHERE id = %s",
        (loaded.source_id,),
    ).fetchone()
    assert source == ("twice", loaded.sid, 120)
    assert _leftover_build_tables(db) == []


def test_deleting_a_source_removes_its_rows(engine: Engine, db: Conn, tmp_path: Path) -> None:
    staged = _staged(_many_points(tmp_path / "gone", 50), tmp_path)
    loaded = load.run(
        engine=engine,
        path=staged,
        sid=new_sid(),
        name="gone",
        source_type="shapefile",
        attributes=profile.run(path=staged).attributes,
    )

    db.execute("DELETE FROM core_source WHERE id = %s", (loaded.source_id,))

    left = db.execute(
        "SELECT count(*) FROM core_geometry WHERE source_id = %s", (loaded.source_id,)
    ).fetchone()
    assert left == (0,)
    # Its emptied part stays through the next load: dropping it is compaction's job.
    load.run(
        engine=engine,
        path=staged,
        sid=new_sid(),
        name="next",
        source_type="shapefile",
        attributes={},
    )
    kept = db.execute(
        "SELECT count(*) FROM core_geometry_parts.catalog WHERE %s = ANY(sources)",
        (loaded.source_id,),
    ).fetchone()
    assert kept == (1,)


def test_loads_running_at_the_same_time_all_commit(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    staged = [
        _staged(_many_points(tmp_path / f"c{index}", 300 + index), tmp_path / f"s{index}")
        for index in range(4)
    ]

    def one(path: Path) -> load.LoadResult:
        return load.run(
            engine=engine,
            path=path,
            sid=new_sid(),
            name="together",
            source_type="shapefile",
            attributes={},
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, staged))

    assert sorted(r.feature_count for r in results) == [300, 301, 302, 303]
    for result in results:
        count = db.execute(
            "SELECT count(*) FROM core_geometry WHERE source_id = %s", (result.source_id,)
        ).fetchone()
        assert count == (result.feature_count,)


def _partition_layout(db: Conn, source_id: int) -> list[tuple[str, str]]:
    """(name, bound) of the source's partition's own partitions (chunks), if it has any."""
    rows = db.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = (SELECT ('core_geometry_parts.' || name)::regclass"
        "   FROM core_geometry_parts.catalog WHERE %s = ANY(sources)) ORDER BY 1",
        (source_id,),
    ).fetchall()
    return [(str(name), str(bound)) for name, bound in rows]


def _leftover_sequences(db: Conn) -> list[str]:
    rows = db.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'core_geometry_parts'::regnamespace"
        " AND relkind = 'S'"
    ).fetchall()
    return [row[0] for row in rows]


def _load_in_chunks(engine: Engine, staged: Path, **kwargs: Any) -> load.LoadResult:
    options: dict[str, Any] = {
        "sid": new_sid(),
        "name": "chunked",
        "source_type": "shapefile",
        "attributes": profile.run(path=staged).attributes,
        "parallelism": 3,
        "parallel_min_rows": 1,
    }
    return load.run(engine=engine, path=staged, **(options | kwargs))


def test_a_large_load_is_built_in_parallel_chunks_with_the_same_result(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    shp = _many_points(tmp_path / "big", 10_000)
    staged = stage.run(source=shp, destination=tmp_path / "big.parquet", row_group_rows=2048).path
    seen: list[str] = []

    # Batches of 1000 rows: the chunks' ends fall inside batches as well as row groups.
    result = _load_in_chunks(
        engine, staged, batch_size=1000, on_progress=lambda phase, *_: seen.append(phase)
    )

    assert (result.feature_count, result.already_loaded) == (10_000, False)
    assert {"copy", "index", "analyze", "attach"} <= set(result.timings)
    chunks = _partition_layout(db, result.source_id)
    (part,) = db.execute(
        "SELECT name FROM core_geometry_parts.catalog WHERE %s = ANY(sources)",
        (result.source_id,),
    ).fetchone() or ("",)
    assert [name for name, _ in chunks] == [f"{part}_{k}" for k in range(3)]
    assert all(bound.startswith("FOR VALUES FROM") for _, bound in chunks)
    # Split by rows, not by the 2048-row groups: the chunks end inside groups.
    sizes = [
        db.execute(f"SELECT count(*) FROM core_geometry_parts.{name}").fetchone()
        for name, _ in chunks
    ]
    assert sizes == [(3333,), (3333,), (3334,)]
    expected = gpd.read_file(shp)
    assert_same_features(features_of(db, result.source_id), expected)
    gids = db.execute(
        "SELECT count(DISTINCT gid), max(gid) - min(gid) FROM core_geometry WHERE source_id = %s",
        (result.source_id,),
    ).fetchone()
    assert gids == (10_000, 9_999)  # one block of gids, reserved at once
    low = db.execute(
        "SELECT min(gid) FROM core_geometry WHERE source_id = %s", (result.source_id,)
    ).fetchone()
    assert low is not None and low[0] > 0
    assert "copy" in seen and seen[-1] == "done"
    assert _leftover_build_tables(db) == [] and _leftover_sequences(db) == []

    # A re-import (small: one transaction) replaces the chunked partition whole.
    again = load.run(
        engine=engine,
        path=_staged(_many_points(tmp_path / "small", 40), tmp_path),
        sid=new_sid(),
        name=None,
        source_type="shapefile",
        attributes={},
        source_id=result.source_id,
    )
    assert again.replaced and _partition_layout(db, result.source_id) == []
    count = db.execute(
        "SELECT count(*) FROM core_geometry WHERE source_id = %s", (result.source_id,)
    ).fetchone()
    assert count == (40,)


def test_a_failed_parallel_load_drops_its_chunks_and_a_crashed_ones_are_swept(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    staged = stage.run(
        source=_many_points(tmp_path / "doomed", 6000),
        destination=tmp_path / "doomed.parquet",
        row_group_rows=2048,
    ).path
    sid = new_sid()

    def fail_at_attach(phase: str, *_: int) -> None:
        if phase == "attach":
            raise RuntimeError("the worker was stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        _load_in_chunks(engine, staged, sid=sid, on_progress=fail_at_attach)

    assert _leftover_build_tables(db) == [] and _leftover_sequences(db) == []
    assert db.execute("SELECT count(*) FROM core_source WHERE sid = %s", (sid,)).fetchone() == (0,)
    # What a killed worker would leave: committed chunks nobody builds any more; and the
    # chunks of a load still going on (its session holds the build's lock).
    db.execute(
        "CREATE TABLE core_geometry_parts.load_src_crashed0000_0 (gid bigint);"
        " CREATE SEQUENCE core_geometry_parts.load_src_crashed0000_0_gid;"
        " CREATE TABLE core_geometry_parts.load_src_running0000_0 (gid bigint)"
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
        raw = other.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with partitions.build_lock(raw, name="load_src_running0000"):
            result = _load_in_chunks(engine, staged, sid=sid)
            assert _leftover_build_tables(db) == ["load_src_running0000_0"]
    assert result.feature_count == 6000
    assert _leftover_sequences(db) == []
    db.execute("DROP TABLE core_geometry_parts.load_src_running0000_0")


def test_a_reserved_block_of_gids_is_nobody_elses(engine: Engine, db: Conn) -> None:
    db.execute("DROP SEQUENCE IF EXISTS public.test_fresh_gid_seq")
    db.execute("CREATE SEQUENCE public.test_fresh_gid_seq")  # never used: starts at 1
    try:
        with engine.connect() as conn, conn.begin():
            raw = conn.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            first = partitions.reserve_gids(raw, 500, "public.test_fresh_gid_seq")
            second = partitions.reserve_gids(raw, 10, "public.test_fresh_gid_seq")
        after = db.execute("SELECT nextval('public.test_fresh_gid_seq')").fetchone()
        increment = db.execute(
            "SELECT increment_by FROM pg_sequences WHERE sequencename = 'test_fresh_gid_seq'"
        ).fetchone()
    finally:
        db.execute("DROP SEQUENCE public.test_fresh_gid_seq")

    assert first == 1
    assert second >= first + 500
    assert after is not None and after[0] >= second + 10
    assert increment == (1,)


def test_chunks_split_the_rows_evenly_whatever_the_row_groups() -> None:
    plan = load_chunks.plan(100_000, build="load_x", parts=2)
    assert [(c.name, c.start, c.rows) for c in plan] == [
        ("load_x_0", 0, 50_000),
        ("load_x_1", 50_000, 50_000),
    ]
    assert [(c.start, c.rows) for c in load_chunks.plan(7, build="b", parts=3)] == [
        (0, 2), (2, 2), (4, 3)
    ]  # fmt: skip
    assert [(c.start, c.rows) for c in load_chunks.plan(2, build="b", parts=3)] == [(0, 1), (1, 1)]
    assert [(c.start, c.rows) for c in load_chunks.plan(0, build="b", parts=2)] == [(0, 0)]
    placed = load_chunks.with_gids(load_chunks.plan(7, build="b", parts=3), 100)
    assert [c.gids for c in placed] == [(100, 102), (102, 104), (104, 107)]
