"""The read side of refunds: what a GET answers.

A refund is read from the read model (projections.py); a command answers with the same
representation, built from the aggregate it just saved (`RefundOut.of`), so a client never sees
two shapes of one refund. What is refundable is read from the payment's account itself, the
aggregate every refund reserves on, so it is never behind (rule P3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from saldo_events.envelope import Amount, CurrencyCode, Money
from saldo_platform.http.pages import Page, Paging, sortable_time
from saldo_platform.sql import Database
from saldo_refunds.domain import AvailableChannel, PaymentAccount, Refund, RefundStatus


class RefundOut(BaseModel):
    id: UUID
    payment_id: UUID
    customer_id: str
    channel: AvailableChannel
    amount: Money
    reason: str
    status: RefundStatus
    requested_at: datetime
    version: int

    @classmethod
    def of(cls, refund: Refund) -> RefundOut:
        return cls(id=refund.id, payment_id=refund.payment_id, customer_id=refund.customer_id,
                   channel=refund.channel, amount=Money.of(refund.amount), reason=refund.reason,
                   status=refund.status, requested_at=refund.created_on, version=refund.version)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RefundOut:
        return cls(id=row["refund_id"], payment_id=row["payment_id"], customer_id=row["customer_id"],
                   channel=row["channel"], amount=Money(amount=row["amount"], currency=row["currency"]),
                   reason=row["reason"], status=row["status"], requested_at=row["requested_at"],
                   version=row["version"])


class RefundableOut(BaseModel):
    """One payment's money as the refunds service counts it, in minor units of `currency`
    (rules P3, M6): amount − allocated = refundable + in_progress + refunded."""

    payment_id: UUID
    currency: CurrencyCode
    amount: Amount
    allocated: Amount
    in_progress: Amount
    refunded: Amount
    refundable: Amount

    @classmethod
    def of(cls, account: PaymentAccount) -> RefundableOut:
        return cls(payment_id=account.payment_id, currency=account.currency,
                   amount=account.amount.minor_units, allocated=account.allocated.minor_units,
                   in_progress=account.in_progress.minor_units,
                   refunded=account.refunded.minor_units,
                   refundable=account.refundable.minor_units)


async def refund(db: Database, business_unit: str, refund_id: UUID) -> RefundOut | None:
    row = await db.fetchrow("SELECT * FROM refunds WHERE refund_id = $1 AND business_unit = $2",
                            str(refund_id), business_unit)
    return RefundOut.from_row(row) if row else None


async def refunds(db: Database, business_unit: str, paging: Paging) -> Page[RefundOut]:
    """The business unit's refunds, in the order they were requested."""
    rows = await db.fetch(
        "SELECT * FROM refunds WHERE business_unit = $1"
        " AND (requested_at, refund_id) > ($2, $3) ORDER BY requested_at, refund_id LIMIT $4",
        business_unit, *paging.after, paging.limit + 1)
    items = [RefundOut.from_row(r) for r in rows]
    return Page[RefundOut].of(items, paging.limit,
                              key=lambda r: (sortable_time(r.requested_at), str(r.id)))
