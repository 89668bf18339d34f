"""The Dramatiq broker, built from settings, and the messages that start each step.

The ETL service only enqueues messages (by actor name, so it never imports the
actors); the worker sets the same broker globally before the actors are declared.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import dramatiq
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import RedisBroker

from core.settings import Settings

QUEUE_NAME = "imports"
# Actor names are part of the message format: a renamed function keeps its actor name.
STEP_ACTORS = {
    "stage": "import_stage",
    "profile": "import_profile",
    "load": "import_load",
}
# The first steps of raster imports and analyses (`pipeline.tasks.LEAD_STEPS`), whose
# actors `pipeline.analysis.actors` declares; they hand on to the import's actors above.
LEAD_STEP_ACTORS = {
    "raster": "raster_import",
    "interpolate": "analysis_interpolate",
    "grid": "analysis_grid",
    "vectorize": "analysis_vectorize",
    "grid_cells": "analysis_grid_cells",
}
ALL_STEP_ACTORS = {**STEP_ACTORS, **LEAD_STEP_ACTORS}
# The Redis sorted set where Dramatiq's consumers record their heartbeats (ms timestamps).
CONSUMER_HEARTBEATS_KEY = "dramatiq:__heartbeats__"
# Dramatiq's Redis hashes of the messages not yet acknowledged (waiting, delayed for a
# retry's backoff, or being worked on), and of the dead ones (retries exhausted).
PENDING_MESSAGE_KEYS = (f"dramatiq:{QUEUE_NAME}.msgs", f"dramatiq:{QUEUE_NAME}.DQ.msgs")
QUEUE_KEYS = {"waiting": f"dramatiq:{QUEUE_NAME}", "delayed": f"dramatiq:{QUEUE_NAME}.DQ"}


# An idle consumer polls Redis with a backoff growing up to this (Dramatiq's default is a
# second). Each step hands on to the next through the queue, so this is paid per step:
# 100 ms keeps an import's hops short for a few cheap Redis calls per second.
MAX_POLL_MS = 100


class ImportBroker(RedisBroker):
    """Dramatiq's Redis broker, with idle consumers polling at most MAX_POLL_MS apart."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """A consumer of `queue_name` whose idle backoff stops at MAX_POLL_MS."""
        return super().consume(queue_name, prefetch, min(timeout, MAX_POLL_MS))


def make_broker(settings: Settings) -> RedisBroker:
    """A Redis broker with the import queue declared."""
    broker = ImportBroker(url=settings.redis.redis_url)  # type: ignore[no-untyped-call]
    broker.declare_queue(QUEUE_NAME)
    return broker


def setup_broker(settings: Settings) -> RedisBroker:
    """Build the broker and make it Dramatiq's global one (before declaring actors)."""
    broker = make_broker(settings)
    dramatiq.set_broker(broker)
    return broker


def step_message(step: str, task_id: uuid.UUID | str) -> dramatiq.Message[None]:
    """The message that runs `step` of the task, for whichever worker takes it."""
    return dramatiq.Message(
        queue_name=QUEUE_NAME,
        actor_name=ALL_STEP_ACTORS[step],
        args=(str(task_id),),
        kwargs={},
        options={},
    )


def enqueue_step(broker: dramatiq.Broker, step: str, task_id: uuid.UUID | str) -> None:
    """Send the message that runs `step` of the task."""
    broker.enqueue(step_message(step, task_id))


def message_target(raw: bytes | str) -> tuple[str, str] | None:
    """(task id, actor name) of an encoded step message; None for anything else."""
    try:
        document: Any = json.loads(raw)
        return str(document["args"][0]), str(document["actor_name"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
