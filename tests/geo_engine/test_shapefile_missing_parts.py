"""A shapefile without its .dbf (or its .shx too) reads as GDAL reads it: geometry only."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyogrio
import pytest
from shapely.geometry import LineString, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import assert_same, oracle, read, write_shapefile

CASES = {
    "points": ("Point", [Point(1, 2), None, Point(179.9, -89.9), Point(-3, 4)]),
    "lines": ("LineString", [LineString([(0, 0), (1, 1)]), LineString([(3, 3), (4, 4), (5, 3)])]),
    "polygons": (
        "Polygon",
        [Polygon([(0, 0), (0, 10), (10, 10), (10, 0)]), Polygon([(20, 20), (20, 30), (30, 20)])],
    ),
}


@pytest.fixture
def restore_shx() -> Iterator[None]:
    """GDAL reads a shapefile without its .shx only when told to rebuild it."""
    pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": True})
    yield
    pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": None})


def _written(tmp_path: Path, case: str) -> Path:
    geometry_type, geometries = CASES[case]
    ids = pa.array(list(range(len(geometries))), pa.int32())
    return write_shapefile(
        tmp_path / f"{case}.shp", {"id": ids}, geometries, geometry_type=geometry_type
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_without_its_dbf_a_shapefile_reads_as_geometry_only_like_gdal(
    tmp_path: Path, case: str
) -> None:
    shp = _written(tmp_path, case)
    shp.with_suffix(".dbf").unlink()

    ours = read(shp)
    theirs = oracle(shp)

    assert ours.column_names == ["geometry"]
    assert theirs.num_columns == 1  # GDAL: the geometry column alone
    assert_same(ours, theirs)
    assert ours.schema.metadata[b"geo_engine:missing_parts"] == b"dbf"
    assert geo_engine.parse_shapefile(shp).num_rows == len(CASES[case][1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_without_dbf_and_shx_the_records_are_walked_like_gdal_restoring_the_shx(
    tmp_path: Path, case: str, restore_shx: None
) -> None:
    shp = _written(tmp_path, case)
    shp.with_suffix(".dbf").unlink()
    shp.with_suffix(".shx").unlink()

    ours = read(shp)
    assert ours.schema.metadata[b"geo_engine:missing_parts"] == b"shx,dbf"
    # GDAL writes the .shx it rebuilds beside the file: let it do so on a copy.
    copy = tmp_path / "gdal" / shp.name
    copy.parent.mkdir()
    shutil.copy(shp, copy)
    theirs = oracle(copy)
    assert ours.column_names == ["geometry"]
    assert_same(ours, theirs)


def test_with_every_part_nothing_is_missing(tmp_path: Path) -> None:
    shp = _written(tmp_path, "points")
    ours = read(shp)
    assert ours.column_names == ["id", "geometry"]
    assert ours.schema.metadata[b"geo_engine:missing_parts"] == b""
    assert_same(ours, oracle(shp))


def test_a_zip_without_its_dbf_reads_as_geometry_only(tmp_path: Path) -> None:
    shp = _written(tmp_path, "lines")
    archive = tmp_path / "lines.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for ext in (".shp", ".shx", ".prj"):
            zipped.write(shp.with_suffix(ext), f"lines{ext}")
    table = geo_engine.parse_shapefile(archive)
    assert table.column_names == ["geometry"] and table.num_rows == 2
