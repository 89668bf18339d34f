"""Reads: geo_engine's streaming readers against `pyogrio.read_arrow`, file by file."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio  # type: ignore[import-untyped]

import geo_engine
from benchmarks.common import Section, count, measure, ratio, seconds, verdict
from benchmarks.inputs import Inputs

BAR = 3.0
# GDAL's CSV driver makes points of lon/lat and types the columns as geo_engine does
# (without these it gives text columns and no geometry).
CSV_OPEN_OPTIONS = {
    "X_POSSIBLE_NAMES": "lon",
    "Y_POSSIBLE_NAMES": "lat",
    "KEEP_GEOM_COLUMNS": "NO",
    "AUTODETECT_TYPE": "YES",
}


def run(inputs: Inputs, repeat: int) -> Section:
    """Median read times of every input, geo_engine (batches into a Table) vs pyogrio."""
    section = Section(
        "reads",
        "Reads: file to Arrow table",
        ["file", "rows", "geo_engine", "pyogrio.read_arrow", "pyogrio / ours", "bar", "result"],
    )
    cases = [
        (f"{count(inputs.points)} points .shp", inputs.points_shp, "stream_shapefile"),
        (f"{count(inputs.polygons)} polygons .shp", inputs.polygons_shp, "stream_shapefile"),
        (f"{count(inputs.points)} points .csv", inputs.points_csv, "stream_csv_points"),
        (f"{count(inputs.points)} points .geojson", inputs.points_geojson, "stream_geojson"),
    ]
    for label, path, reader_name in cases:
        reader: Callable[..., Any] | None = getattr(geo_engine, reader_name, None)
        options = CSV_OPEN_OPTIONS if path.suffix == ".csv" else {}
        if reader is None:
            section.add(
                [label, "—", "not available", "—", "—", f"≥ {BAR:g}x", verdict(None)],
                case=label,
                available=False,
                reason=f"geo_engine has no {reader_name}",
            )
            continue
        ours = measure(partial(_read_ours, reader, path), repeat)
        theirs = measure(partial(_read_pyogrio, path, options), repeat)
        speedup = theirs.median / ours.median
        rows = (
            f"{ours.value:,}"
            if ours.value == theirs.value
            else f"{ours.value:,} ≠ {theirs.value:,}"
        )
        section.add(
            [
                label,
                rows,
                seconds(ours.median),
                seconds(theirs.median),
                ratio(speedup),
                f"≥ {BAR:g}x",
                verdict(speedup >= BAR),
            ],
            case=label,
            available=True,
            file=str(path),
            rows_ours=ours.value,
            rows_pyogrio=theirs.value,
            ours_seconds=ours.median,
            pyogrio_seconds=theirs.median,
            ours_times=ours.times,
            pyogrio_times=theirs.times,
            speedup=speedup,
            passed=speedup >= BAR,
        )
    section.notes.append(
        "geo_engine: `pa.RecordBatchReader.from_stream(geo_engine.stream_*(path)).read_all()` "
        "(EPSG:4326 in and out, so no reprojection, like pyogrio); "
        "pyogrio: `pyogrio.read_arrow(path)`; CSV with open options "
        + ", ".join(f"{key}={value}" for key, value in CSV_OPEN_OPTIONS.items())
        + ". Medians of the repeats after one warm-up read each."
    )
    return section


def _read_ours(reader: Callable[..., Any], path: Path) -> int:
    table = pa.RecordBatchReader.from_stream(reader(str(path))).read_all()
    return int(table.num_rows)


def _read_pyogrio(path: Path, options: dict[str, str]) -> int:
    _, table = pyogrio.read_arrow(path, **options)
    return int(table.num_rows)
