"""`/projects/`: a user's maps of ordered layers, public ones readable by all."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CurrentUser, ObjectId, SessionDep
from api.pagination import Page, PageQueryDep
from api.schemas.projects import ProjectCreate, ProjectRead, ProjectUpdate
from api.services import projects

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("/")
async def list_projects(
    user: CurrentUser,
    session: SessionDep,
    pages: PageQueryDep,
    search: str | None = None,
    ordering: str | None = None,
) -> Page[ProjectRead]:
    """The user's projects and the public ones, searched, ordered, one page at a time."""
    return await projects.list_projects(
        session=session, user=user, pages=pages, term=search, ordering=ordering
    )


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_project(
    body: ProjectCreate, user: CurrentUser, session: SessionDep
) -> ProjectRead:
    """Create a project owned by the signed-in user."""
    fields = body.model_dump(exclude_unset=True)
    return await projects.create_project(session=session, user=user, fields=fields)


@router.get("/{project_id}/")
async def read_project(project_id: ObjectId, user: CurrentUser, session: SessionDep) -> ProjectRead:
    """One project (404 when the user may not see it)."""
    return await projects.get_project(session=session, user=user, project_id=project_id)


@router.put("/{project_id}/")
async def replace_project(
    project_id: ObjectId, body: ProjectCreate, user: CurrentUser, session: SessionDep
) -> ProjectRead:
    """Replace a project (403 when the user may see but not change it)."""
    changes = body.model_dump(exclude_unset=True)
    return await projects.update_project(
        session=session, user=user, project_id=project_id, changes=changes
    )


@router.patch("/{project_id}/")
async def patch_project(
    project_id: ObjectId, body: ProjectUpdate, user: CurrentUser, session: SessionDep
) -> ProjectRead:
    """Change the fields given."""
    changes = body.model_dump(exclude_unset=True)
    return await projects.update_project(
        session=session, user=user, project_id=project_id, changes=changes
    )


@router.delete("/{project_id}/", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(project_id: ObjectId, user: CurrentUser, session: SessionDep) -> Response:
    """Delete a project."""
    await projects.delete_project(session=session, user=user, project_id=project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
