"""A large load, built in parallel: contiguous chunks of the staged rows, each COPYed,
indexed and analysed by a connection of its own (see `partitions` for the layout).

One PostgreSQL backend parses a million rows' jsonb and builds their GIST index on one
core; two chunks use two. The staged file is in Hilbert order, so contiguous chunks are
also spatially apart, each with a compact index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
from sqlalchemy import Engine

import geo_engine
from core.errors import InvalidInput
from pipeline.config import pause_point
from pipeline.steps import partitions
from pipeline.steps.load_progress import Monitor

SRID = 4326
# (rows just written, bytes of the row groups just finished): called from every chunk.
RowsCallback = Callable[[int, int], None]


class LoadRefused(InvalidInput):
    """PostgreSQL refused a row of the staged file (e.g. a geometry PostGIS cannot read)."""

    code = "load_refused"


@dataclass(frozen=True)
class Chunk:
    """Consecutive row groups of the staged file, and the gids their rows get."""

    name: str
    row_groups: list[int]
    rows: int
    first_gid: int = 0

    @property
    def gids(self) -> tuple[int, int]:
        """The chunk's gid range, end excluded."""
        return self.first_gid, self.first_gid + max(self.rows, 1)


def plan(parquet: pq.ParquetFile, *, build: str, parts: int) -> list[Chunk]:
    """Split the row groups into at most `parts` contiguous chunks of about equal rows."""
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    total = sum(sizes)
    parts = max(1, min(parts, len(sizes)))
    chunks: list[Chunk] = []
    groups: list[int] = []
    rows = seen = 0
    for index, size in enumerate(sizes):
        groups.append(index)
        rows += size
        seen += size
        if len(chunks) < parts - 1 and seen >= total * (len(chunks) + 1) / parts:
            chunks.append(Chunk(f"{build}_{len(chunks)}", groups, rows))
            groups, rows = [], 0
    if groups or not chunks:
        chunks.append(Chunk(f"{build}_{len(chunks)}", groups, rows))
    return chunks


def with_gids(chunks: list[Chunk], first: int) -> list[Chunk]:
    """The chunks with consecutive gid ranges from `first`."""
    placed = []
    for chunk in chunks:
        placed.append(Chunk(chunk.name, chunk.row_groups, chunk.rows, first))
        first += max(chunk.rows, 1)
    return placed


def copy_rows(
    raw: psycopg.Connection[Any],
    *,
    path: Path,
    table: str,
    source_id: int,
    row_groups: list[int],
    columns: list[str],
    batch_size: int,
    geometry_column: str,
    on_rows: RowsCallback,
) -> int:
    """Stream row groups through geo_engine's COPY encoder into `table` (created in this
    transaction: COPY FREEZE)."""
    parquet = pq.ParquetFile(path)
    done = 0
    try:
        with raw.cursor() as cursor, cursor.copy(partitions.copy_statement(table)) as copy:
            copy.write(geo_engine.copy_header())
            for group in row_groups:
                for batch in parquet.iter_batches(
                    batch_size=batch_size, row_groups=[group], columns=columns
                ):
                    copy.write(
                        geo_engine.encode_copy_rows(
                            batch, source_id=source_id, geometry_column=geometry_column, srid=SRID
                        )
                    )
                    done += batch.num_rows
                    on_rows(batch.num_rows, 0)
                on_rows(0, compressed_bytes(parquet.metadata.row_group(group)))
            copy.write(geo_engine.copy_trailer())
    except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
        # PostGIS reports unreadable geometries as internal errors (XX000); the context
        # names the COPY line, i.e. the feature's number within this COPY.
        where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise LoadRefused(f"{path.name}: {exc.diag.message_primary or exc}{where}") from exc
    return done


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
            raw, name=chunk.name, source_id=build.source_id, gids=chunk.gids
        )
        copy_rows(
            raw,
            path=build.path,
            table=chunk.name,
            source_id=build.source_id,
            row_groups=chunk.row_groups,
            columns=build.columns,
            batch_size=build.batch_size,
            geometry_column=build.geometry_column,
            on_rows=build.on_rows,
        )
        partitions.finish_chunk(raw, name=chunk.name)
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
