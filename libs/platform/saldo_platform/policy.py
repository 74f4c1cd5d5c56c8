"""Policies: an event of another service becomes a command on this service's Application.

As in the `eventsourcing` library's process applications, a policy is given the event and a
`ProcessingEvent`; the application method it calls loads aggregates, calls one method and
collects their new events into that processing event (`processing_event.collect_events(...)`).
The consumed position is saved as an `eventsourcing` Tracking record in the same transaction
as the new events, so the effect happens once even if the message comes again. A policy's
reaction must also be idempotent by its own key (e.g. one release per credit note), because the
relay may publish an event twice at different offsets after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking

from saldo_events.envelope import IntegrationEvent
from saldo_platform import failpoints, telemetry
from saldo_platform.bus import TP, Message
from saldo_platform.context import Context, acting
from saldo_platform.eventstore import EventStoreApplication


class Policy:
    name: ClassVar[str]

    def __init__(self, application: EventStoreApplication, topics: Sequence[str]) -> None:
        self.application = application
        self.topics = list(topics)

    def tracking_name(self, topic: str, partition: int) -> str:
        return f"{self.name}:{topic}:{partition}"

    async def setup(self) -> None:
        pass

    async def positions(self, partitions: list[TP]) -> dict[TP, int]:
        def read() -> dict[TP, int]:
            return {
                tp: self.application.position(self.tracking_name(*tp)) or 0 for tp in partitions
            }

        return await asyncio.to_thread(read)

    async def apply(self, event: IntegrationEvent, message: Message) -> None:
        context = Context(
            business_unit=event.business_unit,
            actor=f"policy:{self.name}",
            correlation_id=event.correlation_id,
            causation_id=str(event.event_id),
            traceparent=telemetry.current_traceparent(),
        )
        tracking = Tracking(self.tracking_name(message.topic, message.partition), message.offset + 1)

        def react_and_save() -> None:
            if (self.application.position(tracking.application_name) or 0) >= tracking.notification_id:
                return  # delivered again: reacting to today's state could differ from the first time
            with acting(context):
                for attempt in range(5):
                    processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking)
                    self.react(event, processing_event)
                    failpoints.reach("before-commit", self.name, type(event).__name__)
                    try:
                        self.application.record_processed(processing_event)
                        failpoints.reach("after-commit", self.name, type(event).__name__)
                        return
                    except IntegrityError:
                        # An HTTP command changed the same aggregate meanwhile: load and try again.
                        if attempt == 4:
                            raise

        await asyncio.to_thread(react_and_save)

    async def skip(self, message: Message) -> None:
        tracking = Tracking(self.tracking_name(message.topic, message.partition), message.offset + 1)
        await asyncio.to_thread(self.application.record_processed, ProcessingEvent(tracking))

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        """Call the application method for `event`, which collects its new events into
        `processing_event`; events of no interest are simply not reacted to."""
        raise NotImplementedError
