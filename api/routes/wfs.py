"""`/wfs/`: core_geometry as djangorestframework-gis's paginated GeoJSON FeatureCollection."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, SessionDep
from api.pagination import PageQueryDep, window
from api.services.wfs import FeatureFilter, count_features, features_json, parse_bbox

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000

router = APIRouter(tags=["wfs"])


@router.get(
    "/wfs/",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "FeatureCollection"}},
)
async def list_features(
    user: CurrentUser,
    session: SessionDep,
    pages: PageQueryDep,
    source: Annotated[str | None, Query(description="source id or sid")] = None,
    in_bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (EPSG:4326)")] = None,
    bbox: Annotated[str | None, Query(description="same as in_bbox")] = None,
    geometry_type: str | None = None,
) -> Response:
    """Features whose geometry intersects the box, of a source and type, one page at a time."""
    box = None
    # An empty box filters nothing, as InBBoxFilter read it.
    if in_bbox:
        box = parse_bbox(in_bbox, param="in_bbox")
    elif bbox:
        box = parse_bbox(bbox, param="bbox")
    features = FeatureFilter(source=source, bbox=box, geometry_type=geometry_type)
    count = await count_features(session=session, features=features)
    page = window(pages, count=count, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    body = await features_json(
        session=session, features=features, limit=page.size, offset=page.offset
    )
    # Only the envelope is assembled here; the features array is PostgreSQL's text, as is.
    head = b'{"type":"FeatureCollection","count":%d,"next":%b,"previous":%b,"features":' % (
        count,
        orjson.dumps(page.next),
        orjson.dumps(page.previous),
    )
    return Response(head + body.encode() + b"}", media_type="application/json")
