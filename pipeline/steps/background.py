"""A thread that runs beside a `with` block: the progress reporters' shared lifecycle."""

from __future__ import annotations

import threading
from typing import Self


class Background:
    """Runs `_run` in a daemon thread while the `with` block runs (only when `active`);
    `_stop` is set when the block ends, and the thread is joined."""

    def __init__(self, name: str, *, active: bool) -> None:
        self._stop = threading.Event()
        self._active = active
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        if self._active:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
