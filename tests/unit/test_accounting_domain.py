"""The accounting domain's rules, without I/O: what each financial event books (rule A1)."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from saldo_accounting import domain
from saldo_accounting.domain import Account, Posting, PostingLine, Source, TrialBalance, credit, debit
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def booked(lines: list[PostingLine]) -> set[tuple[str, int, int]]:
    return {(str(x.account), x.debit.minor_units, x.credit.minor_units) for x in lines}


def test_A1_postings_must_balance() -> None:
    Posting.check_balanced([debit(Account.BANK, dkk(100)), credit(Account.CUSTOMER_CREDIT, dkk(100))])
    with pytest.raises(DomainRuleViolated, match="debit 1.00 DKK ≠ credit 0.99 DKK"):
        Posting.check_balanced([debit(Account.BANK, dkk(100)), credit(Account.REVENUE, dkk(99))])


def test_A1_a_posting_of_nothing_is_refused() -> None:
    """An invoice of 0.00 kr. books nothing: that is a rule violation, not an empty posting."""
    with pytest.raises(DomainRuleViolated, match="positive amount, not 0.00 DKK"):
        Posting.check_balanced(domain.invoice_issued(total=dkk(0)))
    with pytest.raises(DomainRuleViolated, match="at least one"):
        Posting.check_balanced([])


def test_A1_M1_a_posting_in_two_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        Posting.check_balanced([debit(Account.BANK, dkk(100)),
                                credit(Account.CUSTOMER_CREDIT, Money(100, "EUR"))])


def test_A1_a_negative_line_is_refused_even_if_it_balances() -> None:
    """A payment said to allocate more than it brought would credit customer credit negatively."""
    lines = domain.payment_received(amount=dkk(1000), allocations=[dkk(1500)])
    with pytest.raises(DomainRuleViolated, match="no negative amount"):
        Posting.check_balanced(lines)


def test_A1_a_payment_partly_paying_an_invoice_books_receivables_and_customer_credit() -> None:
    lines = domain.payment_received(amount=dkk(10000), allocations=[dkk(4000), dkk(3000)])
    assert booked(lines) == {("bank", 10000, 0), ("receivables", 0, 7000),
                             ("customer_credit", 0, 3000)}
    Posting.check_balanced(lines)
    assert booked(domain.payment_received(amount=dkk(500), allocations=[])) == {
        ("bank", 500, 0), ("customer_credit", 0, 500)}
    assert booked(domain.payment_received(amount=dkk(500), allocations=[dkk(500)])) == {
        ("bank", 500, 0), ("receivables", 0, 500)}


def test_A1_what_each_financial_event_books() -> None:
    amount = dkk(49900)
    assert booked(domain.invoice_issued(total=amount)) == {
        ("receivables", 49900, 0), ("revenue", 0, 49900)}
    assert booked(domain.credit_note_issued(amount=amount)) == {
        ("revenue", 49900, 0), ("receivables", 0, 49900)}
    assert booked(domain.payment_allocated(amount=amount)) == {
        ("customer_credit", 49900, 0), ("receivables", 0, 49900)}
    assert booked(domain.amount_released(amount=amount)) == {
        ("receivables", 49900, 0), ("customer_credit", 0, 49900)}
    assert booked(domain.payout_paid(amount=amount)) == {
        ("customer_credit", 49900, 0), ("bank", 0, 49900)}


def test_A1_a_posting_is_booked_once_per_source_event_and_only_if_it_balances() -> None:
    source = Source(event_id=uuid4(), event_type="InvoiceIssued", posting_date=date(2026, 11, 20))
    posting = Posting.book(business_unit="bu", source=source, customer_id="cust",
                           lines=domain.invoice_issued(total=dkk(700)))
    assert posting.id == Posting.create_id(source.event_id)  # the same event, the same posting
    assert posting.currency == "DKK" and posting.posting_date == date(2026, 11, 20)
    with pytest.raises(DomainRuleViolated):
        Posting.book(business_unit="bu", source=source, customer_id="cust",
                     lines=[debit(Account.BANK, dkk(1)), credit(Account.BANK, dkk(2))])


def test_A1_the_trial_balance_is_zero_when_every_posting_balanced() -> None:
    book = TrialBalance.of("DKK", [(Account.BANK, dkk(300), dkk(0)),
                                   (Account.CUSTOMER_CREDIT, dkk(0), dkk(300)),
                                   (Account.RECEIVABLES, dkk(700), dkk(700))])
    assert book.balances == {Account.BANK: dkk(300), Account.CUSTOMER_CREDIT: dkk(-300),
                             Account.RECEIVABLES: dkk(0)}
    assert book.total == dkk(0) and book.balanced
    assert not TrialBalance.of("DKK", [(Account.BANK, dkk(1), dkk(0))]).balanced
