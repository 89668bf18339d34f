"""Task records in PostgreSQL: claims, progress, steps, outcomes, and stale tasks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.database import make_sync_sessionmaker
from core.models import Task
from pipeline import tasks

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sync_sessionmaker(engine)


@pytest.fixture
def task(sessions: sessionmaker[Session], db: Conn) -> Iterator[Task]:
    with sessions.begin() as session:
        made = tasks.create_task(
            session=session, kind="import_shapefile", owner_id=None, params={"sid": "src_x"}
        )
    yield made
    # Left running, it would go stale and a running ETL service would re-queue it.
    db.execute("DELETE FROM etl_task WHERE id = %s", (made.id,))


def _claim(sessions: sessionmaker[Session], task: Task, step: str) -> Task | None:
    with sessions.begin() as session:
        return tasks.claim_step(session=session, task_id=task.id, step=step, stale_after=10)


def _read(sessions: sessionmaker[Session], task_id: uuid.UUID) -> Task:
    with sessions() as session:
        found = tasks.get_task(session=session, task_id=task_id)
    assert found is not None
    return found


def test_a_new_task_is_queued_at_its_first_step(
    sessions: sessionmaker[Session], task: Task
) -> None:
    document = tasks.serialize_task(_read(sessions, task.id))
    assert document["id"] == str(task.id)
    assert (document["state"], document["step"]) == ("queued", "stage")
    assert (document["result"], document["error"], document["warnings"]) == (None, None, [])
    assert document["created_at"].endswith("Z")
    assert {"id", "state", "step", "progress", "result", "error"} <= set(document)


def test_a_step_is_claimed_once(sessions: sessionmaker[Session], task: Task) -> None:
    claimed = _claim(sessions, task, "stage")
    assert claimed is not None
    assert (claimed.state, claimed.attempts) == ("running", 1)
    assert claimed.heartbeat_at is not None and claimed.started_at is not None

    assert _claim(sessions, task, "stage") is None  # a duplicate delivery
    assert _claim(sessions, task, "profile") is None  # not due yet


def test_a_stale_claim_can_be_taken_over(
    sessions: sessionmaker[Session], task: Task, db: Conn
) -> None:
    assert _claim(sessions, task, "stage") is not None
    db.execute(
        "UPDATE etl_task SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (task.id,)
    )

    again = _claim(sessions, task, "stage")

    assert again is not None and again.attempts == 2


def test_progress_steps_and_success_are_recorded(
    sessions: sessionmaker[Session], task: Task
) -> None:
    _claim(sessions, task, "stage")
    with sessions.begin() as session:
        tasks.update_progress(
            session=session,
            task_id=task.id,
            step="stage",
            rows_done=50,
            rows_total=200,
            bytes_done=10,
            bytes_total=40,
            phase="read",
            elapsed=2.5,
        )
    progress = _read(sessions, task.id).progress
    assert progress == {
        "step": "stage",
        "phase": "read",
        "elapsed": 2.5,
        "worker": None,
        "rows_done": 50,
        "rows_total": 200,
        "bytes_done": 10,
        "bytes_total": 40,
        "percent": 25.0,
    }
    for step in tasks.IMPORT_STEPS:
        if step != "stage":
            assert _claim(sessions, task, step) is not None
        with sessions.begin() as session:
            following = tasks.complete_step(
                session=session,
                task_id=task.id,
                step=step,
                timings={step: 1.5},
                warnings=[f"{step} noticed something"],
            )
            if following is None:
                tasks.succeed(session=session, task_id=task.id, result={"source_id": 1})
        assert following == tasks.next_step(step)
        current = _read(sessions, task.id)
        assert current.heartbeat_at is None
        assert current.attempts == (0 if following else 1)

    done = _read(sessions, task.id)
    assert done.state == "succeeded" and done.finished_at is not None
    assert done.timings == {"stage": 1.5, "profile": 1.5, "load": 1.5}
    assert len(done.warnings) == 3
    assert done.result == {"source_id": 1}
    assert done.progress["percent"] == 100.0
    with sessions.begin() as session:
        tasks.fail(session=session, task_id=task.id, code="late", message="too late")
    assert _read(sessions, task.id).state == "succeeded"  # a finished task stays finished


def test_a_failure_is_recorded_with_code_and_message(
    sessions: sessionmaker[Session], task: Task
) -> None:
    _claim(sessions, task, "stage")
    with sessions.begin() as session:
        tasks.fail(
            session=session, task_id=task.id, code="format_error", message="a.shp: record 3: bad"
        )
    failed = _read(sessions, task.id)
    assert (failed.state, failed.step) == ("failed", "stage")
    assert failed.error == {"code": "format_error", "message": "a.shp: record 3: bad"}
    assert _claim(sessions, task, "stage") is None


def test_a_released_step_can_be_claimed_again(sessions: sessionmaker[Session], task: Task) -> None:
    _claim(sessions, task, "stage")
    with sessions.begin() as session:
        tasks.release(session=session, task_id=task.id, step="stage", warning="attempt 1 failed")

    released = _read(sessions, task.id)
    assert (released.state, released.heartbeat_at) == ("running", None)
    assert released.warnings == ["attempt 1 failed"]
    assert _claim(sessions, task, "stage") is not None


def test_stale_tasks_are_given_back_then_failed(
    sessions: sessionmaker[Session], task: Task, db: Conn
) -> None:
    _claim(sessions, task, "stage")
    db.execute(
        "UPDATE etl_task SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (task.id,)
    )

    with sessions.begin() as session:
        requeued = tasks.reap_stale(session=session, stale_after=10, max_attempts=2)
    assert (str(task.id), "stage") in requeued
    assert _read(sessions, task.id).heartbeat_at is None

    _claim(sessions, task, "stage")  # a second worker takes it, and dies too
    db.execute(
        "UPDATE etl_task SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (task.id,)
    )
    with sessions.begin() as session:
        requeued = tasks.reap_stale(session=session, stale_after=10, max_attempts=2)
    assert (str(task.id), "stage") not in requeued
    lost = _read(sessions, task.id)
    assert lost.state == "failed"
    assert lost.error is not None and lost.error["code"] == "worker_lost"


def test_fresh_and_waiting_tasks_are_left_alone(
    sessions: sessionmaker[Session], task: Task
) -> None:
    _claim(sessions, task, "stage")
    with sessions.begin() as session:
        waiting = tasks.create_task(
            session=session, kind="import_shapefile", owner_id=None, params={}
        )
    with sessions.begin() as session:
        requeued = tasks.reap_stale(session=session, stale_after=10, max_attempts=2)
    assert {task_id for task_id, _ in requeued}.isdisjoint({str(task.id), str(waiting.id)})
    assert _read(sessions, task.id).heartbeat_at is not None
    assert _read(sessions, waiting.id).state == "queued"
    with sessions.begin() as session:
        session.delete(session.get(Task, waiting.id))


def test_new_sids_look_like_the_django_eras() -> None:
    sids = {tasks.new_sid() for _ in range(50)}
    assert len(sids) == 50
    assert all(sid.startswith("src_") and len(sid) == 16 and sid.isascii() for sid in sids)
