"""Raster tiles: the REST API's `/api/v1/tiles/raster/...` over the real TiTiler process,
behind the bearer token, and TiTiler refusing anything outside the raster store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from rio_tiler.colormap import cmap

from tests.conftest import Stack
from tests.pipeline.conftest import Account, make_account
from tests.pipeline.rasters import decode_png, wait_task, write_geotiff

# Web Mercator tile 1/1/0 is the box lon 0..180, lat 0..85.0511 (its north edge).
TILE = (1, 1, 0)
NORTH = 85.0511287798066


@pytest.fixture(scope="module")
def lon_raster(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A raster over exactly tile 1/1/0 whose value is each cell's longitude (0..180)."""
    account = make_account(stack.env["DATABASE_URL"], stack.env["REDIS_URL"])
    width, height = 720, 340
    lon = (np.arange(width) + 0.5) * (180.0 / width)
    array = np.repeat(lon[None, :], height, axis=0).astype(np.float32)
    folder = tmp_path_factory.mktemp("tiles")
    tif = write_geotiff(folder / "lon.tif", array, crs="EPSG:4326", origin=(0.0, NORTH),
                        pixel=180.0 / width)  # fmt: skip
    with tif.open("rb") as handle:
        answer = httpx.post(
            f"{stack.etl_url}/tasks/import/raster",
            headers=account.headers,
            data={"name": "longitudes"},
            files={"file": ("lon.tif", handle, "image/tiff")},
            timeout=30,
        )
    assert answer.status_code == 202, answer.text
    task = wait_task(stack, account, answer.json()["task_id"])
    assert task["state"] == "succeeded", task["error"]
    return {"account": account, "source_id": task["result"]["source_id"],
            "sid": task["result"]["sid"]}  # fmt: skip


def _tile(stack: Stack, account: Account | None, source: Any, **params: str) -> httpx.Response:
    z, x, y = TILE
    headers = account.headers if account is not None else {}
    return httpx.get(
        f"{stack.api_url}/api/v1/tiles/raster/{source}/{z}/{x}/{y}.png",
        headers=headers,
        params=params,
        timeout=30,
    )


def test_a_tile_decodes_to_pixels_that_follow_the_raster(
    stack: Stack, lon_raster: dict[str, Any]
) -> None:
    answer = _tile(stack, lon_raster["account"], lon_raster["source_id"], rescale="0,180")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    bands = decode_png(answer.content)
    assert bands.shape[1:] == (256, 256)
    gray, alpha = bands[0].astype(int), bands[-1]
    row = gray[10]  # near the north edge, inside the raster's rows
    assert alpha[10].min() == 255
    # Mercator x is linear in longitude: column j shows lon (j + 0.5) * 180 / 256.
    expected = (np.arange(256) + 0.5) * (180 / 256) / 180 * 255
    assert np.abs(row - expected).max() <= 2
    assert np.all(np.diff(row) >= 0) and row[0] <= 2 and row[-1] >= 253


def test_a_colormap_is_passed_on(stack: Stack, lon_raster: dict[str, Any]) -> None:
    answer = _tile(
        stack, lon_raster["account"], lon_raster["sid"], rescale="0,180", colormap_name="viridis"
    )

    assert answer.status_code == 200, answer.text
    rgba = decode_png(answer.content)
    assert rgba.shape[0] == 4
    viridis = np.array([cmap.get("viridis")[i] for i in range(256)])[:, :3]
    for column in (0, 64, 128, 200, 255):
        pixel = rgba[:3, 10, column].astype(int)
        index = round((column + 0.5) * (180 / 256) / 180 * 255)
        nearest = np.abs(viridis[max(0, index - 2) : index + 3] - pixel).sum(axis=1).min()
        assert nearest == 0, (column, pixel)


def test_without_rescale_a_band_is_stretched_over_its_profiled_range(
    stack: Stack, lon_raster: dict[str, Any]
) -> None:
    plain = decode_png(_tile(stack, lon_raster["account"], lon_raster["source_id"]).content)
    given = decode_png(
        _tile(stack, lon_raster["account"], lon_raster["source_id"], rescale="0,180").content
    )
    # The profiled range is 0.125..179.875: nearly the same stretch as 0..180.
    assert np.abs(plain[0].astype(int) - given[0].astype(int)).max() <= 2
    assert plain[0, 10].max() >= 253 and plain[0, 10].min() <= 2


def test_tiles_need_a_token_and_a_raster_source(
    stack: Stack, lon_raster: dict[str, Any], db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    account = lon_raster["account"]
    row = db.execute(
        "INSERT INTO core_source (sid, name, source_type, attributes, created_at, updated_at)"
        " VALUES ('src_notaraster0', 'v', 'shapefile', '{}', now(), now())"
        " ON CONFLICT (sid) DO UPDATE SET name = 'v' RETURNING id"
    ).fetchone()
    assert row is not None
    vector = row[0]

    anonymous = _tile(stack, None, lon_raster["source_id"])
    unknown = _tile(stack, account, 999_999)
    not_raster = _tile(stack, account, vector)
    bad_colormap = _tile(stack, account, lon_raster["source_id"], colormap_name="no-such-map")
    outside = httpx.get(
        f"{stack.api_url}/api/v1/tiles/raster/{lon_raster['source_id']}/3/0/0.png",
        headers=account.headers,
        timeout=30,
    )

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not found."})
    assert not_raster.status_code == 404
    assert bad_colormap.status_code == 400
    assert outside.status_code == 404  # tile 3/0/0 lies west of the raster


def test_titiler_opens_nothing_outside_the_raster_store(
    stack: Stack, lon_raster: dict[str, Any], tmp_path: Path
) -> None:
    outside = write_geotiff(tmp_path / "outside.tif", np.zeros((8, 8), np.uint8))
    store = Path(stack.env["RASTER_DIR"])
    link = store / "sneaky.tif"
    link.symlink_to(outside)
    titiler = stack.env["TITILER_URL"]
    try:
        inside = httpx.get(
            f"{titiler}/cog/info", params={"url": f"{lon_raster['sid']}.tif"}, timeout=30
        )
        refused = {
            url: httpx.get(f"{titiler}/cog/info", params={"url": url}, timeout=30).status_code
            for url in (str(outside), f"../{tmp_path.name}/outside.tif", "sneaky.tif",
                        "/etc/passwd", "https://example.com/a.tif", "/vsicurl/http://x/a.tif",
                        f"file://{outside}")
        }  # fmt: skip
    finally:
        link.unlink()

    assert inside.status_code == 200, inside.text
    assert inside.json()["width"] == 720
    assert refused == dict.fromkeys(refused, 403)
