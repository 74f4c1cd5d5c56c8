"""The unit of work of one HTTP command: its events are recorded together with its answer.

During a POST, `EventStoreApplication.save()` does not write: it collects the new events here.
Once the route has answered 2xx, the idempotency middleware records them in one transaction
with that answer, filed under the request's Idempotency-Key (`http/idempotency.py`). A command's
effect and the record of it are therefore one write: a retry after a crash at any instant finds
either neither (and runs the command) or both (and gets the original answer), and two attempts
with one key can never both take effect, because the second collides on the record's id.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_platform.context import Context, current


class UnitOfWork:
    def __init__(self) -> None:
        self.processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        self.context: Context | None = None
        self._held: list[threading.Lock] = []

    def collect(self, *aggregates: Any) -> None:
        # The acting context belongs to the request's thread; recording happens in another.
        if self.context is None:
            self.context = current()
        self.processing_event.collect_events(*aggregates)

    def hold(self, lock: threading.Lock) -> None:
        """Take `lock` now and keep it until the unit is recorded or dropped."""
        lock.acquire()
        self._held.append(lock)

    def end(self) -> None:
        while self._held:
            self._held.pop().release()


_unit: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar("saldo_unit", default=None)


def current_unit() -> UnitOfWork | None:
    return _unit.get()


@contextmanager
def collecting(unit: UnitOfWork) -> Iterator[UnitOfWork]:
    """Saves made while this is active (also in threads started from here) go into `unit`."""
    token = _unit.set(unit)
    try:
        yield unit
    finally:
        _unit.reset(token)


@contextmanager
def one_at_a_time(lock: threading.Lock) -> Iterator[None]:
    """Serialise a command on `lock` until its events are recorded, not only until it returns."""
    unit = current_unit()
    if unit is None:
        with lock:
            yield
        return
    unit.hold(lock)
    yield
