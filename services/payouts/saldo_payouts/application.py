"""Payouts commands."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from saldo_payouts.domain import Payout
from saldo_platform.businessdates import today
from saldo_platform.eventstore import EventStoreApplication


class PayoutsApplication(EventStoreApplication):
    name = "payouts"

    def draft_payout(self, business_unit: str, refund_id: UUID, customer_id: str, amount: int,
                     currency: str, bank_account: dict[str, Any] | None) -> list[Any]:
        if self.get_or_none(Payout.create_id(refund_id)) is not None:
            return []  # one payout per refund, however often the refund is announced
        return [Payout(business_unit, refund_id, customer_id, amount, currency, bank_account)]

    def mark_paid_out(self, business_unit: str, payout_id: UUID) -> Payout:
        payout: Payout = self.get_owned(payout_id, business_unit, Payout)
        payout.mark_paid_out(today())
        self.save(payout)
        return payout
