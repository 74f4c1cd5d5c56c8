"""Reactions to the payments and payouts services' events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saldo_events import payments, payouts
from saldo_events.envelope import IntegrationEvent
from saldo_platform.policy import Policy
from saldo_refunds.application import RefundsApplication


class FollowPayments(Policy):
    """Keeps each payment's refundable amount (rule P3) in step with the payments service."""

    name = "refunds.follow-payments"
    application: RefundsApplication

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        app = self.application
        if isinstance(event, payments.PaymentReceived):
            return app.payment_received(event.business_unit, event.payment_id, event.customer_id,
                                        event.method, event.amount.amount, event.amount.currency,
                                        event.received_at, sum(a.amount for a in event.allocations))
        if isinstance(event, payments.PaymentAllocated):
            return app.allocation_changed(event.payment_id, event.event_id, event.amount.amount)
        if isinstance(event, payments.AmountReleased):
            return app.allocation_changed(event.payment_id, event.event_id, -event.amount.amount)
        return []


class FollowPayouts(Policy):
    """A bank refund completes when its payout is marked paid out (rules B4, M6)."""

    name = "refunds.follow-payouts"
    application: RefundsApplication

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        if isinstance(event, payouts.PayoutMarkedPaid):
            return self.application.payout_paid(event.business_unit, event.refund_id, event.payout_id)
        return []
