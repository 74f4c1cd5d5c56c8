"""Events published by the payouts service."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from saldo_events.envelope import BankAccount, IntegrationEvent, Money


class PayoutDrafted(IntegrationEvent):
    SERVICE = "payouts"
    payout_id: UUID
    refund_id: UUID
    customer_id: str
    amount: Money
    bank_account: BankAccount | None = None


class PayoutMarkedPaid(IntegrationEvent):
    """The draft state ends and the payout goes to the accounting (rule B4)."""

    SERVICE = "payouts"
    payout_id: UUID
    refund_id: UUID
    customer_id: str
    amount: Money
    posting_date: date
    bank_date: date
