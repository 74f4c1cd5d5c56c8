"""Relay throughput: `Relay.publish_after` until the whole notification log is on Kafka.

Then, on the same events, where its time goes: reading the notification log, turning stored
events into encoded integration events, the per-event span, and the bare aiokafka producer
(Saldo's KafkaProducer with pre-encoded records, batches awaited as the relay does).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.progress import Ticker
from bench.stats import Rate
from saldo_events.codec import encode
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.integration import to_integration
from saldo_platform import telemetry
from saldo_platform.bus import KafkaProducer
from saldo_platform.relay import RELAY_SCHEMA, Relay
from saldo_platform.sql import PostgresDatabase

AIOKAFKA_ONLY = "aiokafka producer only (KafkaProducer, acks=all, batches of 500)"
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class RecordSize:
    key: int
    value: int
    headers: int

    @property
    def total(self) -> int:
        return self.key + self.value + self.headers


def record_size(record: Record) -> RecordSize:
    key, value, headers = record
    return RecordSize(len(key), len(value), sum(len(k) + len(v) for k, v in headers))


async def relay_throughput(app: InvoicingApplication, db: PostgresDatabase,
                           producer: KafkaProducer, topic: str) -> dict[str, Any]:
    await db.execute(RELAY_SCHEMA)
    relay = Relay("invoicing", app, db, producer, topic, to_integration)
    target = app.recorder.max_notification_id() or 0
    position = await relay.position()
    ticker = Ticker(f"relay → {topic}", target)
    batches = 0
    started = time.perf_counter()
    while position < target:
        new_position = await relay.publish_after(position)
        if new_position == position:
            raise RuntimeError(f"relay stuck at {position} < {target}")
        position, batches = new_position, batches + 1
        ticker.update(position)
    elapsed = time.perf_counter() - started
    return {"rate": Rate(target, elapsed).as_dict(), "batches": batches,
            "batch_size": Relay.batch_size}


def _all_notifications(app: InvoicingApplication) -> list[Any]:
    found: list[Any] = []
    position = 0
    while batch := app.recorder.select_notifications(position, Relay.batch_size,
                                                     inclusive_of_start=False):
        found.extend(batch)
        position = batch[-1].id
    return found


def _encode_all(app: InvoicingApplication, notifications: list[Any]) -> list[Record]:
    records = []
    for notification in notifications:
        event = to_integration(app.mapper.to_domain_event(notification))
        if event is not None:
            records.append(encode(event))
    return records


def _spans(n: int, topic: str) -> None:
    """What `Relay._send` adds per event around the send: a producer span and its traceparent."""
    for _ in range(n):
        with telemetry.tracer.start_as_current_span(f"publish {topic}"):
            telemetry.current_traceparent()


async def producer_only(producer: KafkaProducer, topic: str, records: list[Record],
                        batch: int) -> Rate:
    """Pre-encoded records through Saldo's KafkaProducer, acknowledgements awaited per batch."""
    ticker = Ticker(f"aiokafka producer only → {topic}", len(records))
    started = time.perf_counter()
    for first in range(0, len(records), batch):
        acks = [await producer.send(topic, k, v, h) for k, v, h in records[first:first + batch]]
        await asyncio.gather(*acks)
        ticker.update(first + len(acks))
    return Rate(len(records), time.perf_counter() - started)


async def breakdown(app: InvoicingApplication, producer: KafkaProducer,
                    producer_topic: str) -> tuple[dict[str, Any], list[Record]]:
    """The relay's parts, one at a time, over the same events."""
    started = time.perf_counter()
    notifications = await asyncio.to_thread(_all_notifications, app)
    read = Rate(len(notifications), time.perf_counter() - started)
    started = time.perf_counter()
    records = _encode_all(app, notifications)
    mapped = Rate(len(notifications), time.perf_counter() - started)
    started = time.perf_counter()
    _spans(len(records), producer_topic)
    spans = Rate(len(records), time.perf_counter() - started)
    sent = await producer_only(producer, producer_topic, records, Relay.batch_size)
    parts = {
        "read notification log (select_notifications)": read,
        "map + to_integration + encode": mapped,
        "producer span per event": spans,
        AIOKAFKA_ONLY: sent,
    }
    return {name: rate.as_dict() for name, rate in parts.items()}, records
