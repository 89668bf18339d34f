"""`/tiles/`: a source's vector tiles from Martin, and its TileJSON, for signed-in users.

Clients send the bearer token (MapLibre's `transformRequest`) or, when they cannot set
headers, the short-lived `?token=` of the TileJSON, which is good for one source only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.auth import fastapi_users
from api.auth.tile_tokens import TileToken, issue_tile_token, read_tile_token
from api.deps import ApiSettingsDep, ResourcesDep, SessionDep
from api.services import tiles
from api.urls import absolute_url
from core.errors import NotAuthenticated
from core.models import User

router = APIRouter(prefix="/tiles", tags=["tiles"])
optional_user = fastapi_users.current_user(active=True, optional=True)
TILE_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


@dataclass(frozen=True)
class Viewer:
    """Who asks for a source's tiles: a signed-in user, or the holder of a tile token."""

    source_id: int
    user_id: int
    tile_token: TileToken | None


async def tile_viewer(
    source: str,
    session: SessionDep,
    resources: ResourcesDep,
    user: Annotated[User | None, Depends(optional_user)],
    token: Annotated[str | None, Query(description="a tile token from the TileJSON")] = None,
) -> Viewer:
    """A signed-in user or a tile token's holder, for a source they may see."""
    if user is not None:
        source_id = await tiles.visible_source_id(session=session, user=user, source=source)
        return Viewer(source_id, user.id, None)
    if token is None:
        raise NotAuthenticated()
    source_id = await tiles.visible_source_id(session=session, user=None, source=source)
    tile_token = read_tile_token(
        token, secret=resources.settings.auth.secret_key, source_id=source_id
    )
    if tile_token is None:
        raise NotAuthenticated("Invalid or expired tile token.")
    return Viewer(source_id, tile_token.user_id, tile_token)


TileViewer = Annotated[Viewer, Depends(tile_viewer)]


def _unavailable(error: tiles.TileServerUnavailable) -> HTTPException:
    return HTTPException(status_code=503, detail=error.message, headers={"Retry-After": "5"})


@router.get(
    "/{source}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses={
        200: {"content": {TILE_MEDIA_TYPE: {}}, "description": "a Mapbox Vector Tile"},
        204: {"description": "no feature of the source in this tile"},
        304: {"description": "the tile has not changed (If-None-Match)"},
        503: {"description": "the tile server is not available"},
    },
)
async def read_tile(
    viewer: TileViewer,
    z: int,
    x: int,
    y: int,
    request: Request,
    resources: ResourcesDep,
    settings: ApiSettingsDep,
) -> Response:
    """One vector tile of a source (layer `core_geometry`), streamed from Martin."""
    try:
        tile = await tiles.fetch_tile(
            client=resources.tile_client,
            source_id=viewer.source_id,
            z=z,
            x=x,
            y=y,
            if_none_match=request.headers.get("if-none-match"),
            accept_encoding=request.headers.get("accept-encoding"),
        )
    except tiles.TileServerUnavailable as error:
        raise _unavailable(error) from error
    headers = {
        **tile.headers,
        # private: the tiles are for signed-in users only, not for shared caches
        "cache-control": f"private, max-age={settings.tile_max_age_seconds}",
        "vary": "Accept-Encoding, Authorization",
    }
    media_type = headers.pop("content-type", TILE_MEDIA_TYPE)
    if tile.body is None:  # 204 or 304: no body
        await tile.upstream.aclose()
        headers.pop("content-length", None)
        return Response(status_code=tile.status, headers=headers)
    return StreamingResponse(
        tile.body,
        status_code=tile.status,
        headers=headers,
        media_type=media_type,
        background=BackgroundTask(tile.upstream.aclose),
    )


@router.get("/{source}.json")
async def read_tilejson(
    viewer: TileViewer,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    settings: ApiSettingsDep,
) -> dict[str, object]:
    """A source's TileJSON: its tile URL (with a tile token), bounds and fields.

    A signed-in user gets a fresh tile token; a tile token's holder gets the same token
    back, so that a tile token never extends itself.
    """
    source_id = viewer.source_id
    source = await tiles.source_for_tilejson(session=session, source_id=source_id)
    token = viewer.tile_token or issue_tile_token(
        secret=resources.settings.auth.secret_key,
        user_id=viewer.user_id,
        source_id=source_id,
        ttl_seconds=settings.tile_token_ttl_seconds,
    )
    here = absolute_url(request, trust_forwarded=settings.trust_forwarded_headers)
    base = here.split("?", 1)[0].removesuffix(f"/{request.path_params['source']}.json")
    return tiles.tilejson(
        source=source,
        tiles_url=f"{base}/{source_id}/{{z}}/{{x}}/{{y}}.mvt",
        token=token.token,
        expires_at=token.expires_at,
    )
