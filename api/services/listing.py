"""DRF's list habits on a SELECT: `?search=`, `?ordering=` and one page of rows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from api.pagination import PageQuery, PageWindow, window

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
T = TypeVar("T", bound=tuple[Any, ...])
Column = ColumnElement[Any] | QueryableAttribute[Any]


def search(stmt: Select[T], term: str | None, columns: Sequence[Column]) -> Select[T]:
    """Rows where every word of `term` appears in one of the columns (case-insensitive)."""
    words = [w for w in re.split(r"[\s,]+", (term or "").replace("\x00", "")) if w]
    if not words:
        return stmt
    like = [or_(*(col.icontains(word, autoescape=True) for col in columns)) for word in words]
    return stmt.where(and_(*like))


def order(
    stmt: Select[T],
    ordering: str | None,
    fields: Mapping[str, Column],
    *,
    tiebreak: Column,
) -> Select[T]:
    """Order by the known fields asked for (`-` for descending); unknown ones are ignored."""
    clauses: list[ColumnElement[Any]] = []
    for name in (ordering or "").split(","):
        name = name.strip()
        column = fields.get(name.removeprefix("-"))
        if column is not None:
            clauses.append(column.desc() if name.startswith("-") else column.asc())
    return stmt.order_by(*clauses, tiebreak)


async def page_of(
    *, session: AsyncSession, stmt: Select[T], pages: PageQuery
) -> tuple[Sequence[T], int, PageWindow]:
    """The rows of the page asked for, the total count, and the page's links."""
    count = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    total = int(count or 0)
    page = window(pages, count=total, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    result = await session.execute(stmt.limit(page.size).offset(page.offset))
    rows: Sequence[Any] = result.all()
    return rows, total, page
