"""Import routes: a file uploaded, checked and set out on disk, its task queued (202).

    POST /tasks/import/shapefile   a .zip, or the .shp/.shx/.dbf(/.prj/.cpg) parts
    POST /tasks/import/csv         a delimited text file of points or WKT (or a .zip of one)
    POST /tasks/import/geojson     a FeatureCollection or newline-delimited GeoJSON

Form fields: `name` (required for a new source), `description`, `source_id` (re-import:
replace that source's features), and each format's reader options. Everything that can
be judged before reading the file is judged here and answered with a DRF-shaped 400;
the file itself is read by the worker.
"""

from __future__ import annotations

import codecs
import shutil
import uuid
from pathlib import Path

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

import geo_engine
from core.errors import InvalidInput
from core.models import Source, User
from pipeline import tasks
from pipeline.archive import prepare_shapefile, prepare_single
from pipeline.broker import enqueue_step
from pipeline.deps import CurrentUser, Resources, ResourcesDep, SessionDep
from pipeline.errors import ServiceUnavailable
from pipeline.steps.formats import OPTIONS, Format, check_options
from pipeline.uploads import UploadedFile, receive_multipart

router = APIRouter(prefix="/tasks/import", tags=["imports"])
_TEXT_MAX = 255
# What each endpoint reads besides name, description and source_id.
FIELDS: dict[Format, tuple[str, ...]] = {
    "shapefile": (*OPTIONS["shapefile"], "layer"),
    "csv": OPTIONS["csv"],
    "geojson": OPTIONS["geojson"],
}
SUFFIXES: dict[Format, tuple[str, ...]] = {
    "csv": (".csv", ".tsv", ".txt"),
    "geojson": (".geojson", ".json", ".geojsonl", ".geojsons", ".ndjson", ".jsonl"),
}


@router.post("/shapefile", status_code=202)
async def import_shapefile(
    request: Request, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Import a shapefile: one .zip (`layer` chooses among several), or its parts."""
    return await _accept(request, user, resources, session, "shapefile")


@router.post("/csv", status_code=202)
async def import_csv(
    request: Request, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Import a CSV of points (`x`/`y` columns) or geometries (`wkt`)."""
    return await _accept(request, user, resources, session, "csv")


@router.post("/geojson", status_code=202)
async def import_geojson(
    request: Request, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Import a GeoJSON FeatureCollection or newline-delimited GeoJSON."""
    return await _accept(request, user, resources, session, "geojson")


async def _accept(
    request: Request, user: User, resources: Resources, session: AsyncSession, kind: Format
) -> JSONResponse:
    settings = resources.settings.pipeline
    task_id = uuid.uuid4()
    folder = settings.upload_dir / str(task_id)
    try:
        form = await receive_multipart(
            request, directory=folder, max_bytes=settings.max_upload_bytes
        )
        fields = form.fields
        source_id = _source_id(fields)
        if source_id is not None and await session.get(Source, source_id) is None:
            raise InvalidInput(
                f'Invalid pk "{source_id}" - object does not exist.', field="source_id"
            )
        name = _text(fields, "name")
        if name is None and source_id is None:
            raise InvalidInput("This field is required.", field="name")
        options = {key: _text(fields, key) for key in FIELDS[kind]}
        layer = options.pop("layer", None)
        options = check_options(kind, options)
        _check_encoding(options.get("encoding"))
        await _check_crs(options.get("source_crs"))
        files = [upload for upload in form.files if upload.field == "file"]
        for stray in form.files:
            if stray.field != "file":
                stray.path.unlink(missing_ok=True)
        path = await anyio.to_thread.run_sync(
            lambda: _set_out(kind, files, folder, settings.max_upload_bytes, layer)
        )
        task = tasks.new_import(
            format=kind,
            owner_id=user.id,
            name=name,
            path=path,
            upload_dir=folder,
            file_name=", ".join(upload.filename for upload in files),
            description=_text(fields, "description", limit=None),
            options=options,
            source_id=source_id,
            task_id=task_id,
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


def _set_out(
    kind: Format, files: list[UploadedFile], folder: Path, max_bytes: int, layer: str | None
) -> Path:
    if kind == "shapefile":
        return prepare_shapefile(files, folder, max_bytes=max_bytes, layer=layer)
    return prepare_single(files, folder, suffixes=SUFFIXES[kind], kind=kind, max_bytes=max_bytes)


def _text(fields: dict[str, str], name: str, *, limit: int | None = _TEXT_MAX) -> str | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"Ensure this field has no more than {limit} characters.", field=name)
    return value


def _source_id(fields: dict[str, str]) -> int | None:
    raw = _text(fields, "source_id")
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise InvalidInput("A valid integer is required.", field="source_id")
    return int(raw)


def _check_encoding(encoding: str | None) -> None:
    if encoding is None:
        return
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(f"Unknown encoding: {encoding!r}.", field="encoding") from None


async def _check_crs(crs: str | None) -> None:
    """Refuse a CRS PROJ cannot read now, rather than after the upload was queued."""
    if crs is None:
        return
    empty = np.empty(0, dtype=np.float64)
    try:
        await anyio.to_thread.run_sync(
            lambda: geo_engine.transform_coords(empty, empty, from_crs=crs, to_crs="EPSG:4326")
        )
    except geo_engine.GeoEngineError as exc:
        raise InvalidInput(f"Not a CRS PROJ knows: {exc}", field="source_crs") from None
