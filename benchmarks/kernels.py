"""Kernels: geo_engine's analysis functions against SciPy, rasterio and NumPy on the same data.

- interpolate_spline vs `scipy.interpolate.RBFInterpolator(kernel="thin_plate_spline")`:
  exact against exact at 2,000 points; at 10,000 and 100,000 points our local method
  (64 nearest neighbours per cell) against RBFInterpolator(neighbors=64), the same
  definition.
- vectorize_raster vs `list(rasterio.features.shapes(...))` on a 4,000 x 4,000 raster.
- grid_inference(method="stats") vs `numpy.histogram2d` (count, sum) plus
  `np.minimum.at` / `np.maximum.at` through the same bins (min, max).
- grid_inference IDW with a radius vs a scipy.spatial.cKDTree IDW
  (`sparse_distance_matrix` between cells and points, weights summed with bincount);
  without a radius vs a brute-force NumPy IDW in chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio.features
from affine import Affine
from scipy.interpolate import RBFInterpolator
from scipy.ndimage import zoom
from scipy.spatial import cKDTree

import geo_engine
from benchmarks.common import Section, count, measure, ratio, seconds, verdict

SEED = 20261202
BBOX = (0.0, 0.0, 10_000.0, 8_000.0)
Floats = npt.NDArray[np.float64]


def points(n: int) -> tuple[Floats, Floats, Floats]:
    """Random points over BBOX with a smooth field plus noise."""
    rng = np.random.default_rng(SEED + n)
    x = rng.uniform(BBOX[0], BBOX[2], n)
    y = rng.uniform(BBOX[1], BBOX[3], n)
    v = 100 * np.sin(x / 1500) * np.cos(y / 1100) + rng.normal(0, 3, n)
    return x, y, v


def centres(width: int, height: int) -> Floats:
    """Cell centres, row 0 north, as (height * width, 2)."""
    xs = BBOX[0] + (np.arange(width) + 0.5) * (BBOX[2] - BBOX[0]) / width
    ys = BBOX[3] - (np.arange(height) + 0.5) * (BBOX[3] - BBOX[1]) / height
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def rbf(x: Floats, y: Floats, v: Floats, width: int, height: int, neighbors: int | None) -> Floats:
    """SciPy's thin-plate spline on the grid's cell centres."""
    interpolator = RBFInterpolator(
        np.column_stack([x, y]), v, kernel="thin_plate_spline", neighbors=neighbors
    )
    return np.asarray(interpolator(centres(width, height)).reshape(height, width))


def numpy_stats(x: Floats, y: Floats, v: Floats, width: int, height: int) -> dict[str, Floats]:
    """Count and sum from histogram2d; min and max through the same bins."""
    xe = np.linspace(BBOX[0], BBOX[2], width + 1)
    ye = np.linspace(BBOX[1], BBOX[3], height + 1)
    n, _, _ = np.histogram2d(x, y, bins=[xe, ye])
    s, _, _ = np.histogram2d(x, y, bins=[xe, ye], weights=v)
    col = np.clip(np.searchsorted(xe, x, side="right") - 1, 0, width - 1)
    row = np.clip(np.searchsorted(ye, y, side="right") - 1, 0, height - 1)
    flat = row * width + col
    low = np.full(width * height, np.inf)
    high = np.full(width * height, -np.inf)
    np.minimum.at(low, flat, v)
    np.maximum.at(high, flat, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
    return {"count": n, "sum": s, "mean": mean, "min": low, "max": high}


def kdtree_idw(x: Floats, y: Floats, v: Floats, width: int, height: int, radius: float) -> Floats:
    """IDW (power 2) from the points within `radius` of each cell centre, with cKDTree."""
    cells = centres(width, height)
    pairs = cKDTree(cells).sparse_distance_matrix(
        cKDTree(np.column_stack([x, y])), radius, output_type="coo_matrix"
    )
    w = 1.0 / pairs.data**2
    wsum = np.bincount(pairs.row, weights=w, minlength=len(cells))
    vsum = np.bincount(pairs.row, weights=w * v[pairs.col], minlength=len(cells))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((vsum / wsum).reshape(height, width))


def brute_idw(x: Floats, y: Floats, v: Floats, width: int, height: int) -> Floats:
    """IDW (power 2) from every point, in chunks of cells."""
    cells = centres(width, height)
    out = np.empty(len(cells))
    step = max(1, 20_000_000 // len(x))
    for start in range(0, len(cells), step):
        c = cells[start : start + step]
        d2 = (c[:, 0:1] - x[None, :]) ** 2 + (c[:, 1:2] - y[None, :]) ** 2
        w = 1.0 / d2
        out[start : start + step] = (w @ v) / w.sum(axis=1)
    return out.reshape(height, width)


def raster(size: int) -> npt.NDArray[np.uint8]:
    """Blobs of 6 classes (8-pixel blocks of noise, 3% of pixels flipped)."""
    rng = np.random.default_rng(SEED)
    coarse = rng.integers(0, 6, (size // 8, size // 8)).astype(np.uint8)
    blobs = zoom(coarse, 8, order=0)
    flip = rng.random(blobs.shape) < 0.03
    return np.where(flip, rng.integers(0, 6, blobs.shape), blobs).astype(np.uint8)


def max_difference(ours: Any, theirs: Any) -> float:
    """Largest |difference| relative to the largest |reference| value (NaN-aware)."""
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    finite = np.isfinite(b)
    return float(np.max(np.abs(a[finite] - b[finite])) / np.max(np.abs(b[finite])))


def run(repeat: int, *, quick: bool = False) -> Section:
    """Median times of each kernel and its reference; ratios and agreement."""
    section = Section(
        "kernels",
        "Kernels: geo_engine analysis vs SciPy / rasterio / NumPy",
        ["kernel", "input", "geo_engine", "reference", "ref / ours", "max rel Δ", "bar", "result"],
    )
    sizes = (2_000, 10_000, 100_000) if not quick else (500, 2_000, 10_000)
    side = 4_000 if not quick else 800
    cases: list[tuple[str, str, Callable[[], Any], Callable[[], Any]]] = []

    exact_n, *large = sizes
    x, y, v = points(exact_n)
    cases.append((
        "interpolate_spline (exact)", f"{count(exact_n)} pts → 200x160",
        partial(geo_engine.interpolate_spline, x, y, v, bbox=BBOX, width=200, height=160),
        partial(rbf, x, y, v, 200, 160, None),
    ))  # fmt: skip
    for n in large:
        x, y, v = points(n)
        cases.append((
            "interpolate_spline (64 nbrs)", f"{count(n)} pts → 100x80",
            partial(
                geo_engine.interpolate_spline, x, y, v, bbox=BBOX, width=100, height=80,
                neighbors=64,
            ),
            partial(rbf, x, y, v, 100, 80, 64),
        ))  # fmt: skip
    for n in large:
        x, y, v = points(n)
        cases.append((
            "grid_inference stats", f"{count(n)} pts → 1000x800",
            lambda x=x, y=y, v=v: geo_engine.grid_inference(
                x, y, v, bbox=BBOX, width=1000, height=800, method="stats"
            )["count"][::-1].T,
            lambda x=x, y=y, v=v: numpy_stats(x, y, v, 1000, 800)["count"],
        ))  # fmt: skip
        cases.append((
            "grid_inference idw r=150", f"{count(n)} pts → 500x400",
            partial(
                geo_engine.grid_inference, x, y, v, bbox=BBOX, width=500, height=400,
                radius=150.0,
            ),
            partial(kdtree_idw, x, y, v, 500, 400, 150.0),
        ))  # fmt: skip
        cases.append((
            "grid_inference idw all", f"{count(n)} pts → 100x80",
            partial(geo_engine.grid_inference, x, y, v, bbox=BBOX, width=100, height=80),
            partial(brute_idw, x, y, v, 100, 80),
        ))  # fmt: skip
    image = raster(side)
    transform = Affine(2.5, 0.0, 500_000.0, 0.0, -2.5, 6_000_000.0)
    cases.append((
        "vectorize_raster", f"{side:,}x{side:,} uint8",
        partial(geo_engine.vectorize_raster, image, transform=transform, connectivity=4),
        lambda: list(rasterio.features.shapes(image, connectivity=4, transform=transform)),
    ))  # fmt: skip

    for name, label, ours_call, theirs_call in cases:
        # No warm-up: each call is long, and neither side caches between calls.
        ours = measure(ours_call, repeat, warmup=False)
        theirs = measure(theirs_call, repeat, warmup=False)
        if name == "vectorize_raster":
            difference = abs(ours.value.num_rows - len(theirs.value)) / len(theirs.value)
        else:
            difference = max_difference(ours.value, theirs.value)
        speedup = theirs.median / ours.median
        section.add(
            [
                name,
                label,
                seconds(ours.median),
                seconds(theirs.median),
                ratio(speedup),
                f"{difference:.1e}",
                "> 1x",
                verdict(speedup > 1.0),
            ],
            case=f"{name} {label}",
            ours_seconds=ours.median,
            reference_seconds=theirs.median,
            ours_times=ours.times,
            reference_times=theirs.times,
            speedup=speedup,
            max_relative_difference=difference,
            passed=speedup > 1.0,
        )
    section.notes.append(
        "Same inputs on both sides, NumPy float64 arrays in. max rel Δ: largest |ours - "
        "reference| over the largest |reference| (for vectorize: the relative difference "
        "in polygon count). The 64-neighbour rows compare our local method with "
        "RBFInterpolator(neighbors=64), the same definition; rasterio's shapes are "
        "materialised as a list (GeoJSON-like dicts), ours as a pyarrow Table of WKB."
    )
    return section
