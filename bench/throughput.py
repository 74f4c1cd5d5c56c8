"""Part 1: relay throughput and replay speed, each next to its ceilings, on one event store."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench import ceilings, eventstore
from bench.documents import render_rates
from bench.infra import Servers
from bench.progress import say
from bench.relay import breakdown, record_size, relay_throughput
from bench.replay import projection_rebuild, projection_replay
from saldo_events.codec import header
from saldo_events.invoicing import InvoiceIssued
from saldo_invoicing.application import InvoicingApplication
from saldo_platform.bus import KafkaProducer, ensure_topics
from saldo_platform.settings import Settings, database_name_url
from saldo_platform.sql import PostgresDatabase, ensure_postgres_database

ISSUED = InvoiceIssued.event_type()


async def throughput(servers: Servers, settings: Settings, tag: str,
                     args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"ceilings": {}}
    url = settings.service_database("invoicing")
    await ensure_postgres_database(url)
    app = await asyncio.to_thread(InvoicingApplication, url)
    try:
        say(f"appending {args.events} events to a fresh invoicing event store ({url})")
        out["fill"] = (await asyncio.to_thread(eventstore.fill, app, args.events)).as_dict()
        await _relay(app, url, servers, settings, tag, out)
        if not args.skip_ceilings:
            await _ceilings(app, servers, tag, args, out)
        say(f"issue_invoice in process, ≤{args.ceiling_seconds:.0f} s")
        out["issue_invoice"] = (await asyncio.to_thread(
            eventstore.issue_invoice_loop, app, args.ceiling_seconds, args.events)).as_dict()
        out["documents"] = await asyncio.to_thread(render_rates, args.ceiling_seconds)
        say("aggregate replay")
        out.setdefault("replay", {})["aggregate"] = await asyncio.to_thread(
            eventstore.aggregate_replay, app, min(args.events, 10000))
    finally:
        app.close()
    out["replay"]["projection"] = await projection_replay(
        settings, tag, out["relay"]["rate"]["count"])
    out["replay"]["rebuild"] = await projection_rebuild(settings, out["relay"]["rate"]["count"])
    return out


async def _relay(app: InvoicingApplication, url: str, servers: Servers, settings: Settings,
                 tag: str, out: dict[str, Any]) -> None:
    topic, producer_topic = settings.topic("invoicing"), f"{tag}.producer-only"
    await ensure_topics(servers.kafka_bootstrap, [topic, producer_topic, f"{tag}.perf"])
    db = PostgresDatabase(url)
    await db.connect()
    producer = KafkaProducer(servers.kafka_bootstrap, "saldo-bench-relay")
    await producer.start()
    try:
        say("relay: publish_after until the notification log is on Kafka")
        out["relay"] = await relay_throughput(app, db, producer, topic)
        say("relay breakdown: each part alone")
        out["relay_breakdown"], records = await breakdown(app, producer, producer_topic)
    finally:
        await producer.stop()
        await db.close()
    # An invoice's record: the unit's entity and customers went out first (eventstore.set_up).
    size = record_size(next(r for r in records if header(r[2], "ce_type") == ISSUED))
    out["record_size"] = {"key": size.key, "value": size.value, "headers": size.headers,
                          "total": size.total}


async def _ceilings(app: InvoicingApplication, servers: Servers, tag: str,
                    args: argparse.Namespace, out: dict[str, Any]) -> None:
    c = out["ceilings"]
    c["kafka_producer_perf"] = await asyncio.to_thread(
        ceilings.kafka_producer_perf, servers.kafka_bootstrap, f"{tag}.perf", args.events,
        out["record_size"]["total"])
    bare_url = database_name_url(servers.database_url, f"{tag}_bare")
    await ensure_postgres_database(bare_url)
    say(f"bare eventsourcing append loop, ≤{args.ceiling_seconds:.0f} s")
    c["bare_eventsourcing_append"] = (await asyncio.to_thread(
        eventstore.bare_append_loop, bare_url, args.ceiling_seconds, args.events)).as_dict()
    say(f"Saldo append loop, ≤{args.ceiling_seconds:.0f} s")
    c["saldo_append"] = (await asyncio.to_thread(
        eventstore.saldo_append_loop, app, args.ceiling_seconds, args.events,
        args.events + 1)).as_dict()
    stored = next(n for n in app.recorder.select_notifications(0, 1 + eventstore.CUSTOMERS + 1)
                  if n.topic.endswith("Invoice.Issued"))  # an invoice, as stored
    pg_url = database_name_url(servers.database_url, f"{tag}_pgbench")
    await ceilings.prepare_pgbench(pg_url)
    seconds = max(1, round(args.ceiling_seconds))
    for clients, key in ((1, "pgbench_1_client"), (4, "pgbench_4_clients")):
        c[key] = await asyncio.to_thread(ceilings.pgbench, pg_url, seconds, clients,
                                         len(stored.state))
