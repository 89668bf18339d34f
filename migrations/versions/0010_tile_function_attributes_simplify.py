"""The tile function simplifies lines and polygons per zoom and plans for one partition.

Why: 0002's function sent every vertex at every zoom, and PL/pgSQL's cached generic
plan of `source_id = $1` scans every source's partition; `SET plan_cache_mode =
force_custom_plan` lets the planner keep only the partition of the source asked for.
The new definition is migrations/sql/core_geometry_by_source.sql; downgrade restores
0002's (core_geometry_by_source_0002.sql).

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQL = Path(__file__).resolve().parent.parent / "sql"


def upgrade() -> None:
    op.execute((_SQL / "core_geometry_by_source.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    # CREATE OR REPLACE keeps the SET clause of the replaced function: drop it first.
    op.execute(
        "DROP FUNCTION IF EXISTS public.core_geometry_by_source(integer, integer, integer, json)"
    )
    op.execute((_SQL / "core_geometry_by_source_0002.sql").read_text(encoding="utf-8"))
