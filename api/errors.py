"""HTTP in one place: domain errors, validation errors and HTTP errors as DRF answered them."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
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

# Looked up along each error's MRO, so subclasses inherit their parent's status.
STATUS_CODES: dict[type[DomainError], int] = {
    NotFound: 404,
    PermissionDenied: 403,
    NotAuthenticated: 401,
    PayloadTooLarge: 413,
    TooManyRequests: 429,
    ServiceUnavailable: 503,
    InvalidInput: 400,
    DomainError: 400,
}
BEARER = {"WWW-Authenticate": "Bearer"}
NOT_FOUND = "Not found."
INVALID_TOKEN = "Invalid token."

# pydantic error types and DRF's wording for them.
_DRF_MESSAGES = {
    "missing": "This field is required.",
    "string_too_short": "This field may not be blank.",
    "string_too_long": "Ensure this field has no more than {max_length} characters.",
    "string_type": "Not a valid string.",
    "int_parsing": "A valid integer is required.",
    "int_type": "A valid integer is required.",
    "int_from_float": "A valid integer is required.",
    "float_parsing": "A valid number is required.",
    "float_type": "A valid number is required.",
    "finite_number": "A valid number is required.",
    "bool_parsing": "Must be a valid boolean.",
    "bool_type": "Must be a valid boolean.",
    "literal_error": '"{input}" is not a valid choice.',
    "enum": '"{input}" is not a valid choice.',
    "dict_type": 'Expected a dictionary of items but got type "{input_type}".',
    "list_type": 'Expected a list of items but got type "{input_type}".',
    "greater_than_equal": "Ensure this value is greater than or equal to {ge}.",
    "less_than_equal": "Ensure this value is less than or equal to {le}.",
    "greater_than": "Ensure this value is greater than {gt}.",
    "less_than": "Ensure this value is less than {lt}.",
    "model_attributes_type": "Invalid data. Expected a dictionary, but got {input_type}.",
    "model_type": "Invalid data. Expected a dictionary, but got {input_type}.",
}


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain error."""
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


def body_for(error: DomainError) -> dict[str, Any]:
    """DRF's body for a domain error: field errors for bad input, `detail` otherwise."""
    if isinstance(error, InvalidInput) and not isinstance(error, PayloadTooLarge):
        return {error.field: [error.message]}
    return {"detail": error.message}


def drf_message(error: dict[str, Any]) -> str:
    """DRF's wording of one pydantic error."""
    kind = str(error.get("type", ""))
    if kind != "missing" and "input" in error and error["input"] is None:
        return "This field may not be null."
    template = _DRF_MESSAGES.get(kind)
    if template is None:
        message = str(error.get("msg", "Invalid value."))
        return message.removeprefix("Value error, ")
    value = error.get("input")
    # Bounds read as DRF wrote them: 180, not 180.0.
    ctx = {
        key: int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        for key, bound in (error.get("ctx") or {}).items()
    }
    params = {**ctx, "input": value, "input_type": type(value).__name__}
    return template.format(**params)


def drf_field_errors(errors: Sequence[Any]) -> dict[str, list[str]]:
    """Group pydantic errors by top-level field, as DRF's `{field: [messages]}`."""
    grouped: dict[str, list[str]] = {}
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part not in ("body", "query", "form")]
        field = str(loc[0]) if loc else "non_field_errors"
        message = drf_message(error)
        if message not in grouped.setdefault(field, []):
            grouped[field].append(message)
    return grouped


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return _domain_response(exc)


def _domain_response(exc: DomainError) -> JSONResponse:
    code = status_for(exc)
    headers = BEARER if code == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body_for(exc), status_code=code, headers=headers)


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = infrastructure_error(exc)
    if mapped is None:
        raise exc
    return _domain_response(mapped)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    # A path parameter of the wrong type names no object: DRF answered 404.
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return JSONResponse({"detail": NOT_FOUND}, status_code=404)
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            return JSONResponse({"detail": f"JSON parse error - {reason}"}, status_code=400)
    return JSONResponse(drf_field_errors(errors), status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    detail: Any = exc.detail
    if exc.status_code == 401:
        headers.update(BEARER)
        if detail == HTTPStatus.UNAUTHORIZED.phrase:
            has_token = request.headers.get("authorization", "").lower().startswith("bearer ")
            detail = INVALID_TOKEN if has_token else NotAuthenticated().message
    elif exc.status_code == 403 and detail == HTTPStatus.FORBIDDEN.phrase:
        detail = PermissionDenied().message
    elif exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = NOT_FOUND
    elif exc.status_code == 405:
        detail = f'Method "{request.method}" not allowed.'
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers or None)


def register_error_handlers(app: FastAPI) -> None:
    """Install the one mapping from errors to DRF-shaped responses."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in DRIVER_ERRORS:
        app.add_exception_handler(kind, _driver_error)
    # The API takes no file uploads: its multipart bodies (a login form) are checked too.
    app.add_middleware(TextGuardMiddleware, check_multipart=True)
