"""`/sources/`: imported datasets, shared by every signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CurrentUser, ObjectId, SessionDep
from api.pagination import Page, PageQueryDep
from api.schemas.sources import SourceCreate, SourceRead, SourceUpdate
from api.services import sources

router = APIRouter(prefix="/sources", tags=["sources"])


@router.get("/")
async def list_sources(
    user: CurrentUser,
    session: SessionDep,
    pages: PageQueryDep,
    search: str | None = None,
    ordering: str | None = None,
) -> Page[SourceRead]:
    """Sources, searched over name and description, ordered, one page at a time."""
    return await sources.list_sources(session=session, pages=pages, term=search, ordering=ordering)


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_source(body: SourceCreate, user: CurrentUser, session: SessionDep) -> SourceRead:
    """Create a source."""
    return await sources.create_source(session=session, fields=body.model_dump(exclude_unset=True))


@router.get("/{source_id}/")
async def read_source(source_id: ObjectId, user: CurrentUser, session: SessionDep) -> SourceRead:
    """One source."""
    return await sources.get_source(session=session, source_id=source_id)


@router.put("/{source_id}/")
async def replace_source(
    source_id: ObjectId, body: SourceCreate, user: CurrentUser, session: SessionDep
) -> SourceRead:
    """Replace a source (the required fields must all be given)."""
    changes = body.model_dump(exclude_unset=True)
    return await sources.update_source(session=session, source_id=source_id, changes=changes)


@router.patch("/{source_id}/")
async def patch_source(
    source_id: ObjectId, body: SourceUpdate, user: CurrentUser, session: SessionDep
) -> SourceRead:
    """Change the fields given."""
    changes = body.model_dump(exclude_unset=True)
    return await sources.update_source(session=session, source_id=source_id, changes=changes)


@router.delete("/{source_id}/", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(source_id: ObjectId, user: CurrentUser, session: SessionDep) -> Response:
    """Delete a source and its geometries."""
    await sources.delete_source(session=session, source_id=source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
