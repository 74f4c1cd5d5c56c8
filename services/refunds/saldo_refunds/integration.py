"""Which domain events are published, and as what."""

from __future__ import annotations

from typing import Any

from saldo_events import refunds as contracts
from saldo_events.envelope import BankAccount, IntegrationEvent, Money
from saldo_platform.relay import envelope
from saldo_refunds.domain import Refund


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Refund.Requested):
        return contracts.RefundRequested(
            **envelope(e), refund_id=e.originator_id, payment_id=e.payment_id,
            customer_id=e.customer_id, channel=e.channel, reason=e.reason,
            amount=Money.of(e.amount),
        )
    if isinstance(e, Refund.Drafted):
        return contracts.RefundDrafted(
            **envelope(e), refund_id=e.originator_id, payment_id=e.payment_id,
            customer_id=e.customer_id, reason=e.reason, amount=Money.of(e.amount),
            bank_account=BankAccount(**e.bank_account) if e.bank_account else None,
        )
    if isinstance(e, Refund.Succeeded):
        return contracts.RefundSucceeded(
            **envelope(e), refund_id=e.originator_id, payment_id=e.payment_id,
            customer_id=e.customer_id, channel=e.channel, amount=Money.of(e.amount),
            payout_id=e.payout_id,
        )
    return None  # the payment accounts are private to this service
