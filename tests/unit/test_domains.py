"""The aggregates' rules, without I/O: scenarios an operator would recognise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from saldo_payments.domain import InvoiceAccount, Payment, check_allocations, check_received_at
from saldo_kernel.errors import Conflict, DomainRuleViolated

RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


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
    with pytest.raises(DomainRuleViolated, match="4.00 DKK left to allocate"):
        payment.allocate(uuid4(), 401)


def an_invoice_account(total: int = 49900, customer: str = "cust") -> InvoiceAccount:
    return InvoiceAccount("bu", uuid4(), 17, customer, "DKK", total)


def test_an_invoice_is_never_allocated_above_its_open_amount() -> None:  # rule M6
    account = an_invoice_account(49900)
    with pytest.raises(DomainRuleViolated, match=r"invoice 17 has 499.00 DKK open .*1,000.00 DKK"):
        account.allocate(uuid4(), "cust", "DKK", 100000)
    first, second = uuid4(), uuid4()
    account.allocate(first, "cust", "DKK", 30000)
    with pytest.raises(DomainRuleViolated, match="199.00 DKK open"):
        account.allocate(second, "cust", "DKK", 19901)
    assert account.note_credit(credit_note := uuid4(), 9900)
    assert not account.note_credit(credit_note, 9900)  # the same credit note delivered twice
    assert account.open_amount == 49900 - 9900 - 30000
    account.allocate(second, "cust", "DKK", 10000)
    assert account.open_amount == 0 and account.paid_by == {str(first): 30000, str(second): 10000}
    with pytest.raises(DomainRuleViolated, match="invoice 17 is paid in full"):
        account.allocate(second, "cust", "DKK", 1)
    account.release(first, 5000)
    assert account.open_amount == 5000


def test_money_goes_only_to_open_invoices_of_the_same_customer_and_currency() -> None:  # M6, M1
    account = an_invoice_account(customer="alice")
    with pytest.raises(DomainRuleViolated, match="customer 'alice'.*customer 'bob'"):
        account.allocate(uuid4(), "bob", "DKK", 100)
    with pytest.raises(DomainRuleViolated, match="in DKK, the payment in EUR"):
        account.allocate(uuid4(), "alice", "EUR", 100)
    account.note_credit(uuid4(), 49900)
    with pytest.raises(DomainRuleViolated, match="fully credited"):
        account.allocate(uuid4(), "alice", "DKK", 1)
    assert account.paid_by == {}


def test_a_payment_is_not_received_in_the_future() -> None:  # rule P1
    check_received_at(RECEIVED + timedelta(minutes=5), now=RECEIVED)  # clock skew allowed
    with pytest.raises(DomainRuleViolated, match="in the future"):
        check_received_at(RECEIVED + timedelta(minutes=5, seconds=1), now=RECEIVED)


def test_money_promised_to_a_refund_is_not_allocated_again() -> None:  # rules M6, P3
    payment = Payment("bu", "cust", "bank_transfer", 10000, "DKK", RECEIVED, None, {})
    refund = uuid4()
    assert payment.note_refund(refund, 6000) == {}  # nothing was placed meanwhile
    assert payment.note_refund(refund, 6000) == {}  # the same request delivered twice
    assert payment.unallocated == 10000 and payment.placeable == 4000
    with pytest.raises(DomainRuleViolated, match="60.00 DKK of it is being refunded"):
        payment.allocate(uuid4(), 4001)


def test_a_refund_takes_back_what_an_allocation_spent_before_payments_heard_of_it() -> None:  # M6
    older, newer = uuid4(), uuid4()
    payment = Payment("bu", "cust", "bank_transfer", 10000, "DKK", RECEIVED, None, {})
    payment.allocate(older, 3000)
    payment.allocate(newer, 5000)  # meanwhile refunds granted a refund of the 10000 unallocated
    released = payment.note_refund(uuid4(), 6000)
    assert released == {str(newer): 4000}  # the newest allocation gives back the shortfall
    assert payment.allocations == {str(older): 3000, str(newer): 1000}
    assert payment.placeable == 0 and payment.unallocated == 6000
    assert payment.note_refund(uuid4(), 3000) == {str(newer): 1000, str(older): 2000}
    assert payment.unallocated == 9000 and sum(payment.refunds.values()) == 9000
