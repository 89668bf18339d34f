"""Analyses end to end through the real ETL service and worker, on geo_engine's kernels:
interpolate to a raster (and its PNG tile), grid statistics as a raster and as polygon
cells, vectorize of a raster source with class breaks.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import rasterio

from tests.conftest import Stack
from tests.pipeline.conftest import Account, make_account
from tests.pipeline.rasters import decode_png, wait_task, write_geotiff

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def plane(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """400 points over lon 0..180, lat 0..80 whose `z` is the linear field 2*lon + 1."""
    account = make_account(stack.env["DATABASE_URL"], stack.env["REDIS_URL"])
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(0, 180, 400), rng.uniform(0, 80, 400)
    path = tmp_path_factory.mktemp("plane") / "plane.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["lon", "lat", "z"])
        writer.writerows(zip(lon, lat, 2 * lon + 1, strict=True))
    with path.open("rb") as handle:
        answer = httpx.post(
            f"{stack.etl_url}/tasks/import/csv",
            headers=account.headers,
            data={"name": "plane", "x": "lon", "y": "lat"},
            files={"file": ("plane.csv", handle, "text/csv")},
            timeout=30,
        )
    assert answer.status_code == 202, answer.text
    task = wait_task(stack, account, answer.json()["task_id"])
    assert task["state"] == "succeeded", task["error"]
    return {"account": account, "source_id": task["result"]["source_id"], "lon": lon, "lat": lat}


def _run(stack: Stack, account: Account, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.etl_url}/tasks/analysis/{kind}", headers=account.headers, json=body, timeout=30
    )
    assert answer.status_code == 202, answer.text
    return wait_task(stack, account, answer.json()["task_id"], timeout=240)


def test_interpolate_writes_a_cog_whose_tile_follows_the_field(
    stack: Stack, plane: dict[str, Any], db: Conn
) -> None:
    task = _run(
        stack,
        plane["account"],
        "interpolate",
        {
            "source": plane["source_id"],
            "field": "z",
            "bbox": [0, 0, 180, 80],
            "width": 180,
            "height": 80,
        },
    )

    assert task["state"] == "succeeded", task["error"]
    with rasterio.open(task["result"]["raster_path"]) as src:
        grid = src.read(1)
    centres = np.arange(180) + 0.5
    # A thin-plate spline reproduces a linear field exactly.
    assert np.allclose(grid, 2 * centres[None, :] + 1, atol=1e-6)
    tile = httpx.get(
        f"{stack.api_url}/api/v1/tiles/raster/{task['result']['source_id']}/1/1/0.png",
        headers=plane["account"].headers,
        params={"rescale": "1,361"},
        timeout=30,
    )
    assert tile.status_code == 200, tile.text
    row = decode_png(tile.content)[0, 200].astype(int)  # a row inside lat 0..80
    assert np.all(np.diff(row) >= 0) and row[-1] - row[0] > 200
    kind = db.execute(
        "SELECT source_type FROM core_source WHERE id = %s", (task["result"]["source_id"],)
    ).fetchone()
    assert kind == ("raster",)


def test_grid_counts_as_a_raster_and_as_polygon_cells(
    stack: Stack, plane: dict[str, Any], db: Conn
) -> None:
    body = {"source": plane["source_id"], "method": "count", "bbox": [0, 0, 180, 80],
            "width": 18, "height": 8}  # fmt: skip
    expected, _, _ = np.histogram2d(
        plane["lat"], plane["lon"], bins=[8, 18], range=[[0, 80], [0, 180]]
    )

    as_raster = _run(stack, plane["account"], "grid", body)
    as_cells = _run(stack, plane["account"], "grid", body | {"output": "polygons"})

    assert as_raster["state"] == "succeeded", as_raster["error"]
    with rasterio.open(as_raster["result"]["raster_path"]) as src:
        assert np.array_equal(src.read(1), expected[::-1])  # row 0 north
    assert as_cells["state"] == "succeeded", as_cells["error"]
    assert as_cells["result"]["feature_count"] == int((expected > 0).sum())
    total = db.execute(
        "SELECT sum((metadata->>'value')::float) FROM core_geometry WHERE source_id = %s",
        (as_cells["result"]["source_id"],),
    ).fetchone()
    assert total == (400.0,)


def test_vectorize_a_raster_source_with_class_breaks(
    stack: Stack, plane: dict[str, Any], db: Conn, tmp_path: Path
) -> None:
    account = plane["account"]
    array = np.zeros((20, 30), np.float32)
    array[:, 10:20], array[:, 20:] = 5.0, 50.0
    tif = write_geotiff(
        tmp_path / "classes.tif", array, crs="EPSG:4326", origin=(0.0, 20.0), pixel=1.0
    )
    with tif.open("rb") as handle:
        imported = httpx.post(
            f"{stack.etl_url}/tasks/import/raster",
            headers=account.headers,
            data={"name": "classes"},
            files={"file": ("classes.tif", handle, "image/tiff")},
            timeout=30,
        )
    raster = wait_task(stack, account, imported.json()["task_id"])
    assert raster["state"] == "succeeded", raster["error"]

    task = _run(
        stack, account, "vectorize", {"source": raster["result"]["source_id"], "breaks": [1, 10]}
    )

    assert task["state"] == "succeeded", task["error"]
    rows = db.execute(
        "SELECT (metadata->>'class')::int, ST_Area(geom) FROM core_geometry"
        " WHERE source_id = %s ORDER BY 1",
        (task["result"]["source_id"],),
    ).fetchall()
    assert rows == [(0, 200.0), (1, 200.0), (2, 200.0)]
