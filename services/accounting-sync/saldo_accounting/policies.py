"""Every financial event becomes a balanced posting (rule A1); drafts are never posted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saldo_accounting.application import AccountingApplication
from saldo_accounting.domain import entry
from saldo_events import invoicing, payments, payouts
from saldo_events.envelope import IntegrationEvent, Money
from saldo_platform.businessdates import business_date
from saldo_platform.policy import Policy


def lines_for(event: IntegrationEvent) -> tuple[Money, str, list[dict[str, Any]]] | None:
    """What one event books: (amount, customer, lines), or None if it books nothing."""
    if isinstance(event, invoicing.InvoiceIssued):  # VAT is split out with the invoicing issue
        return event.total, event.customer_id, entry("receivables", "revenue", event.total.amount)
    if isinstance(event, invoicing.CreditNoteIssued):
        return event.amount, event.customer_id, entry("revenue", "receivables", event.amount.amount)
    if isinstance(event, payments.PaymentReceived):
        # Money in the bank: what it paid at once settles receivables, the rest is the
        # customer's credit until it is allocated or refunded.
        allocated = sum(a.amount for a in event.allocations)
        lines = [{"account": "bank", "debit": event.amount.amount, "credit": 0}]
        if allocated:
            lines.append({"account": "receivables", "debit": 0, "credit": allocated})
        if event.amount.amount - allocated:
            lines.append({"account": "customer_credit", "debit": 0,
                          "credit": event.amount.amount - allocated})
        return event.amount, event.customer_id, lines
    if isinstance(event, payments.PaymentAllocated):
        return event.amount, "", entry("customer_credit", "receivables", event.amount.amount)
    if isinstance(event, payments.AmountReleased):
        return event.amount, event.customer_id, entry("receivables", "customer_credit", event.amount.amount)
    if isinstance(event, payouts.PayoutMarkedPaid):
        return event.amount, event.customer_id, entry("customer_credit", "bank", event.amount.amount)
    return None



class RecordPostings(Policy):
    name = "accounting.record-postings"
    application: AccountingApplication

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        booked = lines_for(event)
        if booked is None:
            return []
        money, customer_id, lines = booked
        return self.application.record_posting(
            event.business_unit, event.event_id, type(event).__name__, customer_id,
            money.currency, business_date(event.occurred_at), lines,
        )
