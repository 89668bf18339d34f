"""Maintenance of core_geometry's parts: the compaction actor, its trigger, and a command.

After every load message a worker has processed, `CompactAfterLoad` enqueues one
`maintenance_compact` message: the compaction then runs as a task of its own, never
inside anyone's import (a load neither merges nor drops parts). Runs are serialized by
an advisory lock, so a burst of loads costs one real compaction and quick no-ops.

Import this module only after the broker is set (`pipeline.worker` does both).
From a shell: `python -m pipeline.steps.compact` runs one compaction and prints it.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from pipeline.broker import QUEUE_NAME, STEP_ACTORS
from pipeline.steps import compact

logger = logging.getLogger(__name__)
COMPACT_ACTOR = "maintenance_compact"


@dramatiq.actor(
    actor_name=COMPACT_ACTOR, queue_name=QUEUE_NAME, max_retries=3, time_limit=3_600_000
)
def maintenance_compact() -> None:
    """Drop the parts of deleted sources and merge small parts (see `compact`)."""
    result = compact.compact_now()
    if result.dropped or result.merged:
        logger.info(
            "compaction: dropped %s, merged %s, %d parts left in %.3f s",
            result.dropped, result.merged, result.parts, result.seconds,
        )  # fmt: skip


class CompactAfterLoad(Middleware):
    """Enqueue a compaction after each processed load message (its own message, later)."""

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """After a load's message: a compaction message, unless the load raised."""
        if message.actor_name == STEP_ACTORS["load"] and exception is None:
            maintenance_compact.send()


dramatiq.get_broker().add_middleware(CompactAfterLoad())
