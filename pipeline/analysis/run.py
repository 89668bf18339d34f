"""The analyses' steps as the worker runs them: the task's plan in, a kernel called, output out.

Interpolate and grid read the points (`points.read`), move them into the grid's CRS
(geo_engine.transform_coords), call the geo_engine kernel and publish the grid as a COG
(`rasters.publish_grid`). Vectorize and polygon grids build an Arrow table of polygons
in EPSG:4326 and stage it (`stage_table`), for the import's profile and load steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import rasterio

import geo_engine
from core.errors import InvalidInput
from core.models import Task
from core.settings import Settings
from pipeline.analysis import points, rasters
from pipeline.config import import_settings, raster_settings
from pipeline.importing import remove_staged, remove_upload, staged_path
from pipeline.runner import StepContext
from pipeline.steps import raster, stage_table
from pipeline.steps.stage import GEOMETRY_COLUMN

WGS84 = "EPSG:4326"
STATISTICS = ("count", "sum", "mean", "min", "max")


class AnalysisFailed(InvalidInput):
    """A kernel refused the data (NaN, collinear or duplicate points, a singular system)."""

    code = "analysis_error"


def _kernel(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a geo_engine kernel; what it refuses fails the task at once (no retry helps)."""
    try:
        return function(*args, **kwargs)
    except (geo_engine.GeoEngineError, ValueError) as exc:
        raise AnalysisFailed(f"{type(exc).__name__}: {exc}") from None


# A polygon of one ring of five points as little-endian WKB: 93 bytes.
_CELL_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("points", "<u4"),
                      ("xy", "<f8", (10,))])  # fmt: skip


def _bbox(params: dict[str, Any]) -> tuple[float, float, float, float]:
    box = params["bbox"]
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _points(context: StepContext) -> points.Points:
    params = context.task.params
    context.progress(rows_done=0, phase="read", force=True)
    found = points.read(Path(params["staging_path"]), params.get("field"))
    if len(found.x) == 0:
        raise InvalidInput(f"source {params['source_id']} has no points with a value")
    if found.dropped:
        context.warnings.append(
            f"{found.dropped} point(s) without a geometry or a value were left out"
        )
    crs = params["crs"]
    if crs != WGS84 and len(found.x):
        x, y = geo_engine.transform_coords(found.x, found.y, from_crs=WGS84, to_crs=crs)
        found = points.Points(x=x, y=y, values=found.values, dropped=found.dropped)
    context.progress(rows_done=len(found.x), rows_total=len(found.x), phase="read", force=True)
    return found


def _facts(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    facts = {key: params.get(key) for key in ("analysis", "source_id", "field", *keys)}
    return {**facts, "bbox": params.get("bbox"), "crs": params.get("crs"),
            "width": params.get("width"), "height": params.get("height")}  # fmt: skip


def interpolate_step(context: StepContext) -> None:
    """A thin-plate spline of the source's field over the grid, published as a raster."""
    params = context.task.params
    found = _points(context)
    bbox = _bbox(params)
    context.progress(rows_done=0, rows_total=len(found.x), phase="interpolate", force=True)
    grid = _kernel(
        geo_engine.interpolate_spline,
        found.x, found.y, found.values, bbox=bbox, width=params["width"],
        height=params["height"], smoothing=float(params.get("smoothing") or 0.0),
    )  # fmt: skip
    facts = _facts(params, "smoothing") | {"points": len(found.x)}
    rasters.publish_grid(context, np.asarray(grid), bbox=bbox, crs=params["crs"], analysis=facts)


def _grid(context: StepContext) -> tuple[np.ndarray[Any, Any], int]:
    params = context.task.params
    found = _points(context)
    context.progress(rows_done=0, rows_total=len(found.x), phase="grid", force=True)
    method = params.get("method", "idw")
    found_grid = _kernel(
        geo_engine.grid_inference,
        found.x, found.y, found.values, bbox=_bbox(params), width=params["width"],
        height=params["height"], method="stats" if method in STATISTICS else "idw",
        power=float(params.get("power", 2.0)), radius=params.get("radius"),
        min_points=int(params.get("min_points", 1)),
    )  # fmt: skip
    grid = found_grid[method] if isinstance(found_grid, dict) else found_grid
    return np.asarray(grid, dtype=np.float64), len(found.x)


def grid_step(context: StepContext) -> None:
    """Per-cell statistics or IDW of the source's field, published as a raster."""
    params = context.task.params
    grid, count = _grid(context)
    facts = _facts(params, "method", "power", "radius", "min_points") | {"points": count}
    rasters.publish_grid(context, grid, bbox=_bbox(params), crs=params["crs"], analysis=facts)


def cell_polygons(
    bbox: tuple[float, float, float, float], width: int, height: int, cells: np.ndarray[Any, Any]
) -> pa.Array:
    """WKB polygons of the grid cells numbered `cells` (row-major, row 0 north), built in
    numpy: each is the same 93 bytes with its corners in place."""
    west, south, east, north = bbox
    dx, dy = (east - west) / width, (north - south) / height
    row, col = np.divmod(cells.astype(np.int64), width)
    x0, x1 = west + col * dx, west + (col + 1) * dx
    y1, y0 = north - row * dy, north - (row + 1) * dy
    records = np.zeros(len(cells), dtype=_CELL_WKB)
    records["order"], records["type"], records["rings"], records["points"] = 1, 3, 1, 5
    # Counter-clockwise from the south-west corner, closed.
    records["xy"] = np.stack([x0, y0, x1, y0, x1, y1, x0, y1, x0, y0], axis=1)
    offsets = np.arange(len(cells) + 1, dtype=np.int32) * _CELL_WKB.itemsize
    return pa.Array.from_buffers(
        pa.binary(), len(cells), [None, pa.py_buffer(offsets), pa.py_buffer(records.tobytes())]
    )


def _to_wgs84(wkb: pa.Array, crs: str) -> pa.Array:
    if isinstance(wkb, pa.ExtensionArray):
        wkb = wkb.storage
    if crs in (WGS84, "OGC:CRS84"):
        return wkb
    return pa.array(geo_engine.transform_crs(wkb, from_crs=crs, to_crs=WGS84))


def _stage(context: StepContext, table: pa.Table) -> None:
    context.progress(rows_done=0, rows_total=table.num_rows, phase="stage", force=True)
    settings = context.settings.pipeline
    result = stage_table.run(
        table=table,
        destination=staged_path(context.settings, context.task),
        memory_limit=import_settings().stage_memory_limit,
        spill_dir=settings.staging_dir / f".spill-{os.getpid()}",
    )
    context.timings.update(result.timings)
    context.progress(rows_done=result.feature_count, rows_total=result.feature_count,
                     phase="stage", force=True)  # fmt: skip


def grid_cells_step(context: StepContext) -> None:
    """Per-cell statistics or IDW as polygon cells (cells without a value left out), staged."""
    params = context.task.params
    grid, _ = _grid(context)
    height, width = grid.shape
    flat = grid.reshape(-1)
    keep = np.isfinite(flat)
    if params.get("method") == "count":
        keep &= flat > 0  # a count is never NaN: an empty cell is a zero
    cells = np.flatnonzero(keep)
    bbox = _bbox(params)
    table = pa.table(
        {
            "row": pa.array(cells // width, pa.int64()),
            "col": pa.array(cells % width, pa.int64()),
            "value": pa.array(flat[cells]),
            GEOMETRY_COLUMN: _to_wgs84(cell_polygons(bbox, width, height, cells), params["crs"]),
        }
    )
    _stage(context, table)


def _as_table(found: Any) -> pa.Table:
    if isinstance(found, pa.Table):
        return found
    if isinstance(found, pa.RecordBatch):
        return pa.Table.from_batches([found])
    return pa.RecordBatchReader.from_stream(found).read_all()


def vectorize_step(context: StepContext) -> None:
    """Regions of equal value (or class, with breaks) of one band, as polygons, staged."""
    params = context.task.params
    path, name = Path(params["path"]), str(params.get("file_name") or Path(params["path"]).name)
    if not path.is_file():
        raise InvalidInput(f"{name}: the raster is no longer there", field="source")
    context.progress(rows_done=0, phase="read", force=True)
    raster.check(path, name=name, max_pixels=raster_settings().max_cells)
    with rasterio.open(path) as src:
        band = int(params.get("band") or 1)
        if band > src.count:
            raise InvalidInput(f"{name} has {src.count} band(s), not {band}", field="band")
        data = src.read(band)
        nodata, transform, crs = src.nodata, tuple(src.transform)[:6], src.crs.to_string()
    breaks = params.get("breaks")
    lower = upper = None
    if breaks:
        edges = np.asarray(breaks, dtype=np.float64)
        missing = ~np.isfinite(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
        if nodata is not None and np.isfinite(nodata):
            missing |= data == nodata
        classes = np.digitize(data, edges).astype(np.int32)
        classes[missing] = -1
        data, nodata = classes, -1
        bounds = np.concatenate([[-np.inf], edges, [np.inf]])
        lower, upper = bounds[:-1], bounds[1:]
    context.progress(rows_done=0, rows_total=int(data.shape[0]), phase="vectorize", force=True)
    table = _as_table(
        _kernel(
            geo_engine.vectorize_raster,
            data, transform=transform, nodata=nodata,
            connectivity=int(params.get("connectivity") or 4),
        )
    )  # fmt: skip
    geometry = _to_wgs84(table.column(GEOMETRY_COLUMN).combine_chunks(), crs)
    values = table.column("value").combine_chunks()
    columns: dict[str, pa.Array] = {"value": values}
    if lower is not None and upper is not None:
        index = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)
        low, high = lower[index], upper[index]
        columns = {
            "class": pa.array(index, pa.int32()),
            "lower": pa.array(np.where(np.isfinite(low), low, np.nan), from_pandas=True),
            "upper": pa.array(np.where(np.isfinite(high), high, np.nan), from_pandas=True),
        }
    _stage(context, pa.table({**columns, GEOMETRY_COLUMN: geometry}))


def cleanup_staged(settings: Settings, task: Task, failed: bool) -> None:
    """After a polygon analysis's first step: its upload goes; a failed one's staging too."""
    remove_upload(settings, task)
    if failed:
        remove_staged(settings, task)
