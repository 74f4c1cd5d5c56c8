"""Refunds commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from saldo_platform.errors import DomainRuleViolated, NotFound
from saldo_platform.eventstore import EventStoreApplication
from saldo_refunds.domain import PaymentAccount, Refund

CHANNELS_BUILT = ("bank",)


def preselected_channel(method: str) -> str:
    """Card back to the card, MobilePay back through MobilePay, the rest by bank (rule R2)."""
    return {"card": "card", "mobilepay": "mobilepay"}.get(method, "bank")


class RefundsApplication(EventStoreApplication):
    name = "refunds"

    def request_refund(self, business_unit: str, payment_id: UUID, amount: int, reason: str,
                       channel: str | None, bank_account: dict[str, Any] | None) -> Refund:
        account: PaymentAccount | None = self.get_or_none(PaymentAccount.create_id(payment_id))
        if account is None or account.business_unit != business_unit:
            raise NotFound(f"payment {payment_id} not found (a new payment can take a moment to appear)")
        channel = channel or preselected_channel(account.method)
        if channel not in CHANNELS_BUILT:
            raise DomainRuleViolated(
                f"the {channel} refund channel is not available yet; use channel 'bank'"
            )
        refund = Refund(business_unit, payment_id, account.customer_id, amount, account.currency,
                        channel, reason, bank_account)
        account.reserve(refund.id, amount)
        refund.draft_bank_payout()
        self.save(account, refund)
        return refund

    def payment_received(self, business_unit: str, payment_id: UUID, customer_id: str, method: str,
                         amount: int, currency: str, received_at: datetime,
                         allocated: int) -> list[Any]:
        if self.get_or_none(PaymentAccount.create_id(payment_id)) is not None:
            return []
        return [PaymentAccount(business_unit, payment_id, customer_id, method, amount, currency,
                               received_at, allocated)]

    def payout_paid(self, business_unit: str, refund_id: UUID, payout_id: UUID) -> list[Any]:
        """The refund's payout was paid out: the refund completes and counts as refunded (M6)."""
        refund: Refund | None = self.get_or_none(refund_id)
        if refund is None or refund.business_unit != business_unit:
            raise NotFound(f"refund {refund_id} of payout {payout_id} is not known to refunds")
        if not refund.complete(payout_id):
            return []
        account: PaymentAccount = self.repository.get(PaymentAccount.create_id(refund.payment_id))
        account.settle(refund.id)
        return [refund, account]

    def allocation_changed(self, payment_id: UUID, source_event_id: UUID, delta: int) -> list[Any]:
        account: PaymentAccount = self.repository.get(PaymentAccount.create_id(payment_id))
        return [account] if account.note_allocation_change(source_event_id, delta) else []
