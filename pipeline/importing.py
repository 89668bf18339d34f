"""The import's steps as the worker runs them: task params in, step functions called, facts out.

Each function takes a `StepContext` and calls one plain step function
(`pipeline.steps.stage/profile/load.run`); the actors only name which one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import geo_engine
from core.errors import InvalidInput
from core.models import Task
from core.settings import Settings
from pipeline.runner import StepContext
from pipeline.steps import load, profile, shapefile, stage


def staged_path(settings: Settings, task: Task) -> Path:
    """Where the task's GeoParquet file is staged (named after the source's sid)."""
    return settings.pipeline.staging_dir / f"{task.params['sid']}.parquet"


def profile_path(settings: Settings, task: Task) -> Path:
    """Where the task's profile is kept between the profile and load steps."""
    return settings.pipeline.staging_dir / f"{task.params['sid']}.profile.json"


def stage_step(context: StepContext) -> None:
    """Read the uploaded shapefile with geo_engine and stage it as GeoParquet."""
    params = context.task.params
    source = Path(params["path"])
    if not source.is_file():
        raise InvalidInput(f"{source.name}: the uploaded file is no longer there", field="file")
    layout = shapefile.describe(source)

    def report(rows: int) -> None:
        context.progress(
            rows_done=rows,
            rows_total=layout.record_count,
            bytes_done=layout.bytes_at(rows),
            bytes_total=layout.total_bytes,
        )

    try:
        result = stage.run(
            source=source,
            destination=staged_path(context.settings, context.task),
            encoding=params.get("encoding"),
            source_crs=params.get("source_crs"),
            batch_size=context.settings.pipeline.batch_size,
            on_progress=report,
        )
    except geo_engine.GeoEngineError as exc:
        # The user knows the file by its name, not by the server's upload folder.
        raise type(exc)(str(exc).replace(f"{source.parent}{os.sep}", "")) from exc
    context.timings.update(result.timings)


def profile_step(context: StepContext) -> None:
    """Profile the staged file with DuckDB; keep the profile beside it for the load."""
    started = time.perf_counter()
    result = profile.run(path=staged_path(context.settings, context.task))
    target = profile_path(context.settings, context.task)
    partial = target.with_name(target.name + ".part")
    partial.write_text(json.dumps(result.attributes))
    os.replace(partial, target)
    context.warnings.extend(result.warnings)
    context.timings["profile"] = round(time.perf_counter() - started, 6)


def load_step(context: StepContext) -> None:
    """COPY the staged file into core_geometry under a new source, in one transaction."""
    task, settings = context.task, context.settings
    params = task.params
    path = staged_path(settings, task)
    attributes: dict[str, Any] = json.loads(profile_path(settings, task).read_text())
    attributes["import"] = {
        "task_id": str(task.id),
        "file": params.get("file_name"),
        "encoding": params.get("encoding"),
        "source_crs": params.get("source_crs"),
        "staging_path": str(path),
    }

    def report(rows_done: int, rows_total: int, bytes_done: int, bytes_total: int) -> None:
        context.progress(
            rows_done=rows_done,
            rows_total=rows_total,
            bytes_done=bytes_done,
            bytes_total=bytes_total,
        )

    result = load.run(
        engine=context.engine,
        path=path,
        sid=params["sid"],
        name=params["name"],
        source_type=params.get("source_type", "shapefile"),
        description=params.get("description"),
        attributes=attributes,
        batch_size=settings.pipeline.batch_size,
        on_progress=report,
    )
    if result.already_loaded:
        context.warnings.append(f"source {result.sid} was already loaded by an earlier attempt")
    context.timings.update(result.timings or {"load": 0.0})
    context.result = {
        "source_id": result.source_id,
        "sid": result.sid,
        "feature_count": result.feature_count,
        "staging_path": str(path),
    }


def remove_upload(settings: Settings, task: Task) -> None:
    """Delete the task's uploaded files (only ever inside the upload directory)."""
    folder = Path(task.params.get("upload_dir", "")).resolve()
    root = settings.pipeline.upload_dir.resolve()
    if folder != root and folder.is_relative_to(root):
        shutil.rmtree(folder, ignore_errors=True)


def remove_staged(settings: Settings, task: Task) -> None:
    """Delete a failed task's staged file and profile (no source will point at them)."""
    staged_path(settings, task).unlink(missing_ok=True)
    profile_path(settings, task).unlink(missing_ok=True)
