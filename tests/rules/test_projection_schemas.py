"""A read model whose tables a new build changed is rebuilt from offset 0 on start, instead of
answering 500 on SQL that no longer fits (rule E2: a read model follows from the events)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import ClassVar
from uuid import uuid4

from saldo_events import invoicing
from saldo_events.envelope import IntegrationEvent
from saldo_platform.projection import Projection
from saldo_platform.sql import Database, Executor
from tests.inprocess import announced, deliver, message, read_models


class Before(Projection):
    name = "test.notes"
    schema: ClassVar[dict[str, str]] = {"notes": "(note_id TEXT PRIMARY KEY)"}

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        await tx.execute(self.sql("INSERT INTO {notes} (note_id) VALUES ($1)"), str(event.event_id))


class After(Before):
    """The next build: the same read model, one column more."""

    schema: ClassVar[dict[str, str]] = {"notes": "(note_id TEXT PRIMARY KEY, reason TEXT NOT NULL)"}

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        await tx.execute(self.sql("INSERT INTO {notes} (note_id, reason) VALUES ($1, $2)"),
                         str(event.event_id), "why")


def note() -> IntegrationEvent:
    return announced(invoicing.SubscriptionStopped, subscription_id=uuid4(), customer_id="alice",
                     stopped_on=date(2026, 12, 1))


async def offsets(db: Database) -> list[dict[str, object]]:
    return await db.fetch("SELECT * FROM consumer_offsets WHERE consumer = 'test.notes'")


async def test_E2_a_changed_schema_drops_the_read_model_and_replays_it_from_offset_0(tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        old = Before(db, ["saldo.test.v1"])
        await old.setup()
        await deliver(old, note(), message(offset=0))
        assert len(await offsets(db)) == 1

        await Before(db, ["saldo.test.v1"]).setup()  # the same build again: kept
        assert len(await db.fetch("SELECT * FROM notes")) == 1 and len(await offsets(db)) == 1

        new = After(db, ["saldo.test.v1"])
        await new.setup()  # a new build: the old rows and offsets are gone, the new table is there
        assert await db.fetch("SELECT * FROM notes") == [] and await offsets(db) == []
        await deliver(new, note(), message(offset=0))  # replayed from offset 0 with the new SQL
        assert [r["reason"] for r in await db.fetch("SELECT * FROM notes")] == ["why"]


async def test_E2_a_read_model_from_before_fingerprints_were_kept_is_rebuilt_too(tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        old = Before(db, ["saldo.test.v1"])
        await old.setup()
        await deliver(old, note(), message(offset=0))
        await db.execute("DELETE FROM projection_schemas")  # as a database of an older build has it
        new = After(db, ["saldo.test.v1"])
        await new.setup()
        assert await offsets(db) == [] and await db.fetch("SELECT * FROM notes") == []
        await deliver(new, note(), message(offset=0))  # the new SQL fits the new table
        assert [r["reason"] for r in await db.fetch("SELECT * FROM notes")] == ["why"]
