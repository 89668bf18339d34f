"""A large load, built in parallel: contiguous chunks of the staged rows, each COPYed,
indexed and analysed by a connection of its own (see `partitions` for the layout).

One PostgreSQL backend parses a million rows' jsonb and builds their GIST index on one
core; two chunks use two. The staged file is in Hilbert order, so contiguous chunks are
also spatially apart, each with a compact index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

import geo_engine
from core.errors import InvalidInput
from pipeline.config import pause_point
from pipeline.steps import partitions
from pipeline.steps.load_progress import Monitor

SRID = 4326
# (rows just written, bytes of the file just read): called from every chunk.
RowsCallback = Callable[[int, int], None]


class LoadRefused(InvalidInput):
    """PostgreSQL refused a row of the staged file (e.g. a geometry PostGIS cannot read)."""

    code = "load_refused"


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of the staged file, and the gids they get."""

    name: str
    start: int  # the first row's number in the staged file
    rows: int
    first_gid: int = 0

    @property
    def gids(self) -> tuple[int, int]:
        """The chunk's gid range, end excluded."""
        return self.first_gid, self.first_gid + max(self.rows, 1)

    @property
    def row_range(self) -> range:
        """The numbers of the chunk's rows in the staged file."""
        return range(self.start, self.start + self.rows)


def plan(rows: int, *, build: str, parts: int) -> list[Chunk]:
    """Split `rows` rows into `parts` contiguous chunks of equal size (to a row).

    By rows, not by row groups: a 100K-row file has a 64Ki-row group and a smaller one,
    and the chunk holding the larger would finish last by a third.
    """
    parts = max(1, min(parts, rows))
    bounds = [rows * part // parts for part in range(parts + 1)]
    return [
        Chunk(f"{build}_{part}", bounds[part], bounds[part + 1] - bounds[part])
        for part in range(parts)
    ]


def with_gids(chunks: list[Chunk], first: int) -> list[Chunk]:
    """The chunks with consecutive gid ranges from `first`."""
    placed = []
    for chunk in chunks:
        placed.append(Chunk(chunk.name, chunk.start, chunk.rows, first))
        first += max(chunk.rows, 1)
    return placed


def copy_rows(
    raw: psycopg.Connection[Any],
    *,
    path: Path,
    table: str,
    source_id: int,
    rows: range,
    columns: list[str],
    batch_size: int,
    geometry_column: str,
    on_rows: RowsCallback,
) -> int:
    """Stream the staged file's `rows` through geo_engine's COPY encoder into `table`
    (created in this transaction: COPY FREEZE)."""
    parquet = pq.ParquetFile(path)
    done = 0
    try:
        with raw.cursor() as cursor, cursor.copy(partitions.copy_statement(table)) as copy:
            copy.write(geo_engine.copy_header())
            for batch in _batches(parquet, rows, columns, batch_size, on_rows):
                copy.write(
                    geo_engine.encode_copy_rows(
                        batch, source_id=source_id, geometry_column=geometry_column, srid=SRID
                    )
                )
                done += batch.num_rows
                on_rows(batch.num_rows, 0)
            copy.write(geo_engine.copy_trailer())
    except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
        # PostGIS reports unreadable geometries as internal errors (XX000); the context
        # names the COPY line, i.e. the feature's number within this COPY.
        where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise LoadRefused(f"{path.name}: {exc.diag.message_primary or exc}{where}") from exc
    return done


def _batches(
    parquet: pq.ParquetFile, rows: range, columns: list[str], batch_size: int, on_rows: RowsCallback
) -> Iterator[pa.RecordBatch]:
    """The batches holding `rows`, read from the row groups they fall in (sliced where a
    group holds rows outside); each group's share of bytes told to `on_rows` once read."""
    offset = 0
    for group in range(parquet.num_row_groups):
        meta = parquet.metadata.row_group(group)
        low, high = max(rows.start, offset), min(rows.stop, offset + meta.num_rows)
        if low < high:
            position = offset
            for batch in parquet.iter_batches(
                batch_size=batch_size, row_groups=[group], columns=columns
            ):
                start, stop = max(low, position), min(high, position + batch.num_rows)
                if start < stop:
                    yield batch.slice(start - position, stop - start)
                position += batch.num_rows
                if position >= high:
                    break
            on_rows(0, compressed_bytes(meta) * (high - low) // max(meta.num_rows, 1))
        offset += meta.num_rows


def compressed_bytes(row_group: Any) -> int:
    """The bytes a row group takes in the file."""
    return sum(
        row_group.column(index).total_compressed_size for index in range(row_group.num_columns)
    )


@dataclass
class Build:
    """What a parallel build needs to know, shared by its chunks."""

    engine: Engine
    path: Path
    source_id: int
    part: int
    parent_columns: list[partitions.Column]
    columns: list[str]
    batch_size: int
    geometry_column: str
    statement_timeout: float | None
    monitor: Monitor
    on_rows: RowsCallback
    on_phase: Callable[[str], None]


def build_chunks(build: Build, chunks: list[Chunk]) -> dict[str, float]:
    """Build every chunk, each in a thread with its own connection; the first error raises.

    Returns the slowest chunk's time of each phase (`copy`, `index`, `analyze`).
    """
    with ThreadPoolExecutor(len(chunks), thread_name_prefix="load-chunk") as pool:
        futures = [pool.submit(_build_chunk, build, chunk) for chunk in chunks]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()  # the first failure raises (the other chunks end on their own)
        timings = [future.result() for future in futures]
    return {phase: max(t[phase] for t in timings) for phase in ("copy", "index", "analyze")}


_announced = threading.Lock()


def _build_chunk(build: Build, chunk: Chunk) -> dict[str, float]:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with build.engine.connect() as conn, conn.begin():
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        if build.statement_timeout:
            raw.execute(f"SET LOCAL statement_timeout = {int(build.statement_timeout * 1000)}")
        partitions.create_build_table(
            raw,
            name=chunk.name,
            source_id=build.source_id,
            part=build.part,
            columns=build.parent_columns,
            gids=chunk.gids,
        )
        copy_rows(
            raw,
            path=build.path,
            table=chunk.name,
            source_id=build.source_id,
            rows=chunk.row_range,
            columns=build.columns,
            batch_size=build.batch_size,
            geometry_column=build.geometry_column,
            on_rows=build.on_rows,
        )
        partitions.finish_chunk(raw, name=chunk.name, columns=build.parent_columns)
        timings["copy"] = lap(clock)
        with _announced:
            pause_point("load.copied", lambda: build.on_phase("paused"))
        clock = time.perf_counter()
        index_and_analyze(raw, chunk.name, chunk.rows, build.monitor, build.on_phase, timings)
    return timings


def index_and_analyze(
    raw: psycopg.Connection[Any],
    table: str,
    rows: int,
    monitor: Monitor,
    on_phase: Callable[[str], None],
    timings: dict[str, float],
) -> None:
    """Build the parent's indexes on `table`, then ANALYZE it (timings: `index`, `analyze`)."""
    clock = time.perf_counter()
    pid = raw.info.backend_pid
    statements = partitions.index_statements(raw, name=table)
    for number, statement in enumerate(statements, start=1):
        phase = f"index {number}/{len(statements)}"
        on_phase(phase)
        with monitor.watching(pid, phase, rows):
            raw.execute(statement)
    timings["index"] = lap(clock)
    clock = time.perf_counter()
    on_phase("analyze")
    with monitor.watching(pid, "analyze", rows):
        partitions.analyze(raw, name=table)
    timings["analyze"] = lap(clock)


def lap(started: float) -> float:
    """Seconds since `started`, rounded to the microsecond."""
    return round(time.perf_counter() - started, 6)
