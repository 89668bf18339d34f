"""`run_step`, what every actor does: claim, run, record, hand on, fail or retry.

The database is real; the broker is Dramatiq's StubBroker, which only collects the
messages a step sends on (no worker runs them here).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import TimeLimitExceeded
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import geo_engine
from core.database import make_sync_sessionmaker
from core.errors import InvalidInput
from core.models import Task
from core.settings import Settings
from pipeline import tasks
from pipeline.broker import QUEUE_NAME
from pipeline.runner import StepContext, run_step


@pytest.fixture
def stub() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.declare_queue(QUEUE_NAME)
    yield broker
    broker.close()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sync_sessionmaker(engine)


@pytest.fixture
def task_id(sessions: sessionmaker[Session]) -> Iterator[str]:
    with sessions.begin() as session:
        task = tasks.create_task(
            session=session, kind="import_shapefile", owner_id=None, params={"sid": "src_t"}
        )
    yield str(task.id)
    with sessions.begin() as session:  # nothing left for a running service to re-queue
        session.delete(session.get(Task, task.id))


def _read(sessions: sessionmaker[Session], task_id: str) -> Task:
    with sessions() as session:
        found = tasks.get_task(session=session, task_id=task_id)
    assert found is not None
    return found


def _sent(stub: StubBroker) -> list[tuple[str, tuple[Any, ...]]]:
    messages = [dramatiq.Message.decode(raw) for raw in stub.queues[QUEUE_NAME].queue]
    return [(m.actor_name, tuple(m.args)) for m in messages]


class Recorder:
    """A step function that remembers its calls and can be told to fail."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.contexts: list[StepContext] = []

    def __call__(self, context: StepContext) -> None:
        self.contexts.append(context)
        context.progress(rows_done=5, rows_total=10)
        if self.error is not None:
            raise self.error
        context.timings["write"] = 0.25
        context.warnings.append("a warning")


def test_a_step_runs_records_and_sends_the_next(
    settings: Settings, stub: StubBroker, sessions: sessionmaker[Session], task_id: str
) -> None:
    step = Recorder()
    settled: list[bool] = []

    run_step(
        task_id,
        "stage",
        step,
        settings=settings,
        broker=stub,
        on_settled=lambda task, failed: settled.append(failed),
    )

    assert len(step.contexts) == 1 and str(step.contexts[0].task.id) == task_id
    task = _read(sessions, task_id)
    assert (task.state, task.step, task.heartbeat_at) == ("running", "profile", None)
    assert set(task.timings) == {"stage", "stage.write"}
    assert task.timings["stage.write"] == 0.25
    assert task.warnings == ["a warning"]
    assert _sent(stub) == [("import_profile", (task_id,))]
    assert settled == [False]

    run_step(task_id, "stage", step, settings=settings, broker=stub)  # redelivered
    assert len(step.contexts) == 1


def test_the_last_step_succeeds_the_task_with_its_result(
    settings: Settings, stub: StubBroker, sessions: sessionmaker[Session], task_id: str
) -> None:
    def finish(context: StepContext) -> None:
        context.result = {"source_id": 7, "sid": "src_t", "feature_count": 3, "staging_path": "p"}

    for step in tasks.IMPORT_STEPS:
        run_step(task_id, step, finish, settings=settings, broker=stub)

    task = _read(sessions, task_id)
    assert task.state == "succeeded"
    assert task.result == {"source_id": 7, "sid": "src_t", "feature_count": 3, "staging_path": "p"}
    assert set(task.timings) == set(tasks.IMPORT_STEPS)
    assert [name for name, _ in _sent(stub)] == ["import_profile", "import_load"]


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (InvalidInput("roads.shp: missing roads.dbf", field="file"), "invalid_input", "roads.dbf"),
        (geo_engine.FormatError("roads.shp: record 7: bad shape"), "format_error", "record 7"),
        (geo_engine.EncodingError("roads.dbf: record 2: not UTF-8"), "encoding_error", "record 2"),
        (TimeLimitExceeded(), "time_limit_exceeded", "ran longer than"),
        # The same limit enforced inside PostgreSQL (statement_timeout).
        (
            psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
            "time_limit_exceeded",
            "ran longer than",
        ),
    ],
)
def test_bad_input_fails_the_task_at_once(
    settings: Settings,
    stub: StubBroker,
    sessions: sessionmaker[Session],
    task_id: str,
    error: BaseException,
    code: str,
    message: str,
) -> None:
    settled: list[bool] = []

    run_step(
        task_id,
        "stage",
        Recorder(error),
        settings=settings,
        broker=stub,
        on_settled=lambda task, failed: settled.append(failed),
    )

    task = _read(sessions, task_id)
    assert (task.state, task.step) == ("failed", "stage")
    assert task.error is not None and task.error["code"] == code
    assert message in task.error["message"]
    assert _sent(stub) == []
    assert settled == [True]


def test_unexpected_errors_are_retried_then_fail(
    settings: Settings, stub: StubBroker, sessions: sessionmaker[Session], task_id: str
) -> None:
    step = Recorder(RuntimeError("database hiccup"))
    retries = settings.pipeline.task_max_retries

    for attempt in range(1, retries + 1):
        with pytest.raises(RuntimeError):
            run_step(task_id, "stage", step, settings=settings, broker=stub)
        task = _read(sessions, task_id)
        assert (task.state, task.heartbeat_at, task.attempts) == ("running", None, attempt)
        assert f"attempt {attempt} of the stage step failed" in task.warnings[-1]

    run_step(task_id, "stage", step, settings=settings, broker=stub)  # the last attempt

    task = _read(sessions, task_id)
    assert task.state == "failed"
    assert task.error == {
        "code": "internal_error",
        "message": "the stage step failed: RuntimeError: database hiccup",
    }
    assert len(step.contexts) == retries + 1


def test_a_lost_hand_on_is_sent_again(
    settings: Settings, stub: StubBroker, sessions: sessionmaker[Session], task_id: str
) -> None:
    # The worker recorded the stage step, then died before sending the profile message.
    with sessions.begin() as session:
        tasks.claim_step(session=session, task_id=task_id, step="stage", stale_after=10)
        tasks.complete_step(session=session, task_id=task_id, step="stage", timings={})

    run_step(task_id, "stage", Recorder(), settings=settings, broker=stub)  # redelivered

    assert _sent(stub) == [("import_profile", (task_id,))]


def test_the_heartbeat_beats_while_a_step_runs(
    settings: Settings, stub: StubBroker, sessions: sessionmaker[Session], task_id: str
) -> None:
    beats: list[object] = []

    def slow(context: StepContext) -> None:
        first = _read(sessions, task_id).heartbeat_at
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = _read(sessions, task_id).heartbeat_at
            if current != first:
                beats.append(current)
                return
            time.sleep(0.1)

    run_step(task_id, "stage", slow, settings=settings, broker=stub)

    assert beats, "the heartbeat never moved while the step ran"


def test_an_unknown_task_is_ignored(settings: Settings, stub: StubBroker) -> None:
    step = Recorder()
    run_step(str(uuid.uuid4()), "stage", step, settings=settings, broker=stub)
    assert step.contexts == [] and _sent(stub) == []
