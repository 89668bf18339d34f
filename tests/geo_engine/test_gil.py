"""The heavy calls release the GIL: another Python thread runs while they work.

No timing: the switch interval is raised so far that a thread holding the GIL never
gives it up on its own during a call; a counter thread that sleeps between ticks (so
releases the GIL itself) can then only tick while the caller is inside a call if that
call released the GIL.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely

import geo_engine

N = 100_000


class Watcher:
    """Counts the ticks of a background thread that happen while `inside` is set."""

    def __init__(self) -> None:
        self.inside = False
        self.hits = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.inside:
                self.hits += 1
            time.sleep(0.0005)  # releases the GIL

    def ticks_during(self, call: Callable[[], Any], attempts: int = 50) -> int:
        """Runs `call` until the thread ticked inside it (or `attempts` times)."""
        for _ in range(attempts):
            self.inside = True
            call()
            self.inside = False
            if self.hits:
                break
        return self.hits


@pytest.fixture
def watcher() -> Iterator[Watcher]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    watcher = Watcher()
    watcher.thread.start()
    try:
        yield watcher
    finally:
        watcher.stop.set()
        watcher.thread.join()
        sys.setswitchinterval(interval)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gil")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-10, 10, N), rng.uniform(40, 60, N)
    table = pa.table(
        {
            "id": pa.array(range(N), pa.int32()),
            "value": pa.array(rng.uniform(0, 1, N)),
            "geometry": pa.array(shapely.to_wkb(shapely.points(x, y)), pa.binary()),
        }
    )
    paths = {}
    for name, driver in (("p.shp", "ESRI Shapefile"), ("p.geojson", "GeoJSON")):
        paths[name] = folder / name
        pyogrio.write_arrow(
            table,
            paths[name],
            driver=driver,
            geometry_name="geometry",
            geometry_type="Point",
            crs="EPSG:4326",
        )
    paths["p.csv"] = folder / "p.csv"
    lines = ["lon,lat,id,value"] + [
        f"{a},{b},{i},{i / 7}" for i, (a, b) in enumerate(zip(x, y, strict=True))
    ]
    paths["p.csv"].write_text("\n".join(lines) + "\n")
    return paths


def read_stream(stream: object) -> pa.Table:
    return pa.RecordBatchReader.from_stream(stream).read_all()


CALLS: dict[str, Callable[[dict[str, Path]], Any]] = {
    "parse_shapefile": lambda f: geo_engine.parse_shapefile(f["p.shp"], target_crs="EPSG:3857"),
    "stream_shapefile": lambda f: geo_engine.stream_shapefile(f["p.shp"], batch_size=N),
    "stream_csv_points": lambda f: geo_engine.stream_csv_points(f["p.csv"], batch_size=N),
    "stream_geojson": lambda f: geo_engine.stream_geojson(f["p.geojson"]),
    "parse_geojson": lambda f: geo_engine.parse_geojson(f["p.geojson"]),
    "infer_metadata(path)": lambda f: geo_engine.infer_metadata(f["p.shp"]),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_readers_release_the_gil(name: str, files: dict[str, Path], watcher: Watcher) -> None:
    assert watcher.ticks_during(lambda: CALLS[name](files)) > 0, name


def test_stream_consumers_run_without_the_gil(files: dict[str, Path], watcher: Watcher) -> None:
    # pyarrow pulls the batches through the C stream interface without the GIL.
    ticks = watcher.ticks_during(
        lambda: read_stream(geo_engine.stream_shapefile(files["p.shp"], batch_size=4096))
    )
    assert ticks > 0


def test_array_functions_release_the_gil(files: dict[str, Path], watcher: Watcher) -> None:
    table = geo_engine.parse_shapefile(files["p.shp"])
    geometry = table["geometry"].combine_chunks()
    batch = table.combine_chunks().to_batches()[0]
    x, y = np.random.default_rng(1).uniform(-10, 10, (2, 2_000_000))
    calls: dict[str, Callable[[], Any]] = {
        "transform_coords": lambda: geo_engine.transform_coords(
            x, y, from_crs="EPSG:4326", to_crs="EPSG:27700"
        ),
        "transform_crs": lambda: geo_engine.transform_crs(
            geometry, from_crs="EPSG:4326", to_crs="EPSG:27700"
        ),
        "infer_metadata": lambda: geo_engine.infer_metadata(table),
        "encode_copy_rows": lambda: geo_engine.encode_copy_rows(batch, source_id=1),
        "validate_geometry": lambda: geo_engine.validate_geometry(geometry),
        "simplify_geometry": lambda: geo_engine.simplify_geometry(geometry, tolerance=0.1),
    }
    for name, call in calls.items():
        watcher.hits = 0
        assert watcher.ticks_during(call) > 0, name


def test_two_reads_in_threads_both_finish(files: dict[str, Path]) -> None:
    # Two readers at once from two Python threads: both complete with every row.
    results: dict[str, int] = {}

    def read(name: str, path: Path) -> None:
        reader = geo_engine.stream_shapefile if path.suffix == ".shp" else geo_engine.stream_geojson
        results[name] = read_stream(reader(path)).num_rows

    threads = [
        threading.Thread(target=read, args=(name, files[name])) for name in ("p.shp", "p.geojson")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"p.shp": N, "p.geojson": N}
