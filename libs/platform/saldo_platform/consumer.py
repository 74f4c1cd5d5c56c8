"""The consumer runner: at-least-once delivery in, exactly-once effects out (DESIGN.md, step 4).

A handler applies an event and records the message's position in one transaction, and says
on every assignment where to resume. What cannot be decoded or applied goes to
`<topic>.dlq` with the reason and the original bytes; the partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Protocol

from opentelemetry import trace

from saldo_events.codec import UndecodableMessage, decode, header
from saldo_events.envelope import IntegrationEvent
from saldo_kernel.errors import SaldoError
from saldo_platform import telemetry
from saldo_platform.bus import TP, Consumer, Message, Producer

log = logging.getLogger(__name__)

# Failures of the infrastructure, not of the message: wait and try the same message again.
TRANSIENT: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)
try:
    import asyncpg
    from eventsourcing.persistence import InterfaceError, OperationalError

    TRANSIENT += (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, InterfaceError, OperationalError)
except ImportError:  # pragma: no cover
    pass


class Handler(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def topics(self) -> Sequence[str]: ...

    async def setup(self) -> None: ...

    async def positions(self, partitions: list[TP]) -> dict[TP, int]:
        """The next offset to read for each partition, as stored with the effects."""
        ...

    async def apply(self, event: IntegrationEvent, message: Message) -> None:
        """Apply the event and record the message's position atomically; idempotent."""
        ...

    async def skip(self, message: Message) -> None:
        """Record the message's position without an effect (after dead-lettering it)."""
        ...


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


class ConsumerRunner:
    max_attempts = 3

    def __init__(self, handler: Handler, consumer: Consumer, dead_letters: Producer) -> None:
        self.handler = handler
        self.consumer = consumer
        self.dead_letters = dead_letters

    async def run(self, stopping: asyncio.Event) -> None:
        await self.handler.setup()
        await self.consumer.start(self.handler.topics, self.handler.positions)
        try:
            while not stopping.is_set():
                for message in await self.consumer.getmany(timeout_s=0.5):
                    if stopping.is_set():
                        # Positions are stored with each effect: the rest of the batch is read
                        # again after a restart, so there is no need to finish it.
                        break
                    await self.process(message, stopping)
        finally:
            await self.consumer.stop()

    async def process(self, message: Message, stopping: asyncio.Event) -> None:
        with telemetry.tracer.start_as_current_span(
            f"process {message.topic}",
            context=telemetry.context_from(header(message.headers, "traceparent")),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.destination.name": message.topic,
                "messaging.kafka.partition": message.partition,
                "messaging.kafka.offset": message.offset,
                "saldo.consumer": self.handler.name,
            },
        ):
            try:
                event = decode(message.headers, message.value)
            except UndecodableMessage as e:
                await self.dead_letter(message, str(e))
                return
            attempts = 0
            while True:
                try:
                    await self.handler.apply(event, message)
                    telemetry.consumed_counter.add(1, {"consumer": self.handler.name})
                    return
                except SaldoError as e:
                    await self.dead_letter(message, f"{type(e).__name__}: {e.detail}")
                    return
                except TRANSIENT as e:
                    log.warning("%s: infrastructure failure, retrying: %r", self.handler.name, e)
                    if stopping.is_set():
                        raise
                    with suppress(TimeoutError):  # a stop cuts the wait short; the next failure raises
                        await asyncio.wait_for(stopping.wait(), 1.0)
                except Exception as e:
                    attempts += 1
                    log.exception("%s: applying %s failed (%d)", self.handler.name, event.event_type(),
                                  attempts)
                    if attempts >= self.max_attempts:
                        await self.dead_letter(message, f"{type(e).__name__}: {e}")
                        return
                    await asyncio.sleep(0.2 * attempts)

    async def dead_letter(self, message: Message, reason: str) -> None:
        log.error("%s: dead-lettering %s/%d/%d: %s", self.handler.name, message.topic,
                  message.partition, message.offset, reason)
        headers = list(message.headers) + [
            ("saldo_dlq_reason", reason.encode()),
            ("saldo_dlq_consumer", self.handler.name.encode()),
            ("saldo_dlq_origin", f"{message.topic}/{message.partition}/{message.offset}".encode()),
        ]
        acknowledged = await self.dead_letters.send(
            dead_letter_topic(message.topic), message.key or b"", message.value, headers
        )
        await acknowledged
        await self.handler.skip(message)
        telemetry.dead_letter_counter.add(1, {"consumer": self.handler.name})
