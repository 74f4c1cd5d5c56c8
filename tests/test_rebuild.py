"""Rule E2: replaying a service's streams into fresh read models gives the live ones.

After the walking skeleton, `saldo rebuild <service>` (the operator's command, as an OS process)
replays every topic a projection reads from offset 0 into `<table>__rebuild` and compares:
`equal` everywhere, exit code 0. A live row changed behind the system's back is found
(`DIFFERENT`, exit code 1), and `--until` replays only what occurred up to an instant.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from saldo_platform.bus import LocalBus, ensure_topics, kafka_admin, partitions_of
from saldo_platform.rebuild import _local_messages, kafka_messages
from saldo_platform.service import definitions
from saldo_platform.settings import SERVICES, Settings
from tests.infrastructure import Servers
from tests.scenarios import walking_skeleton
from tests.support import ROOT, SALDO, Saldo, eventually


@dataclass(frozen=True)
class Row:
    service: str
    projection: str
    table: str
    live: int
    rebuilt: int
    only_live: int
    only_rebuilt: int
    result: str


@dataclass(frozen=True)
class Rebuilt:
    code: int
    stdout: str
    stderr: str
    rows: list[Row]


async def saldo_rebuild(env: dict[str, str], service: str, *args: str) -> Rebuilt:
    process = await asyncio.create_subprocess_exec(
        *SALDO, "rebuild", service, *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    stdout, stderr = out.decode(), err.decode()
    rows, heading = [], ("", "")
    for line in stdout.splitlines():
        if " / " in line and not line.startswith(" "):
            heading = tuple(line.split(" / ", 1))  # type: ignore[assignment]
        elif line.startswith("  ") and line.split()[0] != "table":
            table, live, rebuilt, only_live, only_rebuilt, result = line.split()
            rows.append(Row(*heading, table, int(live), int(rebuilt), int(only_live),
                            int(only_rebuilt), result))
    assert process.returncode is not None
    return Rebuilt(process.returncode, stdout, stderr, rows)


def explain(r: Rebuilt) -> str:
    return f"exit {r.code}\n--- stdout\n{r.stdout}\n--- stderr (last 3000)\n{r.stderr[-3000:]}"


def assert_all_equal(service: str, r: Rebuilt) -> None:
    assert r.code == 0, explain(r)
    projections = {cls.name for cls, _ in definitions()[service].projections if cls.read_model}
    assert {row.projection for row in r.rows} == projections, explain(r)
    for queue in {cls.name for cls, _ in definitions()[service].projections if not cls.read_model}:
        # A work queue (invoicing's document mails) is left out, and the operator told so.
        assert f"{queue} is a work queue, not a read model: not rebuilt" in r.stderr, explain(r)
    assert all(row.result == "equal" for row in r.rows), explain(r)
    assert all(row.live == row.rebuilt for row in r.rows), explain(r)
    # Progress on stderr: one summary line per projection, with how many events it replayed.
    for name in projections:
        assert f"{name}: reading events from offset 0" in r.stderr, explain(r)
        assert any(line.startswith(f"{name}: ") and " events in " in line
                   for line in r.stderr.splitlines()), explain(r)


def live_tables_with_rows(rebuilds: dict[str, Rebuilt]) -> set[str]:
    return {f"{s}:{row.table}" for s, r in rebuilds.items() for row in r.rows if row.live > 0}


# What the walking skeleton leaves in the read models, so "equal" never means "both empty".
FILLED = {"invoicing:invoices", "payments:payments", "payments:known_invoices", "payouts:payouts"}


# --- waiting until the live read models have caught up with every topic -------------------------


def subscriptions(settings: Settings) -> dict[str, list[tuple[str, list[str]]]]:
    """service -> [(projection consumer, topics)] as the services wire them."""
    return {name: [(cls.name, [settings.topic(s) for s in sources])
                   for cls, sources in d.projections]
            for name, d in definitions().items()}


async def kafka_lag(env: dict[str, str]) -> dict[str, int]:
    settings = Settings.from_env(env)
    assert settings.kafka_bootstrap and settings.database_url
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    lag: dict[str, int] = {}
    try:
        for service, projections in subscriptions(settings).items():
            conn = await asyncpg.connect(settings.service_database(service))
            try:
                for name, topics in projections:
                    rows = await conn.fetch("SELECT topic, partition, next_offset"
                                            " FROM consumer_offsets WHERE consumer = $1", name)
                    stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
                    partitions = await partitions_of(settings.kafka_bootstrap, topics)
                    for tp, end in (await consumer.end_offsets(partitions)).items():
                        behind = end - stored.get((tp.topic, tp.partition), 0)
                        if behind:
                            lag[f"{name} {tp.topic}/{tp.partition}"] = behind
            finally:
                await conn.close()
    finally:
        await consumer.stop()
    return lag


def embedded_lag(env: dict[str, str]) -> dict[str, int]:
    settings = Settings.from_env(env)
    bus_file = settings.var_dir / "bus.sqlite"
    with closing(sqlite3.connect(f"file:{bus_file}?mode=ro", uri=True)) as bus:
        ends = dict(bus.execute('SELECT topic, MAX("offset") + 1 FROM bus_messages GROUP BY topic'))
    lag: dict[str, int] = {}
    for service, projections in subscriptions(settings).items():
        path = settings.var_dir / f"{service}.sqlite"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            for name, topics in projections:
                stored = dict(db.execute(
                    "SELECT topic, next_offset FROM consumer_offsets WHERE consumer = ?", (name,)))
                for topic in topics:
                    if behind := ends.get(topic, 0) - stored.get(topic, 0):
                        lag[f"{name} {topic}"] = behind
    return lag


async def wait_caught_up(saldo: Saldo, embedded: bool = False) -> None:
    async def probe() -> bool:
        lag = embedded_lag(saldo.env) if embedded else await kafka_lag(saldo.env)
        assert not lag, lag
        return True

    await eventually(probe, timeout=30, what="every projection to reach the end of its topics")


# --- the tests -------------------------------------------------------------------------------


async def test_rebuild_equals_the_live_read_models_distributed(distributed: Saldo) -> None:
    done = await walking_skeleton(distributed)
    await wait_caught_up(distributed)

    rebuilds = dict(zip(SERVICES, await asyncio.gather(
        *(saldo_rebuild(distributed.env, s) for s in SERVICES)), strict=True))
    for service, rebuilt in rebuilds.items():
        assert_all_equal(service, rebuilt)
    assert live_tables_with_rows(rebuilds) >= FILLED

    settings = Settings.from_env(distributed.env)
    conn = await asyncpg.connect(settings.service_database("invoicing"))
    try:
        # Equal rebuilds leave nothing behind in the live database.
        assert await conn.fetchval("SELECT to_regclass('invoices__rebuild')") is None
        invoice_id = done["invoice"]["id"]
        live = await conn.fetchrow("SELECT * FROM invoices WHERE invoice_id = $1", invoice_id)
        assert live is not None and live["credited"] == 49900

        # Someone "fixes" a live row by hand: the read model no longer follows from the events.
        await conn.execute("UPDATE invoices SET credited = credited + 100 WHERE invoice_id = $1",
                           invoice_id)
        corrupted = await saldo_rebuild(distributed.env, "invoicing")
        assert corrupted.code == 1, explain(corrupted)
        [row] = [r for r in corrupted.rows if r.table == "invoices"]
        assert (row.result, row.only_live, row.only_rebuilt) == ("DIFFERENT", 1, 1), \
            explain(corrupted)
        # The rebuilt rows stay for the operator to compare; they hold what the events say.
        rebuilt = await conn.fetchrow("SELECT * FROM invoices__rebuild WHERE invoice_id = $1",
                                      invoice_id)
        assert rebuilt is not None and rebuilt["credited"] == live["credited"]

        # --until: only what occurred up to the invoice's issue (no payment, no credit note yet).
        until = await saldo_rebuild(distributed.env, "invoicing", "--until", live["issued_at"])
        assert until.code == 1, explain(until)
        assert "after --until" in until.stderr, explain(until)
        replayed = await conn.fetchrow("SELECT * FROM invoices__rebuild WHERE invoice_id = $1",
                                       invoice_id)
        assert replayed is not None, explain(until)
        assert replayed["credited"] == 0
        assert await conn.fetchval("SELECT coalesce(sum(paid), 0) FROM invoice_payments__rebuild") == 0
        assert replayed["issued_at"] == live["issued_at"]
    finally:
        await conn.close()


async def test_rebuild_equals_the_live_read_models_embedded(embedded: Saldo) -> None:
    """The same command on the embedded product's SQLite files and in-process bus.

    Two services suffice here (each process start costs a second of CPU): both read two topics,
    so the replay has to interleave them as they were published.
    """
    await walking_skeleton(embedded)
    await wait_caught_up(embedded, embedded=True)
    assert embedded.env["SALDO_MODE"] == "embedded" and "SALDO_VAR_DIR" in embedded.env

    services = ("invoicing", "payments")
    rebuilds = dict(zip(services, await asyncio.gather(
        *(saldo_rebuild(embedded.env, s) for s in services)), strict=True))
    for service, rebuilt in rebuilds.items():
        assert_all_equal(service, rebuilt)
    assert {"invoicing:invoices", "payments:payments", "payments:known_invoices"} <= \
        live_tables_with_rows(rebuilds)


# --- the replay's reader, against the real broker -----------------------------------------------


async def test_the_replay_reads_to_the_end_offsets_in_publication_order(infra: Servers,
                                                                       tag: str) -> None:
    """Every partition to its end offset as it was at the start, none forgotten (also the empty
    ones), merged across partitions and topics by publication time; a missing topic is read as
    empty and is not created by asking."""
    bootstrap = infra.kafka_bootstrap
    a, b, missing = f"{tag}.a.v1", f"{tag}.b.v1", f"{tag}.missing.v1"
    await ensure_topics(bootstrap, [a, b])  # three partitions each; b/2 stays empty
    base = int(time.time() * 1000) - 60_000
    # (topic, partition) for published-at = base + i s; each partition's own order is kept.
    plan = [(a, 0), (b, 1), (a, 1), (a, 0), (b, 0), (a, 2), (b, 1), (a, 1), (b, 0), (a, 2)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        # Sent topic by topic, so the order on the broker is not the order of publication times.
        acks = [await producer.send(topic, f"m{i}".encode(), partition=partition,
                                    timestamp_ms=base + 1000 * i)
                for topic in (b, a) for i, (t, partition) in enumerate(plan) if t == topic]
        await asyncio.gather(*acks)

        replayed: list[str] = []
        totals: set[int] = set()
        started = time.monotonic()
        async for message, total in kafka_messages(bootstrap, [a, b, missing]):
            if not replayed:  # published after the replay started: not part of it
                await (await producer.send(a, b"late", partition=0))
            replayed.append(message.value.decode())
            totals.add(total)
        assert time.monotonic() - started < 10
    finally:
        await producer.stop()
    assert replayed == [f"m{i}" for i in range(len(plan))]
    assert totals == {len(plan)}
    async with kafka_admin(bootstrap) as admin:
        assert missing not in await admin.list_topics()


async def test_the_embedded_replay_merges_topics_by_event_time(tmp_path: Path) -> None:
    bus = LocalBus(str(tmp_path / "bus.sqlite"))
    await bus.start()
    try:
        times = {"x": ["10:00:01", "10:00:04", "10:00:05"], "y": ["10:00:02", "10:00:03"]}
        for topic, clock in times.items():
            for hhmmss in clock:
                await bus.append(topic, None, hhmmss.encode(),
                                 [("ce_time", f"2026-11-20T{hhmmss}+00:00".encode())])
        replayed = [(m.topic, m.value.decode()) async for m, _ in _local_messages(bus, ["x", "y"])]
    finally:
        await bus.stop()
    assert replayed == [("x", "10:00:01"), ("y", "10:00:02"), ("y", "10:00:03"),
                        ("x", "10:00:04"), ("x", "10:00:05")]
