"""Raster import end to end: a GeoTIFF through the real ETL service and worker into the
raster store as a COG, profiled and registered; broken uploads fail and leave nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rio_cogeo.cogeo import cog_validate

from tests.conftest import Stack
from tests.pipeline.conftest import Account, maps, one_line_error
from tests.pipeline.rasters import store_files, wait_task, write_geotiff

Conn = psycopg.Connection[tuple[Any, ...]]


def _upload(stack: Stack, account: Account, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(
            f"{stack.etl_url}/tasks/import/raster",
            headers=account.headers,
            data=fields,
            files={"file": (path.name, handle, "image/tiff")},
            timeout=30,
        )


def _imported(stack: Stack, account: Account, path: Path, **fields: str) -> dict[str, Any]:
    answer = _upload(stack, account, path, **fields)
    assert answer.status_code == 202, answer.text
    return wait_task(stack, account, answer.json()["task_id"])


def _gradient() -> np.ndarray[Any, Any]:
    rows, cols = np.mgrid[0:300, 0:700]
    array = (cols * 1.5 + rows * 0.25).astype(np.float32)
    array[:40, :50] = -9999.0  # a nodata corner
    return array


def _leftovers(stack: Stack, sid: str) -> list[Path]:
    return [p for p in store_files(stack) if sid in p.name]


def test_a_geotiff_lands_as_a_cog_with_its_profile_and_a_raster_layer(
    stack: Stack, account: Account, db: Conn, tmp_path: Path
) -> None:
    array = _gradient()
    tif = write_geotiff(tmp_path / "slope.tif", array, nodata=-9999.0)

    task = _imported(stack, account, tif, name="slope", description="a gradient")

    assert task["state"] == "succeeded", task["error"]
    assert task["kind"] == "import_raster"
    result = task["result"]
    source_id, sid = result["source_id"], result["sid"]
    cog = Path(stack.env["RASTER_DIR"]) / f"{sid}.tif"
    assert Path(result["raster_path"]) == cog
    assert store_files(stack).count(cog) == 1
    assert not [p for p in store_files(stack) if p.name.startswith(".")]
    valid, errors, _ = cog_validate(str(cog), quiet=True)
    assert valid, errors
    with rasterio.open(cog) as src:  # same CRS, same pixels, same nodata
        assert src.crs.to_epsg() == 32633
        assert (src.width, src.height) == (700, 300)
        assert src.nodata == -9999.0
        assert np.array_equal(src.read(1), array)
    row = db.execute(
        "SELECT source_type, name, description, attributes FROM core_source WHERE id = %s",
        (source_id,),
    ).fetchone()
    assert row is not None
    kind, name, description, attributes = row
    assert (kind, name, description) == ("raster", "slope", "a gradient")
    facts = attributes["raster"]
    assert facts["file"] == cog.name
    assert (facts["width"], facts["height"], facts["count"]) == (700, 300, 1)
    assert facts["dtype"] == "float32" and facts["nodata"] == -9999.0
    valid_pixels = array[array != -9999.0].astype(np.float64)
    band = facts["bands"][0]
    assert band["min"] == pytest.approx(valid_pixels.min())
    assert band["max"] == pytest.approx(valid_pixels.max())
    assert band["mean"] == pytest.approx(valid_pixels.mean(), rel=1e-9)
    with rasterio.open(tif) as src:
        expected = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assert attributes["bbox"] == pytest.approx(list(expected), abs=1e-9)
    assert attributes["crs"] == "EPSG:32633"
    assert attributes["import"]["task_id"] == task["id"]
    layer = db.execute(
        "SELECT id, layer_type, style FROM core_layer WHERE source_id = %s", (source_id,)
    ).fetchone()
    assert layer is not None and layer[1] == "raster"
    assert layer[2]["rescale"] == [band["min"], band["max"]]
    read = httpx.get(
        f"{stack.api_url}/api/v1/layers/{layer[0]}/", headers=account.headers, timeout=10
    )
    assert read.status_code == 200
    assert read.json()["tile_url"] == f"/api/v1/tiles/raster/{source_id}/{{z}}/{{x}}/{{y}}.png"
    assert not (Path(stack.env["UPLOAD_DIR"]) / task["id"]).exists()


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda path: path.write_bytes(b"II*\x00" + b"\x17" * 400), "unsupported_format",
         "not a raster GDAL can read"),
        (lambda path: write_geotiff(path, np.ones((20, 30), np.uint8), crs=None),
         "invalid_input", "no CRS"),
    ],
    ids=["broken", "no-crs"],
)  # fmt: skip
def test_a_bad_geotiff_fails_its_task_and_leaves_nothing(
    stack: Stack, account: Account, db: Conn, tmp_path: Path, make: Any, code: str, words: str
) -> None:
    tif = tmp_path / "bad.tif"
    make(tif)

    task = _imported(stack, account, tif, name="bad")

    assert (task["state"], task["step"]) == ("failed", "raster")
    assert task["error"]["code"] == code
    assert "bad.tif" in task["error"]["message"] and words in task["error"]["message"]
    assert str(Path(stack.env["UPLOAD_DIR"])) not in task["error"]["message"]
    task_row = db.execute(
        "SELECT params->>'sid' FROM etl_task WHERE id = %s", (task["id"],)
    ).fetchone()
    assert task_row is not None
    sid = task_row[0]
    assert db.execute("SELECT count(*) FROM core_source WHERE sid = %s", (sid,)).fetchone() == (0,)
    assert _leftovers(stack, sid) == []
    assert not (Path(stack.env["UPLOAD_DIR"]) / task["id"]).exists()


def test_a_raster_import_can_replace_a_raster_source(
    stack: Stack, account: Account, db: Conn, tmp_path: Path
) -> None:
    first = _imported(stack, account, write_geotiff(tmp_path / "a.tif", _gradient()), name="a")
    assert first["state"] == "succeeded", first["error"]
    source_id = first["result"]["source_id"]
    replacement = np.full((50, 80), 7, dtype=np.uint8)

    second = _imported(
        stack, account, write_geotiff(tmp_path / "b.tif", replacement), source_id=str(source_id)
    )

    assert second["state"] == "succeeded", second["error"]
    assert second["result"]["source_id"] == source_id and second["result"]["replaced"]
    row = db.execute("SELECT attributes FROM core_source WHERE id = %s", (source_id,)).fetchone()
    assert row is not None
    assert row[0]["raster"]["bands"][0]["max"] == 7.0
    assert row[0]["raster"]["file"] == f"{second['result']['sid']}.tif"
    assert not (Path(stack.env["RASTER_DIR"]) / f"{first['result']['sid']}.tif").exists()
    with rasterio.open(second["result"]["raster_path"]) as src:
        assert np.array_equal(src.read(1), replacement)


def test_raster_import_form_errors_are_drf_shaped(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    tif = write_geotiff(tmp_path / "ok.tif", np.zeros((4, 4), np.uint8))
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    vector = db.execute(
        "INSERT INTO core_source (sid, name, source_type, attributes, created_at, updated_at)"
        " VALUES (%s, 'v', 'shapefile', '{}', now(), now()) RETURNING id",
        (f"src_vec{tmp_path.name[-6:]}",),
    ).fetchone()
    assert vector is not None

    missing_name = _upload(stack, account, tif)
    wrong_kind = _upload(stack, account, png, name="p")
    not_raster = _upload(stack, account, tif, source_id=str(vector[0]))
    unknown = _upload(stack, account, tif, source_id="999999")
    anonymous = httpx.post(f"{stack.etl_url}/tasks/import/raster", timeout=10)

    assert (missing_name.status_code, missing_name.json()) == (
        400, {"name": ["This field is required."]}
    )  # fmt: skip
    assert wrong_kind.status_code == 400 and "picture.png" in wrong_kind.json()["file"][0]
    assert not_raster.status_code == 400 and "not a raster" in not_raster.json()["source_id"][0]
    assert unknown.status_code == 400
    assert unknown.json() == {"source_id": ['Invalid pk "999999" - object does not exist.']}
    assert anonymous.status_code == 401


def test_maps_import_of_a_tif_follows_the_raster_task(
    stack: Stack, account: Account, tmp_path: Path
) -> None:
    tif = write_geotiff(tmp_path / "cli.tif", np.arange(64, dtype=np.uint16).reshape(8, 8))
    env = {**stack.env, "MAPS_TOKEN": account.token, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}

    shown = maps("import", str(tif), "--wait", env=env)
    as_json = maps("import", str(tif), "--name", "again", "--wait", "--json", env=env)
    missing = maps("import", str(tmp_path / "nope.tif"), env=env)

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Created raster source ") and "8 x 8 cells" in shown.stdout
    task = json.loads(as_json.stdout)
    assert task["state"] == "succeeded" and task["kind"] == "import_raster"
    assert task["result"]["profile"]["bands"][0]["max"] == 63.0
    assert one_line_error(missing) == f"error: no such file: {tmp_path / 'nope.tif'}"
