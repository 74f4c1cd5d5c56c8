"""Which domain events are published, and as what."""

from __future__ import annotations

from typing import Any

from saldo_events import payouts as contracts
from saldo_events.envelope import BankAccount, IntegrationEvent, Money
from saldo_payouts.domain import Payout
from saldo_platform.relay import envelope


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Payout.Drafted):
        return contracts.PayoutDrafted(
            **envelope(e), payout_id=e.originator_id, refund_id=e.refund_id,
            customer_id=e.customer_id, amount=Money.of(e.amount),
            bank_account=BankAccount(**e.bank_account) if e.bank_account else None,
        )
    if isinstance(e, Payout.MarkedPaid):
        return contracts.PayoutMarkedPaid(
            **envelope(e), payout_id=e.originator_id, refund_id=e.refund_id,
            customer_id=e.customer_id, amount=Money.of(e.amount),
            posting_date=e.posting_date, bank_date=e.bank_date,
        )
    return None
