"""Which domain events are published, and as what (libs/events contracts)."""

from __future__ import annotations

from typing import Any

from saldo_events import invoicing as contracts
from saldo_events.envelope import IntegrationEvent, Money
from saldo_invoicing.domain import Invoice
from saldo_platform.eventstore import event_class
from saldo_platform.relay import envelope

CreditNoteIssued = event_class(Invoice, "CreditNoteIssued")
Issued = event_class(Invoice, "Issued")


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Issued):
        total = sum(int(line["amount"]) for line in e.lines)
        return contracts.InvoiceIssued(
            **envelope(e), invoice_id=e.originator_id, number=e.number,
            customer_id=e.customer_id, total=Money(amount=total, currency=e.currency),
            due_date=e.due_date, lines=[contracts.InvoiceLine(**line) for line in e.lines],
        )
    if isinstance(e, CreditNoteIssued):
        return contracts.CreditNoteIssued(
            **envelope(e), invoice_id=e.originator_id, credit_note_id=e.credit_note_id,
            customer_id=e.customer_id, amount=Money(amount=e.amount, currency=e.currency),
            reason=e.reason,
        )
    return None  # the number sequence is private to this service
