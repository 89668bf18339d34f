"""Imports end to end: our pipeline (stage + profile + load) against ogr2ogr, into PostGIS.

Both load the same file into the same server, each into a database rebuilt from the
same template before every run: ours into `core_geometry` (committed, with its GiST
index and fresh statistics), ogr2ogr into a fresh table of its own that it indexes and
we ANALYZE. Then again with core_geometry already holding millions of rows of other
sources, imported through the pipeline the same way.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import (
    ChildRun,
    Section,
    count,
    mebibytes,
    ratio,
    run_child,
    seconds,
    verdict,
)
from benchmarks.database import BenchDatabases, ogr2ogr_import
from benchmarks.inputs import Inputs

BAR = 0.6  # ours / ogr2ogr
LOAD_BAR = 0.2  # seconds, the load step of 10K records
# The order the steps' timings are listed in, part by part ("load.copy" goes with
# "load", before "load.index"); any others follow.
TIMING_ORDER = (
    "stage", "read", "scan", "write", "profile", "query",
    "load", "copy", "index", "attach", "analyze",
)  # fmt: skip


def pipeline_import(
    databases: BenchDatabases,
    path: Path,
    *,
    name: str,
    kind: str,
    work: Path,
    floor: bool = False,
) -> ChildRun:
    """One import through the pipeline, in a child process with its own staging directory.

    With `floor`, the server's floor for its staged file too (`payload["floor"]`),
    measured by another child before the staging directory goes.
    """
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=work))
    uploads = Path(tempfile.mkdtemp(prefix="uploads-", dir=work))
    env = {"DATABASE_URL": databases.url, "STAGING_DIR": str(staging), "UPLOAD_DIR": str(uploads)}
    try:
        run = run_child(["import", str(path), "--name", name, "--kind", kind], env=env)
        staged = run.payload.get("staging_path")
        if floor and staged:
            run.payload["floor"] = run_child(["floor", str(staged)], env=env).payload
        return run
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(uploads, ignore_errors=True)


@dataclass
class Comparison:
    """Both tools' runs of one case."""

    ours: list[ChildRun]
    ogr2ogr: list[float]
    ogr2ogr_rows: int

    @property
    def ours_median(self) -> float:
        """The median of our runs (seconds)."""
        return statistics.median(float(run.payload["seconds"]) for run in self.ours)

    @property
    def typical(self) -> ChildRun:
        """Our run closest to the median: its steps and peak RSS are reported."""
        middle = self.ours_median
        return min(self.ours, key=lambda run: abs(run.payload["seconds"] - middle))


def compare(
    databases: BenchDatabases,
    path: Path,
    *,
    template: str | None,
    kind: str,
    repeat: int,
    work: Path,
) -> Comparison | str:
    """Both tools on `path`, `repeat` times each; the reason instead when ours cannot."""
    comparison = Comparison([], [], 0)
    table = f"bench_ogr_{path.stem}"
    for attempt in range(1, max(repeat, 1) + 1):
        databases.reset(template)
        run = pipeline_import(
            databases, path, name=f"bench {path.name} #{attempt}", kind=kind, work=work,
            floor=attempt == 1,
        )  # fmt: skip
        if not run.payload.get("available", True):
            return str(run.payload.get("reason", "not available"))
        comparison.ours.append(run)
        elapsed, comparison.ogr2ogr_rows = ogr2ogr_import(databases.url, path, table)
        comparison.ogr2ogr.append(elapsed)
    return comparison


def run(
    databases: BenchDatabases,
    inputs: Inputs,
    small: Inputs,
    *,
    fillers: int,
    repeat: int,
    work: Path,
) -> Section:
    """Every import case, side by side with ogr2ogr, into an empty and a filled core_geometry."""
    section = Section(
        "import",
        "Import end to end into PostGIS (with GiST index and statistics)",
        [
            "import",
            "core_geometry before",
            "ours",
            "ogr2ogr",
            "server floor",
            "ours / ogr2ogr",
            "bar",
            "result",
            "our steps",
            "our peak RSS",
        ],
    )
    points = count(inputs.points)
    filled: list[float] = []

    def into_filled() -> Comparison | str:
        template, times = _fill(databases, inputs, fillers=fillers, work=work)
        filled.extend(times)
        return compare(
            databases, inputs.points_shp, template=template, kind="shapefile", repeat=repeat,
            work=work,
        )  # fmt: skip

    empty = partial(compare, databases, template=None, repeat=repeat, work=work)
    small_label = f"{count(small.points)} points .shp"
    cases: list[tuple[str, str, Callable[[], Comparison | str]]] = [
        (f"{points} points .shp", "empty", partial(empty, inputs.points_shp, kind="shapefile")),
        (f"{points} points .shp", f"{count(inputs.points * fillers)} rows", into_filled),
        (f"{count(inputs.polygons)} polygons .shp", "empty",
         partial(empty, inputs.polygons_shp, kind="shapefile")),
        (f"{points} points .csv", "empty", partial(empty, inputs.points_csv, kind="csv")),
        (small_label, "empty", partial(empty, small.points_shp, kind="shapefile")),
    ]  # fmt: skip
    for label, before, case in cases:
        try:
            outcome: Comparison | str | Exception = case()
        except (RuntimeError, psycopg.Error) as exc:
            section.failures.append(f"import {label} into {before}: {exc}")
            outcome = exc
        # The small file's bar is its load step's (below), not a ratio.
        _add(section, label, before, outcome, bar=None if label == small_label else BAR)
    _add_load_step(section, small_label, section.data[-1])

    section.notes += [
        "ours: the pipeline's own Dramatiq actors run in one worker process (a StubBroker "
        "instead of Redis; each message taken off the queue in turn; DuckDB warmed up first, "
        "as the worker does when it starts), timed from the task's creation to its success: "
        "stage (geo_engine read + GeoParquet), profile (DuckDB), "
        "load (binary COPY, index, ANALYZE), and the task records between them.",
        "ogr2ogr: `ogr2ogr -f PostgreSQL PG:... FILE -nln bench_ogr_<file> "
        "-lco SPATIAL_INDEX=GIST --config PG_USE_COPY YES -overwrite` (CSV also with "
        "`-oo X_POSSIBLE_NAMES=lon -oo Y_POSSIBLE_NAMES=lat -oo KEEP_GEOM_COLUMNS=NO "
        "-oo AUTODETECT_TYPE=YES -a_srs EPSG:4326`), then `ANALYZE` of its table, timed together.",
        "server floor: PostgreSQL's work alone in our load of the same staged file, with "
        "nothing read, staged, profiled or encoded while the clock runs (the rows encoded for "
        "COPY in memory first): as many connections as our load uses, each creating its "
        "table, COPYing its chunk, building core_geometry's three indexes, ANALYZE, COMMIT "
        "(the median of 3; in brackets, over ogr2ogr's time). No import can load faster.",
        "Before every run the database is rebuilt from the same template, so each run meets "
        "the same core_geometry.",
        f"The {count(inputs.points * fillers)} rows of other sources: {fillers} pipeline "
        f"imports of the {points}-point file, taking "
        + (", ".join(seconds(value) for value in filled) or "— (failed)")
        + " as core_geometry grew.",
    ]
    section.notes += _detail_notes(section)
    return section


def _fill(
    databases: BenchDatabases, inputs: Inputs, *, fillers: int, work: Path
) -> tuple[str, list[float]]:
    """A template whose core_geometry holds `fillers` imports of the points file."""
    databases.reset()
    times = []
    for index in range(1, fillers + 1):
        run = pipeline_import(
            databases, inputs.points_shp, name=f"bench filler {index}", kind="shapefile", work=work
        )
        times.append(float(run.payload["seconds"]))
    return databases.snapshot(f"{databases.name}_filled"), times


def _add(
    section: Section,
    label: str,
    before: str,
    outcome: Comparison | str | Exception,
    *,
    bar: float | None,
) -> None:
    shown = "—" if bar is None else f"≤ {bar:g}x"
    if isinstance(outcome, str):
        cells = [label, before, "not available", "—", "—", "—", shown, verdict(None), outcome, "—"]
        section.add(cells, case=label, before=before, available=False, reason=outcome)
        return
    if isinstance(outcome, Exception):
        reason = str(outcome).strip().splitlines()[0][:120]
        cells = [label, before, "failed", "—", "—", "—", shown, "FAILED", reason, "—"]
        section.add(cells, case=label, before=before, available=False, error=str(outcome))
        return
    typical = outcome.typical.payload
    ours, theirs = outcome.ours_median, statistics.median(outcome.ogr2ogr)
    share = ours / theirs
    checks = typical["checks"]
    checked = (
        checks["rows"] == typical["feature_count"] == outcome.ogr2ogr_rows
        and checks["gist_index"]
        and checks["statistics"]
    )
    passed = None if bar is None else share <= bar
    result = verdict(passed) if checked else "MISS (check)"
    steps = typical["steps"]
    shares = ", ".join(
        f"{step} {seconds(value)} ({value / typical['seconds']:.0%})"
        for step, value in steps.items()
    )
    floor = next((run.payload["floor"] for run in outcome.ours if "floor" in run.payload), None)
    floor_seconds = None if floor is None else float(floor["seconds"])
    cells = [
        label,
        before,
        seconds(ours),
        seconds(theirs),
        "—"
        if floor_seconds is None
        else f"{seconds(floor_seconds)} ({floor_seconds / theirs:.2f}x)",
        ratio(share),
        shown,
        result,
        shares,
        mebibytes(outcome.typical.max_rss),
    ]
    figures: dict[str, Any] = {
        "case": label,
        "before": before,
        "available": True,
        "ours_seconds": ours,
        "ogr2ogr_seconds": theirs,
        "ours_times": [run.payload["seconds"] for run in outcome.ours],
        "ogr2ogr_times": outcome.ogr2ogr,
        "ours_over_ogr2ogr": share,
        "server_floor": floor,
        "passed": None if passed is None else passed and checked,
        "steps": steps,
        "timings": typical["timings"],
        "checks": checks,
        "feature_count": typical["feature_count"],
        "ogr2ogr_rows": outcome.ogr2ogr_rows,
        "warnings": typical["warnings"],
        "ours_max_rss": outcome.typical.max_rss,
    }
    section.add(cells, **figures)


def _add_load_step(section: Section, label: str, figures: dict[str, Any]) -> None:
    bar = f"< {LOAD_BAR:g} s"
    load = figures.get("steps", {}).get("load") if figures.get("available") else None
    case = f"{label}: load step alone"
    passed = None if load is None else load < LOAD_BAR
    cells = [case, "empty", seconds(load), "—", "—", "—", bar, verdict(passed), "", "—"]
    section.add(cells, case=case, load_seconds=load, passed=passed)


def _timing_key(name: str) -> tuple[list[int], str]:
    rank = [
        TIMING_ORDER.index(p) if p in TIMING_ORDER else len(TIMING_ORDER) for p in name.split(".")
    ]
    return rank, name


def _detail_notes(section: Section) -> list[str]:
    notes = []
    for figures in section.data:
        if "timings" not in figures:
            continue
        recorded: dict[str, float] = figures["timings"]
        # Where the steps break their time down (`load.copy`), the parts say more.
        if any("." in name for name in recorded):
            recorded = {name: value for name, value in recorded.items() if "." in name}
        ordered = sorted(recorded.items(), key=lambda item: _timing_key(item[0]))
        timings = ", ".join(f"{name} {seconds(float(value))}" for name, value in ordered)
        checks = figures["checks"]
        notes.append(
            f"{figures['case']} into {figures['before']} core_geometry: inside the steps "
            f"{timings}; loaded {checks['rows']:,} rows into {checks['table']} "
            f"(GiST index: {'yes' if checks['gist_index'] else 'NO'}, "
            f"statistics: {'yes' if checks['statistics'] else 'NO'}); "
            f"ogr2ogr loaded {figures['ogr2ogr_rows']:,}."
        )
    return notes
