"""Raster outputs as the worker runs them: a COG written aside, profiled, then registered.

`import_raster_step` is the raster import's one step; `publish_grid` is how interpolate
and grid put their grid in the raster store. Both end in `register.register`, so a
failed task leaves no COG and no source row (`cleanup` removes what it wrote aside).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInput
from core.models import Task
from core.settings import Settings
from pipeline.config import raster_settings
from pipeline.importing import remove_upload
from pipeline.runner import StepContext
from pipeline.steps import raster
from pipeline.steps.register import Registered, register

# Where a raster layer's tiles are served: the REST API's route (behind its token).
TILE_PATH = "/api/v1/tiles/raster/{source_id}/{{z}}/{{x}}/{{y}}.png"


def store() -> Path:
    """The raster store (created when missing)."""
    folder = raster_settings().dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def partial_of(task: Task) -> Path:
    """Where the task's COG is written before it is registered."""
    return raster.partial_path(store() / raster.store_name(task.params["sid"]))


def default_style(attributes: dict[str, Any]) -> dict[str, Any]:
    """A raster layer's first style: its first band stretched over its range."""
    bands = attributes.get("raster", {}).get("bands") or [{}]
    low, high = bands[0].get("min"), bands[0].get("max")
    style: dict[str, Any] = {"colormap_name": "viridis"}
    if low is not None and high is not None:
        style["rescale"] = [low, high]
    return style


def _registered_result(done: Registered, attributes: dict[str, Any]) -> dict[str, Any]:
    facts = attributes.get("raster", {})
    return {
        "source_id": done.source_id,
        "sid": done.sid,
        "layer_id": done.layer_id,
        "feature_count": 0,
        "raster_path": str(done.path),
        "replaced": done.replaced,
        "tile_url": TILE_PATH.format(source_id=done.source_id),
        "profile": {
            "bbox": attributes.get("bbox"),
            "crs": attributes.get("crs"),
            "width": facts.get("width"),
            "height": facts.get("height"),
            "bands": facts.get("bands"),
        },
    }


def finish(
    context: StepContext, *, partial: Path, attributes: dict[str, Any], source_type: str
) -> None:
    """Register the COG at `partial` as the task's source (with a raster layer)."""
    params = context.task.params
    context.progress(rows_done=0, phase="register", force=True)
    done = register(
        engine=context.engine,
        sid=params["sid"],
        name=params.get("name"),
        description=params.get("description"),
        source_type=source_type,
        attributes=attributes,
        partial=partial,
        store=store(),
        source_id=params.get("source_id"),
        style=default_style(attributes),
    )
    if done.already_registered:
        context.warnings.append(f"source {done.sid} was already registered by an earlier attempt")
    context.result = _registered_result(done, attributes)


def import_raster_step(context: StepContext) -> None:
    """Check the uploaded GeoTIFF, rewrite it as a COG, profile it and register it."""
    params = context.task.params
    path, name = Path(params["path"]), params.get("file_name") or Path(params["path"]).name
    if not path.is_file():
        raise InvalidInput(f"{name}: the uploaded file is no longer there", field="file")
    context.progress(rows_done=0, phase="check", force=True)
    info = raster.check(path, name=name, max_pixels=raster_settings().max_pixels)
    partial = partial_of(context.task)
    context.progress(rows_done=0, rows_total=info.height, phase="cog", force=True)
    raster.write_cog(path, partial)
    context.progress(rows_done=info.height, rows_total=info.height, phase="profile", force=True)
    attributes = raster.profile(partial, file_name=raster.store_name(params["sid"]))
    attributes["import"] = {
        "task_id": str(context.task.id),
        "file": name,
        "format": "geotiff",
        "source_crs": info.crs,
    }
    finish(context, partial=partial, attributes=attributes, source_type="raster")


def publish_grid(
    context: StepContext,
    grid: np.ndarray[Any, Any],
    *,
    bbox: tuple[float, float, float, float],
    crs: str,
    analysis: dict[str, Any],
) -> None:
    """Write an analysis's grid as a COG (NaN: nodata) and register it as a raster source."""
    partial = partial_of(context.task)
    context.progress(rows_done=0, phase="cog", force=True)
    raster.write_array_cog(grid, bbox=bbox, crs=crs, destination=partial, nodata=float("nan"))
    attributes = raster.profile(partial, file_name=raster.store_name(context.task.params["sid"]))
    attributes["analysis"] = analysis
    attributes["import"] = {"task_id": str(context.task.id), "format": "analysis"}
    finish(context, partial=partial, attributes=attributes, source_type="raster")


def cleanup(settings: Settings, task: Task, failed: bool) -> None:
    """After the step: the upload goes; a failed task's COG written aside goes too."""
    remove_upload(settings, task)
    if failed:
        partial_of(task).unlink(missing_ok=True)
