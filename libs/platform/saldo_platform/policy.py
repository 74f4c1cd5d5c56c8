"""Policies: an event of another service becomes a command on this service's Application.

The consumed position is saved as an `eventsourcing` Tracking record in the same transaction
as the new events, so the effect happens once even if the message comes again. A policy's
reaction must also be idempotent by its own key (e.g. one release per credit note), because the
relay may publish an event twice at different offsets after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

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
                    aggregates = self.react(event)
                    failpoints.reach("before-commit", self.name, type(event).__name__)
                    try:
                        self.application.save_tracked(tracking, *aggregates)
                        failpoints.reach("after-commit", self.name, type(event).__name__)
                        return
                    except IntegrityError:
                        # An HTTP command changed the same aggregate meanwhile: load and try again.
                        if attempt == 4:
                            raise

        await asyncio.to_thread(react_and_save)

    async def skip(self, message: Message) -> None:
        tracking = Tracking(self.tracking_name(message.topic, message.partition), message.offset + 1)
        await asyncio.to_thread(self.application.save_tracked, tracking)

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        """Load, call one aggregate method, return the changed aggregates (none if not of interest)."""
        raise NotImplementedError
