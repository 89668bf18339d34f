"""DRF's PageNumberPagination: `page`/`page_size`, absolute links, 404 past the end."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from api.state import get_resources
from api.urls import absolute_url, remove_query_param, replace_query_param
from core.errors import NotFound

T = TypeVar("T")
INVALID_PAGE = "Invalid page."
LAST_PAGE = "last"


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


@dataclass(frozen=True)
class PageQuery:
    """What the client asked for: the raw page parameters and the URL they came with."""

    url: str
    page: str | None
    page_size: str | None


@dataclass(frozen=True)
class PageWindow:
    """The rows one page covers and its links."""

    number: int
    size: int
    next: str | None
    previous: str | None

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.number - 1) * self.size


def get_page_query(
    request: Request,
    page: Annotated[str | None, Query(description="page number, or `last`")] = None,
    page_size: Annotated[str | None, Query(description="rows per page")] = None,
) -> PageQuery:
    """The page parameters of this request."""
    trust = get_resources(request).api_settings.trust_forwarded_headers
    return PageQuery(absolute_url(request, trust_forwarded=trust), page, page_size)


PageQueryDep = Annotated[PageQuery, Depends(get_page_query)]


def page_size_of(raw: str | None, *, default: int, maximum: int) -> int:
    """The page size: a positive integer capped at `maximum`, else the default (as DRF)."""
    try:
        size = int(raw) if raw is not None else default
    except ValueError:
        return default
    return default if size <= 0 else min(size, maximum)


def window(query: PageQuery, *, count: int, default: int, maximum: int) -> PageWindow:
    """The page asked for, or NotFound("Invalid page.") when there is no such page."""
    size = page_size_of(query.page_size, default=default, maximum=maximum)
    pages = max(1, math.ceil(count / size))
    raw = query.page or "1"
    if raw == LAST_PAGE:
        number = pages
    else:
        try:
            number = int(raw)
        except ValueError:
            raise NotFound(INVALID_PAGE) from None
    if number < 1 or number > pages:
        raise NotFound(INVALID_PAGE)
    next_url = replace_query_param(query.url, "page", number + 1) if number < pages else None
    if number == 1:
        previous = None
    elif number == 2:
        previous = remove_query_param(query.url, "page")
    else:
        previous = replace_query_param(query.url, "page", number - 1)
    return PageWindow(number, size, next_url, previous)
