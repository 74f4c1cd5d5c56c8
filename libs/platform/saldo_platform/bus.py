"""Publish and consume: one interface, two implementations.

`Kafka*` for the distributed mode (aiokafka). `LocalBus` for the embedded mode: an in-process
log persisted in SQLite, so a restart of the embedded product loses nothing either.
Both deliver at least once; consumers make effects exactly once by storing their positions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from saldo_events.codec import Headers
from saldo_platform import telemetry
from saldo_platform.sql import SQLiteDatabase

log = logging.getLogger(__name__)

TP = tuple[str, int]
Positions = Callable[[list[TP]], Awaitable[dict[TP, int]]]


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers


class Producer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> Awaitable[object]:
        """Queue a message; the returned awaitable completes once the broker acknowledged it."""
        ...


class Consumer(Protocol):
    async def start(self, topics: Sequence[str], positions: Positions) -> None:
        """Subscribe; on every assignment, seek each partition to `positions()` (the next offset)."""
        ...

    async def getmany(self, timeout_s: float) -> list[Message]: ...
    async def stop(self) -> None: ...


# --- Kafka -----------------------------------------------------------------------------------


class KafkaProducer:
    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            enable_idempotence=True,  # no duplicates or reordering from producer retries
            acks="all",
            linger_ms=5,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> Awaitable[object]:
        sent: Awaitable[object] = await self._producer.send(topic, value=value, key=key, headers=headers)
        return sent


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: AIOKafkaConsumer, positions: Positions) -> None:
        self._consumer = consumer
        self._positions = positions

    async def on_partitions_revoked(self, revoked: object) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        stored = await self._positions([(tp.topic, tp.partition) for tp in assigned])
        for tp in assigned:
            self._consumer.seek(tp, stored.get((tp.topic, tp.partition), 0))


class KafkaConsumer:
    def __init__(self, bootstrap: str, group_id: str) -> None:
        self._bootstrap = bootstrap
        self.group_id = group_id
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,  # the position lives in our database, with the effect
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )

    async def start(self, topics: Sequence[str], positions: Positions) -> None:
        await ensure_topics(self._bootstrap, topics)
        self._consumer.subscribe(
            topics=list(topics), listener=_SeekToStoredPositions(self._consumer, positions)
        )
        await self._consumer.start()

    async def getmany(self, timeout_s: float) -> list[Message]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=200)
        for tp, records in batches.items():
            if records and (highwater := self._consumer.highwater(tp)) is not None:
                telemetry.consumer_lag.set(highwater - records[-1].offset - 1, {
                    "group": self.group_id, "topic": tp.topic, "partition": tp.partition})
        return [
            Message(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers))
            for records in batches.values()
            for r in records
        ]

    async def stop(self) -> None:
        await self._consumer.stop()


@asynccontextmanager
async def kafka_admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int = 3) -> None:
    failed: list[Any] = []
    async with kafka_admin(bootstrap) as admin:
        for attempt in range(3):
            # Listed again on every attempt: a topic whose creation timed out may exist by now.
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if not missing:
                return
            response = await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
            # The broker answers per topic. "Already exists" means another process starting at the
            # same time created it first, which is what we wanted; anything else (a broker busy
            # with other starters may time out) is tried again, then a failure.
            failed = [error for error in response.topic_errors
                      if error[1] not in (0, TopicAlreadyExistsError.errno)]  # (topic, code, message)
            if not failed:
                return
            await asyncio.sleep(1.0 + attempt)
    raise RuntimeError(f"could not create Kafka topics: {failed}")


async def partitions_of(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """The topics' partitions as the broker knows them now; a topic that does not exist has none.

    Asking the broker about a missing topic by name may create it (`auto.create.topics.enable`),
    so only topics that exist are described.
    """
    async with kafka_admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    found = [TopicPartition(topic["topic"], p["partition"])
             for topic in described if topic.get("error_code", 0) == 0
             for p in topic["partitions"]]
    return sorted(found, key=lambda tp: (tp.topic, tp.partition))


# --- Embedded ----------------------------------------------------------------------------------


class LocalBus:
    """The embedded mode's message log: one partition per topic, kept in SQLite."""

    def __init__(self, path: str) -> None:
        self.db = SQLiteDatabase(f"sqlite:{path}")
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self.db.connect()
        await self.db.execute(
            'CREATE TABLE IF NOT EXISTS bus_messages (topic TEXT NOT NULL, "offset" INTEGER NOT NULL,'
            " key BLOB, value BLOB NOT NULL, headers TEXT NOT NULL, PRIMARY KEY (topic, \"offset\"))"
        )

    async def stop(self) -> None:
        await self.db.close()

    async def append(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> int:
        encoded = json.dumps([[k, v.decode("latin-1")] for k, v in headers])
        offset: int = await self.db.fetchval(
            'INSERT INTO bus_messages (topic, "offset", key, value, headers) VALUES ($1,'
            ' (SELECT COALESCE(MAX("offset"), -1) + 1 FROM bus_messages WHERE topic = $1), $2, $3, $4)'
            ' RETURNING "offset"',
            topic, key, value, encoded,
        )
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return offset

    async def read(self, topic: str, offset: int, limit: int) -> list[Message]:
        rows = await self.db.fetch(
            'SELECT "offset", key, value, headers FROM bus_messages WHERE topic = $1'
            ' AND "offset" >= $2 ORDER BY "offset" LIMIT $3',
            topic, offset, limit,
        )
        return [
            Message(
                topic, 0, r["offset"], r["key"], r["value"],
                [(k, v.encode("latin-1")) for k, v in json.loads(r["headers"])],
            )
            for r in rows
        ]

    def changed(self) -> asyncio.Event:
        """Set by the next append; take it before reading so no append is missed."""
        return self._changed

    def producer(self) -> LocalProducer:
        return LocalProducer(self)

    def consumer(self) -> LocalConsumer:
        return LocalConsumer(self)


class LocalProducer:
    def __init__(self, bus: LocalBus) -> None:
        self._bus = bus

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> Awaitable[object]:
        # Written durably before returning: the acknowledgement is immediate.
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(await self._bus.append(topic, key, value, headers))
        return done


class LocalConsumer:
    def __init__(self, bus: LocalBus) -> None:
        self._bus = bus
        self._next: dict[str, int] = {}

    async def start(self, topics: Sequence[str], positions: Positions) -> None:
        stored = await positions([(t, 0) for t in topics])
        self._next = {t: stored.get((t, 0), 0) for t in topics}

    async def getmany(self, timeout_s: float) -> list[Message]:
        changed = self._bus.changed()
        messages = await self._read()
        if not messages:
            with suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout_s)
            messages = await self._read()
        return messages

    async def _read(self) -> list[Message]:
        messages: list[Message] = []
        for topic, offset in self._next.items():
            batch = await self._bus.read(topic, offset, 200)
            if batch:
                self._next[topic] = batch[-1].offset + 1
            messages.extend(batch)
        return messages

    async def stop(self) -> None:
        pass
