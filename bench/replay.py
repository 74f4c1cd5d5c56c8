"""Replay speed: the invoices read model built again from the topic the relay filled.

Two ways, both from offset 0 into fresh tables: the live consumer path (saldo_platform's
KafkaConsumer in a consumer group, ConsumerRunner, InvoicesProjection: one transaction per
event), and `saldo rebuild invoicing` (saldo_platform.rebuild: no group, a merge of the
partitions in publication order, then a comparison with the live tables — empty here, as no
live consumer ran; the comparison is part of the timed work).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import Any

from bench.progress import Ticker, say
from saldo_events.envelope import IntegrationEvent
from saldo_invoicing.projections import InvoicesProjection
from saldo_platform.bus import TP, KafkaConsumer, KafkaProducer, Message
from saldo_platform.consumer import ConsumerRunner
from saldo_platform.http.auth import ApiKeys
from saldo_platform.rebuild import rebuild
from saldo_platform.service import ServiceRuntime, definitions
from saldo_platform.settings import Settings
from saldo_platform.sql import PostgresDatabase, open_database

SUFFIX = "__bench_replay"


class Timed:
    """A handler that times its projection's applies and says when `expected` are done."""

    def __init__(self, projection: InvoicesProjection, expected: int) -> None:
        self.projection = projection
        self.name = projection.name
        self.topics = projection.topics
        self.expected = expected
        self.applied = 0
        self.first: float | None = None
        self.last = 0.0
        self.done = asyncio.Event()
        self._ticker = Ticker("replay into a fresh invoices read model", expected)

    async def setup(self) -> None:
        await self.projection.setup()  # the offsets tables, which drop() cleans
        await self.projection.drop()
        await self.projection.setup()

    async def positions(self, partitions: list[TP]) -> dict[TP, int]:
        stored: dict[TP, int] = await self.projection.positions(partitions)
        return stored

    async def apply(self, event: IntegrationEvent, message: Message) -> None:
        self.first = self.first or time.perf_counter()
        await self.projection.apply(event, message)
        self._count()

    async def skip(self, message: Message) -> None:
        await self.projection.skip(message)
        self._count()

    def _count(self) -> None:
        self.applied += 1
        self.last = time.perf_counter()
        self._ticker.update(self.applied)
        if self.applied >= self.expected:
            self.done.set()


async def projection_replay(settings: Settings, tag: str, expected_events: int,
                            timeout_s: float = 600) -> dict[str, Any]:
    assert settings.kafka_bootstrap
    db = PostgresDatabase(settings.service_database("invoicing"))
    await db.connect()
    projection = InvoicesProjection(
        db, [settings.topic("invoicing")], SUFFIX)  # it reads invoicing's topic only
    handler = Timed(projection, expected_events)
    dead_letters = KafkaProducer(settings.kafka_bootstrap, "saldo-bench-replay")
    await dead_letters.start()
    consumer = KafkaConsumer(settings.kafka_bootstrap, f"{tag}.bench-replay")
    runner = ConsumerRunner(handler, consumer, dead_letters)
    stopping = asyncio.Event()
    say(f"replaying {expected_events} events through ConsumerRunner + {projection.name}")
    started = time.perf_counter()
    task = asyncio.create_task(runner.run(stopping))
    done = asyncio.create_task(handler.done.wait())
    try:
        await asyncio.wait([task, done], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            if task.done():
                task.result()  # the runner failed: raise its error
            raise TimeoutError(f"replay: {handler.applied}/{expected_events} after {timeout_s} s")
    finally:
        done.cancel()
        stopping.set()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        await projection.drop()
        await dead_letters.stop()
        await db.close()
    assert handler.first is not None
    applying = handler.last - handler.first
    return {"projection": projection.name, "events": handler.applied,
            "seconds_applying": applying, "per_second": handler.applied / applying,
            "seconds_with_group_join": handler.last - started}


async def projection_rebuild(settings: Settings, expected_events: int) -> dict[str, Any]:
    """`saldo rebuild invoicing`, timed: saldo_platform.rebuild.rebuild on a ServiceRuntime."""
    # The API keys serve the HTTP API only, which this runtime never starts.
    unused_keys = ApiKeys(open_database(settings.auth_database))
    runtime = ServiceRuntime(definitions()["invoicing"], settings, unused_keys, None)
    await runtime.open()
    try:
        await runtime.setup_projections()
        projection = runtime.projections()[0]
        say(f"saldo rebuild: {projection.name} from offset 0 ({expected_events} events)")
        started = time.perf_counter()
        differences = await rebuild(runtime, projection, progress=True)
        elapsed = time.perf_counter() - started
    finally:
        await runtime.close()
    rows = sum(d.rebuilt_rows for d in differences)
    return {"projection": projection.name, "events": expected_events, "rows": rows,
            "seconds": elapsed, "per_second": expected_events / elapsed}
