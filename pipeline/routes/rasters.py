"""The raster import: `POST /tasks/import/raster`, a GeoTIFF uploaded and its task queued (202).

Form fields as the other imports: `file` (a .tif/.tiff, or a .zip holding one), `name`
(required for a new source), `description`, `source_id` (a raster source whose raster the
import replaces). The worker checks the file with rasterio, rewrites it as a COG in the
raster store and registers a `raster` source with a `raster` layer.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.models import Source
from pipeline import tasks
from pipeline.archive import prepare_single
from pipeline.broker import enqueue_step
from pipeline.deps import CurrentUser, Resources, ResourcesDep, SessionDep
from pipeline.errors import ServiceUnavailable
from pipeline.routes.imports import _source_id, _text
from pipeline.steps.raster import RASTER_SUFFIXES
from pipeline.uploads import receive_multipart

router = APIRouter(prefix="/tasks/import", tags=["imports"])


@router.post("/raster", status_code=202)
async def import_raster(
    request: Request, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Import a GeoTIFF as a raster source (a COG in the raster store)."""
    settings = resources.settings.pipeline
    task_id = uuid.uuid4()
    folder = settings.upload_dir / str(task_id)
    try:
        form = await receive_multipart(
            request, directory=folder, max_bytes=settings.max_upload_bytes
        )
        fields = form.fields
        source_id = _source_id(fields)
        await _check_raster_source(session, source_id)
        name = _text(fields, "name")
        if name is None and source_id is None:
            raise InvalidInput("This field is required.", field="name")
        files = [upload for upload in form.files if upload.field == "file"]
        for stray in form.files:
            if stray.field != "file":
                stray.path.unlink(missing_ok=True)
        path: Path = await anyio.to_thread.run_sync(
            lambda: prepare_single(
                files,
                folder,
                suffixes=RASTER_SUFFIXES,
                kind="GeoTIFF",
                max_bytes=settings.max_upload_bytes,
            )
        )
        task = tasks.new_import(
            format="raster",
            owner_id=user.id,
            name=name,
            path=path,
            upload_dir=folder,
            file_name=", ".join(upload.filename for upload in files),
            description=_text(fields, "description", limit=None),
            source_id=source_id,
            task_id=task_id,
        )
        task.step = "raster"
        session.add(task)
        await session.commit()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return await queue(resources, session, task_id, "raster", cleanup=folder)


async def _check_raster_source(session: AsyncSession, source_id: int | None) -> None:
    if source_id is None:
        return
    source = await session.get(Source, source_id)
    if source is None:
        raise InvalidInput(f'Invalid pk "{source_id}" - object does not exist.', field="source_id")
    if source.source_type != "raster":
        raise InvalidInput(
            f"source {source_id} is a {source.source_type} source, not a raster",
            field="source_id",
        )


async def queue(
    resources: Resources,
    session: AsyncSession,
    task_id: uuid.UUID,
    step: str,
    *,
    cleanup: Path | None = None,
) -> JSONResponse:
    """Send the task's first message; answer 202 (or fail the task: 503)."""
    try:
        await anyio.to_thread.run_sync(enqueue_step, resources.broker, step, task_id)
    except Exception as exc:
        reason = f"the task could not be queued: {exc}"
        await session.run_sync(
            lambda sync: tasks.fail(
                session=sync, task_id=task_id, code="broker_unavailable", message=reason
            )
        )
        await session.commit()
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise ServiceUnavailable("the task queue is unavailable; try again later") from exc
    return JSONResponse(
        {"task_id": str(task_id), "state": "queued"},
        status_code=202,
        headers={"Location": f"/tasks/{task_id}"},
    )
