"""Postings. No I/O here."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_platform.errors import DomainRuleViolated
from saldo_platform.eventstore import SaldoAggregate


class Posting(SaldoAggregate):
    """A balanced double-entry posting made from one financial event (rule A1)."""

    @staticmethod
    def create_id(source_event_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:posting:{source_event_id}")

    @staticmethod
    def check_balanced(lines: list[dict[str, Any]]) -> None:
        debit = sum(line.get("debit", 0) for line in lines)
        credit = sum(line.get("credit", 0) for line in lines)
        if debit != credit or debit <= 0:
            raise DomainRuleViolated(f"a posting must balance: debit {debit} ≠ credit {credit}")

    @event("Recorded")
    def __init__(self, business_unit: str, source_event_id: UUID, source_event_type: str,
                 customer_id: str, currency: str, posting_date: date,
                 lines: list[dict[str, Any]]) -> None:
        self.business_unit = business_unit
        self.source_event_id = source_event_id
        self.source_event_type = source_event_type
        self.customer_id = customer_id
        self.currency = currency
        self.posting_date = posting_date
        self.lines = lines


def entry(debit_account: str, credit_account: str, amount: int) -> list[dict[str, Any]]:
    return [{"account": debit_account, "debit": amount, "credit": 0},
            {"account": credit_account, "debit": 0, "credit": amount}]
