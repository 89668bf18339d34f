"""A point source's coordinates and values, from its staged GeoParquet, as numpy arrays.

Columnar end to end: pyarrow reads the geometry and the field's column, geoarrow-pyarrow
turns the WKB points into coordinate arrays (`point_coords`, in C), masks drop the rows
without a geometry or a value, and the arrays go to the kernels as they are. No Python
loop touches a point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geoarrow.pyarrow as ga
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import InvalidInput
from pipeline.steps.stage import GEOMETRY_COLUMN

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Points:
    """Coordinates (EPSG:4326) and values of the usable points, and how many were left out."""

    x: FloatArray
    y: FloatArray
    values: FloatArray
    dropped: int


def read(path: Path, field: str | None) -> Points:
    """The points of the staged file at `path` with their `field` (None: all ones)."""
    if not path.is_file():
        raise InvalidInput(f"the source's staged file {path.name} is missing", field="source")
    columns = [GEOMETRY_COLUMN] if field is None else [GEOMETRY_COLUMN, field]
    table = pq.read_table(path, columns=columns)
    geometry = table.column(GEOMETRY_COLUMN).combine_chunks()
    keep = pc.is_valid(geometry)
    if field is not None:
        column = table.column(field).combine_chunks()
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise InvalidInput(f"column {field!r} is {column.type}, not numeric", field="field")
        keep = pc.and_(keep, pc.is_valid(column))
    table = table.filter(keep)
    wkb = ga.wkb().wrap_array(table.column(GEOMETRY_COLUMN).combine_chunks())
    xs, ys = ga.point_coords(wkb)
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if field is None:
        values = np.ones(len(x), dtype=np.float64)
    else:
        values = table.column(field).combine_chunks().to_numpy(zero_copy_only=False)
        values = values.astype(np.float64, copy=False)
    # Empty points (NaN coordinates) and NaN values carry nothing to interpolate.
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(values)
    dropped = len(geometry) - int(finite.sum())
    if not finite.all():
        x, y, values = x[finite], y[finite], values[finite]
    return Points(x=x, y=y, values=values, dropped=dropped)
