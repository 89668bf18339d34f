"""Helpers of the raster and analysis tests: GeoTIFFs made in code, tasks followed to
their end over HTTP, PNG tiles decoded (with rasterio's PNG driver; no Pillow here)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import Affine

from tests.conftest import Stack
from tests.pipeline.conftest import Account


def write_geotiff(
    path: Path,
    array: np.ndarray[Any, Any],
    *,
    crs: str | None = "EPSG:32633",
    origin: tuple[float, float] = (500_000.0, 5_000_000.0),
    pixel: float = 30.0,
    nodata: float | None = None,
) -> Path:
    """A plain (not cloud-optimized) one-band GeoTIFF of `array`, row 0 at the north."""
    height, width = array.shape
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": width, "height": height, "count": 1,
        "dtype": array.dtype, "nodata": nodata,
    }  # fmt: skip
    if crs is not None:
        profile |= {"crs": crs, "transform": Affine(pixel, 0, origin[0], 0, -pixel, origin[1])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(array, 1)
    return path


def wait_task(stack: Stack, account: Account, task_id: str, timeout: float = 120) -> dict[str, Any]:
    """The task's document once it ended (succeeded or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document: dict[str, Any] = httpx.get(
            f"{stack.etl_url}/tasks/{task_id}", headers=account.headers, timeout=10
        ).json()
        if document["state"] in ("succeeded", "failed"):
            return document
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not end in {timeout} s")


def decode_png(content: bytes) -> np.ndarray[Any, Any]:
    """A PNG's bands as an array (bands, rows, columns)."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(content) as memory, memory.open() as dataset:
            return dataset.read()


def store_files(stack: Stack) -> list[Path]:
    """Everything in the stack's raster store (hidden partials included)."""
    return sorted(Path(stack.env["RASTER_DIR"]).iterdir())
