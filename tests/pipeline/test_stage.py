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
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

import geo_engine
from pipeline.steps import duck, stage
from pipeline.steps.formats import InputFile
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
    assert set(result.timings) == {"scan", "write"}


def test_staged_file_reads_back_in_pyarrow_duckdb_and_geopandas(
    points_shp: Path, tmp_path: Path
) -> None:
    staged = stage.run(source=points_shp, destination=tmp_path / "points.parquet").path
    expected = pyogrio.read_dataframe(points_shp)

    # Rows are in Hilbert order now: compare them in the order of their ids.
    table = pq.read_table(staged).sort_by("id")
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

    frame = gpd.read_parquet(staged).sort_values("id")
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
    rows = pq.read_table(staged.path).to_pylist()
    assert [row["kind"] for row in rows if row["geometry"] is None] == ["multi"]
    assert all((row["bbox"] is None) == (row["geometry"] is None) for row in rows)
    assert rows[1]["geometry"] is None  # one row group: the file's order, unsorted
    assert staged.feature_count == 3

    many = stage.run(source=shp, destination=tmp_path / "many.parquet", row_group_rows=2)
    rows = pq.read_table(many.path).to_pylist()
    assert rows[-1]["geometry"] is None  # sorted by box: no box, last


def test_a_file_of_one_row_group_keeps_the_readers_order(tmp_path: Path) -> None:
    source = _shuffled_grid_csv(tmp_path / "grid.csv", 60)

    staged = stage.run(source=InputFile(source, "csv"), destination=tmp_path / "grid.parquet")
    sorted_ = stage.run(
        source=InputFile(source, "csv"), destination=tmp_path / "sorted.parquet",
        row_group_rows=1000,
    )  # fmt: skip

    written = pq.read_table(staged.path).column("n").to_pylist()
    assert written == pa_csv.read_csv(source).column("n").to_pylist()
    assert pq.read_metadata(staged.path).num_row_groups == 1
    assert pq.read_table(sorted_.path).column("n").to_pylist() != written
    assert sorted(pq.read_table(sorted_.path).column("n").to_pylist()) == sorted(written)


def _shuffled_grid_csv(path: Path, side: int) -> Path:
    """`side` x `side` points on a regular lon/lat grid, in random order, as a CSV."""
    numbers = np.random.default_rng(7).permutation(side * side)
    lon = -180 + 360 * (numbers % side + 0.5) / side
    lat = -90 + 180 * (numbers // side + 0.5) / side
    pa_csv.write_csv(pa.table({"n": numbers, "lon": lon, "lat": lat}), path)
    return path


def test_rows_are_in_hilbert_order_in_row_groups_of_64k_to_128k(tmp_path: Path) -> None:
    source = _shuffled_grid_csv(tmp_path / "grid.csv", 500)
    seen: list[tuple[str, int]] = []

    staged = stage.run(
        source=InputFile(source, "csv"),
        destination=tmp_path / "grid.parquet",
        batch_size=20_000,
        on_progress=lambda phase, rows, _total: seen.append((phase, rows)),
    )

    metadata = pq.read_metadata(staged.path)
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == staged.feature_count == 250_000
    assert len(sizes) >= 2
    assert all(64 * 1024 <= size <= 128 * 1024 for size in sizes[:-1])
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    # Spatially sorted: each row group covers a small part of the whole extent (in file
    # order, every row group would span all of it), so a bbox filter skips the others.
    columns = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    total = 360.0 * 180.0
    areas = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        low_x, low_y, high_x, high_y = (
            group.column(columns[f"bbox.{corner}"]).statistics
            for corner in ("xmin", "ymin", "xmax", "ymax")
        )
        area = (high_x.max - low_x.min) * (high_y.max - low_y.min)
        areas.append(area / total)
    assert max(areas) <= 0.6 and sum(areas) <= 1.5, areas
    with duck.connect() as con:
        inside = con.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE bbox.xmin >= 0 AND bbox.ymax <= 0",
            [str(staged.path)],
        ).fetchone()
    assert inside == (250_000 // 4,)
    # One read (the prescan keeps the batches of a file this small), reported as it goes.
    reads = [rows for phase, rows in seen if phase == "scan"]
    assert reads == sorted(reads) and len(reads) >= 10 and reads[-1] == 250_000
    assert not [phase for phase, _ in seen if phase == "read"]
    assert seen[-1] == ("write", 250_000)


def test_projected_source_is_reprojected_to_4326(tmp_path: Path) -> None:
    frame = canonical_points().to_crs("EPSG:3857")
    shp = write_shapefile(frame, tmp_path / "merc", "merc")

    staged = stage.run(source=shp, destination=tmp_path / "merc.parquet")
    back = gpd.read_parquet(staged.path).sort_values("id")
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


@pytest.mark.parametrize("keep_bytes", [0, 1 << 12], ids=["read-twice", "overflow"])
def test_file_read_again_when_the_prescan_cannot_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_bytes: int
) -> None:
    """Past PRESCAN_KEEP_BYTES the file is read a second time (a CSV with the first
    read's types): the same staged rows and the same report of rows left out."""
    rows = [f"{i},{'x' if i == 7 else i % 180},{i % 90},{i * 0.5},2026-01-{1 + i % 28:02d}"
            for i in range(1, 3001)]  # fmt: skip
    source = tmp_path / "twice.csv"
    source.write_text("id,lon,lat,v,day\n" + "\n".join(rows) + "\n")
    csv = InputFile(source, "csv", {"on_bad_rows": "skip"})

    def staged(name: str) -> tuple[pa.Table, stage.StageResult]:
        seen: list[str] = []
        result = stage.run(
            source=csv,
            destination=tmp_path / f"{name}.parquet",
            batch_size=500,
            on_progress=lambda phase, _rows, _total: seen.append(phase),
        )
        assert ("read" in seen) == (name == "again")
        return pq.read_table(result.path), result

    once, first = staged("once")
    monkeypatch.setattr(stage, "PRESCAN_KEEP_BYTES", keep_bytes)
    again, second = staged("again")
    assert again.equals(once)
    assert second.feature_count == first.feature_count == 2999
    assert second.skipped_rows == first.skipped_rows
    assert [line for line, _ in second.skipped_rows] == [8]
    assert again.schema.field("day").type == pa.date32()
