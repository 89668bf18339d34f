"""Analysis routes: parameters checked against the source, the task queued (202).

    POST /tasks/analysis/interpolate   a point source's field as a thin-plate spline grid
    POST /tasks/analysis/grid          per-cell statistics or IDW (a raster, or polygons)
    POST /tasks/analysis/vectorize     a raster source (JSON) or an uploaded GeoTIFF
                                       (multipart `file` + the same fields) to polygons

Interpolate and grid take JSON bodies (`pipeline.analysis.params`); a grid as raster
ends as a `raster` source with a `raster` layer; polygons as an `analysis` source
loaded into core_geometry through the import's profile and load steps.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.models import Source, User
from pipeline import tasks
from pipeline.analysis.params import (
    GridInferenceRequest,
    InterpolateRequest,
    VectorizeRequest,
    grid_plan,
    missing_source,
    point_source,
    source_key,
)
from pipeline.archive import prepare_single
from pipeline.config import raster_settings
from pipeline.deps import CurrentUser, ResourcesDep, SessionDep
from pipeline.routes.rasters import queue
from pipeline.steps.raster import RASTER_SUFFIXES
from pipeline.uploads import receive_multipart

router = APIRouter(prefix="/tasks/analysis", tags=["analysis"])


async def _source(session: AsyncSession, value: int | str) -> Source:
    key = source_key(value)
    column = Source.id if isinstance(key, int) else Source.sid
    found = (await session.execute(select(Source).where(column == key))).scalar_one_or_none()
    if found is None:
        raise missing_source(value)
    return found


def _bbox(source: Source) -> tuple[float, float, float, float] | None:
    box = (source.attributes or {}).get("bbox")
    if not isinstance(box, list) or len(box) != 4:
        return None
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _output_params(
    kind: str, *, name: str | None, description: str | None, default_name: str
) -> dict[str, Any]:
    sid = tasks.new_sid()
    return {"sid": sid, "name": name or default_name, "description": description,
            "analysis": kind, "source_id": None}  # fmt: skip


async def _create(
    session: AsyncSession, user: User, kind: str, step: str, params: dict[str, Any]
) -> uuid.UUID:
    task = tasks.new_task(kind=f"analysis_{kind}", owner_id=user.id, params=params, step=step)
    session.add(task)
    await session.commit()
    return task.id


def _polygon_output(params: dict[str, Any], path: str, file_name: str) -> dict[str, Any]:
    """What the import's profile and load steps read from the task's params (the load
    keeps `options` in the source's `attributes.import`: the analysis's own facts)."""
    facts = (
        "analysis",
        "source_id",
        "field",
        "method",
        "power",
        "radius",
        "min_points",
        "band",
        "breaks",
        "connectivity",
        "bbox",
        "crs",
        "width",
        "height",
    )
    options = {key: params[key] for key in facts if params.get(key) is not None}
    return {**params, "format": "analysis", "source_type": "analysis", "options": options,
            "path": path, "file_name": file_name}  # fmt: skip


@router.post("/interpolate", status_code=202)
async def interpolate(
    body: InterpolateRequest, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Spline-interpolate a point source's numeric field onto a grid (a raster source)."""
    source = await _source(session, body.source)
    plan = point_source(source, body.field)
    limits = raster_settings()
    plan |= grid_plan(body, _bbox(source), limits, cells_max=limits.max_cells)
    plan |= {"smoothing": body.smoothing}
    params = plan | _output_params(
        "interpolate",
        name=body.name,
        description=body.description,
        default_name=f"{source.name}: {body.field} (spline)",
    )
    task_id = await _create(session, user, "interpolate", "interpolate", params)
    return await queue(resources, session, task_id, "interpolate")


@router.post("/grid", status_code=202)
async def grid(
    body: GridInferenceRequest, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """Per-cell statistics or IDW of a point source's field (a raster, or polygon cells)."""
    source = await _source(session, body.source)
    plan = point_source(source, body.field)
    limits = raster_settings()
    polygons = body.output == "polygons"
    cells_max = limits.max_polygon_cells if polygons else limits.max_cells
    try:
        plan |= grid_plan(body, _bbox(source), limits, cells_max=cells_max)
    except InvalidInput as exc:
        if polygons and "cells" in exc.message:
            raise InvalidInput(f"{exc.message} (for polygon cells)", field=exc.field) from None
        raise
    plan |= {"method": body.method, "power": body.power, "radius": body.radius,
             "min_points": body.min_points, "output": body.output}  # fmt: skip
    what = body.field or "points"
    params = plan | _output_params(
        "grid",
        name=body.name,
        description=body.description,
        default_name=f"{source.name}: {what} ({body.method} grid)",
    )
    step = "grid"
    if polygons:
        step = "grid_cells"
        params = _polygon_output(params, source_path(source), f"{source.sid} grid cells")
    task_id = await _create(session, user, "grid", step, params)
    return await queue(resources, session, task_id, step)


def source_path(source: Source) -> str:
    """The staged file a grid of a source is computed from."""
    return str((source.attributes.get("import") or {}).get("staging_path", ""))


@router.post("/vectorize", status_code=202)
async def vectorize(
    request: Request, user: CurrentUser, resources: ResourcesDep, session: SessionDep
) -> JSONResponse:
    """A raster's regions of equal value (or class) as polygons, loaded as a new source."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        return await _vectorize_upload(request, user, resources, session)
    try:
        body = VectorizeRequest.model_validate(await request.json())
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            raise _field_errors(exc) from None
        raise InvalidInput(f"JSON parse error - {exc}") from None
    if body.source is None:
        raise InvalidInput(
            "This field is required (or upload a GeoTIFF as `file`).", field="source"
        )
    source = await _source(session, body.source)
    facts = (source.attributes or {}).get("raster") or {}
    if source.source_type != "raster" or not facts.get("file"):
        raise InvalidInput(f"source {source.id} is not a raster source", field="source")
    if body.band > int(facts.get("count") or 1):
        raise InvalidInput(
            f"source {source.id} has {facts.get('count')} band(s), not {body.band}", field="band"
        )
    path = raster_settings().dir / str(facts["file"])
    params = _vectorize_params(body, default_name=f"{source.name}: regions")
    params = _polygon_output(params, str(path), str(facts["file"]))
    params["raster_source_id"] = source.id
    task_id = await _create(session, user, "vectorize", "vectorize", params)
    return await queue(resources, session, task_id, "vectorize")


def _vectorize_params(body: VectorizeRequest, *, default_name: str) -> dict[str, Any]:
    return _output_params(
        "vectorize", name=body.name, description=body.description, default_name=default_name
    ) | {"band": body.band, "breaks": body.breaks, "connectivity": body.connectivity}


def _field_errors(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"]]
    return InvalidInput(str(first["msg"]), field=".".join(location) or "non_field_errors")


async def _vectorize_upload(
    request: Request, user: User, resources: ResourcesDep, session: AsyncSession
) -> JSONResponse:
    settings = resources.settings.pipeline
    task_id = uuid.uuid4()
    folder = settings.upload_dir / str(task_id)
    try:
        form = await receive_multipart(
            request, directory=folder, max_bytes=settings.max_upload_bytes
        )
        fields: dict[str, Any] = {k: v for k, v in form.fields.items() if v.strip()}
        if "breaks" in fields:
            fields["breaks"] = _breaks(fields["breaks"])
        try:
            body = VectorizeRequest.model_validate(fields)
        except ValidationError as exc:
            raise _field_errors(exc) from None
        files = [upload for upload in form.files if upload.field == "file"]
        path: Path = await anyio.to_thread.run_sync(
            lambda: prepare_single(
                files,
                folder,
                suffixes=RASTER_SUFFIXES,
                kind="GeoTIFF",
                max_bytes=settings.max_upload_bytes,
            )
        )
        name = ", ".join(upload.filename for upload in files)
        params = _vectorize_params(body, default_name=f"{Path(name).stem}: regions")
        params = _polygon_output(params, str(path), name) | {"upload_dir": str(folder)}
        task = tasks.new_task(
            kind="analysis_vectorize", owner_id=user.id, params=params, step="vectorize"
        )
        task.id = task_id
        session.add(task)
        await session.commit()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return await queue(resources, session, task_id, "vectorize", cleanup=folder)


def _breaks(raw: str) -> Any:
    """Class breaks from a form field: a JSON list, or numbers separated by commas."""
    text = raw.strip()
    try:
        return json.loads(text) if text.startswith("[") else [float(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInput("class breaks must be numbers, e.g. 10,20,50", field="breaks") from None
