"""Actor wiring: names, queue, retry and time-limit options, and the chain of steps.

A StubBroker stands in for Redis and an in-process Dramatiq worker runs the actors; the
database, the files and geo_engine are real.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine

from core.database import make_sync_sessionmaker
from core.models import Task
from core.settings import get_settings
from pipeline import tasks
from pipeline.broker import QUEUE_NAME, STEP_ACTORS, enqueue_step

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StubBroker]:
    """The actors module declared on a StubBroker, with this test's folders in the settings."""
    monkeypatch.setenv("STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path / "uploads"))
    get_settings.cache_clear()
    stub = StubBroker()
    dramatiq.set_broker(stub)
    sys.modules.pop("pipeline.actors", None)
    importlib.import_module("pipeline.actors")
    yield stub
    stub.close()
    sys.modules.pop("pipeline.actors", None)
    get_settings.cache_clear()


def _run(stub: StubBroker) -> None:
    worker = dramatiq.Worker(stub, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        stub.join(QUEUE_NAME, fail_fast=True)
        worker.join()
    finally:
        worker.stop()


def _queue_import(engine: Engine, shp: Path) -> Task:
    """What the ETL service does on upload: the parts in a task folder, a queued task."""
    upload_dir = get_settings().pipeline.upload_dir
    task = tasks.new_shapefile_import(
        owner_id=None, name="wired", shp=shp, upload_dir=upload_dir, file_name=shp.name
    )
    folder = upload_dir / str(task.id)
    folder.mkdir(parents=True)
    for part in shp.parent.glob(f"{shp.stem}.*"):
        shutil.copy(part, folder / part.name)
    task.params = {**task.params, "upload_dir": str(folder), "path": str(folder / shp.name)}
    with make_sync_sessionmaker(engine).begin() as session:
        session.add(task)
    return task


def _read(engine: Engine, task: Task) -> Task:
    with make_sync_sessionmaker(engine)() as session:
        found = tasks.get_task(session=session, task_id=task.id)
    assert found is not None
    return found


def test_each_step_is_an_actor_on_the_import_queue(wired: StubBroker) -> None:
    limits = get_settings().pipeline
    for step, name in STEP_ACTORS.items():
        actor = wired.get_actor(name)
        assert actor.queue_name == QUEUE_NAME, step
        assert actor.options["max_retries"] == limits.task_max_retries
        assert actor.options["time_limit"] == limits.step_time_limit_seconds * 1000
    assert QUEUE_NAME in wired.get_declared_queues()


def test_the_steps_chain_to_a_loaded_source(
    wired: StubBroker, engine: Engine, db: Conn, points_shp: Path
) -> None:
    task = _queue_import(engine, points_shp)

    enqueue_step(wired, "stage", task.id)
    _run(wired)

    done = _read(engine, task)
    assert done.state == "succeeded", done.error
    assert done.result is not None
    assert done.result["feature_count"] == 8
    assert done.result["sid"] == task.params["sid"]
    assert {"stage", "profile", "load", "load.copy", "load.index", "load.attach"} <= set(
        done.timings
    )
    count = db.execute(
        "SELECT count(*) FROM core_geometry WHERE source_id = %s", (done.result["source_id"],)
    ).fetchone()
    assert count == (8,)
    attributes = db.execute(
        "SELECT attributes FROM core_source WHERE id = %s", (done.result["source_id"],)
    ).fetchone()
    assert attributes is not None
    assert attributes[0]["import"]["task_id"] == str(task.id)
    assert Path(done.result["staging_path"]).is_file()
    assert not Path(task.params["upload_dir"]).exists()  # the upload is gone once staged


def test_a_broken_file_fails_its_task_and_cleans_up(
    wired: StubBroker, engine: Engine, db: Conn, points_shp: Path
) -> None:
    task = _queue_import(engine, points_shp)
    Path(task.params["path"]).write_bytes(b"\0" * 50)

    enqueue_step(wired, "stage", task.id)
    _run(wired)

    failed = _read(engine, task)
    assert (failed.state, failed.step) == ("failed", "stage")
    assert failed.error is not None and failed.error["code"] == "format_error"
    assert "points.shp" in failed.error["message"]
    assert not Path(task.params["upload_dir"]).exists()
    assert not list((get_settings().pipeline.staging_dir).glob(f"{task.params['sid']}*"))
    sources = db.execute(
        "SELECT count(*) FROM core_source WHERE sid = %s", (task.params["sid"],)
    ).fetchone()
    assert sources == (0,)


def test_the_worker_module_sets_the_broker_before_declaring_the_actors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    previous = dramatiq.get_broker()
    for name in ("pipeline.worker", "pipeline.actors"):
        sys.modules.pop(name, None)
    try:
        worker: ModuleType = importlib.import_module("pipeline.worker")
        assert dramatiq.get_broker() is worker.broker
        assert worker.broker.get_actor(STEP_ACTORS["stage"]).broker is worker.broker
    finally:
        worker.broker.close()
        for name in ("pipeline.worker", "pipeline.actors"):
            sys.modules.pop(name, None)
        dramatiq.set_broker(previous)


def _messages_run(stub: StubBroker) -> list[str]:
    """Run the queue to its end one message at a time; the actor names run, in order."""
    queue = stub.queues[QUEUE_NAME]
    names = []
    while not queue.empty():
        message = dramatiq.Message.decode(queue.get_nowait())
        names.append(message.actor_name)
        stub.get_actor(message.actor_name).fn(*message.args, **message.kwargs)
    return names


def test_a_small_file_is_imported_in_one_message_with_every_step_recorded(
    wired: StubBroker, engine: Engine, db: Conn, points_shp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.config import import_settings

    monkeypatch.setenv("IMPORT_INLINE_MAX_BYTES", str(32 * 2**20))
    import_settings.cache_clear()
    task = _queue_import(engine, points_shp)

    enqueue_step(wired, "stage", task.id)
    assert _messages_run(wired) == [STEP_ACTORS["stage"]]
    import_settings.cache_clear()

    done = _read(engine, task)
    assert done.state == "succeeded", done.error
    assert done.result is not None and done.result["feature_count"] == 8
    assert {"stage", "stage.write", "profile", "profile.query", "load", "load.copy"} <= set(
        done.timings
    )
    assert done.attempts == 1  # the load's, claimed once like any step
    assert not Path(task.params["upload_dir"]).exists()
    assert db.execute(
        "SELECT count(*) FROM core_geometry WHERE source_id = %s", (done.result["source_id"],)
    ).fetchone() == (8,)


def test_a_large_file_or_a_shorter_limit_takes_a_message_per_step(
    wired: StubBroker, engine: Engine, monkeypatch: pytest.MonkeyPatch, points_shp: Path
) -> None:
    from pipeline.config import import_settings

    every = [STEP_ACTORS[step] for step in ("stage", "profile", "load")]
    monkeypatch.setenv("IMPORT_INLINE_MAX_BYTES", "100")  # the 8 points take more
    import_settings.cache_clear()
    try:
        large = _queue_import(engine, points_shp)
        enqueue_step(wired, "stage", large.id)
        assert _messages_run(wired) == every
        assert _read(engine, large).state == "succeeded"

        monkeypatch.setenv("IMPORT_INLINE_MAX_BYTES", str(32 * 2**20))
        monkeypatch.setenv("IMPORT_LOAD_TIME_LIMIT_SECONDS", "60")  # shorter than the stage's
        import_settings.cache_clear()
        limited = _queue_import(engine, points_shp)
        enqueue_step(wired, "stage", limited.id)
        assert _messages_run(wired) == [STEP_ACTORS["stage"], STEP_ACTORS["load"]]
        assert _read(engine, limited).state == "succeeded"
    finally:
        import_settings.cache_clear()
