"""Layers: CRUD; each layer's tiles are its source's, at the REST API's tile routes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import Page, PageQuery
from api.schemas.layers import LayerRead
from api.services.listing import order, page_of, search
from core.errors import InvalidInput, NotFound
from core.models import Layer, Source

ORDERING = {
    "id": Layer.id,
    "name": Layer.name,
    "source": Layer.source_id,
    "layer_type": Layer.layer_type,
    "is_visible": Layer.is_visible,
    "created_at": Layer.created_at,
    "updated_at": Layer.updated_at,
}


# Where the REST API serves a source's TileJSON (api/routes/tiles.py), for signed-in users.
TILES_PATH = "/api/v1/tiles"


def tile_url(*, source_id: int) -> str:
    """The TileJSON of a layer's vector tiles (relative to the API's root: the same host)."""
    return f"{TILES_PATH}/{source_id}.json"


# A raster layer's tiles: the API's own route, which fetches them from TiTiler behind the
# bearer token (api/routes/raster_tiles.py).
RASTER_TILE_PATH = "/api/v1/tiles/raster/{source_id}/{{z}}/{{x}}/{{y}}.png"


def _read(layer: Layer) -> LayerRead:
    return LayerRead(
        id=layer.id,
        name=layer.name,
        description=layer.description,
        source=layer.source_id,
        layer_type=layer.layer_type,
        style=layer.style,
        is_visible=layer.is_visible,
        tile_url=(
            RASTER_TILE_PATH.format(source_id=layer.source_id)
            if layer.layer_type == "raster"
            else tile_url(source_id=layer.source_id)
        ),
        created_at=layer.created_at,
        updated_at=layer.updated_at,
    )


async def list_layers(
    *,
    session: AsyncSession,
    pages: PageQuery,
    term: str | None,
    ordering: str | None,
) -> Page[LayerRead]:
    """One page of layers, searched and ordered."""
    stmt: Select[tuple[Layer]] = select(Layer)
    stmt = search(stmt, term, [Layer.name, Layer.description])
    stmt = order(stmt, ordering, ORDERING, tiebreak=Layer.id)
    rows, count, page = await page_of(session=session, stmt=stmt, pages=pages)
    results = [_read(row[0]) for row in rows]
    return Page(count=count, next=page.next, previous=page.previous, results=results)


async def _get(*, session: AsyncSession, layer_id: int) -> Layer:
    layer = await session.get(Layer, layer_id)
    if layer is None:
        raise NotFound()
    return layer


async def get_layer(*, session: AsyncSession, layer_id: int) -> LayerRead:
    """One layer."""
    return _read(await _get(session=session, layer_id=layer_id))


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """API field names to model attributes (`source` is the source's id)."""
    columns = dict(fields)
    if "source" in columns:
        columns["source_id"] = columns.pop("source")
    return columns


async def _check_source(*, session: AsyncSession, fields: dict[str, Any]) -> None:
    source_id = fields.get("source")
    if source_id is not None and await session.get(Source, source_id) is None:
        raise InvalidInput(f'Invalid pk "{source_id}" - object does not exist.', field="source")


async def _save(*, session: AsyncSession, layer: Layer) -> LayerRead:
    await session.commit()
    await session.refresh(layer)
    return _read(layer)


async def create_layer(*, session: AsyncSession, fields: dict[str, Any]) -> LayerRead:
    """Insert a layer over an existing source."""
    await _check_source(session=session, fields=fields)
    layer = Layer(**_columns(fields))
    session.add(layer)
    return await _save(session=session, layer=layer)


async def update_layer(
    *, session: AsyncSession, layer_id: int, changes: dict[str, Any]
) -> LayerRead:
    """Change the fields given."""
    layer = await _get(session=session, layer_id=layer_id)
    await _check_source(session=session, fields=changes)
    for field, value in _columns(changes).items():
        setattr(layer, field, value)
    return await _save(session=session, layer=layer)


async def delete_layer(*, session: AsyncSession, layer_id: int) -> None:
    """Delete a layer (it leaves the projects that showed it)."""
    result = await session.execute(delete(Layer).where(Layer.id == layer_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound()
    await session.commit()
