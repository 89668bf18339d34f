"""The import's steps as the worker runs them: task params in, step functions called, facts out.

Each function takes a `StepContext` and calls one plain step function
(`pipeline.steps.stage/profile/load.run`); the actors only name which one.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import geo_engine
from core.errors import InvalidInput
from core.models import Task
from core.settings import Settings
from pipeline.config import import_settings
from pipeline.runner import StepContext
from pipeline.steps import load, profile, shapefile, stage
from pipeline.steps.formats import InputFile, bytes_read, needs_transcoding, to_utf8

# Bad rows a skip warning lists by line; past them the full list goes to a CSV file.
SKIPPED_ROWS_LISTED = 20


def staged_path(settings: Settings, task: Task) -> Path:
    """Where the task's GeoParquet file is staged (named after the source's sid)."""
    return settings.pipeline.staging_dir / f"{task.params['sid']}.parquet"


def profile_path(settings: Settings, task: Task) -> Path:
    """Where the task's profile is kept between the profile and load steps."""
    return settings.pipeline.staging_dir / f"{task.params['sid']}.profile.json"


def skipped_rows_path(settings: Settings, task: Task) -> Path:
    """Where the CSV rows a task left out are listed (line,reason) when there are many."""
    return settings.pipeline.staging_dir / f"{task.params['sid']}.skipped_rows.csv"


def input_file(params: dict[str, Any]) -> InputFile:
    """The file a task imports, with its reader's options (from the task's params)."""
    options = params.get("options")
    if options is None:  # tasks queued before formats had options of their own
        options = {key: params.get(key) for key in ("encoding", "source_crs")}
    options = {key: value for key, value in options.items() if value not in (None, "")}
    return InputFile(path=Path(params["path"]), format=params.get("format", "shapefile"),
                     options=options)  # fmt: skip


def stage_step(context: StepContext) -> None:
    """Read the uploaded file with geo_engine and stage it as GeoParquet."""
    settings = context.settings.pipeline
    source = input_file(context.task.params)
    if not source.path.is_file():
        raise InvalidInput(
            f"{source.path.name}: the uploaded file is no longer there", field="file"
        )
    layout = shapefile.describe(source.path) if source.format == "shapefile" else None
    total_bytes = source.total_bytes()
    encoding = source.option("encoding")
    if source.format == "csv" and needs_transcoding(encoding):
        converted = source.path.with_name(f"{source.path.stem}.utf-8{source.path.suffix}")
        to_utf8(source.path, encoding, converted)
        options = {key: value for key, value in source.options.items() if key != "encoding"}
        source = InputFile(path=converted, format="csv", options=options)
    files = source.files()

    def report(phase: str, rows: int, rows_total: int | None) -> None:
        if phase == "write":
            context.progress(rows_done=rows, rows_total=rows_total, phase=phase)
            return
        if layout is not None:
            done: int | None = layout.bytes_at(rows)
            rows_total = layout.record_count
        else:
            done = bytes_read(files)
        context.progress(
            rows_done=rows,
            rows_total=rows_total,
            bytes_done=done,
            bytes_total=total_bytes,
            phase=phase,
        )

    try:
        result = stage.run(
            source=source,
            destination=staged_path(context.settings, context.task),
            batch_size=settings.batch_size,
            memory_limit=import_settings().stage_memory_limit,
            spill_dir=settings.staging_dir / f".spill-{os.getpid()}",
            on_progress=report,
        )
    except geo_engine.GeoEngineError as exc:
        # The user knows the file by its name, not by the server's upload folder.
        raise type(exc)(str(exc).replace(f"{source.path.parent}{os.sep}", "")) from exc
    context.timings.update(result.timings)
    if source.format == "shapefile":
        context.warnings.extend(shapefile.missing_part_warnings(source.path))
    if result.skipped_rows:
        name = context.task.params.get("file_name") or source.path.name
        listing = None
        if len(result.skipped_rows) > SKIPPED_ROWS_LISTED:
            listing = write_skipped_rows(
                skipped_rows_path(context.settings, context.task), result.skipped_rows
            )
        context.warnings.append(skipped_rows_warning(name, result.skipped_rows, listing))


def skipped_rows_warning(
    name: str, skipped: list[tuple[int, str]], listing: Path | None = None
) -> str:
    """The task warning about the rows left out: how many, the first lines and why, and
    where the full list is when it is longer than SKIPPED_ROWS_LISTED."""
    count = len(skipped)
    lines = "; ".join(f"line {line}: {reason}" for line, reason in skipped[:SKIPPED_ROWS_LISTED])
    warning = (
        f"{count} bad row{'s' if count != 1 else ''} of {name} "
        f"{'were' if count != 1 else 'was'} left out (on_bad_rows=skip): {lines}"
    )
    if count > SKIPPED_ROWS_LISTED:
        warning += f"; … and {count - SKIPPED_ROWS_LISTED} more"
        if listing is not None:
            warning += f" (all {count} are listed in {listing})"
    return warning


def write_skipped_rows(path: Path, skipped: list[tuple[int, str]]) -> Path:
    """Write the rows left out as a CSV file of line,reason (in place once complete)."""
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows(skipped)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def profile_step(context: StepContext) -> None:
    """Profile the staged file with DuckDB; keep the profile beside it for the load."""
    started = time.perf_counter()
    staged = staged_path(context.settings, context.task)
    rows = pq.read_metadata(staged).num_rows

    def report(percent: float) -> None:
        context.progress(rows_done=int(rows * percent / 100), rows_total=rows, phase="query")

    result = profile.run(path=staged, on_progress=report)
    target = profile_path(context.settings, context.task)
    partial = target.with_name(target.name + ".part")
    partial.write_text(json.dumps(result.attributes))
    os.replace(partial, target)
    context.warnings.extend(result.warnings)
    context.timings["query"] = round(time.perf_counter() - started, 6)


def load_step(context: StepContext) -> None:
    """COPY the staged file into core_geometry under a new source, in one transaction."""
    task, settings = context.task, context.settings
    params = task.params
    path = staged_path(settings, task)
    attributes: dict[str, Any] = json.loads(profile_path(settings, task).read_text())
    source = input_file(params)
    attributes["import"] = {
        "task_id": str(task.id),
        "file": params.get("file_name"),
        "format": source.format,
        "options": source.options,
        "encoding": source.option("encoding"),
        "source_crs": source.option("source_crs"),
        "staging_path": str(path),
    }

    def report(phase: str, rows_done: int, rows_total: int, done: int, total: int) -> None:
        context.progress(
            rows_done=rows_done,
            rows_total=rows_total,
            bytes_done=done,
            bytes_total=total,
            phase=phase,
        )

    tuning = import_settings()
    result = load.run(
        engine=context.engine,
        path=path,
        sid=params["sid"],
        name=params.get("name"),
        source_type=params.get("source_type", "shapefile"),
        description=params.get("description"),
        attributes=attributes,
        source_id=params.get("source_id"),
        batch_size=settings.pipeline.batch_size,
        statement_timeout=tuning.time_limit("load", settings.pipeline.step_time_limit_seconds),
        parallelism=tuning.parallelism(),
        parallel_min_rows=tuning.load_parallel_min_rows,
        on_progress=report,
    )
    if result.already_loaded:
        context.warnings.append(f"source {result.sid} was already loaded by an earlier attempt")
    context.timings.update(result.timings)
    context.result = {
        "source_id": result.source_id,
        "sid": result.sid,
        "feature_count": result.feature_count,
        "staging_path": str(path),
        "replaced": result.replaced,
        "profile": profile_summary(attributes),
    }


def profile_summary(attributes: dict[str, Any]) -> dict[str, Any]:
    """The profile in brief, for the task's result (the whole is in the source's attributes)."""
    geometry = attributes.get("geometry") or {}
    crs = attributes.get("crs") or {}
    identifier = crs.get("id") if isinstance(crs, dict) else None
    return {
        "feature_count": attributes.get("feature_count"),
        "geometry_types": geometry.get("type_counts", {}),
        "bbox": attributes.get("bbox"),
        "crs": (
            f"{identifier['authority']}:{identifier['code']}"
            if isinstance(identifier, dict) and {"authority", "code"} <= set(identifier)
            else crs.get("name")
            if isinstance(crs, dict)
            else None
        ),
        "null_geometries": geometry.get("null_count", 0),
        "empty_geometries": geometry.get("empty_count", 0),
        "invalid_geometries": geometry.get("invalid_count", 0),
        "columns": [
            {"name": c.get("name"), "type": c.get("type"), "null_count": c.get("null_count")}
            for c in attributes.get("columns", [])
        ],
    }


def remove_upload(settings: Settings, task: Task) -> None:
    """Delete the task's uploaded files (only ever inside the upload directory)."""
    folder = Path(task.params.get("upload_dir", "")).resolve()
    root = settings.pipeline.upload_dir.resolve()
    if folder != root and folder.is_relative_to(root):
        shutil.rmtree(folder, ignore_errors=True)


def remove_staged(settings: Settings, task: Task) -> None:
    """Delete a failed task's staged file, profile and list of skipped rows (no source will
    point at them)."""
    staged_path(settings, task).unlink(missing_ok=True)
    profile_path(settings, task).unlink(missing_ok=True)
    skipped_rows_path(settings, task).unlink(missing_ok=True)
