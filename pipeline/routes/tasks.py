"""Task routes: read a task, list the caller's tasks (imports start in `imports`)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select, true

from core.errors import NotFound
from core.models import Task, User
from pipeline import tasks
from pipeline.deps import CurrentUser, SessionDep
from pipeline.pagination import Page, paginate_params

router = APIRouter(prefix="/tasks", tags=["tasks"])


def _visible(user: User) -> Any:
    return true() if user.is_superuser else Task.owner_id == user.id


@router.get("/")
async def list_tasks(request: Request, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """The caller's tasks (every task for a superuser), newest first, paginated as DRF."""
    page: Page = paginate_params(request)
    count = await session.scalar(select(func.count()).select_from(Task).where(_visible(user)))
    page.check(int(count or 0))
    found = await session.scalars(
        select(Task)
        .where(_visible(user))
        .order_by(Task.created_at.desc(), Task.id)
        .offset(page.offset)
        .limit(page.size)
    )
    return page.document(int(count or 0), [tasks.serialize_task(task) for task in found])


@router.get("/{task_id}")
async def get_task(task_id: str, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """One task: state, step, progress, result or error (its owner's, or any for a superuser)."""
    try:
        key = uuid.UUID(task_id)
    except ValueError:
        raise NotFound("Not found.") from None
    task = await session.get(Task, key)
    if task is None or not (user.is_superuser or task.owner_id == user.id):
        raise NotFound("Not found.")
    return tasks.serialize_task(task)
