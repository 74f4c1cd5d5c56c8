"""The read side of accounting: postings and the trial balance, from the ledger (projections.py).

Amounts are integer minor units, as in the posting lines published (`PostingRecorded`).
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, Field

from saldo_accounting.domain import Account, Posting, TrialBalance
from saldo_events.envelope import Amount, CurrencyCode
from saldo_kernel.money import Money
from saldo_platform.http.pages import Page, Paging, sortable_time
from saldo_platform.sql import Database, Row


class PostingLineOut(BaseModel):
    account: Account
    debit: Amount = 0
    credit: Amount = 0


class PostingOut(BaseModel):
    id: UUID
    source_event_id: UUID
    source_event_type: str
    customer_id: str
    currency: CurrencyCode
    posting_date: date
    posted_at: datetime = Field(description="when the posting was recorded; the list's order")
    lines: list[PostingLineOut]

    @classmethod
    def of(cls, posting: Posting) -> PostingOut:
        return cls(id=posting.id, source_event_id=posting.source_event_id,
                   source_event_type=posting.source_event_type, customer_id=posting.customer_id,
                   currency=posting.currency, posting_date=posting.posting_date,
                   posted_at=posting.created_on,
                   lines=[PostingLineOut(account=line.account, debit=line.debit.minor_units,
                                         credit=line.credit.minor_units) for line in posting.lines])

    @classmethod
    def from_rows(cls, lines: list[Row]) -> PostingOut:
        """One posting from its rows in `posting_lines`, in line order."""
        first = lines[0]
        return cls(id=first["posting_id"], source_event_id=first["source_event_id"],
                   source_event_type=first["source_event_type"], customer_id=first["customer_id"],
                   currency=first["currency"], posting_date=first["posting_date"],
                   posted_at=first["posted_at"],
                   lines=[PostingLineOut(account=r["account"], debit=r["debit"], credit=r["credit"])
                          for r in lines])


class CurrencyBalanceOut(BaseModel):
    accounts: dict[Account, int] = Field(description="each account's debit − credit, minor units")
    total: int = Field(description="always 0 (rule A1)")


class TrialBalanceOut(BaseModel):
    currencies: dict[str, CurrencyBalanceOut]
    balanced: bool

    @classmethod
    def of(cls, books: list[TrialBalance]) -> TrialBalanceOut:
        return cls(
            currencies={book.currency: CurrencyBalanceOut(
                accounts={a: b.minor_units for a, b in book.balances.items()},
                total=book.total.minor_units) for book in books},
            balanced=all(book.balanced for book in books))


async def postings(db: Database, business_unit: str, paging: Paging,
                   source_event_id: str | None = None) -> Page[PostingOut]:
    """In the order they were recorded, ties by id; or only the posting of one source event."""
    rows = await db.fetch(
        "SELECT * FROM posting_lines WHERE business_unit = $1 AND posting_id IN ("
        "SELECT posting_id FROM posting_lines WHERE line_no = 0 AND business_unit = $1"
        " AND ($2 = '' OR source_event_id = $2) AND (posted_at, posting_id) > ($3, $4)"
        " ORDER BY posted_at, posting_id LIMIT $5)"
        " ORDER BY posted_at, posting_id, line_no",
        business_unit, source_event_id or "", *paging.after, paging.limit + 1)
    by_posting: dict[str, list[Row]] = {}
    for row in rows:
        by_posting.setdefault(row["posting_id"], []).append(row)
    items = [PostingOut.from_rows(lines) for lines in by_posting.values()]
    return Page[PostingOut].of(items, paging.limit,
                               key=lambda p: (sortable_time(p.posted_at), str(p.id)))


async def trial_balance(db: Database, business_unit: str) -> TrialBalanceOut:
    """Each account's balance per currency; each currency's total is zero (rule A1)."""
    rows = await db.fetch(
        "SELECT currency, account, SUM(debit) AS debit, SUM(credit) AS credit FROM posting_lines"
        " WHERE business_unit = $1 GROUP BY currency, account ORDER BY currency, account",
        business_unit)
    sums: dict[str, list[tuple[Account, Money, Money]]] = {}
    for r in rows:
        c = r["currency"]  # PostgreSQL sums BIGINT as NUMERIC: back to integer minor units
        sums.setdefault(c, []).append(
            (Account(r["account"]), Money(int(r["debit"]), c), Money(int(r["credit"]), c)))
    return TrialBalanceOut.of([TrialBalance.of(c, accounts) for c, accounts in sums.items()])
