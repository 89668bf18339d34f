"""Field types shared by the resource schemas, validated and written as DRF did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    validate_email,
)
from pydantic_core import PydanticCustomError

T = TypeVar("T")


def drf_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as DRF wrote timestamps."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _primary_key(value: Any) -> Any:
    """An object id as DRF's PrimaryKeyRelatedField read it: an integer, or its digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        if value is None:
            return value
        raise PydanticCustomError(
            "pk_type",
            "Incorrect type. Expected pk value, received {input_type}.",
            {"input_type": type(value).__name__},
        )
    try:
        return int(value)
    except ValueError:
        raise PydanticCustomError(
            "pk_type", "Incorrect type. Expected pk value, received str."
        ) from None


def _email(value: str) -> str:
    """Django's EmailValidator wording; blank is allowed, as the user model allows it."""
    if value == "":
        return value
    try:
        validate_email(value)
    except PydanticCustomError:
        raise PydanticCustomError("email", "Enter a valid email address.") from None
    return value


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null", "This field may not be null.")
    return value


# Django's serial keys are int4: a reference outside 1..2**31-1 is a field error, not a 500.
INT4_MAX = 2**31 - 1
UtcDateTime = Annotated[datetime, PlainSerializer(drf_datetime, return_type=str)]
# CharField: whitespace trimmed, blank refused, max_length as the column.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
JsonObject = dict[str, Any]
# A related object's id (`source`, `layers`): DRF's reading, within the int4 range.
PrimaryKey = Annotated[int, BeforeValidator(_primary_key), Field(ge=1, le=INT4_MAX, examples=[1])]
# Django's EmailField on auth_user: max 254 characters, may be blank.
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
# For PATCH bodies: the field may be left out, but not sent as null.
NotNull = Annotated[T | None, BeforeValidator(_refuse_null)]


class ReadModel(BaseModel):
    """A resource as the API answers it."""

    model_config = ConfigDict(from_attributes=True)
