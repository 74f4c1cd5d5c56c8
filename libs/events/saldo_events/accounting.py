"""Events published by the accounting-sync service."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from saldo_events.envelope import Amount, Contract, CurrencyCode, IntegrationEvent

Account = Literal[
    "receivables", "revenue", "vat", "bank", "customer_credit", "refunds_payable"
]


class PostingLine(Contract):
    account: Account
    debit: Amount = 0
    credit: Amount = 0


class PostingRecorded(IntegrationEvent):
    """A balanced double-entry posting made from one financial event (rule A1)."""

    SERVICE = "accounting-sync"
    posting_id: UUID
    source_event_id: UUID
    source_event_type: str
    customer_id: str
    currency: CurrencyCode
    posting_date: date
    lines: list[PostingLine]
