"""Helpers for the geo_engine tests: shapefiles written by pyogrio (the oracle) or by
hand, and comparisons of geo_engine's output with pyogrio's."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio
import pyproj
import shapely

import geo_engine


def write_shapefile(
    path: Path,
    columns: dict[str, pa.Array | list[Any]],
    geometries: Sequence[shapely.Geometry | None],
    *,
    geometry_type: str,
    crs: str = "EPSG:4326",
    encoding: str | None = None,
) -> Path:
    """Write a shapefile with pyogrio (GDAL) from attribute columns and geometries."""
    wkb = shapely.to_wkb(np.array(geometries, dtype=object), flavor="iso")
    table = pa.table({**columns, "geometry": pa.array(wkb, pa.binary())})
    pyogrio.write_arrow(
        table,
        path,
        geometry_name="geometry",
        geometry_type=geometry_type,
        crs=crs,
        encoding=encoding,
    )
    return path


def read(path: Path, **kwargs: Any) -> pa.Table:
    """geo_engine's reading of a shapefile, as a pyarrow table."""
    return pa.RecordBatchReader.from_stream(geo_engine.stream_shapefile(path, **kwargs)).read_all()


def oracle(path: Path | str, **kwargs: Any) -> pa.Table:
    """pyogrio's reading of the same file."""
    _meta, table = pyogrio.read_arrow(path, **kwargs)
    return pa.table(table)


def reproject(geometries: np.ndarray, source: str, target: str = "EPSG:4326") -> np.ndarray:
    """Geometries reprojected with pyproj (x/lon first), z included."""
    transformer = pyproj.Transformer.from_crs(source, target, always_xy=True)

    def fn(coords: np.ndarray) -> np.ndarray:
        if coords.shape[1] == 3:
            x, y, z = transformer.transform(coords[:, 0], coords[:, 1], coords[:, 2])
            return np.column_stack([x, y, z])
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    out: np.ndarray = shapely.transform(geometries, fn, include_z=None)
    return out


def assert_same(
    ours: pa.Table,
    theirs: pa.Table,
    *,
    tolerance: float = 1e-9,
    transform_from: str | None = None,
    transform_to: str = "EPSG:4326",
) -> None:
    """Same rows, same attribute columns (names, types, values), geometries equal."""
    assert ours.num_rows == theirs.num_rows
    their_geometry = theirs.column(theirs.num_columns - 1)
    their_attributes = theirs.drop_columns([theirs.column_names[-1]])
    our_attributes = ours.drop_columns(["geometry"])
    assert our_attributes.column_names == their_attributes.column_names
    for name in their_attributes.column_names:
        assert our_attributes[name].type == their_attributes[name].type, name
        assert our_attributes[name].to_pylist() == their_attributes[name].to_pylist(), name
    expected = shapely.from_wkb(np.array(their_geometry.to_pylist(), dtype=object))
    if transform_from is not None:
        expected = reproject(expected, transform_from, transform_to)
    actual = shapely.from_wkb(np.array(ours["geometry"].to_pylist(), dtype=object))
    assert list(shapely.is_missing(actual)) == list(shapely.is_missing(expected))
    present = ~shapely.is_missing(expected)
    assert list(shapely.has_z(actual[present])) == list(shapely.has_z(expected[present]))
    same = shapely.equals_exact(actual[present], expected[present], tolerance=tolerance)
    assert same.all(), [
        (a.wkt, e.wkt)
        for a, e, s in zip(actual[present], expected[present], same, strict=True)
        if not s
    ][:3]


def dbf_bytes(
    fields: Sequence[tuple[str, str, int, int]],
    rows: Sequence[Sequence[bytes]],
    *,
    ldid: int = 0,
    deleted: Sequence[int] = (),
) -> bytes:
    """A dBASE III file from (name, type, width, decimals) fields and raw values."""
    header_len = 32 + 32 * len(fields) + 1
    record_len = 1 + sum(f[2] for f in fields)
    out = struct.pack("<BBBBIHH", 3, 124, 1, 1, len(rows), header_len, record_len)
    out += b"\0" * 17 + bytes([ldid]) + b"\0\0"
    for name, kind, width, decimals in fields:
        out += name.encode().ljust(11, b"\0") + kind.encode() + b"\0" * 4
        out += bytes([width, decimals]) + b"\0" * 14
    out += b"\r"
    for i, row in enumerate(rows):
        out += b"*" if i in deleted else b" "
        for (_, kind, width, _), value in zip(fields, row, strict=True):
            out += value.rjust(width) if kind in "NF" else value.ljust(width)
    return out + b"\x1a"


def shp_and_shx(shape_type: int, records: Sequence[bytes]) -> tuple[bytes, bytes]:
    """.shp and .shx bytes for record contents."""
    body = b""
    index = b""
    for number, content in enumerate(records, start=1):
        index += struct.pack(">ii", (100 + len(body)) // 2, len(content) // 2)
        body += struct.pack(">ii", number, len(content) // 2) + content

    def header(length: int) -> bytes:
        return (
            struct.pack(">7i", 9994, 0, 0, 0, 0, 0, length // 2)
            + struct.pack("<ii", 1000, shape_type)
            + b"\0" * 64
        )

    return header(100 + len(body)) + body, header(100 + len(index)) + index


def parts_record(
    shape_type: int,
    parts: Sequence[Sequence[tuple[float, float]]],
    *,
    zs: Sequence[float] | None = None,
    ms: Sequence[float] | None = None,
) -> bytes:
    """The content of a polyline/polygon record (any of the 2D, Z or M variants)."""
    points = [p for part in parts for p in part]
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]]).tolist()
    out = struct.pack("<i4d", shape_type, 0, 0, 0, 0)
    out += struct.pack("<ii", len(parts), len(points)) + struct.pack(f"<{len(parts)}i", *starts)
    out += b"".join(struct.pack("<dd", x, y) for x, y in points)
    for values in (zs, ms):
        if values is not None:
            out += struct.pack("<dd", 0, 0) + struct.pack(f"<{len(values)}d", *values)
    return out


def write_raw(path: Path, shape_type: int, records: Sequence[bytes], dbf: bytes) -> Path:
    """Write .shp, .shx and .dbf files made by hand."""
    shp, shx = shp_and_shx(shape_type, records)
    path.write_bytes(shp)
    path.with_suffix(".shx").write_bytes(shx)
    path.with_suffix(".dbf").write_bytes(dbf)
    return path
