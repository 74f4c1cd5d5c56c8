"""Payouts commands, and the reaction to a bank refund (one method per command)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_kernel.money import Money
from saldo_payouts.domain import BankAccount, Payout
from saldo_platform.businessdates import today
from saldo_platform.eventstore import EventStoreApplication


class PayoutsApplication(EventStoreApplication):
    name = "payouts"

    def mark_paid_out(self, *, business_unit: str, payout_id: UUID) -> Payout:
        payout: Payout = self.get_owned(payout_id, business_unit, Payout)
        payout.mark_paid_out(today=today())
        self.save(payout)
        return payout

    # --- reactions to other services' events (policies.py) ---

    def draft_payout(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                     refund_id: UUID, customer_id: str, amount: Money,
                     bank_account: BankAccount | None) -> None:
        if self.get_or_none(Payout.create_id(refund_id)) is not None:
            return  # one payout per refund, however often the refund is announced
        processing_event.collect_events(Payout(
            business_unit=business_unit, refund_id=refund_id, customer_id=customer_id,
            amount=amount, bank_account=bank_account))
