"""Sources: CRUD, with feature counts and extents computed by PostGIS."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import Page, PageQuery
from api.schemas.sources import SourceRead
from api.services.listing import order, page_of, search
from core.errors import InvalidInput, NotFound
from core.models import Geometry, Source

ORDERING = {
    "id": Source.id,
    "sid": Source.sid,
    "name": Source.name,
    "source_type": Source.source_type,
    "created_at": Source.created_at,
    "updated_at": Source.updated_at,
}
SID_TAKEN = "source with this sid already exists."


def new_sid() -> str:
    """A fresh public id, `src_` and random letters."""
    return f"src_{secrets.token_hex(8)}"


async def _stats(
    *, session: AsyncSession, ids: Sequence[int]
) -> dict[int, tuple[int, list[float] | None]]:
    """Feature count and [minx, miny, maxx, maxy] of each source, in one grouped query."""
    if not ids:
        return {}
    extent = func.ST_Extent(Geometry.geom)
    rows = await session.execute(
        select(
            Geometry.source_id,
            func.count(),
            func.ST_XMin(extent),
            func.ST_YMin(extent),
            func.ST_XMax(extent),
            func.ST_YMax(extent),
        )
        .where(Geometry.source_id.in_(ids))
        .group_by(Geometry.source_id)
    )
    stats: dict[int, tuple[int, list[float] | None]] = {}
    for source_id, count, *box in rows.tuples():
        stats[source_id] = (count, None if box[0] is None else [float(v) for v in box])
    return stats


def _read(source: Source, stats: dict[int, tuple[int, list[float] | None]]) -> SourceRead:
    count, bbox = stats.get(source.id, (0, None))
    return SourceRead(
        id=source.id,
        sid=source.sid,
        name=source.name,
        description=source.description,
        source_type=source.source_type,
        attributes=source.attributes,
        feature_count=count,
        bbox=bbox,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


async def list_sources(
    *, session: AsyncSession, pages: PageQuery, term: str | None, ordering: str | None
) -> Page[SourceRead]:
    """One page of sources, searched and ordered."""
    stmt: Select[tuple[Source]] = select(Source)
    stmt = search(stmt, term, [Source.name, Source.description])
    stmt = order(stmt, ordering, ORDERING, tiebreak=Source.id)
    rows, count, page = await page_of(session=session, stmt=stmt, pages=pages)
    sources = [row[0] for row in rows]
    stats = await _stats(session=session, ids=[s.id for s in sources])
    results = [_read(s, stats) for s in sources]
    return Page(count=count, next=page.next, previous=page.previous, results=results)


async def _get(*, session: AsyncSession, source_id: int) -> Source:
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound()
    return source


async def get_source(*, session: AsyncSession, source_id: int) -> SourceRead:
    """One source."""
    source = await _get(session=session, source_id=source_id)
    return _read(source, await _stats(session=session, ids=[source.id]))


async def _check_sid(*, session: AsyncSession, sid: str, source_id: int | None) -> None:
    clash = select(Source.id).where(Source.sid == sid)
    if source_id is not None:
        clash = clash.where(Source.id != source_id)
    if await session.scalar(clash) is not None:
        raise InvalidInput(SID_TAKEN, field="sid")


async def _save(*, session: AsyncSession, source: Source) -> SourceRead:
    try:
        await session.commit()
    except IntegrityError as exc:  # a concurrent request took the sid
        await session.rollback()
        raise InvalidInput(SID_TAKEN, field="sid") from exc
    await session.refresh(source)
    return _read(source, await _stats(session=session, ids=[source.id]))


async def create_source(*, session: AsyncSession, fields: dict[str, Any]) -> SourceRead:
    """Insert a source, generating its sid when none is given."""
    sid = fields.get("sid") or new_sid()
    await _check_sid(session=session, sid=sid, source_id=None)
    source = Source(**{**fields, "sid": sid})
    session.add(source)
    return await _save(session=session, source=source)


async def update_source(
    *, session: AsyncSession, source_id: int, changes: dict[str, Any]
) -> SourceRead:
    """Change the fields given."""
    source = await _get(session=session, source_id=source_id)
    if changes.get("sid") is not None:
        await _check_sid(session=session, sid=changes["sid"], source_id=source.id)
    elif "sid" in changes:
        del changes["sid"]
    for field, value in changes.items():
        setattr(source, field, value)
    return await _save(session=session, source=source)


async def delete_source(*, session: AsyncSession, source_id: int) -> None:
    """Delete a source; its geometries and layers go with it (ON DELETE CASCADE)."""
    result = await session.execute(delete(Source).where(Source.id == source_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound()
    await session.commit()
