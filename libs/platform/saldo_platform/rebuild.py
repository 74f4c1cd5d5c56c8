"""Rebuild a projection from offset 0 into fresh tables and compare it with the live one (rule E2).

The fresh tables sit beside the live ones with the suffix `__rebuild`; the live read model and
the live consumers are not touched. Messages are read without a consumer group (the live
groups and their positions stay as they are), up to the end offsets as they were at the start.

Order: within a partition by offset, as live. Across partitions and topics, by the time each
message was published (Kafka's record timestamp; `ce_time` on the embedded bus) — a k-way
merge, so an event that reacted to another (PaymentAllocated after InvoiceIssued) is applied
after it, as the live consumer saw them, even when the projection reads several topics.

What the live consumer dead-lettered is skipped again, without publishing anything: a rebuild
has no side effects outside its own tables. Progress goes to stderr; the table to stdout.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from saldo_events.codec import Headers, UndecodableMessage, decode, header
from saldo_platform import telemetry
from saldo_platform.bus import LocalBus, Message, Positions, partitions_of
from saldo_platform.consumer import ConsumerRunner, Handler
from saldo_platform.projection import Projection
from saldo_platform.service import ServiceRuntime

SUFFIX = "__rebuild"
# A partition that yields nothing new for this long while short of its end offset is an error.
STALL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Difference:
    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: int
    only_rebuilt: int

    @property
    def equal(self) -> bool:
        return (self.only_live == 0 and self.only_rebuilt == 0
                and self.live_rows == self.rebuilt_rows)


async def rebuild(runtime: ServiceRuntime, live: Projection, until: datetime | None = None,
                  progress: bool = True) -> list[Difference]:
    """Replay every event on the projection's topics (or those up to `until`) into fresh tables."""
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)  # instants are UTC (rule M2)
    fresh = type(live)(live.db, live.topics, SUFFIX)
    await fresh.drop()
    await fresh.setup()
    dead_letters = _Refused()
    # A Projection is a consumer Handler (its `name` is a class attribute, which the protocol's
    # structural check does not accept).
    runner = ConsumerRunner(cast(Handler, fresh), _NoConsumer(), dead_letters)
    stopping = asyncio.Event()
    report = _Progress(live.name, enabled=progress)
    with telemetry.tracer.start_as_current_span(
        f"rebuild {live.name}", attributes={"saldo.projection": live.name,
                                            "saldo.topics": ",".join(live.topics)},
    ) as span:
        async for message, total in _all_messages(runtime, live.topics):
            report.total = total
            if until is not None and _occurred_after(message, until):
                await fresh.skip(message)
                report.skipped += 1
            else:
                # Replayed spans belong to this rebuild's trace, not to the original requests'.
                await runner.process(_without_traceparent(message), stopping)
            report.step()
        report.done(refused=len(dead_letters.reasons))
        span.set_attribute("saldo.events", report.applied)
    for reason in dead_letters.reasons[:20]:
        print(f"{live.name}: not applied (dead-lettered when it first came): {reason}",
              file=sys.stderr)
    differences = []
    for table in live.schema:
        a = [_comparable(r) for r in await live.rows(table)]
        b = [_comparable(r) for r in await fresh.rows(table)]
        differences.append(Difference(table, len(a), len(b), len(set(a) - set(b)),
                                      len(set(b) - set(a))))
    if all(d.equal for d in differences):
        await fresh.drop()
    elif progress:
        print(f"{live.name}: the rebuilt rows are kept for inspection in "
              f"{', '.join(fresh.tables.values())}", file=sys.stderr, flush=True)
    return differences


def _comparable(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def _occurred_after(message: Message, until: datetime) -> bool:
    try:
        occurred = decode(message.headers, message.value).occurred_at
    except UndecodableMessage:
        return False
    return (occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)) > until


def _without_traceparent(message: Message) -> Message:
    headers = [(k, v) for k, v in message.headers if k != "traceparent"]
    return Message(message.topic, message.partition, message.offset, message.key, message.value,
                   headers)


class _Progress:
    """`name: 1200/5000 events` on stderr: rewritten in place on a terminal, lines otherwise."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name, self.enabled = name, enabled
        self.tty = sys.stderr.isatty()
        self._start = "\r" if self.tty else ""
        self.total = 0
        self.applied = 0
        self.skipped = 0
        self.started = time.monotonic()
        self._shown = 0.0
        if enabled:
            print(f"{name}: reading events from offset 0", file=sys.stderr, flush=True)

    def step(self) -> None:
        self.applied += 1
        now = time.monotonic()
        if self.enabled and now - self._shown >= (0.2 if self.tty else 2.0):
            self._shown = now
            print(f"{self._start}{self.name}: {self.applied}/{self.total} events",
                  end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def done(self, refused: int) -> None:
        if not self.enabled:
            return
        seconds = time.monotonic() - self.started
        rate = self.applied / seconds if seconds > 0 else 0.0
        notes = [f"{self.skipped} after --until"] if self.skipped else []
        if refused:
            notes.append(f"{refused} refused")
        noted = f" ({', '.join(notes)})" if notes else ""
        print(f"{self._start}{self.name}: {self.applied}/{self.total} events in "
              f"{seconds:.1f} s ({rate:.0f} events/s){noted}", file=sys.stderr, flush=True)


class _Refused:
    """The dead-letter "producer" of a rebuild: it remembers why, and publishes nothing."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, key: bytes, value: bytes,
                   headers: Headers) -> Awaitable[object]:
        origin = header(headers, "saldo_dlq_origin") or topic
        self.reasons.append(f"{origin}: {header(headers, 'saldo_dlq_reason')}")
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _NoConsumer:
    """A rebuild feeds the runner itself; the runner's own consume loop is never started."""

    async def start(self, topics: Sequence[str], positions: Positions) -> None:
        raise NotImplementedError

    async def getmany(self, timeout_s: float) -> list[Message]:
        raise NotImplementedError

    async def stop(self) -> None:
        pass


async def _all_messages(runtime: ServiceRuntime,
                        topics: list[str]) -> AsyncIterator[tuple[Message, int]]:
    """Every message now on `topics` with how many there are, from offset 0 to the end."""
    if runtime.bus is not None:
        source = _local_messages(runtime.bus, topics)
    else:
        assert runtime.settings.kafka_bootstrap
        source = kafka_messages(runtime.settings.kafka_bootstrap, topics)
    async for item in source:
        yield item


@dataclass(order=True)
class _Head:
    """The next message of one partition, ordered by publication time."""

    when: float
    topic: str
    partition: int
    message: Message = field(compare=False)


def _ce_time(message: Message) -> float:
    raw = header(message.headers, "ce_time")
    try:
        instant = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        instant = None
    if instant is None:
        return float("-inf")
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).timestamp()


async def _local_messages(bus: LocalBus, topics: list[str]) -> AsyncIterator[tuple[Message, int]]:
    batches = {t: deque(await bus.read(t, 0, 10**9)) for t in topics}
    total = sum(len(b) for b in batches.values())
    while True:
        heads = [_Head(_ce_time(b[0]), t, 0, b[0]) for t, b in batches.items() if b]
        if not heads:
            return
        first = min(heads)
        batches[first.topic].popleft()
        yield first.message, total


async def kafka_messages(bootstrap: str, topics: list[str]) -> AsyncIterator[tuple[Message, int]]:
    partitions = await partitions_of(bootstrap, topics)
    if not partitions:
        return
    # No consumer group: the live groups, and the positions stored with the effects, stay as
    # they are.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(partitions)
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)  # with read_committed: the last stable offset
        total = sum(end[tp] - begin[tp] for tp in partitions)
        buffers: dict[TopicPartition, deque[_Head]] = {}
        fetching: set[TopicPartition] = set()
        for tp in partitions:
            if end[tp] > begin[tp]:
                consumer.seek(tp, begin[tp])
                buffers[tp] = deque()
                fetching.add(tp)
            else:
                consumer.pause(tp)  # nothing to read there
        while buffers:
            # A merge needs the next message of every partition that still has some.
            needed = [tp for tp in fetching if not buffers[tp]]
            await _fill(consumer, needed, end, buffers, fetching)
            heads = [b[0] for b in buffers.values() if b]
            if not heads:
                break
            first = min(heads)
            tp = TopicPartition(first.topic, first.partition)
            buffers[tp].popleft()
            if not buffers[tp] and tp not in fetching:
                del buffers[tp]
            yield first.message, total
    finally:
        await consumer.stop()


async def _fill(consumer: AIOKafkaConsumer, needed: list[TopicPartition],
                end: dict[TopicPartition, int], buffers: dict[TopicPartition, deque[_Head]],
                fetching: set[TopicPartition]) -> None:
    """Fetch until each needed partition has a message buffered or has reached its end offset."""
    last_progress = time.monotonic()
    while needed:
        batches = await consumer.getmany(*needed, timeout_ms=500)
        for tp, records in batches.items():
            for r in records:
                if r.offset < end[tp]:
                    message = Message(r.topic, r.partition, r.offset, r.key, r.value,
                                      list(r.headers))
                    buffers[tp].append(_Head(r.timestamp / 1000.0, r.topic, r.partition, message))
        still = []
        for tp in needed:
            # The position also moves past records that are not delivered (transaction
            # markers, aborted records), so it, not the last record, says when we are done.
            if await consumer.position(tp) >= end[tp]:
                fetching.discard(tp)
                consumer.pause(tp)
            elif not buffers[tp]:
                still.append(tp)
        if len(still) < len(needed) or any(batches.values()):
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > STALL_TIMEOUT_S:
            raise TimeoutError(f"no progress reading {still} towards end offsets "
                               f"{ {str(tp): end[tp] for tp in still} }")
        needed = still


def print_table(service: str, projection: str, differences: list[Difference]) -> None:
    print(f"{service} / {projection}")
    print(f"  {'table':<28}{'live':>8}{'rebuilt':>9}{'only live':>11}{'only rebuilt':>14}  result")
    for d in differences:
        print(f"  {d.table:<28}{d.live_rows:>8}{d.rebuilt_rows:>9}{d.only_live:>11}"
              f"{d.only_rebuilt:>14}  {'equal' if d.equal else 'DIFFERENT'}")

