"""DuckDB connections with the spatial extension, loaded offline from its PyPI package."""

from __future__ import annotations

from pathlib import Path

import duckdb
import duckdb_extension_spatial  # type: ignore[import-untyped]


def spatial_extension_path() -> Path:
    """The spatial extension binary matching the installed DuckDB (the pair is pinned)."""
    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    return base / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


def connect(*, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with `spatial` loaded (LOAD by path: nothing written to ~/.duckdb)."""
    config: dict[str, str | bool | int | float | list[str]] = (
        {"threads": threads} if threads else {}
    )
    con = duckdb.connect(":memory:", config=config)
    con.execute(f"LOAD '{spatial_extension_path()}'")
    return con


def quote(identifier: str) -> str:
    """An SQL identifier, quoted for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


# DuckDB's ST_GeometryType names to the OGC/GeoParquet names.
_GEOMETRY_TYPES = {
    "POINT": "Point",
    "LINESTRING": "LineString",
    "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint",
    "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon",
    "GEOMETRYCOLLECTION": "GeometryCollection",
}


def geometry_type_name(duck_name: str, has_z: bool = False) -> str:
    """The GeoParquet name (`Point`, `MultiPolygon Z`...) of a DuckDB geometry type."""
    name = _GEOMETRY_TYPES.get(duck_name.upper(), duck_name.title())
    return f"{name} Z" if has_z else name
