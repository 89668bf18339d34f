"""What every section shares: sizes, timing, results, verdicts, and running a child process."""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data" / "bench"
GIB = 1024**3
MIB = 1024**2

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How large each benchmark input is (`FULL` for the real run, `QUICK` for a smoke run)."""

    points: int = 1_000_000
    polygons: int = 100_000
    small_points: int = 10_000
    # core_geometry is filled with `fillers` pipeline imports of the points file first.
    fillers: int = 5
    memory_points: int = 10_000_000


FULL = Sizes()
QUICK = Sizes(points=50_000, polygons=5_000, fillers=5, memory_points=200_000)


@dataclass
class Section:
    """One section's results: a table (formatted cells) and the raw figures behind it."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    # Cases that failed (their rows say so); they make the command exit non-zero.
    failures: list[str] = field(default_factory=list)

    def add(self, cells: list[str], **figures: Any) -> None:
        """Add a row of the table and its raw figures."""
        assert len(cells) == len(self.columns), (cells, self.columns)
        self.rows.append(cells)
        self.data.append(figures)

    def as_dict(self) -> dict[str, Any]:
        """The section as JSON-able data."""
        return {
            "key": self.key,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
            "data": self.data,
            "failures": self.failures,
        }


@dataclass
class Timed(Generic[T]):
    """The median of several timed calls, every time, and the last call's value."""

    median: float
    times: list[float]
    value: T


def measure(function: Callable[[], T], repeat: int, *, warmup: bool = True) -> Timed[T]:
    """Time `function` `repeat` times, after one untimed call that warms the caches.

    Let `function` return something small (a row count): its result is kept.
    """
    if warmup:
        function()
    times: list[float] = []
    for _ in range(max(repeat, 1)):
        gc.collect()
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return Timed(statistics.median(times), times, value)


def verdict(passed: bool | None) -> str:
    """PASS, MISS, or n/a (nothing to compare)."""
    return "n/a" if passed is None else ("PASS" if passed else "MISS")


def seconds(value: float | None) -> str:
    """A duration for a table cell."""
    if value is None:
        return "—"
    return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"


def ratio(value: float | None) -> str:
    """A ratio for a table cell."""
    return "—" if value is None else f"{value:.2f}x"


def mebibytes(value: int | None) -> str:
    """A size in bytes for a table cell."""
    return "—" if value is None else f"{value / MIB:,.0f} MiB"


def count(value: int) -> str:
    """A row count for labels: 1M, 100K, 10K, 2,000."""
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value:,}"


class ChildFailed(RuntimeError):
    """A benchmark subprocess exited with an error."""


@dataclass
class ChildRun:
    """What a `python -m benchmarks.child` run printed, and its own peak RSS."""

    payload: dict[str, Any]
    max_rss: int


def run_child(args: list[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run `python -m benchmarks.child ARGS`; its last stdout line is JSON.

    The child reports its own peak RSS (VmHWM): its ru_maxrss would not do, because
    Linux carries the parent's high-water mark over a fork and exec into the child's.
    """
    command = [sys.executable, "-m", "benchmarks.child", *args]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ChildFailed(
            f"{' '.join(args)} exited with {done.returncode}:\n"
            f"{done.stderr[-3000:]}{done.stdout[-1000:]}"
        )
    payload = json.loads(lines[-1])
    return ChildRun(payload=payload, max_rss=int(payload["peak_rss"]))
