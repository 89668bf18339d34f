"""The benchmark's input files, made by the project's generator (data/generate.py) when missing."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from benchmarks.common import REPO_ROOT

GENERATOR = REPO_ROOT / "data" / "generate.py"


@dataclass(frozen=True)
class Inputs:
    """The files of one size of the benchmark."""

    directory: Path
    points: int
    polygons: int

    @property
    def points_shp(self) -> Path:
        """The points as a shapefile (five attribute columns)."""
        return self.directory / f"points_{self.points}.shp"

    @property
    def points_csv(self) -> Path:
        """The same points as CSV (lon, lat, then the attributes)."""
        return self.directory / f"points_{self.points}.csv"

    @property
    def points_geojson(self) -> Path:
        """The same points as a GeoJSON FeatureCollection."""
        return self.directory / f"points_{self.points}.geojson"

    @property
    def polygons_shp(self) -> Path:
        """The polygons (irregular hexagons) as a shapefile."""
        return self.directory / f"polygons_{self.polygons}.shp"

    def missing(self) -> list[Path]:
        """The files not there yet."""
        files = (self.points_shp, self.points_csv, self.points_geojson, self.polygons_shp)
        return [path for path in files if not path.exists()]


def ensure(directory: Path, *, points: int, polygons: int, log: bool = True) -> Inputs:
    """The inputs of this size, generated first if any is missing (existing files are kept)."""
    inputs = Inputs(directory, points, polygons)
    if inputs.missing():
        command = [sys.executable, str(GENERATOR), "bench", "--out", str(directory)]
        command += ["--points", str(points), "--polygons", str(polygons)]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        if log:
            print(done.stdout.strip(), file=sys.stderr)
    return inputs


def ensure_points_shapefile(directory: Path, points: int) -> Path:
    """Only the points shapefile of this size (the memory section's 10M file).

    The generator's CLI also writes the CSV and a GeoJSON of several GB at this size, so
    its shapefile job is run alone, with the same functions and options as `bench`.
    """
    path = directory / f"points_{points}.shp"
    if path.exists():
        return path
    generator = _generator()
    directory.mkdir(parents=True, exist_ok=True)
    chunk = 1_000_000

    def write(target: Path) -> None:
        batches = generator.point_batches(points, chunk, xy=False)
        generator.write_vector(
            generator.stream(batches), target, "Point", "EPSG:4326", RESIZE="YES"
        )

    with contextlib.redirect_stdout(sys.stderr):
        generator.produce(path, write, False)
    return path


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_data_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
