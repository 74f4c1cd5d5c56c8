"""The base of every aggregate and event: one business unit (M3), and who acted (the audit).

Events are declared as nested classes with typed fields and applied with `@event(TheEvent)`,
as in the `eventsourcing` library's content-management example:

    class Refund(SaldoAggregate):
        class Requested(SaldoAggregate.Created):
            payment_id: UUID
            amount: Money

        @event(Requested)
        def __init__(self, *, business_unit: str, payment_id: UUID, amount: Money) -> None: ...

Every event carries `meta`, the acting context (business unit, actor, correlation, causation,
traceparent) of the command or policy that caused it. The application layer says who is acting
with `acting_as(...)`; the domain never reads it, it only stamps it on each new event.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

Meta = dict[str, str | None]

_acting: contextvars.ContextVar[Meta | None] = contextvars.ContextVar("saldo_acting", default=None)


def acting_meta() -> Meta:
    return dict(_acting.get() or {})


@contextmanager
def acting_as(meta: Meta) -> Iterator[None]:
    token = _acting.set(dict(meta))
    try:
        yield
    finally:
        _acting.reset(token)


def act_as_for_this_task(meta: Meta) -> None:
    """Make `meta` the acting context for the rest of the current task (one HTTP request)."""
    _acting.set(dict(meta))


class SaldoAggregate(Aggregate):
    """Every aggregate belongs to exactly one business unit (rule M3)."""

    business_unit: str

    class Event(Aggregate.Event):
        meta: Meta

    class Created(Event, Aggregate.Created):
        business_unit: str

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        kwargs.setdefault("meta", acting_meta())
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class: type[Any], *, id: UUID | None = None, **kwargs: Any) -> Any:  # noqa: A002
        kwargs.setdefault("meta", acting_meta())
        return super()._create(event_class, id=id, **kwargs)
