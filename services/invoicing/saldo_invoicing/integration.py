"""Which domain events are published, and as what (libs/events contracts)."""

from __future__ import annotations

from typing import Any

from saldo_events import invoicing as contracts
from saldo_events.envelope import IntegrationEvent, Money
from saldo_invoicing.domain import Invoice, lines_total
from saldo_platform.relay import envelope


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Invoice.Issued):
        return contracts.InvoiceIssued(
            **envelope(e), invoice_id=e.originator_id, number=e.number,
            customer_id=e.customer_id, total=Money.of(lines_total(e.lines)), due_date=e.due_date,
            lines=[contracts.InvoiceLine(description=line["description"],
                                         amount=line["amount"].minor_units) for line in e.lines],
        )
    if isinstance(e, Invoice.CreditNoteIssued):
        return contracts.CreditNoteIssued(
            **envelope(e), invoice_id=e.originator_id, credit_note_id=e.credit_note_id,
            customer_id=e.customer_id, amount=Money.of(e.amount), reason=e.reason,
        )
    return None  # the number sequence is private to this service
