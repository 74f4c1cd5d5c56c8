"""Which domain events are published, and as what."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from saldo_events import payments as contracts
from saldo_events.envelope import IntegrationEvent, Money
from saldo_payments.domain import Payment
from saldo_platform.relay import envelope


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Payment.Received):
        return contracts.PaymentReceived(
            **envelope(e), payment_id=e.originator_id, customer_id=e.customer_id,
            method=e.method, amount=Money.of(e.amount),
            received_at=e.received_at, provider_reference=e.provider_reference,
            allocations=[contracts.Allocation(invoice_id=UUID(i), amount=a.minor_units)
                         for i, a in e.allocations.items()],
        )
    if isinstance(e, Payment.Allocated):
        return contracts.PaymentAllocated(
            **envelope(e), payment_id=e.originator_id, invoice_id=e.invoice_id,
            amount=Money.of(e.amount),
        )
    if isinstance(e, Payment.AmountReleased):
        return contracts.AmountReleased(
            **envelope(e), payment_id=e.originator_id, invoice_id=e.invoice_id,
            credit_note_id=e.credit_note_id, customer_id=e.customer_id, amount=Money.of(e.amount),
        )
    if isinstance(e, Payment.ReleasedForRefund):
        return contracts.AmountReleased(
            **envelope(e), payment_id=e.originator_id, invoice_id=e.invoice_id,
            credit_note_id=None, refund_id=e.refund_id, customer_id=e.customer_id,
            amount=Money.of(e.amount),
        )
    return None  # the invoice accounts and the refunds noted are private to this service
