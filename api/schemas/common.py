"""Field types shared by the resource schemas, validated and written as DRF did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

T = TypeVar("T")


def drf_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as DRF wrote timestamps."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null", "This field may not be null.")
    return value


# Django's serial keys are int4: a reference outside 1..2**31-1 is a field error, not a 500.
INT4_MAX = 2**31 - 1
ForeignKey = Annotated[int, Field(ge=1, le=INT4_MAX, examples=[1])]
UtcDateTime = Annotated[datetime, PlainSerializer(drf_datetime, return_type=str)]
# CharField: whitespace trimmed, blank refused, max_length as the column.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
JsonObject = dict[str, Any]
# For PATCH bodies: the field may be left out, but not sent as null.
NotNull = Annotated[T | None, BeforeValidator(_refuse_null)]


class ReadModel(BaseModel):
    """A resource as the API answers it."""

    model_config = ConfigDict(from_attributes=True)
