"""The binary COPY encoder: layout checked byte by byte with struct."""

from __future__ import annotations

import datetime as dt
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import write_shapefile


def parse_rows(data: bytes) -> list[list[bytes | None]]:
    """Split binary COPY tuples (no header, no trailer) into their fields."""
    rows = []
    at = 0
    while at < len(data):
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            if length == -1:
                fields.append(None)
            else:
                fields.append(data[at : at + length])
                at += length
        rows.append(fields)
    return rows


def test_header_and_trailer() -> None:
    header = geo_engine.copy_header()
    assert len(header) == 19
    assert header[:11] == b"PGCOPY\n\xff\r\n\x00"
    assert struct.unpack(">ii", header[11:]) == (0, 0)
    assert geo_engine.copy_trailer() == b"\xff\xff"


def test_rows_layout() -> None:
    geometries = [
        Point(1.5, -2.0),
        None,
        Polygon([(0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 1)]),
        MultiPolygon([Polygon([(0, 0), (0, 1), (1, 1)])]),
        LineString([(0, 0), (1, 1)]),
    ]
    wkb = shapely.to_wkb(np.array(geometries, dtype=object), flavor="iso")
    batch = pa.record_batch(
        {
            "name": pa.array(['quote " and \\ and\nnewline', None, "ünïcode", "", "x"]),
            "n": pa.array([1, 2, None, -4, 2**40], pa.int64()),
            "x": pa.array([0.5, float("nan"), float("inf"), None, 1e300]),
            "ok": pa.array([True, False, None, True, False]),
            "day": pa.array([dt.date(2024, 1, 31), None, dt.date(1970, 1, 1), None, None]),
            "at": pa.array(
                [dt.datetime(2024, 1, 31, 12, 30, 15), None, None, None, None], pa.timestamp("us")
            ),
            "geometry": pa.array(wkb, pa.binary()),
        }
    )
    data = geo_engine.encode_copy_rows(batch, source_id=7)
    rows = parse_rows(data)
    assert len(rows) == 5
    assert all(len(row) == 4 for row in rows)
    geom, metadata, geometry_type, source_id = rows[0]
    assert geom is not None and metadata is not None and source_id is not None
    # EWKB: little-endian, Point with the SRID flag, then SRID 4326, then x, y.
    assert struct.unpack("<BII2d", geom) == (1, 0x20000001, 4326, 1.5, -2.0)
    assert metadata[0] == 1
    assert json.loads(metadata[1:]) == {
        "name": 'quote " and \\ and\nnewline',
        "n": 1,
        "x": 0.5,
        "ok": True,
        "day": "2024-01-31",
        "at": "2024-01-31T12:30:15",
    }
    assert geometry_type == b"Point"
    assert struct.unpack(">i", source_id) == (7,)
    # A null geometry: NULL geom and geometry_type.
    assert rows[1][0] is None and rows[1][2] is None
    meta = json.loads(rows[1][1][1:])  # type: ignore[index]
    assert meta["x"] is None and meta["name"] is None and meta["ok"] is False
    # Polygon Z: ISO 1003 becomes EWKB Z flag + SRID flag.
    assert struct.unpack_from("<BII", rows[2][0]) == (1, 0xA0000003, 4326)  # type: ignore[arg-type]
    assert json.loads(rows[2][1][1:])["x"] is None  # type: ignore[index]
    assert rows[2][2] == b"Polygon"
    assert rows[3][2] == b"MultiPolygon"
    assert rows[4][2] == b"LineString"
    assert json.loads(rows[4][1][1:])["n"] == 2**40  # type: ignore[index]
    # The EWKB reads back as the same geometry (shapely reads EWKB).
    back = shapely.from_wkb(rows[2][0])
    assert back.equals_exact(geometries[2], 0)
    assert shapely.get_srid(back) == 4326


def test_options() -> None:
    wkb = shapely.to_wkb(Point(1, 2))
    batch = pa.record_batch({"geom": pa.array([wkb], pa.binary())})
    (row,) = parse_rows(
        geo_engine.encode_copy_rows(batch, source_id=1, geometry_column="geom", srid=0)
    )
    assert struct.unpack_from("<BI", row[0]) == (1, 1)  # type: ignore[arg-type]
    assert row[1] == b"\x01{}"
    with pytest.raises(ValueError, match="no column"):
        geo_engine.encode_copy_rows(batch, source_id=1)


def test_invalid_wkb_names_the_row() -> None:
    good = shapely.to_wkb(Point(1, 2))
    batch = pa.record_batch({"geometry": pa.array([good, good, good[:7]], pa.binary())})
    with pytest.raises(geo_engine.GeometryError, match="row 2"):
        geo_engine.encode_copy_rows(batch, source_id=1)


def test_a_streamed_batch_encodes(tmp_path: Path) -> None:
    """What the load step does: batches from a reader straight into COPY rows."""
    path = write_shapefile(
        tmp_path / "p.shp",
        {"id": pa.array([1, 2], pa.int32())},
        [Point(0, 0), None],
        geometry_type="Point",
    )
    stream = pa.RecordBatchReader.from_stream(geo_engine.stream_shapefile(path))
    data = geo_engine.copy_header()
    for batch in stream:
        data += geo_engine.encode_copy_rows(batch, source_id=3)
    data += geo_engine.copy_trailer()
    rows = parse_rows(data[19:-2])
    assert [row[2] for row in rows] == [b"Point", None]
    assert [json.loads(row[1][1:]) for row in rows] == [{"id": 1}, {"id": 2}]  # type: ignore[index]
