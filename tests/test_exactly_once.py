"""Exactly-once effects from at-least-once delivery, one layer at a time (DESIGN.md, step 4).

Three layers stand between a message that arrives twice and an effect applied twice:

1. **the position, stored in the transaction of the effect** (a projection's `consumer_offsets`
   row, a policy's `eventsourcing` tracking record): the same message at the same offset again
   changes nothing — not the read model, not the position, not the dead-letter topic;
2. **the event id** (a projection's `consumed_events`): a copy of an event at a *new* offset, as
   a relay publishes its unacknowledged tail again after a crash, changes nothing;
3. **atomic tracking**: a policy's new events and its tracking record are one transaction, so a
   crash between the two leaves neither, and the redelivery after it acts once.

Each layer has a test that fails when only that layer is removed. They drive the real
`Projection`, `Policy` and `ConsumerRunner` against real PostgreSQL and Kafka, with a handler
whose effect is not idempotent by itself (invoicing's paid amounts add up from the invoice's own
InvoicePaymentApplied events; a test policy makes a
new aggregate for every delivery), so the layer under test is the only guard.

The last test does it to the running product: every event of the walking skeleton published a
second time, as a relay that lost its position would. Every read model, every ledger line and
every event store stays as it was — the policies recognise each copy by its domain key (one
posting per source event, one release per credit note, one payout per refund) — and nothing
is dead-lettered.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import event

from saldo_events import invoicing
from saldo_events.codec import encode, header
from saldo_events.envelope import IntegrationEvent
from saldo_invoicing.projections import InvoicesProjection
from saldo_kernel.aggregate import SaldoAggregate
from saldo_platform.bus import (
    Consumer,
    KafkaConsumer,
    KafkaProducer,
    LocalBus,
    Message,
    ensure_topics,
    partitions_of,
)
from saldo_platform.consumer import ConsumerRunner, Handler
from saldo_platform.eventstore import EventStoreApplication
from saldo_platform.policy import Policy
from saldo_platform.settings import SERVICES, Settings, database_name_url
from saldo_platform.sql import PostgresDatabase, ensure_postgres_database
from tests.infrastructure import Servers
from tests.kafka_tools import invoice_issued, invoice_payment_applied, publish, read_topic, republish
from tests.scenarios import walking_skeleton
from tests.support import Saldo, dead_letters, eventually, settled, start_distributed, start_embedded

# --- Projections: layers 1 and 2 ------------------------------------------------------------------


@dataclass
class Stage:
    """Invoicing's real invoice projection on its own database and topic (it reads invoicing's
    topic only: what is paid comes from the invoice's own events), with a real producer for its
    dead letters."""

    bootstrap: str
    db: PostgresDatabase
    projection: InvoicesProjection
    invoices_topic: str
    dead_letters: KafkaProducer
    group: str

    @property
    def topics(self) -> list[str]:
        return [self.invoices_topic]

    async def publish(self, topic: str, *events: IntegrationEvent) -> None:
        """Onto partition 0, in order, encoded as the relay encodes them."""
        await publish(self.bootstrap, topic, *events)

    async def consume_to_the_end(self) -> None:
        """Run the projection's consumer — a Kafka consumer group seeking to the stored positions —
        until its stored positions are the end offsets of every partition it reads."""
        runner = ConsumerRunner(cast(Handler, self.projection), KafkaConsumer(self.bootstrap, self.group),
                                self.dead_letters)
        stopping = asyncio.Event()
        running = asyncio.create_task(runner.run(stopping))
        tps = await partitions_of(self.bootstrap, self.topics)
        ends = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await ends.start()
        try:
            async def caught_up() -> bool:
                assert not running.done(), running
                end = {(tp.topic, tp.partition): o for tp, o in (await ends.end_offsets(tps)).items()}
                stored = await self.projection.positions(list(end))
                return all(stored.get(tp, 0) == o for tp, o in end.items())

            await eventually(caught_up, timeout=30, what="the projection to reach the topic ends")
        finally:
            await ends.stop()
            stopping.set()
            await running

    async def observed(self) -> dict[str, Any]:
        """Everything a second delivery could change: read model, positions, ids, dead letters."""
        dead = [m for t in self.topics for m in await read_topic(self.bootstrap, f"{t}.dlq")]
        return {
            "invoices": await self.db.fetch("SELECT invoice_id, customer_id, total FROM invoices"
                                            " ORDER BY invoice_id"),
            "paid": {r["invoice_id"]: r["paid"]
                     for r in await self.db.fetch("SELECT * FROM invoice_payments")},
            "positions": await self.projection.positions([]),
            "event ids": await self.db.fetchval("SELECT count(*) FROM consumed_events"),
            "dead letters": sorted(header(m.headers, "saldo_dlq_origin") or "" for m in dead),
        }


@pytest.fixture
async def stage(infra: Servers, tag: str) -> AsyncIterator[Stage]:
    db = PostgresDatabase(database_name_url(infra.database_url, f"{tag}_invoicing"))
    await db.connect()
    topics = [f"{tag}.invoicing.v1"]
    await ensure_topics(infra.kafka_bootstrap, topics + [f"{t}.dlq" for t in topics])
    projection = InvoicesProjection(db, topics)
    await projection.setup()
    producer = KafkaProducer(infra.kafka_bootstrap, f"{tag}-dead-letters")
    await producer.start()
    try:
        yield Stage(infra.kafka_bootstrap, db, projection, topics[0], producer,
                    f"{tag}.invoicing.invoices")
    finally:
        await producer.stop()
        await db.close()


async def test_layer_1_the_same_message_at_the_same_offset_again_changes_nothing(stage: Stage) -> None:
    """Kafka delivers a message again at its offset when a consumer still held it as its partition
    moved to another replica, or crashed before acknowledging anything. The stored position is
    what says "done": the read model, the position itself and the dead-letter topic stay as they
    were. (The event-id layer alone would not do: a message that was dead-lettered left no event
    id, and would be tried and dead-lettered again; a late copy would move the position back.)"""
    invoice, payment = uuid4(), uuid4()
    unstorable = invoice_issued(uuid4(), 700, customer="cust\u00001")  # PostgreSQL TEXT holds no NUL
    await stage.publish(stage.invoices_topic, invoice_issued(invoice, 10000), unstorable,
                        invoice_payment_applied(invoice, payment, 4000))
    await stage.consume_to_the_end()

    before = await stage.observed()
    assert before["paid"] == {str(invoice): 4000}
    assert before["positions"] == {(stage.invoices_topic, 0): 3}
    assert before["dead letters"] == [f"{stage.invoices_topic}/0/1"]  # the unstorable one, once

    runner = ConsumerRunner(cast(Handler, stage.projection), cast(Consumer, None), stage.dead_letters)
    again = [m for t in stage.topics for m in await read_topic(stage.bootstrap, t)]
    assert [(m.topic, m.offset) for m in again] == [
        (stage.invoices_topic, 0), (stage.invoices_topic, 1), (stage.invoices_topic, 2)]
    for message in [*again, again[0]]:  # all of them again, then the oldest once more, late
        await runner.process(message, asyncio.Event())

    assert await stage.observed() == before


async def test_layer_2_a_copy_of_an_event_at_a_new_offset_changes_nothing(stage: Stage) -> None:
    """A relay killed between sending and recording its position publishes the tail again: the
    same event (same id, same bytes) at a new offset, which the offset check lets through. The
    event id stops it: the invoice stays paid 4,000, not 8,000, and the partition moves on."""
    invoice, payment = uuid4(), uuid4()
    await stage.publish(stage.invoices_topic, invoice_issued(invoice, 10000),
                        invoice_payment_applied(invoice, payment, 4000))
    await stage.consume_to_the_end()
    before = await stage.observed()
    assert before["paid"] == {str(invoice): 4000}

    [applied] = [m for m in await read_topic(stage.bootstrap, stage.invoices_topic)
                 if header(m.headers, "ce_type") == "dk.saldo.invoicing.InvoicePaymentApplied"]
    await republish(stage.bootstrap, [applied])
    await stage.consume_to_the_end()

    after = await stage.observed()
    assert after["positions"][(stage.invoices_topic, 0)] == 3  # the copy at offset 2 was read
    assert after["paid"] == {str(invoice): 4000}  # and not applied
    assert {k: v for k, v in after.items() if k != "positions"} == {
        k: v for k, v in before.items() if k != "positions"}


# --- Policies: layers 1 and 3 -----------------------------------------------------------------------


class Tally(SaldoAggregate):
    """What the test policy makes of a delivery: a new aggregate with an id of its own each time."""

    class Counted(SaldoAggregate.Created):
        source_event_id: str

    @event(Counted)
    def __init__(self, *, business_unit: str, source_event_id: str) -> None:
        self.business_unit = business_unit
        self.source_event_id = source_event_id


class TallyApplication(EventStoreApplication):
    name = "tally"


class CountEveryDelivery(Policy):
    """A policy with no domain key of its own (real policies have one, see architecture.md): only
    the tracking record stands between a redelivery and a second effect."""

    name = "test.count-every-delivery"
    application: TallyApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        processing_event.collect_events(
            Tally(business_unit=event.business_unit, source_event_id=str(event.event_id)))


@dataclass
class TallyStage:
    policy: CountEveryDelivery
    url: str
    topic = "exactly-once.invoicing.v1"

    async def tallies(self) -> int:
        conn = await asyncpg.connect(self.url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM tally_events"))
        finally:
            await conn.close()

    async def position(self) -> int:
        name = self.policy.tracking_name(self.topic, 0)
        return await asyncio.to_thread(lambda: self.policy.application.position(name) or 0)

    def message(self, e: IntegrationEvent, offset: int) -> Message:
        key, value, headers = encode(e)
        return Message(self.topic, 0, offset, key, value, headers)


@pytest.fixture
async def tally(infra: Servers, tag: str) -> AsyncIterator[TallyStage]:
    url = database_name_url(infra.database_url, f"{tag}_tally")
    await ensure_postgres_database(url)
    application = await asyncio.to_thread(TallyApplication, url)
    try:
        yield TallyStage(CountEveryDelivery(application, [TallyStage.topic]), url)
    finally:
        application.close()


async def test_policy_layer_1_the_same_message_at_the_same_offset_again_acts_once(tally: TallyStage) -> None:
    first = tally.message(invoice_issued(uuid4(), 100), offset=0)
    await tally.policy.apply(invoicing.InvoiceIssued.model_validate_json(first.value), first)
    await tally.policy.apply(invoicing.InvoiceIssued.model_validate_json(first.value), first)
    assert await tally.tallies() == 1
    assert await tally.position() == 1


async def test_layer_3_a_crash_between_a_policys_new_events_and_its_position_leaves_neither(
        tally: TallyStage) -> None:
    """The process dies at the instant the policy writes its tracking record (PostgreSQL refuses
    the write, as a dead connection would). The policy's new events were written in the same
    transaction, so they are gone too; the message comes again after the restart and acts once.
    Were the events committed first and the position after, the redelivery would act twice."""
    first = tally.message(invoice_issued(uuid4(), 100), offset=0)
    second = tally.message(invoice_issued(uuid4(), 200), offset=1)
    await tally.policy.apply(invoicing.InvoiceIssued.model_validate_json(first.value), first)
    assert (await tally.tallies(), await tally.position()) == (1, 1)

    conn = await asyncpg.connect(tally.url)
    try:
        await conn.execute(
            "CREATE FUNCTION die_before_the_position() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'killed between the effect and its position'; END $$;"
            " CREATE TRIGGER die BEFORE INSERT OR UPDATE ON tally_tracking FOR EACH ROW"
            " WHEN (NEW.application_name LIKE 'test.count-every-delivery:%')"
            " EXECUTE FUNCTION die_before_the_position()")
        event_2 = invoicing.InvoiceIssued.model_validate_json(second.value)
        with pytest.raises(Exception, match="killed between the effect and its position"):
            await tally.policy.apply(event_2, second)
        assert (await tally.tallies(), await tally.position()) == (1, 1)  # neither half

        await conn.execute("DROP TRIGGER die ON tally_tracking")  # the process restarts
    finally:
        await conn.close()
    await tally.policy.apply(event_2, second)  # the message is delivered again
    assert (await tally.tallies(), await tally.position()) == (2, 2)


# --- The running product: every event published twice ------------------------------------------------


async def _store(saldo: Saldo) -> dict[str, Any]:
    """Every read-model row, every consumed event id and the size of every event store."""
    from saldo_platform.service import definitions

    settings = Settings.from_env(saldo.env)
    found: dict[str, Any] = {}
    for service in SERVICES:
        definition = definitions()[service]
        # Read models only: a work queue (invoicing's document mails) is emptied by a job on its
        # own clock, which `settled` does not wait for.
        tables = [t for cls, _ in definition.projections if cls.read_model for t in cls.schema]
        tables.append("consumed_events")
        events = f'"{str(definition.application.name).lower()}_events"'  # type: ignore[attr-defined]
        if settings.mode == "embedded":
            with sqlite3.connect(f"file:{settings.var_dir / service}.sqlite?mode=ro", uri=True) as db:
                for table in tables:
                    found[f"{service} {table}"] = sorted(map(repr, db.execute(f"SELECT * FROM {table}")))
            with sqlite3.connect(f"file:{settings.var_dir / service}.events.sqlite?mode=ro", uri=True) as db:
                found[f"{service} events"] = db.execute("SELECT count(*) FROM stored_events").fetchone()
            continue
        conn = await asyncpg.connect(settings.service_database(service))
        try:
            for table in tables:
                found[f"{service} {table}"] = sorted(repr(tuple(r)) for r in await conn.fetch(
                    f"SELECT * FROM {table}"))
            found[f"{service} events"] = await conn.fetchval(f"SELECT count(*) FROM {events}")
        finally:
            await conn.close()
    return found


async def _publish_everything_again(saldo: Saldo) -> int:
    settings = Settings.from_env(saldo.env)
    topics = [settings.topic(s) for s in SERVICES]
    if settings.mode == "embedded":
        bus = LocalBus(str(settings.var_dir / "bus.sqlite"))
        await bus.start()
        try:
            messages = [m for t in topics for m in await bus.read(t, 0, 100_000)]
            for m in messages:
                await bus.append(m.topic, m.key, m.value, m.headers)
        finally:
            await bus.stop()
        return len(messages)
    assert settings.kafka_bootstrap
    messages = [m for t in topics for m in await read_topic(settings.kafka_bootstrap, t)]
    await republish(settings.kafka_bootstrap, messages)
    return len(messages)


@pytest.fixture(params=["distributed", "embedded"])
async def product(request: pytest.FixtureRequest, env: dict[str, str],
                  tmp_path: Path) -> AsyncIterator[Saldo]:
    """The product running in either mode, a fresh one per test."""
    if request.param == "distributed":
        saldo = await start_distributed(env, tmp_path)
    else:
        saldo = await start_embedded(tmp_path / "var")
    try:
        yield saldo
    finally:
        saldo.stop()
        await saldo.client.aclose()


async def test_every_event_of_the_walking_skeleton_published_again_changes_nothing(product: Saldo) -> None:
    """Rules A1 and E1 under at-least-once delivery: invoice, payment, credit note, release,
    refund, payout and its posting — each published a second time. Nothing is posted twice, no
    amount moves, no policy makes a new event, and nothing is dead-lettered."""
    saldo = product
    await walking_skeleton(saldo)
    await settled(saldo)
    before = await _store(saldo)
    balance = (await saldo.get("accounting-sync", "/v1/trial-balance")).json()

    copies = await _publish_everything_again(saldo)
    assert copies >= 10  # the events of every service
    await settled(saldo)

    assert await dead_letters(saldo) == []
    after = await _store(saldo)
    assert [k for k in before if after[k] != before[k]] == []
    assert (await saldo.get("accounting-sync", "/v1/trial-balance")).json() == balance
