"""Work the benchmark runs in a process of its own, so that its peak RSS is its own.

    python -m benchmarks.child baseline
    python -m benchmarks.child stream PATH
    python -m benchmarks.child import PATH --name NAME [--kind shapefile|csv|geojson]
    python -m benchmarks.child floor STAGED

Each prints one JSON line. `import` runs the pipeline as a worker does, in this process:
the pipeline's own Dramatiq actors declared on a StubBroker, the ETL service's first
message sent, then each message taken off the queue in turn and its actor called (the
actor claims the step, runs it, records it in `etl_task` and sends the next message).
The settings come from the environment the parent sets (DATABASE_URL, STAGING_DIR,
UPLOAD_DIR), read when the pipeline's modules are first imported, here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


# The highest VmHWM seen before a reset of it (see `reset_peak_rss`).
_earlier_peak = 0


def peak_rss(*, since_reset: bool = False) -> int:
    """This process's peak resident set size in bytes (VmHWM, fresh since its exec), or
    the peak since the last `reset_peak_rss`."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
            return peak if since_reset else max(peak, _earlier_peak)
    raise RuntimeError("no VmHWM in /proc/self/status")


def current_rss() -> int:
    """This process's resident set size now, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def reset_peak_rss() -> bool:
    """Start a new high-water mark at the current RSS (Linux's clear_refs 5); whether it could."""
    global _earlier_peak
    _earlier_peak = peak_rss()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def baseline() -> dict[str, Any]:
    """Nothing but the imports a reader needs: the floor under the other figures."""
    import pyarrow  # noqa: F401

    import geo_engine  # noqa: F401

    return {}


def stream(path: Path) -> dict[str, Any]:
    """Stream a shapefile through geo_engine, one batch at a time, keeping none."""
    import pyarrow as pa

    import geo_engine

    started = time.perf_counter()
    reader = pa.RecordBatchReader.from_stream(geo_engine.stream_shapefile(str(path)))
    rows = sum(batch.num_rows for batch in reader)
    return {"rows": rows, "seconds": time.perf_counter() - started}


def import_file(path: Path, *, name: str, kind: str) -> dict[str, Any]:
    """Import one file through the pipeline's actors, timing each step; then check the load."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    broker = StubBroker()
    dramatiq.set_broker(broker)
    import pipeline.actors  # noqa: F401  (declares the actors on `broker`)
    from core.database import make_sync_engine, make_sync_sessionmaker
    from core.settings import get_settings
    from pipeline import tasks
    from pipeline.broker import QUEUE_NAME, STEP_ACTORS, enqueue_step
    from pipeline.steps import duck
    from pipeline.steps.formats import FORMATS

    if kind not in FORMATS:
        return {"available": False, "reason": f"the pipeline reads no {kind} files"}
    # What the worker pays once when it starts (pipeline.worker), not per import.
    duck.warm_up()
    settings = get_settings()
    engine = make_sync_engine(settings.db)
    sessions = make_sync_sessionmaker(engine)
    folder = Path(tempfile.mkdtemp(dir=settings.pipeline.upload_dir))
    task = tasks.new_import(
        format=kind,
        owner_id=None,
        name=name,
        path=_link_upload(path, folder),
        upload_dir=folder,
        file_name=path.name,
    )
    step_of = {actor: step for step, actor in STEP_ACTORS.items()}
    steps: dict[str, float] = {}
    # The peak RSS while each message ran (the high-water mark reset before it), and the
    # RSS before the first: where the process's peak comes from.
    peaks: dict[str, int] = {}
    queue = broker.queues[QUEUE_NAME]
    ready_rss = current_rss()

    started = time.perf_counter()
    with sessions.begin() as session:
        session.add(task)
    enqueue_step(broker, tasks.IMPORT_STEPS[0], task.id)
    while not queue.empty():
        message = dramatiq.Message.decode(queue.get_nowait())
        resettable = reset_peak_rss()
        clock = time.perf_counter()
        broker.get_actor(message.actor_name).fn(*message.args, **message.kwargs)
        step = step_of.get(message.actor_name, message.actor_name)
        steps[step] = steps.get(step, 0.0) + time.perf_counter() - clock
        if resettable:
            peaks[step] = max(peaks.get(step, 0), peak_rss(since_reset=True))
    total = time.perf_counter() - started

    with sessions() as session:
        done = tasks.get_task(session=session, task_id=task.id)
        assert done is not None
        outcome = tasks.serialize_task(done)
    if outcome["state"] != tasks.TaskState.SUCCEEDED:
        raise RuntimeError(
            f"the import of {path.name} ended {outcome['state']}: {outcome['error']}"
        )
    result = outcome["result"] or {}
    checks = _check_load(engine, int(result["source_id"]))
    engine.dispose()
    return {
        "available": True,
        "seconds": total,
        "steps": steps,
        "timings": outcome["timings"],
        "warnings": outcome["warnings"],
        "feature_count": result.get("feature_count"),
        "source_id": result["source_id"],
        "staging_path": result.get("staging_path"),
        "checks": checks,
        "ready_rss": ready_rss,
        "step_peak_rss": peaks,
    }


def server_floor(path: Path, *, repeat: int = 3) -> dict[str, Any]:
    """What the server alone needs to load a staged file as our load does (the floor).

    The rows are encoded for COPY up front, in memory; then as many connections as our
    load would use (the worker's settings), side by side, each create a build table,
    COPY their chunk (binary, FREEZE), build the parent's indexes, ANALYZE and commit,
    as `pipeline.steps.load_chunks` does. Nothing
    is staged, profiled, read or encoded while the clock runs. The median of `repeat`.
    """
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    import psycopg
    import pyarrow.parquet as pq

    import geo_engine
    from core.settings import get_settings
    from pipeline.config import import_settings
    from pipeline.steps import load_chunks, partitions
    from pipeline.steps.stage import GEOMETRY_COLUMN, covering_column

    names = pq.ParquetFile(path).schema_arrow.names
    table = pq.read_table(path, columns=[n for n in names if n != covering_column(path)])
    tuning = import_settings()
    parts = tuning.parallelism() if table.num_rows >= tuning.load_parallel_min_rows else 1
    chunks = load_chunks.plan(table.num_rows, build="load_floor", parts=parts)
    encoded = [
        b"".join(
            [
                bytes(geo_engine.copy_header()),
                *(
                    bytes(
                        geo_engine.encode_copy_rows(
                            batch, source_id=0, geometry_column=GEOMETRY_COLUMN, srid=4326
                        )
                    )
                    for batch in table.slice(chunk.start, chunk.rows).to_batches()
                ),
                bytes(geo_engine.copy_trailer()),
            ]
        )
        for chunk in chunks
    ]
    url = get_settings().db.libpq_url

    def build(chunk: Any, data: bytes) -> None:
        with psycopg.connect(url) as conn:
            partitions.create_build_table(conn, name=chunk.name, source_id=0)
            with conn.cursor() as cursor, cursor.copy(partitions.copy_statement(chunk.name)) as c:
                c.write(data)
            for statement in partitions.index_statements(conn, name=chunk.name):
                conn.execute(statement)
            partitions.analyze(conn, name=chunk.name)

    times = []
    with ThreadPoolExecutor(len(chunks)) as pool:
        for _ in range(repeat):
            started = time.perf_counter()
            list(pool.map(build, chunks, encoded))
            times.append(time.perf_counter() - started)
            with psycopg.connect(url, autocommit=True) as conn:
                partitions.drop_build(conn, name="load_floor")
    return {"seconds": statistics.median(times), "times": times, "parts": len(chunks)}


def _link_upload(path: Path, folder: Path) -> Path:
    """The file (and a shapefile's siblings) in an upload folder of its own, as the ETL
    service leaves them; hard links, so nothing is copied and the originals stay."""
    parts = [path.with_suffix(s) for s in SHAPEFILE_PARTS] if path.suffix == ".shp" else [path]
    for part in parts:
        if part.exists():
            try:
                os.link(part, folder / part.name)
            except OSError:
                (folder / part.name).write_bytes(part.read_bytes())
    return folder / path.name


def _check_load(engine: Engine, source_id: int) -> dict[str, Any]:
    """Rows committed for the source; a GiST index and statistics on the table holding them."""
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT count(*) FROM core_geometry WHERE source_id = :id"), {"id": source_id}
        ).scalar_one()
        relation = conn.execute(
            text("SELECT tableoid FROM core_geometry WHERE source_id = :id LIMIT 1"),
            {"id": source_id},
        ).scalar_one_or_none()
        gist = statistics = False
        if relation is not None:
            gist = conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
                    " WHERE i.indrelid = :rel AND a.amname = 'gist')"
                ),
                {"rel": relation},
            ).scalar_one()
            statistics = conn.execute(
                text("SELECT EXISTS (SELECT 1 FROM pg_statistic WHERE starelid = :rel)"),
                {"rel": relation},
            ).scalar_one()
            relation = conn.execute(
                text("SELECT CAST(CAST(:rel AS regclass) AS text)"), {"rel": relation}
            ).scalar_one()
    return {"rows": rows, "table": relation, "gist_index": gist, "statistics": statistics}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (the parent reads the last line of stdout)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("baseline")
    s = sub.add_parser("stream")
    s.add_argument("path", type=Path)
    i = sub.add_parser("import")
    i.add_argument("path", type=Path)
    i.add_argument("--name", required=True)
    i.add_argument("--kind", default="shapefile", choices=["shapefile", "csv", "geojson"])
    f = sub.add_parser("floor")
    f.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "baseline":
        payload = baseline()
    elif args.command == "stream":
        payload = stream(args.path)
    elif args.command == "floor":
        payload = server_floor(args.path)
    else:
        payload = import_file(args.path, name=args.name, kind=args.kind)
    payload["peak_rss"] = peak_rss()
    sys.stdout.write(json.dumps(payload) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
