"""Reactions to other services' events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        app = self.application
        if isinstance(event, invoicing.InvoiceIssued):
            return app.invoice_issued(event.business_unit, event.invoice_id, event.number,
                                      event.customer_id, event.total.currency, event.total.amount)
        if isinstance(event, invoicing.CreditNoteIssued):
            return app.release_for_credit_note(event.invoice_id, event.credit_note_id,
                                               event.amount.amount)
        return []


class FollowRefunds(Policy):
    """Money promised to a refund is no longer placed on invoices (rule M6)."""

    name = "payments.follow-refunds"
    application: PaymentsApplication

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        if isinstance(event, refunds.RefundRequested):
            return self.application.refund_requested(event.payment_id, event.refund_id,
                                                     event.amount.amount)
        return []
