"""Load: the staged batches into `core_geometry` by binary COPY, all in one transaction.

The source row and every feature commit together or not at all. The source's `sid`
(chosen when the task was created) is the idempotency key: when a source with that
sid exists, the import already committed and nothing is loaded again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

import geo_engine
from core.errors import InvalidInput
from core.models import Geometry, Source
from pipeline.steps.stage import BBOX_COLUMN, GEOMETRY_COLUMN

COPY_SQL = (
    "COPY core_geometry (geom, metadata, geometry_type, source_id) FROM STDIN (FORMAT BINARY)"
)
SRID = 4326
logger = logging.getLogger(__name__)

# Called after each batch with (rows done, rows total, bytes done, bytes total).
ProgressCallback = Callable[[int, int, int, int], None]


class LoadRefused(InvalidInput):
    """PostgreSQL refused a row of the staged file (e.g. a geometry PostGIS cannot read)."""

    code = "load_refused"


@dataclass
class LoadResult:
    """The loaded source and whether this call loaded it or found it already loaded."""

    source_id: int
    sid: str
    feature_count: int
    already_loaded: bool
    timings: dict[str, float] = field(default_factory=dict)


def run(
    *,
    engine: Engine,
    path: Path,
    sid: str,
    name: str,
    source_type: str,
    attributes: dict[str, Any],
    description: str | None = None,
    batch_size: int = 65_536,
    on_progress: ProgressCallback | None = None,
) -> LoadResult:
    """Create the source `sid` and COPY the staged file's features into it, atomically."""
    started = time.perf_counter()
    parquet = pq.ParquetFile(path)
    columns = [name for name in parquet.schema_arrow.names if name != BBOX_COLUMN]
    rows_total = parquet.metadata.num_rows
    bytes_total = path.stat().st_size
    with engine.connect() as conn:
        existing = _existing(conn, sid)
        if existing is not None:
            return existing
        try:
            with conn.begin():
                source_id = conn.execute(
                    insert(Source)
                    .values(
                        sid=sid,
                        name=name,
                        description=description,
                        source_type=source_type,
                        attributes=attributes,
                    )
                    .returning(Source.id)
                ).scalar_one()
                raw = conn.connection.driver_connection
                assert isinstance(raw, psycopg.Connection)
                rows_done = bytes_done = 0
                try:
                    with raw.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
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
                                if on_progress is not None:
                                    on_progress(rows_done, rows_total, bytes_done, bytes_total)
                            bytes_done += _compressed_bytes(parquet.metadata.row_group(group))
                        copy.write(geo_engine.copy_trailer())
                except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
                    # PostGIS reports unreadable geometries as internal errors (XX000);
                    # the context names the COPY line, i.e. the feature's number.
                    where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
                    raise LoadRefused(
                        f"{path.name}: {exc.diag.message_primary or exc}{where}"
                    ) from exc
                if on_progress is not None:
                    on_progress(rows_done, rows_total, bytes_total, bytes_total)
        except IntegrityError:
            # Another worker committed the same sid first: that load stands.
            existing = _existing(conn, sid)
            if existing is None:
                raise
            return existing
    copied = time.perf_counter()
    analyze(engine)
    return LoadResult(
        source_id=source_id,
        sid=sid,
        feature_count=rows_done,
        already_loaded=False,
        timings={
            "load": round(copied - started, 6),
            "analyze": round(time.perf_counter() - copied, 6),
        },
    )


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics of core_geometry after a load.

    The load has committed by now: a failure here is logged, never the task's failure.
    """
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE core_geometry"))
    except SQLAlchemyError:
        logger.exception("ANALYZE core_geometry failed after a load")


def _existing(conn: Connection, sid: str) -> LoadResult | None:
    source_id = conn.execute(select(Source.id).where(Source.sid == sid)).scalar_one_or_none()
    if source_id is None:
        conn.rollback()
        return None
    count = conn.execute(
        select(func.count()).select_from(Geometry).where(Geometry.source_id == source_id)
    ).scalar_one()
    conn.rollback()
    return LoadResult(source_id=source_id, sid=sid, feature_count=count, already_loaded=True)


def _compressed_bytes(row_group: Any) -> int:
    return sum(
        row_group.column(index).total_compressed_size for index in range(row_group.num_columns)
    )
