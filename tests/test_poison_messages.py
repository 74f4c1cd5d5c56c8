"""A message nobody can apply goes to the dead-letter topic; the events behind it still apply.

Issue 2: unknown type, unsupported schema version, validation errors (rule M1: a float
amount), or bytes that are not even JSON — each lands on `<topic>.dlq` with the reason and the
original bytes, once per consumer; the partition moves on: no crash loop, no silent drop.
The same for an event that decodes but whose application fails, with a domain error or any
other error: dead-lettered, never silently skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

from saldo_platform.service import definitions
from tests.kafka_tools import (
    invoice_issued,
    payment_allocated,
    payment_received,
    produce,
    publish,
    read_topic,
)
from tests.scenarios import issue_invoice, pay_invoice
from tests.support import eventually, settled, start_distributed

# Every projection and policy of invoicing and payments that reads invoicing's topic.
CONSUMERS_OF_INVOICING = {cls.name for d in (definitions()["invoicing"], definitions()["payments"])
                          for cls, sources in [*d.projections, *d.policies] if "invoicing" in sources}

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

        await eventually(all_dead_lettered, what="every consumer to dead-letter every poison message")
        await settled(saldo)
        dead = await read_topic(bootstrap, f"{topic}.dlq")
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


async def test_an_event_whose_application_fails_is_dead_lettered_not_skipped(
        env: dict[str, str], tmp_path: Path, tag: str) -> None:
    """Two events that decode but cannot be applied, each in front of a good one:

    - an invoice of 0.00 kr.: accounting's posting would not balance (rule A1), a domain error,
      dead-lettered at once;
    - an allocation of a payment the refunds service never heard of: loading it fails (not a
      domain error), so it is tried three times, then dead-lettered.

    Each lands on `<topic>.dlq` once, from the consumer that failed, with its reason and origin;
    neither has an effect; the good events behind them apply; nobody crashed."""
    bootstrap = env["SALDO_KAFKA_BOOTSTRAP"]
    invoices, payments = f"{tag}.invoicing.v1", f"{tag}.payments.v1"
    saldo = await start_distributed(env, tmp_path, services=("refunds", "accounting-sync"))
    try:
        zero, good_invoice, unknown, good_payment = uuid4(), uuid4(), uuid4(), uuid4()
        await publish(bootstrap, invoices, invoice_issued(zero, 0), invoice_issued(good_invoice, 700))
        await publish(bootstrap, payments, payment_allocated(unknown, good_invoice, 300),
                      payment_received(good_payment, 500))
        await settled(saldo)

        dead = {(dict(r.headers)["saldo_dlq_consumer"].decode(),
                 dict(r.headers)["saldo_dlq_origin"].decode()): dict(r.headers)["saldo_dlq_reason"].decode()
                for r in [*await read_topic(bootstrap, f"{invoices}.dlq"),
                          *await read_topic(bootstrap, f"{payments}.dlq")]}
        assert set(dead) == {("accounting.record-postings", f"{invoices}/0/0"),
                             ("refunds.follow-payments", f"{payments}/0/0")}, dead
        assert "DomainRuleViolated" in dead[("accounting.record-postings", f"{invoices}/0/0")]
        assert "not found" in dead[("refunds.follow-payments", f"{payments}/0/0")].lower()

        postings = (await saldo.get("accounting-sync", "/v1/postings?limit=500")).json()["items"]
        issued = [p for p in postings if p["source_event_type"] == "InvoiceIssued"]
        assert [sum(line["debit"] for line in p["lines"]) for p in issued] == [700]  # not the 0.00
        refundable = await saldo.found("refunds", f"/v1/payments/{good_payment}/refundable")
        assert refundable is not None and refundable["refundable"] == 500
        assert await saldo.found("refunds", f"/v1/payments/{unknown}/refundable") is None
        for process in saldo.processes.values():
            assert process.popen is not None and process.popen.poll() is None
    finally:
        saldo.stop()
        await saldo.client.aclose()
