"""Alembic: a fresh database reaches head, goes back to base, and matches the models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from core.settings import REPO_ROOT
from tests.conftest import TEST_DATABASE_URL

CONTRACT_TABLES = {
    "auth_user",
    "core_userprofile",
    "core_source",
    "core_geometry",
    "core_layer",
    "core_project",
    "core_project_layers",
    "etl_task",
}


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """An empty database of its own, so going down to base disturbs no other test."""
    admin, _, name = TEST_DATABASE_URL.rpartition("/")
    scratch = f"{name}_migrations"
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    yield f"{admin}/{scratch}"
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "-x", f"url={url}",
         *args],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_creates_contract_tables_and_downgrade_removes_them(scratch_url: str) -> None:
    up = alembic(scratch_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert tables(scratch_url) >= CONTRACT_TABLES
    with psycopg.connect(scratch_url) as conn:
        (geom_type,) = conn.execute(
            "SELECT type FROM geometry_columns WHERE f_table_name = 'core_geometry'"
        ).fetchone() or ("",)
        (srid,) = conn.execute(
            "SELECT srid FROM geometry_columns WHERE f_table_name = 'core_geometry'"
        ).fetchone() or (0,)
        gist = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'core_geometry' "
            "AND indexdef ILIKE '%USING gist (geom)%'"
        ).fetchall()
    assert (geom_type, srid) == ("GEOMETRY", 4326)
    assert len(gist) == 1

    down = alembic(scratch_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert not (CONTRACT_TABLES & tables(scratch_url))

    again = alembic(scratch_url, "upgrade", "head")
    assert again.returncode == 0, again.stderr


def test_models_match_the_migrations(scratch_url: str) -> None:
    assert alembic(scratch_url, "upgrade", "head").returncode == 0
    check = alembic(scratch_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_contract_columns_keep_their_django_names(database_url: str) -> None:
    expected = {
        "core_source": {"id", "sid", "name", "description", "source_type", "attributes",
                        "created_at", "updated_at"},
        "core_geometry": {"gid", "geom", "metadata", "geometry_type", "source_id"},
        "core_layer": {"id", "name", "description", "source_id", "layer_type", "style",
                       "is_visible", "created_at", "updated_at"},
        "core_project": {"id", "name", "description", "owner_id", "is_public", "center", "zoom",
                         "created_at", "updated_at"},
        "core_project_layers": {"id", "project_id", "layer_id", "position"},
        "auth_user": {"id", "password", "last_login", "is_superuser", "username", "first_name",
                      "last_name", "email", "is_staff", "is_active", "date_joined"},
        "core_userprofile": {"id", "user_id", "organization", "preferences"},
    }  # fmt: skip
    with psycopg.connect(database_url) as conn:
        for table, columns in expected.items():
            found = {
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                    (table,),
                )
            }
            assert columns <= found, (table, columns - found)
