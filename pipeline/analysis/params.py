"""The analyses' parameters: request bodies, and their checks against the source, up front.

Everything that can be judged before the work starts is judged here (the ETL service
answers 400 with DRF-shaped field errors): an unknown source, a source that is not made
of points, a field that is not numeric, a CRS PROJ does not know, a bbox that misses
the source, a grid of more cells than the limit. What passes becomes the task's params,
the worker's whole plan (nothing is derived again there).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from core.errors import InvalidInput
from core.models import Source
from pipeline.config import RasterSettings

# A grid given neither its size nor a resolution has this many cells on its longer side.
DEFAULT_CELLS = 512
NUMERIC_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64", "double", "halffloat", "float")  # fmt: skip
GridMethod = Literal["idw", "count", "sum", "mean", "min", "max"]
BBox = tuple[float, float, float, float]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=255)
    description: str | None = None


class GridRequest(_Request):
    """Where the grid lies and how fine it is (bbox in EPSG:4326; resolution in `crs` units)."""

    bbox: tuple[float, float, float, float] | None = None
    resolution: float | None = Field(default=None, gt=0)
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    crs: str = "EPSG:4326"

    @field_validator("bbox")
    @classmethod
    def _ordered(cls, value: BBox | None) -> BBox | None:
        if value is not None and not (value[0] < value[2] and value[1] < value[3]):
            raise ValueError("bbox must be minx, miny, maxx, maxy with min < max")
        return value

    @model_validator(mode="after")
    def _one_size(self) -> GridRequest:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.width is not None and self.resolution is not None:
            raise ValueError("give either resolution or width and height, not both")
        return self


class InterpolateRequest(GridRequest):
    """`POST /tasks/analysis/interpolate`: a thin-plate spline of a point source's field."""

    source: int | str
    field: str
    smoothing: float = Field(default=0.0, ge=0)


class GridInferenceRequest(GridRequest):
    """`POST /tasks/analysis/grid`: per-cell statistics or IDW of a point source's field."""

    source: int | str
    field: str | None = None
    method: GridMethod = "idw"
    power: float = Field(default=2.0, gt=0)
    radius: float | None = Field(default=None, gt=0)
    min_points: int = Field(default=1, ge=1)
    output: Literal["raster", "polygons"] = "raster"

    @model_validator(mode="after")
    def _field_needed(self) -> GridInferenceRequest:
        if self.field is None and self.method != "count":
            raise ValueError(f"the {self.method} method needs a field")
        return self


class VectorizeRequest(_Request):
    """`POST /tasks/analysis/vectorize`: a raster source's regions as polygons."""

    source: int | str | None = None
    band: int = Field(default=1, ge=1)
    breaks: list[float] | None = None
    connectivity: Literal[4, 8] = 4

    @field_validator("breaks")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one class break")
            if any(not math.isfinite(v) for v in value) or any(
                b <= a for a, b in itertools.pairwise(value)
            ):
                raise ValueError("class breaks must be finite and strictly increasing")
        return value


def source_key(value: int | str) -> int | str:
    """A source given as its id (an integer, or digits) or its sid."""
    if isinstance(value, int):
        return value
    return int(value) if value.isdigit() else value


def missing_source(value: int | str) -> InvalidInput:
    """DRF's error for an unknown related object."""
    return InvalidInput(f'Invalid pk "{value}" - object does not exist.', field="source")


def check_crs(crs: str) -> CRS:
    """The CRS, or a field error naming it."""
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise InvalidInput(f"Not a CRS PROJ knows: {exc}", field="crs") from None


def _intersects(a: BBox, b: BBox) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def point_source(source: Source, field: str | None) -> dict[str, Any]:
    """Check that `source` is a staged point source and `field` one of its numeric columns."""
    attributes = source.attributes or {}
    types = set(((attributes.get("geometry") or {}).get("type_counts") or {}).keys())
    if source.source_type == "raster" or not types:
        raise InvalidInput(f"source {source.id} has no point features", field="source")
    if not types <= {"Point", "Point Z"}:
        raise InvalidInput(
            f"source {source.id} is not a point source (its geometries: "
            f"{', '.join(sorted(types))})",
            field="source",
        )
    staged = (attributes.get("import") or {}).get("staging_path")
    if not staged:
        raise InvalidInput(f"source {source.id} has no staged GeoParquet file", field="source")
    plan: dict[str, Any] = {"source_id": source.id, "source_sid": source.sid,
                            "staging_path": staged, "field": field}  # fmt: skip
    if field is not None:
        columns = {c.get("name"): c.get("type") for c in attributes.get("columns") or []}
        if field not in columns:
            known = ", ".join(sorted(str(name) for name in columns)) or "none"
            raise InvalidInput(
                f"source {source.id} has no column {field!r} (its columns: {known})",
                field="field",
            )
        if str(columns[field]) not in NUMERIC_TYPES:
            raise InvalidInput(f"column {field!r} is {columns[field]}, not numeric", field="field")
    return plan


def grid_plan(
    request: GridRequest, source_bbox: BBox | None, limits: RasterSettings, *, cells_max: int
) -> dict[str, Any]:
    """The grid's bbox (EPSG:4326 and in its CRS), CRS and size, checked against the limits."""
    crs = check_crs(request.crs)
    bbox = request.bbox or source_bbox
    if bbox is None:
        raise InvalidInput("the source has no extent: give a bbox", field="bbox")
    if source_bbox is not None and request.bbox is not None and not _intersects(bbox, source_bbox):
        raise InvalidInput(
            f"the bbox does not intersect the source's extent {list(source_bbox)}", field="bbox"
        )
    if bbox[0] == bbox[2] or bbox[1] == bbox[3]:
        raise InvalidInput("the extent is a line or a point: give a bbox", field="bbox")
    try:
        west, south, east, north = transform_bounds("EPSG:4326", crs, *bbox, densify_pts=21)
    except Exception as exc:
        message = f"the bbox cannot be expressed in {request.crs}: {exc}"
        raise InvalidInput(message, field="bbox") from None
    native: BBox = (west, south, east, north)
    span_x, span_y = native[2] - native[0], native[3] - native[1]
    if request.width is not None and request.height is not None:
        width, height, size_field = request.width, request.height, "width"
    elif request.resolution is not None:
        width = max(1, math.ceil(span_x / request.resolution))
        height = max(1, math.ceil(span_y / request.resolution))
        size_field = "resolution"
        # Square cells of exactly that size, from the north-west corner.
        native = (native[0], native[3] - height * request.resolution,
                  native[0] + width * request.resolution, native[3])  # fmt: skip
    else:
        longer = max(span_x, span_y)
        width = max(1, round(DEFAULT_CELLS * span_x / longer))
        height = max(1, round(DEFAULT_CELLS * span_y / longer))
        size_field = "width"
    cells = width * height
    if cells > cells_max:
        raise InvalidInput(
            f"a grid of {width:,} x {height:,} = {cells:,} cells is more than the limit of "
            f"{cells_max:,}",
            field=size_field,
        )
    return {"bbox_4326": list(bbox), "bbox": list(native), "crs": request.crs,
            "width": width, "height": height}  # fmt: skip
