"""The relay loses nothing and republishes only what its stored position does not cover.

DESIGN.md, step 3: the relay publishes, waits for every acknowledgement, and only then stores
its position; on restart it continues from that position. So:

- killed with SIGKILL mid-batch, after it stored a position, a new relay republishes only the
  unacknowledged tail — never an event at or before the stored position — and every consumer
  applies every event once, without dead-lettering anything (issue 2);
- killed after it stored its position, a new relay publishes only what was stored since;
- when the broker refuses a send, the position does not move past it, and once the broker
  accepts again every event arrives.

Invoices are saved straight through the application, to a customer registered in a business
unit set up first (rules M4, C1: those two are published too, before any invoice); the relay
runs as its own OS process (`saldo relay invoicing`), as in a deployment.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceNumbers, Terms
from saldo_kernel.money import Money
from saldo_platform.bus import ensure_topics, kafka_admin, partitions_of
from saldo_platform.context import Context, acting
from saldo_platform.settings import Settings
from saldo_platform.sql import ensure_postgres_database
from tests.inprocess import register_customer, set_up_business_unit
from tests.kafka_tools import read_topic
from tests.support import Process, eventually, settled

INVOICES = 2000
ISSUED = "dk.saldo.invoicing.InvoiceIssued"
# The set-up's events (BusinessEntityUpdated, CustomerUpdated), stored before any invoice.
PARTIES_SQL = "SELECT count(*) FROM invoicing_events WHERE topic LIKE 'saldo_invoicing.domain.parties:%'"


def write_invoices(database_url: str, count: int = INVOICES, first_number: int = 1) -> None:
    """Invoices saved straight through the application, a hundred per transaction, to customer
    `cust` of the unit `bu_a`; both set up first (again: a repeated PUT writes nothing)."""
    app = InvoicingApplication(database_url)
    entity = set_up_business_unit(app, "bu_a")
    customer = register_customer(app, "bu_a", "cust")
    terms = Terms.of(entity=entity, customer=customer)  # what issue_invoice decides (C3, I1)
    with acting(Context(business_unit="bu_a", actor="test", correlation_id="relay-crash")):
        numbers = (app.get_or_none(InvoiceNumbers.create_id("bu_a"))
                   or InvoiceNumbers(business_unit="bu_a"))
        for start in range(0, count, 100):
            invoices = []
            for _ in range(min(100, count - start)):
                invoices.append(Invoice.issue(
                    numbers=numbers, customer_id="cust", due_date=date(2026, 12, 1),
                    lines=[{"description": "issue", "amount": Money(4500, "DKK")}], terms=terms))
            app.save(numbers, *invoices)
    app.close()


async def count(url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql, *args) or 0)
    finally:
        await conn.close()


async def relay_position(database_url: str) -> int:
    try:
        return await count(database_url, "SELECT position FROM relay_positions WHERE relay = 'invoicing'")
    except asyncpg.UndefinedTableError:
        return 0


async def stored_events(database_url: str) -> int:
    """The notification id of the last event the invoicing store holds."""
    return await count(database_url, "SELECT max(notification_id) FROM invoicing_events")


async def published_ids(bootstrap: str, topic: str, ce_type: str | None = ISSUED) -> list[str]:
    """The ids of the published events of `ce_type` (None: of every type), copies included."""
    return [dict(r.headers)["ce_id"].decode() for r in await read_topic(bootstrap, topic)
            if ce_type is None or dict(r.headers)["ce_type"].decode() == ce_type]


async def issued_event_ids(database_url: str, after: int = 0, up_to: int | None = None) -> set[str]:
    """The integration event ids of the stored InvoiceIssued events in a notification id range:
    deterministic, uuid5 of aggregate id and version (docs/architecture.md)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT originator_id, originator_version FROM invoicing_events"
            " WHERE topic LIKE '%Invoice.Issued' AND notification_id > $1 AND notification_id <= $2",
            after, up_to if up_to is not None else 2**62)
    finally:
        await conn.close()
    return {str(uuid5(NAMESPACE_URL, f"saldo:{r['originator_id']}:{r['originator_version']}")) for r in rows}


async def kill_mid_batch(relay: Process, bootstrap: str, topic: str, database_url: str) -> tuple[int, int]:
    """SIGKILL the relay after it stored a position, at an instant when it has sent more than
    that position covers: the next batch is on its way, unacknowledged. Counted in invoices
    (InvoiceIssued): the set-up's events went out before the first invoice."""
    tps = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    conn = await asyncpg.connect(database_url)
    try:
        parties = int(await conn.fetchval(PARTIES_SQL))
        deadline = asyncio.get_running_loop().time() + 120
        while asyncio.get_running_loop().time() < deadline:
            sent = sum((await consumer.end_offsets(tps)).values()) - parties
            try:
                position = await conn.fetchval("SELECT max(position) FROM relay_positions") or 0
            except asyncpg.UndefinedTableError:
                position = 0
            recorded = await conn.fetchval(
                "SELECT count(*) FROM invoicing_events WHERE notification_id <= $1"
                " AND topic LIKE '%Invoice.Issued'", position)
            if 0 < recorded < sent < INVOICES:
                relay.kill9()
                return sent, recorded
            await asyncio.sleep(0.005)
        raise AssertionError("never caught the relay between sending and recording")
    finally:
        await conn.close()
        await consumer.stop()


async def test_relay_killed_mid_publish(env: dict[str, str], tmp_path: Path, tag: str) -> None:
    settings = Settings.from_env(env)
    bootstrap, topic = env["SALDO_KAFKA_BOOTSTRAP"], f"{tag}.invoicing.v1"
    invoicing_db = settings.service_database("invoicing")
    accounting_db = settings.service_database("accounting-sync")
    await ensure_postgres_database(invoicing_db)
    await asyncio.to_thread(write_invoices, invoicing_db)

    await ensure_topics(bootstrap, [topic])
    consumers = [Process(["consume", s], env, tmp_path / f"consume-{s}.log").start()
                 for s in ("invoicing", "accounting-sync")]
    relay = Process(["relay", "invoicing"], env, tmp_path / "relay-1.log").start()
    try:
        sent, recorded = await kill_mid_batch(relay, bootstrap, topic, invoicing_db)
        assert 0 < recorded < sent  # killed after a stored position, with messages out beyond it
        stored_at_kill = await relay_position(invoicing_db)

        relay = Process(["relay", "invoicing"], env, tmp_path / "relay-2.log").start()
        await settled([relay, *consumers], timeout=240)

        assert await count(invoicing_db, "SELECT count(*) FROM invoices") == INVOICES
        assert await count(invoicing_db, "SELECT count(DISTINCT number) FROM invoices") == INVOICES
        parties = await count(invoicing_db, PARTIES_SQL)
        assert await count(invoicing_db, "SELECT count(*) FROM consumed_events"
                                         " WHERE consumer = 'invoicing.invoices'") == INVOICES + parties
        assert await count(accounting_db, "SELECT count(*) FROM \"accounting-sync_events\""
                                          " WHERE topic LIKE '%Posting.Recorded'") == INVOICES

        ids = await published_ids(bootstrap, topic)
        assert len(set(ids)) == INVOICES  # nothing lost on the wire
        assert len(set(await published_ids(bootstrap, topic, None))) == INVOICES + parties
        twice = {i for i, n in Counter(ids).items() if n > 1}
        assert twice  # the unacknowledged tail was published again, and dropped by consumers
        covered = await issued_event_ids(invoicing_db, up_to=stored_at_kill)
        assert len(covered) == recorded
        assert not twice & covered, "republished events its stored position already covered"
        # Every consumer applied every copy without a failure: nothing was dead-lettered (the
        # accounting policy must recognise a republished event, not fail on it).
        assert await read_topic(bootstrap, f"{topic}.dlq") == []
        print(f"relay killed with {sent} sent, {recorded} recorded; {len(twice)} published twice")
    finally:
        relay.stop()
        for process in consumers:
            process.stop()


async def test_relay_restarted_resumes_at_its_stored_position(env: dict[str, str], tmp_path: Path,
                                                               tag: str) -> None:
    """Killed after it stored its position, a new relay publishes what was stored since — and
    not one event of what it had published before."""
    settings = Settings.from_env(env)
    bootstrap, topic = env["SALDO_KAFKA_BOOTSTRAP"], f"{tag}.invoicing.v1"
    invoicing_db = settings.service_database("invoicing")
    await ensure_postgres_database(invoicing_db)
    await asyncio.to_thread(write_invoices, invoicing_db, 300)
    await ensure_topics(bootstrap, [topic])

    relay = Process(["relay", "invoicing"], env, tmp_path / "relay-1.log").start()
    try:
        await settled([relay])
        first = await stored_events(invoicing_db)
        assert await relay_position(invoicing_db) == first > 0  # it stored a position
        relay.kill9()

        await asyncio.to_thread(write_invoices, invoicing_db, 200)
        relay = Process(["relay", "invoicing"], env, tmp_path / "relay-2.log").start()
        await settled([relay])
        assert await relay_position(invoicing_db) == await stored_events(invoicing_db) > first
    finally:
        relay.stop()

    everything = await published_ids(bootstrap, topic, None)
    assert sorted(Counter(everything).values(), reverse=True)[:1] == [1], "published twice after the restart"
    ids = await published_ids(bootstrap, topic)
    assert set(ids) == await issued_event_ids(invoicing_db)  # all 500, each once
    assert len(ids) == 500
    assert len(everything) == 500 + await count(invoicing_db, PARTIES_SQL)  # and the set-up, once


async def test_relay_stores_no_position_past_a_send_the_broker_refused(
        env: dict[str, str], tmp_path: Path, tag: str) -> None:
    """The broker refuses every message (the topic takes no message over 100 bytes): the relay's
    sends fail, so its position stays where it was — nothing is marked published that the broker
    did not acknowledge. Once the topic accepts them, the same relay publishes every event."""
    settings = Settings.from_env(env)
    bootstrap, topic = env["SALDO_KAFKA_BOOTSTRAP"], f"{tag}.invoicing.v1"
    invoicing_db = settings.service_database("invoicing")
    await ensure_postgres_database(invoicing_db)
    await asyncio.to_thread(write_invoices, invoicing_db, 50)
    async with kafka_admin(bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                            topic_configs={"max.message.bytes": "100"})])

    relay = Process(["relay", "invoicing"], env, tmp_path / "relay.log").start()
    try:
        async def refused_or_recorded() -> bool:
            return "MessageSizeTooLarge" in relay.output() or await relay_position(invoicing_db) > 0

        await eventually(refused_or_recorded, timeout=30, what="the relay's first attempt to publish")
        assert await relay_position(invoicing_db) == 0, "position stored for sends the broker refused"
        assert await read_topic(bootstrap, topic) == []

        async with kafka_admin(bootstrap) as admin:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                      configs={"max.message.bytes": "1048588"})])
        await settled([relay])
    finally:
        relay.stop()
    ids = await published_ids(bootstrap, topic)
    assert sorted(ids) == sorted(await issued_event_ids(invoicing_db))
    assert len(ids) == 50
