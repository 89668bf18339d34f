"""Transforms: `geo_engine.transform_coords` against pyproj's Transformer on the same arrays."""

from __future__ import annotations

from functools import partial

import numpy as np
import pyproj

import geo_engine
from benchmarks.common import Section, count, measure, ratio, seconds, verdict

SOURCE = "EPSG:4326"
SEED = 20261126


def run(points: int, repeat: int) -> Section:
    """Median times of both on `points` random points, to Web Mercator and British National Grid."""
    section = Section(
        "transform",
        "Transforms: coordinate arrays",
        [
            "transform",
            "points",
            "geo_engine",
            "pyproj",
            "pyproj / ours",
            "max |Δ|",
            "bar",
            "result",
        ],
    )
    rng = np.random.default_rng(SEED)
    world = (rng.uniform(-180.0, 180.0, points), rng.uniform(-85.0, 85.0, points))
    # Inside EPSG:27700's area of use (Great Britain and its waters).
    britain = (rng.uniform(-7.5, 1.7, points), rng.uniform(49.9, 60.8, points))
    for target, (x, y) in (("EPSG:3857", world), ("EPSG:27700", britain)):
        label = f"{SOURCE} → {target}"
        transformer = pyproj.Transformer.from_crs(SOURCE, target, always_xy=True)
        ours = measure(
            partial(geo_engine.transform_coords, x, y, from_crs=SOURCE, to_crs=target), repeat
        )
        theirs = measure(partial(transformer.transform, x, y), repeat)
        speedup = theirs.median / ours.median
        delta = max(
            float(np.nanmax(np.abs(np.asarray(a) - np.asarray(b))))
            for a, b in zip(ours.value, theirs.value, strict=True)
        )
        section.add(
            [
                label,
                count(points),
                seconds(ours.median),
                seconds(theirs.median),
                ratio(speedup),
                f"{delta:.3g} m",
                "> 1x",
                verdict(speedup > 1.0),
            ],
            case=label,
            points=points,
            ours_seconds=ours.median,
            pyproj_seconds=theirs.median,
            ours_times=ours.times,
            pyproj_times=theirs.times,
            speedup=speedup,
            max_abs_difference_m=delta,
            passed=speedup > 1.0,
        )
    section.notes.append(
        "float64 numpy arrays in, new arrays out; pyproj: "
        "`Transformer.from_crs(..., always_xy=True).transform(x, y)` with the transformer "
        "built once; geo_engine caches its transformers. One warm-up call each. "
        "max |Δ| compares the two outputs (metres)."
    )
    return section
