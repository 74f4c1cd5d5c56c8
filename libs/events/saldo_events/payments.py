"""Events published by the payments service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from saldo_events.envelope import Amount, Contract, IntegrationEvent, Money

PaymentMethod = Literal["card", "mobilepay", "betalingsservice", "fik", "bank_transfer", "manual"]


class Allocation(Contract):
    invoice_id: UUID
    amount: Amount


class PaymentReceived(IntegrationEvent):
    """A payment, with what it paid at once: most arrive for a known invoice (rule P2)."""

    SERVICE = "payments"
    payment_id: UUID
    customer_id: str
    method: PaymentMethod
    amount: Money
    received_at: datetime
    provider_reference: str | None = None
    allocations: list[Allocation] = []  # added in schema 1, optional: older events have none


class PaymentAllocated(IntegrationEvent):
    """Unallocated money of an earlier payment placed on an invoice."""

    SERVICE = "payments"
    payment_id: UUID
    invoice_id: UUID
    amount: Money


class AmountReleased(IntegrationEvent):
    """Money paid against an invoice is detached from it and can be refunded (rule I3).

    Released for a credit note (`credit_note_id`: the invoice's debt shrank by as much), or for
    a refund (`refund_id`, rule M6): an allocation made before payments heard of the refund had
    spent money promised to it, and the invoice is unpaid again by this amount.
    """

    SERVICE = "payments"
    payment_id: UUID
    invoice_id: UUID
    credit_note_id: UUID | None
    customer_id: str
    amount: Money
    refund_id: UUID | None = None  # added in schema 1, optional: older events have none
    reason: str | None = None  # the operator's reason for a release without a credit note
