"""Profile: DuckDB over the staged GeoParquet file, in a couple of vectorised queries.

The profile (row count, per-column type, null count, min/max, approximate distinct
count, top values of text columns; geometry types, empty/invalid/null counts, extent)
becomes the source's `attributes`; problems found become the task's warnings.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import InvalidInput
from pipeline.steps import duck

TOP_VALUES = 5
_TEXT_LIMIT = 200


@dataclass
class Profile:
    """A staged file's profile (for `core_source.attributes`) and the warnings it raised."""

    attributes: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def type_name(data_type: pa.DataType) -> str:
    """The short Arrow type name the profile reports (int64, float64, utf8, date32, bool...)."""
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "utf8"
    if pa.types.is_float64(data_type):
        return "float64"
    if pa.types.is_float32(data_type):
        return "float32"
    if pa.types.is_date32(data_type):
        return "date32"
    if pa.types.is_boolean(data_type):
        return "bool"
    return str(data_type)


def run(*, path: Path, on_progress: Callable[[float], None] | None = None) -> Profile:
    """Profile the staged GeoParquet file at `path` (`on_progress`: percent done, from a
    thread, while the query runs)."""
    schema = pq.read_schema(path)
    footer = pq.read_metadata(path).metadata or {}
    geo = json.loads(footer.get(b"geo", b"null"))
    if not isinstance(geo, dict) or "primary_column" not in geo:
        raise InvalidInput(f"{path.name}: not a GeoParquet file (no `geo` metadata)")
    primary = str(geo["primary_column"])
    geometry_meta = geo["columns"][primary]
    covering = geometry_meta.get("covering", {}).get("bbox", {})
    bbox_column = covering.get("xmin", [None])[0]
    attributes = [f for f in schema if f.name not in {primary, bbox_column}]

    declared = [str(name) for name in geometry_meta.get("geometry_types", [])]
    with duck.connect() as con:
        # A temporary view: the connection's own, whatever else the process profiles.
        location = str(path).replace("'", "''")
        con.execute(f"CREATE TEMP VIEW staged AS SELECT * FROM read_parquet('{location}')")
        kinds = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE staged)").fetchall()
        )
        geom = duck.quote(primary)
        if not str(kinds[primary]).upper().startswith("GEOMETRY"):
            geom = f"ST_GeomFromWKB({geom})"
        stats, names = _column_stats_sql(attributes)
        extent = (
            [f"min({duck.quote(bbox_column)}.{corner})" for corner in ("xmin", "ymin")]
            + [f"max({duck.quote(bbox_column)}.{corner})" for corner in ("xmax", "ymax")]
            if bbox_column
            else [
                f"min(ST_XMin({geom}))",
                f"min(ST_YMin({geom}))",
                f"max(ST_XMax({geom}))",
                f"max(ST_YMax({geom}))",
            ]
        )
        select = [
            "count(*)",
            f"count({geom})",
            f"count(*) FILTER (WHERE ST_IsEmpty({geom}))",
            _invalid_sql(geom, declared, bbox_column),
            *extent,
            *stats,
        ]
        # Types declared by the staged file are counted in the same scan; a file that
        # declares none (allowed by GeoParquet) is grouped in a second one.
        counted = [_type_filter(geom, name) for name in declared]
        select.extend(counted)
        with duck.Ticker(con, on_progress):
            row = con.execute(f"SELECT {', '.join(select)} FROM staged").fetchone()
        assert row is not None  # an aggregate without GROUP BY answers one row
        if declared:
            type_counts = {
                name: int(count)
                for name, count in zip(declared, row[len(row) - len(declared) :], strict=True)
                if count
            }
            row = row[: len(row) - len(declared)]
        else:
            by_type = con.execute(
                f"SELECT ST_GeometryType({geom})::VARCHAR AS t, ST_HasZ({geom}) AS z, count(*) "
                "FROM staged WHERE t IS NOT NULL GROUP BY t, z ORDER BY t, z"
            ).fetchall()
            type_counts = {
                duck.geometry_type_name(name, bool(has_z)): int(count)
                for name, has_z, count in by_type
            }

    total, non_null, empty, invalid = (int(value) for value in row[:4])
    bounds = list(row[4:8])
    values = dict(zip(names, row[8:], strict=True))
    columns = [_column_profile(f, i, values, total) for i, f in enumerate(attributes)]
    profile = {
        "feature_count": total,
        "columns": columns,
        "geometry": {
            "column": primary,
            "types": list(geometry_meta.get("geometry_types", [])),
            "type_counts": type_counts,
            "null_count": total - non_null,
            "empty_count": empty,
            "invalid_count": invalid,
        },
        "crs": geometry_meta.get("crs"),
        "bbox": None if None in bounds else [float(v) for v in bounds],
    }
    return Profile(attributes=profile, warnings=_warnings(profile))


_POINTS = ("Point", "MultiPoint")


def _invalid_sql(geom: str, declared: list[str], bbox_column: str | None) -> str:
    """How many geometries are not valid (OGC).

    Points are valid by definition unless a coordinate is not finite, which their boxes
    show: for point data the geometries need not be checked one by one.
    """
    if declared and bbox_column and all(name.split()[0] in _POINTS for name in declared):
        box = duck.quote(bbox_column)
        finite = " AND ".join(f"isfinite({box}.{c})" for c in ("xmin", "ymin", "xmax", "ymax"))
        return f"count(*) FILTER (WHERE {box} IS NOT NULL AND NOT ({finite}))"
    return f"count(*) FILTER (WHERE NOT ST_IsValid({geom}))"


def _type_filter(geom: str, name: str) -> str:
    """A count of the geometries of the GeoParquet type `name` (e.g. `MultiPolygon Z`)."""
    base, _, z = name.partition(" ")
    duck_name = base.upper().replace("'", "")
    has_z = "" if z else "NOT "
    return (
        f"count(*) FILTER (WHERE ST_GeometryType({geom})::VARCHAR = '{duck_name}' "
        f"AND {has_z}ST_HasZ({geom}))"
    )


def _column_stats_sql(columns: list[pa.Field]) -> tuple[list[str], list[str]]:
    select: list[str] = []
    names: list[str] = []
    for index, column in enumerate(columns):
        quoted = duck.quote(column.name)
        stats = {
            "count": f"count({quoted})",
            "min": f"min({quoted})",
            "max": f"max({quoted})",
            "distinct": f"approx_count_distinct({quoted})",
        }
        if type_name(column.type) == "utf8":
            stats["top"] = f"approx_top_k({quoted}, {TOP_VALUES})"
        for stat, expression in stats.items():
            select.append(expression)
            names.append(f"{index}:{stat}")
    return select, names


def _column_profile(
    column: pa.Field, index: int, values: dict[str, Any], total: int
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": column.name,
        "type": type_name(column.type),
        "null_count": total - int(values[f"{index}:count"]),
        "min": _jsonable(values[f"{index}:min"]),
        "max": _jsonable(values[f"{index}:max"]),
        "approx_distinct": int(values[f"{index}:distinct"]),
    }
    if f"{index}:top" in values:
        result["top_values"] = [_jsonable(v) for v in values[f"{index}:top"] or []]
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        return value[:_TEXT_LIMIT]
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    return value


def _warnings(profile: dict[str, Any]) -> list[str]:
    geometry = profile["geometry"]
    warnings = []
    if profile["feature_count"] == 0:
        warnings.append("the file holds no features")
    if geometry["null_count"]:
        warnings.append(f"{_features(geometry['null_count'])} no geometry (null shapes)")
    if geometry["empty_count"]:
        warnings.append(f"{_features(geometry['empty_count'])} an empty geometry")
    if geometry["invalid_count"]:
        warnings.append(
            f"{_features(geometry['invalid_count'])} an invalid geometry (OGC validity); "
            "they are loaded as they are"
        )
    return warnings


def _features(count: int) -> str:
    return "1 feature has" if count == 1 else f"{count} features have"
