"""Events published by the refunds service."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from saldo_events.envelope import BankAccount, IntegrationEvent, Money

RefundChannel = Literal["card", "mobilepay", "manual", "bank"]


class RefundRequested(IntegrationEvent):
    SERVICE = "refunds"
    refund_id: UUID
    payment_id: UUID
    customer_id: str
    channel: RefundChannel
    amount: Money
    reason: str


class RefundDrafted(IntegrationEvent):
    """A bank-channel refund waiting to be paid out as a bank payout (rule B1)."""

    SERVICE = "refunds"
    refund_id: UUID
    payment_id: UUID
    customer_id: str
    amount: Money
    reason: str
    bank_account: BankAccount | None = None


class RefundSucceeded(IntegrationEvent):
    """The money reached the customer: for a bank refund, its payout was marked paid out (B4).

    The refund's amount moves from "in progress" to "refunded" (rules P3, M6).
    """

    SERVICE = "refunds"
    refund_id: UUID
    payment_id: UUID
    customer_id: str
    channel: RefundChannel
    amount: Money
    payout_id: UUID | None = None  # the bank payout that paid it, for the bank channel
