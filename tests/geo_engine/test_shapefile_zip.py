"""parse_shapefile and shapefiles inside .zip archives, against pyogrio."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from shapely.geometry import LineString, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import assert_same, oracle, read, write_shapefile

SIBLINGS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def make_layer(folder: Path, name: str, n: int, crs: str = "EPSG:4326") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    geometries = [Point(i, i) for i in range(n)]
    return write_shapefile(
        folder / f"{name}.shp",
        {"id": pa.array(range(n), pa.int32()), "label": pa.array([f"n{i}" for i in range(n)])},
        geometries,
        geometry_type="Point",
        crs=crs,
    )


def zip_layers(archive: Path, layers: list[Path], prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for shp in layers:
            for ext in SIBLINGS:
                member = shp.with_suffix(ext)
                if member.exists():
                    zf.write(member, prefix + member.name)
    return archive


def test_parse_shapefile_is_rereadable(tmp_path: Path) -> None:
    path = make_layer(tmp_path, "pts", 5)
    table = geo_engine.parse_shapefile(path)
    assert isinstance(table, pa.Table)
    assert_same(table, oracle(path))
    assert pa.table(table).num_rows == pa.table(table).num_rows == 5


def test_zip_with_one_shapefile(tmp_path: Path) -> None:
    shp = make_layer(tmp_path / "src", "only", 4, crs="EPSG:3857")
    archive = zip_layers(tmp_path / "one.zip", [shp], prefix="nested/folder/")
    assert geo_engine.list_layers(archive) == ["only"]
    expected = oracle(shp)
    assert_same(read(archive), expected, transform_from="EPSG:3857")
    assert_same(geo_engine.parse_shapefile(archive, target_crs=None), expected)
    # GDAL reads the archive the same way.
    inside = f"/vsizip/{archive}/nested/folder/only.shp"
    assert_same(geo_engine.parse_shapefile(archive, target_crs=None), oracle(inside))


def test_zip_with_several_shapefiles(tmp_path: Path) -> None:
    a = make_layer(tmp_path / "src", "roads", 3)
    b = make_layer(tmp_path / "src", "Rivers", 6)
    archive = zip_layers(tmp_path / "two.zip", [a, b])
    assert geo_engine.list_layers(archive) == ["Rivers", "roads"]
    with pytest.raises(ValueError, match=r"several shapefiles \(Rivers, roads\)"):
        geo_engine.parse_shapefile(archive)
    assert geo_engine.parse_shapefile(archive, layer="rivers").num_rows == 6
    assert_same(read(archive, layer="roads"), oracle(a))
    with pytest.raises(ValueError, match='no layer "lakes"'):
        geo_engine.stream_shapefile(archive, layer="lakes")


def test_zip_that_is_not_a_zip(tmp_path: Path) -> None:
    archive = tmp_path / "fake.zip"
    archive.write_bytes(b"not a zip at all")
    with pytest.raises(geo_engine.FormatError, match="not a readable zip"):
        geo_engine.parse_shapefile(archive)


def test_parse_raises_typed_errors_from_any_record(tmp_path: Path) -> None:
    path = write_shapefile(
        tmp_path / "late.shp",
        {"name": pa.array(["ok"] * 5 + ["café"])},
        [LineString([(0, 0), (1, 1)])] * 6,
        geometry_type="LineString",
        encoding="ISO-8859-1",
    )
    path.with_suffix(".cpg").write_text("UTF-8")
    with pytest.raises(geo_engine.EncodingError, match="record 6"):
        geo_engine.parse_shapefile(path)


def test_polygons_in_a_zip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shp = write_shapefile(
        src / "parcels.shp",
        {"id": pa.array([1, 2], pa.int64())},
        [
            Polygon([(0, 0), (0, 4), (4, 4), (4, 0)], [[(1, 1), (2, 1), (2, 2), (1, 2)]]),
            None,
        ],
        geometry_type="Polygon",
    )
    archive = zip_layers(tmp_path / "parcels.zip", [shp])
    assert_same(geo_engine.parse_shapefile(archive), oracle(archive))
