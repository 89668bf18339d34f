"""Domain errors, shared by both services; each app maps them to HTTP in one table."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    code = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code)


class NotFound(DomainError):
    """Not found."""

    code = "not_found"


class PermissionDenied(DomainError):
    """You do not have permission to perform this action."""

    code = "permission_denied"


class NotAuthenticated(DomainError):
    """Authentication credentials were not provided."""

    code = "not_authenticated"


class InvalidInput(DomainError):
    """The input is not valid."""

    code = "invalid_input"

    def __init__(self, message: str = "", *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field


class ParseError(DomainError):
    """Malformed request."""

    code = "parse_error"


class UnsupportedFormat(InvalidInput):
    """This file format is not supported."""

    code = "unsupported_format"


class PayloadTooLarge(InvalidInput):
    """The upload is larger than the configured limit."""

    code = "payload_too_large"


class ServiceUnavailable(DomainError):
    """A service this one depends on is unavailable; try again later."""

    code = "service_unavailable"


class TooManyRequests(DomainError):
    """Request was throttled."""

    code = "throttled"

    def __init__(self, message: str = "", *, retry_after: int = 60) -> None:
        super().__init__(
            message or f"Request was throttled. Expected available in {retry_after} seconds."
        )
        self.retry_after = retry_after


def infrastructure_error(exc: BaseException) -> DomainError | None:
    """The domain error a driver's failure stands for, or None when it is a real bug.

    A value the database refuses (an integer past int4, text it cannot store) is the
    client's input; a lost connection to PostgreSQL or Redis is a 503 that clears by
    itself once it is back (the pools reconnect on the next request).
    """
    if isinstance(exc, sa.DataError):
        return InvalidInput("A value is out of range or not valid for its field.")
    if isinstance(exc, sa.OperationalError | sa.InterfaceError) or (
        isinstance(exc, sa.DBAPIError) and exc.connection_invalidated
    ):
        return ServiceUnavailable("The database is unavailable; try again in a moment.")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return ServiceUnavailable("Redis is unavailable; try again in a moment.")
    if isinstance(exc, ConnectionError | TimeoutError):
        return ServiceUnavailable("A service this one depends on is unavailable.")
    return None


# What the apps hand to `infrastructure_error` (anything else there is a bug: a 500).
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    sa.DBAPIError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)
