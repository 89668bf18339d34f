"""The benchmark's own databases on the project's PostgreSQL, and ogr2ogr loading into them.

Imports go into `maps_bench`, which is rebuilt before every run from a template (a
migrated empty database, or one whose core_geometry already holds other sources), so
each run meets the same table whatever the load's design. Every database made here is
dropped at the end; the development database is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from benchmarks.common import REPO_ROOT


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    head, _, tail = url.rpartition("/")
    query = tail.partition("?")[2]
    return f"{head}/{name}" + (f"?{query}" if query else "")


class BenchDatabases:
    """`<prefix>` (imports go here), `<prefix>_template` (migrated, empty) and snapshots."""

    def __init__(self, server_url: str, prefix: str = "maps_bench") -> None:
        self.admin_url = with_database(server_url, "postgres")
        self.name = prefix
        self.url = with_database(server_url, prefix)
        self.template = f"{prefix}_template"
        self._made: list[str] = []
        self._ready = False

    def setup(self) -> None:
        """Create the empty template and migrate it to head with Alembic (once)."""
        if self._ready:
            return
        self._create(self.template)
        command = [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini")]
        command += ["-x", f"url={with_database(self.url, self.template)}", "upgrade", "head"]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"alembic upgrade head failed:\n{done.stderr[-3000:]}")
        self._ready = True

    def reset(self, template: str | None = None) -> None:
        """Rebuild the working database as a copy of `template` (the empty one by default)."""
        self._create(self.name, template=template or self.template)

    def snapshot(self, name: str) -> str:
        """Keep the working database's current state as the template `name`."""
        self._create(name, template=self.name)
        return name

    def close(self) -> None:
        """Drop every database made here."""
        with self._admin() as conn:
            for name in reversed(self._made):
                _drop(conn, name)
        self._made.clear()
        self._ready = False

    def server_facts(self) -> dict[str, str]:
        """PostgreSQL's and PostGIS's versions."""
        with self._admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()
            postgis = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
        return {
            "PostgreSQL": str(version[0]) if version else "?",
            "PostGIS": str(postgis[0]) if postgis else "not installed",
        }

    def _create(self, name: str, *, template: str | None = None) -> None:
        with self._admin() as conn:
            _drop(conn, name)
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                # FILE_COPY copies the files after a checkpoint: far faster than WAL_LOG
                # for a database holding millions of rows.
                statement += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(template)
                )
            conn.execute(statement)
        if name not in self._made:
            self._made.append(name)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)


def _drop(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ogr2ogr_version() -> str:
    """The GDAL version of the ogr2ogr on PATH."""
    try:
        done = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "not found"
    return done.stdout.strip().split(",")[0]


def ogr2ogr_import(url: str, path: Path, table: str) -> tuple[float, int]:
    """Load `path` into a fresh `table` with ogr2ogr (COPY, GiST index), then ANALYZE it.

    Returns the seconds both took and the rows loaded.
    """
    params = conninfo_to_dict(url)
    password = str(params.pop("password", "") or "")
    target = " ".join(f"{key}={value}" for key, value in params.items())
    command = ["ogr2ogr", "-f", "PostgreSQL", f"PG:{target}", str(path), "-nln", table]
    command += ["-lco", "SPATIAL_INDEX=GIST", "--config", "PG_USE_COPY", "YES", "-overwrite"]
    if path.suffix == ".csv":
        command += ["-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat"]
        command += ["-oo", "KEEP_GEOM_COLUMNS=NO", "-oo", "AUTODETECT_TYPE=YES"]
        command += ["-a_srs", "EPSG:4326"]
    env = {**os.environ, "PGPASSWORD": password} if password else None
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"ogr2ogr failed on {path.name}:\n{done.stderr[-3000:]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        elapsed = time.perf_counter() - started
        found = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
    return elapsed, int(found[0]) if found else 0
