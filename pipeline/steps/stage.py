"""Read and stage: geo_engine's Arrow stream written to a GeoParquet 1.1 file.

The batches go from the Rust reader to the Parquet writer without a Python loop over
rows; DuckDB computes each batch's bounding boxes and geometry types in bulk. The
file appears under its final name only when complete (written aside, then renamed).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import geo_engine
from pipeline.steps import duck

GEOMETRY_COLUMN = "geometry"
BBOX_COLUMN = "bbox"
ROW_GROUP_ROWS = 65_536
GEOPARQUET_VERSION = "1.1.0"
BBOX_TYPE = pa.struct(
    [
        pa.field("xmin", pa.float64()),
        pa.field("ymin", pa.float64()),
        pa.field("xmax", pa.float64()),
        pa.field("ymax", pa.float64()),
    ]
)
_BOUNDS_SQL = """
SELECT ST_XMin(g) AS xmin, ST_YMin(g) AS ymin, ST_XMax(g) AS xmax, ST_YMax(g) AS ymax,
       ST_GeometryType(g)::VARCHAR AS gtype, ST_HasZ(g) AS has_z
FROM (SELECT ST_GeomFromWKB(wkb) AS g FROM wkb_batch)
"""

ProgressCallback = Callable[[int], None]
_ENGINE_ERROR = re.compile(r"\b(\w+Error): (.*)", re.DOTALL)


@dataclass
class StageResult:
    """What staging wrote and learnt on the way."""

    path: Path
    feature_count: int
    geometry_types: list[str]
    bbox: list[float] | None
    crs: dict[str, Any] | None
    file_bytes: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Extent:
    types: set[str] = field(default_factory=set)
    bounds: list[float] | None = None

    def add(self, bounds: pa.Table) -> None:
        for kind in bounds.group_by(["gtype", "has_z"]).aggregate([]).to_pylist():
            gtype, has_z = kind["gtype"], kind["has_z"]
            if gtype is not None:
                self.types.add(duck.geometry_type_name(gtype, bool(has_z)))
        lows = [pc.min(bounds[name]).as_py() for name in ("xmin", "ymin")]
        highs = [pc.max(bounds[name]).as_py() for name in ("xmax", "ymax")]
        if None in lows or None in highs:
            return
        if self.bounds is None:
            self.bounds = [*lows, *highs]
        else:
            self.bounds = [
                min(self.bounds[0], lows[0]),
                min(self.bounds[1], lows[1]),
                max(self.bounds[2], highs[0]),
                max(self.bounds[3], highs[1]),
            ]


def run(
    *,
    source: Path,
    destination: Path,
    encoding: str | None = None,
    source_crs: str | None = None,
    batch_size: int = 65_536,
    on_progress: ProgressCallback | None = None,
) -> StageResult:
    """Stream the shapefile at `source` into the GeoParquet file `destination`."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    timings = {"read": 0.0, "stage": 0.0}
    clock = time.perf_counter()
    stream = geo_engine.stream_shapefile(
        str(source), encoding=encoding, source_crs=source_crs, batch_size=batch_size
    )
    reader = pa.RecordBatchReader.from_stream(stream)
    timings["read"] += time.perf_counter() - clock
    schema = reader.schema
    geometry_index = schema.get_field_index(GEOMETRY_COLUMN)
    crs = _crs_of(schema.field(geometry_index))
    out_schema = schema.append(pa.field(BBOX_COLUMN, BBOX_TYPE))
    extent = _Extent()
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    try:
        with (
            duck.connect(threads=1) as con,
            pq.ParquetWriter(
                partial,
                out_schema,
                compression="zstd",
                write_page_index=True,
                # Without ARROW:schema, readers take the schema metadata from the
                # footer, where `geo` is added once the extent is known.
                store_schema=False,
            ) as writer,
        ):
            while True:
                clock = time.perf_counter()
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    timings["read"] += time.perf_counter() - clock
                    break
                except pa.ArrowInvalid as exc:
                    raise _engine_error(exc) from exc
                timings["read"] += time.perf_counter() - clock
                clock = time.perf_counter()
                bounds = _bounds(con, batch.column(geometry_index))
                extent.add(bounds)
                pending.append(_with_bbox(batch, bounds, out_schema))
                pending_rows += batch.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    _flush(writer, pending)
                    pending, pending_rows = [], 0
                rows += batch.num_rows
                timings["stage"] += time.perf_counter() - clock
                if on_progress is not None:
                    on_progress(rows)
            clock = time.perf_counter()
            _flush(writer, pending)
            geo = geo_metadata(crs=crs, geometry_types=sorted(extent.types), bbox=extent.bounds)
            writer.add_key_value_metadata({**_reader_metadata(schema), "geo": json.dumps(geo)})
        _durable_rename(partial, destination)
        timings["stage"] += time.perf_counter() - clock
    finally:
        partial.unlink(missing_ok=True)
    return StageResult(
        path=destination,
        feature_count=rows,
        geometry_types=sorted(extent.types),
        bbox=extent.bounds,
        crs=crs,
        file_bytes=destination.stat().st_size,
        timings={name: round(seconds, 6) for name, seconds in timings.items()},
    )


def geo_metadata(
    *, crs: dict[str, Any] | None, geometry_types: list[str], bbox: list[float] | None
) -> dict[str, Any]:
    """The GeoParquet 1.1 `geo` file metadata of a staged file."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": geometry_types,
        "covering": {
            "bbox": {corner: [BBOX_COLUMN, corner] for corner in ("xmin", "ymin", "xmax", "ymax")}
        },
    }
    if crs is not None:
        column["crs"] = crs
    if bbox is not None:
        column["bbox"] = bbox
    return {
        "version": GEOPARQUET_VERSION,
        "primary_column": GEOMETRY_COLUMN,
        "columns": {GEOMETRY_COLUMN: column},
    }


def _engine_error(exc: Exception) -> Exception:
    """geo_engine's own exception for an error it raised inside the stream, if it was one.

    An error in a later batch reaches Python through pyarrow as ArrowInvalid, its message
    prefixed by geo_engine's class name ("External error: FormatError: roads.shp, record
    7: ...").
    """
    found = _ENGINE_ERROR.search(str(exc))
    kind = getattr(geo_engine, found.group(1), None) if found else None
    if found and isinstance(kind, type) and issubclass(kind, geo_engine.GeoEngineError):
        error: Exception = kind(found.group(2))
        return error
    return exc


def _reader_metadata(schema: pa.Schema) -> dict[str, str]:
    """The reader's schema-level facts (source CRS, encoding...), kept in the file's footer."""
    return {
        key.decode(): value.decode()
        for key, value in (schema.metadata or {}).items()
        if not key.startswith(b"ARROW:")
    }


def _crs_of(geometry: pa.Field) -> dict[str, Any] | None:
    """The PROJJSON CRS in the column's GeoArrow extension metadata (None: OGC:CRS84)."""
    raw = (geometry.metadata or {}).get(b"ARROW:extension:metadata")
    if not raw:
        return None
    crs = json.loads(raw).get("crs")
    return crs if isinstance(crs, dict) else None


def _bounds(con: duckdb.DuckDBPyConnection, wkb: pa.Array | pa.ChunkedArray) -> pa.Table:
    # A plain binary column (no extension metadata): DuckDB parses it with ST_GeomFromWKB.
    plain = wkb.cast(pa.binary()) if wkb.type != pa.binary() else wkb
    con.register("wkb_batch", pa.table({"wkb": plain}))
    try:
        # preserve_insertion_order (DuckDB's default) keeps the rows in batch order.
        return con.execute(_BOUNDS_SQL).to_arrow_table()
    finally:
        con.unregister("wkb_batch")


def _with_bbox(batch: pa.RecordBatch, bounds: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    columns = [bounds.column(name).combine_chunks() for name in ("xmin", "ymin", "xmax", "ymax")]
    mask = pc.is_null(columns[0])
    bbox = pa.StructArray.from_arrays(columns, fields=list(BBOX_TYPE), mask=mask)
    return pa.RecordBatch.from_arrays([*batch.columns, bbox], schema=schema)


def _flush(writer: pq.ParquetWriter, batches: list[pa.RecordBatch]) -> None:
    if batches:
        table = pa.Table.from_batches(batches, schema=writer.schema)
        # Caps a row group at two targets' worth when the reader's batches are very large.
        writer.write_table(table, row_group_size=2 * ROW_GROUP_ROWS)


def _durable_rename(partial: Path, destination: Path) -> None:
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, destination)
