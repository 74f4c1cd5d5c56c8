"""Invoices and credit notes. No I/O here."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_platform.errors import DomainRuleViolated
from saldo_platform.eventstore import SaldoAggregate


class InvoiceNumbers(SaldoAggregate):
    """The business unit's invoice number sequence, saved with each invoice: no gaps (rule I1)."""

    @staticmethod
    def create_id(business_unit: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:invoice-numbers:{business_unit}")

    @event("Started")
    def __init__(self, business_unit: str) -> None:
        self.business_unit = business_unit
        self.last = 0

    @event("NumberTaken")
    def take(self) -> None:
        self.last += 1


class Invoice(SaldoAggregate):
    @event("Issued")
    def __init__(self, business_unit: str, number: int, customer_id: str, currency: str,
                 lines: list[dict[str, Any]], due_date: date) -> None:
        self.business_unit = business_unit
        self.number = number
        self.customer_id = customer_id
        self.currency = currency
        self.lines = lines
        self.due_date = due_date
        self.total = sum(int(line["amount"]) for line in lines)
        self.credited = 0
        self.credit_notes: list[UUID] = []

    @property
    def creditable(self) -> int:
        return self.total - self.credited

    def issue_credit_note(self, credit_note_id: UUID, amount: int, reason: str) -> None:
        """Credit part or all of the invoice; never more than is left to credit (rule I3)."""
        if amount <= 0:
            raise DomainRuleViolated("a credit note's amount must be positive")
        if amount > self.creditable:
            raise DomainRuleViolated(
                f"invoice {self.number} has {self.creditable} {self.currency} left to credit; "
                f"a credit note of {amount} is more than that"
            )
        self._credit(credit_note_id, amount, self.currency, self.customer_id, reason)

    @event("CreditNoteIssued")
    def _credit(self, credit_note_id: UUID, amount: int, currency: str, customer_id: str,
                reason: str) -> None:
        self.credited += amount
        self.credit_notes.append(credit_note_id)
