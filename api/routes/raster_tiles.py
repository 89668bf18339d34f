"""`/tiles/raster/{source}/{z}/{x}/{y}.png`: a raster source's tiles, behind the bearer token.

The API asks TiTiler (restricted to the raster store, pipeline/titiler_app.py) for the
tile of the source's COG, over a pooled HTTP client opened in the app's lifespan
(`open_client`), and answers with its PNG. `rescale` and `colormap_name` are passed on;
a single-band raster without `rescale` is stretched over its profiled min/max.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from core.errors import NotFound
from core.models import Source

router = APIRouter(prefix="/tiles/raster", tags=["tiles"])
_STATE_KEY = "titiler_client"
# TiTiler's own tile cache headers are dropped: the API's answer is per user.
_CACHE = "private, max-age=300"


@asynccontextmanager
async def open_client(app: Any, titiler_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The pooled client to TiTiler, kept on the app's state for the lifespan's length."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=titiler_url, timeout=30.0, limits=limits) as client:
        setattr(app.state, _STATE_KEY, client)
        try:
            yield client
        finally:
            delattr(app.state, _STATE_KEY)


def get_titiler(request: Request) -> httpx.AsyncClient:
    """The lifespan's client to TiTiler."""
    client: httpx.AsyncClient | None = getattr(request.app.state, _STATE_KEY, None)
    if client is None:
        raise RuntimeError("the app's lifespan has not run")
    return client


TitilerDep = Annotated[httpx.AsyncClient, Depends(get_titiler)]


async def _raster_source(session: SessionDep, key: str) -> Source:
    column = Source.id if key.isdigit() else Source.sid
    value: int | str = int(key) if key.isdigit() else key
    if isinstance(value, int) and value >= 2**31:
        raise NotFound()
    source = (await session.execute(select(Source).where(column == value))).scalar_one_or_none()
    if source is None or source.source_type != "raster":
        raise NotFound()
    if not ((source.attributes or {}).get("raster") or {}).get("file"):
        raise NotFound()
    return source


def _default_rescale(facts: dict[str, Any]) -> str | None:
    bands = facts.get("bands") or []
    if len(bands) != 1:
        return None
    low, high = bands[0].get("min"), bands[0].get("max")
    if low is None or high is None:
        return None
    return f"{low},{high if high > low else low + 1}"


@router.get("/{source}/{z}/{x}/{y}.png")
async def raster_tile(
    source: str,
    z: int,
    x: int,
    y: int,
    user: CurrentUser,
    session: SessionDep,
    titiler: TitilerDep,
    rescale: Annotated[str | None, Query(description="min,max to stretch to 0-255")] = None,
    colormap_name: Annotated[str | None, Query(description="a TiTiler colormap")] = None,
) -> Response:
    """The PNG tile z/x/y (Web Mercator) of a raster source (its id or sid)."""
    found = await _raster_source(session, source)
    facts = found.attributes["raster"]
    params: dict[str, str] = {"url": str(facts["file"])}
    stretch = rescale or _default_rescale(facts)
    if stretch:
        params["rescale"] = stretch
    if colormap_name:
        params["colormap_name"] = colormap_name
    try:
        answer = await titiler.get(f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png", params=params)
    except httpx.HTTPError as exc:
        raise HTTPException(503, detail=f"the raster tile server is unavailable ({exc})") from None
    if answer.status_code == 200:
        return Response(answer.content, media_type="image/png", headers={"Cache-Control": _CACHE})
    detail = _detail(answer)
    if answer.status_code == 404:
        raise HTTPException(404, detail=detail)
    if answer.status_code in (400, 422):
        raise HTTPException(400, detail=detail)
    raise HTTPException(502, detail=f"the raster tile server answered {answer.status_code}")


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return str(detail)
