"""The analyses' columnar pieces without the kernels: points read from a staged file with
geoarrow-pyarrow, polygon cells built as WKB in numpy, an Arrow table staged as the
imports stage (then profiled and loaded by the import's own steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from sqlalchemy import Engine

from pipeline.analysis import points
from pipeline.analysis.run import cell_polygons
from pipeline.steps import load, profile, stage, stage_table


def test_points_come_from_the_staged_file_as_coordinate_arrays(
    points_shp: Path, tmp_path: Path
) -> None:
    staged = stage.run(source=points_shp, destination=tmp_path / "p.parquet").path
    frame = pyogrio.read_dataframe(points_shp)
    usable = frame[frame["pop"].notna()]

    found = points.read(staged, "pop")

    assert found.dropped == len(frame) - len(usable)
    got = sorted(zip(found.x, found.y, found.values, strict=True))
    want = sorted(zip(usable.geometry.x, usable.geometry.y, usable["pop"], strict=True))
    assert np.allclose(np.array(got), np.array(want), rtol=0, atol=1e-9)
    counted = points.read(staged, None)
    assert len(counted.x) == len(frame) and set(counted.values) == {1.0}


def test_cell_polygons_are_the_grid_cells() -> None:
    bbox, width, height = (10.0, 40.0, 14.0, 43.0), 4, 3
    cells = np.array([0, 3, 5, 11])

    wkb = cell_polygons(bbox, width, height, cells)

    shapes = shapely.from_wkb(np.asarray(wkb.to_pylist(), dtype=object))
    expected = [shapely.box(10, 42, 11, 43), shapely.box(13, 42, 14, 43),
                shapely.box(11, 41, 12, 42), shapely.box(13, 40, 14, 41)]  # fmt: skip
    assert all(shapely.is_valid(shapes))
    assert all(s.equals(e) for s, e in zip(shapes, expected, strict=True))
    assert all(shapely.is_ccw(s.exterior) for s in shapes)


def test_an_arrow_table_is_staged_profiled_and_loaded_like_an_import(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    cells = np.arange(12)
    table = pa.table(
        {
            "value": pa.array(np.linspace(0.5, 6.0, 12)),
            "row": pa.array(cells // 4),
            "geometry": cell_polygons((0.0, 0.0, 4.0, 3.0), 4, 3, cells),
        }
    )

    staged = stage_table.run(table=table, destination=tmp_path / "cells.parquet")

    assert staged.feature_count == 12 and staged.geometry_types == ["Polygon"]
    assert staged.bbox == [0.0, 0.0, 4.0, 3.0]
    geo = json.loads(pq.read_metadata(staged.path).metadata[b"geo"])
    assert (geo["version"], geo["primary_column"]) == ("1.1.0", "geometry")
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Polygon"]
    assert geo["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    profiled = profile.run(path=staged.path)
    assert profiled.attributes["feature_count"] == 12
    types = {c["name"]: c["type"] for c in profiled.attributes["columns"]}
    assert types == {"value": "float64", "row": "int64"}
    sid = f"src_cells{tmp_path.name[-6:]}"
    loaded = load.run(engine=engine, path=staged.path, sid=sid, name="cells",
                      source_type="analysis", attributes=profiled.attributes)  # fmt: skip
    with psycopg.connect(database_url) as conn:
        rows: list[Any] = conn.execute(
            "SELECT sum(ST_Area(geom)), count(*), min(geometry_type) FROM core_geometry"
            " WHERE source_id = %s",
            (loaded.source_id,),
        ).fetchall()
    assert rows == [(pytest.approx(12.0), 12, "Polygon")]
