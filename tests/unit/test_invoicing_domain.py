"""The invoice aggregates' rules, without I/O."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers, invoice_status, is_overdue
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money

DUE = date(2026, 12, 1)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def line(amount: Money, description: str = "Magazine, 12 months") -> InvoiceLine:
    return InvoiceLine(description=description, amount=amount)


def an_invoice(amount: int = 10000) -> Invoice:
    return Invoice.issue(numbers=InvoiceNumbers(business_unit="bu"), customer_id="cust",
                         lines=[line(dkk(amount))], due_date=DUE)


def test_I1_invoice_numbers_count_up_without_gaps() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    issued = [Invoice.issue(numbers=numbers, customer_id="cust", lines=[line(dkk(100))], due_date=DUE)
              for _ in range(3)]
    assert [i.number for i in issued] == [1, 2, 3] and numbers.last == 3
    assert InvoiceNumbers.create_id("bu") == numbers.id  # one sequence per business unit
    assert InvoiceNumbers.create_id("other") != numbers.id


def test_I1_a_refused_invoice_takes_no_number() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    with pytest.raises(DomainRuleViolated, match="at least one line"):
        Invoice.issue(numbers=numbers, customer_id="cust", lines=[], due_date=DUE)
    with pytest.raises(DomainRuleViolated, match="total must be positive, not -1.00 DKK"):
        Invoice.issue(numbers=numbers, customer_id="cust", due_date=DUE,
                      lines=[line(dkk(100)), line(dkk(-200), "discount")])
    assert numbers.last == 0


def test_M1_an_invoice_is_in_one_currency() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    with pytest.raises(CurrencyMismatch):
        Invoice.issue(numbers=numbers, customer_id="cust", due_date=DUE,
                      lines=[line(dkk(100)), line(Money(100, "EUR"))])
    invoice = Invoice.issue(numbers=numbers, customer_id="cust", due_date=DUE,
                            lines=[line(dkk(100)), line(dkk(250))])
    assert invoice.total == dkk(350) and invoice.currency == "DKK" and invoice.number == 1


def test_I3_credit_notes_never_exceed_what_is_left_to_credit() -> None:
    invoice = an_invoice(10000)
    invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(6000), reason="two issues missing")
    assert invoice.creditable == dkk(4000)
    with pytest.raises(DomainRuleViolated,
                       match="invoice 1 has 40.00 DKK left to credit; a credit note of 40.01 DKK"):
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(4001), reason="too much")
    with pytest.raises(DomainRuleViolated, match="not positive"):
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(0), reason="nothing")
    with pytest.raises(CurrencyMismatch):
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=Money(100, "EUR"), reason="euro")
    invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(4000), reason="the rest")
    assert invoice.creditable == dkk(0) and len(invoice.credit_notes) == 2
    assert invoice.status(paid=dkk(0)) == "credited"


@pytest.mark.parametrize(("credited", "paid", "status"), [
    (0, 0, "open"),
    (0, 1, "partially_paid"),
    (0, 10000, "paid"),
    (4000, 6000, "paid"),  # a credit note settles its part (I3)
    (4000, 5999, "partially_paid"),
    (10000, 0, "credited"),
    (10000, 10000, "credited"),  # paid, then fully credited: nothing more to pay
])
def test_I2_status_from_total_credited_and_paid(credited: int, paid: int, status: str) -> None:
    assert invoice_status(total=dkk(10000), credited=dkk(credited), paid=dkk(paid)) == status


def test_I2_I4_overdue_is_unsettled_and_past_the_due_date() -> None:
    for status in ("open", "partially_paid"):
        assert not is_overdue(status=status, due_date=DUE, today=DUE)  # the due date still counts
        assert is_overdue(status=status, due_date=DUE, today=date(2026, 12, 2))
    for settled in ("paid", "credited"):  # a credited invoice never gets a reminder
        assert not is_overdue(status=settled, due_date=DUE, today=date(2027, 6, 1))
