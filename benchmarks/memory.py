"""Memory: the peak RSS of streaming and of importing a large shapefile, each in its own process."""

from __future__ import annotations

from pathlib import Path

import psycopg

from benchmarks.common import GIB, Section, count, mebibytes, run_child, seconds, verdict
from benchmarks.database import BenchDatabases
from benchmarks.imports import pipeline_import
from benchmarks.inputs import ensure_points_shapefile

BAR = GIB


def run(databases: BenchDatabases, directory: Path, points: int, *, work: Path) -> Section:
    """Peak RSS of a bare interpreter, of geo_engine streaming the file, and of its import."""
    section = Section(
        "memory",
        "Memory: peak RSS of one process",
        ["process", "rows", "time", "peak RSS", "bar", "result"],
    )
    path = ensure_points_shapefile(directory, points)
    label = f"{count(points)} points .shp"
    bar = "< 1 GiB"

    floor = run_child(["baseline"])
    section.add(
        ["Python + pyarrow + geo_engine imported", "—", "—", mebibytes(floor.max_rss), "", ""],
        case="baseline",
        max_rss=floor.max_rss,
    )

    streamed = run_child(["stream", str(path)])
    rows, elapsed = int(streamed.payload["rows"]), float(streamed.payload["seconds"])
    section.add(
        [
            f"geo_engine.stream_shapefile, {label}",
            f"{rows:,}",
            seconds(elapsed),
            mebibytes(streamed.max_rss),
            bar,
            verdict(streamed.max_rss < BAR),
        ],
        case="stream",
        rows=rows,
        seconds=elapsed,
        max_rss=streamed.max_rss,
        passed=streamed.max_rss < BAR,
    )

    try:
        databases.reset()
        imported = pipeline_import(
            databases, path, name=f"bench memory {path.name}", kind="shapefile", work=work
        )
    except (RuntimeError, psycopg.Error) as exc:
        section.failures.append(f"import of {path.name}: {exc}")
        reason = str(exc).strip().splitlines()[0][:120]
        section.add(
            [f"pipeline import, {label}", "—", reason, "—", bar, "FAILED"],
            case="import",
            error=str(exc),
        )
    else:
        payload = imported.payload
        section.add(
            [
                f"pipeline import (stage + profile + load), {label}",
                f"{int(payload['feature_count']):,}",
                seconds(float(payload["seconds"])),
                mebibytes(imported.max_rss),
                bar,
                verdict(imported.max_rss < BAR),
            ],
            case="import",
            rows=payload["feature_count"],
            seconds=payload["seconds"],
            steps=payload["steps"],
            timings=payload["timings"],
            max_rss=imported.max_rss,
            passed=imported.max_rss < BAR,
        )
    section.notes.append(
        "Each in a fresh `python -m benchmarks.child` process; peak RSS is that process's "
        "VmHWM at its end (not ru_maxrss, which on Linux starts from the parent's high-water "
        "mark). The stream keeps no batch; the import runs the pipeline's actors as in the "
        "import section (PostgreSQL's own memory is not counted)."
    )
    return section
