"""stream_shapefile against pyogrio (GDAL) as the oracle."""

from __future__ import annotations

import datetime as dt
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import (
    assert_same,
    dbf_bytes,
    oracle,
    parts_record,
    read,
    write_raw,
    write_shapefile,
)

ATTRIBUTES = {
    "id": pa.array([1, 2, 3], pa.int32()),
    "big": pa.array([10**12, -5, None], pa.int64()),
    "value": pa.array([1.5, None, -2.25], pa.float64()),
    "name": pa.array(["alpha", "béta", None], pa.string()),
    "flag": pa.array([True, False, None], pa.bool_()),
    "day": pa.array([dt.date(2024, 1, 31), None, dt.date(1999, 12, 1)], pa.date32()),
}

SQUARE = Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
OTHER = Polygon([(20, 20), (20, 30), (30, 30), (30, 20)], [[(22, 22), (24, 22), (24, 24)]])

CASES = {
    "points": ("Point", [Point(1, 2), Point(-3.5, 4.25), Point(179.9, -89.9)]),
    "lines": (
        "LineString",
        [
            LineString([(0, 0), (1, 1), (2, 0)]),
            MultiLineString([[(0, 0), (1, 1)], [(5, 5), (6, 7), (8, 8)]]),
            LineString([(3, 3), (4, 4)]),
        ],
    ),
    "polygons": (
        "Polygon",
        [SQUARE, MultiPolygon([SQUARE, OTHER]), Polygon([(0, 0), (1, 0), (1, 1), (0, 0)])],
    ),
    "multipoints": (
        "MultiPoint",
        [MultiPoint([(0, 0), (1, 1)]), MultiPoint([(2, 3)]), MultiPoint([(4, 5), (6, 7), (8, 9)])],
    ),
    "points_z": ("Point Z", [Point(1, 2, 3), Point(4, 5, 6), Point(7, 8, 9)]),
    "polygons_z": (
        "Polygon Z",
        [
            Polygon([(0, 0, 1), (0, 1, 2), (1, 1, 3), (0, 0, 1)]),
            MultiPolygon(
                [
                    Polygon([(0, 0, 1), (0, 1, 2), (1, 1, 3), (0, 0, 1)]),
                    Polygon([(5, 5, 0), (5, 6, 0), (6, 6, 0), (5, 5, 0)]),
                ]
            ),
            Polygon([(0, 0, 0), (0, 9, 0), (9, 9, 0), (0, 0, 0)]),
        ],
    ),
    "lines_z": ("LineString Z", [LineString([(0, 0, 0), (1, 1, 1)])] * 3),
    "null_shapes": ("Point", [Point(1, 2), None, Point(3, 4)]),
}


def write_case(path: Path, case: str) -> Path:
    geometry_type, geometries = CASES[case]
    return write_shapefile(path, ATTRIBUTES, geometries, geometry_type=geometry_type)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pyogrio(tmp_path: Path, case: str) -> None:
    geometry_type, geometries = CASES[case]
    path = write_shapefile(
        tmp_path / f"{case}.shp", ATTRIBUTES, geometries, geometry_type=geometry_type
    )
    ours = read(path)
    assert_same(ours, oracle(path))
    field = ours.schema.field("geometry")
    assert field.type == pa.binary()
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    crs = json.loads(field.metadata[b"ARROW:extension:metadata"])["crs"]
    assert crs["id"] == {"authority": "EPSG", "code": 4326}
    assert ours.schema.metadata[b"geo_engine:crs_source"] == b"prj"


@pytest.mark.parametrize("source", ["EPSG:27700", "EPSG:3857"])
@pytest.mark.parametrize("case", ["points", "polygons", "points_z"])
def test_reprojects_like_pyproj(tmp_path: Path, source: str, case: str) -> None:
    geometry_type, geometries = CASES[case]
    # Coordinates near the origin of both CRSs' valid areas.
    offset = (400000, 300000) if source == "EPSG:27700" else (-10000, 6700000)
    moved = [shapely.affinity.translate(g, *offset) if g is not None else None for g in geometries]
    path = write_shapefile(
        tmp_path / "projected.shp", ATTRIBUTES, moved, geometry_type=geometry_type, crs=source
    )
    ours = read(path)
    assert_same(ours, oracle(path), transform_from=source)
    meta = json.loads(ours.schema.field("geometry").metadata[b"ARROW:extension:metadata"])
    assert meta["crs"]["id"]["code"] == 4326
    assert ours.schema.metadata[b"geo_engine:source_crs"] == source.encode()
    # Without a target, the source CRS is kept and named in the metadata.
    kept = read(path, target_crs=None)
    assert_same(kept, oracle(path))
    meta = json.loads(kept.schema.field("geometry").metadata[b"ARROW:extension:metadata"])
    assert f"{meta['crs']['id']['authority']}:{meta['crs']['id']['code']}" == source


def test_source_crs_override_and_assumed_crs(tmp_path: Path) -> None:
    geometry_type, geometries = CASES["points"]
    path = write_shapefile(tmp_path / "p.shp", ATTRIBUTES, geometries, geometry_type=geometry_type)
    path.with_suffix(".prj").unlink()
    assumed = read(path)
    assert assumed.schema.metadata[b"geo_engine:crs_source"] == b"assumed"
    assert_same(assumed, oracle(path))
    overridden = read(path, source_crs="EPSG:4326", target_crs="EPSG:3857")
    assert overridden.schema.metadata[b"geo_engine:crs_source"] == b"argument"
    assert_same(
        overridden,
        oracle(path),
        tolerance=1e-6,
        transform_from="EPSG:4326",
        transform_to="EPSG:3857",
    )
    with pytest.raises(geo_engine.CrsError, match="target_crs"):
        read(path, target_crs="EPSG:0")


def test_batches_and_deleted_records(tmp_path: Path) -> None:
    n = 1000
    points = [Point(i, i / 2) for i in range(n)]
    path = write_shapefile(
        tmp_path / "many.shp",
        {"id": pa.array(range(n), pa.int32())},
        points,
        geometry_type="Point",
    )
    # Mark records 3 and 998 deleted in the .dbf, as a DBF editor would.
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    header_len, record_len = struct.unpack_from("<HH", dbf, 8)
    for record in (3, 998):
        dbf[header_len + record * record_len] = ord("*")
    path.with_suffix(".dbf").write_bytes(bytes(dbf))
    stream = pa.RecordBatchReader.from_stream(geo_engine.stream_shapefile(path, batch_size=100))
    batches = list(stream)
    assert len(batches) == 10
    assert [b.num_rows for b in batches][:2] == [99, 100]
    ours = pa.Table.from_batches(batches)
    assert 3 not in ours["id"].to_pylist()
    assert_same(ours, oracle(path))


def test_stream_reads_once(tmp_path: Path) -> None:
    path = write_case(tmp_path / "p.shp", "points")
    stream = geo_engine.stream_shapefile(path)
    pa.RecordBatchReader.from_stream(stream).read_all()
    with pytest.raises(OSError, match="closed stream"):
        pa.RecordBatchReader.from_stream(stream)


def test_case_insensitive_siblings(tmp_path: Path) -> None:
    path = write_case(tmp_path / "p.shp", "points")
    for ext in (".shx", ".dbf", ".prj", ".cpg"):
        path.with_suffix(ext).rename(path.with_suffix(ext.upper()))
    upper = path.rename(path.with_suffix(".SHP"))
    assert read(upper).num_rows == 3


def test_missing_shx_is_rebuilt(tmp_path: Path) -> None:
    path = write_case(tmp_path / "p.shp", "polygons")
    expected = oracle(path)
    path.with_suffix(".shx").unlink()
    assert_same(read(path), expected)


def test_measures_are_dropped(tmp_path: Path) -> None:
    line = [(0.0, 0.0), (1.0, 1.0), (2.0, 0.0)]
    records = [
        parts_record(23, [line], ms=[5, 6, 7]),
        parts_record(23, [line, line], ms=[1, 2, 3, 4, 5, 6]),
    ]
    dbf = dbf_bytes([("id", "N", 4, 0)], [[b"1"], [b"2"]])
    path = write_raw(tmp_path / "m.shp", 23, records, dbf)
    ours = read(path)
    geoms = shapely.from_wkb(ours["geometry"].to_numpy(zero_copy_only=False))
    assert not shapely.has_z(geoms).any()
    assert geoms[0].equals_exact(LineString(line), 0)
    assert geoms[1].equals_exact(MultiLineString([line, line]), 0)
    # GDAL keeps the measures; their x/y agree with ours.
    with pytest.warns(UserWarning, match="Measured"):
        theirs_table = oracle(path)
    theirs = shapely.from_wkb(theirs_table["wkb_geometry"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(shapely.get_coordinates(geoms), shapely.get_coordinates(theirs))


# Encodings -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1", "CP1252"])
def test_encodings_from_cpg(tmp_path: Path, encoding: str) -> None:
    path = write_shapefile(
        tmp_path / "text.shp",
        {"name": pa.array(["café", "Zürich", "naïve €" if encoding != "ISO-8859-1" else "ñ"])},
        [Point(0, 0)] * 3,
        geometry_type="Point",
        encoding=encoding,
    )
    ours = read(path)
    used = ours.schema.metadata[b"geo_engine:encoding"].decode().upper()
    assert used.replace("WINDOWS-", "CP") == encoding
    assert_same(ours, oracle(path))


def test_encoding_from_language_byte_and_default(tmp_path: Path) -> None:
    records = [struct.pack("<idd", 1, 0, 0)] * 2
    rows = [[b"caf\xe9"], [b"\xc5land"]]
    # LDID 0x57 (87): ANSI / ISO-8859-1; LDID 0 and no .cpg: GDAL's default, ISO-8859-1.
    for ldid in (0x57, 0):
        path = write_raw(
            tmp_path / f"l{ldid}.shp", 1, records, dbf_bytes([("name", "C", 8, 0)], rows, ldid=ldid)
        )
        ours = read(path)
        assert ours["name"].to_pylist() == ["café", "Åland"]
        assert_same(ours, oracle(path, encoding="ISO-8859-1"))
    # LDID 0x26 (38): CP866.
    path = write_raw(
        tmp_path / "ru.shp",
        1,
        records[:1],
        dbf_bytes([("name", "C", 8, 0)], [["мир".encode("cp866")]], ldid=0x26),
    )
    assert read(path)["name"].to_pylist() == ["мир"]
    # The caller's encoding wins over everything.
    as_latin1 = "мир".encode("cp866").decode("latin-1")
    assert read(path, encoding="latin-1")["name"].to_pylist() == [as_latin1]


def test_bad_encoding_names_file_and_record(tmp_path: Path) -> None:
    path = write_shapefile(
        tmp_path / "bad.shp",
        {"name": pa.array(["plain", "café"])},
        [Point(0, 0)] * 2,
        geometry_type="Point",
        encoding="ISO-8859-1",
    )
    path.with_suffix(".cpg").write_text("UTF-8")
    with pytest.raises(geo_engine.EncodingError, match=r"bad\.dbf, record 2.*UTF-8"):
        read(path)
    path.with_suffix(".cpg").write_text("EBCDIC-FANTASY")
    with pytest.raises(geo_engine.EncodingError, match=r"bad\.cpg"):
        read(path)


# Refusals --------------------------------------------------------------------------


@pytest.fixture
def points_path(tmp_path: Path) -> Path:
    return write_case(tmp_path / "pts.shp", "points")


def test_missing_shp(tmp_path: Path) -> None:
    with pytest.raises(geo_engine.FormatError, match=r"nothing\.shp: file not found"):
        geo_engine.stream_shapefile(tmp_path / "nothing.shp")


def test_truncated_shp(points_path: Path) -> None:
    data = points_path.read_bytes()
    points_path.write_bytes(data[:-5])
    with pytest.raises(geo_engine.FormatError, match=r"pts\.shp, record 3.*truncated"):
        geo_engine.stream_shapefile(points_path)


def test_text_instead_of_shp(points_path: Path) -> None:
    points_path.write_text("this is not a shapefile, but it is long enough to have a header " * 3)
    with pytest.raises(geo_engine.FormatError, match="not a shapefile"):
        geo_engine.stream_shapefile(points_path)


def test_record_counts_must_agree(points_path: Path) -> None:
    dbf = bytearray(points_path.with_suffix(".dbf").read_bytes())
    struct.pack_into("<I", dbf, 4, 2)
    points_path.with_suffix(".dbf").write_bytes(bytes(dbf))
    with pytest.raises(geo_engine.FormatError, match="record counts differ: 3 shapes, 2 rows"):
        geo_engine.stream_shapefile(points_path)


def test_bad_number_names_record(tmp_path: Path) -> None:
    records = [struct.pack("<idd", 1, 0, 0)] * 2
    path = write_raw(
        tmp_path / "n.shp", 1, records, dbf_bytes([("n", "N", 5, 0)], [[b"1"], [b"1x"]])
    )
    with pytest.raises(geo_engine.FormatError, match=r"n\.dbf, record 2: field \"n\""):
        read(path)


def test_multipatch_is_refused(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "mp.shp", 31, [struct.pack("<i", 31)], dbf_bytes([("n", "N", 5, 0)], [[b"1"]])
    )
    with pytest.raises(geo_engine.FormatError, match="MultiPatch"):
        read(path)


def test_errors_in_later_batches_reach_the_consumer(tmp_path: Path) -> None:
    records = [struct.pack("<idd", 1, 0, 0)] * 3
    rows = [[b"1"], [b"2"], [b"x"]]
    path = write_raw(tmp_path / "late.shp", 1, records, dbf_bytes([("n", "N", 5, 0)], rows))
    stream = pa.RecordBatchReader.from_stream(geo_engine.stream_shapefile(path, batch_size=2))
    with pytest.raises(pa.ArrowInvalid, match=r"FormatError: .*late\.dbf, record 3"):
        stream.read_all()


def test_exception_hierarchy() -> None:
    for cls in (
        geo_engine.FormatError,
        geo_engine.EncodingError,
        geo_engine.CrsError,
        geo_engine.GeometryError,
        geo_engine.GeoEngineIOError,
    ):
        assert issubclass(cls, geo_engine.GeoEngineError)
    assert issubclass(geo_engine.GeoEngineError, Exception)


def test_zero_copy(points_path: Path) -> None:
    stream, addresses = geo_engine._geo_engine._zero_copy_probe(points_path)
    batch = pa.RecordBatchReader.from_stream(stream).read_next_batch()
    buffers = batch.column("geometry").buffers()
    # buffers: validity (none), offsets, values: the ones Rust allocated.
    assert [b.address for b in buffers[1:]] == addresses


def test_every_dbf_type_matches_pyogrio(tmp_path: Path) -> None:
    fields = [
        ("c", "C", 10, 0),
        ("i9", "N", 9, 0),
        ("i18", "N", 18, 0),
        ("big", "N", 20, 0),
        ("dec", "N", 12, 3),
        ("f", "F", 8, 0),
        ("fd", "F", 10, 2),
        ("l", "L", 1, 0),
        ("d", "D", 8, 0),
        ("m", "M", 10, 0),
    ]
    rows = [
        [b"text", b"-5", b"123456789012", b"12345678901234567890", b"1.250", b"7", b"2.5",
         b"T", b"20240131", b"12"],
        [b"", b"", b"*", b"", b"", b"", b"", b"?", b"00000000", b""],
        [b"  pad  ", b"12", b"0", b"1", b"-0.001", b"-3", b"1e3", b"n", b"19991231", b"3"],
    ]  # fmt: skip
    records = [struct.pack("<idd", 1, i, i) for i in range(3)]
    path = write_raw(tmp_path / "types.shp", 1, records, dbf_bytes(fields, rows))
    ours = read(path)
    assert [f.type for f in ours.schema][:-1] == [
        pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.float64(),
        pa.int32(), pa.float64(), pa.bool_(), pa.date32(), pa.string(),
    ]  # fmt: skip
    assert_same(ours, oracle(path, encoding="ISO-8859-1"))
