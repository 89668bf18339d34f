"""Deterministic generator of the sample and benchmark files under data/.

    python data/generate.py samples [--out data/samples] [--force]
    python data/generate.py bench [--out data/bench] [--points 1000000] [--polygons 100000]

Every value comes from numpy's PCG64 generator with a fixed seed, so a run reproduces
the committed samples exactly (tests/test_samples.py checks it). The benchmark files
are built in chunks of vectorised numpy/pyarrow and streamed to GDAL (pyogrio) as one
Arrow stream, so memory stays bounded by the chunk size whatever --points is.
Existing outputs are kept unless --force. data/README.md documents each file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio
import shapely

SEED = 20261126
HERE = Path(__file__).resolve().parent
SHP_SIBLINGS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# A fixed .dbf "last update" date keeps regenerated shapefiles byte-identical.
SHP_OPTIONS = {"DBF_DATE_LAST_UPDATE": "2026-01-01"}
EPOCH_1100 = -317_000  # days from 1970-01-01 back to about 1102
EPOCH_1990 = 7_670

# Real names and approximate positions; every attribute value is synthetic. Chosen for
# the readers' sake: multi-byte UTF-8 in several scripts, a comma and an apostrophe
# (CSV quoting), points near the antimeridian and both poles' sides of the equator.
REAL_CITIES: list[tuple[str, float, float]] = [
    ("São Paulo", -46.6333, -23.5505),
    ("Zürich", 8.5417, 47.3769),
    ("Ciudad de México", -99.1332, 19.4326),
    ("Kraków", 19.945, 50.0647),
    ("Reykjavík", -21.9426, 64.1466),
    ("Montréal", -73.5673, 45.5017),
    ("Malmö", 13.0038, 55.605),
    ("Düsseldorf", 6.7735, 51.2277),
    ("Göteborg", 11.9746, 57.7089),
    ("İstanbul", 28.9784, 41.0082),
    ("Łódź", 19.456, 51.7592),
    ("Brașov", 25.6012, 45.6427),
    ("Bogotá", -74.0721, 4.711),
    ("Köln", 6.9603, 50.9375),
    ("Genève", 6.1432, 46.2044),
    ("Nouméa", 166.4572, -22.2758),
    ("Asunción", -57.5759, -25.2637),
    ("Århus", 10.2039, 56.1629),
    ("Tromsø", 18.9553, 69.6492),
    ("Besançon", 6.0241, 47.2378),
    ("Córdoba", -64.1888, -31.4201),
    ("Ōsaka", 135.5023, 34.6937),
    ("東京", 139.6917, 35.6895),
    ("\u041c\u043e\u0441\u043a\u0432\u0430", 37.6173, 55.7558),  # Moscow, in Cyrillic
    ("\u0391\u03b8\u03ae\u03bd\u03b1", 23.7275, 37.9838),  # Athens, in Greek
    ("القاهرة", 31.2357, 30.0444),
    ("北京", 116.4074, 39.9042),
    ("서울", 126.978, 37.5665),
    ("München", 11.582, 48.1351),
    ("Lisboa", -9.1393, 38.7223),
    ("Nîmes", 4.3601, 43.8367),
    ("Ljubljana", 14.5058, 46.0569),
    ("Plzeň", 13.3776, 49.7384),
    ("Hà Nội", 105.8342, 21.0278),
    ("Nuku'alofa", -175.2018, -21.1394),
    ("Washington, D.C.", -77.0369, 38.9072),
    ("Wellington", 174.7762, -41.2865),
    ("Cape Town", 18.4241, -33.9249),
    ("Nairobi", 36.8219, -1.2921),
    ("Suva", 178.4419, -18.1416),
    ("Anchorage", -149.9003, 61.2181),
]
SYLLABLES = ["ka", "lo", "mi", "ra", "sen", "tor", "vel", "ü", "ber", "sø", "dal", "é", "ne",
             "quo", "zan", "fi", "por", "gra", "vik", "lin"]  # fmt: skip
GB_PREFIXES = ["Ash", "Brad", "Chester", "Dun", "Elm", "Fern", "Glen", "Hart", "Kings", "Lang",
               "Mel", "Nor", "Ock", "Pen", "Ross", "Stan", "Thorn", "Whit"]  # fmt: skip
GB_SUFFIXES = ["ford", "ton", "bury", "ham", "wick", "by", "field", "mouth", "stead", "worth"]
STREETS = ["Rua Augusta", "Avenida da Liberdade", "Bahnhofstraße", "Rue de l'Église",
           "Calle Mayor", "Ulica Długa", "Strøget", "Avenue des Champs-Élysées", "High Street",
           "Main Street", "Via Roma", "Kärntner Straße"]  # fmt: skip
ROAD_KINDS = ["motorway", "primary", "secondary", "residential", "track"]
LAND_USES = ["residential", "commercial", "industrial", "agricultural", "park", "école"]


def rng_for(*key: int) -> np.random.Generator:
    """A generator seeded by SEED and a key, so each dataset (and chunk) is independent."""
    return np.random.default_rng([SEED, *key])


# ---------------------------------------------------------------- Arrow building blocks


def point_wkb(x: np.ndarray, y: np.ndarray) -> pa.Array:
    """Little-endian WKB points built with numpy alone (21 bytes each, no per-row Python)."""
    n = len(x)
    rec = np.empty(n, np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")]))
    rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, x, y
    offsets = np.arange(0, 21 * (n + 1), 21, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())]
    )


def ring_polygon_wkb(rings: np.ndarray) -> pa.Array:
    """WKB single-ring polygons from an (n, k, 2) array of closed rings."""
    n, k, _ = rings.shape
    rec = np.empty(n, np.dtype([("order", "u1"), ("type", "<u4"), ("nrings", "<u4"),
                                ("npoints", "<u4"), ("xy", "<f8", (k * 2,))]))  # fmt: skip
    rec["order"], rec["type"], rec["nrings"], rec["npoints"] = 1, 3, 1, k
    rec["xy"] = rings.reshape(n, k * 2)
    size = rec.dtype.itemsize
    offsets = np.arange(0, size * (n + 1), size, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())]
    )


def days(values: np.ndarray) -> pa.Array:
    """int days since 1970-01-01 as an Arrow date32 array."""
    return pa.array(values.astype(np.int32)).cast(pa.date32())


def words(rng: np.random.Generator, n: int, syllables: list[str], lo: int, hi: int) -> list[str]:
    """n distinct capitalised pseudo-words of lo..hi syllables."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        word = "".join(rng.choice(syllables, rng.integers(lo, hi + 1))).capitalize()
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def town_attributes(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    """population (int64), elevation (float64, every 25th null) and founded (date32)."""
    population = np.clip(np.round(rng.lognormal(11.0, 1.6, n)), 200, 38_000_000)
    elevation = np.round(rng.gamma(1.5, 250.0, n) - 25.0, 1)  # a few below sea level
    return {
        "population": pa.array(population.astype(np.int64)),
        "elevation": pa.array(elevation, mask=np.arange(n) % 25 == 7),
        "founded": days(rng.integers(EPOCH_1100, EPOCH_1990, n)),
    }


# ---------------------------------------------------------------- writers


def write_vector(table: pa.Table | pa.RecordBatchReader, path: Path, geometry_type: str,
                 crs: str, **layer_options: str) -> None:  # fmt: skip
    """Write Arrow data whose `geometry` column is WKB with GDAL (driver from the suffix)."""
    driver = {".shp": "ESRI Shapefile", ".geojson": "GeoJSON"}[path.suffix]
    shp = path.suffix == ".shp"
    pyogrio.write_arrow(
        table, path, layer=path.stem, driver=driver, geometry_name="geometry",
        geometry_type=geometry_type, crs=crs, encoding="UTF-8" if shp else None,
        layer_options={**(SHP_OPTIONS if shp else {}), **layer_options},
    )  # fmt: skip


def write_csv(batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: Path) -> None:
    """A plain CSV: header, comma separated, strings quoted only when needed."""
    options = pacsv.WriteOptions(quoting_style="needed")
    with pacsv.CSVWriter(path, schema, write_options=options) as writer:
        for batch in batches:
            writer.write_batch(batch)


def write_ndjson(geojson: Path, path: Path) -> None:
    """Newline-delimited GeoJSON: the FeatureCollection's features, one per line."""
    features = json.loads(geojson.read_text(encoding="utf-8"))["features"]
    lines = (json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_zip(members: list[Path], path: Path) -> None:
    """A zip with fixed member order and timestamps, so it is reproducible."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.read_bytes(), zipfile.ZIP_DEFLATED)


def outputs_of(path: Path) -> list[Path]:
    """The files one logical output consists of (a shapefile's siblings)."""
    if path.suffix == ".shp":
        return [path.with_suffix(s) for s in SHP_SIBLINGS]
    return [path]


def produce(path: Path, write: Callable[[Path], None], force: bool) -> None:
    """Write `path` (and its siblings) in a scratch directory, then move them into place."""
    if path.exists() and not force:
        print(f"skip   {path} (exists; --force to rewrite)")
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".partial-") as scratch:
        write(Path(scratch) / path.name)
        for part in outputs_of(path):
            (Path(scratch) / part.name).replace(part)
    size = sum(p.stat().st_size for p in outputs_of(path))
    print(f"wrote  {path} ({size / 1e6:.2f} MB, {time.perf_counter() - started:.1f} s)")


# ---------------------------------------------------------------- samples


def cities_table() -> pa.Table:
    """200 points in EPSG:4326: 41 real names, 159 synthetic ones, synthetic attributes."""
    rng = rng_for(1)
    n_fake = 200 - len(REAL_CITIES)
    fake = words(rng, n_fake, SYLLABLES, 2, 4)
    names = [c[0] for c in REAL_CITIES] + fake
    lon = np.concatenate([[c[1] for c in REAL_CITIES], np.round(rng.uniform(-179, 179, n_fake), 6)])
    lat = np.concatenate([[c[2] for c in REAL_CITIES], np.round(rng.uniform(-55, 72, n_fake), 6)])
    return pa.table({"name": names, **town_attributes(rng, len(names)), "lon": lon, "lat": lat})


def cities_27700_table() -> pa.Table:
    """36 points given directly in British National Grid metres (no reprojection involved)."""
    rng = rng_for(2)
    n = 36
    names = [p + s for p in GB_PREFIXES for s in GB_SUFFIXES]
    names = [names[i] for i in rng.choice(len(names), n, replace=False)]
    easting = np.round(rng.uniform(200_000, 600_000, n), 2)
    northing = np.round(rng.uniform(50_000, 950_000, n), 2)
    return pa.table({"name": names, **town_attributes(rng, n), "lon": easting, "lat": northing})


def with_points(table: pa.Table) -> pa.Table:
    """The attribute columns plus a WKB point geometry made from lon/lat."""
    geom = point_wkb(table["lon"].to_numpy(), table["lat"].to_numpy())
    return table.drop_columns(["lon", "lat"]).append_column("geometry", geom)


def local_area_m2(geoms: np.ndarray, lat0: float) -> np.ndarray:
    """Areas of small lon/lat polygons in m², with a local equirectangular scale."""
    return np.round(shapely.area(geoms) * 111_320.0**2 * np.cos(np.radians(lat0)), 1)


def parcels_table() -> pa.Table:
    """100 parcels on a 10 x 10 grid in Bern: every 8th has a hole, every 10th is two parts."""
    rng = rng_for(3)
    lon0, lat0, dx, dy = 7.43, 46.94, 0.002, 0.0015
    geoms = []
    for i in range(100):
        x0, y0 = lon0 + (i % 10) * dx, lat0 + (i // 10) * dy
        j = rng.uniform(0.02, 0.08, 4)
        box = [x0 + j[0] * dx, y0 + j[1] * dy, x0 + (1 - j[2]) * dx, y0 + (1 - j[3]) * dy]
        box = [round(v, 7) for v in box]
        if i % 10 == 7:  # two parts, separated by a lane; the second part of 47 has a hole
            mid = round((box[0] + box[2]) / 2, 7)
            left = shapely.box(box[0], box[1], mid - 0.0002, box[3])
            right = shapely.box(mid + 0.0002, box[1], box[2], box[3])
            if i == 47:
                right = right.difference(shapely.box(*right.buffer(-0.0002).bounds))
            geoms.append(shapely.MultiPolygon([left, right]))
        elif i % 8 == 3:
            outer = shapely.box(*box)
            hole = shapely.box(*[round(v, 7) for v in outer.buffer(-0.0004).bounds])
            geoms.append(outer.difference(hole))
        else:
            geoms.append(shapely.box(*box))
    arr = np.array(geoms, dtype=object)
    return pa.table({
        "parcel_id": [f"P-{i + 1:04d}" for i in range(100)],
        "land_use": rng.choice(LAND_USES, 100).tolist(),
        "area_m2": local_area_m2(arr, lat0),
        "registered": days(rng.integers(-20_000, 19_000, 100)),
        "geometry": pa.array(shapely.to_wkb(arr, byte_order=1), pa.binary()),
    })  # fmt: skip


def roads_table() -> pa.Table:
    """50 random walks in Lisbon: every 7th a two-part MultiLineString."""
    rng = rng_for(4)
    lon0, lat0 = -9.15, 38.72
    geoms = []
    for i in range(50):
        parts = []
        for _ in range(2 if i % 7 == 3 else 1):
            start = np.array([lon0, lat0]) + rng.uniform(-0.03, 0.03, 2)
            steps = rng.uniform(-0.002, 0.002, (int(rng.integers(2, 10)), 2))
            parts.append(np.round(np.vstack([start, start + np.cumsum(steps, axis=0)]), 7))
        geoms.append(
            shapely.LineString(parts[0]) if len(parts) == 1 else shapely.MultiLineString(parts)
        )
    arr = np.array(geoms, dtype=object)
    scale = np.array([111_320.0 * np.cos(np.radians(lat0)), 110_574.0])
    length = [sum(float(np.hypot(*(np.diff(np.asarray(p.coords), axis=0) * scale).T).sum())
                  for p in getattr(g, "geoms", [g])) for g in geoms]  # fmt: skip
    return pa.table({
        "road_id": pa.array(np.arange(1, 51), pa.int64()),
        "name": rng.choice(STREETS, 50).tolist(),
        "kind": rng.choice(ROAD_KINDS, 50).tolist(),
        "lanes": pa.array(rng.integers(1, 5, 50), pa.int64()),
        "length_m": np.round(length, 1),
        "geometry": pa.array(shapely.to_wkb(arr, byte_order=1), pa.binary()),
    })  # fmt: skip


def samples(out: Path, force: bool) -> None:
    """The small committed samples (see data/README.md)."""
    out.mkdir(parents=True, exist_ok=True)
    cities = cities_table()
    points = with_points(cities)
    csv_table = cities.select(["lon", "lat", "name", "population", "elevation", "founded"])
    cities_files = [(out / "cities.shp").with_suffix(s) for s in SHP_SIBLINGS]
    bng = with_points(cities_27700_table())
    jobs: list[tuple[str, Callable[[Path], None]]] = [
        ("cities.shp", lambda p: write_vector(points, p, "Point", "EPSG:4326")),
        ("cities.zip", lambda p: write_zip(cities_files, p)),
        ("cities_27700.shp", lambda p: write_vector(bng, p, "Point", "EPSG:27700")),
        ("parcels.shp", lambda p: write_vector(parcels_table(), p, "Polygon", "EPSG:4326")),
        ("roads.shp", lambda p: write_vector(roads_table(), p, "LineString", "EPSG:4326")),
        ("cities.csv", lambda p: write_csv(iter(csv_table.to_batches()), csv_table.schema, p)),
        ("cities.geojson", lambda p: write_vector(points, p, "Point", "EPSG:4326")),
        ("cities.ndjson", lambda p: write_ndjson(out / "cities.geojson", p)),
    ]
    for name, write in jobs:
        produce(out / name, write, force)


# ---------------------------------------------------------------- benchmark inputs

POINT_SCHEMA = pa.schema([("id", pa.int64()), ("value", pa.float64()), ("label", pa.string()),
                          ("observed", pa.date32()), ("code", pa.int32())])  # fmt: skip
POLYGON_SCHEMA = pa.schema([("id", pa.int64()), ("label", pa.string()), ("radius_m", pa.float64()),
                            ("geometry", pa.binary())])  # fmt: skip


def vocabulary() -> pa.Array:
    """1000 pseudo-words for the text columns (so profiles have top values)."""
    return pa.array(words(rng_for(90), 1000, SYLLABLES, 2, 5))


def chunk_sizes(total: int, chunk: int) -> Iterator[tuple[int, int, int]]:
    """(index, offset, size) of each chunk."""
    for index, offset in enumerate(range(0, total, chunk)):
        yield index, offset, min(chunk, total - offset)


def point_batches(total: int, chunk: int, *, xy: bool) -> Iterator[pa.RecordBatch]:
    """The benchmark points, chunk by chunk; lon/lat columns first if xy, else WKB last."""
    vocab = vocabulary()
    for index, offset, n in chunk_sizes(total, chunk):
        rng = rng_for(91, index)
        lon = np.round(rng.uniform(-180.0, 180.0, n), 7)
        lat = np.round(rng.uniform(-85.0, 85.0, n), 7)
        cols = [
            pa.array(np.arange(offset + 1, offset + n + 1, dtype=np.int64)),
            pa.array(np.round(rng.normal(0.0, 1000.0, n), 3)),
            vocab.take(pa.array(rng.integers(0, len(vocab), n))),
            days(rng.integers(0, 20_000, n)),
            pa.array(rng.integers(0, 10_000, n).astype(np.int32)),
        ]
        if xy:
            schema = pa.schema([("lon", pa.float64()), ("lat", pa.float64()), *POINT_SCHEMA])
            yield pa.RecordBatch.from_arrays([pa.array(lon), pa.array(lat), *cols], schema=schema)
        else:
            schema = POINT_SCHEMA.append(pa.field("geometry", pa.binary()))
            yield pa.RecordBatch.from_arrays([*cols, point_wkb(lon, lat)], schema=schema)


def polygon_batches(total: int, chunk: int) -> Iterator[pa.RecordBatch]:
    """Irregular hexagons (star-shaped, so always simple) of 50 m to 5 km."""
    vocab = vocabulary()
    for index, offset, n in chunk_sizes(total, chunk):
        rng = rng_for(92, index)
        centre = np.column_stack([rng.uniform(-179, 179, n), rng.uniform(-80, 80, n)])
        radius = np.round(rng.uniform(50.0, 5000.0, n), 1)
        angle = np.arange(6) * (np.pi / 3) + rng.uniform(0, np.pi / 4, (n, 6))
        reach = radius[:, None] * rng.uniform(0.5, 1.0, (n, 6)) / 111_320.0
        ring = np.empty((n, 7, 2))
        ring[:, :6, 0] = centre[:, :1] + reach * np.cos(angle) / np.cos(np.radians(centre[:, 1:]))
        ring[:, :6, 1] = centre[:, 1:] + reach * np.sin(angle)
        ring[:, 6] = ring[:, 0]
        cols = [
            pa.array(np.arange(offset + 1, offset + n + 1, dtype=np.int64)),
            vocab.take(pa.array(rng.integers(0, len(vocab), n))),
            pa.array(radius),
            ring_polygon_wkb(np.round(ring, 7)),
        ]
        yield pa.RecordBatch.from_arrays(cols, schema=POLYGON_SCHEMA)


def stream(batches: Iterator[pa.RecordBatch]) -> pa.RecordBatchReader:
    """An Arrow stream over lazily generated batches (GDAL pulls them one at a time)."""
    first = next(batches)

    def chained() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    return pa.RecordBatchReader.from_batches(first.schema, chained())


def bench(out: Path, points: int, polygons: int, chunk: int, force: bool) -> None:
    """The large benchmark inputs (ignored by git)."""
    out.mkdir(parents=True, exist_ok=True)
    stem, pstem = f"points_{points}", f"polygons_{polygons}"
    xy_schema = next(point_batches(1, 1, xy=True)).schema
    resize = {"RESIZE": "YES"}  # narrowest .dbf fields: a third of the default size
    jobs: list[tuple[str, Callable[[Path], None]]] = [
        (f"{stem}.shp", lambda p: write_vector(
            stream(point_batches(points, chunk, xy=False)), p, "Point", "EPSG:4326", **resize)),
        (f"{stem}.csv", lambda p: write_csv(point_batches(points, chunk, xy=True), xy_schema, p)),
        (f"{stem}.geojson", lambda p: write_vector(
            stream(point_batches(points, chunk, xy=False)), p, "Point", "EPSG:4326")),
        (f"{pstem}.shp", lambda p: write_vector(
            stream(polygon_batches(polygons, chunk)), p, "Polygon", "EPSG:4326", **resize)),
    ]  # fmt: skip
    for name, write in jobs:
        produce(out / name, write, force)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("samples", help="the small committed sample files")
    s.add_argument("--out", type=Path, default=HERE / "samples")
    s.add_argument("--force", action="store_true", help="rewrite files that exist")
    b = sub.add_parser("bench", help="the large benchmark inputs")
    b.add_argument("--out", type=Path, default=HERE / "bench")
    b.add_argument("--points", type=int, default=1_000_000)
    b.add_argument("--polygons", type=int, default=100_000)
    b.add_argument("--chunk", type=int, default=1_000_000, help="rows generated at a time")
    b.add_argument("--force", action="store_true", help="rewrite files that exist")
    args = parser.parse_args(argv)
    if args.command == "samples":
        samples(args.out, args.force)
    else:
        if min(args.points, args.polygons, args.chunk) < 1:
            parser.error("--points, --polygons and --chunk must be positive")
        bench(args.out, args.points, args.polygons, args.chunk, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
