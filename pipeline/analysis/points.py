"""A point source's coordinates and values, from its staged GeoParquet, as numpy arrays.

Columnar end to end: DuckDB reads the geometry and the field's column from the staged
file and takes each WKB point's x and y (`ST_X`/`ST_Y`, vectorised), rows without a
geometry or a value are left out in the same query, and the result goes to the
kernels as numpy arrays (`fetchnumpy`). No Python loop touches a point.

Why not geoarrow-pyarrow (`point_coords`): importing `geoarrow.pyarrow` registers its
extension types in pyarrow for the whole process, and then every `geoarrow.wkb` column
in the worker arrives typed as one; DuckDB takes such a column as its GEOMETRY type
instead of a blob, and the stage step's `ST_GeomFromWKB` no longer binds: every import
run by the same worker fails. DuckDB's spatial functions do the same work here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInput
from pipeline.steps import duck
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
    value = "1.0" if field is None else f"CAST({duck.quote(field)} AS DOUBLE)"
    column = duck.quote(GEOMETRY_COLUMN)
    with duck.connect() as con:
        location = str(path).replace("'", "''")
        con.execute(f"CREATE TEMP VIEW points_source AS SELECT * FROM read_parquet('{location}')")
        kinds = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE points_source)").fetchall()
        )
        if field is not None and not _numeric(str(kinds.get(field, ""))):
            raise InvalidInput(
                f"column {field!r} is {kinds.get(field)}, not numeric", field="field"
            )
        # DuckDB reads a GeoParquet geometry as its GEOMETRY type (or as WKB blobs).
        is_geometry = str(kinds[GEOMETRY_COLUMN]).upper().startswith("GEOMETRY")
        geometry = column if is_geometry else f"ST_GeomFromWKB({column})"
        table = con.execute(
            f"""
            SELECT ST_X(g) AS x, ST_Y(g) AS y, v
            FROM (SELECT {geometry} AS g, {value} AS v FROM points_source
                  WHERE {column} IS NOT NULL)
            WHERE v IS NOT NULL AND NOT ST_IsEmpty(g)
            """
        ).fetchnumpy()
        total = con.execute("SELECT count(*) FROM points_source").fetchone()
        con.execute("DROP VIEW points_source")
    x, y, values = (np.asarray(table[name], dtype=np.float64) for name in ("x", "y", "v"))
    # NaN values carry nothing to interpolate.
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(values)
    if not finite.all():
        x, y, values = x[finite], y[finite], values[finite]
    dropped = (int(total[0]) if total else 0) - len(x)
    return Points(x=x, y=y, values=values, dropped=dropped)


def _numeric(duck_type: str) -> bool:
    name = duck_type.upper()
    return any(word in name for word in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
