"""Fixtures of the pipeline tests: small shapefiles written by pyogrio (the oracle), settings
pointing at the test database and temporary folders, a sync engine, accounts with tokens.

Shapefiles are made in code: one canonical table of attributes (every DBF type the
pipeline supports, nulls, non-ASCII text) with points, and a polygon layer with a hole
and a multipolygon.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import jsonschema
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyogrio
import pyproj
import pytest
import shapely
from redis.asyncio import Redis
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import Engine

from core.database import make_sync_engine
from core.security import TokenService, hash_password
from core.settings import REPO_ROOT, DatabaseSettings, PipelineSettings, RedisSettings, Settings

GEOPARQUET_SCHEMA = REPO_ROOT.parent / "shared" / "geoparquet" / "schema.json"


def validate_geo_metadata(geo: dict[str, Any]) -> None:
    """Validate `geo` metadata against the official GeoParquet 1.1.0 schema, offline.

    The schema refers to the PROJJSON schema by URL; pyproj ships that file (v0.7), so
    the `crs` member is validated for real rather than skipped.
    """
    projjson = json.loads(
        (Path(pyproj.datadir.get_data_dir()) / "projjson.schema.json").read_text()
    )
    registry: Registry[Any] = Registry().with_resource(
        projjson["$id"], Resource.from_contents(projjson, default_specification=DRAFT7)
    )
    schema = json.loads(GEOPARQUET_SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, registry=registry).validate(geo)


def canonical_points() -> gpd.GeoDataFrame:
    """Eight points with ints, floats, text (non-ASCII too), dates, booleans and nulls.

    The empty name is written as DBF blanks, which readers take as null (DBF has no null).
    """
    return gpd.GeoDataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6, 7, 8],
            "name": ["Zürich", "Oslo", None, "São Paulo", "Kraków", "", "Nuuk", "Ōsaka"],
            "pop": [421878.0, 709037.5, None, 12.25, -3.5, 0.0, 1e9, 7.0],
            "founded": pd.array(
                [
                    dt.date(1218, 1, 1),
                    dt.date(1048, 6, 30),
                    None,
                    dt.date(1554, 1, 25),
                    dt.date(1257, 6, 5),
                    dt.date(2000, 2, 29),
                    dt.date(1728, 12, 31),
                    dt.date(1889, 4, 1),
                ],
                dtype=pd.ArrowDtype(pa.date32()),
            ),
            "capital": pd.array(
                [False, True, None, False, False, True, True, False], dtype="boolean"
            ),
        },
        geometry=[
            shapely.Point(8.54, 47.37),
            shapely.Point(10.75, 59.91),
            shapely.Point(0.0, 0.0),
            shapely.Point(-46.63, -23.55),
            shapely.Point(19.94, 50.06),
            shapely.Point(-179.5, -89.0),
            shapely.Point(-51.72, 64.18),
            shapely.Point(135.5, 34.69),
        ],
        crs="EPSG:4326",
    )


def canonical_polygons() -> gpd.GeoDataFrame:
    """A square with a hole, a multipolygon and a triangle."""
    square = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)], [[(2, 2), (2, 4), (4, 4), (4, 2), (2, 2)]]
    )
    multi = shapely.MultiPolygon(
        [
            shapely.Polygon([(20, 20), (21, 20), (21, 21), (20, 21), (20, 20)]),
            shapely.Polygon([(30, 30), (31, 30), (31, 31), (30, 31), (30, 30)]),
        ]
    )
    triangle = shapely.Polygon([(-5, -5), (-1, -5), (-3, -1), (-5, -5)])
    return gpd.GeoDataFrame(
        {"kind": ["square", "multi", "triangle"], "area_m2": [96, 2, 8]},
        geometry=[square, multi, triangle],
        crs="EPSG:4326",
    )


def plain(value: Any) -> Any:
    """A pandas/numpy cell as a plain JSON-like value: NaN/NaT/None to None, dates to ISO text."""
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def column_values(frame: pd.DataFrame, column: str) -> list[Any]:
    """A column's cells as plain values (see `plain`)."""
    return [plain(value) for value in frame[column].tolist()]


Feature = tuple[bytes | None, dict[str, Any], str | None]


def features_of(conn: psycopg.Connection[tuple[Any, ...]], source_id: int) -> list[Feature]:
    """A source's features as (WKB, metadata, geometry_type), in gid order."""
    rows = conn.execute(
        "SELECT ST_AsBinary(geom), metadata, geometry_type FROM core_geometry"
        " WHERE source_id = %s ORDER BY gid",
        (source_id,),
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def _sort_key(metadata: dict[str, Any], geometry: shapely.Geometry | None) -> tuple[str, str]:
    where = "" if geometry is None else repr([round(v, 6) for v in geometry.bounds])
    # pandas hands booleans over as floats: 1.0 == True, so the key must not tell them apart.
    same = {k: float(v) if isinstance(v, bool | int | float) else v for k, v in metadata.items()}
    return where, json.dumps(same, sort_keys=True, default=str)


def assert_same_features(
    features: list[Feature], expected: gpd.GeoDataFrame, *, tolerance: float = 1e-9
) -> None:
    """The features hold exactly the oracle's rows: attributes equal, geometries equal within
    `tolerance`, geometry types GDAL's. Order is not compared (staging sorts rows by space)."""
    assert len(features) == len(expected)
    columns = [c for c in expected.columns if c != "geometry"]
    values = {column: column_values(expected, column) for column in columns}
    wanted = sorted(
        (
            ({c: values[c][i] for c in columns}, expected.geometry.iloc[i])
            for i in range(len(expected))
        ),
        key=lambda pair: _sort_key(pair[0], pair[1]),
    )
    got = sorted(
        ((metadata, None if wkb is None else shapely.from_wkb(wkb), kind)
         for wkb, metadata, kind in features),
        key=lambda row: _sort_key(row[0], row[1]),
    )  # fmt: skip
    for (metadata, geometry, kind), (meta, wanted_geometry) in zip(got, wanted, strict=True):
        assert metadata == meta
        if wanted_geometry is None:
            assert geometry is None and kind is None, metadata
            continue
        assert geometry is not None, metadata
        assert geometry.equals_exact(wanted_geometry, tolerance), (geometry.wkt, metadata)
        assert kind == wanted_geometry.geom_type, metadata


def write_shapefile(frame: gpd.GeoDataFrame, folder: Path, stem: str) -> Path:
    """Write `frame` as `<folder>/<stem>.shp` (with .shx, .dbf, .prj, .cpg) using pyogrio."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.shp"
    # Through Arrow, so that date32 columns become DBF dates (D) and booleans logicals (L).
    pyogrio.write_dataframe(frame, path, use_arrow=True, encoding="UTF-8")
    return path


@pytest.fixture
def points_shp(tmp_path: Path) -> Path:
    """The canonical points as a shapefile."""
    return write_shapefile(canonical_points(), tmp_path / "points", "points")


@pytest.fixture
def polygons_shp(tmp_path: Path) -> Path:
    """The canonical polygons as a shapefile."""
    return write_shapefile(canonical_polygons(), tmp_path / "polygons", "polygons")


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    """Settings on the test database and Redis, with this test's own folders."""
    return Settings(
        db=DatabaseSettings(database_url=database_url),
        redis=RedisSettings(redis_url=redis_url),
        pipeline=PipelineSettings(
            staging_dir=tmp_path / "staging",
            upload_dir=tmp_path / "uploads",
            batch_size=1024,
            task_heartbeat_seconds=1,
            task_stale_after_seconds=10,
            task_max_retries=2,
        ),
    )


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """A sync SQLAlchemy engine on the test database (what the workers use)."""
    made = make_sync_engine(DatabaseSettings(database_url=database_url))
    yield made
    made.dispose()


@dataclass(frozen=True)
class Account:
    """A user made for a test, and a valid bearer token of theirs."""

    id: int
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of this user."""
        return {"Authorization": f"Bearer {self.token}"}


PASSWORD = "correct horse battery"


def make_account(database_url: str, redis_url: str, *, superuser: bool = False) -> Account:
    """Insert a user directly (as `maps users create` would) and issue a token for it."""
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined, is_verified)"
            " VALUES (%s, %s, %s, '', '', %s, %s, true, now(), false) RETURNING id",
            (hash_password(PASSWORD, iterations=1000), superuser, email, email, superuser),
        ).fetchone()
    assert row is not None
    user_id = int(row[0])
    # Issuing a token needs no Redis (only revoking and checking revocation do).
    token = TokenService(Settings().auth, cast(Redis, None)).issue(user_id)
    return Account(id=user_id, email=email, password=PASSWORD, token=token)


@pytest.fixture
def account(database_url: str, redis_url: str) -> Account:
    """An ordinary user."""
    return make_account(database_url, redis_url)


@pytest.fixture
def superuser(database_url: str, redis_url: str) -> Account:
    """A superuser."""
    return make_account(database_url, redis_url, superuser=True)


MAPS = str(Path(sys.executable).parent / "maps")


def maps(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the installed `maps` console script as a user would."""
    return subprocess.run(
        [MAPS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's error line, checking it failed with exactly one line and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
