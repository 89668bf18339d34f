"""core_geometry LIST-partitioned by source_id: one partition per source.

Why: a GIST index is maintained row by row on insert, so loading into one ever-growing
table slows down as it grows (300K points took 3.3 s). With a partition per source, an
import COPYs into a fresh table without indexes, builds its indexes once, analyzes it
and attaches it: the cost depends on the import's size, not on what is already there.

Layout after this revision:
- `core_geometry` is the partitioned parent, `PARTITION BY LIST (source_id)`; every
  contract column keeps its name and type. Its primary key is `(gid, source_id)`
  (a partitioned table's unique keys must hold the partition key); `gid` still comes
  from `core_geometry_gid_seq`, so it stays unique on its own.
- Partitions live in the schema `core_geometry_parts` (out of `public`, so neither
  Martin's table discovery nor Alembic's comparison sees one table per source):
  `source_<id>` per source, and `source_default` (the DEFAULT partition) for rows
  written by plain INSERTs (the REST API, the Django era) for a source that has no
  partition of its own.
- Deleting a source deletes its rows through the foreign key's ON DELETE CASCADE, as
  before (a trigger dropping the partition instead would take an ACCESS EXCLUSIVE lock
  on core_geometry inside the REST API's transaction, and could deadlock with a load);
  the emptied partition stays attached until a re-import of that id replaces it.

Upgrade moves the existing rows into one partition per source (gids kept); downgrade
puts every row back into one plain table with the 0001 definition.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "core_geometry_parts"
_COLUMNS = "gid, geom, metadata, geometry_type, source_id"


def _create_parent() -> None:
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
    op.execute("CREATE INDEX core_geometry_geom_id ON public.core_geometry USING gist (geom)")
    op.execute(
        "CREATE INDEX ix_core_geometry_geometry_type ON public.core_geometry (geometry_type)"
    )
    op.execute("CREATE INDEX ix_core_geometry_source_id ON public.core_geometry (source_id)")
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY public.core_geometry.gid")
    op.execute(f"CREATE TABLE {SCHEMA}.source_default PARTITION OF public.core_geometry DEFAULT")


def _adopted() -> bool:
    """A database adopted from Django (0001): its plain table waits for 0005 as it is."""
    found = op.get_bind().execute(sa.text("SELECT to_regclass('public.maps_django_adoption')"))
    return found.scalar() is not None


def upgrade() -> None:
    if _adopted():
        return
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    # The plain table steps aside (its index and constraint names are the parent's now).
    op.execute("ALTER TABLE public.core_geometry RENAME TO core_geometry_0001")
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY NONE")
    for old in (
        "core_geometry_pkey",
        "core_geometry_geom_id",
        "ix_core_geometry_geometry_type",
        "ix_core_geometry_source_id",
    ):
        op.execute(f"ALTER INDEX public.{old} RENAME TO {old}_0001")
    op.execute(
        "ALTER TABLE public.core_geometry_0001 RENAME CONSTRAINT "
        "core_geometry_source_id_fkey TO core_geometry_source_id_fkey_0001"
    )
    _create_parent()

    bind = op.get_bind()
    sources = bind.execute(
        sa.text("SELECT DISTINCT source_id FROM public.core_geometry_0001 ORDER BY source_id")
    ).scalars()
    for source_id in list(sources):
        part = f"{SCHEMA}.source_{int(source_id)}"
        # Filled while standalone, then attached: the CHECK lets ATTACH skip its
        # validation scan, and ATTACH builds the partition's copies of the indexes.
        op.execute(
            f"CREATE TABLE {part} (LIKE public.core_geometry INCLUDING DEFAULTS, "
            f"CONSTRAINT source_{int(source_id)}_source_check CHECK (source_id = {int(source_id)}))"
        )
        op.execute(
            f"INSERT INTO {part} ({_COLUMNS}) SELECT {_COLUMNS} FROM public.core_geometry_0001 "
            f"WHERE source_id = {int(source_id)} ORDER BY gid"
        )
        op.execute(
            f"ALTER TABLE public.core_geometry ATTACH PARTITION {part} "
            f"FOR VALUES IN ({int(source_id)})"
        )
        op.execute(f"ANALYZE {part}")
    op.execute("DROP TABLE public.core_geometry_0001")


def downgrade() -> None:
    if _adopted():
        return
    op.execute("ALTER TABLE public.core_geometry RENAME TO core_geometry_0003")
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY NONE")
    for name in (
        "core_geometry_pkey",
        "core_geometry_geom_id",
        "ix_core_geometry_geometry_type",
        "ix_core_geometry_source_id",
    ):
        op.execute(f"ALTER INDEX public.{name} RENAME TO {name}_0003")
    op.execute(
        "ALTER TABLE public.core_geometry_0003 RENAME CONSTRAINT "
        "core_geometry_source_id_fkey TO core_geometry_source_id_fkey_0003"
    )
    # The 0001 definition, rows copied back with their gids.
    op.execute(
        """
        CREATE TABLE public.core_geometry (
            gid bigint NOT NULL DEFAULT nextval('public.core_geometry_gid_seq'::regclass),
            geom geometry(Geometry, 4326),
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            geometry_type varchar(50),
            source_id integer NOT NULL,
            CONSTRAINT core_geometry_pkey PRIMARY KEY (gid),
            CONSTRAINT core_geometry_source_id_fkey FOREIGN KEY (source_id)
                REFERENCES public.core_source (id) ON DELETE CASCADE
        )
        """
    )
    op.execute("ALTER SEQUENCE public.core_geometry_gid_seq OWNED BY public.core_geometry.gid")
    op.execute(
        f"INSERT INTO public.core_geometry ({_COLUMNS}) "
        f"SELECT {_COLUMNS} FROM public.core_geometry_0003 ORDER BY gid"
    )
    op.execute("CREATE INDEX core_geometry_geom_id ON public.core_geometry USING gist (geom)")
    op.execute(
        "CREATE INDEX ix_core_geometry_geometry_type ON public.core_geometry (geometry_type)"
    )
    op.execute("CREATE INDEX ix_core_geometry_source_id ON public.core_geometry (source_id)")
    op.execute("DROP TABLE public.core_geometry_0003")  # its partitions go with it
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
