"""Invoices, their numbers and credit notes. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, TypedDict
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money, upcast_amounts

InvoiceStatus = Literal["open", "partially_paid", "paid", "credited"]


class InvoiceLine(TypedDict):
    description: str
    amount: Money


def lines_total(lines: list[InvoiceLine]) -> Money:
    """What the lines add up to; lines in two currencies are refused (rule M1)."""
    if not lines:
        raise DomainRuleViolated("an invoice needs at least one line")
    result = lines[0]["amount"]
    for line in lines[1:]:
        result += line["amount"]
    return result


def invoice_status(*, total: Money, credited: Money, paid: Money) -> InvoiceStatus:
    """open, partially_paid, paid or credited (rule I2); a credit note settles its part (I3).

    What is paid is the payments service's to know; the caller passes it in.
    """
    if credited >= total:
        return "credited"
    if paid + credited >= total:
        return "paid"
    if paid.is_positive:
        return "partially_paid"
    return "open"


def is_overdue(*, status: InvoiceStatus, due_date: date, today: date) -> bool:
    """Unsettled and past its due date: the invoice reminders are for (rules I2, I4).

    `today` is the business unit's business date (rule M2). On the due date itself the invoice
    is not yet overdue; a paid or credited invoice never is.
    """
    return status in ("open", "partially_paid") and due_date < today


class InvoiceNumbers(SaldoAggregate):
    """The business unit's invoice number sequence, saved with each invoice: no gaps (rule I1)."""

    @staticmethod
    def create_id(business_unit: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:invoice-numbers:{business_unit}")

    class Started(SaldoAggregate.Created):
        """The unit's first invoice is being numbered."""

    @event(Started)
    def __init__(self, *, business_unit: str) -> None:
        self.business_unit = business_unit
        self.last = 0

    class NumberTaken(SaldoAggregate.Event):
        """The next number went to an invoice saved in the same transaction."""

    @event(NumberTaken)
    def take(self) -> None:
        self.last += 1


@dataclass(frozen=True)
class CreditNote:
    """A credit note of an invoice: what it credited and why (rule I3)."""

    amount: Money
    reason: str


class Invoice(SaldoAggregate):
    """An invoice to one customer: numbered lines in one currency, due on a business date (I1)."""

    @classmethod
    def issue(cls, *, numbers: InvoiceNumbers, customer_id: str, lines: list[InvoiceLine],
              due_date: date) -> Invoice:
        """Takes the unit's next number (rule I1) for lines that add up to a positive total.

        The caller saves `numbers` together with the invoice, so a number is never lost.
        """
        total = lines_total(lines)
        if not total.is_positive:
            raise DomainRuleViolated(f"an invoice's total must be positive, not {total}")
        numbers.take()
        invoice: Invoice = cls(business_unit=numbers.business_unit, number=numbers.last,
                               customer_id=customer_id, lines=lines, due_date=due_date)
        return invoice

    class Issued(SaldoAggregate.Created):
        class_version = 2
        number: int
        customer_id: str
        lines: list[InvoiceLine]
        due_date: date

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Version 1 kept integer line amounts and the invoice's currency beside them.
            currency = state.pop("currency")
            state["lines"] = [{**line, "amount": Money(line["amount"], currency)}
                              for line in state["lines"]]

    @event(Issued)
    def __init__(self, *, business_unit: str, number: int, customer_id: str,
                 lines: list[InvoiceLine], due_date: date) -> None:
        self.business_unit = business_unit
        self.number = number
        self.customer_id = customer_id
        self.lines = lines
        self.due_date = due_date
        self.total = lines_total(lines)
        self.credited = Money.zero(self.total.currency)
        self.credit_notes: dict[UUID, CreditNote] = {}

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def creditable(self) -> Money:
        """What is left to credit: the total minus every credit note so far (rule I3)."""
        return self.total - self.credited

    def status(self, *, paid: Money) -> InvoiceStatus:
        return invoice_status(total=self.total, credited=self.credited, paid=paid)

    def issue_credit_note(self, *, credit_note_id: UUID, amount: Money, reason: str) -> None:
        """Credit part or all of the invoice; never more than is left to credit (rule I3)."""
        amount.check_positive_at_most(self.creditable, "a credit note of",
                                      f"invoice {self.number} has {{limit}} left to credit")
        self._credit(credit_note_id=credit_note_id, amount=amount, customer_id=self.customer_id,
                     reason=reason)

    class CreditNoteIssued(SaldoAggregate.Event):
        class_version = 2
        credit_note_id: UUID
        amount: Money
        customer_id: str
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(CreditNoteIssued)
    def _credit(self, *, credit_note_id: UUID, amount: Money, customer_id: str, reason: str) -> None:
        self.credited += amount
        self.credit_notes[credit_note_id] = CreditNote(amount=amount, reason=reason)
