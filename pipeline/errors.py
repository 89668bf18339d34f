"""The ETL service's one table from domain errors to HTTP, with DRF-shaped bodies."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    DRIVER_ERRORS,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    TooManyRequests,
    infrastructure_error,
)
from http_common.textguard import TextGuardMiddleware

__all__ = ["ServiceUnavailable", "domain_error_response", "install_error_handlers"]

# Most specific first: PayloadTooLarge is an InvalidInput.
STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (PayloadTooLarge, 413),
    (InvalidInput, 400),
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (ServiceUnavailable, 503),
    (TooManyRequests, 429),
)
_NOT_FOUND = "Not found."


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The DRF-shaped response of a domain error."""
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 500)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    body: dict[str, Any]
    if isinstance(exc, InvalidInput) and status == 400:
        body = {exc.field: [exc.message]}
    else:
        body = {"detail": exc.message}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in {"body", "query", "path", "header"}]
    return ".".join(parts) or "non_field_errors"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn errors into DRF-shaped JSON."""

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return domain_error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        body: dict[str, list[str]] = {}
        for error in exc.errors():
            message = "This field is required." if error["type"] == "missing" else error["msg"]
            body.setdefault(_field_of(error["loc"]), []).append(message)
        return JSONResponse(body, status_code=400)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail: Any = exc.detail
        if exc.status_code == 404:
            detail = _NOT_FOUND
        elif exc.status_code == 405:
            detail = f'Method "{request.method}" not allowed.'
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    async def on_driver_error(request: Request, exc: Exception) -> JSONResponse:
        mapped = infrastructure_error(exc)
        if mapped is None:
            raise exc
        return domain_error_response(mapped)

    app.add_exception_handler(DomainError, on_domain_error)
    for kind in DRIVER_ERRORS:
        app.add_exception_handler(kind, on_driver_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    # Uploads are multipart: their text fields are checked as they stream (uploads.py).
    app.add_middleware(TextGuardMiddleware)
