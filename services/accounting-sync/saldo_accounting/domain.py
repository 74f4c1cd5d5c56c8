"""Postings: the chart of accounts, what each financial event books, and the trial balance.

No I/O here. Every financial event becomes one balanced double-entry posting (rule A1); the
functions below say which lines each kind of event books, in Money.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money, total


class Account(StrEnum):
    """The chart of accounts every business unit books on (rule A1)."""

    RECEIVABLES = "receivables"
    """What customers owe on issued invoices (an asset): debited when invoiced, credited when paid."""

    REVENUE = "revenue"
    """What was earned: credited when an invoice is issued, debited back by a credit note."""

    VAT = "vat"
    """VAT owed to the tax authority (split out of revenue with the invoicing issue; unused yet)."""

    BANK = "bank"
    """Money in the business unit's bank account: debited when paid in, credited when paid out."""

    CUSTOMER_CREDIT = "customer_credit"
    """Money that customers paid and that no invoice holds: to be allocated or refunded."""

    REFUNDS_PAYABLE = "refunds_payable"
    """Refunds owed to customers but not yet paid out (unused yet: drafts are never posted, B1)."""


@dataclass(frozen=True)
class PostingLine:
    """One line of a posting: an amount on the debit or the credit side of one account."""

    account: Account
    debit: Money
    credit: Money


def debit(account: Account, amount: Money) -> PostingLine:
    return PostingLine(account, amount, Money.zero(amount.currency))


def credit(account: Account, amount: Money) -> PostingLine:
    return PostingLine(account, Money.zero(amount.currency), amount)


# --- what each financial event books (rule A1) ---

def invoice_issued(*, total: Money) -> list[PostingLine]:
    """The customer owes the invoice total, and it is earned (VAT is split out later)."""
    return [debit(Account.RECEIVABLES, total), credit(Account.REVENUE, total)]


def credit_note_issued(*, amount: Money) -> list[PostingLine]:
    """A credit note takes back revenue and what the customer owes (rule I3)."""
    return [debit(Account.REVENUE, amount), credit(Account.RECEIVABLES, amount)]


def payment_received(*, amount: Money, allocations: Sequence[Money]) -> list[PostingLine]:
    """Money in the bank: what it paid at once settles receivables, the rest is the customer's
    credit until it is allocated or refunded (rules P2, M6)."""
    allocated = total(list(allocations), amount.currency)
    lines = [debit(Account.BANK, amount)]
    if allocated:
        lines.append(credit(Account.RECEIVABLES, allocated))
    if amount - allocated:
        lines.append(credit(Account.CUSTOMER_CREDIT, amount - allocated))
    return lines


def payment_allocated(*, amount: Money) -> list[PostingLine]:
    """The customer's credit pays an invoice (rule P2)."""
    return [debit(Account.CUSTOMER_CREDIT, amount), credit(Account.RECEIVABLES, amount)]


def amount_released(*, amount: Money) -> list[PostingLine]:
    """Money paid against an invoice is detached from it: the customer's credit again (rule I3)."""
    return [debit(Account.RECEIVABLES, amount), credit(Account.CUSTOMER_CREDIT, amount)]


def payout_paid(*, amount: Money) -> list[PostingLine]:
    """A bank payout has left the bank: the customer's credit is paid back (rule B4).

    Its draft was never posted (rule B1); only marking it paid out books anything.
    """
    return [debit(Account.CUSTOMER_CREDIT, amount), credit(Account.BANK, amount)]


@dataclass(frozen=True)
class Source:
    """The financial event a posting books: one posting per event id; its business date is
    the posting date (rule M2)."""

    event_id: UUID
    event_type: str
    posting_date: date


class Posting(SaldoAggregate):
    """A balanced double-entry posting made from one financial event (rule A1)."""

    @staticmethod
    def create_id(source_event_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:posting:{source_event_id}")

    @staticmethod
    def check_balanced(lines: Sequence[PostingLine]) -> None:
        """Rule A1: debits equal credits, in one currency (else CurrencyMismatch), no amount
        is negative, and something is booked."""
        if not lines:
            raise DomainRuleViolated("a posting books at least one debit and one credit")
        currency = lines[0].debit.currency
        debits = total([line.debit for line in lines], currency)
        credits = total([line.credit for line in lines], currency)
        for line in lines:
            if line.debit.minor_units < 0 or line.credit.minor_units < 0:
                raise DomainRuleViolated(
                    f"a posting line books no negative amount: {line.account} has debit"
                    f" {line.debit}, credit {line.credit}")
        if debits != credits:
            raise DomainRuleViolated(f"a posting must balance: debit {debits} ≠ credit {credits}")
        if not debits.is_positive:
            raise DomainRuleViolated(f"a posting books a positive amount, not {debits}")

    @classmethod
    def book(cls, *, business_unit: str, source: Source, customer_id: str,
             lines: list[PostingLine]) -> Posting:
        """The posting of `source`, if it balances (rule A1)."""
        cls.check_balanced(lines)
        posting: Posting = cls(business_unit=business_unit, source_event_id=source.event_id,
                               source_event_type=source.event_type, customer_id=customer_id,
                               posting_date=source.posting_date, lines=lines)
        return posting

    class Recorded(SaldoAggregate.Created):
        class_version = 2
        source_event_id: UUID
        source_event_type: str
        customer_id: str
        posting_date: date
        lines: list[PostingLine]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Version 1 stored one currency and integer debits and credits per line.
            currency = state.pop("currency")
            state["lines"] = [
                PostingLine(Account(line["account"]), Money(line.get("debit", 0), currency),
                            Money(line.get("credit", 0), currency))
                for line in state["lines"]
            ]

        @property
        def currency(self) -> str:
            return self.lines[0].debit.currency

    @event(Recorded)
    def __init__(self, *, business_unit: str, source_event_id: UUID, source_event_type: str,
                 customer_id: str, posting_date: date, lines: list[PostingLine]) -> None:
        self.business_unit = business_unit
        self.source_event_id = source_event_id
        self.source_event_type = source_event_type
        self.customer_id = customer_id
        self.posting_date = posting_date
        self.lines = lines

    @property
    def currency(self) -> str:
        return self.lines[0].debit.currency


@dataclass(frozen=True)
class TrialBalance:
    """One currency's accounts, each with its balance: debit − credit (rule A1)."""

    currency: str
    balances: dict[Account, Money]

    @classmethod
    def of(cls, currency: str, sums: Iterable[tuple[Account, Money, Money]]) -> TrialBalance:
        """From each account's summed (debit, credit)."""
        return cls(currency, {account: debits - credits for account, debits, credits in sums})

    @property
    def total(self) -> Money:
        """Zero when every posting balanced (rule A1)."""
        return total(list(self.balances.values()), self.currency)

    @property
    def balanced(self) -> bool:
        return not self.total
