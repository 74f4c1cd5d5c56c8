"""The read side of payouts: what a GET answers, from the read model (projections.py).

A command answers with the same representation, built from the aggregate it just saved
(`PayoutOut.of`), so a client never sees two shapes of one payout.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from saldo_events.envelope import BankAccount, Money
from saldo_payouts.domain import Payout, PayoutStatus
from saldo_platform.http.pages import Page, Paging, sortable_time
from saldo_platform.sql import Database

PayoutList = Literal["ready", "pending"]

LISTS: dict[PayoutList, str] = {
    # "Refunds ready for bank payout" and "Pending refunds" (rule B2, as `Payout.ready`).
    "ready": "status = 'draft' AND bank_account IS NOT NULL",
    "pending": "status = 'draft' AND bank_account IS NULL",
}


class PayoutOut(BaseModel):
    id: UUID
    refund_id: UUID
    customer_id: str
    amount: Money
    bank_account: BankAccount | None
    status: PayoutStatus
    drafted_at: datetime
    posting_date: date | None
    bank_date: date | None
    version: int

    @classmethod
    def of(cls, payout: Payout) -> PayoutOut:
        return cls(id=payout.id, refund_id=payout.refund_id, customer_id=payout.customer_id,
                   amount=Money.of(payout.amount),
                   bank_account=BankAccount(**payout.bank_account) if payout.bank_account else None,
                   status=payout.status, drafted_at=payout.created_on,
                   posting_date=payout.posting_date, bank_date=payout.bank_date,
                   version=payout.version)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PayoutOut:
        return cls(id=row["payout_id"], refund_id=row["refund_id"], customer_id=row["customer_id"],
                   amount=Money(amount=row["amount"], currency=row["currency"]),
                   bank_account=json.loads(row["bank_account"]) if row["bank_account"] else None,
                   status=row["status"], drafted_at=row["drafted_at"],
                   posting_date=row["posting_date"], bank_date=row["bank_date"],
                   version=row["version"])


async def payout(db: Database, business_unit: str, payout_id: UUID) -> PayoutOut | None:
    row = await db.fetchrow("SELECT * FROM payouts WHERE payout_id = $1 AND business_unit = $2",
                            str(payout_id), business_unit)
    return PayoutOut.from_row(row) if row else None


async def payouts(db: Database, business_unit: str, which: PayoutList, paging: Paging) -> Page[PayoutOut]:
    """One of the operators' lists, oldest draft first."""
    rows = await db.fetch(
        f"SELECT * FROM payouts WHERE business_unit = $1 AND {LISTS[which]}"
        " AND (drafted_at, payout_id) > ($2, $3) ORDER BY drafted_at, payout_id LIMIT $4",
        business_unit, *paging.after, paging.limit + 1)
    items = [PayoutOut.from_row(r) for r in rows]
    return Page[PayoutOut].of(items, paging.limit, key=lambda p: (sortable_time(p.drafted_at), str(p.id)))
