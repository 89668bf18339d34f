"""Rasters: a GeoTIFF checked with rasterio, rewritten as a Cloud-Optimized GeoTIFF, profiled.

A COG keeps the upload's CRS and pixels, with internal overviews and 512 px tiles
(rio-cogeo). It is not warped to EPSG:3857: warping resamples every pixel once more,
which would change the values that profiles, vectorize and the analyses read (and a
class raster's regions), while TiTiler reprojects each tile it serves on the fly.
Overviews average continuous data (floats) and keep the nearest value of integer data
(classes, counts), so that a zoomed-out tile shows values the raster has.

Every file is written aside (a dotted `.part` name in the raster store, which TiTiler
never opens) and renamed in place by `register` in the success path of the
transaction that creates its source; a failure leaves neither.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from core.errors import InvalidInput, UnsupportedFormat

RASTER_SUFFIXES = (".tif", ".tiff")
COG_BLOCK = 512
_GDAL_OPTIONS = {"GDAL_NUM_THREADS": "ALL_CPUS", "GDAL_TIFF_INTERNAL_MASK": "YES"}


class RasterTooLarge(InvalidInput):
    """The raster has more pixels than the configured limit."""

    code = "raster_too_large"


@dataclass(frozen=True)
class RasterInfo:
    """What a check of an uploaded raster found."""

    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    crs: str
    nodata: float | None


def store_name(sid: str) -> str:
    """The COG's file name in the raster store (named after its source's sid)."""
    return f"{sid}.tif"


def partial_path(final: Path) -> Path:
    """Where a COG is written before it is renamed to `final` (hidden from TiTiler)."""
    return final.with_name(f".{final.name}.part")


@contextmanager
def _quiet() -> Iterator[None]:
    # A plain TIFF without georeferencing warns on open: `check` says so as an error.
    # rasterio's warper and rio-cogeo still multiply Affines with `*` (affine 3.1 warns).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
        # No .aux.xml beside the files: statistics go into the profile, not the store.
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_PAM_ENABLED="NO"):
            yield


def check(path: Path, *, name: str, max_pixels: int) -> RasterInfo:
    """Open `path` with rasterio and refuse what cannot become a COG (error names `name`)."""
    with _quiet():
        try:
            src = rasterio.open(path)
        except RasterioIOError as exc:
            # GDAL's message names the server's upload folder: the user knows the name only.
            reason = str(exc).replace(f"{path.parent}{os.sep}", "")
            raise UnsupportedFormat(f"{name}: not a raster GDAL can read ({reason})") from None
        with src:
            if src.driver != "GTiff":
                raise UnsupportedFormat(f"{name}: a {src.driver} raster, not a GeoTIFF")
            if src.crs is None:
                raise InvalidInput(f"{name}: the raster has no CRS (no georeferencing)")
            if src.transform == Affine.identity() and not src.gcps[0]:
                raise InvalidInput(f"{name}: the raster has no geotransform (no georeferencing)")
            pixels = src.width * src.height * src.count
            if pixels > max_pixels:
                raise RasterTooLarge(
                    f"{name}: {src.width} x {src.height} x {src.count} bands is "
                    f"{pixels:,} pixels, more than the limit of {max_pixels:,}"
                )
            return RasterInfo(
                width=src.width,
                height=src.height,
                count=src.count,
                dtypes=tuple(src.dtypes),
                crs=src.crs.to_string(),
                nodata=src.nodata,
            )


def _profile_for(dtypes: tuple[str, ...]) -> dict[str, Any]:
    profile = dict(cog_profiles.get("deflate"))  # type: ignore[no-untyped-call]
    profile.update(blockxsize=COG_BLOCK, blockysize=COG_BLOCK, BIGTIFF="IF_SAFER")
    # Horizontal differencing suits integers; floating-point prediction, floats.
    profile["predictor"] = 3 if all(np.dtype(d).kind == "f" for d in dtypes) else 2
    return profile


def _resampling(dtypes: tuple[str, ...]) -> str:
    return "average" if all(np.dtype(d).kind == "f" for d in dtypes) else "nearest"


def write_cog(source: Path, destination: Path) -> Path:
    """Rewrite the GeoTIFF `source` as a COG at `destination` (its CRS and pixels kept)."""
    with _quiet(), rasterio.open(source) as src:
        dtypes = tuple(src.dtypes)
        cog_translate(
            src,
            destination,
            _profile_for(dtypes),
            overview_resampling=_resampling(dtypes),  # type: ignore[arg-type]
            config=_GDAL_OPTIONS,
            quiet=True,
        )
    return destination


def write_array_cog(
    array: np.ndarray[Any, Any], *, bbox: tuple[float, float, float, float], crs: str,
    destination: Path, nodata: float | None = None,
) -> Path:  # fmt: skip
    """Write a (height, width) grid (row 0 north) covering `bbox` in `crs` as a COG."""
    height, width = array.shape
    west, south, east, north = bbox
    # Built directly: rasterio's from_bounds multiplies Affines with `*`, which warns.
    transform = Affine((east - west) / width, 0, west, 0, -(north - south) / height, north)
    dtypes = (str(array.dtype),)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": array.dtype,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
    }
    with _quiet(), MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(array, 1)
        with memory.open() as dataset:
            cog_translate(
                dataset,
                destination,
                _profile_for(dtypes),
                overview_resampling=_resampling(dtypes),  # type: ignore[arg-type]
                config=_GDAL_OPTIONS,
                in_memory=True,
                quiet=True,
            )
    return destination


def _number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def profile(path: Path, *, file_name: str) -> dict[str, Any]:
    """The raster's profile for `core_source.attributes`: size, CRS, bands with their
    dtype, nodata and min/max/mean/std (GDAL's exact statistics), bbox in EPSG:4326.

    `file_name`: the COG's name in the raster store (`path` may be its partial).
    """
    with _quiet(), rasterio.open(path) as src:
        bands = []
        for index in src.indexes:
            try:
                stats = src.stats(indexes=index, approx=False)[0]
                values = {"min": stats.min, "max": stats.max, "mean": stats.mean, "std": stats.std}
            except RasterioError:  # every pixel is nodata: GDAL has nothing to count
                values = {"min": None, "max": None, "mean": None, "std": None}
            bands.append(
                {
                    "band": index,
                    "dtype": src.dtypes[index - 1],
                    "nodata": _number(src.nodatavals[index - 1]),
                    **{key: _number(value) for key, value in values.items()},
                }
            )
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds,
                                                    densify_pts=21)  # fmt: skip
        epsg = src.crs.to_epsg()
        return {
            "bbox": [west, south, east, north],
            "crs": f"EPSG:{epsg}" if epsg else src.crs.to_wkt(),
            "raster": {
                "file": file_name,
                "driver": src.driver,
                "width": src.width,
                "height": src.height,
                "count": src.count,
                "dtype": src.dtypes[0],
                "nodata": _number(src.nodata),
                "transform": list(src.transform)[:6],
                "resolution": list(src.res),
                "native_bbox": list(src.bounds),
                "overviews": src.overviews(1),
                "blocksize": list(src.block_shapes[0]),
                "bands": bands,
            },
        }
