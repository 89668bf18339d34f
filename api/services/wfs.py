"""core_geometry as GeoJSON, built by PostgreSQL (no per-feature Python on this path)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ParseError

BBox = tuple[float, float, float, float]

# Each feature as djangorestframework-gis wrote it: id, type, geometry, properties.
_FEATURES_SQL = """
SELECT coalesce(json_agg(json_build_object(
    'id', g.gid,
    'type', 'Feature',
    'geometry', ST_AsGeoJSON(g.geom)::json,
    'properties', CASE WHEN jsonb_typeof(g.metadata) = 'object' THEN g.metadata ELSE '{{}}' END
        || jsonb_build_object('geometry_type', g.geometry_type, 'source', g.source_id)
) ORDER BY g.gid), '[]'::json)::text
FROM (
    SELECT gid, geom, metadata, geometry_type, source_id FROM core_geometry
    WHERE {where} ORDER BY gid LIMIT :limit OFFSET :offset
) AS g
"""
_COUNT_SQL = "SELECT count(*) FROM core_geometry WHERE {where}"
_MAX_INT4 = 2**31 - 1


@dataclass(frozen=True)
class FeatureFilter:
    """Which features a WFS request asks for."""

    source: str | None = None
    bbox: BBox | None = None
    geometry_type: str | None = None

    async def where(self, session: AsyncSession) -> tuple[str, dict[str, Any]]:
        """The SQL condition (fixed fragments) and its bound values.

        The source is resolved to its ids first, so that PostgreSQL sees
        `source_id = ANY(<constant>)` and reads only that source's partition of
        core_geometry (a subquery in the condition would make it scan them all).
        """
        clauses: list[str] = ["true"]
        params: dict[str, Any] = {}
        if self.source is not None:
            clauses.append("source_id = ANY(:source_ids)")
            params["source_ids"] = await _source_ids(session, self.source)
        if self.bbox is not None:
            clauses.append("ST_Intersects(geom, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))")
            params.update(zip(("minx", "miny", "maxx", "maxy"), self.bbox, strict=True))
        if self.geometry_type is not None:
            clauses.append("geometry_type = :geometry_type")
            params["geometry_type"] = self.geometry_type
        return " AND ".join(clauses), params


async def _source_ids(session: AsyncSession, source: str) -> list[int]:
    """The ids of the sources that `source` names, by id or by sid."""
    number = int(source) if source.isdigit() else None
    if number is not None and number > _MAX_INT4:
        number = None  # no id is that large; only a sid can match
    rows = await session.scalars(
        text("SELECT id FROM core_source WHERE sid = :source OR id = :number"),
        {"source": source, "number": number},
    )
    return list(rows)


def parse_bbox(raw: str, *, param: str) -> BBox:
    """`minx,miny,maxx,maxy` in EPSG:4326, or djangorestframework-gis's ParseError."""
    message = f"Invalid bbox string supplied for parameter {param}"
    parts = raw.split(",")
    if len(parts) != 4:
        raise ParseError(message)
    try:
        minx, miny, maxx, maxy = (float(part) for part in parts)
    except ValueError:
        raise ParseError(message) from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)) or minx > maxx or miny > maxy:
        raise ParseError(message)
    return minx, miny, maxx, maxy


async def count_features(*, session: AsyncSession, features: FeatureFilter) -> int:
    """How many features match."""
    where, params = await features.where(session)
    count = await session.scalar(text(_COUNT_SQL.format(where=where)), params)
    return int(count or 0)


async def features_json(
    *, session: AsyncSession, features: FeatureFilter, limit: int, offset: int
) -> str:
    """One page of matching features as a JSON array, written by PostgreSQL."""
    where, params = await features.where(session)
    result = await session.scalar(
        text(_FEATURES_SQL.format(where=where)), {**params, "limit": limit, "offset": offset}
    )
    return str(result)
