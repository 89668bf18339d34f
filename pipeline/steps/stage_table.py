"""Stage an Arrow table (an analysis's polygons) as GeoParquet, the way imports are staged.

`stage.run` reads files through geo_engine's readers; an analysis already holds its
rows as an Arrow table. This feeds the table into the stage step's own statements (its
"materialize" path: `stage._ingest_sql`, `_summary`, `_write_sql`), so the file is the
one an import writes: GeoParquet 1.1 metadata, bbox covering column, Hilbert order, zstd,
the same row groups, written aside and renamed. Then the import's profile and load steps
take it as they take any staged file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa

from pipeline.steps import duck, stage
from pipeline.steps.stage import GEOMETRY_COLUMN, StageResult


def run(
    *,
    table: pa.Table,
    destination: Path,
    memory_limit: str = stage.DEFAULT_MEMORY_LIMIT,
    spill_dir: Path | None = None,
) -> StageResult:
    """Write `table` (attributes and a WKB `geometry` column in EPSG:4326) to `destination`."""
    if GEOMETRY_COLUMN not in table.column_names:
        raise ValueError(f"the table has no {GEOMETRY_COLUMN!r} column")
    started = time.perf_counter()
    # The geometry as plain WKB bytes (see stage._Feed: DuckDB keeps a blob as it is).
    plain = pa.schema(
        [f.remove_metadata() if f.name == GEOMETRY_COLUMN else f for f in table.schema]
    )
    incoming = table.cast(plain).combine_chunks()
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    spill_dir = spill_dir or destination.parent / f".spill-{os.getpid()}"
    attributes = [name for name in incoming.column_names if name != GEOMETRY_COLUMN]
    covering = stage._covering_name(incoming.column_names)
    try:
        duck.configure(memory_limit=memory_limit, temp_directory=spill_dir)
        with duck.connect() as con:
            con.register("incoming", incoming)
            try:
                con.execute(stage._ingest_sql(incoming.column_names))
                rows, bounds, types = stage._summary(con)
                geo = stage.geo_metadata(
                    crs=None, geometry_types=types, bbox=bounds, covering=covering
                )
                sql = stage._write_sql(
                    "staged", rows, attributes, covering, bounds, partial, {"geo": json.dumps(geo)}
                )
                con.execute(sql)
                con.execute("DROP TABLE staged")
            finally:
                con.unregister("incoming")
        stage._durable_rename(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return StageResult(
        path=destination,
        feature_count=rows,
        geometry_types=types,
        bbox=bounds,
        crs=None,
        file_bytes=destination.stat().st_size,
        timings={"write": round(time.perf_counter() - started, 6)},
    )
