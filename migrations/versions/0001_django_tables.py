"""The Django-era tables (names as CONTRACT.md fixes them) and the ETL task table.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPTY_OBJECT = sa.text("'{}'::jsonb")
_NOW = sa.text("now()")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "auth_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("password", sa.String(128), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True)),
        sa.Column("is_superuser", sa.Boolean, nullable=False),
        sa.Column("username", sa.String(150), nullable=False, unique=True),
        sa.Column("first_name", sa.String(150), nullable=False),
        sa.Column("last_name", sa.String(150), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("is_staff", sa.Boolean, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("date_joined", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("is_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # Django never made email unique; sign-in is case-insensitive, so look-ups use lower(email).
    op.create_index("auth_user_email_lower", "auth_user", [sa.text("lower(email)")])
    op.create_table(
        "core_userprofile",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("auth_user.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("organization", sa.String(255), nullable=False, server_default=""),
        sa.Column("preferences", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
    )
    op.create_table(
        "core_source",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sid", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("source_type", sa.String(50), nullable=False),
        sa.Column("attributes", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
        *_timestamps(),
    )
    op.create_index("ix_core_source_sid", "core_source", ["sid"], unique=True)
    op.create_index("ix_core_source_name", "core_source", ["name"])
    op.create_index("ix_core_source_source_type", "core_source", ["source_type"])
    op.create_table(
        "core_geometry",
        sa.Column("gid", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=True),
        sa.Column("metadata", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("geometry_type", sa.String(50)),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("core_source.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("core_geometry_geom_id", "core_geometry", ["geom"], postgresql_using="gist")
    op.create_index("ix_core_geometry_geometry_type", "core_geometry", ["geometry_type"])
    op.create_index("ix_core_geometry_source_id", "core_geometry", ["source_id"])
    op.create_table(
        "core_layer",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("core_source.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("layer_type", sa.String(50), nullable=False, server_default="vector"),
        sa.Column("style", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("is_visible", sa.Boolean, nullable=False, server_default=sa.true()),
        *_timestamps(),
    )
    op.create_index("ix_core_layer_source_id", "core_layer", ["source_id"])
    op.create_table(
        "core_project",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column(
            "owner_id",
            sa.Integer,
            sa.ForeignKey("auth_user.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("center", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("zoom", sa.Float),
        *_timestamps(),
    )
    op.create_index("ix_core_project_owner_id", "core_project", ["owner_id"])
    op.create_table(
        "core_project_layers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("core_project.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "layer_id",
            sa.Integer,
            sa.ForeignKey("core_layer.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("project_id", "layer_id"),
    )
    op.create_index("ix_core_project_layers_project_id", "core_project_layers", ["project_id"])
    op.create_index("ix_core_project_layers_layer_id", "core_project_layers", ["layer_id"])
    op.create_table(
        "etl_task",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("auth_user.id", ondelete="SET NULL")),
        sa.Column("state", sa.String(20), nullable=False, server_default="queued"),
        sa.Column("step", sa.String(20)),
        sa.Column("params", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("progress", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("timings", JSONB, nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("warnings", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("result", JSONB),
        sa.Column("error", JSONB),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed')", name="etl_task_state_check"
        ),
    )
    op.create_index("ix_etl_task_owner_id", "etl_task", ["owner_id"])
    op.create_index("ix_etl_task_state", "etl_task", ["state"])


def downgrade() -> None:
    for table in (
        "etl_task",
        "core_project_layers",
        "core_project",
        "core_layer",
        "core_geometry",
        "core_source",
        "core_userprofile",
        "auth_user",
    ):
        op.drop_table(table)
