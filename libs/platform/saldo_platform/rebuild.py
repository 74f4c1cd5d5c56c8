"""Rebuild a projection from offset 0 into fresh tables and compare it with the live one (rule E2)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from saldo_events.codec import UndecodableMessage, decode
from saldo_platform.bus import LocalBus, Message
from saldo_platform.consumer import ConsumerRunner
from saldo_platform.projection import Projection
from saldo_platform.service import ServiceRuntime

SUFFIX = "__rebuild"


@dataclass(frozen=True)
class Difference:
    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: int
    only_rebuilt: int

    @property
    def equal(self) -> bool:
        return self.only_live == 0 and self.only_rebuilt == 0


async def rebuild(runtime: ServiceRuntime, live: Projection, until: datetime | None = None,
                  progress: bool = True) -> list[Difference]:
    fresh = type(live)(live.db, live.topics, SUFFIX)
    await fresh.drop()
    await fresh.setup()
    runner = ConsumerRunner(fresh, runtime.consumer(fresh.name), runtime.producer())
    stopping = asyncio.Event()
    applied = 0
    async for message, total in _all_messages(runtime, live.topics):
        if until is not None and _occurred_after(message, until):
            await fresh.skip(message)
        else:
            await runner.process(message, stopping)
        applied += 1
        if progress and (applied % 200 == 0 or applied == total):
            print(f"\r{live.name}: {applied}/{total} events", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    differences = []
    for table in live.schema:
        a = [tuple(sorted(r.items())) for r in await live.rows(table)]
        b = [tuple(sorted(r.items())) for r in await fresh.rows(table)]
        differences.append(Difference(table, len(a), len(b), len(set(a) - set(b)), len(set(b) - set(a))))
    return differences


def _occurred_after(message: Message, until: datetime) -> bool:
    try:
        return decode(message.headers, message.value).occurred_at > until
    except UndecodableMessage:
        return False


async def _all_messages(runtime: ServiceRuntime, topics: list[str]):  # type: ignore[no-untyped-def]
    """Every message now on `topics`, from offset 0 to the end as it was when we started."""
    if runtime.bus is not None:
        yield_from = _local_messages(runtime.bus, topics)
    else:
        assert runtime.settings.kafka_bootstrap
        yield_from = _kafka_messages(runtime.settings.kafka_bootstrap, topics)
    async for item in yield_from:
        yield item


async def _local_messages(bus: LocalBus, topics: list[str]):  # type: ignore[no-untyped-def]
    batches = {t: await bus.read(t, 0, 10**9) for t in topics}
    total = sum(len(b) for b in batches.values())
    for batch in batches.values():
        for message in batch:
            yield message, total


async def _kafka_messages(bootstrap: str, topics: list[str]):  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(await _partitions(consumer, t))]
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        total = sum(end.values())
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < end[tp]:
                        yield Message(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers)), total
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer.topics()  # refreshes metadata
        await asyncio.sleep(0.1)
    return set()


def print_table(service: str, projection: str, differences: list[Difference]) -> None:
    print(f"{service} / {projection}")
    print(f"  {'table':<28}{'live':>8}{'rebuilt':>9}{'only live':>11}{'only rebuilt':>14}  result")
    for d in differences:
        print(f"  {d.table:<28}{d.live_rows:>8}{d.rebuilt_rows:>9}{d.only_live:>11}"
              f"{d.only_rebuilt:>14}  {'equal' if d.equal else 'DIFFERENT'}")
