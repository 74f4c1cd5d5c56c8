"""The aggregates' rules, without I/O: scenarios an operator would recognise."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from saldo_accounting.domain import Posting, entry
from saldo_accounting.policies import lines_for
from saldo_events import payments as payment_events
from saldo_events.envelope import Money
from saldo_invoicing.domain import Invoice, InvoiceNumbers
from saldo_payments.domain import Payment, check_allocations
from saldo_payouts.domain import Payout
from saldo_platform.errors import Conflict, DomainRuleViolated
from saldo_refunds.application import preselected_channel
from saldo_refunds.domain import PaymentAccount

RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def an_invoice(amount: int = 10000) -> Invoice:
    return Invoice("bu", 1, "cust", "DKK", [{"description": "issue", "amount": amount}], date(2026, 12, 1))


def test_invoice_numbers_count_up_without_gaps() -> None:  # rule I1
    numbers = InvoiceNumbers("bu")
    taken = []
    for _ in range(3):
        numbers.take()
        taken.append(numbers.last)
    assert taken == [1, 2, 3]
    assert InvoiceNumbers.create_id("bu") == numbers.id  # one sequence per business unit
    assert InvoiceNumbers.create_id("other") != numbers.id


def test_credit_notes_never_exceed_what_is_left_to_credit() -> None:  # rule I3
    invoice = an_invoice(10000)
    invoice.issue_credit_note(uuid4(), 6000, "two issues missing")
    assert invoice.creditable == 4000
    with pytest.raises(DomainRuleViolated, match="4000 DKK left to credit"):
        invoice.issue_credit_note(uuid4(), 4001, "too much")
    with pytest.raises(DomainRuleViolated):
        invoice.issue_credit_note(uuid4(), 0, "nothing")
    invoice.issue_credit_note(uuid4(), 4000, "the rest")
    assert invoice.creditable == 0 and len(invoice.credit_notes) == 2


def test_a_payment_releases_once_per_credit_note() -> None:  # rules I3, P2
    invoice_id, credit_note = uuid4(), uuid4()
    payment = Payment("bu", "cust", "card", 10000, "DKK", RECEIVED, None, {str(invoice_id): 10000})
    assert payment.unallocated == 0
    assert payment.release(invoice_id, credit_note, 4000) == 4000
    assert payment.release(invoice_id, credit_note, 4000) == 0  # the same credit note again
    assert payment.unallocated == 4000
    assert payment.release(invoice_id, uuid4(), 99999) == 6000  # never more than was allocated


def test_allocations_cannot_exceed_the_payment() -> None:  # rule P2
    with pytest.raises(DomainRuleViolated, match="more than the payment"):
        check_allocations(1000, {"a": 600, "b": 500})
    payment = Payment("bu", "cust", "fik", 1000, "DKK", RECEIVED, None, {"a": 600})
    with pytest.raises(DomainRuleViolated, match="400 DKK unallocated"):
        payment.allocate(uuid4(), 401)


def test_refundable_is_unallocated_minus_refunds_in_progress() -> None:  # rules P3, R1
    account = PaymentAccount("bu", uuid4(), "cust", "card", 10000, "DKK", RECEIVED, allocated=10000)
    assert account.refundable == 0
    released = uuid4()
    assert account.note_allocation_change(released, -3000)
    assert not account.note_allocation_change(released, -3000)  # the same event delivered twice
    assert account.refundable == 3000
    account.reserve(uuid4(), 2000)
    assert account.refundable == 1000
    with pytest.raises(DomainRuleViolated, match="1000 DKK refundable"):
        account.reserve(uuid4(), 1001)
    with pytest.raises(DomainRuleViolated):
        account.reserve(uuid4(), -5)


def test_refund_channel_is_preselected_from_the_payment_method() -> None:  # rule R2
    assert preselected_channel("card") == "card"
    assert preselected_channel("mobilepay") == "mobilepay"
    for method in ("betalingsservice", "fik", "bank_transfer", "manual"):
        assert preselected_channel(method) == "bank"


def test_a_payout_is_marked_paid_out_once() -> None:  # rules B1, B2, B4
    with_account = Payout("bu", uuid4(), "cust", 5000, "DKK", {"iban": "DK5000400440116243"})
    without = Payout("bu", uuid4(), "cust", 5000, "DKK", None)
    assert with_account.ready and not without.ready  # ready list vs pending refunds
    with_account.mark_paid_out(date(2026, 11, 22))
    assert with_account.status == "paid_out" and not with_account.ready
    assert with_account.posting_date == with_account.bank_date == date(2026, 11, 22)
    with pytest.raises(Conflict):
        with_account.mark_paid_out(date(2026, 11, 23))


def test_postings_must_balance() -> None:  # rule A1
    Posting.check_balanced(entry("bank", "customer_credit", 100))
    with pytest.raises(DomainRuleViolated):
        Posting.check_balanced([{"account": "bank", "debit": 100, "credit": 0},
                                {"account": "revenue", "debit": 0, "credit": 99}])


def test_a_payment_partly_paying_an_invoice_books_receivables_and_customer_credit() -> None:  # A1
    event = payment_events.PaymentReceived(
        event_id=uuid4(), business_unit="bu", aggregate_id=uuid4(), aggregate_version=1,
        occurred_at=RECEIVED, actor="t", correlation_id="c", payment_id=uuid4(),
        customer_id="cust", method="fik", amount=Money(amount=10000, currency="DKK"),
        received_at=RECEIVED,
        allocations=[payment_events.Allocation(invoice_id=uuid4(), amount=7000)],
    )
    booked = lines_for(event)
    assert booked is not None
    _, _, lines = booked
    assert {(x["account"], x["debit"], x["credit"]) for x in lines} == {
        ("bank", 10000, 0), ("receivables", 0, 7000), ("customer_credit", 0, 3000)}
    Posting.check_balanced(lines)
