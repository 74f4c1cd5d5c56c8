"""The relay killed with SIGKILL while it publishes loses nothing and doubles nothing (issue 2).

Two thousand invoices wait in the invoicing event store. A relay process starts publishing
them and is killed with kill -9 mid-way; a new relay takes over from the stored position. Every
event reaches the consumers, and each consumer's effect exists once: counted as rows in the
read model and as stored events in accounting's event store, not as log lines.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer

from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceNumbers
from saldo_platform.bus import ensure_topics, partitions_of
from saldo_platform.context import Context, acting
from saldo_platform.settings import Settings
from saldo_platform.sql import ensure_postgres_database
from tests.kafka_tools import read_topic
from tests.support import Process, eventually

INVOICES = 2000


def write_invoices(database_url: str) -> None:
    """Invoices saved straight through the application, a hundred per transaction."""
    app = InvoicingApplication(database_url)
    with acting(Context(business_unit="bu_a", actor="test", correlation_id="relay-crash")):
        numbers = InvoiceNumbers("bu_a")
        for _ in range(INVOICES // 100):
            invoices = []
            for _ in range(100):
                numbers.take()
                invoices.append(Invoice("bu_a", numbers.last, "cust", "DKK",
                                        [{"description": "issue", "amount": 4500}], date(2026, 12, 1)))
            app.save(numbers, *invoices)
    app.close()


async def count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def kill_mid_batch(relay: Process, bootstrap: str, topic: str, database_url: str) -> tuple[int, int]:
    """SIGKILL the relay at an instant when it has sent more than its stored position covers."""
    tps = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    conn = await asyncpg.connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while asyncio.get_running_loop().time() < deadline:
            sent = sum((await consumer.end_offsets(tps)).values())
            try:
                position = await conn.fetchval("SELECT max(position) FROM relay_positions") or 0
            except asyncpg.UndefinedTableError:
                position = 0
            recorded = await conn.fetchval(
                "SELECT count(*) FROM invoicing_events WHERE notification_id <= $1"
                " AND topic LIKE '%Invoice.Issued'", position)
            if sent - recorded > 0 and sent < INVOICES:
                relay.kill9()
                return sent, recorded
            await asyncio.sleep(0.005)
        raise AssertionError("never caught the relay between sending and recording")
    finally:
        await conn.close()
        await consumer.stop()


async def test_relay_killed_mid_publish(env: dict[str, str], tmp_path: Path, tag: str) -> None:
    settings = Settings.from_env(env)
    invoicing_db = settings.service_database("invoicing")
    accounting_db = settings.service_database("accounting-sync")
    await ensure_postgres_database(invoicing_db)
    await asyncio.to_thread(write_invoices, invoicing_db)

    await ensure_topics(env["SALDO_KAFKA_BOOTSTRAP"], [f"{tag}.invoicing.v1"])
    consumers = [Process(["consume", s], env, tmp_path / f"consume-{s}.log").start()
                 for s in ("invoicing", "accounting-sync")]
    relay = Process(["relay", "invoicing"], env, tmp_path / "relay-1.log").start()
    try:
        sent, recorded = await kill_mid_batch(relay, env["SALDO_KAFKA_BOOTSTRAP"], f"{tag}.invoicing.v1",
                                              invoicing_db)
        assert sent > recorded  # killed with messages out that its stored position does not cover

        relay = Process(["relay", "invoicing"], env, tmp_path / "relay-2.log").start()

        async def all_projected() -> bool:
            try:
                return await _all_projected()
            except asyncpg.UndefinedTableError:
                return False  # a consumer process has not created its tables yet

        async def _all_projected() -> bool:
            rows = await count(invoicing_db, "SELECT count(*) FROM invoices")
            postings = await count(accounting_db, "SELECT count(*) FROM \"accounting-sync_events\""
                                                  " WHERE topic LIKE '%Posting.Recorded'")
            return rows >= INVOICES and postings >= INVOICES

        await eventually(all_projected, timeout=240, what="every invoice to reach both consumers")
        await asyncio.sleep(2)  # anything applied twice would show now

        assert await count(invoicing_db, "SELECT count(*) FROM invoices") == INVOICES
        assert await count(invoicing_db, "SELECT count(DISTINCT number) FROM invoices") == INVOICES
        assert await count(invoicing_db, "SELECT count(*) FROM consumed_events"
                                         " WHERE consumer = 'invoicing.invoices'") == INVOICES
        assert await count(accounting_db, "SELECT count(*) FROM \"accounting-sync_events\""
                                          " WHERE topic LIKE '%Posting.Recorded'") == INVOICES

        published = await read_topic(env["SALDO_KAFKA_BOOTSTRAP"], f"{tag}.invoicing.v1")
        ids = [dict(r.headers)["ce_id"] for r in published]
        assert len(set(ids)) == INVOICES  # nothing lost on the wire
        assert len(ids) > INVOICES  # the unrecorded tail was published again, and dropped by consumers
        print(f"relay killed with {sent} sent, {recorded} recorded; {len(ids) - INVOICES} published twice")
    finally:
        relay.stop()
        for process in consumers:
            process.stop()
