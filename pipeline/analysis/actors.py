"""Thin Dramatiq actors of raster imports and analyses: each runs one lead step.

Import this module only after the broker is set (`pipeline.worker` does both). The
options are the import actors' (`pipeline.actors`): retries with backoff for unexpected
failures, bad input failing the task at once.
"""

from __future__ import annotations

import dramatiq
from dramatiq.actor import ActorDecorator

from core.models import Task
from core.settings import get_settings
from pipeline.analysis import rasters, run
from pipeline.broker import LEAD_STEP_ACTORS, QUEUE_NAME
from pipeline.config import import_settings
from pipeline.runner import StepFunction, run_step


def _lead_actor(step: str) -> ActorDecorator:
    limits = get_settings().pipeline
    seconds = import_settings().time_limit(step, limits.step_time_limit_seconds)
    return dramatiq.actor(
        actor_name=LEAD_STEP_ACTORS[step],
        queue_name=QUEUE_NAME,
        max_retries=limits.task_max_retries,
        min_backoff=1_000,
        max_backoff=60_000,
        time_limit=seconds * 1000,
    )


def _cleanup(task: Task, failed: bool) -> None:
    rasters.cleanup(get_settings(), task, failed)


def _staged_cleanup(task: Task, failed: bool) -> None:
    run.cleanup_staged(get_settings(), task, failed)


def _run(task_id: str, step: str, function: StepFunction, *, staged: bool = False) -> None:
    hook = _staged_cleanup if staged else _cleanup
    run_step(task_id, step, function, settings=get_settings(), on_settled=hook)


@_lead_actor("raster")
def raster_import(task_id: str) -> None:
    """Import an uploaded GeoTIFF as a COG in the raster store."""
    _run(task_id, "raster", rasters.import_raster_step)


@_lead_actor("interpolate")
def analysis_interpolate(task_id: str) -> None:
    """Spline-interpolate a point source's field onto a grid, as a raster source."""
    _run(task_id, "interpolate", run.interpolate_step)


@_lead_actor("grid")
def analysis_grid(task_id: str) -> None:
    """Grid statistics or IDW of a point source's field, as a raster source."""
    _run(task_id, "grid", run.grid_step)


@_lead_actor("vectorize")
def analysis_vectorize(task_id: str) -> None:
    """Polygons of a raster's regions, staged for the import's profile and load steps."""
    _run(task_id, "vectorize", run.vectorize_step, staged=True)


@_lead_actor("grid_cells")
def analysis_grid_cells(task_id: str) -> None:
    """Grid statistics as polygon cells, staged for the import's profile and load steps."""
    _run(task_id, "grid_cells", run.grid_cells_step, staged=True)
