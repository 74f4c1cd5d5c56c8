"""Reactions to the refunds service's events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saldo_events import refunds
from saldo_events.envelope import IntegrationEvent
from saldo_payouts.application import PayoutsApplication
from saldo_platform.policy import Policy


class DraftPayoutForRefund(Policy):
    """A bank-channel refund becomes a draft bank payout (rule B1)."""

    name = "payouts.draft-for-refund"
    application: PayoutsApplication

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        if isinstance(event, refunds.RefundDrafted):
            return self.application.draft_payout(
                event.business_unit, event.refund_id, event.customer_id, event.amount.amount,
                event.amount.currency,
                event.bank_account.model_dump(exclude_none=True) if event.bank_account else None,
            )
        return []
