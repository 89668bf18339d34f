"""Thin Dramatiq actors: each takes a task id and runs one step through `run_step`.

Import this module only after the broker is set (`pipeline.worker` does both).
Retries: `task_max_retries` with backoff for unexpected failures; bad input fails the
task at once (the runner records it and returns normally, so Dramatiq does not retry).
"""

from __future__ import annotations

import dramatiq
from dramatiq.actor import ActorDecorator

from core.models import Task
from core.settings import get_settings
from pipeline import importing
from pipeline.broker import QUEUE_NAME, STEP_ACTORS
from pipeline.config import import_settings
from pipeline.runner import run_step


def _step_actor(step: str) -> ActorDecorator:
    limits = get_settings().pipeline
    seconds = import_settings().time_limit(step, limits.step_time_limit_seconds)
    return dramatiq.actor(
        actor_name=STEP_ACTORS[step],
        queue_name=QUEUE_NAME,
        max_retries=limits.task_max_retries,
        min_backoff=1_000,
        max_backoff=60_000,
        time_limit=seconds * 1000,
    )


def _after_stage(task: Task, failed: bool) -> None:
    settings = get_settings()
    importing.remove_upload(settings, task)
    if failed:
        importing.remove_staged(settings, task)


def _after_later_step(task: Task, failed: bool) -> None:
    if failed:
        importing.remove_staged(get_settings(), task)


@_step_actor("stage")
def import_stage(task_id: str) -> None:
    """Read the upload with geo_engine and stage it as GeoParquet."""
    run_step(
        task_id, "stage", importing.stage_step, settings=get_settings(), on_settled=_after_stage
    )


@_step_actor("profile")
def import_profile(task_id: str) -> None:
    """Profile the staged file with DuckDB."""
    run_step(
        task_id,
        "profile",
        importing.profile_step,
        settings=get_settings(),
        on_settled=_after_later_step,
    )


@_step_actor("load")
def import_load(task_id: str) -> None:
    """COPY the staged file into PostGIS."""
    run_step(
        task_id, "load", importing.load_step, settings=get_settings(), on_settled=_after_later_step
    )
