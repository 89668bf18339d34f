"""The stage step: a shapefile streamed by geo_engine into a GeoParquet 1.1 file.

The staged file is read back by pyarrow, DuckDB and GeoPandas and compared with what
pyogrio (GDAL, the oracle) reads from the shapefile; its `geo` metadata is validated
against the official GeoParquet 1.1.0 JSON Schema. (GDAL itself cannot read the staged
file here: the GDAL inside the pyogrio wheel has no Parquet driver.)
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

import geo_engine
from pipeline.steps import duck, stage
from tests.pipeline.conftest import (
    canonical_points,
    canonical_polygons,
    column_values,
    validate_geo_metadata,
    write_shapefile,
)


def _geo(path: Path) -> dict[str, object]:
    metadata = pq.read_metadata(path).metadata
    assert metadata is not None
    return dict(json.loads(metadata[b"geo"]))


def test_staged_file_has_valid_geoparquet_1_1_metadata(points_shp: Path, tmp_path: Path) -> None:
    result = stage.run(source=points_shp, destination=tmp_path / "out" / "points.parquet")

    geo = _geo(result.path)
    validate_geo_metadata(geo)
    assert geo["version"] == "1.1.0"
    assert geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]  # type: ignore[index]
    assert column["encoding"] == "WKB"
    assert column["geometry_types"] == ["Point"]
    assert column["crs"]["id"] == {"authority": "EPSG", "code": 4326}
    assert column["bbox"] == pytest.approx([-179.5, -89.0, 135.5, 64.18])
    assert column["covering"] == {
        "bbox": {c: ["bbox", c] for c in ("xmin", "ymin", "xmax", "ymax")}
    }
    assert result.feature_count == 8
    assert result.geometry_types == ["Point"]
    assert set(result.timings) == {"read", "stage"}


def test_staged_file_reads_back_in_pyarrow_duckdb_and_geopandas(
    points_shp: Path, tmp_path: Path
) -> None:
    staged = stage.run(source=points_shp, destination=tmp_path / "points.parquet").path
    expected = pyogrio.read_dataframe(points_shp)

    table = pq.read_table(staged)
    assert table.num_rows == len(expected)
    for column in ("id", "name", "pop"):
        assert table.column(column).to_pylist() == column_values(expected, column)

    with duck.connect() as con:
        rows = con.execute(
            "SELECT id, ST_X(geometry), ST_Y(geometry) FROM read_parquet(?) ORDER BY id",
            [str(staged)],
        ).fetchall()
    assert [(i, pytest.approx(x), pytest.approx(y)) for i, x, y in rows] == [
        (i, pytest.approx(p.x), pytest.approx(p.y))
        for i, p in zip(expected["id"], expected.geometry, strict=True)
    ]

    frame = gpd.read_parquet(staged)
    assert frame.crs is not None and frame.crs.to_epsg() == 4326
    assert shapely.equals_exact(
        frame.geometry.values, expected.geometry.values, tolerance=1e-9
    ).all()


def test_bbox_covering_column_contains_each_geometry(polygons_shp: Path, tmp_path: Path) -> None:
    staged = stage.run(source=polygons_shp, destination=tmp_path / "polygons.parquet")
    table = pq.read_table(staged.path)
    geometries = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    boxes = table.column("bbox").to_pylist()
    for geometry, box in zip(geometries, boxes, strict=True):
        assert [box["xmin"], box["ymin"], box["xmax"], box["ymax"]] == pytest.approx(
            list(geometry.bounds)
        )
    assert staged.bbox == pytest.approx([-5.0, -5.0, 31.0, 31.0])
    assert set(staged.geometry_types) <= {"Polygon", "MultiPolygon"}
    assert "MultiPolygon" in staged.geometry_types or "Polygon" in staged.geometry_types


def test_null_shapes_stay_null_and_have_no_bbox(tmp_path: Path) -> None:
    frame = canonical_polygons()
    frame.loc[1, "geometry"] = None
    shp = write_shapefile(frame, tmp_path / "holes", "holes")

    staged = stage.run(source=shp, destination=tmp_path / "holes.parquet")
    table = pq.read_table(staged.path)
    assert table.column("geometry").null_count == 1
    assert table.column("bbox").to_pylist()[1] is None
    assert staged.feature_count == 3


def test_row_groups_hold_about_64k_rows_and_progress_is_reported(tmp_path: Path) -> None:
    many = gpd.GeoDataFrame(
        {"n": range(70_000)},
        geometry=shapely.points(
            [(i % 360) - 180 + 0.5 for i in range(70_000)],
            [((i // 360) % 180) - 90 + 0.5 for i in range(70_000)],
        ),
        crs="EPSG:4326",
    )
    shp = write_shapefile(many, tmp_path / "many", "many")
    seen: list[int] = []

    staged = stage.run(
        source=shp,
        destination=tmp_path / "many.parquet",
        batch_size=10_000,
        on_progress=seen.append,
    )

    metadata = pq.read_metadata(staged.path)
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == 70_000
    assert max(sizes) <= 2 * stage.ROW_GROUP_ROWS
    assert sizes[0] >= stage.ROW_GROUP_ROWS
    assert seen == sorted(seen) and seen[-1] == 70_000 and len(seen) == 7
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_projected_source_is_reprojected_to_4326(tmp_path: Path) -> None:
    frame = canonical_points().to_crs("EPSG:3857")
    shp = write_shapefile(frame, tmp_path / "merc", "merc")

    staged = stage.run(source=shp, destination=tmp_path / "merc.parquet")
    back = gpd.read_parquet(staged.path)
    expected = canonical_points()
    assert back.crs is not None and back.crs.to_epsg() == 4326
    assert shapely.equals_exact(
        back.geometry.values[:5], expected.geometry.values[:5], tolerance=1e-6
    ).all()


def test_a_broken_shapefile_raises_a_geo_engine_error_and_leaves_no_file(
    points_shp: Path, tmp_path: Path
) -> None:
    points_shp.write_bytes(b"not a shapefile at all")
    destination = tmp_path / "broken.parquet"

    with pytest.raises(geo_engine.GeoEngineError) as caught:
        stage.run(source=points_shp, destination=destination)

    assert "points.shp" in str(caught.value)
    assert not destination.exists()
    assert not list(tmp_path.glob("broken.parquet*"))


def test_an_error_in_a_later_batch_names_its_record(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"label": [f"row-{i:05d}" for i in range(3000)]},
        geometry=shapely.points([float(i % 90) for i in range(3000)], [1.0] * 3000),
        crs="EPSG:4326",
    )
    shp = write_shapefile(frame, tmp_path / "late", "late")
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    at = data.index(b"row-02500")
    data[at : at + 4] = b"\xff\xfe\xfd\xfc"  # not UTF-8, as the .cpg promises
    dbf.write_bytes(bytes(data))
    destination = tmp_path / "late.parquet"

    with pytest.raises(geo_engine.EncodingError) as caught:
        stage.run(source=shp, destination=destination, batch_size=1024)

    assert "late.dbf" in str(caught.value)
    assert "2501" in str(caught.value)  # records are numbered from 1
    assert not destination.exists()
