"""Reactions to other services' events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_events import invoicing, refunds
from saldo_events.envelope import IntegrationEvent
from saldo_payments.application import PaymentsApplication
from saldo_platform.policy import Policy


class FollowInvoices(Policy):
    """Each invoice's account: opened when it is issued, lowered by its credit notes, whose
    amount is released from the payments that paid it (rules M6, I3).

    One policy for both events: they come in the invoice's order on one partition, so a credit
    note never arrives before the account it lowers.
    """

    name = "payments.follow-invoices"
    application: PaymentsApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        if isinstance(event, invoicing.InvoiceIssued):
            self.application.invoice_issued(
                processing_event, business_unit=event.business_unit, invoice_id=event.invoice_id,
                number=event.number, customer_id=event.customer_id, total=event.total.value)
        elif isinstance(event, invoicing.CreditNoteIssued):
            self.application.release_for_credit_note(
                processing_event, invoice_id=event.invoice_id, credit_note_id=event.credit_note_id,
                amount=event.amount.value)


class FollowRefunds(Policy):
    """Money promised to a refund is no longer placed on invoices (rule M6)."""

    name = "payments.follow-refunds"
    application: PaymentsApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        if isinstance(event, refunds.RefundRequested):
            self.application.refund_requested(
                processing_event, payment_id=event.payment_id, refund_id=event.refund_id,
                amount=event.amount.value)
