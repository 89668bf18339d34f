"""A scratch database made by the Django-era backend: Django's `migrate`, then a fixture.

Used by the tests (`tests/legacy/fixtures.py`), the adoption tests and the benchmarks:

    url = create_database(base_url, "maps_legacy")   # dropped and made anew, then migrated
    data = fill(url, sources=10, geometries=100_000)  # rows generated in SQL, no Python loop

Django runs in a subprocess (`python -m tests.legacy.manage migrate`), so the caller's
process never imports Django.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
GEOMETRY_TYPES = ("Point", "LineString", "Polygon", "MultiPolygon")
# Low, as tests/conftest.py sets for ours: Django verifies a hash at its own count.
FIXTURE_ITERATIONS = 1000


@dataclass(frozen=True)
class LegacyUser:
    """An account of the fixture, with its plain password."""

    id: int
    username: str
    email: str
    password: str
    is_superuser: bool


@dataclass(frozen=True)
class LegacyData:
    """What `fill` made: ids and counts to check against."""

    source_ids: list[int]
    geometries: int
    layer_ids: list[int]
    public_project_ids: list[int]
    private_project_ids: list[int]
    users: dict[str, LegacyUser] = field(default_factory=dict)


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment a Django process of the legacy app runs with."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.legacy.settings",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py <args>` against the database, failing with Django's output."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.legacy.manage", *args],
        cwd=REPO_ROOT,
        env=django_env(database_url),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def create_database(base_url: str, name: str, *, migrate: bool = True) -> str:
    """Drop and create database `name` on the server of `base_url`; Django migrates it."""
    admin_url = base_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{admin_url}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    if migrate:
        manage(url, "migrate", "--noinput")
    return url


def django_hash(password: str, *, iterations: int = FIXTURE_ITERATIONS) -> str:
    """A Django `pbkdf2_sha256$<iterations>$<salt>$<hash>` of the password."""
    salt = secrets.token_hex(11)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


# Features spread over the world, coordinates a function of the row number so that every
# run makes the same data; each source's rows are one block of consecutive gids.
_GEOMETRIES_SQL = """
INSERT INTO core_geometry (geom, metadata, geometry_type, source_id)
SELECT
    CASE t.kind
        WHEN 0 THEN ST_SetSRID(ST_MakePoint(x, y), 4326)
        WHEN 1 THEN ST_SetSRID(
            ST_MakeLine(ST_MakePoint(x, y), ST_MakePoint(x + 0.01, y + 0.01)), 4326)
        WHEN 2 THEN ST_MakeEnvelope(x, y, x + 0.01, y + 0.01, 4326)
        ELSE ST_Multi(ST_MakeEnvelope(x, y, x + 0.01, y + 0.01, 4326))
    END,
    jsonb_build_object('name', 'feature ' || i, 'value', i, 'even', i %% 2 = 0),
    (%(types)s::text[])[t.kind + 1],
    (%(sources)s::int[])[1 + ((i - 1) * %(nsources)s) / %(n)s]
FROM generate_series(1, %(n)s) AS i,
LATERAL (SELECT (i %% 4) AS kind,
                -179.0 + ((i * 7919) %% 35800) / 100.0 AS x,
                -89.0 + ((i * 104729) %% 17800) / 100.0 AS y) AS t
"""

_PROFILE_SQL = """
UPDATE core_source AS s SET attributes = s.attributes || jsonb_build_object(
    'feature_count', p.n,
    'bbox', jsonb_build_array(ST_XMin(p.box), ST_YMin(p.box), ST_XMax(p.box), ST_YMax(p.box)))
FROM (SELECT source_id, count(*) AS n, ST_Extent(geom) AS box
      FROM core_geometry GROUP BY source_id) AS p
WHERE p.source_id = s.id
"""


def fill(
    database_url: str,
    *,
    sources: int = 10,
    geometries: int = 100_000,
    projects_per_user: int = 2,
    password: str = "legacy-password-1",
    profiled: bool = False,
) -> LegacyData:
    """Fill a migrated legacy database: sources, features, layers, projects, users, profiles.

    `profiled` also stores `feature_count` and `bbox` in each source's attributes, as the
    new pipeline's profile step does; Django-era rows have no such keys.
    """
    with psycopg.connect(database_url) as conn:
        source_ids = [
            row[0]
            for row in conn.execute(
                """INSERT INTO core_source (sid, name, description, source_type, attributes,
                                            created_at, updated_at)
                   SELECT 'src_legacy_' || i, 'Legacy source ' || i, 'Fixture source number ' || i,
                          (ARRAY['shapefile', 'csv', 'geojson'])[1 + i %% 3], '{}'::jsonb,
                          now(), now()
                   FROM generate_series(1, %s) AS i ORDER BY i RETURNING id""",
                (sources,),
            ).fetchall()
        ]
        conn.execute(
            _GEOMETRIES_SQL,
            {"types": list(GEOMETRY_TYPES), "sources": source_ids, "nsources": sources,
             "n": geometries},
        )  # fmt: skip
        if profiled:
            conn.execute(_PROFILE_SQL)
        layer_ids = [
            row[0]
            for row in conn.execute(
                """INSERT INTO core_layer (name, description, source_id, layer_type, style,
                                           is_visible, created_at, updated_at)
                   SELECT 'Layer of ' || s.name, NULL, s.id, 'vector',
                          jsonb_build_object('color', '#3388ff'), true, now(), now()
                   FROM core_source AS s WHERE s.id = ANY(%s) ORDER BY s.id RETURNING id""",
                (source_ids,),
            ).fetchall()
        ]
        users: dict[str, LegacyUser] = {}
        for username, superuser in (("alice", False), ("bob", False), ("admin", True)):
            email = f"{username}@legacy.example.org"
            user_id = conn.execute(
                """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                                          email, is_staff, is_active, date_joined)
                   VALUES (%s, %s, %s, %s, '', %s, %s, true, now()) RETURNING id""",
                (django_hash(password), superuser, username, username.title(), email, superuser),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO core_userprofile (user_id, organization, preferences)"
                " VALUES (%s, %s, %s)",
                (user_id, "Legacy Org", '{"basemap": "osm"}'),
            )
            users[username] = LegacyUser(user_id, username, email, password, superuser)
        public: list[int] = []
        private: list[int] = []
        for user in (users["alice"], users["bob"]):
            for number in range(projects_per_user):
                is_public = number % 2 == 0
                project_id = conn.execute(
                    """INSERT INTO core_project (name, description, owner_id, is_public, center,
                                                 zoom, created_at, updated_at)
                       VALUES (%s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s,
                               now(), now()) RETURNING id""",
                    (f"{user.username} project {number}", None, user.id, is_public,
                     10.5 + number, 45.25, 6.0),
                ).fetchone()[0]  # fmt: skip
                # Layers in reverse order, so that the order is the through table's, not ids'.
                chosen = list(reversed(layer_ids[: min(3, len(layer_ids))]))
                conn.execute(
                    """INSERT INTO core_project_layers (project_id, layer_id, position)
                       SELECT %s, layer, pos - 1
                       FROM unnest(%s::int[]) WITH ORDINALITY AS t(layer, pos)""",
                    (project_id, chosen),
                )
                (public if is_public else private).append(project_id)
        conn.execute("ANALYZE")
    return LegacyData(source_ids, geometries, layer_ids, public, private, users)
