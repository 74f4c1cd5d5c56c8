"""Reading and writing topics directly, to see what the services published or to feed them junk."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from aiokafka import AIOKafkaProducer

from saldo_events import invoicing, payments
from saldo_events.codec import encode
from saldo_events.envelope import IntegrationEvent, Money
from saldo_platform.bus import Message, ensure_topics
from saldo_platform.rebuild import kafka_messages


async def read_topic(bootstrap: str, topic: str) -> list[Message]:
    """Every message now on `topic`, all partitions, from the beginning."""
    await ensure_topics(bootstrap, [topic])
    return [message async for message, _ in kafka_messages(bootstrap, [topic])]


async def produce(bootstrap: str, topic: str,
                  messages: list[tuple[int, bytes, list[tuple[str, bytes]]]], key: bytes = b"junk") -> None:
    """(partition, value, headers) each."""
    await ensure_topics(bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, value, headers in messages:
            await producer.send_and_wait(topic, value, key=key, partition=partition, headers=headers)
    finally:
        await producer.stop()


async def republish(bootstrap: str, messages: list[Message]) -> None:
    """Publish a copy of each message — same topic, partition, key, bytes and headers, so the same
    event id — at a new offset, as a relay that lost its position would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for m in messages:
            await producer.send_and_wait(m.topic, m.value, key=m.key, partition=m.partition,
                                         headers=list(m.headers))
    finally:
        await producer.stop()


async def publish(bootstrap: str, topic: str, *events: IntegrationEvent, partition: int = 0) -> None:
    """Integration events encoded as the relay encodes them, in order onto one partition."""
    for event in events:
        key, value, headers = encode(event)
        await produce(bootstrap, topic, [(partition, value, headers)], key=key)


# --- Integration events as a relay would publish them ---------------------------------------------


def envelope(aggregate_id: UUID, version: int = 1, unit: str = "bu_a") -> dict[str, Any]:
    """The envelope fields, with the event id derived as the relay derives it."""
    return {"event_id": uuid5(NAMESPACE_URL, f"saldo:{aggregate_id}:{version}"), "business_unit": unit,
            "aggregate_id": aggregate_id, "aggregate_version": version,
            "occurred_at": datetime(2026, 11, 20, 10, tzinfo=UTC), "actor": "test",
            "correlation_id": "kafka-tools"}


def invoice_issued(invoice_id: UUID, amount: int, customer: str = "cust-1",
                   unit: str = "bu_a") -> invoicing.InvoiceIssued:
    return invoicing.InvoiceIssued(
        **envelope(invoice_id, unit=unit), invoice_id=invoice_id, number=1, customer_id=customer,
        total=Money(amount=amount, currency="DKK"), due_date=date(2026, 12, 31),
        lines=[invoicing.InvoiceLine(description="Magazine, 12 months", amount=amount)])


def invoice_payment_applied(invoice_id: UUID, payment_id: UUID, amount: int, version: int = 2,
                            customer: str = "cust-1", unit: str = "bu_a") -> invoicing.InvoicePaymentApplied:
    """What the invoice recorded of a payment's allocation to it (invoicing's policy follows
    payments), as invoicing's relay publishes it: the invoice's `version`-th event."""
    return invoicing.InvoicePaymentApplied(
        **envelope(invoice_id, version, unit=unit), invoice_id=invoice_id, customer_id=customer,
        payment_id=payment_id, amount=Money(amount=amount, currency="DKK"))


def payment_received(payment_id: UUID, amount: int, invoice_id: UUID | None = None,
                     customer: str = "cust-1", unit: str = "bu_a") -> payments.PaymentReceived:
    """A card payment; allocated in full to `invoice_id` if one is given."""
    allocations = [payments.Allocation(invoice_id=invoice_id, amount=amount)] if invoice_id else []
    return payments.PaymentReceived(
        **envelope(payment_id, unit=unit), payment_id=payment_id, customer_id=customer, method="card",
        amount=Money(amount=amount, currency="DKK"), received_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        allocations=allocations)


def payment_allocated(payment_id: UUID, invoice_id: UUID, amount: int, version: int = 2,
                      unit: str = "bu_a") -> payments.PaymentAllocated:
    return payments.PaymentAllocated(
        **envelope(payment_id, version, unit=unit), payment_id=payment_id, invoice_id=invoice_id,
        amount=Money(amount=amount, currency="DKK"))
