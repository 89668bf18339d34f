"""DRF's page-number pagination: `{"count", "next", "previous", "results"}` with absolute links."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request

from core.errors import NotFound

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
LAST_PAGE = 0  # `?page=last`, resolved once the count is known


class InvalidPage(NotFound):
    """Invalid page."""


def public_url(request: Request) -> URL:
    """The request's URL as the client saw it (X-Forwarded-Proto/Host honoured)."""
    url = request.url
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    if proto:
        url = url.replace(scheme=proto)
    if host:
        url = url.replace(netloc=host)
    return url


@dataclass
class Page:
    """One requested page: its number, size and the URL to build links from."""

    number: int
    size: int
    url: URL

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.number - 1) * self.size

    def check(self, count: int) -> None:
        """Refuse a page past the end (page 1 always exists, even when empty)."""
        last = max(1, math.ceil(count / self.size))
        if self.number == LAST_PAGE:
            self.number = last
        if self.number > last:
            raise InvalidPage("Invalid page.")

    def _link(self, number: int) -> str:
        if number == 1:
            return str(self.url.remove_query_params("page"))
        return str(self.url.include_query_params(page=number))

    def document(self, count: int, results: list[Any]) -> dict[str, Any]:
        """The paginated answer."""
        last = max(1, math.ceil(count / self.size))
        return {
            "count": count,
            "next": self._link(self.number + 1) if self.number < last else None,
            "previous": self._link(self.number - 1) if self.number > 1 else None,
            "results": results,
        }


def paginate_params(request: Request) -> Page:
    """Read `?page=` (a bad one is 404 `Invalid page.`) and `?page_size=` (clamped) as DRF does."""
    raw_page = request.query_params.get("page", "1")
    if raw_page == "last":
        return Page(number=LAST_PAGE, size=_page_size(request), url=public_url(request))
    try:
        number = int(raw_page)
    except ValueError:
        raise InvalidPage("Invalid page.") from None
    if number < 1:
        raise InvalidPage("Invalid page.")
    return Page(number=number, size=_page_size(request), url=public_url(request))


def _page_size(request: Request) -> int:
    try:
        size = int(request.query_params.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)
