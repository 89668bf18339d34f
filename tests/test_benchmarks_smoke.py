"""The benchmark harness on tiny inputs: every section runs and reports its tables.

Structure only: a benchmark measures, it never asserts a time. The imports go into the
harness's own `maps_bench_smoke` databases (dropped at the end), never the dev database.
"""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from benchmarks import imports, report
from benchmarks.common import Sizes
from benchmarks.database import BenchDatabases
from benchmarks.inputs import Inputs, ensure
from benchmarks.run import run_benchmarks
from core.settings import DatabaseSettings

TINY = Sizes(points=2_000, polygons=200, small_points=500, fillers=1, memory_points=2_000)
VERDICTS = {"PASS", "MISS", "n/a", "", "MISS (check)", "FAILED"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """The benchmark's inputs at 2,000 points, made once by the project's generator."""
    folder = tmp_path_factory.mktemp("bench")
    return ensure(folder, points=TINY.points, polygons=TINY.polygons, log=False)


def _check_table(section_dict: dict[str, object]) -> None:
    columns, rows, data = section_dict["columns"], section_dict["rows"], section_dict["data"]
    assert isinstance(columns, list) and isinstance(rows, list) and isinstance(data, list)
    assert rows and len(rows) == len(data)
    for row in rows:
        assert len(row) == len(columns)
        assert row[columns.index("result")] in VERDICTS


def test_reads_transforms_and_memory_report_every_row(tiny: Inputs) -> None:
    """The in-process sections and the memory one on 2,000 points, with their Markdown."""
    out = Console(file=io.StringIO(), width=200)
    result = run_benchmarks(
        sizes=TINY,
        repeat=1,
        only={"reads", "transform", "memory"},
        data_dir=tiny.directory,
        db_prefix="maps_bench_smoke",
        console=out,
    )
    assert result.failed == []
    sections = {section.key: section.as_dict() for section in result.sections}
    assert set(sections) == {"reads", "transform", "memory"}
    for table in sections.values():
        _check_table(table)
    reads = sections["reads"]["data"]
    assert [row["case"] for row in reads] == [
        "2K points .shp",
        "200 polygons .shp",
        "2K points .csv",
        "2K points .geojson",
    ]
    for row in reads:
        if row["available"]:
            assert row["rows_ours"] == row["rows_pyogrio"]
    assert [row["case"] for row in sections["memory"]["data"]] == ["baseline", "stream", "import"]
    assert sections["memory"]["data"][1]["rows"] == TINY.memory_points
    assert all(row["max_rss"] > 0 for row in sections["memory"]["data"])
    text = report.markdown(result.sections, result.machine, result.versions, "bench")
    for section in result.sections:
        assert f"**{section.title}**" in text
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'maps_bench_smoke%'"
        ).fetchone()
    assert left == (0,)


def test_import_comparison_loads_both_sides(tiny: Inputs, tmp_path: Path) -> None:
    """One tiny shapefile through the pipeline and through ogr2ogr, checked after loading."""
    databases = BenchDatabases(DatabaseSettings().libpq_url, prefix="maps_bench_smoke")
    try:
        databases.setup()
        outcome = imports.compare(
            databases, tiny.points_shp, template=None, kind="shapefile", repeat=1, work=tmp_path
        )
    finally:
        databases.close()
    assert isinstance(outcome, imports.Comparison)
    payload = outcome.typical.payload
    assert payload["feature_count"] == outcome.ogr2ogr_rows == TINY.points
    assert payload["checks"]["rows"] == TINY.points
    assert payload["checks"]["gist_index"] and payload["checks"]["statistics"]
    assert set(payload["steps"]) == {"stage", "profile", "load"}
    # The server's floor, on the staged file of the first run: one connection below
    # the parallel load's threshold.
    floor = payload["floor"]
    assert floor["parts"] == 1 and len(floor["times"]) == 3
    assert floor["seconds"] == sorted(floor["times"])[1] > 0


def _admin_url() -> str:
    return DatabaseSettings().libpq_url.rpartition("/")[0] + "/postgres"
