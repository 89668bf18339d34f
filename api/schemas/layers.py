"""core_layer as the API reads and writes it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import JsonObject, Name, NotNull, PrimaryKey, ReadModel, UtcDateTime

LayerType = Literal["vector", "raster"]


class LayerRead(ReadModel):
    """A layer with the URL template of its tiles."""

    id: int
    name: str
    description: str | None
    source: int
    layer_type: str
    style: JsonObject
    is_visible: bool
    tile_url: str
    created_at: UtcDateTime
    updated_at: UtcDateTime


class LayerCreate(BaseModel):
    """A new layer (also the body of PUT)."""

    name: Name
    description: str | None = None
    source: PrimaryKey
    layer_type: LayerType = "vector"
    style: JsonObject = Field(default_factory=dict)
    is_visible: bool = True


class LayerUpdate(BaseModel):
    """PATCH: the fields given."""

    name: NotNull[Name] = None
    description: str | None = None
    source: NotNull[PrimaryKey] = None
    layer_type: NotNull[LayerType] = None
    style: NotNull[JsonObject] = None
    is_visible: NotNull[bool] = None
