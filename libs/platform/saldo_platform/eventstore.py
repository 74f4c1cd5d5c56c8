"""The event store of a service: an `eventsourcing` Application over PostgreSQL or SQLite.

Its notification log is the transactional outbox the relay follows (DESIGN.md, step 2).
Each stored event also carries the acting context (business unit, actor, correlation,
causation, traceparent) under the key `meta`, so the relay can publish it with the event.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import date
from typing import Any, cast
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)

from saldo_platform.context import acting, current
from saldo_platform.errors import NotFound
from saldo_platform.unitofwork import UnitOfWork, current_unit


class SaldoAggregate(Aggregate):
    """Every aggregate belongs to exactly one business unit (rule M3)."""

    business_unit: str


class MetadataMapper(Mapper[UUID]):
    def to_stored_event(self, domain_event: Any) -> Any:
        state = vars(domain_event)
        if "meta" not in state:
            context = current()
            state["meta"] = context.as_metadata() if context else {}
        return super().to_stored_event(domain_event)


def event_class(aggregate: type[SaldoAggregate], name: str) -> type[Any]:
    """The event class that `@event("Name")` made on an aggregate (invisible to type checkers)."""
    cls = getattr(aggregate, name)
    assert isinstance(cls, type), f"{aggregate.__name__} has no event {name}"
    return cls


def event_metadata(domain_event: Any) -> dict[str, Any]:
    meta = vars(domain_event).get("meta")
    return meta if isinstance(meta, dict) else {}


def persistence_env(database_url: str) -> dict[str, str]:
    """The `eventsourcing` library's own settings for a `sqlite:` path or a PostgreSQL URL."""
    if database_url.startswith("sqlite:"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": database_url.removeprefix("sqlite:"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    url = urlparse(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/"),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
    }


class DateAsISO(Transcoding):
    """Business dates (due date, posting date, bank date) are calendar dates (rule M2)."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class EventStoreApplication(Application[UUID]):
    """Base of each service's Application: tracking-capable recorder, metadata, wake-ups."""

    def __init__(self, database_url: str) -> None:
        # The events live in their own file in SQLite so the read-model connection never waits on them.
        if database_url.startswith("sqlite:"):
            database_url = database_url.removesuffix(".sqlite") + ".events.sqlite"
        super().__init__(env=persistence_env(database_url))
        self._saved_listeners: list[Callable[[], None]] = []

    def construct_mapper(self) -> Mapper[UUID]:
        mapper = super().construct_mapper()
        return MetadataMapper(mapper.transcoder, mapper.compressor, mapper.cipher)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def construct_recorder(self) -> Any:
        # A process recorder records a consumer's position (Tracking) atomically with new events.
        return self.factory.process_recorder()

    @property
    def tracking_recorder(self) -> ProcessRecorder:
        return cast(ProcessRecorder, self.recorder)

    def on_saved(self, listener: Callable[[], None]) -> None:
        """Wake an in-process relay when events are saved (PostgreSQL also NOTIFYs)."""
        self._saved_listeners.append(listener)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Record at once, or, inside an HTTP command, collect into its unit of work.

        The idempotency middleware then records the command's events together with its answer
        (`record_unit`), so that effect and answer are one write (unitofwork.py).
        """
        unit = current_unit()
        if unit is None:
            return super().save(*objs, **kwargs)
        unit.collect(*objs)
        return []

    def record_unit(self, unit: UnitOfWork, *more: Any) -> None:
        """Record a command's collected events and `more` aggregates in one transaction."""
        unit.processing_event.collect_events(*more)
        with acting(unit.context) if unit.context else nullcontext():
            recordings = self._record(unit.processing_event)
        self._take_snapshots(unit.processing_event)
        self._notify(recordings)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for listener in self._saved_listeners:
            listener()

    def get_owned(self, aggregate_id: UUID, business_unit: str, kind: type[SaldoAggregate]) -> Any:
        """Load an aggregate of the caller's business unit; another unit's is simply not found."""
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{kind.__name__.lower()} {aggregate_id} not found") from None
        if not isinstance(aggregate, kind) or aggregate.business_unit != business_unit:
            raise NotFound(f"{kind.__name__.lower()} {aggregate_id} not found")
        return aggregate

    def get_or_none(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def save_tracked(self, tracking: Tracking, *aggregates: Any) -> bool:
        """Save new events and a consumer position in one transaction.

        Returns False when that position was already recorded: the message was handled before.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking)
        processing_event.collect_events(*aggregates)
        try:
            recordings = self._record(processing_event)
        except IntegrityError:
            if self.tracking_recorder.has_tracking_id(tracking.application_name, tracking.notification_id):
                return False
            raise
        self._notify(recordings)
        return True

    def position(self, tracking_name: str) -> int | None:
        return self.tracking_recorder.max_tracking_id(tracking_name)
