"""A task's life in the worker: what is written as a task moves through its steps.

A task is `queued` until a worker claims its first step, `running` while its steps run
(and between them), then `succeeded` or `failed`. `step` names the step running or
due next. A worker claims a step by setting `heartbeat_at`; it keeps the heartbeat
fresh while it works and clears it when the step ends, so a second delivery of the
same message (Dramatiq delivers at least once) finds the step taken or done, and a
task whose worker died is found by its stale heartbeat (`find_stale`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from core.models import Task
from pipeline.tasks.records import ACTIVE_STATES, TaskState, as_uuid, get_task, next_step


def _stale(seconds: float) -> ColumnElement[bool]:
    return Task.heartbeat_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _jsonb(value: Any) -> Any:
    return bindparam(None, value, type_=JSONB)


def claim_step(
    *,
    session: Session,
    task_id: uuid.UUID | str,
    step: str,
    stale_after: float,
    worker: str | None = None,
) -> Task | None:
    """Take the step for this worker; None when it is done, taken, or the task finished.

    `worker` (host:pid) is shown in the task's progress: who runs the step.
    """
    claimed = session.execute(
        update(Task)
        .where(
            Task.id == as_uuid(task_id),
            Task.state.in_(ACTIVE_STATES),
            Task.step == step,
            or_(Task.heartbeat_at.is_(None), _stale(stale_after)),
        )
        .values(
            state=TaskState.RUNNING.value,
            heartbeat_at=func.now(),
            attempts=Task.attempts + 1,
            started_at=func.coalesce(Task.started_at, func.now()),
            progress={"step": step, "worker": worker},
            updated_at=func.now(),
        )
        .returning(Task.id)
    ).first()
    return get_task(session=session, task_id=task_id) if claimed else None


def _owned(task_id: uuid.UUID | str, step: str) -> tuple[ColumnElement[bool], ...]:
    return (Task.id == as_uuid(task_id), Task.step == step, Task.state.in_(ACTIVE_STATES))


def heartbeat(*, session: Session, task_id: uuid.UUID | str, step: str) -> None:
    """Mark the claimed step as still being worked on."""
    session.execute(
        update(Task)
        .where(*_owned(task_id, step), Task.heartbeat_at.is_not(None))
        .values(heartbeat_at=func.now())
    )


def update_progress(
    *,
    session: Session,
    task_id: uuid.UUID | str,
    step: str,
    rows_done: int,
    rows_total: int | None = None,
    bytes_done: int | None = None,
    bytes_total: int | None = None,
    phase: str | None = None,
    elapsed: float | None = None,
    worker: str | None = None,
) -> None:
    """Record how far the step got (rows and bytes done, of how many) and beat the heart.

    `phase` names what the step is doing (`read`, `copy`, `index 2/4`...); `elapsed`
    is the seconds since the step started, from which readers derive rates and ETAs.
    """
    if rows_total:
        percent: float | None = round(min(100.0, 100.0 * rows_done / rows_total), 1)
    elif bytes_total:
        # A CSV's or a GeoJSON's row count is known only at its end: bytes tell instead.
        percent = round(min(100.0, 100.0 * (bytes_done or 0) / bytes_total), 1)
    else:
        percent = None
    progress = {
        "step": step,
        "phase": phase,
        "rows_done": rows_done,
        "rows_total": rows_total,
        "bytes_done": bytes_done,
        "bytes_total": bytes_total,
        "percent": percent,
        "elapsed": None if elapsed is None else round(elapsed, 3),
        "worker": worker,
    }
    session.execute(
        update(Task)
        .where(*_owned(task_id, step))
        .values(progress=progress, heartbeat_at=func.now(), updated_at=func.now())
    )


def complete_step(
    *,
    session: Session,
    task_id: uuid.UUID | str,
    step: str,
    timings: dict[str, float],
    warnings: list[str] | None = None,
) -> str | None:
    """Record the step's timings and warnings and make the next step due; returns it."""
    following = next_step(step)
    values: dict[str, Any] = {
        "timings": Task.timings.op("||")(_jsonb(timings)),
        "warnings": Task.warnings.op("||")(_jsonb(list(warnings or []))),
        "heartbeat_at": None,
        "updated_at": func.now(),
    }
    if following is not None:
        values.update(step=following, attempts=0, progress={"step": following})
    session.execute(update(Task).where(*_owned(task_id, step)).values(**values))
    return following


def succeed(
    *,
    session: Session,
    task_id: uuid.UUID | str,
    result: dict[str, Any],
) -> None:
    """Finish the task with its result (`source_id`, `sid`, `feature_count`, `staging_path`)."""
    values: dict[str, Any] = {
        "state": TaskState.SUCCEEDED.value,
        "progress": Task.progress.op("||")(_jsonb({"percent": 100.0})),
        "result": result,
        "error": None,
        "heartbeat_at": None,
        "finished_at": func.now(),
        "updated_at": func.now(),
    }
    session.execute(
        update(Task)
        .where(Task.id == as_uuid(task_id), Task.state.in_(ACTIVE_STATES))
        .values(**values)
    )


def fail(*, session: Session, task_id: uuid.UUID | str, code: str, message: str) -> None:
    """Finish the task as failed with `{"code", "message"}` (the step stays where it failed)."""
    session.execute(
        update(Task)
        .where(Task.id == as_uuid(task_id), Task.state.in_(ACTIVE_STATES))
        .values(
            state=TaskState.FAILED.value,
            error={"code": code, "message": message},
            heartbeat_at=None,
            finished_at=func.now(),
            updated_at=func.now(),
        )
    )


def release(
    *, session: Session, task_id: uuid.UUID | str, step: str, warning: str | None = None
) -> None:
    """Give the step back (its heartbeat cleared) so that a retry can claim it."""
    values: dict[str, Any] = {"heartbeat_at": None, "updated_at": func.now()}
    if warning:
        values["warnings"] = Task.warnings.op("||")(_jsonb([warning]))
    session.execute(update(Task).where(*_owned(task_id, step)).values(**values))


def stale_condition(stale_after: float) -> ColumnElement[bool]:
    """Running tasks whose worker stopped beating its heart while holding a step."""
    return and_(
        Task.state == TaskState.RUNNING.value,
        Task.heartbeat_at.is_not(None),
        _stale(stale_after),
    )


def _worker_lost(phase: str) -> Any:
    """The progress document of a task whose worker died: says so, and which worker it was."""
    lost = func.jsonb_build_object(
        "worker_lost", True, "lost_worker", Task.progress["worker"], "phase", phase
    )
    return func.coalesce(Task.progress, _jsonb({})).op("||")(lost)


def find_stale(*, session: Session, stale_after: float) -> list[Task]:
    """The tasks a dead worker left running."""
    return list(session.scalars(select(Task).where(stale_condition(stale_after))))


def reap_stale(*, session: Session, stale_after: float, max_attempts: int) -> list[tuple[str, str]]:
    """Deal with tasks a dead worker left running: give their step back, or fail them.

    Returns `(task id, step)` of the steps given back, for the caller to re-enqueue;
    tasks whose step was already tried `max_attempts` times fail with `worker_lost`.
    """
    stale = stale_condition(stale_after)
    note = "the worker running the step stopped responding; the step was queued again"
    requeued = session.execute(
        update(Task)
        .where(stale, Task.attempts < max_attempts)
        .values(
            heartbeat_at=None,
            updated_at=func.now(),
            warnings=Task.warnings.op("||")(_jsonb([note])),
            progress=_worker_lost("waiting for a worker: the previous one stopped responding"),
        )
        .returning(Task.id, Task.step)
    ).all()
    session.execute(
        update(Task)
        .where(stale, Task.attempts >= max_attempts)
        .values(
            state=TaskState.FAILED.value,
            error={
                "code": "worker_lost",
                "message": f"the worker running this task stopped responding, {max_attempts} times",
            },
            progress=_worker_lost("failed: its workers kept dying"),
            heartbeat_at=None,
            finished_at=func.now(),
            updated_at=func.now(),
        )
    )
    return [(str(task_id), str(step)) for task_id, step in requeued]


def find_due(*, session: Session, idle_after: float) -> list[Task]:
    """Active tasks whose step waits for a worker and that nothing touched for `idle_after` s.

    Normally their message waits in the queue; the reaper checks that it does.
    """
    return list(
        session.scalars(
            select(Task).where(
                Task.state.in_(ACTIVE_STATES),
                Task.heartbeat_at.is_(None),
                Task.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, idle_after),
            )
        )
    )


def requeued(*, session: Session, task_id: uuid.UUID | str, step: str, warning: str) -> None:
    """Note on a due task that its step's message was sent again."""
    session.execute(
        update(Task)
        .where(*_owned(task_id, step), Task.heartbeat_at.is_(None))
        .values(warnings=Task.warnings.op("||")(_jsonb([warning])), updated_at=func.now())
    )
