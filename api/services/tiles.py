"""Vector tiles: which sources a user may see, Martin's tiles passed through, the TileJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.sources import SourceRead
from api.services.sources import get_source
from api.settings import ApiSettings
from core.errors import DomainError, InvalidInput, NotFound
from core.models import Source, User

# Martin's function source serving one source's features from the shared core_geometry.
TILE_FUNCTION = "core_geometry_by_source"
# The layer name inside every tile (ST_AsMVT's name in core_geometry_by_source.sql).
TILE_LAYER = "core_geometry"
MAX_ZOOM = 22
# Martin's headers that a client may use, passed back as they are.
_PASSED_HEADERS = ("content-type", "content-encoding", "content-length", "etag")


class TileServerUnavailable(DomainError):
    """The tile server is not available: try again later."""

    code = "tile_server_unavailable"


def open_tile_client(settings: ApiSettings) -> httpx.AsyncClient:
    """The pooled client to Martin that the app's lifespan opens and closes."""
    limits = httpx.Limits(
        max_connections=settings.martin_max_connections,
        max_keepalive_connections=settings.martin_max_connections,
    )
    return httpx.AsyncClient(
        base_url=settings.martin_url.rstrip("/"),
        limits=limits,
        timeout=httpx.Timeout(settings.martin_timeout_seconds, connect=2.0),
    )


async def visible_source_id(*, session: AsyncSession, user: User | None, source: str) -> int:
    """The id of a source the user may see (by id or sid), or NotFound.

    The one place that decides who sees which source: CONTRACT.md shares every source
    with every signed-in user (`user` is None for a tile token's holder, whose token
    was issued to a signed-in user for this very source).
    """
    if source.isdigit():
        if len(source) > 9:  # beyond core_source.id's integer range: no such source
            raise NotFound()
        query = select(Source.id).where(Source.id == int(source))
    else:
        query = select(Source.id).where(Source.sid == source)
    found = await session.scalar(query)
    if found is None:
        raise NotFound()
    return found


def check_tile(*, z: int, x: int, y: int) -> None:
    """Refuse coordinates outside the tile pyramid."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"Zoom must be between 0 and {MAX_ZOOM}.", field="z")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput(f"Tile x and y must be between 0 and {2**z - 1} at zoom {z}.")


@dataclass
class TileResponse:
    """Martin's answer: its status, the headers to pass back and the body to stream."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes] | None
    upstream: httpx.Response


async def fetch_tile(
    *,
    client: httpx.AsyncClient,
    source_id: int,
    z: int,
    x: int,
    y: int,
    if_none_match: str | None,
    accept_encoding: str | None,
) -> TileResponse:
    """Ask Martin for a tile; the caller streams the body and closes `upstream`."""
    check_tile(z=z, x=x, y=y)
    headers = {"accept-encoding": accept_encoding or "identity"}
    if if_none_match:
        headers["if-none-match"] = if_none_match
    request = client.build_request(
        "GET", f"/{TILE_FUNCTION}/{z}/{x}/{y}", params={"source_id": source_id}, headers=headers
    )
    try:
        upstream = await client.send(request, stream=True)
    except httpx.TransportError as error:
        raise TileServerUnavailable(
            f"The tile server is not available ({type(error).__name__}): try again later."
        ) from error
    if upstream.status_code not in (200, 204, 304):
        await upstream.aclose()
        raise TileServerUnavailable(
            f"The tile server answered {upstream.status_code}: try again later."
        )
    passed = {k: v for k, v in upstream.headers.items() if k in _PASSED_HEADERS}
    if upstream.status_code == 304 and "etag" not in passed and if_none_match:
        passed["etag"] = if_none_match  # Martin's 304 names no ETag: it matched this one
    body = upstream.aiter_raw() if upstream.status_code == 200 else None
    return TileResponse(upstream.status_code, passed, body, upstream)


def _field_type(arrow_type: str) -> str:
    """TileJSON's word for a profiled Arrow column type."""
    if arrow_type.startswith(("int", "uint", "float", "double", "decimal")):
        return "Number"
    return "Boolean" if arrow_type in ("bool", "boolean") else "String"


def tilejson(*, source: SourceRead, tiles_url: str, token: str, expires_at: int) -> dict[str, Any]:
    """The TileJSON 3.0.0 of a source: our tile route, its bounds, fields and a tile token."""
    columns = source.attributes.get("columns") if isinstance(source.attributes, dict) else None
    fields: dict[str, str] = {"geometry_type": "String", "source_id": "Number"}
    if isinstance(columns, list):
        for column in columns:
            if isinstance(column, dict) and isinstance(column.get("name"), str):
                fields[column["name"]] = _field_type(str(column.get("type", "")))
    bounds = source.bbox or [-180.0, -85.0511, 180.0, 85.0511]
    return {
        "tilejson": "3.0.0",
        "name": source.name,
        "description": source.description or "",
        "tiles": [f"{tiles_url}?token={token}"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 2],
        "vector_layers": [{"id": TILE_LAYER, "fields": fields}],
        "source": source.id,
        "feature_count": source.feature_count,
        "tile_token": token,
        "tile_token_expires_at": expires_at,
    }


async def source_for_tilejson(*, session: AsyncSession, source_id: int) -> SourceRead:
    """The source with its feature count and extent."""
    return await get_source(session=session, source_id=source_id)
