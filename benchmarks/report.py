"""The report: machine facts and versions, one rich table per section, and Markdown."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.common import GIB, Section


def machine() -> dict[str, str]:
    """CPU model, cores, memory, OS."""
    facts = {
        "CPU": _cpuinfo("model name") or platform.processor() or "?",
        "cores": f"{len(os.sched_getaffinity(0))} usable of {os.cpu_count()}",
        "memory": f"{_meminfo_bytes() / GIB:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        # Other work on the machine skews every figure: worth knowing when reading them.
        "load average at start": load_average(),
    }
    if os.environ.get("OPENBLAS_CORETYPE"):
        facts["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    return facts


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The versions of everything compared."""
    import pyogrio  # type: ignore[import-untyped]
    import pyproj

    import geo_engine
    from benchmarks.database import ogr2ogr_version

    is_debug = getattr(geo_engine, "_debug_build", None)
    build = "debug build" if is_debug is not None and is_debug() else "release build"
    facts = {
        "geo_engine": f"{geo_engine.__version__} ({build}; PROJ {_pkg_config('proj')})",
        "pyogrio": f"{pyogrio.__version__} (GDAL {pyogrio.__gdal_version_string__})",
        "ogr2ogr": ogr2ogr_version(),
        "pyproj": f"{pyproj.__version__} (PROJ {pyproj.proj_version_str})",
        "pyarrow": _version("pyarrow"),
        "duckdb": _version("duckdb"),
    }
    facts.update(extra or {})
    return facts


def print_section(console: Console, section: Section) -> None:
    """One section as a rich table, its notes under it."""
    table = Table(title=section.title, title_justify="left", show_lines=False)
    for column in section.columns:
        table.add_column(column, overflow="fold")
    for row in section.rows:
        table.add_row(*(_styled(cell) for cell in row))
    console.print(table)
    for note in section.notes:
        console.print(f"  [dim]{note}[/dim]", highlight=False)
    console.print()


def print_facts(console: Console, title: str, facts: dict[str, str]) -> None:
    """A two-column table of facts."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in facts.items():
        table.add_row(key, value)
    console.print(table)
    console.print()


def markdown(
    sections: list[Section],
    machine_facts: dict[str, str],
    version_facts: dict[str, str],
    command: str,
) -> str:
    """The whole report as Markdown (to paste into the README)."""
    lines = [f"Measured with `{command}` on:", ""]
    lines += [f"- **{key}**: {value}" for key, value in {**machine_facts, **version_facts}.items()]
    for section in sections:
        lines += ["", f"**{section.title}**", ""]
        lines.append("| " + " | ".join(_cell(column) for column in section.columns) + " |")
        lines.append("|" + "|".join("---" for _ in section.columns) + "|")
        for row in section.rows:
            lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
        if section.notes:
            lines.append("")
            lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines) + "\n"


def _styled(cell: str) -> str:
    if cell == "PASS":
        return "[green]PASS[/green]"
    if cell.startswith("MISS"):
        return f"[red]{cell}[/red]"
    return cell.replace("[", r"\[")


def _cell(cell: str) -> str:
    return cell.replace("|", r"\|")


def _cpuinfo(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def _meminfo_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _pkg_config(package: str) -> str:
    """The system library's version (geo_engine links the system PROJ through pkg-config)."""
    try:
        done = subprocess.run(
            ["pkg-config", "--modversion", package], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return done.stdout.strip()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"
