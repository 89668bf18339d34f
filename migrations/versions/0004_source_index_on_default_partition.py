"""core_geometry's source_id btree only on the DEFAULT partition, where it can help.

Why: since 0003 every source's rows have a partition of their own, chosen by
source_id: a query on one source reads only that partition (pruning), and a btree on
source_id inside it holds one key for every row. Each import still paid for building
it (one index in four; a tenth of a million-row load). Only the DEFAULT partition,
which holds rows of many sources (plain INSERTs for a source without a partition),
keeps a source_id index, of its own.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "core_geometry_parts"


def _adopted() -> bool:
    """A database adopted from Django (0001): its plain table waits for 0005 as it is."""
    found = op.get_bind().execute(sa.text("SELECT to_regclass('public.maps_django_adoption')"))
    return found.scalar() is not None


def upgrade() -> None:
    if _adopted():
        return
    op.execute("DROP INDEX public.ix_core_geometry_source_id")
    op.execute(
        f"CREATE INDEX ix_core_geometry_default_source_id ON {SCHEMA}.source_default (source_id)"
    )


def downgrade() -> None:
    if _adopted():
        return
    op.execute(f"DROP INDEX {SCHEMA}.ix_core_geometry_default_source_id")
    op.execute("CREATE INDEX ix_core_geometry_source_id ON public.core_geometry (source_id)")
