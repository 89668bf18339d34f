"""Thin Dramatiq actors: each takes a task id and runs one step through `run_step`.

Import this module only after the broker is set (`pipeline.worker` does both).
Retries: `task_max_retries` with backoff for unexpected failures; bad input fails the
task at once (the runner records it and returns normally, so Dramatiq does not retry).

A small file (up to `IMPORT_INLINE_MAX_BYTES`) is imported in one message: the stage
actor runs the profile and the load itself, each claimed, recorded and timed as its
own step, sparing two trips through the queue. A later step then runs under the stage
actor's time limit, so this is done only when its own limit is no shorter.
"""

from __future__ import annotations

import dramatiq
from dramatiq.actor import ActorDecorator

from core.models import Task
from core.settings import get_settings
from pipeline import importing
from pipeline.broker import QUEUE_NAME, STEP_ACTORS
from pipeline.config import import_settings
from pipeline.runner import Hook, StepFunction, run_step


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


STEPS: dict[str, tuple[StepFunction, Hook]] = {
    "stage": (importing.stage_step, _after_stage),
    "profile": (importing.profile_step, _after_later_step),
    "load": (importing.load_step, _after_later_step),
}


def is_small(task: Task) -> bool:
    """Whether the task's upload is small enough to be imported in one message."""
    return importing.input_file(task.params).total_bytes() <= import_settings().inline_max_bytes


def may_run_after_stage(step: str) -> bool:
    """Whether `step` may run under the stage actor's time limit (its own is no shorter)."""
    tuning, default = import_settings(), get_settings().pipeline.step_time_limit_seconds
    return tuning.time_limit(step, default) >= tuning.time_limit("stage", default)


@_step_actor("stage")
def import_stage(task_id: str) -> None:
    """Read the upload with geo_engine and stage it as GeoParquet (and, for a small file,
    profile and load it too)."""
    small: list[bool] = []  # judged once, before the stage's clean-up removes the upload

    def runs_here(task: Task, following: str) -> bool:
        if not small:
            small.append(is_small(task))
        return small[0] and may_run_after_stage(following)

    step: str | None = "stage"
    while step is not None:
        function, hook = STEPS[step]
        step = run_step(task_id, step, function, settings=get_settings(), on_settled=hook,
                        run_here=runs_here)  # fmt: skip


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
