"""How the CLI shows tasks: a live progress bar while one runs, a summary when it ends.

The bar shows the step and what it is doing (`load: index 2/4`), the percentage, rows
done of total, rows per second and the time left, all computed from the task's
progress document (rows/bytes done and total, and the seconds the step has run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # rich is imported only to draw (a bar on a terminal, a table)
    from rich.console import Console
    from rich.table import Table

# A small import ends within a second: the first polls come quickly, then they space out
# to POLL_SECONDS (each poll is one GET on a kept-alive connection).
FIRST_POLL_SECONDS = 0.02
POLL_SECONDS = 0.5
POLL_GROWTH = 1.25
FINAL_STATES = ("succeeded", "failed")


def poll_intervals() -> Iterator[float]:
    """The pauses between polls: FIRST_POLL_SECONDS growing by POLL_GROWTH to POLL_SECONDS."""
    pause = FIRST_POLL_SECONDS
    while True:
        yield pause
        pause = min(POLL_SECONDS, pause * POLL_GROWTH)


def rate_and_eta(progress: dict[str, Any]) -> tuple[float | None, float | None]:
    """Rows per second and seconds left of the running step, when the progress tells them."""
    elapsed = progress.get("elapsed")
    rows = progress.get("rows_done")
    if not elapsed or not rows:
        return None, None
    rate = rows / elapsed
    total, done = progress.get("rows_total"), rows
    if not total:  # a CSV or GeoJSON: rows unknown in advance, bytes known
        total, done = progress.get("bytes_total"), progress.get("bytes_done")
        if not total or not done:
            return rate, None
    return rate, max(0.0, elapsed * (total - done) / done)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def label(document: dict[str, Any]) -> str:
    """`step: phase` of a running task; `queued`; the step alone once the task ended."""
    if document["state"] == "queued":
        return "queued"
    step = str(document.get("step") or "")
    if document["state"] in FINAL_STATES:
        return "" if document["state"] == "succeeded" else step
    phase = (document.get("progress") or {}).get("phase")
    return f"{step}: {phase}" if phase else step


def follow(
    fetch: Callable[[], dict[str, Any]], *, console: Console | None, show: bool
) -> dict[str, Any]:
    """Poll the task until it ends, showing a live bar per step (`show`, on `console`)."""
    pauses = poll_intervals()
    if not show:
        while (document := fetch())["state"] not in FINAL_STATES:
            time.sleep(next(pauses))
        return document
    from rich.progress import BarColumn, Progress, TaskID, TextColumn

    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rows]:>22}"),
        TextColumn("{task.fields[rate]:>12}"),
        TextColumn("{task.fields[left]:>9}"),
        console=console,
        disable=not show,
    ) as bars:
        shown: dict[str, TaskID] = {}
        while True:
            document = fetch()
            step = "queued" if document["state"] == "queued" else document.get("step") or "done"
            for other, bar in shown.items():
                if other != step:  # a step before: done
                    bars.update(bar, description=other, completed=100, rows="", rate="", left="")
            if step not in shown:
                shown[step] = bars.add_task(step, total=100, rows="", rate="", left="")
            progress = document.get("progress") or {}
            percent = 100.0 if document["state"] == "succeeded" else progress.get("percent") or 0.0
            rows, total = progress.get("rows_done"), progress.get("rows_total")
            rate, left = rate_and_eta(progress)
            bars.update(
                shown[step],
                description=(label(document) or step)[:28],
                completed=percent,
                rows=(f"{rows:,}/{total:,} rows" if total else f"{rows:,} rows") if rows else "",
                rate=f"{rate:,.0f} rows/s" if rate else "",
                left=f"{_duration(left)} left" if left is not None else "",
            )
            if document["state"] in FINAL_STATES:
                return document
            time.sleep(next(pauses))


def describe(document: dict[str, Any], out: TextIO) -> None:
    """A task, as lines of `key  value`."""

    def line(text: str) -> None:
        out.write(text + "\n")

    line(f"task      {document['id']}")
    line(f"state     {document['state']}")
    line(f"step      {label(document) or document.get('step') or ''}")
    progress = document.get("progress") or {}
    if progress.get("percent") is not None and document["state"] in ("queued", "running"):
        rate, left = rate_and_eta(progress)
        extra = f", {rate:,.0f} rows/s" if rate else ""
        extra += f", {_duration(left)} left" if left is not None else ""
        line(f"progress  {progress['percent']}%{extra}")
    timings = document.get("timings") or {}
    steps = [
        f"{step} {timings[step]:.2f}s" for step in ("stage", "profile", "load") if step in timings
    ]
    if steps:
        line(f"timings   {', '.join(steps)}")
    if document.get("result"):
        line(f"result    {json.dumps(document['result'])}")
    if document.get("error"):
        line(f"error     {document['error'].get('message')}")
    for warning in document.get("warnings") or []:
        line(f"warning   {warning}")


def task_table(documents: list[dict[str, Any]]) -> Table:
    """Tasks as a table: id, kind, state, step, progress, created."""
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for column in ("id", "kind", "state", "step", "progress", "created"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    for document in documents:
        progress = document.get("progress") or {}
        percent = progress.get("percent")
        table.add_row(
            document["id"],
            document.get("kind") or "",
            document["state"],
            label(document),
            "" if percent is None else f"{percent}%",
            document.get("created_at") or "",
        )
    return table
