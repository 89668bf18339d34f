"""stream_csv_points, stream_geojson and parse_geojson against pyogrio."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import reproject


def stream(reader: object) -> pa.Table:
    return pa.RecordBatchReader.from_stream(reader).read_all()


def geometries(table: pa.Table, column: str = "geometry") -> np.ndarray:
    out: np.ndarray = shapely.from_wkb(np.array(table[column].to_pylist(), dtype=object))
    return out


def assert_geometries_equal(ours: np.ndarray, theirs: np.ndarray, tolerance: float = 1e-9) -> None:
    assert list(shapely.is_missing(ours)) == list(shapely.is_missing(theirs))
    present = ~shapely.is_missing(theirs)
    assert shapely.equals_exact(ours[present], theirs[present], tolerance=tolerance).all()


# CSV -------------------------------------------------------------------------------

CSV_TEXT = """id,name,lon,lat,score,ok,day
1,alpha,-0.1276,51.5072,1.5,true,2024-01-31
2,"beta, with comma",2.3522,48.8566,,false,
3,,13.405,52.52,-2,true,1999-12-01
"""


def test_csv_points_match_pyogrio(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text(CSV_TEXT)
    ours = stream(geo_engine.stream_csv_points(path))
    assert ours.column_names == ["id", "name", "score", "ok", "day", "geometry"]
    assert ours.schema.field("id").type == pa.int64()
    assert ours.schema.field("score").type == pa.float64()
    assert ours.schema.field("ok").type == pa.bool_()
    assert ours.schema.field("day").type == pa.date32()
    assert ours["day"].to_pylist() == [dt.date(2024, 1, 31), None, dt.date(1999, 12, 1)]
    assert ours["name"].to_pylist() == ["alpha", "beta, with comma", ""]
    _, theirs = pyogrio.read_arrow(
        path, X_POSSIBLE_NAMES="lon", Y_POSSIBLE_NAMES="lat", AUTODETECT_TYPE="YES"
    )
    theirs = pa.table(theirs)
    for name in ("id", "score", "ok", "day"):
        assert ours[name].to_pylist() == theirs[name].to_pylist(), name
    assert_geometries_equal(geometries(ours), geometries(theirs, "wkb_geometry"))


def test_csv_reprojection_and_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "bng.tsv"
    path.write_text("easting\tnorthing\tlabel\n530000\t180000\ta\n400000\t300000\tb\n")
    ours = stream(geo_engine.stream_csv_points(path, source_crs="EPSG:27700"))
    expected = reproject(
        np.array([Point(530000, 180000), Point(400000, 300000)], dtype=object), "EPSG:27700"
    )
    assert_geometries_equal(geometries(ours), expected)
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("a;b;c\n1;2;x\n")
    table = stream(geo_engine.stream_csv_points(semicolons, x="a", y="b"))
    assert table.column_names == ["c", "geometry"]
    explicit = stream(geo_engine.stream_csv_points(semicolons, x="a", y="b", delimiter=";"))
    assert explicit.equals(table)


def test_csv_wkt(tmp_path: Path) -> None:
    shapes = [
        Polygon([(0, 0), (0, 1), (1, 1), (0, 0)]),
        LineString([(0, 0, 1), (1, 1, 2)]),
        None,
        MultiPolygon([Polygon([(5, 5), (5, 6), (6, 6)])]),
    ]
    lines = ["id,WKT"] + [
        f'{i},"{g.wkt if g is not None else ""}"' for i, g in enumerate(shapes, start=1)
    ]
    path = tmp_path / "shapes.csv"
    path.write_text("\n".join(lines) + "\n")
    ours = stream(geo_engine.stream_csv_points(path))
    assert ours.column_names == ["id", "geometry"]
    assert_geometries_equal(geometries(ours), np.array(shapes, dtype=object))
    _, theirs = pyogrio.read_arrow(path)
    assert_geometries_equal(geometries(ours), geometries(pa.table(theirs), "wkb_geometry"))


def test_csv_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x,y,n\n1,2,3\n1,oops,4\n5,6\n7,8,9\n")
    with pytest.raises(
        geo_engine.FormatError, match=r"bad\.csv, line 3: latitude 'oops' is not a number"
    ):
        geo_engine.stream_csv_points(path)
    skipping = geo_engine.stream_csv_points(path, on_bad_rows="skip")
    assert isinstance(skipping, geo_engine.CsvStream)
    skipped = stream(skipping)
    assert skipped["n"].to_pylist() == [3, 9]
    assert skipping.skipped_rows == [
        (3, "latitude 'oops' is not a number"),
        (4, "2 fields, the header has 3"),
    ]
    with pytest.raises(ValueError, match="on_bad_rows"):
        geo_engine.stream_csv_points(path, on_bad_rows="ignore")
    with pytest.raises(ValueError, match=r'no column "lon"'):
        geo_engine.stream_csv_points(path, x="lon", y="y")
    late = tmp_path / "late.csv"
    late.write_text("x,y,n\n1,2,3\n3,4,5\n5,north,seven\n")
    reader = pa.RecordBatchReader.from_stream(geo_engine.stream_csv_points(late, batch_size=2))
    assert reader.schema.field("n").type == pa.string()  # "seven" is not a bad value
    with pytest.raises(pa.ArrowInvalid, match=r"FormatError: .*late\.csv, line 4: latitude"):
        reader.read_all()


def test_csv_skip_report_grows_with_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "cities.csv"
    lines = ["name,lon,lat"] + [f"c{i},{i % 170},{i % 80}" for i in range(10)]
    lines[3] = "c2,abc,10"
    lines[5] = "c4,10,123.0"
    lines[8] = "c7,,5"
    path.write_text("\n".join(lines) + "\n")
    csv = geo_engine.stream_csv_points(path, batch_size=4, on_bad_rows="skip")
    # The first batch (lines 2-5) is read by the call.
    assert csv.skipped_rows == [(4, "longitude 'abc' is not a number")]
    assert "CsvStream" in repr(csv)
    table = stream(csv)
    assert table["name"].to_pylist() == [f"c{i}" for i in range(10) if i not in (2, 4, 7)]
    assert csv.skipped_rows == [
        (4, "longitude 'abc' is not a number"),
        (6, "latitude 123.0 is out of range (-90 to 90)"),
        (9, "longitude is missing"),
    ]
    # Failing instead names the same first line.
    with pytest.raises(geo_engine.FormatError, match=r"cities\.csv, line 4: longitude 'abc'"):
        geo_engine.stream_csv_points(path)


def test_csv_stream_is_an_arrow_stream(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text(CSV_TEXT)
    # DuckDB takes it by the Arrow PyCapsule interface, as pyarrow does.
    csv = geo_engine.stream_csv_points(path)
    assert duckdb.sql("SELECT count(*), sum(id) FROM csv").fetchall() == [(3, 6)]
    assert csv.skipped_rows == []
    with pytest.raises(OSError, match="closed stream"):
        pa.RecordBatchReader.from_stream(csv)  # one-shot, like any Arrow stream
    csv = geo_engine.stream_csv_points(path)
    assert pa.schema(csv).names == pa.RecordBatchReader.from_stream(csv).schema.names


def test_csv_types_from_the_whole_file_match_pyogrio(tmp_path: Path) -> None:
    # Batches of two rows: the int column gets a float in the third batch, the float
    # column a word; dates meet times with and without an offset.
    path = tmp_path / "late.csv"
    path.write_text(
        "lon,lat,i,f,when,stamp\n"
        "1,1,1,0.5,2024-01-01,2024-01-01\n"
        "2,2,2,1.5,2024-01-02,2024-01-02T10:00:00\n"
        "3,3,3,2.5,,2024-01-03 10:00:00.25\n"
        "4,4,4,3.5,2024-01-04T00:00:00Z,\n"
        "5,5,5.5,n/a,2024-01-05T12:00:00+02:00,2024-01-05\n"
        "6,6,6,5.5,2024-01-06,2024-01-06T23:59:59\n"
    )
    csv = geo_engine.stream_csv_points(path, batch_size=2, on_bad_rows="skip")
    ours = stream(csv)
    assert csv.skipped_rows == []
    assert ours.schema.field("i").type == pa.float64()
    assert ours.schema.field("f").type == pa.string()
    assert ours.schema.field("when").type == pa.timestamp("us", tz="UTC")
    assert ours.schema.field("stamp").type == pa.timestamp("us")
    # GDAL over the whole file (AUTODETECT_SIZE_LIMIT=0); its Arrow reader drops the
    # offsets, its data frames keep them (in UTC).
    options = {
        "X_POSSIBLE_NAMES": "lon",
        "Y_POSSIBLE_NAMES": "lat",
        "AUTODETECT_TYPE": "YES",
        "AUTODETECT_SIZE_LIMIT": "0",
    }
    _, theirs = pyogrio.read_arrow(path, **options)
    theirs = pa.table(theirs)
    for name in ("i", "f", "stamp"):
        assert ours[name].to_pylist() == theirs[name].to_pylist(), name
    frame = pyogrio.read_dataframe(path, use_arrow=True, **options)
    assert str(frame["when"].dtype).endswith("UTC]")
    expected = [None if pd.isna(v) else v.to_pydatetime() for v in frame["when"]]
    assert ours["when"].to_pylist() == expected
    assert_geometries_equal(geometries(ours), geometries(theirs, "wkb_geometry"))


def test_csv_wkt_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "shapes.csv"
    path.write_text('id,wkt\n1,POINT (1 2)\n2,"LINESTRING (0 0, 181 0)"\n3,POINT (1\n')
    csv = geo_engine.stream_csv_points(path, on_bad_rows="skip")
    assert stream(csv)["id"].to_pylist() == [1]
    [(line_2, range_problem), (line_3, wkt_problem)] = csv.skipped_rows
    assert (line_2, range_problem) == (3, "longitude 181 is out of range (-180 to 180)")
    assert line_3 == 4 and wkt_problem.startswith("invalid WKT"), wkt_problem
    # A projected CRS has no such range.
    projected = geo_engine.stream_csv_points(path, source_crs="EPSG:3857", on_bad_rows="skip")
    assert stream(projected)["id"].to_pylist() == [1, 2]
    assert [line for line, _ in projected.skipped_rows] == [4]


# GeoJSON ---------------------------------------------------------------------------

FEATURES = [
    Point(-0.1276, 51.5072),
    LineString([(0, 0), (1, 1), (2, 0)]),
    Polygon([(0, 0), (0, 4), (4, 4), (4, 0), (0, 0)], [[(1, 1), (2, 1), (2, 2), (1, 1)]]),
    MultiPolygon([Polygon([(10, 10), (10, 11), (11, 11), (10, 10)])]),
    None,
    Point(1, 2, 3),
]


def write_geojson(path: Path, driver: str = "GeoJSON", crs: str = "EPSG:4326") -> Path:
    n = len(FEATURES)
    table = pa.table(
        {
            "count": pa.array(range(n), pa.int64()),
            "value": pa.array([0.5 * i for i in range(n)]),
            "name": pa.array([f"f{i}" if i != 2 else None for i in range(n)]),
            "flag": pa.array([i % 2 == 0 for i in range(n)]),
            "geometry": pa.array(
                shapely.to_wkb(np.array(FEATURES, dtype=object), flavor="iso"), pa.binary()
            ),
        }
    )
    pyogrio.write_arrow(
        table, path, driver=driver, geometry_name="geometry", geometry_type="Unknown", crs=crs
    )
    return path


@pytest.mark.parametrize("driver", ["GeoJSON", "GeoJSONSeq"])
def test_geojson_matches_pyogrio(tmp_path: Path, driver: str) -> None:
    path = write_geojson(tmp_path / "features.json", driver)
    ours = stream(geo_engine.stream_geojson(path, batch_size=4))
    _, theirs = pyogrio.read_arrow(path)
    theirs = pa.table(theirs)
    assert ours.column_names == ["count", "value", "name", "flag", "geometry"]
    for name in ("count", "value", "name", "flag"):
        assert ours[name].to_pylist() == theirs[name].to_pylist(), name
    assert_geometries_equal(geometries(ours), geometries(theirs, "wkb_geometry"))
    whole = geo_engine.parse_geojson(path)
    assert whole.num_rows == len(FEATURES)
    assert whole.equals(ours.combine_chunks())


def test_geojson_crs_member_is_used(tmp_path: Path) -> None:
    path = tmp_path / "bng.geojson"
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"id": 1},
                "geometry": {"type": "Point", "coordinates": [530000, 180000]},
            }
        ],
    }
    path.write_text(json.dumps(collection))
    ours = stream(geo_engine.stream_geojson(path))
    assert ours.schema.metadata[b"geo_engine:crs_source"] == b"member"
    expected = reproject(np.array([Point(530000, 180000)], dtype=object), "EPSG:27700")
    assert_geometries_equal(geometries(ours), expected)
    _, theirs = pyogrio.read_arrow(path)
    assert_geometries_equal(
        geometries(ours), reproject(geometries(pa.table(theirs), "wkb_geometry"), "EPSG:27700")
    )


def test_geojson_varying_properties(tmp_path: Path) -> None:
    # The schema pass sees every feature: streaming one feature a batch still gets a
    # property first seen late, and int widened to float, nested values as JSON text.
    path = tmp_path / "vary.geojsonl"
    lines = [
        {"type": "Feature", "properties": {"a": 1, "s": "x"}, "geometry": None},
        {"type": "Feature", "properties": {"a": 2.5, "b": {"nested": [1, 2]}}, "geometry": None},
        {"type": "Feature", "properties": {"s": 3, "c": True, "d": "2024-01-31"}, "geometry": None},
    ]
    path.write_text("\n".join(json.dumps(f) for f in lines) + "\n")
    streamed = stream(geo_engine.stream_geojson(path, batch_size=1))
    assert streamed.schema.metadata[b"geo_engine:feature_count"] == b"3"
    assert streamed.column_names == ["a", "s", "b", "c", "d", "geometry"]
    assert streamed.schema.field("a").type == pa.float64()
    assert streamed["a"].to_pylist() == [1.0, 2.5, None]
    assert streamed["s"].to_pylist() == ["x", None, "3"]
    assert streamed["b"].to_pylist() == [None, '{"nested":[1,2]}', None]
    assert streamed.schema.field("c").type == pa.bool_()
    assert streamed["d"].to_pylist() == [None, None, dt.date(2024, 1, 31)]
    whole = geo_engine.parse_geojson(path)
    assert whole.equals(streamed.combine_chunks())


def test_geojson_feature_ids(tmp_path: Path) -> None:
    # GDAL makes integer ids the FID and string ids an "id" field; ours are an "id"
    # column either way (typed like a property), "feature_id" when a property is
    # called "id" (GDAL then drops the feature ids).
    def write(name: str, ids: list[object], properties: list[dict[str, object]]) -> Path:
        path = tmp_path / name
        features = [
            {"type": "Feature", "id": i, "properties": p, "geometry": None}
            for i, p in zip(ids, properties, strict=True)
        ]
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        return path

    numbers = write("numbers.geojson", [0, 10, 20], [{"a": i} for i in range(3)])
    ours = stream(geo_engine.stream_geojson(numbers))
    assert ours.column_names == ["id", "a", "geometry"]
    assert ours.schema.field("id").type == pa.int64()
    _, theirs = pyogrio.read_arrow(numbers, return_fids=True)
    assert ours["id"].to_pylist() == pa.table(theirs)["OGC_FID"].to_pylist()

    texts = write("texts.geojson", ["x0", "x1", "x2"], [{"a": i} for i in range(3)])
    ours = stream(geo_engine.stream_geojson(texts))
    _, theirs = pyogrio.read_arrow(texts)
    assert ours["id"].to_pylist() == pa.table(theirs)["id"].to_pylist()

    both = write("both.geojson", ["x0", 5, None], [{"id": i} for i in range(3)])
    ours = stream(geo_engine.stream_geojson(both))
    assert ours.column_names == ["feature_id", "id", "geometry"]
    assert ours["feature_id"].to_pylist() == ["x0", "5", None]
    _, theirs = pyogrio.read_arrow(both)
    assert ours["id"].to_pylist() == pa.table(theirs)["id"].to_pylist()


def test_geojson_crs_member_after_the_features(tmp_path: Path) -> None:
    path = tmp_path / "late.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Point", "coordinates": [530000, 180000]},
                    }
                ],
                "crs": {"type": "name", "properties": {"name": "EPSG:27700"}},
            }
        )
    )
    ours = stream(geo_engine.stream_geojson(path))
    assert ours.schema.metadata[b"geo_engine:crs_source"] == b"member"
    expected = reproject(np.array([Point(530000, 180000)], dtype=object), "EPSG:27700")
    assert_geometries_equal(geometries(ours), expected)


def test_geojson_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    features = [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": c}}
        for c in ([0, 0], [0])
    ]
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(geo_engine.FormatError, match=r"bad\.geojson, feature 2"):
        geo_engine.parse_geojson(bad)
    cut = tmp_path / "cut.geojson"
    cut.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature"')
    with pytest.raises(geo_engine.FormatError, match="ends inside a value"):
        geo_engine.stream_geojson(cut)
    with pytest.raises(geo_engine.FormatError, match="file not found"):
        geo_engine.stream_geojson(tmp_path / "missing.geojson")


def test_csv_column_types_given(tmp_path: Path) -> None:
    """Types given (an earlier stream's schema) are used instead of the whole-file pass."""
    path = tmp_path / "given.csv"
    path.write_text("code,n,lon,lat\n007,1,1,2\n8,2,3,4\n")
    first = geo_engine.stream_csv_points(path)
    inferred = pa.RecordBatchReader.from_stream(first).schema
    assert inferred.field("n").type == pa.int64()
    again = stream(geo_engine.stream_csv_points(path, column_types=inferred))
    assert again.schema == inferred
    floats = pa.schema([("code", pa.string()), ("n", pa.float64())])
    table = stream(geo_engine.stream_csv_points(path, column_types=floats))
    assert table["n"].to_pylist() == [1.0, 2.0]
    with pytest.raises(ValueError, match='"n"'):
        geo_engine.stream_csv_points(path, column_types=pa.schema([("code", pa.string())]))
