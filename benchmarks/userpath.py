"""Imports as the user runs them: `maps import PATH --wait` against ogr2ogr, end to end.

The bench starts the stack as `make up` runs it (the REST API, the ETL service and one
worker process, on ports of their own, against the scratch database and Redis database
14), signs a user in with `maps login`, and then, alternating in one run, times:

- ours: the `maps import PATH --wait --json` command as a subprocess, from its start to
  its exit once the task succeeded (upload, stage, profile, load with GIST index and
  ANALYZE, and every hop and poll between);
- ogr2ogr: `ogr2ogr -f PostgreSQL` with PG_USE_COPY and a GIST index, then ANALYZE.

`core_geometry` holds the rows of other sources first (pipeline imports of the 1M-point
file), and the database is rebuilt from that template before each of our runs. Where our
time goes comes from the CLI's own clock (MAPS_TIMINGS) and the task's timings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, Section, count, ratio, seconds, verdict
from benchmarks.database import BenchDatabases, ogr2ogr_import
from benchmarks.imports import pipeline_import
from benchmarks.inputs import Inputs

BIN = Path(sys.executable).parent
MAPS = BIN / "maps"
REDIS_DB = 14
EMAIL, PASSWORD = "bench@example.com", "bench password"
# The bars of issue 11: ours / ogr2ogr.
BARS = {"small": 1.5, "polygons": 0.9, "csv": 0.9, "points": 0.5}
STARTUP_BAR = 0.15  # seconds, `maps --help`


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_url() -> str:
    from core.settings import RedisSettings

    base = RedisSettings().redis_url
    return f"{base.rsplit('/', 1)[0]}/{REDIS_DB}"


@dataclass
class Stack:
    """The API, the ETL service and a worker, as processes of the bench's own."""

    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        """Start the three processes as `make up` does, and wait until both services answer."""
        api, etl = self.env["API_URL"].rsplit(":", 1)[1], self.env["ETL_SERVICE_URL"]
        commands = {
            "api": [str(BIN / "uvicorn"), "--factory", "api.main:create_app",
                    "--host", "127.0.0.1", "--port", api],
            "etl": [str(BIN / "uvicorn"), "--factory", "pipeline.app:create_app",
                    "--host", "127.0.0.1", "--port", etl.rsplit(":", 1)[1]],
            "worker": [str(BIN / "dramatiq"), "pipeline.worker", "--processes", "1",
                       "--threads", "2"],
        }  # fmt: skip
        for name, command in commands.items():
            with (self.logs / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
        for name, url in (("api", self.env["API_URL"]), ("etl", etl)):
            self._wait_healthy(name, url)
        # The worker declares its actors and warms DuckDB up before it consumes.
        time.sleep(3)

    def _wait_healthy(self, name: str, url: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if json.loads(answer.read()).get("status") == "healthy":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        log = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the {name} process never became healthy:\n{log}")

    def stop(self) -> None:
        """Stop what `start` started (each process group, by its own id)."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def maps(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed `maps` command, as a user runs it."""
    return subprocess.run(
        [str(MAPS), *args], env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )


@dataclass
class Run:
    """One `maps import --wait`: its wall time and where it went."""

    seconds: float
    parts: dict[str, float]
    task: dict[str, Any]


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def import_once(path: Path, *, kind: str, name: str, env: dict[str, str]) -> Run:
    """`maps import PATH --wait --json`, timed from its start to its exit."""
    command = [str(MAPS), "import", str(path), "--name", name, "--type", kind, "--wait", "--json"]
    started = time.time()
    done = subprocess.run(
        command, env={**env, "MAPS_TIMINGS": "1"}, capture_output=True, text=True, check=False
    )
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"maps import {path.name} failed: {done.stderr.strip()[-2000:]}")
    task: dict[str, Any] = json.loads(done.stdout)
    clock = next(
        json.loads(line.split(" ", 1)[1])
        for line in done.stderr.splitlines()
        if line.startswith("maps-timings ")
    )
    timings = task.get("timings") or {}
    steps = {step: float(timings.get(step, 0.0)) for step in ("stage", "profile", "load")}
    claimed = _epoch(task.get("started_at"))
    created = _epoch(task.get("created_at"))
    waited = clock["ended"] - clock["uploaded"]
    parts = {
        "cli start": clock["started"] - started,
        "upload": clock["uploaded"] - clock["started"],
        "queue": max(0.0, (claimed or clock["uploaded"]) - (created or clock["uploaded"])),
        **steps,
        "hops + polls": waited - sum(steps.values()),
        "exit": ended - clock["ended"],
    }
    return Run(seconds=ended - started, parts=parts, task=task)


def cli_startup(repeat: int) -> list[float]:
    """Wall times of `maps --help`."""
    times = []
    for _ in range(max(repeat, 3)):
        started = time.perf_counter()
        subprocess.run([str(MAPS), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def run(
    databases: BenchDatabases,
    inputs: Inputs,
    small: Inputs,
    *,
    fillers: int,
    repeat: int,
    work: Path,
) -> Section:
    """Each file through `maps import --wait` and through ogr2ogr, alternating, into a
    core_geometry holding other sources' rows."""
    section = Section(
        "userpath",
        "Imports as the user runs them: `maps import PATH --wait` against ogr2ogr",
        ["import", "ours", "ogr2ogr", "ours / ogr2ogr", "bar", "result", "where our time goes"],
    )
    startup = cli_startup(repeat * 2)
    middle = statistics.median(startup)
    section.add(
        ["`maps --help` (the CLI starting)", seconds(middle), "—", "—",
         f"< {STARTUP_BAR:g} s", verdict(middle < STARTUP_BAR), ""],
        case="cli start", seconds=middle, times=startup, passed=middle < STARTUP_BAR,
    )  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="userpath-", dir=work))
    logs = root / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": databases.url,
        "REDIS_URL": _redis_url(),
        "API_URL": f"http://127.0.0.1:{_free_port()}",
        "ETL_SERVICE_URL": f"http://127.0.0.1:{_free_port()}",
        "STAGING_DIR": str(root / "staging"),
        "UPLOAD_DIR": str(root / "uploads"),
        "XDG_CONFIG_HOME": str(root / "config"),
    }
    env.pop("MAPS_TOKEN", None)
    template, filled = _template(databases, inputs, fillers=fillers, work=work, env=env)
    import redis

    broker = redis.Redis.from_url(env["REDIS_URL"])
    broker.flushdb()
    broker.close()
    stack = Stack(env=env, logs=logs)
    try:
        stack.start()
        signed = maps("login", "--email", EMAIL, "--password", PASSWORD, env=env)
        if signed.returncode != 0:
            raise RuntimeError(f"maps login failed: {signed.stderr.strip()}")
        cases = [
            (f"{count(small.points)} points .shp", small.points_shp, "shapefile", "small"),
            (f"{count(inputs.polygons)} polygons .shp", inputs.polygons_shp, "shapefile",
             "polygons"),
            (f"{count(inputs.points)} points .csv", inputs.points_csv, "csv", "csv"),
            (f"{count(inputs.points)} points .shp", inputs.points_shp, "shapefile", "points"),
        ]  # fmt: skip
        for label, path, kind, bar_key in cases:
            try:
                _case(section, databases, template, label, path, kind, BARS[bar_key], repeat, env)
            except (RuntimeError, OSError) as exc:
                section.failures.append(f"userpath {label}: {exc}")
                reason = str(exc).strip().splitlines()[0][:120]
                cells = [label, "failed", "—", "—", f"≤ {BARS[bar_key]:g}x", "FAILED", reason]
                section.add(cells, case=label, error=str(exc))
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
    section.notes += [
        "ours: `maps import PATH --name N --type T --wait --json` run as a subprocess against "
        "the ETL service, API and one worker process (`dramatiq pipeline.worker --processes 1 "
        "--threads 2`) that the bench started as `make up` runs them, timed from the "
        "command's start to its exit after the task's success. The database is rebuilt "
        "from the filled template before each of our runs.",
        "ogr2ogr: as in the import section (PG_USE_COPY, GIST index, then ANALYZE), into "
        "the same database, alternating with ours.",
        "where our time goes: cli start (from the command's start to its module running), "
        "upload (the multipart POST until the task id came back), queue (task created to "
        "its first step claimed), the steps' own time from the task's timings, hops + "
        "polls (the rest until the CLI saw the task end), exit.",
        f"core_geometry before each run: {count(inputs.points * fillers)} rows of other "
        f"sources ({fillers} pipeline imports of the {count(inputs.points)}-point file, "
        + ", ".join(seconds(value) for value in filled)
        + ").",
    ]
    return section


def _template(
    databases: BenchDatabases, inputs: Inputs, *, fillers: int, work: Path, env: dict[str, str]
) -> tuple[str, list[float]]:
    """A database with the bench's user and `fillers` imports of other sources, kept as a
    template."""
    databases.reset()
    made = maps("users", "create", "--email", EMAIL, "--password", PASSWORD, env=env)
    if made.returncode != 0:
        raise RuntimeError(f"maps users create failed: {made.stderr.strip()}")
    times = []
    for index in range(1, fillers + 1):
        filler = pipeline_import(
            databases, inputs.points_shp, name=f"other source {index}", kind="shapefile",
            work=work,
        )  # fmt: skip
        times.append(float(filler.payload["seconds"]))
    return databases.snapshot(f"{databases.name}_userpath"), times


def _case(
    section: Section,
    databases: BenchDatabases,
    template: str,
    label: str,
    path: Path,
    kind: str,
    bar: float,
    repeat: int,
    env: dict[str, str],
) -> None:
    ours: list[Run] = []
    theirs: list[float] = []
    their_rows = 0
    table = f"bench_ogr_{path.stem}"
    for attempt in range(1, repeat + 1):
        databases.reset(template)
        ours.append(import_once(path, kind=kind, name=f"{label} #{attempt}", env=env))
        elapsed, their_rows = ogr2ogr_import(databases.url, path, table)
        theirs.append(elapsed)
    mine = statistics.median(run.seconds for run in ours)
    other = statistics.median(theirs)
    typical = min(ours, key=lambda run: abs(run.seconds - mine))
    rows = (typical.task.get("result") or {}).get("feature_count")
    checked = rows == their_rows
    passed = mine / other <= bar
    shares = ", ".join(f"{part} {seconds(value)}" for part, value in typical.parts.items())
    cells = [label, seconds(mine), seconds(other), ratio(mine / other), f"≤ {bar:g}x",
             verdict(passed) if checked else "MISS (rows)", shares]  # fmt: skip
    section.add(
        cells,
        case=label,
        ours_seconds=mine,
        ogr2ogr_seconds=other,
        ours_times=[run.seconds for run in ours],
        ogr2ogr_times=theirs,
        ours_over_ogr2ogr=mine / other,
        passed=passed and checked,
        parts=typical.parts,
        timings=typical.task.get("timings"),
        feature_count=rows,
        ogr2ogr_rows=their_rows,
    )
