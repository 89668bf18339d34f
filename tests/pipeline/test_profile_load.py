"""The profile and load steps on staged files: DuckDB's profile, binary COPY into PostGIS,
one transaction per import, and no duplicates when a load runs again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from sqlalchemy import Engine

from pipeline.steps import load, profile, stage
from pipeline.tasks import new_sid
from tests.pipeline.conftest import (
    assert_same_features,
    canonical_points,
    features_of,
    write_shapefile,
)

Conn = psycopg.Connection[tuple[Any, ...]]


def _stage(shp: Path, tmp_path: Path) -> Path:
    return stage.run(source=shp, destination=tmp_path / "staged" / f"{shp.stem}.parquet").path


def _load(engine: Engine, staged: Path, **kwargs: Any) -> load.LoadResult:
    options: dict[str, Any] = {
        "sid": new_sid(),
        "name": staged.stem,
        "source_type": "shapefile",
        "attributes": profile.run(path=staged).attributes,
    }
    options.update(kwargs)
    return load.run(engine=engine, path=staged, **options)


def _features(db: Conn, source_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT ST_AsBinary(geom), ST_SRID(geom), metadata, geometry_type FROM core_geometry"
        " WHERE source_id = %s ORDER BY gid",
        (source_id,),
    ).fetchall()


def _count_sources(db: Conn, sid: str) -> int:
    row = db.execute("SELECT count(*) FROM core_source WHERE sid = %s", (sid,)).fetchone()
    assert row is not None
    return int(row[0])


def test_profile_counts_types_nulls_and_extent(points_shp: Path, tmp_path: Path) -> None:
    result = profile.run(path=_stage(points_shp, tmp_path))

    attributes = result.attributes
    assert attributes["feature_count"] == 8
    columns = {column["name"]: column for column in attributes["columns"]}
    assert list(columns) == ["id", "name", "pop", "founded", "capital"]
    exact = {key: value for key, value in columns["id"].items() if key != "approx_distinct"}
    assert exact == {"name": "id", "type": "int64", "null_count": 0, "min": 1, "max": 8}
    # HyperLogLog: close to, not always exactly, the true count.
    assert 7 <= columns["id"]["approx_distinct"] <= 9
    assert columns["pop"]["type"] == "float64"
    assert columns["pop"]["null_count"] == 1
    assert (columns["pop"]["min"], columns["pop"]["max"]) == (-3.5, 1e9)
    assert columns["name"]["type"] == "utf8"
    assert columns["name"]["null_count"] == 2  # None, and "" (DBF blanks)
    assert len(columns["name"]["top_values"]) == profile.TOP_VALUES
    assert columns["founded"]["type"] == "date32"
    assert (columns["founded"]["min"], columns["founded"]["max"]) == ("1048-06-30", "2000-02-29")
    assert columns["capital"]["type"] == "bool"
    assert (columns["capital"]["min"], columns["capital"]["max"]) == (False, True)
    assert attributes["geometry"]["types"] == ["Point"]
    assert attributes["geometry"]["type_counts"] == {"Point": 8}
    assert attributes["geometry"]["null_count"] == 0
    assert attributes["bbox"] == pytest.approx([-179.5, -89.0, 135.5, 64.18])
    assert attributes["crs"]["id"] == {"authority": "EPSG", "code": 4326}
    assert result.warnings == []


def test_profile_warns_about_invalid_and_missing_geometries(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    frame = gpd.GeoDataFrame(
        {"n": [1, 2, 3]},
        geometry=[bowtie, None, shapely.box(0, 0, 1, 1)],
        crs="EPSG:4326",
    )
    shp = write_shapefile(frame, tmp_path / "odd", "odd")

    result = profile.run(path=_stage(shp, tmp_path))

    geometry = result.attributes["geometry"]
    assert geometry["null_count"] == 1
    assert geometry["invalid_count"] == 1
    assert any("no geometry" in warning for warning in result.warnings)
    assert any("invalid geometry" in warning for warning in result.warnings)


def test_load_copies_every_feature_as_pyogrio_reads_it(
    engine: Engine, db: Conn, points_shp: Path, tmp_path: Path
) -> None:
    staged = _stage(points_shp, tmp_path)
    seen: list[tuple[str, int, int, int, int]] = []

    result = _load(engine, staged, on_progress=lambda *p: seen.append(p))

    assert not result.already_loaded
    assert result.feature_count == 8
    assert_same_features(features_of(db, result.source_id), pyogrio.read_dataframe(points_shp))
    srids = db.execute(
        "SELECT DISTINCT ST_SRID(geom) FROM core_geometry WHERE source_id = %s", (result.source_id,)
    ).fetchall()
    assert srids == [(4326,)]
    source = db.execute(
        "SELECT sid, name, source_type, attributes FROM core_source WHERE id = %s",
        (result.source_id,),
    ).fetchone()
    assert source is not None
    assert source[:3] == (result.sid, "points", "shapefile")
    assert source[3]["feature_count"] == 8
    assert seen[-1][0] == "done"
    assert seen[-1][1] == seen[-1][2] == 8
    assert seen[-1][3] == seen[-1][4] == staged.stat().st_size


def test_loading_the_same_sid_again_adds_nothing(
    engine: Engine, db: Conn, points_shp: Path, tmp_path: Path
) -> None:
    staged = _stage(points_shp, tmp_path)
    sid = new_sid()
    first = _load(engine, staged, sid=sid)

    again = _load(engine, staged, sid=sid)

    assert again.already_loaded
    assert (again.source_id, again.feature_count) == (first.source_id, 8)
    assert _count_sources(db, sid) == 1
    assert len(_features(db, first.source_id)) == 8


def test_a_failure_between_batches_leaves_nothing_behind(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    frame = canonical_points()
    many = gpd.GeoDataFrame(
        {"n": range(5000)},
        geometry=shapely.points([(i % 100) / 10 for i in range(5000)], [0.5] * 5000),
        crs=frame.crs,
    )
    staged = _stage(write_shapefile(many, tmp_path / "many", "many"), tmp_path)
    sid = new_sid()
    calls: list[int] = []

    def explode(phase: str, rows_done: int, *_: int) -> None:
        if phase != "copy":
            return
        calls.append(rows_done)
        if len(calls) == 3:
            raise RuntimeError("the worker was interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        _load(engine, staged, sid=sid, batch_size=1000, on_progress=explode)

    assert calls == [1000, 2000, 3000]
    assert _count_sources(db, sid) == 0
    orphans = db.execute(
        "SELECT count(*) FROM core_geometry g LEFT JOIN core_source s ON s.id = g.source_id"
        " WHERE s.id IS NULL"
    ).fetchone()
    assert orphans == (0,)
    # The same sid then loads in full: the failed attempt left no trace to collide with.
    result = _load(engine, staged, sid=sid)
    assert not result.already_loaded
    assert len(_features(db, result.source_id)) == 5000


def test_a_row_postgis_refuses_fails_the_whole_load(
    engine: Engine, db: Conn, points_shp: Path, tmp_path: Path
) -> None:
    staged = _stage(points_shp, tmp_path)
    table = pq.read_table(staged)
    # A polygon whose ring is not closed: valid WKB, which PostGIS refuses to build.
    unclosed = shapely.to_wkb(shapely.box(0, 0, 1, 1))
    unclosed = unclosed[:-16] + shapely.to_wkb(shapely.Point(5, 5))[-16:]
    geometries = table.column("geometry").to_pylist()
    geometries[5] = unclosed
    broken = table.set_column(
        table.schema.get_field_index("geometry"), "geometry", pa.array(geometries, pa.binary())
    )
    bad = tmp_path / "bad.parquet"
    writer = pq.ParquetWriter(bad, broken.schema, store_schema=False)
    writer.write_table(broken)
    metadata = pq.read_metadata(staged).metadata
    assert metadata is not None
    writer.add_key_value_metadata({b"geo".decode(): metadata[b"geo"].decode()})
    writer.close()
    sid = new_sid()

    with pytest.raises(load.LoadRefused) as caught:
        _load(engine, bad, sid=sid, attributes={})

    assert "bad.parquet" in str(caught.value)
    assert "line 6" in str(caught.value)
    assert _count_sources(db, sid) == 0


def test_an_empty_shapefile_loads_as_an_empty_source(
    engine: Engine, db: Conn, tmp_path: Path
) -> None:
    empty = canonical_points().iloc[:0]
    shp = write_shapefile(empty, tmp_path / "empty", "empty")
    staged = _stage(shp, tmp_path)

    result = profile.run(path=staged)
    assert result.attributes["feature_count"] == 0
    assert result.attributes["bbox"] is None
    assert result.warnings == ["the file holds no features"]
    loaded = _load(engine, staged)
    assert loaded.feature_count == 0
    assert _features(db, loaded.source_id) == []
