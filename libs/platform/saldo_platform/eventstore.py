"""The event store of a service: an `eventsourcing` Application over PostgreSQL or SQLite.

Its notification log is the transactional outbox the relay follows (DESIGN.md, step 2).
Each stored event carries the acting context in its declared `meta` field
(`saldo_kernel.aggregate`), so the relay can publish who acted with the event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, cast
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    ProcessRecorder,
    Recording,
    Transcoding,
)

from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import NotFound
from saldo_kernel.money import Money
from saldo_platform.unitofwork import UnitOfWork, current_unit


def event_metadata(domain_event: Any) -> dict[str, Any]:
    """The acting context an event was stamped with (none for the platform's own records)."""
    meta = getattr(domain_event, "meta", None)
    return meta if isinstance(meta, dict) else {}


def persistence_env(database_url: str) -> dict[str, str]:
    """The `eventsourcing` library's own settings for a `sqlite:` path or a PostgreSQL URL."""
    if database_url == "memory:":  # in-process tests of applications and policies
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
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


class MoneyAsDict(Transcoding):
    """Money in a stored event: {"minor_units": 49900, "currency": "DKK"} (rule M1)."""

    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, Any]:
        return {"minor_units": obj.minor_units, "currency": obj.currency}

    def decode(self, data: dict[str, Any]) -> Money:
        return Money(data["minor_units"], data["currency"])


class EventStoreApplication(Application[UUID]):
    """Base of each service's Application: tracking-capable recorder, metadata, wake-ups."""

    def __init__(self, database_url: str) -> None:
        # The events live in their own file in SQLite so the read-model connection never waits on them.
        if database_url.startswith("sqlite:"):
            database_url = database_url.removesuffix(".sqlite") + ".events.sqlite"
        super().__init__(env=persistence_env(database_url))
        self._saved_listeners: list[Callable[[], None]] = []

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(MoneyAsDict())

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

    def record_processed(self, processing_event: ProcessingEvent[UUID]) -> bool:
        """Record what a policy collected and the consumer's position in one transaction.

        Returns False when that position was already recorded: the message was handled before.
        """
        tracking = processing_event.tracking
        assert tracking is not None, "a policy's processing event tracks the message it handles"
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
