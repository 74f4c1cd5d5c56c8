"""The read side of payments: what a GET answers, from the read model (projections.py).

A command answers with the same representation, built from the aggregate it just saved
(`PaymentOut.of`), so a client never sees two shapes of one payment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from saldo_events.envelope import Money
from saldo_events.payments import PaymentMethod
from saldo_payments.domain import Payment
from saldo_platform.http.pages import Page, Paging, sortable_time
from saldo_platform.sql import Database


class PaymentOut(BaseModel):
    id: UUID
    customer_id: str
    method: PaymentMethod
    amount: Money
    allocated: int = Field(description="integer minor units of the payment's currency (rule P2)")
    unallocated: int = Field(description="integer minor units not allocated to any invoice (rule P2)")
    received_at: datetime
    provider_reference: str | None
    version: int

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(id=payment.id, customer_id=payment.customer_id, method=payment.method,
                   amount=Money.of(payment.amount), allocated=payment.allocated.minor_units,
                   unallocated=payment.unallocated.minor_units,
                   # In UTC, as the read model keeps it, so a POST and a GET answer alike.
                   received_at=payment.received_at.astimezone(UTC),
                   provider_reference=payment.provider_reference, version=payment.version)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PaymentOut:
        return cls(id=row["payment_id"], customer_id=row["customer_id"], method=row["method"],
                   amount=Money(amount=row["amount"], currency=row["currency"]),
                   allocated=row["allocated"], unallocated=row["amount"] - row["allocated"],
                   received_at=row["received_at"], provider_reference=row["provider_reference"],
                   version=row["version"])


async def payment(db: Database, business_unit: str, payment_id: UUID) -> PaymentOut | None:
    row = await db.fetchrow("SELECT * FROM payments WHERE payment_id = $1 AND business_unit = $2",
                            str(payment_id), business_unit)
    return PaymentOut.from_row(row) if row else None


async def payments(db: Database, business_unit: str, paging: Paging,
                   customer_id: str | None = None) -> Page[PaymentOut]:
    """The unit's payments (or one customer's), in the order they were received."""
    rows = await db.fetch(
        "SELECT * FROM payments WHERE business_unit = $1 AND ($2 = '' OR customer_id = $2)"
        " AND (received_at, payment_id) > ($3, $4) ORDER BY received_at, payment_id LIMIT $5",
        business_unit, customer_id or "", *paging.after, paging.limit + 1)
    items = [PaymentOut.from_row(r) for r in rows]
    return Page[PaymentOut].of(items, paging.limit,
                               key=lambda p: (sortable_time(p.received_at), str(p.id)))
