"""Adopting a Django database: `alembic upgrade` of Django's filled core_geometry, against
PostgreSQL's own floor for touching those rows (a plain `CREATE TABLE AS` of them).

Django's `migrate` makes the database (tests/legacy), SQL fills it (no Python per row),
then revision 0005's in-place conversion is timed alone (`upgrade 0004` first: 0001-0004
only add columns, defaults and small tables) and the whole `upgrade head` once more on a
fresh copy is not needed: 0001-0004 cost milliseconds whatever the row count.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import psycopg
from alembic import command
from alembic.config import Config

from benchmarks.common import Section
from core.settings import REPO_ROOT

_FILL = """
INSERT INTO core_geometry (geom, metadata, geometry_type, source_id)
SELECT CASE i % 2 WHEN 0 THEN ST_SetSRID(ST_MakePoint(x, y), 4326)
                  ELSE ST_MakeEnvelope(x, y, x + 0.01, y + 0.01, 4326) END,
    jsonb_build_object('n', i, 'name', 'feature ' || i),
    CASE i % 2 WHEN 0 THEN 'Point' ELSE 'Polygon' END,
    (%(sources)s::int[])[1 + i % 10]
FROM generate_series(1::bigint, %(n)s) AS i,
LATERAL (SELECT -179.0 + ((i * 7919) % 35800) / 100.0 AS x,
                -89.0 + ((i * 104729) % 17800) / 100.0 AS y) AS t
""".replace(" % ", " %% ")


def _alembic(url: str, revision: str) -> float:
    """`alembic upgrade revision` in this process (its modules already imported: the
    time is the migration's, not Python's start-up)."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.cmd_opts = argparse.Namespace(x=[f"url={url}"])
    config.attributes["configure_logger"] = False
    command.current(config)  # imports env.py and the revisions before the clock starts
    started = time.perf_counter()
    command.upgrade(config, revision)
    return time.perf_counter() - started


def run(server_url: str, *, rows: int, repeat: int = 1) -> Section:
    """Time the adoption of `rows` Django rows, and CREATE TABLE AS of the same rows."""
    from tests.legacy.database import create_database, fill

    section = Section(
        key="adoption",
        title=f"Adopting a Django database ({rows:,} rows in core_geometry)",
        columns=["what", "seconds", "vs CREATE TABLE AS"],
    )
    adoptions, floors, upgrades = [], [], []
    for _ in range(repeat):
        url = create_database(server_url, "maps_bench_adoption")
        data = fill(url, sources=10, geometries=0)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_FILL, {"sources": data.source_ids, "n": rows})
            conn.execute("VACUUM ANALYZE core_geometry")
            started = time.perf_counter()
            conn.execute("CREATE TABLE floor_copy AS SELECT * FROM core_geometry")
            floors.append(time.perf_counter() - started)
            conn.execute("DROP TABLE floor_copy")
        upgrades.append(_alembic(url, "0004"))
        adoptions.append(_alembic(url, "head"))
    floor, adoption = statistics.median(floors), statistics.median(adoptions)
    section.add(["CREATE TABLE AS (the floor)", f"{floor:.2f}", "1.00x"], seconds=floor)
    section.add(
        ["alembic upgrade 0004 -> head (0005: the table becomes part_0)", f"{adoption:.2f}",
         f"{adoption / floor:.2f}x"],
        seconds=adoption, ratio=adoption / floor,
    )  # fmt: skip
    before = statistics.median(upgrades)
    section.add(["alembic upgrade base -> 0004 (columns, defaults, etl_task)", f"{before:.2f}",
                 f"{before / floor:.2f}x"], seconds=before)  # fmt: skip
    section.notes.append(
        "0005 reads the rows twice (the CHECK, the cascading foreign key) and builds one"
        " btree (gid, part); it writes no row. Alembic runs in-process (its start-up"
        " is not counted)."
    )
    return section


if __name__ == "__main__":
    from rich.console import Console

    from benchmarks import report
    from core.settings import DatabaseSettings

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    report.print_section(Console(), run(DatabaseSettings().libpq_url, rows=count))
