"""The Django-era tables (names as CONTRACT.md fixes them) and the ETL task table.

On a database that Django created (its `django_migrations` holds the `core` app's
migrations) this revision adopts instead of creating: every table, row and id stays,
and Django's own tables (auth_*, django_*, authtoken_token, allauth's) are left
untouched. It adds only what the new backend needs: `auth_user.is_verified` (a constant
default: no rewrite) and the `lower(email)` index for case-insensitive sign-in, the
`etl_task` table, database defaults where Django sets values in Python only (the new
backend's INSERTs rely on them), and ON DELETE CASCADE foreign keys beside Django's
deferred ones (Django cascades in Python; ours relies on the database). Emails that
clash case-insensitively are logged, not merged. `maps_django_adoption` records the
adoption and what was added, so that later revisions (0003-0005) and every downgrade
know; `alembic downgrade base` then removes exactly that, and Django runs as before.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import json
import logging
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
logger = logging.getLogger("alembic.runtime.migration")
MARKER = "public.maps_django_adoption"
# Database defaults the new backend's INSERTs rely on (Django sets these in Python).
_DEFAULTS = {
    "auth_user": {"date_joined": "now()"},
    "core_userprofile": {"organization": "''", "preferences": "'{}'::jsonb"},
    "core_source": {"attributes": "'{}'::jsonb", "created_at": "now()", "updated_at": "now()"},
    "core_layer": {
        "layer_type": "'vector'",
        "style": "'{}'::jsonb",
        "is_visible": "true",
        "created_at": "now()",
        "updated_at": "now()",
    },
    "core_project": {"is_public": "false", "created_at": "now()", "updated_at": "now()"},
    "core_project_layers": {"position": "0"},
}
# Cascading foreign keys beside Django's: (table, column, referenced table).
_CASCADES = (
    ("core_userprofile", "user_id", "auth_user"),
    ("core_layer", "source_id", "core_source"),
    ("core_project", "owner_id", "auth_user"),
    ("core_project_layers", "project_id", "core_project"),
    ("core_project_layers", "layer_id", "core_layer"),
)


def django_created() -> bool:
    """Whether Django made this database (its `core` app's migrations are recorded)."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT to_regclass('public.django_migrations')")).scalar() is None:
        return False
    return bool(
        bind.execute(
            sa.text("SELECT EXISTS (SELECT FROM django_migrations WHERE app = 'core')")
        ).scalar()
    )


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    if django_created():
        _adopt()
        _create_task_table()
        return
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
    _create_task_table()


def _create_task_table() -> None:
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


def _adopt() -> None:
    """Add to Django's tables only what the new backend needs; record it."""
    bind = op.get_bind()
    clashes = bind.execute(
        sa.text(
            "SELECT lower(email), array_agg(id ORDER BY id) FROM auth_user WHERE email <> ''"
            " GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1"
        )
    ).all()
    for email, ids in clashes:
        logger.warning(
            "adopting Django's auth_user: users %s share the email %s (case-insensitively);"
            " left as they are, sign-in by that email picks none until they are told apart",
            ids, email,
        )  # fmt: skip
    op.execute("ALTER TABLE auth_user ADD COLUMN is_verified boolean NOT NULL DEFAULT false")
    op.create_index("auth_user_email_lower", "auth_user", [sa.text("lower(email)")])
    defaults: list[list[str]] = []
    for table, columns in _DEFAULTS.items():
        for column, value in columns.items():
            current = bind.execute(
                sa.text(
                    "SELECT a.atthasdef FROM pg_attribute AS a"
                    " WHERE a.attrelid = CAST(:t AS regclass) AND a.attname = :c"
                ),
                {"t": table, "c": column},
            ).scalar()
            if current is False:
                op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET DEFAULT {value}')
                defaults.append([table, column])
    cascades = []
    for table, column, target in _CASCADES:
        name = f"{table}_{column}_cascade_fkey"
        op.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ("{column}")'
            f" REFERENCES {target} (id) ON DELETE CASCADE"
        )
        cascades.append([table, name])
    op.execute(
        f"CREATE TABLE {MARKER} (adopted_at timestamptz NOT NULL DEFAULT now(),"
        " added jsonb NOT NULL)"
    )
    added = {"defaults": defaults, "cascades": cascades, "email_clashes": len(clashes)}
    bind.execute(sa.text(f"INSERT INTO {MARKER} (added) VALUES (CAST(:a AS jsonb))"),
                 {"a": json.dumps(added)})  # fmt: skip


def _unadopt() -> None:
    """Remove what `_adopt` added, leaving Django's tables as Django made them."""
    bind = op.get_bind()
    added = bind.execute(sa.text(f"SELECT added FROM {MARKER}")).scalar_one()
    for table, name in added["cascades"]:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for table, column in added["defaults"]:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" DROP DEFAULT')
    op.drop_index("auth_user_email_lower", "auth_user")
    op.execute("ALTER TABLE auth_user DROP COLUMN is_verified")
    op.execute(f"DROP TABLE {MARKER}")


def downgrade() -> None:
    if op.get_bind().execute(sa.text(f"SELECT to_regclass('{MARKER}')")).scalar() is not None:
        op.drop_table("etl_task")
        _unadopt()
        return
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
