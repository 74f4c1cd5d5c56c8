"""Read models built from integration events, in SQL, exactly once.

A projection declares its tables; SQL names them as `{table}` so the same projection can be
rebuilt from offset 0 into fresh tables (suffix) and compared with the live ones (rule E2).

When a new build changes a projection's tables (its `schema`), the tables a database holds from
an older build no longer fit its SQL. A fingerprint of the schema is kept beside the offsets; on
start, a projection whose fingerprint changed (or that consumed before fingerprints were kept)
is dropped and replayed from offset 0: a read model follows from the events, so nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from saldo_events.envelope import IntegrationEvent
from saldo_platform import failpoints
from saldo_platform.bus import TP, Message
from saldo_platform.sql import Database, Executor

log = logging.getLogger(__name__)

SCHEMAS = ("CREATE TABLE IF NOT EXISTS projection_schemas ("
           "consumer TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")

OFFSETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL, PRIMARY KEY (consumer, topic, partition));
CREATE TABLE IF NOT EXISTS consumed_events (
    consumer TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (consumer, event_id))
"""


class Projection:
    name: ClassVar[str]
    # Table name -> column definitions, e.g. {"invoices": "(id TEXT PRIMARY KEY, ...)"}.
    schema: ClassVar[dict[str, str]]
    # A read model: `saldo rebuild` replays it from offset 0 and compares (rule E2). False for a
    # work queue whose rows a job consumes (e.g. invoicing's document mails): replaying it would
    # bring back work already done, so the rebuild leaves it out.
    read_model: ClassVar[bool] = True

    def __init__(self, db: Database, topics: Sequence[str], suffix: str = "") -> None:
        self.db = db
        self.topics = list(topics)
        self.suffix = suffix
        self.tables = {table: f"{table}{suffix}" for table in self.schema}
        self.consumer = f"{self.name}{suffix}"

    def sql(self, statement: str) -> str:
        return statement.format(**self.tables)

    @classmethod
    def fingerprint(cls) -> str:
        return hashlib.sha256(json.dumps(cls.schema, sort_keys=True).encode()).hexdigest()[:16]

    async def setup(self) -> None:
        await self.db.create_schema(OFFSETS_SCHEMA)
        await self.db.create_schema(SCHEMAS)
        # One process at a time decides and drops: two replicas starting a new build together.
        async with self.db.schema_lock():
            stored = await self.db.fetchval(
                "SELECT fingerprint FROM projection_schemas WHERE consumer = $1", self.consumer)
            consumed = await self.db.fetchval(
                "SELECT 1 FROM consumer_offsets WHERE consumer = $1 LIMIT 1", self.consumer)
            if stored != self.fingerprint() and (stored is not None or consumed):
                log.warning("read model %s changed shape: dropped, rebuilt from offset 0", self.consumer)
                await self.drop()
            for table, columns in self.schema.items():
                # Not create_schema: it would wait for the lock this process holds.
                await self.db.execute(f"CREATE TABLE IF NOT EXISTS {self.tables[table]} {columns}")
            await self.db.execute(
                "INSERT INTO projection_schemas (consumer, fingerprint) VALUES ($1, $2)"
                " ON CONFLICT (consumer) DO UPDATE SET fingerprint = excluded.fingerprint",
                self.consumer, self.fingerprint())

    async def drop(self) -> None:
        for table in self.tables.values():
            await self.db.execute(f"DROP TABLE IF EXISTS {table}")
        await self.db.execute("DELETE FROM consumer_offsets WHERE consumer = $1", self.consumer)
        await self.db.execute("DELETE FROM consumed_events WHERE consumer = $1", self.consumer)
        await self.db.execute(SCHEMAS)  # a drop may come before any setup (a rebuild's fresh tables)
        await self.db.execute("DELETE FROM projection_schemas WHERE consumer = $1", self.consumer)

    async def positions(self, partitions: list[TP]) -> dict[TP, int]:
        rows = await self.db.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1",
            self.consumer,
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def apply(self, event: IntegrationEvent, message: Message) -> None:
        async with self.db.transaction() as tx:
            stored = await tx.fetchval(
                "SELECT next_offset FROM consumer_offsets"
                " WHERE consumer = $1 AND topic = $2 AND partition = $3",
                self.consumer, message.topic, message.partition,
            )
            if stored is not None and message.offset < stored:
                return  # delivered again after a crash: the effect is already there
            first_time = await tx.fetchval(
                "INSERT INTO consumed_events (consumer, event_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                self.consumer, str(event.event_id),
            )
            if first_time:  # else: the relay published it twice; same event id
                await self.project(tx, event)
            await self._store_offset(tx, message)
            failpoints.reach("before-commit", self.consumer, type(event).__name__)
        failpoints.reach("after-commit", self.consumer, type(event).__name__)

    async def skip(self, message: Message) -> None:
        async with self.db.transaction() as tx:
            await self._store_offset(tx, message)

    async def _store_offset(self, tx: Executor, message: Message) -> None:
        await tx.execute(
            "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (consumer, topic, partition)"
            " DO UPDATE SET next_offset = excluded.next_offset",
            self.consumer, message.topic, message.partition, message.offset + 1,
        )

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        """Write the event's effect on the read model; ignore events of no interest."""
        raise NotImplementedError

    async def rows(self, table: str) -> list[dict[str, Any]]:
        """All rows of one table in a stable order, for comparing a rebuild with the live one."""
        rows = await self.db.fetch(f"SELECT * FROM {self.tables[table]}")
        return sorted(rows, key=lambda r: [str(v) for v in r.values()])
