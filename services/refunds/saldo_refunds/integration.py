"""Which domain events are published, and as what."""

from __future__ import annotations

from typing import Any

from saldo_events import refunds as contracts
from saldo_events.envelope import BankAccount, IntegrationEvent, Money
from saldo_platform.eventstore import event_class
from saldo_platform.relay import envelope
from saldo_refunds.domain import Refund

Drafted = event_class(Refund, "Drafted")
Requested = event_class(Refund, "Requested")
Succeeded = event_class(Refund, "Succeeded")


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Requested):
        return contracts.RefundRequested(
            **envelope(e), refund_id=e.originator_id, payment_id=e.payment_id,
            customer_id=e.customer_id, channel=e.channel, reason=e.reason,
            amount=Money(amount=e.amount, currency=e.currency),
        )
    if isinstance(e, Drafted):
        return contracts.RefundDrafted(
            **envelope(e), refund_id=e.originator_id, payment_id=e.payment_id,
            customer_id=e.customer_id, reason=e.reason,
            amount=Money(amount=e.amount, currency=e.currency),
            bank_account=BankAccount(**e.bank_account) if e.bank_account else None,
        )
    if isinstance(e, Succeeded):
        return contracts.RefundSucceeded(
            **envelope(e), refund_id=e.originator_id, payment_id=e.payment_id,
            customer_id=e.customer_id, channel=e.channel,
            amount=Money(amount=e.amount, currency=e.currency), payout_id=e.payout_id,
        )
    return None  # the payment accounts are private to this service
