"""Domain errors, shared by both services; each app maps them to HTTP in one table."""

from __future__ import annotations


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
