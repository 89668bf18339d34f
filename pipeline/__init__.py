"""The ETL service, its Dramatiq broker and actors, the import steps and the `maps` CLI.

Importing the package connects to nothing and declares no actors: the worker module
(`pipeline.worker`) sets the broker first, then imports `pipeline.actors`.
"""

from pipeline.tasks import IMPORT_STEPS, TaskState, serialize_task

__all__ = ["IMPORT_STEPS", "TaskState", "serialize_task"]
