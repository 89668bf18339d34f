"""The import's tuning knobs (environment variables `IMPORT_*`), beside core's PipelineSettings.

Kept in the pipeline package because only the workers read them; core's
`PipelineSettings` holds what the services share (folders, limits, retries).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import ENV_FILE, REPO_ROOT

logger = logging.getLogger(__name__)


class ImportSettings(BaseSettings):
    """How a worker runs an import's steps."""

    model_config = SettingsConfigDict(
        env_prefix="IMPORT_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    # DuckDB's memory while staging; past it, the table and the sort spill to disk. The
    # worker's peak is about this plus 550 MiB (the interpreter and its libraries, the
    # Arrow batches in flight, DuckDB's Parquet writer): 256MB keeps the import of 10M
    # points under 1 GiB, and 1M points still sort in memory.
    stage_memory_limit: str = "256MB"
    # A load of at least `load_parallel_min_rows` rows is built by this many connections
    # side by side (0: one per CPU core of the worker).
    load_parallelism: int = Field(default=0, ge=0)
    load_parallel_min_rows: int = Field(default=50_000, ge=1)
    # A file up to this size (bytes, every part of a shapefile) is staged, profiled and
    # loaded in one message by one worker (0, the default for now: each step its own
    # message; the worker-killed-in-a-load drill of test_robustness fails with it on).
    inline_max_bytes: int = Field(default=0, ge=0)
    # Per-step time limits in seconds (0: core's `step_time_limit_seconds`).
    stage_time_limit_seconds: int = Field(default=0, ge=0)
    profile_time_limit_seconds: int = Field(default=0, ge=0)
    load_time_limit_seconds: int = Field(default=0, ge=0)
    # Fault injection, for drills and tests: the worker waits `pause_seconds` at the named
    # point (`load.copied`: rows COPYed, transaction open), e.g. to be killed there.
    pause_at: str = ""
    pause_seconds: float = Field(default=0.0, ge=0)

    def parallelism(self) -> int:
        """How many chunks a large load is built in."""
        return self.load_parallelism or max(1, min(os.cpu_count() or 1, 8))

    def time_limit(self, step: str, default: int) -> int:
        """The time limit of `step` in seconds."""
        value = int(getattr(self, f"{step}_time_limit_seconds", 0) or 0)
        return value or default


class RasterSettings(BaseSettings):
    """The raster store and the limits of raster imports and analyses (`RASTER_*`)."""

    model_config = SettingsConfigDict(
        env_prefix="RASTER_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    # RASTER_DIR: the COGs TiTiler serves (it opens nothing else).
    dir: Path = REPO_ROOT / "data" / "rasters"
    # An uploaded raster larger than this (width x height x bands) is refused.
    max_pixels: int = Field(default=2_000_000_000, ge=1)
    # No analysis writes a grid of more cells than this (a 10,000 x 10,000 float64 grid
    # is 800 MB); a polygon grid source, more features than `max_polygon_cells`.
    max_cells: int = Field(default=100_000_000, ge=1)
    max_polygon_cells: int = Field(default=4_000_000, ge=1)


@lru_cache
def raster_settings() -> RasterSettings:
    """The process's raster settings, read once."""
    return RasterSettings()


@lru_cache
def import_settings() -> ImportSettings:
    """The process's import settings, read once."""
    return ImportSettings()


def pause_point(name: str, announce: Callable[[], None] | None = None) -> None:
    """Wait here if the settings say so (`IMPORT_PAUSE_AT=<name>`); `announce` first."""
    settings = import_settings()
    if settings.pause_at != name or settings.pause_seconds <= 0:
        return
    logger.warning("pausing %.1f s at %s (IMPORT_PAUSE_AT)", settings.pause_seconds, name)
    if announce is not None:
        announce()
    time.sleep(settings.pause_seconds)
