"""The relay: notification log → integration events → the service's topic (DESIGN.md, step 3).

It reads after its stored position, publishes, waits for every acknowledgement and only then
stores the new position. Killed at any instant it republishes at most the unacknowledged
tail on restart (same event ids, so consumers drop the duplicates) and loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.postgres import PostgresApplicationRecorder
from opentelemetry import trace

from saldo_events.codec import encode
from saldo_events.envelope import IntegrationEvent
from saldo_platform import telemetry
from saldo_platform.bus import Producer
from saldo_platform.eventstore import EventStoreApplication, event_metadata
from saldo_platform.sql import Database, PostgresDatabase

log = logging.getLogger(__name__)

ToIntegration = Callable[[Any], IntegrationEvent | None]
Release = Callable[[], Awaitable[None]]

RELAY_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS relay_positions (relay TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)


def envelope(domain_event: Any) -> dict[str, Any]:
    """The integration envelope of a stored domain event: ids, time and who acted, from its meta."""
    meta = event_metadata(domain_event)
    aggregate_id: UUID = domain_event.originator_id
    version: int = domain_event.originator_version
    return {
        # Deterministic, so a republished event has the same id and consumers can drop it.
        "event_id": uuid5(NAMESPACE_URL, f"saldo:{aggregate_id}:{version}"),
        "business_unit": meta.get("business_unit") or getattr(domain_event, "business_unit", ""),
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": domain_event.timestamp,
        "actor": meta.get("actor") or "system",
        "correlation_id": meta.get("correlation_id") or str(aggregate_id),
        "causation_id": meta.get("causation_id"),
        "traceparent": meta.get("traceparent"),
    }


class Relay:
    batch_size = 500

    def __init__(
        self,
        name: str,
        application: EventStoreApplication,
        db: Database,
        producer: Producer,
        topic: str,
        to_integration: ToIntegration,
    ) -> None:
        self.name = name
        self.application = application
        self.db = db
        self.producer = producer
        self.topic = topic
        self.to_integration = to_integration
        self._wake = asyncio.Event()

    async def position(self) -> int:
        value = await self.db.fetchval(
            "SELECT position FROM relay_positions WHERE relay = $1", self.name
        )
        return int(value or 0)

    async def run(self, stopping: asyncio.Event) -> None:
        await self.db.create_schema(RELAY_SCHEMA)
        loop = asyncio.get_running_loop()

        def wake() -> None:  # called from the thread that saved
            loop.call_soon_threadsafe(self._wake.set)

        self.application.on_saved(wake)
        release = await self._become_the_only_relay(stopping)
        if release is None:
            return  # told to stop while another replica was the relay
        stop_listening = None
        if isinstance(self.db, PostgresDatabase):
            # The event store NOTIFYs on every insert, also from other processes.
            channel = cast(PostgresApplicationRecorder, self.application.recorder).channel_name
            stop_listening = await self.db.listen(channel, self._wake.set)
        try:
            position = await self.position()
            while not stopping.is_set():
                self._wake.clear()
                new_position = await self.publish_after(position)
                if new_position == position:
                    await _first_of(self._wake, stopping, timeout_s=1.0)
                position = new_position
        finally:
            if stop_listening:
                await stop_listening()
            await release()

    async def publish_after(self, position: int) -> int:
        """Publish one batch after `position`; return the position to continue from."""
        notifications = await asyncio.to_thread(
            self.application.recorder.select_notifications,
            position, self.batch_size, inclusive_of_start=False,
        )
        if not notifications:
            telemetry.relay_backlog.set(0, {"relay": self.name})
            return position
        acknowledgements = []
        for notification in notifications:
            event = self.to_integration(self.application.mapper.to_domain_event(notification))
            if event is not None:
                acknowledgements.append(await self._send(event))
        await asyncio.gather(*acknowledgements)
        position = notifications[-1].id
        await self.db.execute(
            "INSERT INTO relay_positions (relay, position) VALUES ($1, $2)"
            " ON CONFLICT (relay) DO UPDATE SET position = excluded.position",
            self.name, position,
        )
        telemetry.relayed_counter.add(len(acknowledgements), {"topic": self.topic})
        latest = await asyncio.to_thread(self.application.recorder.max_notification_id)
        telemetry.relay_backlog.set((latest or position) - position, {"relay": self.name})
        return position

    async def _send(self, event: IntegrationEvent) -> Any:
        key, value, headers = encode(event)
        with telemetry.tracer.start_as_current_span(
            f"publish {self.topic}",
            context=telemetry.context_from(event.traceparent),
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.destination.name": self.topic, "saldo.event_type": event.event_type()},
        ):
            # The consumer's span becomes a child of this one, in the request's trace.
            traceparent = telemetry.current_traceparent()
            headers = [h for h in headers if h[0] != "traceparent"]
            if traceparent:
                headers.append(("traceparent", traceparent.encode()))
            return await self.producer.send(self.topic, key, value, headers)

    async def _become_the_only_relay(self, stopping: asyncio.Event) -> Release | None:
        """Replicas of a service each run a relay; a PostgreSQL advisory lock lets one publish.
        None if `stopping` was set while waiting for it."""
        if not isinstance(self.db, PostgresDatabase):
            async def nothing() -> None:
                return None
            return nothing
        return await self.db.hold_lock_unless(f"relay:{self.name}", stopping)


async def _first_of(event: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
            with suppress(asyncio.CancelledError):
                await w
