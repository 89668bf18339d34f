"""core_geometry LIST-partitioned by a storage number `part`, not by source.

Why: one partition per source (0003) made every query over all of core_geometry lock
every partition and each of its indexes; with about 3,000 sources that overflows the
lock table ("out of shared memory", max_locks_per_transaction). And the DEFAULT
partition made every ATTACH scan it, so each import paid for the rows in it.

Layout after this revision (pipeline/steps/partitions.py tells how loads use it):
- `core_geometry` gains `part integer NOT NULL DEFAULT 0` and is `PARTITION BY LIST
  (part)`; its primary key is `(gid, part)` (gid still unique by itself: one sequence).
- Partitions live in schema `core_geometry_parts`. `part_0` is an ordinary partition
  `FOR VALUES IN (0)` (no DEFAULT partition, so ATTACH never scans it) for plain
  INSERTs and adopted Django rows, with a `source_id` btree of its own. Every load
  attaches a fresh part (`core_geometry_part_seq`); the background compaction merges
  small parts (`FOR VALUES IN (p1, ..., pk)`) and drops the parts of deleted sources.
- `core_geometry_parts.catalog` records each part (not part_0): bound values, sources,
  rows.

From the 0004 layout the conversion is in place: each source's partition is detached,
given the `part` column (a constant default: no rewrite), a CHECK proving its new
bound (one read of its rows) and a `(gid, part)` key, and attached as a part of its
own; `source_default` becomes `part_0`. No row is copied.

On a database adopted from Django (revision 0001 recorded it in
`maps_django_adoption`; 0003 and 0004 did nothing) Django's plain `core_geometry`
becomes `part_0` in place: moved to the parts schema, given the `part` column (constant
default, no rewrite), `CHECK (part = 0)` (one sequential read) and a `UNIQUE (gid, part)`
constraint (one btree build) that stands for the parent's key, while Django's own
primary key, indexes and foreign key stay as they are. The new parent takes its column
types from Django's table (`LIKE`), so `gid` keeps Django's type and sequence. ATTACH
adopts Django's GIST index and validates the cascading foreign key the new backend
relies on (one more read). That is every cost there is: two reads and one index build
over the rows, no row written (benchmarks/adoption.py compares it with a plain
`CREATE TABLE AS` of the same rows).

Downgrade: to the 0004 layout (one partition per source, rows copied), or on an
adopted database back to Django's plain table: the rows of later imports are copied
into part_0 (gids kept), which is detached, stripped of what this revision added and
moved back to `public.core_geometry`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "core_geometry_parts"
CATALOG = f"{SCHEMA}.catalog"
PART_SEQUENCE = "public.core_geometry_part_seq"
_COLUMNS = "gid, geom, metadata, geometry_type, source_id"


def _adopted() -> bool:
    return bool(
        op.get_bind()
        .execute(sa.text("SELECT to_regclass('public.maps_django_adoption') IS NOT NULL"))
        .scalar()
    )


def _scalars(query: str, **params: object) -> list[object]:
    return list(op.get_bind().execute(sa.text(query), params).scalars())


def _common() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    # Not OWNED BY core_geometry.part: a TRUNCATE ... RESTART IDENTITY would restart it
    # while parts with those numbers exist (every number must stay new).
    op.execute(f"CREATE SEQUENCE {PART_SEQUENCE} START 1")
    op.execute(
        f"""
        CREATE TABLE {CATALOG} (
            name text PRIMARY KEY,
            parts integer[] NOT NULL,
            sources integer[] NOT NULL,
            rows bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def _parent_indexes() -> None:
    op.execute("CREATE INDEX core_geometry_geom_id ON public.core_geometry USING gist (geom)")
    op.execute(
        "CREATE INDEX ix_core_geometry_geometry_type ON public.core_geometry (geometry_type)"
    )


def upgrade() -> None:
    _common()
    if _adopted():
        _adopt_django_table()
        return
    op.execute("ALTER TABLE public.core_geometry RENAME TO core_geometry_0004")
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY NONE")
    for old in ("core_geometry_pkey", "core_geometry_geom_id", "ix_core_geometry_geometry_type"):
        op.execute(f"ALTER INDEX public.{old} RENAME TO {old}_0004")
    op.execute(
        "ALTER TABLE public.core_geometry_0004 RENAME CONSTRAINT "
        "core_geometry_source_id_fkey TO core_geometry_source_id_fkey_0004"
    )
    op.execute(
        """
        CREATE TABLE public.core_geometry (
            gid bigint NOT NULL DEFAULT nextval('public.core_geometry_gid_seq'::regclass),
            geom geometry(Geometry, 4326),
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            geometry_type varchar(50),
            source_id integer NOT NULL,
            part integer NOT NULL DEFAULT 0,
            CONSTRAINT core_geometry_pkey PRIMARY KEY (gid, part),
            CONSTRAINT core_geometry_source_id_fkey FOREIGN KEY (source_id)
                REFERENCES public.core_source (id) ON DELETE CASCADE
        ) PARTITION BY LIST (part)
        """
    )
    _parent_indexes()
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY public.core_geometry.gid")
    old_parts = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i"
                " JOIN pg_class AS c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'public.core_geometry_0004'::regclass ORDER BY c.relname"
            )
        )
        .all()
    )
    for relname, bound in old_parts:
        _convert_partition(str(relname), str(bound))
    op.execute("DROP TABLE public.core_geometry_0004")


def _convert_partition(relname: str, bound: str) -> None:
    """One 0004 partition (a source's, or the default) made a part, in place."""
    table = f"{SCHEMA}.{relname}"
    op.execute(f"ALTER TABLE public.core_geometry_0004 DETACH PARTITION {table}")
    source_id = None if bound == "DEFAULT" else int(bound.removeprefix("FOR VALUES IN (")[:-1])
    part = 0 if source_id is None else int(_scalars(f"SELECT nextval('{PART_SEQUENCE}')")[0])
    name = f"part_{part}"
    # A constant default: a catalog change, no rewrite.
    op.execute(f"ALTER TABLE {table} ADD COLUMN part integer NOT NULL DEFAULT {part}")
    check = f"part = {part}" if source_id is None else f"source_id = {source_id} AND part = {part}"
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name}_part_check CHECK ({check})")
    (key,) = _scalars(
        "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'",
        t=table,
    )
    op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{key}"')
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name}_pkey PRIMARY KEY (gid, part)")
    op.execute(f"ALTER TABLE {table} RENAME TO {name}")
    op.execute(
        f"ALTER TABLE public.core_geometry ATTACH PARTITION {SCHEMA}.{name} FOR VALUES IN ({part})"
    )
    if source_id is None:
        op.execute(
            f"ALTER INDEX {SCHEMA}.ix_core_geometry_default_source_id"
            " RENAME TO ix_core_geometry_part_0_source_id"
        )
        return
    op.execute(
        f"INSERT INTO {CATALOG} (name, parts, sources, rows)"
        f" SELECT '{name}', ARRAY[{part}], ARRAY[{source_id}], count(*) FROM {SCHEMA}.{name}"
    )


def _adopt_django_table() -> None:
    """Django's plain core_geometry becomes part_0 of the new parent, in place."""
    op.execute(f"ALTER TABLE public.core_geometry SET SCHEMA {SCHEMA}")
    op.execute(f"ALTER TABLE {SCHEMA}.core_geometry RENAME TO part_0")
    part_0 = f"{SCHEMA}.part_0"
    # Django's identity sequence moved with its table (and moves back on downgrade).
    (sequence,) = _scalars(f"SELECT pg_get_serial_sequence('{part_0}', 'gid')")
    op.execute(f"ALTER TABLE {part_0} ADD COLUMN part integer NOT NULL DEFAULT 0")
    op.execute(f"ALTER TABLE {part_0} ADD CONSTRAINT part_0_part_check CHECK (part = 0)")
    # Stands for the parent's (gid, part) key; Django's own primary key (gid) stays.
    op.execute(f"ALTER TABLE {part_0} ADD CONSTRAINT part_0_gid_part_key UNIQUE (gid, part)")
    op.execute(
        f"CREATE TABLE public.core_geometry (LIKE {part_0} INCLUDING DEFAULTS)"
        " PARTITION BY LIST (part)"
    )
    op.execute(
        f"ALTER TABLE public.core_geometry ALTER COLUMN gid SET DEFAULT nextval('{sequence}')"
    )
    metadata_type = _scalars(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'public.core_geometry'::regclass AND attname = 'metadata'"
    )
    if metadata_type and metadata_type[0] in ("jsonb", "json"):
        op.execute(
            "ALTER TABLE public.core_geometry ALTER COLUMN metadata"
            f" SET DEFAULT '{{}}'::{metadata_type[0]}"
        )
    op.execute(
        "ALTER TABLE public.core_geometry ADD CONSTRAINT core_geometry_pkey PRIMARY KEY (gid, part)"
    )
    op.execute(
        "ALTER TABLE public.core_geometry ADD CONSTRAINT core_geometry_source_id_fkey"
        " FOREIGN KEY (source_id) REFERENCES public.core_source (id) ON DELETE CASCADE"
    )
    _parent_indexes()
    op.execute(f"ALTER TABLE public.core_geometry ATTACH PARTITION {part_0} FOR VALUES IN (0)")
    op.execute(f"ANALYZE {part_0}")


def downgrade() -> None:
    if _adopted():
        _restore_django_table()
    else:
        _back_to_one_partition_per_source()
    op.execute(f"DROP TABLE IF EXISTS {CATALOG}")


def _restore_django_table() -> None:
    part_0 = f"{SCHEMA}.part_0"
    columns = ", ".join(
        f'"{name}"'
        for name in _scalars(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'public.core_geometry'::regclass"
            " AND attnum > 0 AND NOT attisdropped AND attname <> 'part' ORDER BY attnum"
        )
    )
    # Rows imported since the adoption go into Django's table, their gids kept. Django's
    # deferred foreign key is checked at once: pending checks would forbid the ALTERs.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.execute(
        f"INSERT INTO {part_0} ({columns}) SELECT {columns} FROM public.core_geometry"
        " WHERE part <> 0 ORDER BY gid"
    )
    cloned = _scalars(
        "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"
        " AND contype = 'f' AND conparentid <> 0",
        t=part_0,
    )
    op.execute(f"ALTER TABLE public.core_geometry DETACH PARTITION {part_0}")
    op.execute("DROP TABLE public.core_geometry")  # the other parts go with it
    for name in [*cloned, "part_0_gid_part_key", "part_0_part_check"]:
        op.execute(f'ALTER TABLE {part_0} DROP CONSTRAINT "{name}"')
    op.execute(f"ALTER TABLE {part_0} DROP COLUMN part")
    op.execute(f"ALTER TABLE {part_0} RENAME TO core_geometry")
    op.execute(f"ALTER TABLE {SCHEMA}.core_geometry SET SCHEMA public")
    op.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    op.execute(f"DROP SEQUENCE IF EXISTS {PART_SEQUENCE}")


def _back_to_one_partition_per_source() -> None:
    op.execute("ALTER TABLE public.core_geometry RENAME TO core_geometry_0005")
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY NONE")
    for name in ("core_geometry_pkey", "core_geometry_geom_id", "ix_core_geometry_geometry_type"):
        op.execute(f"ALTER INDEX public.{name} RENAME TO {name}_0005")
    op.execute(
        "ALTER TABLE public.core_geometry_0005 RENAME CONSTRAINT "
        "core_geometry_source_id_fkey TO core_geometry_source_id_fkey_0005"
    )
    # The 0003 parent and 0004's indexes.
    op.execute(
        """
        CREATE TABLE public.core_geometry (
            gid bigint NOT NULL DEFAULT nextval('public.core_geometry_gid_seq'::regclass),
            geom geometry(Geometry, 4326),
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            geometry_type varchar(50),
            source_id integer NOT NULL,
            CONSTRAINT core_geometry_pkey PRIMARY KEY (gid, source_id),
            CONSTRAINT core_geometry_source_id_fkey FOREIGN KEY (source_id)
                REFERENCES public.core_source (id) ON DELETE CASCADE
        ) PARTITION BY LIST (source_id)
        """
    )
    _parent_indexes()
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY public.core_geometry.gid")
    op.execute(f"CREATE TABLE {SCHEMA}.source_default PARTITION OF public.core_geometry DEFAULT")
    op.execute(
        f"CREATE INDEX ix_core_geometry_default_source_id ON {SCHEMA}.source_default (source_id)"
    )
    sources = _scalars("SELECT DISTINCT source_id FROM public.core_geometry_0005 ORDER BY 1")
    for value in sources:
        source_id = int(str(value))
        table = f"{SCHEMA}.source_{source_id}"
        op.execute(
            f"CREATE TABLE {table} (LIKE public.core_geometry INCLUDING DEFAULTS, "
            f"CONSTRAINT source_{source_id}_source_check CHECK (source_id = {source_id}))"
        )
        op.execute(
            f"INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM public.core_geometry_0005"
            f" WHERE source_id = {source_id} ORDER BY gid"
        )
        op.execute(
            f"ALTER TABLE public.core_geometry ATTACH PARTITION {table} FOR VALUES IN ({source_id})"
        )
    op.execute("DROP TABLE public.core_geometry_0005")  # its parts go with it
    op.execute(f"DROP SEQUENCE IF EXISTS {PART_SEQUENCE}")
