"""Load: the staged batches into a new part of `core_geometry`, swapped in atomically.

How the part is built and swapped in, and why, is told in `partitions`. In short: a
fresh part number, binary COPY (rows encoded in Rust) into a fresh table created in
the same transaction, its indexes built once, ANALYZE, then the `core_source` row,
the source's old rows removed (a re-import) and the ATTACH. A small load does all of
it in one transaction; a large one builds chunks in parallel (`load_chunks`), each in
its own transaction, and attaches them in the swap's. Either way the source row and
all its features appear (or are replaced) at one commit, or not at all.

Idempotency: an import's `sid` (chosen when its task was created) is its key. A new
source is created with that sid, so when a source with it exists the import already
committed. A re-import into an existing source (`source_id`) records the key in the
source's `attributes.import.key`, with the same effect.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import NotFound
from core.models import Source
from pipeline.config import pause_point
from pipeline.steps import load_chunks, partitions
from pipeline.steps.load_chunks import Build, LoadRefused, copy_rows, index_and_analyze, lap
from pipeline.steps.load_progress import Monitor, ProgressCallback
from pipeline.steps.stage import GEOMETRY_COLUMN, covering_column

__all__ = ["LoadRefused", "LoadResult", "ProgressCallback", "SourceGone", "run"]
logger = logging.getLogger(__name__)
# Below this many rows a load is one transaction (and one connection) from start to end.
PARALLEL_MIN_ROWS = 50_000


class SourceGone(NotFound):
    """The source to re-import into does not exist (any more)."""

    code = "source_not_found"


@dataclass
class LoadResult:
    """The loaded source and whether this call loaded it or found it already loaded."""

    source_id: int
    sid: str
    feature_count: int
    already_loaded: bool
    replaced: bool = False
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Layout:
    """What every table of one load is made of: the parent's columns and the load's part."""

    columns: list[partitions.Column]
    part: int


@dataclass
class _Target:
    """What the swap writes: the source (new or replaced) and its import's facts."""

    sid: str
    name: str | None
    description: str | None
    source_type: str
    attributes: dict[str, Any]
    source_id: int | None  # a re-import's source


class _Progress:
    """Progress from one thread or several (a parallel load's chunks), summed."""

    def __init__(self, on_progress: ProgressCallback | None, rows: int, size: int) -> None:
        self._on_progress, self.rows_total, self.bytes_total = on_progress, rows, size
        self.rows = self.bytes = 0
        self._lock = threading.Lock()

    def copied(self, rows: int, size: int) -> None:
        with self._lock:
            self.rows += rows
            self.bytes += size
            self._tell("copy", self.bytes)

    def phase(self, name: str) -> None:
        with self._lock:
            self._tell(name, self.bytes_total)

    def _tell(self, phase: str, size: int) -> None:
        if self._on_progress is not None:
            self._on_progress(phase, self.rows, self.rows_total, size, self.bytes_total)

    def callback(self) -> ProgressCallback | None:
        return self._on_progress


def run(
    *,
    engine: Engine,
    path: Path,
    sid: str,
    name: str | None,
    source_type: str,
    attributes: dict[str, Any],
    description: str | None = None,
    source_id: int | None = None,
    batch_size: int = 65_536,
    statement_timeout: float | None = None,
    parallelism: int = 1,
    parallel_min_rows: int = PARALLEL_MIN_ROWS,
    on_progress: ProgressCallback | None = None,
) -> LoadResult:
    """Load the staged file as a new source `sid`, or as the new content of `source_id`.

    `parallelism` chunks build side by side when the file holds at least
    `parallel_min_rows` rows. `statement_timeout` (seconds) bounds each statement inside
    PostgreSQL, where the worker's own time limit cannot interrupt it.
    """
    parquet = pq.ParquetFile(path)
    covering = covering_column(path)
    columns = [column for column in parquet.schema_arrow.names if column != covering]
    target = _Target(
        sid=sid,
        name=name,
        description=description,
        source_type=source_type,
        attributes={**attributes, "import": {**attributes.get("import", {}), "key": sid}},
        source_id=source_id,
    )
    with engine.connect() as conn:
        existing = _existing(conn, sid=sid, source_id=source_id)
    if existing is not None:
        return existing
    build = partitions.build_name(sid)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
        raw = _raw(admin)
        partitions.sweep(raw)  # what crashed loads left
        partitions.drop_build(raw, name=build)  # this import's own earlier attempt
        # Once per load: the parent's column types (an adopted Django table's may differ).
        layout = _Layout(partitions.parent_columns(raw), partitions.new_part(raw))
    rows_total = parquet.metadata.num_rows
    parts = parallelism if rows_total >= parallel_min_rows else 1
    chunks = load_chunks.plan(rows_total, build=build, parts=parts)
    progress = _Progress(on_progress, rows_total, path.stat().st_size)
    timeout = statement_timeout
    try:
        if len(chunks) == 1:
            rows_staged = chunks[0].row_range
            result = _in_one_transaction(engine, path, build, layout, rows_staged, target,
                                         columns, batch_size, timeout, progress)  # fmt: skip
        else:
            result = _in_parallel(engine, path, build, layout, chunks, target, columns,
                                  batch_size, timeout, progress)  # fmt: skip
    except IntegrityError:
        # Another worker committed the same import first: that load stands.
        _drop_quietly(engine, build)
        with engine.connect() as conn:
            existing = _existing(conn, sid=sid, source_id=source_id)
        if existing is None:
            raise
        return existing
    except BaseException:
        _drop_quietly(engine, build)
        raise
    progress.phase("done")
    return result


def _in_one_transaction(
    engine: Engine,
    path: Path,
    build: str,
    layout: _Layout,
    rows_staged: range,
    target: _Target,
    columns: list[str],
    batch_size: int,
    statement_timeout: float | None,
    progress: _Progress,
) -> LoadResult:
    timings: dict[str, float] = {}
    with engine.connect() as conn, conn.begin(), Monitor(engine, progress.callback()) as monitor:
        raw = _raw(conn)
        _timeout(raw, statement_timeout)
        clock = time.perf_counter()
        source_id = _source_for(conn, target)
        partitions.create_build_table(
            raw, name=build, source_id=source_id, part=layout.part, columns=layout.columns
        )
        rows = copy_rows(
            raw,
            path=path,
            table=build,
            source_id=source_id,
            rows=rows_staged,
            columns=columns,
            batch_size=batch_size,
            geometry_column=GEOMETRY_COLUMN,
            on_rows=progress.copied,
        )
        timings["copy"] = lap(clock)
        pause_point("load.copied", lambda: progress.phase("paused"))
        index_and_analyze(raw, build, rows, monitor, progress.phase, timings)
        clock = time.perf_counter()
        progress.phase("attach")
        public_sid = _swap(conn, raw, build, layout.part, source_id, rows, target)
    timings["attach"] = lap(clock)
    return LoadResult(source_id, public_sid, rows, False, target.source_id is not None, timings)


def _in_parallel(
    engine: Engine,
    path: Path,
    build: str,
    layout: _Layout,
    chunks: list[load_chunks.Chunk],
    target: _Target,
    columns: list[str],
    batch_size: int,
    statement_timeout: float | None,
    progress: _Progress,
) -> LoadResult:
    with engine.connect() as conn, conn.begin():
        source_id = _source_for(conn, target)
        first = partitions.reserve_gids(
            _raw(conn),
            sum(max(c.rows, 1) for c in chunks),
            partitions.gid_sequence(layout.columns),
        )
    placed = load_chunks.with_gids(chunks, first)
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as guard,
        # Held until the swap commits: other loads' sweeps leave these chunks alone.
        partitions.build_lock(_raw(guard), name=build),
        Monitor(engine, progress.callback()) as monitor,
    ):
        timings = load_chunks.build_chunks(
            Build(
                engine=engine,
                path=path,
                source_id=source_id,
                part=layout.part,
                parent_columns=layout.columns,
                columns=columns,
                batch_size=batch_size,
                geometry_column=GEOMETRY_COLUMN,
                statement_timeout=statement_timeout,
                monitor=monitor,
                on_rows=progress.copied,
                on_phase=progress.phase,
            ),
            placed,
        )
        clock = time.perf_counter()
        progress.phase("attach")
        with engine.connect() as conn, conn.begin():
            raw = _raw(conn)
            _timeout(raw, statement_timeout)
            ranges = [(chunk.name, *chunk.gids) for chunk in placed]
            partitions.create_chunked_table(
                raw, name=build, part=layout.part, columns=layout.columns, chunks=ranges
            )
            rows = sum(chunk.rows for chunk in placed)
            public_sid = _swap(conn, raw, build, layout.part, source_id, rows, target)
        timings["attach"] = lap(clock)
    return LoadResult(source_id, public_sid, rows, False, target.source_id is not None, timings)


def _swap(
    conn: Connection,
    raw: psycopg.Connection[Any],
    build: str,
    part: int,
    source_id: int,
    rows: int,
    target: _Target,
) -> str:
    """The swap: the source row written, its old rows gone, the build attached as its part."""
    partitions.lock_for_swap(raw)
    if target.source_id is None:
        conn.execute(
            insert(Source).values(
                id=source_id,
                sid=target.sid,
                name=target.name or target.sid,
                description=target.description,
                source_type=target.source_type,
                attributes=target.attributes,
            )
        )
        public_sid = target.sid
    else:
        public_sid = _refresh_source(conn, source_id, target)
        # A new source has no rows anywhere: nothing to look for (not even in part_0).
        partitions.remove_source_rows(raw, source_id=source_id)
    partitions.attach(raw, name=build, part=part, source_id=source_id, rows=rows)
    return public_sid


def _raw(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _timeout(raw: psycopg.Connection[Any], seconds: float | None) -> None:
    if seconds:
        raw.execute(f"SET LOCAL statement_timeout = {int(seconds * 1000)}")


def _drop_quietly(engine: Engine, build: str) -> None:
    """Drop a failed load's committed chunks, if any (a crash leaves them to `sweep`)."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            partitions.drop_build(_raw(admin), name=build)
    except Exception:
        logger.exception("could not drop %s after a failed load", build)


def _source_for(conn: Connection, target: _Target) -> int:
    """The id the rows carry: the re-imported source's, or a new one taken now (the new
    source's row itself is inserted at the swap)."""
    if target.source_id is None:
        value = conn.exec_driver_sql("SELECT nextval('public.core_source_id_seq')").scalar_one()
        return int(value)
    found = conn.execute(select(Source.id).where(Source.id == target.source_id)).scalar()
    if found is None:
        raise SourceGone(f"source {target.source_id} does not exist")
    return target.source_id


def _refresh_source(conn: Connection, source_id: int, target: _Target) -> str:
    """Give a re-imported source its new profile (and name/description, when given)."""
    values: dict[str, Any] = {"attributes": target.attributes, "source_type": target.source_type}
    if target.name:
        values["name"] = target.name
    if target.description is not None:
        values["description"] = target.description
    sid = conn.execute(
        update(Source).where(Source.id == source_id).values(**values).returning(Source.sid)
    ).scalar_one_or_none()
    if sid is None:
        raise SourceGone(f"source {source_id} does not exist")
    return str(sid)


def _existing(conn: Connection, *, sid: str, source_id: int | None) -> LoadResult | None:
    """The result of an earlier attempt of this import that committed, if one did."""
    if source_id is None:
        query = select(Source.id, Source.sid).where(Source.sid == sid)
    else:
        query = select(Source.id, Source.sid).where(
            Source.id == source_id, Source.attributes["import"]["key"].astext == sid
        )
    found = conn.execute(query).one_or_none()
    if found is None:
        conn.rollback()
        return None
    count = conn.exec_driver_sql(
        "SELECT count(*) FROM public.core_geometry WHERE source_id = %(id)s", {"id": found.id}
    ).scalar_one()
    conn.rollback()
    return LoadResult(
        source_id=int(found.id),
        sid=str(found.sid),
        feature_count=int(count),
        already_loaded=True,
        replaced=source_id is not None,
    )
