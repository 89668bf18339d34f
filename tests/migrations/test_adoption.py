"""Adopting the Django database: Django's own `migrate` makes it and a fixture fills it,
`alembic upgrade head` adopts it in place, our API serves every object with the same ids
and the old users sign in, an import lands beside the adopted rows, and after
`alembic downgrade base` the Django app serves everything again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import shapely

from api.main import create_app
from core.database import make_sync_engine
from core.security import hash_password
from core.settings import REPO_ROOT, DatabaseSettings, Settings
from pipeline.steps import compact, load, stage
from pipeline.tasks import new_sid
from tests.conftest import TEST_DATABASE_URL, free_port
from tests.legacy.database import create_database, fill
from tests.legacy.server import gunicorn
from tests.pipeline.conftest import write_shapefile

GEOMETRIES = 100_000
_MORE_GEOMETRIES = """
INSERT INTO core_geometry (geom, metadata, geometry_type, source_id)
SELECT CASE i %% 4
        WHEN 0 THEN ST_SetSRID(ST_MakePoint(x, y), 4326)
        WHEN 1 THEN ST_SetSRID(ST_MakeLine(ST_MakePoint(x, y), ST_MakePoint(x + 0.01, y)), 4326)
        WHEN 2 THEN ST_MakeEnvelope(x, y, x + 0.01, y + 0.01, 4326)
        ELSE ST_Multi(ST_MakeEnvelope(x, y, x + 0.01, y + 0.01, 4326)) END,
    jsonb_build_object('n', i),
    (ARRAY['Point', 'LineString', 'Polygon', 'MultiPolygon'])[1 + i %% 4],
    (%(sources)s::int[])[1 + i %% 10]
FROM generate_series(1::bigint, %(n)s) AS i,
LATERAL (SELECT -179.0 + ((i * 7919) %% 35800) / 100.0 AS x,
                -89.0 + ((i * 104729) %% 17800) / 100.0 AS y) AS t
"""
DJANGO_TABLES = (
    "auth_group", "auth_permission", "django_content_type", "django_migrations",
    "django_session", "authtoken_token", "account_emailaddress", "django_site",
)  # fmt: skip


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "-x", f"url={url}",
         *args],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _snapshot(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return {
            "sources": conn.execute("SELECT id, sid, name FROM core_source ORDER BY id").fetchall(),
            "geometries": conn.execute(
                "SELECT count(*), sum(gid::bigint), sum(source_id), min(gid), max(gid)"
                " FROM core_geometry"
            ).fetchone(),
            "layers": conn.execute("SELECT id, source_id FROM core_layer ORDER BY id").fetchall(),
            "projects": conn.execute(
                "SELECT id, owner_id, is_public FROM core_project ORDER BY id"
            ).fetchall(),
            "order": conn.execute(
                "SELECT project_id, layer_id, position FROM core_project_layers ORDER BY id"
            ).fetchall(),
            "users": conn.execute(
                "SELECT id, username, password FROM auth_user ORDER BY id"
            ).fetchall(),
            "django": {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                for table in DJANGO_TABLES
            },
        }


def _columns(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()


async def _our_api(url: str, users: dict[str, Any], data: Any) -> dict[str, Any]:
    settings = Settings(db=DatabaseSettings(database_url=url))
    app = create_app(settings)
    seen: dict[str, Any] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        login = await client.post(
            "/api/v1/auth/login",
            data={"username": users["alice"].email, "password": users["alice"].password},
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        wfs = await client.get("/api/v1/wfs/", params={"page_size": 5}, headers=headers)
        assert wfs.status_code == 200, wfs.text
        seen["wfs_count"] = wfs.json()["count"]
        one = await client.get(
            "/api/v1/wfs/", params={"source": str(data.source_ids[0])}, headers=headers
        )
        seen["source_count"] = one.json()["count"]
        sources = await client.get("/api/v1/sources/", params={"page_size": 1000}, headers=headers)
        seen["source_ids"] = sorted(s["id"] for s in sources.json()["results"])
        layers = await client.get("/api/v1/layers/", params={"page_size": 1000}, headers=headers)
        seen["layer_ids"] = sorted(item["id"] for item in layers.json()["results"])
        projects = await client.get(
            "/api/v1/projects/", params={"page_size": 1000}, headers=headers
        )
        seen["projects"] = {p["id"]: p["layers"] for p in projects.json()["results"]}
        profile = await client.get("/api/v1/user-profile/", headers=headers)
        seen["profile"] = profile.json()
    return seen


def _staged(tmp_path: Path, count: int) -> Path:
    frame = gpd.GeoDataFrame(
        {"n": range(count)},
        geometry=shapely.points([i % 170 for i in range(count)], [i % 80 for i in range(count)]),
        crs="EPSG:4326",
    )
    shp = write_shapefile(frame, tmp_path / "after", "pts")
    return stage.run(source=shp, destination=tmp_path / "after.parquet").path


def test_adopt_a_django_database_serve_it_and_roll_back(tmp_path: Path) -> None:
    name = TEST_DATABASE_URL.rsplit("/", 1)[1] + "_adoption"
    url = create_database(TEST_DATABASE_URL, name)
    # tests/legacy's filler overflows int4 past about 20,000 rows (i * 104729): the rest
    # of the rows, of the same four types, are made here with bigint arithmetic.
    data = fill(url, sources=10, geometries=20_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_MORE_GEOMETRIES, {"sources": data.source_ids, "n": GEOMETRIES - 20_000})
        conn.execute(  # a clash Django allowed
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined) VALUES ('!', false, 'alice2', '', '',"
            " 'ALICE@legacy.example.org', false, true, now())"
        )
    before = _snapshot(url)
    django_columns = {t: _columns(url, t) for t in ("core_source", "core_layer", "auth_user")}

    up = alembic(url, "upgrade", "head")

    assert "share the email alice@legacy.example.org" in up.stderr
    assert _snapshot(url) == before  # every row, every id; Django's tables untouched
    with psycopg.connect(url) as conn:
        layout = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'core_geometry'::regclass"
        ).fetchall()
        gid_type = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'core_geometry'::regclass AND attname = 'gid'"
        ).fetchone()
        django_indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'core_geometry_parts'"
            " AND tablename = 'part_0' AND indexname LIKE 'core_geometry_%'"
        ).fetchone()
    assert layout == [("part_0", "FOR VALUES IN (0)")]
    assert gid_type == ("integer",)  # Django's type, kept by the parent
    assert django_indexes == (5,)  # Django's key, GIST, type (and _like) and source_id btrees

    seen = asyncio.run(_our_api(url, data.users, data))
    assert seen["wfs_count"] == GEOMETRIES
    assert seen["source_count"] == GEOMETRIES // 10
    assert seen["source_ids"] == data.source_ids
    assert seen["layer_ids"] == data.layer_ids
    assert set(data.public_project_ids) <= set(seen["projects"])
    assert seen["profile"]["id"] == before["users"][0][0] or seen["profile"]["username"] == "alice"

    # An import after adoption: its own part, gids from Django's sequence, typed as Django's.
    engine = make_sync_engine(DatabaseSettings(database_url=url))
    try:
        loaded = load.run(
            engine=engine,
            path=_staged(tmp_path, 3000),
            sid=new_sid(),
            name="after adoption",
            source_type="shapefile",
            attributes={},
            parallelism=2,
            parallel_min_rows=1,
        )
    finally:
        engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        low = conn.execute(
            "SELECT min(gid) FROM core_geometry WHERE source_id = %s", (loaded.source_id,)
        ).fetchone()
        assert low is not None and low[0] > before["geometries"][4]
        compact.run(conn)
        # A password the new backend changed.
        conn.execute(
            "UPDATE auth_user SET password = %s WHERE username = 'bob'",
            (hash_password("changed by the new backend", iterations=1000),),
        )

    alembic(url, "downgrade", "base")

    with psycopg.connect(url) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'core_geometry'::regclass")
        assert kind.fetchone() == ("r",)
        assert conn.execute("SELECT count(*) FROM core_geometry").fetchone() == (GEOMETRIES + 3000,)
        leftovers = conn.execute(
            "SELECT to_regclass('etl_task'), to_regnamespace('core_geometry_parts'),"
            " to_regclass('maps_django_adoption')"
        ).fetchone()
    assert leftovers == (None, None, None)
    assert {t: _columns(url, t) for t in django_columns} == django_columns
    bob = data.users["bob"]
    with gunicorn(url, port=free_port(), workers=1) as django:
        for username, password in (("alice", data.users["alice"].password),
                                   ("bob", "changed by the new backend")):  # fmt: skip
            login = httpx.post(
                f"{django}/rest-auth/login/", json={"username": username, "password": password}
            )
            assert login.status_code == 200, (username, login.text)
        headers = {"Authorization": f"Token {login.json()['key']}"}
        wfs = httpx.get(f"{django}/api/v1/wfs/", params={"page_size": 1}, headers=headers)
        assert wfs.status_code == 200, wfs.text
        assert wfs.json()["count"] == GEOMETRIES + 3000
        sources = httpx.get(f"{django}/api/v1/sources/", params={"page_size": 100}, headers=headers)
        assert sorted(s["id"] for s in sources.json()["results"]) == sorted(
            [*data.source_ids, loaded.source_id]
        )
    assert bob.username == "bob"
