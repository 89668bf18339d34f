"""transform_coords and transform_crs against pyproj."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

import geo_engine
from tests.geo_engine.shapefiles import reproject

RNG = np.random.default_rng(42)


@pytest.mark.parametrize(
    ("source", "target", "bounds"),
    [
        ("EPSG:4326", "EPSG:3857", (-179, -80, 179, 80)),
        ("EPSG:4326", "EPSG:27700", (-7, 50, 1.5, 58)),
        ("EPSG:27700", "EPSG:4326", (100_000, 50_000, 600_000, 1_000_000)),
        ("EPSG:4326", "EPSG:32633", (12, 0, 18, 80)),
    ],
)
def test_transform_coords_matches_pyproj(
    source: str, target: str, bounds: tuple[float, float, float, float]
) -> None:
    n = 200_003
    x = RNG.uniform(bounds[0], bounds[2], n)
    y = RNG.uniform(bounds[1], bounds[3], n)
    x0, y0 = x.copy(), y.copy()
    ours_x, ours_y = geo_engine.transform_coords(x, y, from_crs=source, to_crs=target)
    theirs_x, theirs_y = pyproj.Transformer.from_crs(source, target, always_xy=True).transform(x, y)
    tolerance = 1e-9 if target in ("EPSG:4326",) else 1e-6
    np.testing.assert_allclose(ours_x, theirs_x, rtol=0, atol=tolerance)
    np.testing.assert_allclose(ours_y, theirs_y, rtol=0, atol=tolerance)
    # New arrays; the inputs are untouched.
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert ours_x.dtype == np.float64


def test_transform_coords_z_and_views() -> None:
    x = np.array([[-0.1, 51.5], [2.35, 48.85]])[:, 0]  # a strided view
    y = np.array([51.5, 48.85])
    z = np.array([10.0, 20.0])
    ox, oy, oz = geo_engine.transform_coords(x, y, z=z, from_crs="EPSG:4326", to_crs="EPSG:4978")
    tx, ty, tz = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4978", always_xy=True).transform(
        x, y, z
    )
    np.testing.assert_allclose([ox, oy, oz], [tx, ty, tz], atol=1e-6)
    same_x, _ = geo_engine.transform_coords(x, y, from_crs="EPSG:4326", to_crs="OGC:CRS84")
    np.testing.assert_array_equal(same_x, x)


def test_transform_coords_errors() -> None:
    with pytest.raises(geo_engine.CrsError, match="point 1"):
        geo_engine.transform_coords(
            np.array([0.0, 0.0]), np.array([0.0, 95.0]), from_crs="EPSG:4326", to_crs="EPSG:3857"
        )
    with pytest.raises(ValueError, match="differ in length"):
        geo_engine.transform_coords(
            np.zeros(3), np.zeros(2), from_crs="EPSG:4326", to_crs="EPSG:3857"
        )
    with pytest.raises(geo_engine.CrsError, match="from_crs"):
        geo_engine.transform_coords(np.zeros(1), np.zeros(1), from_crs="nope", to_crs="EPSG:3857")


def test_transform_crs_matches_pyproj() -> None:
    geometries = np.array(
        [
            Point(-0.1, 51.5),
            None,
            LineString([(-1, 52), (-2, 53), (-3, 54)]),
            Polygon(
                [(-1, 51), (-1, 52), (0, 52), (-1, 51)],
                [[(-0.8, 51.5), (-0.5, 51.7), (-0.5, 51.5)]],
            ),
            MultiPolygon([Polygon([(-4, 55), (-4, 56), (-3, 56)])]),
            Point(-1, 52, 30),
            shapely.from_wkt("POINT EMPTY"),
        ],
        dtype=object,
    )
    wkb = pa.array(shapely.to_wkb(geometries, flavor="iso"), pa.binary())
    out = geo_engine.transform_crs(wkb, from_crs="EPSG:4326", to_crs="EPSG:27700")
    assert isinstance(out, pa.Array) and out.type == pa.binary()
    ours = shapely.from_wkb(np.array(out.to_pylist(), dtype=object))
    theirs = reproject(geometries, "EPSG:4326", "EPSG:27700")
    assert list(shapely.is_missing(ours)) == list(shapely.is_missing(theirs))
    present = ~shapely.is_missing(theirs)
    assert shapely.equals_exact(ours[present], theirs[present], tolerance=1e-6).all()
    assert shapely.is_empty(ours[6])


def test_transform_crs_invalid_wkb() -> None:
    good = shapely.to_wkb(Point(1, 2))
    with pytest.raises(geo_engine.GeometryError, match="row 1"):
        geo_engine.transform_crs(
            pa.array([good, good[:-3]], pa.binary()), from_crs="EPSG:4326", to_crs="EPSG:3857"
        )


def web_mercator_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Random lon/lat plus the edges: the antimeridian, the equator, tiny values,
    web mercator's own latitude limit and the 89.5° edge of the closed-form path."""
    n = 300_000
    edges_x = [-180.0, 180.0, 0.0, -0.0, 1e-300, -1e-12, 179.9999999, 10.0, 10.0, 10.0, 10.0]
    edges_y = [0.0, 0.0, 0.0, 0.0, 1e-300, 1e-15, -45.0, 89.5, -89.5, 85.0511287798, -1e-9]
    x = np.concatenate([RNG.uniform(-180, 180, n), edges_x])
    y = np.concatenate([RNG.uniform(-89.5, 89.5, n), edges_y])
    return x, y


def test_web_mercator_closed_form_matches_pyproj() -> None:
    # 4326 <-> 3857 is computed without PROJ (spherical Mercator on the WGS 84 axis):
    # it must give pyproj's figures, x exactly, y within a few ulps.
    x, y = web_mercator_inputs()
    forward = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    ours_x, ours_y = geo_engine.transform_coords(x, y, from_crs="EPSG:4326", to_crs="EPSG:3857")
    theirs_x, theirs_y = forward.transform(x, y)
    np.testing.assert_array_equal(ours_x, theirs_x)
    np.testing.assert_allclose(ours_y, theirs_y, rtol=1e-15, atol=1e-8)
    crs84_x, crs84_y = geo_engine.transform_coords(x, y, from_crs="OGC:CRS84", to_crs="EPSG:3857")
    np.testing.assert_array_equal(crs84_x, ours_x)
    np.testing.assert_array_equal(crs84_y, ours_y)
    inverse = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    back_x, back_y = geo_engine.transform_coords(
        theirs_x, theirs_y, from_crs="EPSG:3857", to_crs="EPSG:4326"
    )
    expected_x, expected_y = inverse.transform(theirs_x, theirs_y)
    np.testing.assert_allclose(back_x, expected_x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back_y, expected_y, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (0.0, 89.9),  # beyond the closed form's latitude limit: PROJ
        (-190.0, 10.0),  # longitude wrapped by PROJ
        (540.0, -20.0),
    ],
)
def test_web_mercator_outside_the_closed_form_is_projs(x: float, y: float) -> None:
    xs = np.array([1.0, x, 2.0])
    ys = np.array([1.0, y, 2.0])
    ours = geo_engine.transform_coords(xs, ys, from_crs="EPSG:4326", to_crs="EPSG:3857")
    theirs = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(xs, ys)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15, atol=1e-8)


@pytest.mark.parametrize(
    ("target", "area"),
    [
        ("EPSG:27700", (-8.82, 49.79, 1.92, 60.94)),  # Helmert (OSGB36 (6)) + TM
        ("EPSG:32633", (12.0, 0.0, 18.0, 84.0)),  # UTM
        ("EPSG:2157", (-10.56, 51.39, -5.34, 55.43)),  # TM on GRS80
    ],
)
def test_transverse_mercator_closed_form_matches_pyproj(
    target: str, area: tuple[float, float, float, float]
) -> None:
    # Inside the area of use of the operation PROJ ranks first, geographic -> TM grid is
    # computed without PROJ; it must give pyproj's figures to the nanometre, z or not.
    west, south, east, north = area
    n = 300_000
    x = np.concatenate([RNG.uniform(west, east, n), [west, east, west, east]])
    y = np.concatenate([RNG.uniform(south, north, n), [south, north, north, south]])
    z = RNG.uniform(-100, 4000, x.size)
    transformer = pyproj.Transformer.from_crs("EPSG:4326", target, always_xy=True)
    ours_x, ours_y = geo_engine.transform_coords(x, y, from_crs="EPSG:4326", to_crs=target)
    theirs_x, theirs_y = transformer.transform(x, y)
    np.testing.assert_allclose(ours_x, theirs_x, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours_y, theirs_y, rtol=0, atol=1e-8)
    ours = geo_engine.transform_coords(x, y, z=z, from_crs="EPSG:4326", to_crs=target)
    theirs = transformer.transform(x, y, z)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    # A chunk with points outside the area goes to PROJ whole: the same figures.
    x[5], y[5] = west - 1.0, south - 1.0
    ours_x, ours_y = geo_engine.transform_coords(x, y, from_crs="EPSG:4326", to_crs=target)
    theirs_x, theirs_y = transformer.transform(x, y)
    np.testing.assert_allclose(ours_x, theirs_x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours_y, theirs_y, rtol=0, atol=1e-6)


def test_transverse_mercator_in_readers_matches_pyproj() -> None:
    # The readers' and transform_crs's reprojection goes through the same pool.
    geometries = np.array(
        [Point(-0.1, 51.5), LineString([(-1, 52), (-2, 53)]), Point(-20.0, 40.0)], dtype=object
    )
    wkb = pa.array(shapely.to_wkb(geometries, flavor="iso"), pa.binary())
    out = geo_engine.transform_crs(wkb, from_crs="EPSG:4326", to_crs="EPSG:27700")
    ours = shapely.from_wkb(np.array(out.to_pylist(), dtype=object))
    theirs = reproject(geometries, "EPSG:4326", "EPSG:27700")
    assert shapely.equals_exact(ours, theirs, tolerance=1e-6).all()
