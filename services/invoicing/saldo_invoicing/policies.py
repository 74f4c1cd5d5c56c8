"""Reactions to the payments service's events: what is paid on each invoice (rules I2, I3)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_events import payments
from saldo_events.envelope import IntegrationEvent
from saldo_invoicing.application import InvoicingApplication
from saldo_kernel.money import Money
from saldo_platform.policy import Policy


class FollowPayments(Policy):
    """Payments' allocations and releases, applied to the invoices they concern.

    A release caused by a credit note keeps the invoice settled; any other release (an
    operator's, or one made for a refund) reopens it (I3), so reminders resume (I4). A copy of a
    payments event (published again, at a new offset) changes nothing: the invoice remembers
    which payments events it followed.
    """

    name = "invoicing.follow-payments"
    application: InvoicingApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        app = self.application
        if isinstance(event, payments.PaymentReceived):
            paid: dict[UUID, int] = {}  # one change per invoice, however the lines were split
            for allocation in event.allocations:
                paid[allocation.invoice_id] = paid.get(allocation.invoice_id, 0) + allocation.amount
            for invoice_id, amount in paid.items():
                app.apply_payment(processing_event, business_unit=event.business_unit,
                                  invoice_id=invoice_id, payment_id=event.payment_id,
                                  amount=Money(amount, event.amount.currency),
                                  payments_event_id=event.event_id)
        elif isinstance(event, payments.PaymentAllocated):
            app.apply_payment(processing_event, business_unit=event.business_unit,
                              invoice_id=event.invoice_id, payment_id=event.payment_id,
                              amount=event.amount.value, payments_event_id=event.event_id)
        elif isinstance(event, payments.AmountReleased):
            app.release(processing_event, business_unit=event.business_unit,
                        invoice_id=event.invoice_id, payment_id=event.payment_id,
                        amount=event.amount.value, credit_note_id=event.credit_note_id,
                        reason=event.reason or (f"released for refund {event.refund_id}"
                                                if event.refund_id else "released without a credit note"),
                        payments_event_id=event.event_id)
