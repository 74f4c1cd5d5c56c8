"""Reactions to the refunds service's events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_events import refunds
from saldo_events.envelope import IntegrationEvent
from saldo_payouts.application import PayoutsApplication
from saldo_platform.policy import Policy


class DraftPayoutForRefund(Policy):
    """A bank-channel refund becomes a draft bank payout (rule B1)."""

    name = "payouts.draft-for-refund"
    application: PayoutsApplication

    def react(self, event: IntegrationEvent, processing_event: ProcessingEvent[UUID]) -> None:
        if isinstance(event, refunds.RefundDrafted):
            self.application.draft_payout(
                processing_event, business_unit=event.business_unit, refund_id=event.refund_id,
                customer_id=event.customer_id, amount=event.amount.value,
                bank_account=event.bank_account.model_dump(exclude_none=True) if event.bank_account
                else None,
            )
