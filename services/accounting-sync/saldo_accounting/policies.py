"""Reactions to invoicing's, payments' and payouts' events: each financial event is posted."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_accounting.application import AccountingApplication
from saldo_accounting.domain import Source
from saldo_events import invoicing, payments, payouts
from saldo_events.envelope import IntegrationEvent
from saldo_kernel.money import Money
from saldo_platform.businessdates import business_date
from saldo_platform.policy import Policy


class RecordPostings(Policy):
    """Every financial event becomes a balanced posting (rule A1); a payout draft is not
    posted, only its being marked paid out (rules B1, B4)."""

    name = "accounting.record-postings"
    application: AccountingApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        app, unit = self.application, event.business_unit
        source = Source(event_id=event.event_id, event_type=type(event).__name__,
                        posting_date=business_date(event.occurred_at))
        if isinstance(event, invoicing.InvoiceIssued):
            app.post_invoice_issued(processing_event, business_unit=unit, source=source,
                                    customer_id=event.customer_id, total=event.total.value)
        elif isinstance(event, invoicing.CreditNoteIssued):
            app.post_credit_note_issued(processing_event, business_unit=unit, source=source,
                                        customer_id=event.customer_id, amount=event.amount.value)
        elif isinstance(event, payments.PaymentReceived):
            currency = event.amount.currency  # allocations are in the payment's currency
            app.post_payment_received(
                processing_event, business_unit=unit, source=source, customer_id=event.customer_id,
                amount=event.amount.value,
                allocations=[Money(a.amount, currency) for a in event.allocations])
        elif isinstance(event, payments.PaymentAllocated):
            app.post_payment_allocated(processing_event, business_unit=unit, source=source,
                                       amount=event.amount.value)
        elif isinstance(event, payments.AmountReleased):
            app.post_amount_released(processing_event, business_unit=unit, source=source,
                                     customer_id=event.customer_id, amount=event.amount.value)
        elif isinstance(event, payouts.PayoutMarkedPaid):
            # The payout states its own posting date (rule B4).
            app.post_payout_paid(processing_event, business_unit=unit,
                                 source=replace(source, posting_date=event.posting_date),
                                 customer_id=event.customer_id, amount=event.amount.value)
