"""Task routes: start an import, read a task, list the caller's tasks."""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, true

from core.errors import InvalidInput, NotFound
from core.models import Task, User
from pipeline import tasks
from pipeline.archive import prepare_shapefile
from pipeline.broker import enqueue_step
from pipeline.deps import CurrentUser, ResourcesDep, SessionDep
from pipeline.errors import ServiceUnavailable
from pipeline.pagination import Page, paginate_params
from pipeline.uploads import receive_multipart

router = APIRouter(prefix="/tasks", tags=["tasks"])
_NAME_MAX = 255
_OPTIONAL_FIELDS = ("description", "encoding", "source_crs")


def _visible(user: User) -> Any:
    return true() if user.is_superuser else Task.owner_id == user.id


def _required_field(fields: dict[str, str], name: str) -> str:
    value = _text_field(fields, name)
    if value is None:
        raise InvalidInput("This field is required.", field=name)
    return value


def _text_field(fields: dict[str, str], name: str) -> str | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    if len(value) > _NAME_MAX:
        raise InvalidInput(
            f"Ensure this field has no more than {_NAME_MAX} characters.", field=name
        )
    return value


@router.post("/import/shapefile", status_code=202)
async def import_shapefile(
    request: Request, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Accept a shapefile (a .zip, or its parts as several `file` parts) and queue its import."""
    settings = resources.settings.pipeline
    task_id = uuid.uuid4()
    folder = settings.upload_dir / str(task_id)
    try:
        form = await receive_multipart(
            request, directory=folder, max_bytes=settings.max_upload_bytes
        )
        name = _required_field(form.fields, "name")
        options = {key: _text_field(form.fields, key) for key in _OPTIONAL_FIELDS}
        files = [upload for upload in form.files if upload.field == "file"]
        for stray in form.files:
            if stray.field != "file":
                stray.path.unlink(missing_ok=True)
        shp = await anyio.to_thread.run_sync(
            lambda: prepare_shapefile(files, folder, max_bytes=settings.max_upload_bytes)
        )
        task = tasks.new_shapefile_import(
            owner_id=user.id,
            name=name,
            shp=shp,
            upload_dir=folder,
            file_name=", ".join(upload.filename for upload in files),
            task_id=task_id,
            **options,
        )
        session.add(task)
        await session.commit()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        await anyio.to_thread.run_sync(enqueue_step, resources.broker, "stage", task_id)
    except Exception as exc:
        reason = f"the task could not be queued: {exc}"
        await session.run_sync(
            lambda sync: tasks.fail(
                session=sync, task_id=task_id, code="broker_unavailable", message=reason
            )
        )
        await session.commit()
        shutil.rmtree(folder, ignore_errors=True)
        raise ServiceUnavailable("the task queue is unavailable; try again later") from exc
    return JSONResponse(
        {"task_id": str(task_id), "state": task.state},
        status_code=202,
        headers={"Location": f"/tasks/{task_id}"},
    )


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
