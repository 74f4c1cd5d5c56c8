"""Reactions to the payments and payouts services' events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_events import payments, payouts
from saldo_events.envelope import IntegrationEvent
from saldo_kernel.money import Money, total
from saldo_platform.policy import Policy
from saldo_refunds.application import RefundsApplication


class FollowPayments(Policy):
    """Keeps each payment's refundable amount (rule P3) in step with the payments service."""

    name = "refunds.follow-payments"
    application: RefundsApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        app = self.application
        if isinstance(event, payments.PaymentReceived):
            currency = event.amount.currency
            app.payment_received(
                processing_event, business_unit=event.business_unit, payment_id=event.payment_id,
                customer_id=event.customer_id, method=event.method, amount=event.amount.value,
                received_at=event.received_at,
                allocated=total([Money(a.amount, currency) for a in event.allocations], currency))
        elif isinstance(event, payments.PaymentAllocated):
            app.allocation_changed(processing_event, payment_id=event.payment_id,
                                   source_event_id=event.event_id, delta=event.amount.value)
        elif isinstance(event, payments.AmountReleased):
            app.allocation_changed(processing_event, payment_id=event.payment_id,
                                   source_event_id=event.event_id, delta=-event.amount.value)


class FollowPayouts(Policy):
    """A bank refund completes when its payout is marked paid out (rules B4, M6)."""

    name = "refunds.follow-payouts"
    application: RefundsApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        if isinstance(event, payouts.PayoutMarkedPaid):
            self.application.payout_paid(processing_event, business_unit=event.business_unit,
                                         refund_id=event.refund_id, payout_id=event.payout_id)
