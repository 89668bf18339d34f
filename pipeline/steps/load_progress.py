"""How a load reports its progress, including through the statements PostgreSQL runs alone.

CREATE INDEX and ANALYZE run inside PostgreSQL for seconds to minutes without a word
to the client; PostgreSQL's progress views tell how far they are. `Monitor` reads them
every half second, from a connection of its own, for the backends of the load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from pipeline.steps.background import Background

logger = logging.getLogger(__name__)

# Called as the load goes: (phase, rows done, rows total, bytes done, bytes total).
ProgressCallback = Callable[[str, int, int, int, int], None]

# What PostgreSQL says of a running CREATE INDEX or ANALYZE (blocks are 8 KiB pages).
_PROGRESS_SQL = """
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
FROM pg_stat_progress_create_index WHERE pid = ANY(%(pids)s)
UNION ALL
SELECT phase, sample_blks_scanned, sample_blks_total, 0, 0
FROM pg_stat_progress_analyze WHERE pid = ANY(%(pids)s)
"""
_BLOCK = 8192
_POLL = 0.5


class Monitor(Background):
    """Reports PostgreSQL's progress through the statements of the backends it watches."""

    def __init__(self, engine: Engine, on_progress: ProgressCallback | None) -> None:
        self._engine, self._on_progress = engine, on_progress
        self._watched: dict[int, str] = {}
        self._rows = 0
        self._lock = threading.Lock()
        super().__init__("load-progress", active=on_progress is not None)

    @contextmanager
    def watching(self, pid: int, phase: str, rows: int) -> Iterator[None]:
        """Report backend `pid`'s progress as `phase` while the block runs."""
        with self._lock:
            self._watched[pid] = phase
            self._rows = rows
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(pid, None)

    def _run(self) -> None:
        try:
            with self._engine.connect() as conn:
                while not self._stop.wait(_POLL):
                    self._poll(conn)
        except Exception:  # progress is a courtesy: never the load's failure
            logger.exception("watching the load's progress failed")

    def _poll(self, conn: Connection) -> None:
        with self._lock:
            watched, rows = dict(self._watched), self._rows
        if not watched or self._on_progress is None:
            return
        found = conn.exec_driver_sql(_PROGRESS_SQL, {"pids": list(watched)}).all()
        conn.rollback()
        if not found:
            return
        phases = sorted(set(watched.values()))
        what = sorted({str(row[0]) for row in found})
        # Several backends (a parallel load): their work summed, their phases listed.
        self._on_progress(
            f"{', '.join(phases)}: {', '.join(what)}",
            sum(int(row[3] or 0) for row in found) or rows,
            sum(int(row[4] or 0) for row in found),
            sum(int(row[1] or 0) for row in found) * _BLOCK,
            sum(int(row[2] or 0) for row in found) * _BLOCK,
        )
