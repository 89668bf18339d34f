"""Read and stage: geo_engine's Arrow stream written, in Hilbert order, to a GeoParquet 1.1 file.

The batches go from the Rust reader straight into DuckDB (through the Arrow C stream;
no Python loop over rows), which computes each geometry's bounding box, sorts the rows
by the Hilbert index of the boxes' centres over the data's extent, and writes Parquet
in row groups of ROW_GROUP_ROWS. Rows close in space share row groups, so a reader
filtering on the `bbox` covering column skips most row groups by their statistics,
and the GIST index of the load builds faster over spatially sorted rows.

A file that fits in one row group is written in the reader's order, unsorted: no
row group to skip, and the sort is a good part of a small file's staging.

The Hilbert index needs the extent, and the GeoParquet metadata (written through
COPY's KV_METADATA: DuckDB writes only GeoParquet 1.0 metadata itself) needs the
extent and the geometry types, all before the sort starts. Two ways to know them:

- **prescan** (shapefile, CSV, where reading is cheap): geo_engine reads the file once
  into `infer_metadata` (in Rust, in parallel), then a second time straight into the
  sorted COPY;
- **materialize** (GeoJSON, whose parsing costs more than a second pass over a table):
  DuckDB appends the stream to a table with each row's box and type, summarises it,
  and writes the table sorted.

Memory stays bounded whatever the file's size: DuckDB runs under `memory_limit` and
spills the table and the sort to a folder beside the destination. The file appears
under its final name only when complete (written aside, then renamed).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import geo_engine
from pipeline.steps import duck
from pipeline.steps.formats import InputFile, Stream, open_stream

GEOMETRY_COLUMN = "geometry"
BBOX_COLUMN = "bbox"
# GeoParquet recommends 50K-150K rows per row group; pruning wants them not too large.
ROW_GROUP_ROWS = 65_536
GEOPARQUET_VERSION = "1.1.0"
DEFAULT_MEMORY_LIMIT = "256MB"
# Formats read twice (see the module's doc); the others are materialised in DuckDB.
PRESCAN_FORMATS = ("shapefile", "csv")
# A prescan keeps the batches it read up to this size (Arrow bytes), so that a file of
# up to about 1.7 million points is read once; a larger one is read again.
PRESCAN_KEEP_BYTES = 96 * 2**20
# The rows' order in the file, which breaks ties of the Hilbert sort (a prescanned
# file; a table materialised in DuckDB has its rowid).
ROW_COLUMN = "__stage_row"
# DuckDB's BOX_2D as a plain struct (an empty geometry has none: NULL).
_BOX = "STRUCT(min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE)"

# (phase, rows done, rows total if known): `scan` and `read` count the rows read so far
# (a prescan, then the pass that sorts them), `write` the rows written (estimated).
ProgressCallback = Callable[[str, int, int | None], None]
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
    # (1-based line, reason) of the rows a CSV reader left out (on_bad_rows="skip").
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)


def run(
    *,
    source: Path | InputFile,
    destination: Path,
    encoding: str | None = None,
    source_crs: str | None = None,
    batch_size: int = 65_536,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    spill_dir: Path | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    on_progress: ProgressCallback | None = None,
) -> StageResult:
    """Stream `source` (a shapefile when given as a path) into the GeoParquet file `destination`.

    DuckDB's `memory_limit` and `spill_dir` are the process's (see `duck.configure`):
    by default beside the destination.
    """
    if not isinstance(source, InputFile):
        options = {"encoding": encoding, "source_crs": source_crs}
        source = InputFile(path=source, options={k: v for k, v in options.items() if v})
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    spill_dir = spill_dir or destination.parent / f".spill-{os.getpid()}"
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    scan = None
    if source.format in PRESCAN_FORMATS:
        scan = _prescan(source, batch_size, on_progress)
        timings["scan"] = _lap(clock)
        clock = time.perf_counter()
    summary = None if scan is None else scan.summary
    feed: _Feed | None = None
    incoming: pa.RecordBatchReader | pa.Table
    if scan is not None and scan.kept is not None:
        # The prescan kept every batch: DuckDB reads them, and the file is read once.
        schema, stream = scan.schema, scan.stream
        incoming = pa.Table.from_batches(scan.kept, schema=_plain_schema(schema))
        incoming = incoming.append_column(ROW_COLUMN, pa.array(np.arange(incoming.num_rows)))
        scan.kept = None
    else:
        # Read again; a CSV reader takes the first's types (no second type pass).
        stream = open_stream(
            source, batch_size=batch_size, schema=None if scan is None else scan.schema
        )
        known = None if summary is None else summary[0]
        feed = _Feed(stream.reader, on_progress, "read", known, numbered=summary is not None)
        schema, incoming = feed.schema, feed.reader()
    crs = _crs_of(schema.field(GEOMETRY_COLUMN))
    attributes = [name for name in schema.names if name != GEOMETRY_COLUMN]
    covering = _covering_name(schema.names)
    try:
        duck.configure(memory_limit=memory_limit, temp_directory=spill_dir)
        with duck.connect() as con:
            con.register("incoming", incoming)
            del incoming  # DuckDB holds it while registered
            try:
                if summary is None:
                    _guarded(feed, con, _ingest_sql(schema.names))
                    timings["read"] = _lap(clock)
                    clock = time.perf_counter()
                    summary = _summary(con)
                    relation = "staged"
                else:
                    relation = f"(SELECT *, {_box_sql()} AS __box FROM incoming)"
                rows, bounds, types = summary
                geo = geo_metadata(crs=crs, geometry_types=types, bbox=bounds, covering=covering)
                metadata = {**_reader_metadata(schema), "geo": json.dumps(geo)}
                sql = _write_sql(
                    relation, rows, attributes, covering, bounds, partial, metadata, row_group_rows
                )
                with duck.Ticker(con, _as_rows(on_progress, rows)):
                    _guarded(feed, con, sql)
            finally:
                con.unregister("incoming")
        _durable_rename(partial, destination)
        timings["write"] = _lap(clock)
    finally:
        partial.unlink(missing_ok=True)
    if on_progress is not None:
        on_progress("write", rows, rows)
    return StageResult(
        path=destination,
        feature_count=rows,
        geometry_types=types,
        bbox=bounds,
        crs=crs,
        file_bytes=destination.stat().st_size,
        timings=timings,
        # The stream was read to its end: the report is complete.
        skipped_rows=stream.skipped_rows,
    )


Summary = tuple[int, list[float] | None, list[str]]


@dataclass
class _Scan:
    """What a prescan learnt, and the batches it kept (None: too many to keep)."""

    summary: Summary
    schema: pa.Schema
    kept: list[pa.RecordBatch] | None
    stream: Stream


def _prescan(source: InputFile, batch_size: int, on_progress: ProgressCallback | None) -> _Scan:
    """Rows, extent and geometry types of `source`, from one pass of geo_engine over it;
    the batches too, up to PRESCAN_KEEP_BYTES."""
    stream = open_stream(source, batch_size=batch_size)
    feed = _Feed(stream.reader, on_progress, "scan", keep_bytes=PRESCAN_KEEP_BYTES)
    try:
        found = geo_engine.infer_metadata(feed.reader(plain=False))
    except (pa.ArrowInvalid, geo_engine.GeoEngineError) as exc:
        # A reader's error crossed the Arrow C stream: find which one it was.
        specific = _engine_error(exc)
        if specific is exc:
            raise
        raise specific from exc
    geometry = found.get("geometry") or {}
    has_z = bool(geometry.get("has_z"))
    types = sorted(
        duck.geometry_type_name(name, has_z)
        for name, count in geometry.get("types", {}).items()
        if count
    )
    bounds = geometry.get("bbox")
    extent = None if bounds is None else [float(v) for v in bounds]
    summary = (int(found["row_count"]), extent, types)
    return _Scan(summary, feed.schema, feed.kept, stream)


def _guarded(feed: _Feed | None, con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run a statement reading the stream; an error inside the stream raises as geo_engine's."""
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise ((feed and feed.error) or exc) from exc


def geo_metadata(
    *,
    crs: dict[str, Any] | None,
    geometry_types: list[str],
    bbox: list[float] | None,
    covering: str = BBOX_COLUMN,
) -> dict[str, Any]:
    """The GeoParquet 1.1 `geo` file metadata of a staged file."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": geometry_types,
        "covering": {
            "bbox": {corner: [covering, corner] for corner in ("xmin", "ymin", "xmax", "ymax")}
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


def covering_column(path: Path) -> str | None:
    """The bbox covering column of a staged file, from its `geo` metadata."""
    footer = pq.read_metadata(path).metadata or {}
    geo = json.loads(footer.get(b"geo", b"{}"))
    column = geo.get("columns", {}).get(geo.get("primary_column"), {})
    xmin = column.get("covering", {}).get("bbox", {}).get("xmin")
    return str(xmin[0]) if xmin else None


class _Feed:
    """The reader's batches as a stream DuckDB can scan, counting rows on the way.

    The geometry column loses its GeoArrow extension metadata, so that DuckDB keeps the
    WKB as it is (a blob) instead of converting it to its own geometry type and back.
    An error raised by geo_engine inside the stream is kept, to be raised as itself.
    """

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        on_progress: ProgressCallback | None,
        phase: str,
        rows_total: int | None = None,
        keep_bytes: int = 0,
        numbered: bool = False,
    ) -> None:
        self._reader = reader
        # Each batch with its rows' numbers in the file (ROW_COLUMN), for DuckDB.
        self._numbered = numbered
        # The batches read, while they stay within `keep_bytes` (then None).
        self.kept: list[pa.RecordBatch] | None = [] if keep_bytes > 0 else None
        self._keep_bytes, self._kept_bytes = keep_bytes, 0
        self._on_progress = on_progress
        self._phase, self._rows_total = phase, rows_total
        self.rows = 0
        self.error: Exception | None = None
        self.schema = reader.schema
        self._plain = _plain_schema(reader.schema)
        self._numbered_schema = self._plain.append(pa.field(ROW_COLUMN, pa.int64()))

    def _exported(self, plain: bool) -> pa.Schema:
        if not plain:
            return self.schema
        return self._numbered_schema if self._numbered else self._plain

    def _batches(self, plain: bool) -> Iterator[pa.RecordBatch]:
        schema = self._exported(plain)
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                self.error = _engine_error(exc)
                raise
            self.rows += batch.num_rows
            if self.kept is not None:
                self._kept_bytes += batch.nbytes
                if self._kept_bytes <= self._keep_bytes:
                    self.kept.append(pa.RecordBatch.from_arrays(batch.columns, schema=self._plain))
                else:
                    self.kept = None
            if self._on_progress is not None:
                self._on_progress(self._phase, self.rows, self._rows_total)
            columns = batch.columns
            if schema is self._numbered_schema:
                columns = [*columns, pa.array(np.arange(self.rows - batch.num_rows, self.rows))]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    def reader(self, *, plain: bool = True) -> pa.RecordBatchReader:
        """A one-shot stream of the batches (`plain`: the geometry without extension)."""
        return pa.RecordBatchReader.from_batches(self._exported(plain), self._batches(plain))


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with the geometry field's extension metadata dropped (see `_Feed`)."""
    return pa.schema([f.remove_metadata() if f.name == GEOMETRY_COLUMN else f for f in schema])


def _as_rows(on_progress: ProgressCallback | None, rows: int) -> Callable[[float], None] | None:
    """DuckDB's percent of the write as rows written, for `on_progress`."""
    if on_progress is None:
        return None
    report = on_progress

    def written(percent: float) -> None:
        report("write", int(rows * percent / 100), rows)

    return written


def _box_sql() -> str:
    return f"ST_Extent(ST_GeomFromWKB({duck.quote(GEOMETRY_COLUMN)}))::{_BOX}"


def _ingest_sql(names: list[str]) -> str:
    columns = ", ".join(duck.quote(name) for name in names)
    return f"""
        CREATE TEMP TABLE staged AS
        SELECT {columns},
               ST_Extent(g)::{_BOX} AS __box,
               ST_GeometryType(g)::VARCHAR AS __type,
               ST_HasZ(g) AS __z
        FROM (SELECT *, ST_GeomFromWKB({duck.quote(GEOMETRY_COLUMN)}) AS g FROM incoming)
    """


def _summary(con: duckdb.DuckDBPyConnection) -> Summary:
    row = con.execute(
        "SELECT count(*), min(__box.min_x), min(__box.min_y), max(__box.max_x), "
        "max(__box.max_y) FROM staged"
    ).fetchone()
    assert row is not None  # an aggregate without GROUP BY answers one row
    bounds = None if row[1] is None else [float(value) for value in row[1:5]]
    kinds = con.execute(
        "SELECT DISTINCT __type, __z FROM staged WHERE __type IS NOT NULL"
    ).fetchall()
    types = sorted({duck.geometry_type_name(name, bool(has_z)) for name, has_z in kinds})
    return int(row[0]), bounds, types


def _write_sql(
    relation: str,
    rows: int,
    attributes: list[str],
    covering: str,
    bounds: list[float] | None,
    destination: Path,
    metadata: dict[str, str],
    row_group_rows: int = ROW_GROUP_ROWS,
) -> str:
    columns = [duck.quote(name) for name in attributes]
    box = (
        "CASE WHEN __box IS NULL THEN NULL ELSE struct_pack(xmin := __box.min_x, "
        "ymin := __box.min_y, xmax := __box.max_x, ymax := __box.max_y) END"
    )
    select = ", ".join([*columns, duck.quote(GEOMETRY_COLUMN), f"{box} AS {duck.quote(covering)}"])
    # Ties (and everything, without an extent) keep the reader's order: the table's
    # rowid, or the row numbers the stream or the kept batches carry.
    order = "rowid" if relation == "staged" else ROW_COLUMN
    if rows <= row_group_rows:
        # One row group: no order inside it prunes anything, and the sort (with its
        # Hilbert keys) is a third of a small file's staging. DuckDB keeps the reader's
        # order (preserve_insertion_order).
        order = ""
    elif bounds is not None:
        extent = (
            f"{{'min_x': {bounds[0]!r}, 'min_y': {bounds[1]!r}, "
            f"'max_x': {bounds[2]!r}, 'max_y': {bounds[3]!r}}}::BOX_2D"
        )
        # Null and empty geometries (no box) sort last; rowid keeps the sort stable.
        order = f"ST_Hilbert(__box::BOX_2D, {extent}) NULLS LAST, {order}"
    kv = ", ".join(f"{_literal(key)}: {_literal(value)}" for key, value in metadata.items())
    # zstd as GeoParquet recommends, at its fastest level: a third less time than the
    # default level for a file 7% larger (the staged file is an intermediate).
    return f"""
        COPY (SELECT {select} FROM {relation} {f"ORDER BY {order}" if order else ""})
        TO {_literal(str(destination))}
        (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1,
         ROW_GROUP_SIZE {int(row_group_rows)},
         KV_METADATA {{{kv}}})
    """


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _lap(started: float) -> float:
    return round(time.perf_counter() - started, 6)


def _covering_name(names: list[str]) -> str:
    """`bbox`, unless an attribute has that name."""
    name = BBOX_COLUMN
    while name in names:
        name = f"_{name}"
    return name


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


def _durable_rename(partial: Path, destination: Path) -> None:
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, destination)
