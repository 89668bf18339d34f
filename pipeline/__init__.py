"""The ETL service, its Dramatiq broker and actors, the import steps and the `maps` CLI.

Importing the package connects to nothing and declares no actors: the worker module
(`pipeline.worker`) sets the broker first, then imports `pipeline.actors`. Nor does it
import the database layer: the `maps` CLI, which starts often, imports only what it uses
(the names below load on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.tasks import IMPORT_STEPS, TaskState, serialize_task

__all__ = ["IMPORT_STEPS", "TaskState", "serialize_task"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pipeline import tasks

        return getattr(tasks, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
