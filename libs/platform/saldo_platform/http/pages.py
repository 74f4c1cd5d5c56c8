"""Lists: in order of occurrence, a page at a time (`?limit=&after=`), as `{items, next_cursor}`.

Every list sorts by when its items happened (received, issued, requested …), ties broken by id,
because that is the order an operator reads them in. The cursor is opaque to clients: the
(time, id) of the last item on the page, so a page never skips or repeats an item even when
many share a time. A query reads rows `WHERE (occurred_at, id) > ($after_time, $after_id)
ORDER BY occurred_at, id`, with times written by `sortable_time` so text order is time order.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, HTTPException, Query
from pydantic import BaseModel, Field

Item = TypeVar("Item", bound=BaseModel)

SORTABLE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")  # what sortable_time writes
# A time that sorts before every real one, for the first page.
BEGINNING = ("", "")


def sortable_time(moment: datetime) -> str:
    """A UTC instant as fixed-width text, so that comparing texts compares instants."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Paging:
    limit: int
    after: tuple[str, str]  # (sortable time, id) of the last item already seen; BEGINNING at first


def encode_cursor(time: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([time, item_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        time, item_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(time, str) and isinstance(item_id, str) and SORTABLE.fullmatch(time)):
            raise ValueError
        return time, item_id
    except (ValueError, TypeError, binascii.Error):
        raise HTTPException(400, "after must be the next_cursor of a previous page, unchanged") from None


def page_query(
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
    after: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,400}$",
                                       description="next_cursor of the previous page")] = None,
) -> Paging:
    return Paging(limit, decode_cursor(after) if after else BEGINNING)


Pages = Annotated[Paging, Depends(page_query)]  # what a list route declares


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(description="pass as `after` for the next page; null on the last")

    @classmethod
    def of(cls, items: list[Item], limit: int, key: Callable[[Item], tuple[str, str]]) -> Page[Item]:
        """`items` holds up to limit + 1 items; the extra one only says there is a next page.

        `key` gives an item's (sortable time, id), the order the query sorted by.
        """
        more = len(items) > limit
        items = items[:limit]
        return cls(items=items, next_cursor=encode_cursor(*key(items[-1])) if more and items else None)
