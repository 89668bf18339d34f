"""Load: the staged batches into a new partition of `core_geometry`, in one transaction.

How the partition is built and swapped in, and why, is told in `partitions`. In
short: binary COPY (rows encoded in Rust) into a fresh table created in the same
transaction, its indexes built once, ANALYZE, then the `core_source` row and the
ATTACH; all of it commits together or not at all.

Idempotency: an import's `sid` (chosen when its task was created) is its key. A new
source is created with that sid, so when a source with it exists the import already
committed. A re-import into an existing source (`source_id`) records the key in the
source's `attributes.import.key`, with the same effect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

import geo_engine
from core.errors import InvalidInput, NotFound
from core.models import Source
from pipeline.config import pause_point
from pipeline.steps import partitions
from pipeline.steps.stage import BBOX_COLUMN, GEOMETRY_COLUMN

SRID = 4326
logger = logging.getLogger(__name__)

# Called as the load goes: (phase, rows done, rows total, bytes done, bytes total).
ProgressCallback = Callable[[str, int, int, int, int], None]


class LoadRefused(InvalidInput):
    """PostgreSQL refused a row of the staged file (e.g. a geometry PostGIS cannot read)."""

    code = "load_refused"


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
    on_progress: ProgressCallback | None = None,
) -> LoadResult:
    """Load the staged file as a new source `sid`, or as the new content of `source_id`.

    Everything is one transaction: the source row (created, or its attributes
    replaced), the partition holding its features, their indexes and statistics.
    `statement_timeout` (seconds) bounds each statement inside PostgreSQL, where the
    worker's own time limit cannot interrupt it.
    """
    parquet = pq.ParquetFile(path)
    columns = [column for column in parquet.schema_arrow.names if column != BBOX_COLUMN]
    rows_total = parquet.metadata.num_rows
    bytes_total = path.stat().st_size
    attributes = {**attributes, "import": {**attributes.get("import", {}), "key": sid}}
    timings: dict[str, float] = {}

    def report(phase: str, rows: int, done_bytes: int) -> None:
        if on_progress is not None:
            on_progress(phase, rows, rows_total, done_bytes, bytes_total)

    with engine.connect() as conn:
        existing = _existing(conn, sid=sid, source_id=source_id)
        if existing is not None:
            return existing
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        build = partitions.build_name(sid)
        try:
            with conn.begin(), _Monitor(engine, raw.info.backend_pid, on_progress) as monitor:
                if statement_timeout:
                    timeout_ms = int(statement_timeout * 1000)
                    raw.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                clock = time.perf_counter()
                target = source_id if source_id is not None else _new_source_id(conn)
                if source_id is not None and not _source_exists(conn, source_id):
                    raise SourceGone(f"source {source_id} does not exist")
                partitions.create_build_table(raw, name=build, source_id=target)
                rows_done = _copy(raw, parquet, build, target, columns, batch_size, path, report)
                timings["copy"] = _lap(clock)
                pause_point("load.copied", lambda: report("paused", rows_done, bytes_total))

                clock = time.perf_counter()
                statements = partitions.index_statements(raw, name=build)
                for number, statement in enumerate(statements, start=1):
                    phase = f"index {number}/{len(statements)}"
                    report(phase, rows_done, bytes_total)
                    with monitor.watching(phase, rows_done):
                        raw.execute(statement)
                timings["index"] = _lap(clock)

                clock = time.perf_counter()
                report("analyze", rows_done, bytes_total)
                with monitor.watching("analyze", rows_done):
                    partitions.analyze(raw, name=build)
                timings["analyze"] = _lap(clock)

                clock = time.perf_counter()
                report("attach", rows_done, bytes_total)
                partitions.lock_for_swap(raw)
                if source_id is None:
                    conn.execute(
                        insert(Source).values(
                            id=target,
                            sid=sid,
                            name=name or sid,
                            description=description,
                            source_type=source_type,
                            attributes=attributes,
                        )
                    )
                    public_sid = sid
                else:
                    public_sid = _refresh_source(
                        conn,
                        source_id=target,
                        name=name,
                        description=description,
                        source_type=source_type,
                        attributes=attributes,
                    )
                partitions.replace_partition(raw, name=build, source_id=target)
            timings["attach"] = _lap(clock)
        except IntegrityError:
            # Another worker committed the same import first: that load stands.
            existing = _existing(conn, sid=sid, source_id=source_id)
            if existing is None:
                raise
            return existing
    report("done", rows_done, bytes_total)
    return LoadResult(
        source_id=target,
        sid=public_sid,
        feature_count=rows_done,
        already_loaded=False,
        replaced=source_id is not None,
        timings=timings,
    )


# What PostgreSQL says of a running CREATE INDEX or ANALYZE (blocks are 8 KiB pages).
_PROGRESS_SQL = """
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
FROM pg_stat_progress_create_index WHERE pid = %(pid)s
UNION ALL
SELECT phase, sample_blks_scanned, sample_blks_total, 0, 0
FROM pg_stat_progress_analyze WHERE pid = %(pid)s
"""
_BLOCK = 8192
_POLL = 0.5


class _Monitor:
    """Reports the progress of the load's long statements, from a connection of its own.

    CREATE INDEX and ANALYZE run inside PostgreSQL for seconds to minutes without a word
    to the client; PostgreSQL's progress views tell how far they are, every half second.
    """

    def __init__(self, engine: Engine, pid: int, on_progress: ProgressCallback | None) -> None:
        self._engine, self._pid, self._on_progress = engine, pid, on_progress
        self._watch: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-progress", daemon=True)

    def __enter__(self) -> _Monitor:
        if self._on_progress is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @contextmanager
    def watching(self, phase: str, rows: int) -> Iterator[None]:
        """Report PostgreSQL's progress as `phase` while the block runs."""
        with self._lock:
            self._watch = (phase, rows)
        try:
            yield
        finally:
            with self._lock:
                self._watch = None

    def _run(self) -> None:
        try:
            with self._engine.connect() as conn:
                while not self._stop.wait(_POLL):
                    with self._lock:
                        watch = self._watch
                    if watch is None or self._on_progress is None:
                        continue
                    found = conn.exec_driver_sql(_PROGRESS_SQL, {"pid": self._pid}).first()
                    conn.rollback()
                    if found is None:
                        continue
                    phase, blocks_done, blocks_total, tuples_done, tuples_total = found
                    self._on_progress(
                        f"{watch[0]}: {phase}",
                        int(tuples_done or 0),
                        int(tuples_total or 0),
                        int(blocks_done or 0) * _BLOCK,
                        int(blocks_total or 0) * _BLOCK,
                    )
        except Exception:  # progress is a courtesy: never the load's failure
            logger.exception("watching the load's progress failed")


def _copy(
    raw: psycopg.Connection[Any],
    parquet: pq.ParquetFile,
    build: str,
    source_id: int,
    columns: list[str],
    batch_size: int,
    path: Path,
    report: Callable[[str, int, int], None],
) -> int:
    """Stream every row group through geo_engine's COPY encoder into the build table."""
    rows_done = bytes_done = 0
    try:
        with raw.cursor() as cursor, cursor.copy(partitions.copy_statement(build)) as copy:
            copy.write(geo_engine.copy_header())
            for group in range(parquet.num_row_groups):
                for batch in parquet.iter_batches(
                    batch_size=batch_size, row_groups=[group], columns=columns
                ):
                    copy.write(
                        geo_engine.encode_copy_rows(
                            batch,
                            source_id=source_id,
                            geometry_column=GEOMETRY_COLUMN,
                            srid=SRID,
                        )
                    )
                    rows_done += batch.num_rows
                    report("copy", rows_done, bytes_done)
                bytes_done += _compressed_bytes(parquet.metadata.row_group(group))
            copy.write(geo_engine.copy_trailer())
    except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
        # PostGIS reports unreadable geometries as internal errors (XX000); the
        # context names the COPY line, i.e. the feature's number.
        where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise LoadRefused(f"{path.name}: {exc.diag.message_primary or exc}{where}") from exc
    return rows_done


def _lap(started: float) -> float:
    return round(time.perf_counter() - started, 6)


def _new_source_id(conn: Connection) -> int:
    # Taken now, so that the rows can carry it; the row itself is inserted at the swap.
    value = conn.exec_driver_sql("SELECT nextval('public.core_source_id_seq')").scalar_one()
    return int(value)


def _source_exists(conn: Connection, source_id: int) -> bool:
    found = conn.execute(select(Source.id).where(Source.id == source_id)).scalar_one_or_none()
    return found is not None


def _refresh_source(
    conn: Connection,
    *,
    source_id: int,
    name: str | None,
    description: str | None,
    source_type: str,
    attributes: dict[str, Any],
) -> str:
    """Give a re-imported source its new profile (and name/description, when given)."""
    values: dict[str, Any] = {"attributes": attributes, "source_type": source_type}
    if name:
        values["name"] = name
    if description is not None:
        values["description"] = description
    sid = conn.execute(
        update(Source).where(Source.id == source_id).values(**values).returning(Source.sid)
    ).scalar_one_or_none()
    if sid is None:
        raise SourceGone(f"source {source_id} does not exist")
    return str(sid)


def _existing(conn: Connection, *, sid: str, source_id: int | None) -> LoadResult | None:
    """The result of an earlier attempt of this import that committed, if one did."""
    if source_id is None:
        found = conn.execute(select(Source.id, Source.sid).where(Source.sid == sid)).one_or_none()
    else:
        found = conn.execute(
            select(Source.id, Source.sid).where(
                Source.id == source_id, Source.attributes["import"]["key"].astext == sid
            )
        ).one_or_none()
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


def _compressed_bytes(row_group: Any) -> int:
    return sum(
        row_group.column(index).total_compressed_size for index in range(row_group.num_columns)
    )
