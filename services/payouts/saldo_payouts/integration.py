"""Which domain events are published, and as what."""

from __future__ import annotations

from typing import Any

from saldo_events import payouts as contracts
from saldo_events.envelope import BankAccount, IntegrationEvent, Money
from saldo_payouts.domain import Payout
from saldo_platform.eventstore import event_class
from saldo_platform.relay import envelope

Drafted = event_class(Payout, "Drafted")
MarkedPaid = event_class(Payout, "MarkedPaid")


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Drafted):
        return contracts.PayoutDrafted(
            **envelope(e), payout_id=e.originator_id, refund_id=e.refund_id,
            customer_id=e.customer_id, amount=Money(amount=e.amount, currency=e.currency),
            bank_account=BankAccount(**e.bank_account) if e.bank_account else None,
        )
    if isinstance(e, MarkedPaid):
        return contracts.PayoutMarkedPaid(
            **envelope(e), payout_id=e.originator_id, refund_id=e.refund_id,
            customer_id=e.customer_id, amount=Money(amount=e.amount, currency=e.currency),
            posting_date=e.posting_date, bank_date=e.bank_date,
        )
    return None
