"""Who is acting, and why: carried from the HTTP request (or the consumed event) into stored events.

The platform knows the whole `Context`; the domain only stamps its metadata on each new event
(`saldo_kernel.aggregate.acting_as`), so entering a context here enters both.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from uuid import uuid4

from saldo_kernel.aggregate import Meta, act_as_for_this_task, acting_as


@dataclass(frozen=True)
class Context:
    business_unit: str
    actor: str
    correlation_id: str
    causation_id: str | None = None
    traceparent: str | None = None

    def as_metadata(self) -> Meta:
        return {
            "business_unit": self.business_unit,
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "traceparent": self.traceparent,
        }


_current: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "saldo_context", default=None
)


def current() -> Context | None:
    return _current.get()


@contextmanager
def acting(context: Context) -> Iterator[Context]:
    token = _current.set(context)
    try:
        with acting_as(context.as_metadata()):
            yield context
    finally:
        _current.reset(token)


def new_correlation_id() -> str:
    return str(uuid4())


def with_traceparent(context: Context, traceparent: str | None) -> Context:
    return replace(context, traceparent=traceparent)


def set_for_this_task(context: Context) -> None:
    """Make `context` the acting one for the rest of the current task (one HTTP request)."""
    _current.set(context)
    act_as_for_this_task(context.as_metadata())
