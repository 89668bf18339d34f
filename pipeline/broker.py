"""The Dramatiq broker, built from settings, and the messages that start each step.

The ETL service only enqueues messages (by actor name, so it never imports the
actors); the worker sets the same broker globally before the actors are declared.
"""

from __future__ import annotations

import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from core.settings import Settings

QUEUE_NAME = "imports"
# Actor names are part of the message format: a renamed function keeps its actor name.
STEP_ACTORS = {
    "stage": "import_stage",
    "profile": "import_profile",
    "load": "import_load",
}
# The Redis sorted set where Dramatiq's consumers record their heartbeats (ms timestamps).
CONSUMER_HEARTBEATS_KEY = "dramatiq:__heartbeats__"


def make_broker(settings: Settings) -> RedisBroker:
    """A Redis broker with the import queue declared."""
    broker = RedisBroker(url=settings.redis.redis_url)  # type: ignore[no-untyped-call]
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
        actor_name=STEP_ACTORS[step],
        args=(str(task_id),),
        kwargs={},
        options={},
    )


def enqueue_step(broker: dramatiq.Broker, step: str, task_id: uuid.UUID | str) -> None:
    """Send the message that runs `step` of the task."""
    broker.enqueue(step_message(step, task_id))
