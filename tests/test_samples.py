"""The committed samples in data/samples are exactly what data/generate.py makes.

The generator runs into a temporary directory (the command data/README.md gives) and
both copies are read with pyogrio: same files, same rows, same values, same CRS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio
import pytest
import shapely

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
GENERATOR = REPO / "data" / "generate.py"
SIBLINGS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
SHAPEFILES = ["cities.shp", "cities_27700.shp", "parcels.shp", "roads.shp"]
DATASETS = [*SHAPEFILES, "cities.zip", "cities.csv", "cities.geojson", "cities.ndjson"]
COUNTS = {"cities": 200, "cities_27700": 36, "parcels": 100, "roads": 50}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh run of the generator, as data/README.md documents it."""
    out = tmp_path_factory.mktemp("samples")
    subprocess.run(
        [sys.executable, str(GENERATOR), "samples", "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def read(path: Path) -> tuple[dict[str, Any], pa.Table]:
    """pyogrio's reading of a file: (metadata, table)."""
    meta, table = pyogrio.read_arrow(path)
    return meta, table


def first_difference(a: pa.Table, b: pa.Table) -> str:
    """Where two tables differ, for a readable failure."""
    if a.schema.names != b.schema.names:
        return f"columns {a.schema.names} != {b.schema.names}"
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows != {b.num_rows} rows"
    for name in a.schema.names:
        left, right = a[name].to_pylist(), b[name].to_pylist()
        for row, (x, y) in enumerate(zip(left, right, strict=True)):
            if x != y:
                return f"column {name!r}, row {row}: {x!r} != {y!r}"
    return "types differ"


def test_sample_directory_holds_exactly_the_generated_files(regenerated: Path) -> None:
    committed = sorted(p.name for p in SAMPLES.iterdir())
    assert committed == sorted(p.name for p in regenerated.iterdir())
    expected = {s.replace(".shp", ext) for s in SHAPEFILES for ext in SIBLINGS}
    assert set(committed) == expected | {"cities.zip", "cities.csv", "cities.geojson",
                                         "cities.ndjson"}  # fmt: skip


@pytest.mark.parametrize("name", DATASETS)
def test_committed_sample_matches_the_generator(name: str, regenerated: Path) -> None:
    meta_committed, committed = read(SAMPLES / name)
    meta_fresh, fresh = read(regenerated / name)
    for key in ("crs", "geometry_type", "encoding"):
        assert meta_committed.get(key) == meta_fresh.get(key), key
    assert committed.schema.equals(fresh.schema), f"{committed.schema} != {fresh.schema}"
    assert committed.equals(fresh), first_difference(committed, fresh)


@pytest.mark.parametrize("name", [s.replace(".shp", ext) for s in SHAPEFILES
                                  for ext in (".prj", ".cpg")])  # fmt: skip
def test_shapefile_sidecars_match_the_generator(name: str, regenerated: Path) -> None:
    assert (SAMPLES / name).read_bytes() == (regenerated / name).read_bytes()


@pytest.mark.parametrize("name", DATASETS)
def test_feature_counts(name: str) -> None:
    stem = Path(name).stem
    assert pyogrio.read_info(SAMPLES / name)["features"] == COUNTS[stem]


def test_crs_of_each_shapefile() -> None:
    crs = {name: pyogrio.read_info(SAMPLES / name)["crs"] for name in SHAPEFILES}
    assert crs == {
        "cities.shp": "EPSG:4326",
        "cities_27700.shp": "EPSG:27700",
        "parcels.shp": "EPSG:4326",
        "roads.shp": "EPSG:4326",
    }


def test_bng_points_are_in_metres_inside_great_britain() -> None:
    xmin, ymin, xmax, ymax = pyogrio.read_info(SAMPLES / "cities_27700.shp")["total_bounds"]
    assert xmin >= 0 and ymin >= 0 and xmax <= 700_000 and ymax <= 1_300_000


def test_shapefiles_declare_utf8_and_keep_non_ascii_names() -> None:
    for name in SHAPEFILES:
        assert (SAMPLES / name).with_suffix(".cpg").read_text() == "UTF-8"
    names = set(read(SAMPLES / "cities.shp")[1]["name"].to_pylist())
    assert {"São Paulo", "Zürich", "東京", "Washington, D.C."} <= names


def test_zip_holds_the_same_shapefile() -> None:
    with zipfile.ZipFile(SAMPLES / "cities.zip") as zf:
        assert zf.namelist() == [f"cities{ext}" for ext in SIBLINGS]
        for member in zf.namelist():
            assert zf.read(member) == (SAMPLES / member).read_bytes(), member


def _cities(name: str) -> list[tuple[str, float, float, int, float | None, str | None]]:
    """The cities of one format as (name, lon, lat, population, elevation, founded)."""
    _, table = read(SAMPLES / name)
    rows = table.to_pylist()
    if name.endswith(".csv"):  # GDAL reads CSV cells as text
        return [(r["name"], float(r["lon"]), float(r["lat"]), int(r["population"]),
                 float(r["elevation"]) if r["elevation"] else None, r["founded"] or None)
                for r in rows]  # fmt: skip
    out = []
    for r in rows:
        point = shapely.from_wkb(r["wkb_geometry"])
        founded = r["founded"].isoformat() if isinstance(r["founded"], date) else None
        out.append((r["name"], point.x, point.y, r["population"], r["elevation"], founded))
    return out


@pytest.mark.parametrize("name", ["cities.zip", "cities.csv", "cities.geojson", "cities.ndjson"])
def test_every_cities_format_holds_the_same_cities(name: str) -> None:
    assert _cities(name) == _cities("cities.shp")


def test_cities_have_some_null_elevations() -> None:
    elevations = [row[4] for row in _cities("cities.shp")]
    assert 0 < elevations.count(None) < len(elevations)


def test_ndjson_is_one_feature_per_line() -> None:
    lines = (SAMPLES / "cities.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(lines) == COUNTS["cities"]
    assert all(json.loads(line)["type"] == "Feature" for line in lines)


def test_parcels_have_holes_and_multipolygons_and_are_valid() -> None:
    geoms = shapely.from_wkb(read(SAMPLES / "parcels.shp")[1]["wkb_geometry"].to_pylist())
    kinds = set(shapely.get_type_id(geoms).tolist())
    assert kinds == {3, 6}  # Polygon, MultiPolygon
    polygons = [g for g in geoms if g.geom_type == "Polygon"]
    assert any(len(p.interiors) for p in polygons)
    multis = [g for g in geoms if g.geom_type == "MultiPolygon"]
    assert any(len(part.interiors) for m in multis for part in m.geoms)
    assert shapely.is_valid(geoms).all()


def test_roads_mix_lines_and_multilines() -> None:
    geoms = shapely.from_wkb(read(SAMPLES / "roads.shp")[1]["wkb_geometry"].to_pylist())
    assert set(shapely.get_type_id(geoms).tolist()) == {1, 5}  # LineString, MultiLineString


def test_samples_are_tiny() -> None:
    sizes = {p.name: p.stat().st_size for p in SAMPLES.iterdir()}
    assert max(sizes.values()) < 200_000, sizes
    assert sum(sizes.values()) < 1_000_000


def test_readme_documents_every_sample() -> None:
    readme = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    for name in DATASETS:
        assert f"`{name}`" in readme, name
    assert "python data/generate.py samples" in readme
    assert "python data/generate.py bench" in readme
