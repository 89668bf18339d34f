"""Projects: their owner's to change; others see them only when public, read-only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import ColumnElement, Select, delete, func, insert, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import Page, PageQuery
from api.schemas.projects import Point, ProjectRead
from api.services.listing import order, page_of, search
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.models import Layer, Project, ProjectLayer, User

ORDERING = {
    "id": Project.id,
    "name": Project.name,
    "owner": Project.owner_id,
    "is_public": Project.is_public,
    "zoom": Project.zoom,
    "created_at": Project.created_at,
    "updated_at": Project.updated_at,
}
ProjectRow = tuple[Project, float | None, float | None, list[int] | None]


def _select() -> Select[ProjectRow]:
    """Projects with their center's coordinates and their layer ids in order."""
    layer_ids = (
        select(ProjectLayer.layer_id)
        .where(ProjectLayer.project_id == Project.id)
        .order_by(ProjectLayer.position, ProjectLayer.id)
        .scalar_subquery()
    )
    return select(
        Project, func.ST_X(Project.center), func.ST_Y(Project.center), func.array(layer_ids)
    )


def _visible_to(user: User) -> ColumnElement[bool]:
    if user.is_superuser:
        return true()
    return or_(Project.owner_id == user.id, Project.is_public.is_(True))


def _read(row: Sequence[Any]) -> ProjectRow:
    project, x, y, layers = row
    return project, x, y, layers


def _to_schema(row: ProjectRow) -> ProjectRead:
    project, x, y, layers = row
    return ProjectRead(
        id=project.id,
        name=project.name,
        description=project.description,
        owner=project.owner_id,
        is_public=project.is_public,
        center=None if x is None or y is None else Point(type="Point", coordinates=(x, y)),
        zoom=project.zoom,
        layers=list(layers or []),
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


async def list_projects(
    *,
    session: AsyncSession,
    user: User,
    pages: PageQuery,
    term: str | None,
    ordering: str | None,
) -> Page[ProjectRead]:
    """One page of the projects the user may see."""
    stmt = _select().where(_visible_to(user))
    stmt = search(stmt, term, [Project.name, Project.description])
    stmt = order(stmt, ordering, ORDERING, tiebreak=Project.id)
    rows, count, page = await page_of(session=session, stmt=stmt, pages=pages)
    results = [_to_schema(_read(row)) for row in rows]
    return Page(count=count, next=page.next, previous=page.previous, results=results)


async def _visible(*, session: AsyncSession, user: User, project_id: int) -> ProjectRow:
    """The project, or NotFound when the user may not see it."""
    row = (
        await session.execute(_select().where(Project.id == project_id, _visible_to(user)))
    ).first()
    if row is None:
        raise NotFound()
    return _read(row)


async def _changeable(*, session: AsyncSession, user: User, project_id: int) -> Project:
    """The project, NotFound when invisible, PermissionDenied when only visible."""
    project, *_ = await _visible(session=session, user=user, project_id=project_id)
    if project.owner_id != user.id and not user.is_superuser:
        raise PermissionDenied()
    return project


async def get_project(*, session: AsyncSession, user: User, project_id: int) -> ProjectRead:
    """One project the user may see."""
    return _to_schema(await _visible(session=session, user=user, project_id=project_id))


def _center(value: dict[str, Any] | None) -> WKTElement | None:
    """A GeoJSON Point (as the schema dumped it) as PostGIS's point."""
    if value is None:
        return None
    lon, lat = value["coordinates"]
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)


async def _check_layers(*, session: AsyncSession, layer_ids: list[int]) -> None:
    seen: set[int] = set()
    for layer_id in layer_ids:
        if layer_id in seen:
            raise InvalidInput(f'Duplicate layer "{layer_id}".', field="layers")
        seen.add(layer_id)
    if not layer_ids:
        return
    found = set(await session.scalars(select(Layer.id).where(Layer.id.in_(layer_ids))))
    for layer_id in layer_ids:
        if layer_id not in found:
            raise InvalidInput(f'Invalid pk "{layer_id}" - object does not exist.', field="layers")


async def _apply(*, session: AsyncSession, project: Project, fields: dict[str, Any]) -> None:
    """Set the given fields; `layers` replaces the ordered layer list."""
    layer_ids = fields.pop("layers", None)
    if layer_ids is not None:
        await _check_layers(session=session, layer_ids=layer_ids)
    if "center" in fields:
        fields["center"] = _center(fields["center"])
    for field, value in fields.items():
        setattr(project, field, value)
    session.add(project)
    await session.flush()
    if layer_ids is not None:
        await session.execute(delete(ProjectLayer).where(ProjectLayer.project_id == project.id))
        if layer_ids:
            await session.execute(
                insert(ProjectLayer),
                [
                    {"project_id": project.id, "layer_id": layer_id, "position": position}
                    for position, layer_id in enumerate(layer_ids)
                ],
            )


async def _saved(*, session: AsyncSession, user: User, project: Project) -> ProjectRead:
    await session.commit()
    await session.refresh(project)
    return await get_project(session=session, user=user, project_id=project.id)


async def create_project(
    *, session: AsyncSession, user: User, fields: dict[str, Any]
) -> ProjectRead:
    """Insert a project owned by the user."""
    project = Project(owner_id=user.id)
    await _apply(session=session, project=project, fields=fields)
    return await _saved(session=session, user=user, project=project)


async def update_project(
    *, session: AsyncSession, user: User, project_id: int, changes: dict[str, Any]
) -> ProjectRead:
    """Change the fields given, if the user may."""
    project = await _changeable(session=session, user=user, project_id=project_id)
    await _apply(session=session, project=project, fields=changes)
    return await _saved(session=session, user=user, project=project)


async def delete_project(*, session: AsyncSession, user: User, project_id: int) -> None:
    """Delete a project, if the user may."""
    project = await _changeable(session=session, user=user, project_id=project_id)
    await session.execute(delete(Project).where(Project.id == project.id))
    await session.commit()
