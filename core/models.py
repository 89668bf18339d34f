"""SQLAlchemy models of the Django-era tables (names fixed by CONTRACT.md) and the task table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from geoalchemy2 import Geometry as GeometryType
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# core_geometry.gid's sequence (a serial's, named as PostgreSQL named it in 0001).
GID_SEQUENCE = Sequence("core_geometry_gid_seq")
SOURCE_TYPES = ("shapefile", "csv", "geojson", "raster", "analysis")
TASK_STATES = ("queued", "running", "succeeded", "failed")


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def _json_default() -> Mapped[dict[str, Any]]:
    return mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"), default=dict)


class User(Base):
    """Django's `auth_user`, as FastAPI-Users sees it (the hash lives in `password`)."""

    __tablename__ = "auth_user"
    __table_args__ = (Index("auth_user_email_lower", func.lower(text("email"))),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hashed_password: Mapped[str] = mapped_column("password", String(128), nullable=False)
    last_login: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_superuser: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    first_name: Mapped[str] = mapped_column(String(150), nullable=False, default="")
    last_name: Mapped[str] = mapped_column(String(150), nullable=False, default="")
    email: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    is_staff: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    date_joined: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    # Added for FastAPI-Users; Django ignores it.
    is_verified: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )

    profile: Mapped[UserProfile | None] = relationship(back_populates="user", uselist=False)


class UserProfile(Base):
    """`core_userprofile`: one per user."""

    __tablename__ = "core_userprofile"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    organization: Mapped[str] = mapped_column(
        String(255), nullable=False, default="", server_default=""
    )
    preferences: Mapped[dict[str, Any]] = _json_default()

    user: Mapped[User] = relationship(back_populates="profile")


class Source(Base):
    """`core_source`: an imported dataset."""

    __tablename__ = "core_source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[str] = mapped_column(String(255), unique=True, index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(String(50), index=True, nullable=False)
    attributes: Mapped[dict[str, Any]] = _json_default()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Geometry(Base):
    """`core_geometry`: one feature of a source.

    LIST-partitioned by `part`, a storage number (migration 0005, schema
    `core_geometry_parts`): each load attaches a fresh part, compaction merges small
    ones, and plain INSERTs land in `part_0`; so the primary key is `(gid, part)`, and
    `gid` comes from its own sequence and stays unique by itself. A part's CHECK stands
    in for an index on `source_id` (part_0 and merged parts have one of their own).
    """

    __tablename__ = "core_geometry"
    __table_args__ = (
        Index("core_geometry_geom_id", "geom", postgresql_using="gist"),
        {"postgresql_partition_by": "LIST (part)"},
    )

    gid: Mapped[int] = mapped_column(BigInteger, GID_SEQUENCE, primary_key=True, autoincrement=True)
    # Nullable so that features without a geometry (null shapes) are kept, as GDAL keeps them.
    geom: Mapped[Any] = mapped_column(
        GeometryType("GEOMETRY", srid=4326, spatial_index=False), nullable=True
    )
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb"), default=dict
    )
    geometry_type: Mapped[str | None] = mapped_column(String(50), index=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("core_source.id", ondelete="CASCADE"), nullable=False
    )
    # Storage only (which partition holds the row): 0 unless a load or compaction set it.
    part: Mapped[int] = mapped_column(
        Integer, primary_key=True, nullable=False, default=0, server_default=text("0")
    )


class Layer(Base):
    """`core_layer`: a styled view of a source."""

    __tablename__ = "core_layer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("core_source.id", ondelete="CASCADE"), index=True, nullable=False
    )
    layer_type: Mapped[str] = mapped_column(String(50), nullable=False, default="vector")
    style: Mapped[dict[str, Any]] = _json_default()
    is_visible: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=text("true")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Project(Base):
    """`core_project`: an owner's map of ordered layers."""

    __tablename__ = "core_project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), index=True, nullable=False
    )
    is_public: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    center: Mapped[Any] = mapped_column(
        GeometryType("POINT", srid=4326, spatial_index=False), nullable=True
    )
    zoom: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ProjectLayer(Base):
    """`core_project_layers`: a layer's place in a project."""

    __tablename__ = "core_project_layers"
    __table_args__ = (UniqueConstraint("project_id", "layer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("core_project.id", ondelete="CASCADE"), index=True, nullable=False
    )
    layer_id: Mapped[int] = mapped_column(
        ForeignKey("core_layer.id", ondelete="CASCADE"), index=True, nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Task(Base):
    """`etl_task`: one import or analysis, its state, step, progress and outcome."""

    __tablename__ = "etl_task"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("auth_user.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="queued", index=True)
    step: Mapped[str | None] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = _json_default()
    progress: Mapped[dict[str, Any]] = _json_default()
    timings: Mapped[dict[str, Any]] = _json_default()
    warnings: Mapped[list[Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb"), default=list
    )
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
