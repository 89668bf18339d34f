"""Writes the fuzzers' seed inputs into fuzz/seeds/<target>/ (run from anywhere).

`python geo_engine/fuzz/make_seeds.py` with the project's venv (pyogrio, shapely).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon

SEEDS = Path(__file__).resolve().parent / "seeds"

LAYERS = {
    "points": [Point(1, 2), Point(-3.5, 4.25), None],
    "polygons": [
        Polygon([(0, 0), (0, 4), (4, 4), (4, 0), (0, 0)], [[(1, 1), (2, 1), (2, 2), (1, 1)]]),
        MultiPolygon(
            [
                Polygon([(10, 10), (10, 11), (11, 11), (10, 10)]),
                Polygon([(20, 20), (20, 21), (21, 21), (20, 20)]),
            ]
        ),
    ],
    "lines_z": [LineString([(0, 0, 1), (1, 1, 2), (2, 0, 3)])],
    "multipoints": [MultiPoint([(0, 0), (1, 1)])],
}


def attributes(n: int) -> dict[str, pa.Array]:
    return {
        "name": pa.array([f"café {i}" if i % 2 else None for i in range(n)], pa.string()),
        "count": pa.array(range(n), pa.int32()),
        "big": pa.array([10**12 + i for i in range(n)], pa.int64()),
        "value": pa.array([0.5 * i for i in range(n)]),
        "day": pa.array([f"2024-01-{i + 1:02d}" for i in range(n)]).cast(pa.date32()),
    }


def shapefiles() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, shapes in LAYERS.items():
            path = Path(tmp) / f"{name}.shp"
            table = pa.table(
                {
                    **attributes(len(shapes)),
                    "geometry": pa.array(
                        shapely.to_wkb(np.array(shapes, dtype=object), flavor="iso"), pa.binary()
                    ),
                }
            )
            pyogrio.write_arrow(
                table, path, geometry_name="geometry", geometry_type="Unknown", crs="EPSG:4326"
            )
            shp = path.read_bytes()
            shx = path.with_suffix(".shx").read_bytes()
            # The shp target: byte 0 even = .shp alone; odd = .shp + .shx + the
            # 2-byte offset of the .shx.
            (SEEDS / "shp" / f"{name}_alone").write_bytes(b"\x00" + shp)
            cut = len(shp).to_bytes(2, "little")
            (SEEDS / "shp" / f"{name}_with_shx").write_bytes(b"\x01" + shp + shx + cut)
            (SEEDS / "dbf" / name).write_bytes(path.with_suffix(".dbf").read_bytes())


def texts() -> None:
    csv = {
        "points.csv": "id,name,lon,lat,score,ok,day\n1,alpha,-0.1,51.5,1.5,true,2024-01-31\n"
        '2,"beta, with comma",2.35,48.85,,false,\n3,,13.4,52.5,-2,true,1999-12-01\n',
        "wkt.tsv": 'id\tWKT\n1\tPOINT (1 2)\n2\t"POLYGON ((0 0, 0 1, 1 1, 0 0))"\n3\t\n'
        "4\tGEOMETRYCOLLECTION (POINT Z (1 2 3), LINESTRING (0 0, 1 1))\n",
        "semicolons.csv": "x;y;n\n1;2;3\n4;5;007\n",
    }
    for name, text in csv.items():
        (SEEDS / "csv" / name).write_text(text)
    geojson = {
        "collection.geojson": '{"type":"FeatureCollection","crs":{"type":"name","properties":'
        '{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},"features":[{"type":"Feature","id":7,'
        '"properties":{"n":1,"x":1.5,"s":"a","d":"2024-01-31","o":{"k":[1]}},"geometry":'
        '{"type":"Polygon","coordinates":[[[0,0],[0,1],[1,1],[0,0]]]}},{"type":"Feature",'
        '"properties":{"n":2.5,"b":true},"geometry":null}]}',
        "sequence.geojsons": '\x1e{"type":"Feature","properties":{"a":1},"geometry":'
        '{"type":"MultiLineString","coordinates":[[[0,0,1],[1,1,2]]]}}\n'
        '\x1e{"type":"Feature","properties":{"a":"x","late":[1,2]},"geometry":'
        '{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]}]}}\n',
        "geometry.json": '{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}',
    }
    for name, text in geojson.items():
        (SEEDS / "geojson" / name).write_text(text)


if __name__ == "__main__":
    for target in ("shp", "dbf", "csv", "geojson"):
        (SEEDS / target).mkdir(parents=True, exist_ok=True)
    shapefiles()
    texts()
