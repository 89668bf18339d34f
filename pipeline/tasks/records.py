"""Task records: the states and steps of an import, new tasks, reading and serialising them."""

from __future__ import annotations

import secrets
import string
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Task

IMPORT_STEPS = ("stage", "profile", "load")
# The first step of each task that is not a file import (raster imports and analyses,
# `pipeline.analysis`), and the step it hands on to: an analysis whose output is
# polygons goes on through the import's profile and load steps; one writing a raster
# is done after its first step.
LEAD_STEPS: dict[str, str | None] = {
    "raster": None,
    "interpolate": None,
    "grid": None,
    "vectorize": "profile",
    "grid_cells": "profile",
}
_SID_ALPHABET = string.ascii_lowercase + string.digits
ACTIVE_STATES = ("queued", "running")


class TaskState(StrEnum):
    """The states of `etl_task.state` (the table's check constraint lists the same)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def new_sid() -> str:
    """A fresh public source id, e.g. `src_7fq2k9x0m1ab` (chosen when an import is created)."""
    return "src_" + "".join(secrets.choice(_SID_ALPHABET) for _ in range(12))


def next_step(step: str) -> str | None:
    """The step after `step` in an import, or None after the last one."""
    if step in LEAD_STEPS:
        return LEAD_STEPS[step]
    index = IMPORT_STEPS.index(step)
    return IMPORT_STEPS[index + 1] if index + 1 < len(IMPORT_STEPS) else None


def step_order(step: str | None) -> int:
    """The position of a step in an import (-1 for none), to compare two steps."""
    if step in LEAD_STEPS:
        return 0  # in the place of `stage`: before profile and load
    return IMPORT_STEPS.index(step) if step in IMPORT_STEPS else -1


def iso_z(value: datetime | None) -> str | None:
    """An ISO 8601 timestamp in UTC ending in `Z`, as DRF wrote them."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def serialize_task(task: Task) -> dict[str, Any]:
    """The task document both the ETL service and the CLI show."""
    return {
        "id": str(task.id),
        "kind": task.kind,
        "state": task.state,
        "step": task.step,
        "progress": task.progress,
        "result": task.result,
        "error": task.error,
        "warnings": task.warnings,
        "timings": task.timings,
        "attempts": task.attempts,
        "created_at": iso_z(task.created_at),
        "updated_at": iso_z(task.updated_at),
        "started_at": iso_z(task.started_at),
        "finished_at": iso_z(task.finished_at),
    }


def new_task(
    *, kind: str, owner_id: int | None, params: dict[str, Any], step: str = IMPORT_STEPS[0]
) -> Task:
    """A queued task, due to run its first `step` (not yet added to a session)."""
    return Task(
        id=uuid.uuid4(),
        kind=kind,
        owner_id=owner_id,
        state=TaskState.QUEUED.value,
        step=step,
        params=params,
        progress={},
        timings={},
        warnings=[],
        attempts=0,
    )


def new_import(
    *,
    format: str,
    owner_id: int | None,
    name: str | None,
    path: Path,
    upload_dir: Path,
    file_name: str,
    description: str | None = None,
    options: dict[str, Any] | None = None,
    source_id: int | None = None,
    task_id: uuid.UUID | None = None,
) -> Task:
    """A queued import of the file at `path` (uploaded into `upload_dir`), its sid chosen now.

    `options` are the reader's (`encoding`, `source_crs`, `x`...); `source_id` names an
    existing source whose features the import replaces.
    """
    task = new_task(
        kind=f"import_{format}",
        owner_id=owner_id,
        params={
            "name": name,
            "description": description,
            "format": format,
            "options": dict(options or {}),
            "source_type": format,
            "source_id": source_id,
            "sid": new_sid(),
            "upload_dir": str(upload_dir),
            "path": str(path),
            "file_name": file_name,
        },
    )
    if task_id is not None:
        task.id = task_id
    return task


def new_shapefile_import(
    *,
    owner_id: int | None,
    name: str,
    shp: Path,
    upload_dir: Path,
    file_name: str,
    description: str | None = None,
    encoding: str | None = None,
    source_crs: str | None = None,
    task_id: uuid.UUID | None = None,
) -> Task:
    """A queued shapefile import of the upload set out in `upload_dir`."""
    options = {"encoding": encoding, "source_crs": source_crs}
    return new_import(
        format="shapefile",
        owner_id=owner_id,
        name=name,
        path=shp,
        upload_dir=upload_dir,
        file_name=file_name,
        description=description,
        options={key: value for key, value in options.items() if value},
        task_id=task_id,
    )


def create_task(
    *, session: Session, kind: str, owner_id: int | None, params: dict[str, Any]
) -> Task:
    """Insert a queued task (the caller commits)."""
    task = new_task(kind=kind, owner_id=owner_id, params=params)
    session.add(task)
    session.flush()
    return task


def get_task(*, session: Session, task_id: uuid.UUID | str) -> Task | None:
    """The task, read fresh from the database."""
    return session.scalars(
        select(Task).where(Task.id == as_uuid(task_id)).execution_options(populate_existing=True)
    ).first()


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """The id as a UUID (task ids travel as text in messages and URLs)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
