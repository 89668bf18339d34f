"""DuckDB for the steps: one in-memory database per process, the spatial extension loaded
offline from its PyPI package."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import duckdb_extension_spatial

from pipeline.steps.background import Background


def spatial_extension_path() -> Path:
    """The spatial extension binary matching the installed DuckDB (the pair is pinned)."""
    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    return base / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


_lock = threading.Lock()
_database: duckdb.DuckDBPyConnection | None = None
_settings: dict[str, str] = {}


def _open() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(f"LOAD '{spatial_extension_path()}'")
    # Progress is tracked (for `query_progress()`) but never printed on a worker's stdout.
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    return con


def connect() -> duckdb.DuckDBPyConnection:
    """A connection to the process's in-memory DuckDB, with `spatial` loaded.

    One database per process, opened on first use: loading the extension costs a
    quarter of a second, a new connection (a cursor of the database) nothing. Each
    connection has its own temporary tables and views; the memory limit and the spill
    folder are the database's, so they bound all the process's work together.
    """
    global _database
    with _lock:
        if _database is None:
            _database = _open()
        return _database.cursor()


def warm_up() -> None:
    """Open the process's database and import what registering Arrow data imports
    (pyarrow.dataset, pandas: more than a second), so that no import pays for it."""
    import pyarrow.dataset  # noqa: F401

    connect().close()


def configure(*, memory_limit: str | None = None, temp_directory: Path | None = None) -> None:
    """Set the process-wide memory limit and spill folder (each only when it changes)."""
    wanted: dict[str, str | None] = {
        "memory_limit": memory_limit,
        "temp_directory": None if temp_directory is None else str(temp_directory),
    }
    with connect() as con, _lock:
        for name, value in wanted.items():
            if value is not None and _settings.get(name) != value:
                con.execute(f"SET {name} = '{value.replace(chr(39), chr(39) * 2)}'")
                _settings[name] = value


class Ticker(Background):
    """Calls `on_percent` with DuckDB's progress through a long statement, from a thread,
    every `interval` seconds (nothing when `on_percent` is None)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        on_percent: Callable[[float], None] | None,
        interval: float = 0.5,
    ) -> None:
        self._con, self._on_percent, self._interval = con, on_percent, interval
        super().__init__("duckdb-progress", active=on_percent is not None)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            percent = self._con.query_progress()
            if self._on_percent is not None and percent >= 0:
                self._on_percent(min(percent, 100.0))


def quote(identifier: str) -> str:
    """An SQL identifier, quoted for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


# DuckDB's ST_GeometryType names to the OGC/GeoParquet names.
_GEOMETRY_TYPES = {
    "POINT": "Point",
    "LINESTRING": "LineString",
    "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint",
    "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon",
    "GEOMETRYCOLLECTION": "GeometryCollection",
}


def geometry_type_name(duck_name: str, has_z: bool = False) -> str:
    """The GeoParquet name (`Point`, `MultiPolygon Z`...) of a DuckDB geometry type."""
    name = _GEOMETRY_TYPES.get(duck_name.upper(), duck_name.title())
    return f"{name} Z" if has_z else name
