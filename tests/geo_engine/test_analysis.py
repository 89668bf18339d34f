"""The analysis kernels against their references: SciPy's RBFInterpolator,
rasterio.features.shapes, NumPy's histogram2d and a brute-force IDW."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
import rasterio.features
import shapely
from affine import Affine
from scipy.interpolate import RBFInterpolator
from scipy.ndimage import zoom

import geo_engine
from tests.geo_engine.test_gil import Watcher, watcher  # noqa: F401

Floats = npt.NDArray[np.float64]
BBOX = (1000.0, 2000.0, 1500.0, 2300.0)


def centres(bbox: tuple[float, float, float, float], width: int, height: int) -> Floats:
    """The cell centres of the grid, row 0 north, as (height * width, 2)."""
    xmin, ymin, xmax, ymax = bbox
    xs = xmin + (np.arange(width) + 0.5) * (xmax - xmin) / width
    ys = ymax - (np.arange(height) + 0.5) * (ymax - ymin) / height
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def sample(n: int, seed: int) -> tuple[Floats, Floats, Floats]:
    """Random points over BBOX (a margin beyond it) with a smooth field and noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(BBOX[0] - 20, BBOX[2] + 20, n)
    y = rng.uniform(BBOX[1] - 20, BBOX[3] + 20, n)
    v = 50 * np.sin(x / 80) * np.cos(y / 60) + 0.01 * (x - 1000) + rng.normal(0, 2, n)
    return x, y, v


def relative_error(ours: Floats, reference: Floats) -> float:
    """Largest difference relative to the largest reference value."""
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


# --- interpolate_spline ------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "smoothing"), [(20, 0.0), (300, 0.0), (300, 5.0), (2000, 0.0), (2000, 1.0)]
)
def test_spline_equals_scipy(n: int, smoothing: float) -> None:
    x, y, v = sample(n, seed=n)
    width, height = 37, 23
    ours = geo_engine.interpolate_spline(
        x, y, v, bbox=BBOX, width=width, height=height, smoothing=smoothing
    )
    reference = RBFInterpolator(
        np.column_stack([x, y]), v, kernel="thin_plate_spline", smoothing=smoothing
    )(centres(BBOX, width, height)).reshape(height, width)
    assert ours.shape == (height, width) and ours.dtype == np.float64
    assert relative_error(ours, reference) < 1e-6


def test_spline_local_method_equals_scipy_neighbors() -> None:
    x, y, v = sample(3000, seed=7)
    width, height = 40, 30
    ours = geo_engine.interpolate_spline(
        x, y, v, bbox=BBOX, width=width, height=height, smoothing=0.5, neighbors=40
    )
    reference = RBFInterpolator(
        np.column_stack([x, y]), v, kernel="thin_plate_spline", smoothing=0.5, neighbors=40
    )(centres(BBOX, width, height)).reshape(height, width)
    assert relative_error(ours, reference) < 1e-6


@pytest.mark.slow
def test_spline_beyond_the_exact_limit_stays_within_the_stated_error() -> None:
    # 6,000 points: past EXACT_MAX_POINTS, so the 64-neighbour local method; the stub
    # states its error against the exact spline on such data.
    x, y, v = sample(6000, seed=11)
    width, height = 50, 30
    ours = geo_engine.interpolate_spline(x, y, v, bbox=BBOX, width=width, height=height)
    exact = RBFInterpolator(np.column_stack([x, y]), v, kernel="thin_plate_spline")(
        centres(BBOX, width, height)
    ).reshape(height, width)
    assert relative_error(ours, exact) < 1e-2


def test_spline_reproduces_a_plane_and_orients_north_up() -> None:
    x, y, _ = sample(50, seed=3)
    plane = 3.0 + 0.5 * x - 2.0 * y
    out = geo_engine.interpolate_spline(x, y, plane, bbox=BBOX, width=5, height=4)
    c = centres(BBOX, 5, 4)
    np.testing.assert_allclose(out.ravel(), 3.0 + 0.5 * c[:, 0] - 2.0 * c[:, 1], rtol=1e-9)
    assert out[0, 0] < out[-1, 0]  # the value falls northwards: row 0 is north


@pytest.mark.parametrize(
    ("x", "y", "v", "smoothing", "message"),
    [
        ([0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0], [1.0, 2, 3, 4], 0.0, "points 1 and 3"),
        ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0], [1.0, 2, 3, 4], 0.0, "collinear"),
        ([0.0, 1.0], [0.0, 1.0], [1.0, 2.0], 0.0, "at least 3"),
        ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, np.nan, 3.0], 0.0, "index 1"),
        ([0.0, 1.0, np.inf], [0.0, 0.0, 1.0], [1.0, 2.0, 3.0], 0.0, "x has 1"),
    ],
)
def test_spline_refuses_degenerate_points(
    x: list[float], y: list[float], v: list[float], smoothing: float, message: str
) -> None:
    with pytest.raises(geo_engine.AnalysisError, match=message):
        geo_engine.interpolate_spline(
            np.array(x), np.array(y), np.array(v), bbox=(0, 0, 1, 1), width=2, height=2
        )


def test_spline_accepts_duplicates_with_smoothing_as_scipy_does() -> None:
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = np.array([0.0, 0.0, 1.0, 0.0, 0.4])
    v = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    ours = geo_engine.interpolate_spline(
        x, y, v, bbox=(0, 0, 1, 1), width=3, height=3, smoothing=0.1
    )
    reference = RBFInterpolator(
        np.column_stack([x, y]), v, kernel="thin_plate_spline", smoothing=0.1
    )(centres((0, 0, 1, 1), 3, 3)).reshape(3, 3)
    assert relative_error(ours, reference) < 1e-6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bbox": (1, 0, 0, 1), "width": 2, "height": 2},
        {"bbox": (0, 0, 1, 1), "width": 0, "height": 2},
        {"bbox": (0, 0, 1, 1), "width": 2, "height": 2, "smoothing": -1.0},
        {"bbox": (0, 0, 1, 1), "width": 2, "height": 2, "neighbors": 2},
    ],
)
def test_spline_refuses_bad_arguments(kwargs: dict[str, Any]) -> None:
    x, y, v = sample(10, seed=1)
    with pytest.raises(ValueError):
        geo_engine.interpolate_spline(x, y, v, **kwargs)


def test_spline_refuses_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        geo_engine.interpolate_spline(
            np.zeros(3), np.zeros(4), np.zeros(3), bbox=(0, 0, 1, 1), width=1, height=1
        )


# --- vectorize_raster --------------------------------------------------------------

TRANSFORM = Affine(2.5, 0.4, 500_000.0, 0.3, -2.0, 6_000_000.0)


def classes(seed: int, shape: tuple[int, int] = (60, 80)) -> npt.NDArray[np.int64]:
    """Blobs of 4 classes (upsampled noise: regions with holes) plus pixel noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, (-(-shape[0] // 6), -(-shape[1] // 6)))
    blobs = zoom(coarse, 6, order=0)[: shape[0], : shape[1]]
    noise = rng.random(shape) < 0.08
    return np.where(noise, rng.integers(0, 4, shape), blobs)


def by_value(pairs: list[tuple[float, shapely.Geometry]]) -> dict[float, list[float]]:
    """Sorted polygon areas per value."""
    areas: dict[float, list[float]] = defaultdict(list)
    for value, geometry in pairs:
        areas[float(value)].append(float(shapely.area(geometry)))
    return {value: sorted(a) for value, a in areas.items()}


def ours_by_value(table: pa.Table) -> dict[float, list[float]]:
    geometries = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    return by_value(list(zip(table["value"].to_pylist(), geometries, strict=True)))


def reference_by_value(
    array: npt.NDArray[Any], nodata: float | None, connectivity: int
) -> dict[float, list[float]]:
    mask = None if nodata is None else array != nodata
    shapes = rasterio.features.shapes(
        array, mask=mask, connectivity=connectivity, transform=TRANSFORM
    )
    return by_value([(value, shapely.geometry.shape(geom)) for geom, value in shapes])


def assert_same_regions(
    ours: dict[float, list[float]], reference: dict[float, list[float]]
) -> None:
    assert set(ours) == set(reference)
    for value, areas in reference.items():
        assert len(ours[value]) == len(areas), value
        np.testing.assert_allclose(ours[value], areas, rtol=1e-9)
        assert sum(ours[value]) == pytest.approx(sum(areas), rel=1e-9)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [
        (np.uint8, None),
        (np.uint8, 0),
        (np.int16, -1),
        (np.int32, None),
        (np.float32, None),
        (np.float64, 2.0),
    ],
)
def test_vectorize_equals_rasterio_shapes(
    dtype: type[np.generic], nodata: float | None, connectivity: int
) -> None:
    array = classes(seed=connectivity).astype(dtype)
    if nodata is not None and nodata not in (0, 2.0):
        array[5:9, 10:30] = nodata
    table = geo_engine.vectorize_raster(
        array, transform=TRANSFORM, nodata=nodata, connectivity=connectivity
    )
    assert table.column_names == ["value", "geometry"]
    assert table.schema.field("geometry").metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    # rasterio takes float64 only through a float32 copy; the classes survive it.
    reference_array = array.astype(np.float32) if dtype == np.float64 else array
    assert_same_regions(
        ours_by_value(table), reference_by_value(reference_array, nodata, connectivity)
    )
    if nodata is not None:
        assert float(nodata) not in set(table["value"].to_pylist())


def test_vectorize_polygons_are_valid_with_holes() -> None:
    array = classes(seed=5).astype(np.int32)
    table = geo_engine.vectorize_raster(array, transform=tuple(TRANSFORM)[:6], connectivity=4)
    geometries = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    assert shapely.is_valid(geometries).all()
    assert max(shapely.get_num_interior_rings(geometries)) > 0
    # Exteriors counter-clockwise: shapely's signed area of the exterior is positive.
    exteriors = shapely.get_exterior_ring(geometries)
    assert shapely.is_ccw(exteriors).all()
    total = float(shapely.area(geometries).sum())
    assert total == pytest.approx(array.size * abs(TRANSFORM.determinant), rel=1e-9)


def test_vectorize_nan_is_never_a_region_and_crs_is_attached() -> None:
    array = np.array([[1.0, np.nan], [1.0, 3.0]], dtype=np.float32)
    table = geo_engine.vectorize_raster(array, transform=(1, 0, 0, 0, -1, 2), crs="EPSG:3857")
    assert sorted(table["value"].to_pylist()) == [1.0, 3.0]
    metadata = table.schema.field("geometry").metadata[b"ARROW:extension:metadata"]
    assert b"3857" in metadata


@pytest.mark.parametrize(
    ("array", "kwargs"),
    [
        (np.zeros((2, 2), np.uint8), {"transform": (1, 0, 0, 0, -1, 0), "connectivity": 6}),
        (np.zeros((2, 2), np.uint8), {"transform": (1, 0, 0)}),
        (np.zeros((2, 2), np.uint8), {"transform": (0, 0, 0, 0, 0, 0)}),
        (np.zeros((2, 2), np.int64), {"transform": (1, 0, 0, 0, -1, 0)}),
        (np.zeros(4, np.uint8), {"transform": (1, 0, 0, 0, -1, 0)}),
    ],
)
def test_vectorize_refuses_bad_arguments(array: npt.NDArray[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        geo_engine.vectorize_raster(array, **kwargs)


# --- grid_inference ----------------------------------------------------------------


def edges(
    bbox: tuple[float, float, float, float], width: int, height: int
) -> tuple[Floats, Floats]:
    return np.linspace(bbox[0], bbox[2], width + 1), np.linspace(bbox[1], bbox[3], height + 1)


def reference_stats(
    x: Floats, y: Floats, v: Floats, width: int, height: int
) -> dict[str, npt.NDArray[Any]]:
    """histogram2d for count and sum; min/max through the same bins."""
    xe, ye = edges(BBOX, width, height)
    count, _, _ = np.histogram2d(x, y, bins=[xe, ye])
    total, _, _ = np.histogram2d(x, y, bins=[xe, ye], weights=v)
    inside = (x >= xe[0]) & (x <= xe[-1]) & (y >= ye[0]) & (y <= ye[-1])
    col = np.clip(np.searchsorted(xe, x[inside], side="right") - 1, 0, width - 1)
    ybin = np.clip(np.searchsorted(ye, y[inside], side="right") - 1, 0, height - 1)
    flat = ybin * width + col
    low = np.full(width * height, np.inf)
    high = np.full(width * height, -np.inf)
    np.minimum.at(low, flat, v[inside])
    np.maximum.at(high, flat, v[inside])

    def north_up(a: Floats) -> Floats:
        return np.asarray(a, dtype=np.float64)[::-1]

    count_g = north_up(count.T)
    empty = count_g == 0
    out = {
        "count": count_g,
        "sum": np.where(empty, np.nan, north_up(total.T)),
        "min": np.where(empty, np.nan, north_up(low.reshape(height, width))),
        "max": np.where(empty, np.nan, north_up(high.reshape(height, width))),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean"] = out["sum"] / count_g
    return out


def test_grid_stats_equal_histogram2d() -> None:
    x, y, v = sample(20_000, seed=21)
    # Points on the bbox's edges and outside it, too.
    x = np.concatenate([x, [BBOX[0], BBOX[2], BBOX[2] + 1, 1250.0]])
    y = np.concatenate([y, [BBOX[1], BBOX[3], 2100.0, BBOX[3]]])
    v = np.concatenate([v, [1.0, 2.0, 3.0, 4.0]])
    width, height = 47, 31
    ours = geo_engine.grid_inference(x, y, v, bbox=BBOX, width=width, height=height, method="stats")
    reference = reference_stats(x, y, v, width, height)
    assert set(ours) == {"count", "sum", "mean", "min", "max"}
    assert ours["count"].dtype == np.int64
    np.testing.assert_array_equal(ours["count"], reference["count"])
    for key in ("sum", "mean", "min", "max"):
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-12, equal_nan=True)


def test_grid_stats_min_points_blanks_sparse_cells() -> None:
    x, y, v = sample(500, seed=2)
    ours = geo_engine.grid_inference(
        x, y, v, bbox=BBOX, width=20, height=10, method="stats", min_points=4
    )
    sparse = ours["count"] < 4
    assert sparse.any() and (~sparse).any()
    for key in ("sum", "mean", "min", "max"):
        assert np.isnan(ours[key][sparse]).all() and not np.isnan(ours[key][~sparse]).any()


def brute_idw(
    x: Floats, y: Floats, v: Floats, cells: Floats, power: float, radius: float | None, k: int
) -> Floats:
    d = np.hypot(cells[:, 0:1] - x[None, :], cells[:, 1:2] - y[None, :])
    use = np.ones_like(d, dtype=bool) if radius is None else d <= radius
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(use, 1.0 / d**power, 0.0)
        exact = use & (d == 0)
        out = (w * v).sum(axis=1) / w.sum(axis=1)
        hit = exact.any(axis=1)
        out[hit] = (exact * v).sum(axis=1)[hit] / exact.sum(axis=1)[hit]
    out[use.sum(axis=1) < k] = np.nan
    return out


@pytest.mark.parametrize(
    ("power", "radius", "min_points"),
    [(2.0, None, 1), (1.5, None, 1), (2.0, 30.0, 1), (3.0, 45.0, 3)],
)
def test_idw_equals_brute_force(power: float, radius: float | None, min_points: int) -> None:
    x, y, v = sample(3000, seed=5)
    width, height = 41, 29
    cells = centres(BBOX, width, height)
    # One point exactly at a cell centre gives that cell its value.
    x, y, v = np.append(x, cells[100, 0]), np.append(y, cells[100, 1]), np.append(v, 123.0)
    ours = geo_engine.grid_inference(
        x, y, v, bbox=BBOX, width=width, height=height,
        power=power, radius=radius, min_points=min_points,
    )  # fmt: skip
    reference = brute_idw(x, y, v, cells, power, radius, min_points).reshape(height, width)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, equal_nan=True)
    assert ours.ravel()[100] == 123.0
    if radius is not None:
        assert np.isnan(ours).any() == np.isnan(reference).any()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "kriging"}, ValueError),
        ({"radius": -1.0}, ValueError),
        ({"power": 0.0}, ValueError),
        ({"min_points": 0}, ValueError),
        ({"bbox": (0, 0, 0, 1)}, ValueError),
    ],
)
def test_grid_refuses_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    x, y, v = sample(10, seed=1)
    arguments: dict[str, Any] = {"bbox": BBOX, "width": 3, "height": 3, **kwargs}
    with pytest.raises(error):
        geo_engine.grid_inference(x, y, v, **arguments)


def test_grid_refuses_nan_values() -> None:
    x, y, v = sample(10, seed=1)
    v[4] = np.nan
    with pytest.raises(geo_engine.AnalysisError, match="index 4"):
        geo_engine.grid_inference(x, y, v, bbox=BBOX, width=3, height=3, method="stats")


# --- the GIL -----------------------------------------------------------------------


def test_kernels_release_the_gil(watcher: Watcher) -> None:  # noqa: F811
    x, y, v = sample(2000, seed=9)
    raster = classes(seed=9, shape=(1200, 1200)).astype(np.uint8)
    calls = {
        "interpolate_spline": lambda: geo_engine.interpolate_spline(
            x, y, v, bbox=BBOX, width=200, height=150
        ),
        "vectorize_raster": lambda: geo_engine.vectorize_raster(
            raster, transform=TRANSFORM, connectivity=8
        ),
        "grid_inference": lambda: geo_engine.grid_inference(
            x, y, v, bbox=BBOX, width=300, height=300
        ),
    }
    for name, call in calls.items():
        watcher.hits = 0
        assert watcher.ticks_during(call, attempts=10) > 0, name
