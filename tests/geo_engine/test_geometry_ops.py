"""infer_metadata, validate_geometry and simplify_geometry against shapely (GEOS)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import write_shapefile


def wkb_array(geometries: list[shapely.Geometry | None]) -> pa.Array:
    return pa.array(shapely.to_wkb(np.array(geometries, dtype=object), flavor="iso"), pa.binary())


def test_infer_metadata_of_a_shapefile_stream(tmp_path: Path) -> None:
    path = write_shapefile(
        tmp_path / "p.shp",
        {
            "id": pa.array([3, 1, 2], pa.int32()),
            "name": pa.array(["b", None, "a"]),
            "day": pa.array([dt.date(2024, 1, 31), None, dt.date(1999, 1, 1)]),
        },
        [Point(1, 2), None, Point(-3, 10)],
        geometry_type="Point",
    )
    summary = geo_engine.infer_metadata(geo_engine.stream_shapefile(path))
    assert summary["row_count"] == 3
    columns = {c["name"]: c for c in summary["columns"]}
    assert columns["id"] == {"name": "id", "type": "Int32", "null_count": 0, "min": 1, "max": 3}
    assert (columns["name"]["min"], columns["name"]["max"]) == ("a", "b")
    assert columns["day"]["min"] == "1999-01-01"
    geometry = summary["geometry"]
    assert geometry["types"] == {"Point": 2}
    assert geometry["null_count"] == 1
    assert geometry["bbox"] == [-3.0, 2.0, 1.0, 10.0]
    assert geometry["crs"]["id"]["code"] == 4326
    # A pyarrow table and a single batch work too.
    table = geo_engine.parse_shapefile(path)
    assert geo_engine.infer_metadata(table)["row_count"] == 3
    assert geo_engine.infer_metadata(table.to_batches()[0])["geometry"]["types"] == {"Point": 2}


@pytest.mark.parametrize("driver", ["ESRI Shapefile", "GeoJSON", "GeoJSONSeq", "CSV"])
def test_infer_metadata_of_a_path_agrees_with_pyogrio(tmp_path: Path, driver: str) -> None:
    # One pass over the file, in its own CRS: counts, types, bbox and CRS as GDAL
    # reports them, min/max and nulls as the data says.
    rng = np.random.default_rng(3)
    n = 500
    xs, ys = rng.uniform(400_000, 600_000, n), rng.uniform(100_000, 900_000, n)
    shapes = [Point(x, y) for x, y in zip(xs, ys, strict=True)]
    shapes[7] = None
    values = rng.uniform(-5, 5, n)
    table = pa.table(
        {
            "count": pa.array(range(n), pa.int32()),
            "value": pa.array(values),
            "name": pa.array([None if i % 10 == 0 else f"n{i:03d}" for i in range(n)]),
            "geometry": wkb_array(shapes),
        }
    )
    suffix = {"ESRI Shapefile": ".shp", "GeoJSON": ".geojson", "GeoJSONSeq": ".geojsonl"}
    path = tmp_path / f"data{suffix.get(driver, '.csv')}"
    crs = "EPSG:27700"
    options: dict[str, str] = {}
    if driver == "CSV":
        # The CSV driver writes WKT; CRS given, as a CSV cannot say it.
        options = {"GEOMETRY": "AS_WKT"}
    pyogrio.write_arrow(
        table,
        path,
        driver=driver,
        geometry_name="geometry",
        geometry_type="Point",
        crs=crs,
        layer_options=options or None,
    )
    summary = geo_engine.infer_metadata(path, source_crs=crs if driver == "CSV" else None)
    info = pyogrio.read_info(path)
    assert summary["format"] == {"ESRI Shapefile": "shapefile", "CSV": "csv"}.get(driver, "geojson")
    assert summary["feature_count"] == summary["row_count"] == info["features"] == n
    assert summary["geometry_types"] == ["Point"]
    assert summary["geometry"]["null_count"] == 1
    _, theirs = pyogrio.read_arrow(path)
    geometry_column = pa.table(theirs).column(-1).to_pylist()
    bounds = shapely.total_bounds(shapely.from_wkb(np.array(geometry_column, dtype=object)))
    np.testing.assert_allclose(summary["bbox"], bounds, rtol=0, atol=1e-6)
    # GeoJSONSeq is WGS 84 by definition (GDAL reprojects on writing).
    epsg = int((info["crs"] or crs).split(":")[1])
    assert summary["crs"]["epsg"] == epsg
    assert summary["crs"]["authority"] == f"EPSG:{epsg}"
    columns = {c["name"]: c for c in summary["columns"]}
    assert (columns["count"]["min"], columns["count"]["max"]) == (0, n - 1)
    assert columns["value"]["min"] == pytest.approx(values.min())
    assert columns["value"]["max"] == pytest.approx(values.max())
    assert columns["name"]["null_count"] == (n // 10 if driver != "CSV" else 0)
    assert columns["name"]["max"] == "n499"


def test_infer_metadata_of_a_path_errors(tmp_path: Path) -> None:
    with pytest.raises(geo_engine.FormatError, match="unknown format"):
        geo_engine.infer_metadata(tmp_path / "x.gpkg")
    with pytest.raises(geo_engine.FormatError, match="file not found"):
        geo_engine.infer_metadata(str(tmp_path / "missing.shp"))
    with pytest.raises(ValueError, match="apply to a path"):
        geo_engine.infer_metadata(pa.table({"a": [1]}), layer="x")


def test_validate_geometry_agrees_with_geos() -> None:
    geometries = [
        Polygon([(0, 0), (0, 1), (1, 1), (1, 0)]),
        Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]),  # bow-tie
        None,
        LineString([(0, 0), (1, 1)]),
        Polygon([(0, 0), (0, 4), (4, 4), (4, 0)], [[(5, 5), (6, 5), (6, 6)]]),  # hole outside
        Point(1, 2),
    ]
    result = geo_engine.validate_geometry(wkb_array(geometries))
    assert isinstance(result, pa.RecordBatch)
    present = [g for g in geometries if g is not None]
    expected = iter(shapely.is_valid(np.array(present, dtype=object)).tolist())
    assert result.column("is_valid").to_pylist() == [
        None if g is None else next(expected) for g in geometries
    ]
    reasons = result.column("reason").to_pylist()
    assert reasons[0] is None and reasons[1] is not None and reasons[4] is not None


def test_validate_geometry_invalid_wkb() -> None:
    good = shapely.to_wkb(Point(0, 0))
    with pytest.raises(geo_engine.GeometryError, match="row 1"):
        geo_engine.validate_geometry(pa.array([good, b"\x01\x02"], pa.binary()))


@pytest.mark.parametrize("method", ["douglas-peucker", "visvalingam-whyatt"])
def test_simplify_geometry(method: str) -> None:
    rng = np.random.default_rng(1)
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    radius = 10 + rng.uniform(-0.05, 0.05, t.size)
    ring = np.column_stack([radius * np.cos(t), radius * np.sin(t)])
    shapes = [LineString(ring[:200]), Polygon(ring), Point(1, 1), None]
    out = geo_engine.simplify_geometry(wkb_array(shapes), tolerance=0.5, method=method)
    assert isinstance(out, pa.Array) and len(out) == 4
    ours = shapely.from_wkb(np.array(out.to_pylist(), dtype=object))
    assert ours[3] is None
    assert ours[2].equals(shapes[2])
    assert shapely.get_num_coordinates(ours[0]) < 50
    assert shapely.get_num_coordinates(ours[1]) < 80
    # Close to the original: the simplified shapes stay within the tolerance band.
    assert ours[1].symmetric_difference(shapes[1]).area < 0.05 * shapes[1].area
    if method == "douglas-peucker":
        expected = shapely.simplify(shapes[0], 0.5, preserve_topology=False)
        assert ours[0].equals_exact(expected, 1e-9)


def test_simplify_options() -> None:
    line = wkb_array([LineString([(0, 0), (1, 0.01), (2, 0)])])
    kept = geo_engine.simplify_geometry(
        line, tolerance=0.1, method="vw", preserve_topology=True
    ).to_pylist()
    assert shapely.from_wkb(kept[0]).equals(LineString([(0, 0), (2, 0)]))
    with pytest.raises(ValueError, match="preserve_topology"):
        geo_engine.simplify_geometry(line, tolerance=1, preserve_topology=True)
    with pytest.raises(ValueError, match="method"):
        geo_engine.simplify_geometry(line, tolerance=1, method="magic")
    with pytest.raises(ValueError, match="tolerance"):
        geo_engine.simplify_geometry(line, tolerance=-1)
