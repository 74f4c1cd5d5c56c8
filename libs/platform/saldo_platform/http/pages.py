"""Cursor pagination: `?limit=&after=`, answered as `{items, next_cursor}`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel


@dataclass(frozen=True)
class Paging:
    limit: int
    after: str | None


def page_query(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9:._-]{1,100}$",
                                       description="next_cursor of the previous page")] = None,
) -> Paging:
    return Paging(limit, after)


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None

    @classmethod
    def of(cls, items: list[dict[str, Any]], limit: int, cursor: Callable[[dict[str, Any]], str]) -> Page:
        """`items` holds up to limit + 1 rows; the extra one only says there is a next page."""
        more = len(items) > limit
        items = items[:limit]
        return cls(items=items, next_cursor=cursor(items[-1]) if more and items else None)
