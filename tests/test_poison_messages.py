"""A message nobody can apply goes to the dead-letter topic; the events behind it still apply.

Issue 2: unknown type, unsupported schema version, validation errors (rule M1: a float
amount), or bytes that are not even JSON — each lands on `<topic>.dlq` with the reason and the
original bytes, once per consumer; the partition moves on: no crash loop, no silent drop.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.kafka_tools import produce, read_topic
from tests.scenarios import issue_invoice, pay_invoice
from tests.support import eventually, start_distributed

CONSUMERS_OF_INVOICING = {"invoicing.invoices", "payments.payments", "payments.release-on-credit-note"}

VALID_BODY = {
    "event_id": "6f1c1d7e-3b54-4e0e-9c1e-4a8d5f0e2b11", "business_unit": "bu_a",
    "aggregate_id": "0b7e0a53-6f8f-4c39-9a55-6c9a4a7c0d21", "aggregate_version": 1,
    "occurred_at": "2026-11-22T10:00:00Z", "actor": "test", "correlation_id": "c",
    "schema_version": 1, "invoice_id": "0b7e0a53-6f8f-4c39-9a55-6c9a4a7c0d21", "number": 1,
    "customer_id": "c", "total": {"amount": 100, "currency": "DKK"}, "due_date": "2026-12-01",
    "lines": [{"description": "x", "amount": 100}],
}
TYPE = [("ce_type", b"dk.saldo.invoicing.InvoiceIssued")]

POISON = {
    "not JSON": (b"\x00\xffnot json at all", TYPE),
    "unknown event type": (json.dumps(VALID_BODY).encode(), [("ce_type", b"dk.saldo.invoicing.Nonsense")]),
    "missing ce_type": (json.dumps(VALID_BODY).encode(), []),
    "unsupported schema_version": (json.dumps({**VALID_BODY, "schema_version": 9}).encode(), TYPE),
    "invalid": (json.dumps({**VALID_BODY, "total": {"amount": 100.5, "currency": "DKK"}}).encode(), TYPE),
}


async def test_poison_messages_are_dead_lettered_and_the_partition_moves_on(
        env: dict[str, str], tmp_path: Path, tag: str) -> None:
    bootstrap = env["SALDO_KAFKA_BOOTSTRAP"]
    topic = f"{tag}.invoicing.v1"
    saldo = await start_distributed(env, tmp_path, services=("invoicing", "payments"))
    try:
        # Junk first on every partition, so whatever partition the real invoice lands on,
        # it stands behind poison.
        await produce(bootstrap, topic, [(p, value, headers) for p in range(3)
                                         for value, headers in POISON.values()])
        invoice = await issue_invoice(saldo)
        await eventually(lambda: saldo.found("invoicing", f"/v1/invoices/{invoice['id']}"),
                         what="the invoice behind the poison to reach the read model")
        await pay_invoice(saldo, invoice)  # payments' projection moved on, too

        async def all_dead_lettered() -> list[object] | None:
            records = await read_topic(bootstrap, f"{topic}.dlq")
            return records if len(records) >= len(POISON) * 3 * len(CONSUMERS_OF_INVOICING) else None

        dead = await eventually(all_dead_lettered, what="every consumer to dead-letter every poison message")
        assert len(dead) == len(POISON) * 3 * len(CONSUMERS_OF_INVOICING)  # once each, no more
        by_consumer: dict[str, list[tuple[str, bytes]]] = {}
        for record in dead:
            headers = dict(record.headers)
            by_consumer.setdefault(headers["saldo_dlq_consumer"].decode(), []).append(
                (headers["saldo_dlq_reason"].decode(), record.value))
            assert headers["saldo_dlq_origin"].decode().startswith(f"{topic}/")
        assert set(by_consumer) == CONSUMERS_OF_INVOICING
        for consumer, letters in by_consumer.items():
            assert sorted(v for _, v in letters) == sorted(
                v for v, _ in POISON.values() for _ in range(3)), consumer  # original bytes kept
            reasons = " | ".join(r for r, _ in letters)
            for words in ("not JSON", "unknown event type", "missing ce_type",
                          "unsupported schema_version", "invalid"):
                assert words in reasons, (consumer, words, reasons)
        for process in saldo.processes.values():  # nobody crashed
            assert process.popen is not None and process.popen.poll() is None
    finally:
        saldo.stop()
        await saldo.client.aclose()
