"""Which failures are the input's fault (fail the task at once) and which are retried."""

from __future__ import annotations

import psycopg
import sqlalchemy.exc

import geo_engine
from core.errors import InvalidInput

# geo_engine's exception classes, most specific first, and the task error code of each.
_ENGINE_CODES: tuple[tuple[type[Exception], str], ...] = (
    (geo_engine.EncodingError, "encoding_error"),
    (geo_engine.CrsError, "crs_error"),
    (geo_engine.FormatError, "format_error"),
    (geo_engine.GeometryError, "geometry_error"),
    (geo_engine.GeoEngineIOError, "io_error"),
    (geo_engine.GeoEngineError, "read_error"),
)


def input_error(exc: BaseException) -> tuple[str, str] | None:
    """The task error `(code, message)` when `exc` is a problem with the input, else None."""
    if isinstance(exc, InvalidInput):
        return exc.code, exc.message
    for kind, code in _ENGINE_CODES:
        if isinstance(exc, kind):
            return code, str(exc)
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, psycopg.errors.DataError):
        # PostgreSQL refused a value (e.g. a geometry PostGIS cannot parse): retrying won't help.
        return "invalid_data", f"the database refused the data: {exc}".strip()
    return None


def timed_out(exc: BaseException) -> bool:
    """Whether PostgreSQL cancelled a statement (its `statement_timeout`, the step's limit)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    return isinstance(exc, psycopg.errors.QueryCanceled)
