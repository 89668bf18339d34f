"""The benchmark command: `make bench`, or `python -m benchmarks.run [--quick] [--repeat N]
[--only reads,transform,import,userpath,memory,adoption,tiles,kernels] [--json PATH]`.

Generates the inputs when missing (data/generate.py), then measures geo_engine's reads
against pyogrio, its transforms against pyproj, our imports against ogr2ogr (in the
benchmark's own databases on the project's PostgreSQL) and peak memory, and its analysis
kernels against SciPy, rasterio and NumPy; prints a table per section, then the same
tables as Markdown. It reports; it asserts no time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import (
    adoption,
    imports,
    kernels,
    memory,
    reads,
    report,
    tiles,
    transforms,
    userpath,
)  # fmt: skip
from benchmarks.common import DATA_DIR, FULL, QUICK, Section, Sizes
from benchmarks.database import BenchDatabases
from benchmarks.inputs import Inputs, ensure

SECTIONS = ("reads", "transform", "import", "userpath", "memory", "adoption", "tiles", "kernels")
# The sections that work in the benchmark's databases.
DATABASE_SECTIONS = {"import", "userpath", "memory", "adoption", "tiles"}


@dataclass
class Report:
    """Everything one run measured, and where."""

    machine: dict[str, str]
    versions: dict[str, str]
    sections: list[Section] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "machine": self.machine,
            "versions": self.versions,
            "sections": [section.as_dict() for section in self.sections],
            "failed": self.failed,
        }


def run_benchmarks(
    *,
    sizes: Sizes,
    repeat: int,
    only: set[str],
    data_dir: Path = DATA_DIR,
    server_url: str | None = None,
    db_prefix: str = "maps_bench",
    console: Console | None = None,
) -> Report:
    """Run the chosen sections; each prints its table as soon as it is done."""
    console = console or Console()
    data_dir.mkdir(parents=True, exist_ok=True)
    databases = None
    if only & DATABASE_SECTIONS:
        if server_url is None:
            from core.settings import DatabaseSettings

            server_url = DatabaseSettings().libpq_url
        databases = BenchDatabases(server_url, prefix=db_prefix)
    result = Report(
        machine=report.machine(),
        versions=report.versions(databases.server_facts() if databases else None),
    )
    report.print_facts(console, "Machine", result.machine)
    report.print_facts(console, "Versions", result.versions)

    inputs: Inputs | None = None
    if only & {"reads", "import", "userpath", "tiles"}:
        inputs = ensure(data_dir, points=sizes.points, polygons=sizes.polygons)
    # Staging and upload folders beside the inputs, so that uploads can be hard links.
    work = Path(tempfile.mkdtemp(prefix=".bench-work-", dir=data_dir))
    steps: list[tuple[str, Callable[[], Section]]] = []
    if "reads" in only and inputs is not None:
        steps.append(("reads", lambda: reads.run(inputs, repeat)))
    if "transform" in only:
        steps.append(("transform", lambda: transforms.run(sizes.points, repeat)))
    if "import" in only and inputs is not None and databases is not None:
        small = ensure(data_dir, points=sizes.small_points, polygons=sizes.polygons)
        steps.append(("import", lambda: imports.run(
            databases, inputs, small, fillers=sizes.fillers, repeat=repeat, work=work
        )))  # fmt: skip
    if "adoption" in only and databases is not None:
        steps.append(("adoption", lambda: adoption.run(
            databases.url, rows=5_000_000 if sizes is FULL else 200_000
        )))  # fmt: skip
    if "userpath" in only and inputs is not None and databases is not None:
        small = ensure(data_dir, points=sizes.small_points, polygons=sizes.polygons)
        steps.append(("userpath", lambda: userpath.run(
            databases, inputs, small, fillers=sizes.fillers, repeat=repeat, work=work
        )))  # fmt: skip
    if "memory" in only and databases is not None:
        steps.append(("memory", lambda: memory.run(
            databases, data_dir, sizes.memory_points, work=work
        )))  # fmt: skip
    if "tiles" in only and inputs is not None and databases is not None:
        steps.append(("tiles", lambda: tiles.run(databases, inputs, repeat, work=work)))
    if "kernels" in only:
        steps.append(("kernels", lambda: kernels.run(repeat, quick=sizes != FULL)))
    try:
        for key, step in steps:
            try:
                if databases is not None and key in DATABASE_SECTIONS:
                    databases.setup()
                section = step()
            except Exception as exc:
                traceback.print_exc()
                result.failed.append(f"{key}: {type(exc).__name__}: {exc}")
                continue
            result.failed += [f"{key}: {failure}" for failure in section.failures]
            if section.rows:
                result.sections.append(section)
                report.print_section(console, section)
    finally:
        if databases is not None:
            databases.close()
        shutil.rmtree(work, ignore_errors=True)
    result.machine["load average at end"] = report.load_average()
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where the inputs are")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only or only - set(SECTIONS):
        parser.error(f"--only takes some of {', '.join(SECTIONS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    command = " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)])

    # Wide tables when the output goes to a file (rich assumes 80 columns there).
    console = Console(width=None if sys.stdout.isatty() else 180)
    result = run_benchmarks(
        sizes=QUICK if args.quick else FULL,
        repeat=args.repeat,
        only=only,
        data_dir=args.data_dir,
        console=console,
    )
    text = report.markdown(result.sections, result.machine, result.versions, command)
    console.rule("Markdown")
    print(text)
    if args.json:
        payload = {"command": command, **result.as_dict()}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    for failure in result.failed:
        console.print(f"[red]failed[/red] {failure}", highlight=False)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
