"""core_project (with its ordered layers) as the API reads and writes it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from api.schemas.common import Name, NotNull, PrimaryKey, ReadModel, UtcDateTime

Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


class Point(BaseModel):
    """A GeoJSON Point, as djangorestframework-gis renders a PointField (SRID 4326)."""

    type: Literal["Point"]
    coordinates: tuple[Longitude, Latitude]


def _point_from_pair(value: Any) -> Any:
    """A bare `[lon, lat]` pair is taken as the Point it names (earlier clients sent one)."""
    if isinstance(value, list | tuple):
        return {"type": "Point", "coordinates": value}
    return value


Center = Annotated[Point, BeforeValidator(_point_from_pair)]


class ProjectRead(ReadModel):
    """A project: its owner, its map view and its layers in order."""

    id: int
    name: str
    description: str | None
    owner: int
    is_public: bool
    center: Point | None
    zoom: float | None
    layers: list[int]
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ProjectCreate(BaseModel):
    """A new project (also the body of PUT); the owner is the signed-in user."""

    name: Name
    description: str | None = None
    is_public: bool = False
    center: Center | None = None
    zoom: Annotated[float, Field(allow_inf_nan=False)] | None = None
    layers: list[PrimaryKey] = Field(default_factory=list)


class ProjectUpdate(BaseModel):
    """PATCH: the fields given."""

    name: NotNull[Name] = None
    description: str | None = None
    is_public: NotNull[bool] = None
    center: Center | None = None
    zoom: Annotated[float, Field(allow_inf_nan=False)] | None = None
    layers: NotNull[list[PrimaryKey]] = None
