"""Worker supervision: a SIGKILLed worker is started again, and its task is taken up again.

As in test_robustness, an ETL service of the test's own runs on a Redis database of its
own (11) with a 3 s staleness; the worker runs under `python -m pipeline.supervisor`,
as `make up` starts it (scripts/stack.sh).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.database import make_sync_sessionmaker
from core.settings import REPO_ROOT
from pipeline import tasks
from pipeline.supervisor import SupervisorState, read_state
from tests.conftest import Stack, _wait_healthy, free_port
from tests.pipeline.conftest import Account
from tests.pipeline.test_robustness import FINAL, _many_points, _wait

Conn = psycopg.Connection[tuple[Any, ...]]
BIN = Path(sys.executable).parent


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def _state(run_dir: Path, until: Any, timeout: float = 60) -> SupervisorState:
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(run_dir, "worker")
        if state is not None and until(state):
            return state
        assert time.monotonic() < deadline, f"the supervisor never got there: {state}"
        time.sleep(0.1)


@pytest.fixture
def supervised(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """A private ETL service and a supervised worker that pauses 4 s after a load's COPY."""
    redis_url = stack.env["REDIS_URL"].rsplit("/", 1)[0] + "/11"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        **stack.env,
        "REDIS_URL": redis_url,
        "ETL_SERVICE_URL": f"http://127.0.0.1:{port}",
        "TASK_HEARTBEAT_SECONDS": "1",
        "TASK_STALE_AFTER_SECONDS": "3",
        "IMPORT_PAUSE_AT": "load.copied",
        "IMPORT_PAUSE_SECONDS": "4",
    }
    run_dir = tmp_path / "run"
    with (tmp_path / "etl.log").open("wb") as log:
        etl = subprocess.Popen(
            [str(BIN / "uvicorn"), "--factory", "pipeline.app:create_app", "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    with (tmp_path / "worker.log").open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "pipeline.supervisor", "--name", "worker", "--run-dir",
             str(run_dir), "--", str(BIN / "dramatiq"), "pipeline.worker", "--processes", "1",
             "--threads", "1"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_healthy(env["ETL_SERVICE_URL"], etl, tmp_path / "etl.log")
        yield env["ETL_SERVICE_URL"], run_dir, supervisor
    finally:
        for process in (supervisor, etl):
            if process.poll() is None:
                process.terminate()
        for process in (supervisor, etl):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_a_killed_worker_is_restarted_and_its_task_taken_up_again(
    supervised: tuple[str, Path, subprocess.Popen[bytes]],
    account: Account,
    tmp_path: Path,
    db: Conn,
) -> None:
    url, run_dir, supervisor = supervised
    shp = _many_points(tmp_path / "many", 2000)
    parts = [p for p in shp.parent.iterdir() if p.stem == "many"]
    answer = httpx.post(
        f"{url}/tasks/import/shapefile",
        data={"name": "supervised"},
        files=[("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in parts],
        headers=account.headers,
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    paused = _wait(url, task_id, account, lambda t: t["progress"].get("phase") == "paused")
    assert (paused["state"], paused["step"]) == ("running", "load")

    # What the issue saw: the process running the task killed, Dramatiq's main process
    # then shutting down. The supervisor must start it all again.
    first = _state(run_dir, lambda s: s.child_pid is not None)
    workers = _children(first.child_pid or 0)
    assert workers, "dramatiq has no worker process"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)

    restarted = _state(
        run_dir, lambda s: s.restarts >= 1 and s.child_pid not in (None, first.child_pid)
    )
    assert restarted.last_exit is not None and restarted.last_exit != 0
    task = _wait(url, task_id, account, lambda t: t["state"] in FINAL, timeout=120)

    assert task["state"] == "succeeded", task
    assert task["attempts"] == 2
    assert any("stopped responding" in warning for warning in task["warnings"])
    rows = db.execute(
        "SELECT count(*) FROM core_geometry WHERE source_id = %s", (task["result"]["source_id"],)
    ).fetchone()
    assert rows == (2000,)

    # SIGTERM stops the supervisor and its worker, as `make down` does.
    child = restarted.child_pid or 0
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    assert _state(run_dir, lambda s: s.state == "stopped").child_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_a_dead_workers_task_says_so_and_fails_with_a_reason(engine: Engine, db: Conn) -> None:
    sessions = make_sync_sessionmaker(engine)
    with sessions.begin() as session:
        task = tasks.create_task(session=session, kind="import_shapefile", owner_id=None, params={})
    try:
        for attempt in (1, 2):
            with sessions.begin() as session:
                claimed = tasks.claim_step(
                    session=session, task_id=task.id, step="stage", stale_after=10, worker="h:42"
                )
                assert claimed is not None
            db.execute(
                "UPDATE etl_task SET heartbeat_at = now() - interval '1 hour' WHERE id = %s",
                (task.id,),
            )
            with sessions.begin() as session:
                tasks.reap_stale(session=session, stale_after=10, max_attempts=2)
            with Session(engine) as session:
                seen = tasks.serialize_task(tasks.get_task(session=session, task_id=task.id))
            assert seen["progress"]["worker_lost"] is True
            assert seen["progress"]["lost_worker"] == "h:42"
            if attempt == 1:
                assert (
                    seen["state"] == "running"
                    and "waiting for a worker" in seen["progress"]["phase"]
                )
        assert seen["state"] == "failed"
        assert seen["error"]["code"] == "worker_lost"
        assert "stopped responding" in seen["error"]["message"]
    finally:
        db.execute("DELETE FROM etl_task WHERE id = %s", (task.id,))


def test_compose_restarts_the_worker() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["worker"]["restart"] in ("always", "unless-stopped", "on-failure")
