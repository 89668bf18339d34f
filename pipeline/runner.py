"""Running one step of a task in a worker: claim, heartbeat, record, hand on to the next step.

Actors call `run_step`; it owns everything a step shares (the task record, retries,
errors, timings) so that each step is a plain function of its inputs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import dramatiq
from dramatiq.middleware import TimeLimitExceeded
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.database import make_sync_engine, make_sync_sessionmaker
from core.models import Task
from core.settings import DatabaseSettings, Settings
from pipeline import tasks
from pipeline.broker import enqueue_step
from pipeline.config import import_settings
from pipeline.steps.errors import input_error, timed_out

logger = logging.getLogger(__name__)
# A step's progress is written at most this often (and when its phase changes).
PROGRESS_INTERVAL = 0.5
# Who runs a step, as shown in its progress.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


@lru_cache(maxsize=4)
def _engine_for(database_url: str) -> Engine:
    return make_sync_engine(DatabaseSettings(database_url=database_url))


def worker_engine(settings: Settings) -> Engine:
    """The process's sync engine for these settings (one pool per worker process)."""
    return _engine_for(settings.db.database_url)


@dataclass
class StepContext:
    """What a step function gets: its task, settings, engine, and a way to report.

    `timings` takes the step's breakdown (`{"copy": 1.2, "index": 0.8}`), recorded as
    `load.copy`, `load.index` beside the step's own wall time (`load`).
    """

    task: Task
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)
    _last_report: float = field(default=-1.0, repr=False)
    _last_phase: str | None = field(default=None, repr=False)
    _report_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def step(self) -> str:
        """The step being run."""
        assert self.task.step is not None
        return self.task.step

    def progress(
        self,
        *,
        rows_done: int,
        rows_total: int | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        phase: str | None = None,
        force: bool = False,
    ) -> None:
        """Record how far the step got (and that its worker is alive).

        Steps call this as often as they like (per batch); it writes at most every
        PROGRESS_INTERVAL seconds, and at once when the phase changes or when forced.
        """
        now = time.monotonic()
        with self._report_lock:
            due = now - self._last_report >= PROGRESS_INTERVAL or phase != self._last_phase
            if not (due or force):
                return
            self._last_report, self._last_phase = now, phase
            with self.sessions.begin() as session:
                tasks.update_progress(
                    session=session,
                    task_id=self.task.id,
                    step=self.step,
                    rows_done=rows_done,
                    rows_total=rows_total,
                    bytes_done=bytes_done,
                    bytes_total=bytes_total,
                    phase=phase,
                    elapsed=now - self.started,
                    worker=WORKER_ID,
                )


StepFunction = Callable[[StepContext], None]
# Called with the task and whether it failed, once a step settled (completed or failed).
Hook = Callable[[Task, bool], None]
# Asked, once a step completed, whether this worker runs the next one (named) itself
# instead of sending its message.
HandOn = Callable[[Task, str], bool]


def run_step(
    task_id: str,
    step: str,
    function: StepFunction,
    *,
    settings: Settings,
    broker: dramatiq.Broker | None = None,
    on_settled: Hook | None = None,
    run_here: HandOn | None = None,
) -> str | None:
    """Claim `step` of the task, run it, and record the outcome (the actors' whole body).

    Problems with the input fail the task at once; anything else is retried by Dramatiq
    (the step released, a warning recorded) until the attempts run out. `on_settled`
    runs once the step's inputs are no longer needed: the step completed or the task failed.

    Once the step is recorded, the next one is due: its message is sent, unless `run_here`
    says this worker runs it itself; then its name is returned (else None). The records
    are the same either way, and a worker dying before it claims that step leaves it due
    with no message, which the ETL service's reaper sends again.
    """
    engine = worker_engine(settings)
    sessions = make_sync_sessionmaker(engine)
    limits = settings.pipeline
    with sessions.begin() as session:
        task = tasks.claim_step(
            session=session,
            task_id=task_id,
            step=step,
            stale_after=limits.task_stale_after_seconds,
            worker=WORKER_ID,
        )
    if task is None:
        _hand_on_if_lost(sessions, task_id, step, broker)
        return None
    if task.attempts > limits.task_max_retries + 1:
        tried = task.attempts - 1
        _fail(sessions, task, "retries_exhausted", f"the {step} step was tried {tried} times")
        _settled(on_settled, task)
        return None
    context = StepContext(task=task, settings=settings, engine=engine, sessions=sessions)
    started = time.perf_counter()
    try:
        with _heartbeat(sessions, task, limits.task_heartbeat_seconds):
            function(context)
    except (TimeLimitExceeded, Exception) as exc:  # TimeLimitExceeded is a BaseException
        if isinstance(exc, TimeLimitExceeded) or timed_out(exc):
            # Dramatiq's limit, or the same limit enforced inside PostgreSQL.
            limit = import_settings().time_limit(step, limits.step_time_limit_seconds)
            message = f"the {step} step ran longer than {limit} s"
            _fail(sessions, task, "time_limit_exceeded", message)
            _settled(on_settled, task)
            return None
        known = input_error(exc)
        message = f"{type(exc).__name__}: {exc}"
        if known is None and task.attempts <= limits.task_max_retries:
            logger.exception("task %s: %s step failed (attempt %d)", task.id, step, task.attempts)
            with sessions.begin() as session:
                tasks.release(
                    session=session,
                    task_id=task.id,
                    step=step,
                    warning=f"attempt {task.attempts} of the {step} step failed: {message}",
                )
            raise
        code, text = known or ("internal_error", f"the {step} step failed: {message}")
        _fail(sessions, task, code, text)
        _settled(on_settled, task)
        return None
    except BaseException:
        # Shutdown or another interrupt: give the step back for the message's redelivery.
        with sessions.begin() as session:
            tasks.release(session=session, task_id=task.id, step=step)
        raise
    # The step's wall time under its name; its own breakdown as `<step>.<part>`.
    timings = {f"{step}.{part}": seconds for part, seconds in context.timings.items()}
    timings[step] = round(time.perf_counter() - started, 6)
    with sessions.begin() as session:
        following = tasks.complete_step(
            session=session, task_id=task.id, step=step, timings=timings, warnings=context.warnings
        )
        if following is None:
            tasks.succeed(session=session, task_id=task.id, result=context.result or {})
    here = following is not None and run_here is not None and run_here(task, following)
    if following is not None and not here:
        enqueue_step(broker or dramatiq.get_broker(), following, task.id)
    _settled(on_settled, task, failed=False)
    return following if here else None


def _hand_on_if_lost(
    sessions: sessionmaker[Session], task_id: str, step: str, broker: dramatiq.Broker | None
) -> None:
    """A redelivered message for a finished step: resend the next step's message if unclaimed.

    Covers a worker that died between recording a step and sending the next message;
    a duplicate message is harmless (only one claim of a step succeeds).
    """
    with sessions() as session:
        task = tasks.get_task(session=session, task_id=task_id)
    if task is None or task.state not in (tasks.TaskState.QUEUED, tasks.TaskState.RUNNING):
        return
    if task.heartbeat_at is None and tasks.step_order(task.step) > tasks.step_order(step):
        assert task.step is not None
        enqueue_step(broker or dramatiq.get_broker(), task.step, task.id)


def _fail(sessions: sessionmaker[Session], task: Task, code: str, message: str) -> None:
    logger.warning("task %s failed: %s: %s", task.id, code, message)
    with sessions.begin() as session:
        tasks.fail(session=session, task_id=task.id, code=code, message=message)


def _settled(hook: Hook | None, task: Task, *, failed: bool = True) -> None:
    if hook is None:
        return
    try:
        hook(task, failed)
    except Exception:
        logger.exception("task %s: clean-up failed", task.id)


@contextmanager
def _heartbeat(sessions: sessionmaker[Session], task: Task, interval: float) -> Iterator[None]:
    """Beat the task's heart from a thread while the step runs (native calls included)."""
    stop = threading.Event()
    assert task.step is not None
    step = task.step

    def beat() -> None:
        while not stop.wait(interval):
            try:
                with sessions.begin() as session:
                    tasks.heartbeat(session=session, task_id=task.id, step=step)
            except Exception:
                logger.exception("task %s: heartbeat failed", task.id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{task.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)
