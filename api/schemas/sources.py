"""core_source as the API reads and writes it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import JsonObject, Name, NotNull, ReadModel, UtcDateTime

SourceType = Literal["shapefile", "csv", "geojson", "raster", "analysis"]
Sid = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class SourceRead(ReadModel):
    """A source with its computed feature count and extent."""

    id: int
    sid: str
    name: str
    description: str | None
    source_type: str
    attributes: JsonObject
    feature_count: int
    bbox: list[float] | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class SourceCreate(BaseModel):
    """A new source (also the body of PUT); `sid` is generated when not given."""

    sid: Sid | None = None
    name: Name
    description: str | None = None
    source_type: SourceType
    attributes: JsonObject = Field(default_factory=dict)


class SourceUpdate(BaseModel):
    """PATCH: the fields given."""

    sid: NotNull[Sid] = None
    name: NotNull[Name] = None
    description: str | None = None
    source_type: NotNull[SourceType] = None
    attributes: NotNull[JsonObject] = None
