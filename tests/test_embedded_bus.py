"""The embedded mode's in-process bus: the same publish/consume interface as Kafka, kept in
SQLite so that stopping — or killing — the embedded product loses nothing (issue 2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from saldo_platform.bus import LocalBus, Message
from tests.scenarios import issue_invoice
from tests.support import Saldo, eventually, start_embedded


async def test_published_messages_survive_a_restart_and_consumers_resume(tmp_path: Path) -> None:
    bus = LocalBus(str(tmp_path / "bus.sqlite"))
    await bus.start()
    producer = bus.producer()
    for n in range(3):
        ack = await producer.send("saldo.invoicing.v1", b"k", f"m{n}".encode(), [("ce_id", str(n).encode())])
        assert await ack == n  # durably written before acknowledged
    await bus.stop()

    bus = LocalBus(str(tmp_path / "bus.sqlite"))  # a new process, the same file
    await bus.start()
    consumer = bus.consumer()

    async def resume_at_stored(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {("saldo.invoicing.v1", 0): 1}  # as a consumer's stored position would say

    await consumer.start(["saldo.invoicing.v1"], resume_at_stored)
    got = await consumer.getmany(timeout_s=0.1)
    assert [(m.offset, m.value, m.headers) for m in got] == [
        (1, b"m1", [("ce_id", b"1")]), (2, b"m2", [("ce_id", b"2")])]
    await bus.stop()


async def test_a_waiting_consumer_wakes_when_a_message_is_published(tmp_path: Path) -> None:
    bus = LocalBus(str(tmp_path / "bus.sqlite"))
    await bus.start()
    consumer = bus.consumer()

    async def from_start(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {}

    await consumer.start(["a", "b"], from_start)
    waiting: asyncio.Task[list[Message]] = asyncio.create_task(consumer.getmany(timeout_s=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await bus.producer().send("b", b"k", b"hello", [])
    got = await asyncio.wait_for(waiting, 2)  # woken, not after the 10 s timeout
    assert [(m.topic, m.offset, m.value) for m in got] == [("b", 0, b"hello")]
    assert await consumer.getmany(timeout_s=0.05) == []  # read once
    await bus.stop()


async def test_embedded_product_killed_and_restarted_keeps_everything(tmp_path: Path) -> None:
    var = tmp_path / "var"
    saldo = await start_embedded(var)
    try:
        first = await issue_invoice(saldo, amount=1000)
        await eventually(lambda: saldo.found("invoicing", f"/v1/invoices/{first['id']}"),
                         what="the first invoice in the overview")
        saldo.processes["embedded"].kill9()
    finally:
        saldo.stop()
        await saldo.client.aclose()

    again: Saldo = await start_embedded(var)
    try:
        second = await issue_invoice(again, amount=2000)
        assert second["number"] == first["number"] + 1  # the sequence went on, no gap
        page = await eventually(lambda: _both(again, first["id"], second["id"]),
                                what="both invoices in the overview after the restart")
        assert [i["number"] for i in page] == [first["number"], second["number"]]
    finally:
        again.stop()
        await again.client.aclose()


async def _both(saldo: Saldo, *ids: str) -> list[dict[str, object]] | None:
    items = (await saldo.get("invoicing", "/v1/invoices")).json()["items"]
    return items if {i["id"] for i in items} == set(ids) else None
