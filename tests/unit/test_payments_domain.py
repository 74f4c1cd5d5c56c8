"""The payment and invoice-account rules, without I/O: scenarios an operator would recognise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money
from saldo_payments.domain import (
    InvoiceAccount,
    Payment,
    check_allocations,
    check_received_at,
    credit_invoice,
    keep_for_refund,
)

RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def a_payment(amount: int = 10000, allocations: dict[str, Money] | None = None) -> Payment:
    return Payment(business_unit="bu", customer_id="cust", method="bank_transfer", amount=dkk(amount),
                   received_at=RECEIVED, provider_reference=None, allocations=allocations or {})


def an_invoice_account(total: int = 49900, customer: str = "cust",
                       invoice_id: UUID | None = None) -> InvoiceAccount:
    return InvoiceAccount(business_unit="bu", invoice_id=invoice_id or uuid4(), number=17,
                          customer_id=customer, total=dkk(total))


def test_P1_a_payment_is_not_received_in_the_future() -> None:
    check_received_at(RECEIVED + timedelta(minutes=5), now=RECEIVED)  # clock skew allowed
    with pytest.raises(DomainRuleViolated, match="in the future"):
        check_received_at(RECEIVED + timedelta(minutes=5, seconds=1), now=RECEIVED)


def test_P2_allocations_cannot_exceed_the_payment() -> None:
    check_allocations(dkk(1000), {"a": dkk(600), "b": dkk(400)})
    with pytest.raises(DomainRuleViolated,
                       match="the payment of 10.00 DKK has 4.00 DKK left for invoice b; "
                             "an allocation of 5.00 DKK is more than that"):
        check_allocations(dkk(1000), {"a": dkk(600), "b": dkk(500)})
    with pytest.raises(DomainRuleViolated, match="0.00 DKK is not positive"):
        check_allocations(dkk(1000), {"a": dkk(0)})
    with pytest.raises(CurrencyMismatch):
        check_allocations(dkk(1000), {"a": Money(100, "EUR")})
    payment = a_payment(1000, {"a": dkk(600)})
    assert (payment.allocated, payment.unallocated) == (dkk(600), dkk(400))
    with pytest.raises(DomainRuleViolated, match="4.00 DKK left to allocate; an allocation of 4.01 DKK"):
        payment.allocate(uuid4(), dkk(401))
    with pytest.raises(DomainRuleViolated, match="not positive"):
        payment.allocate(uuid4(), dkk(-1))


def test_I3_a_payment_releases_once_per_credit_note() -> None:
    invoice_id, credit_note = uuid4(), uuid4()
    payment = a_payment(10000, {str(invoice_id): dkk(10000)})
    assert payment.unallocated == dkk(0)
    assert payment.release(invoice_id=invoice_id, credit_note_id=credit_note, amount=dkk(4000)) == dkk(4000)
    # The same credit note again releases nothing.
    assert payment.release(invoice_id=invoice_id, credit_note_id=credit_note, amount=dkk(4000)) == dkk(0)
    assert payment.unallocated == dkk(4000)
    # Never more than was allocated.
    assert payment.release(invoice_id=invoice_id, credit_note_id=uuid4(), amount=dkk(99999)) == dkk(6000)


def test_M6_an_invoice_is_never_allocated_above_its_open_amount() -> None:
    account = an_invoice_account(49900)
    with pytest.raises(DomainRuleViolated,
                       match=r"invoice 17 has 499.00 DKK open .*an allocation of 1,000.00 DKK is more"):
        account.allocate(payment_id=uuid4(), customer_id="cust", amount=dkk(100000))
    first, second = uuid4(), uuid4()
    account.allocate(payment_id=first, customer_id="cust", amount=dkk(30000))
    with pytest.raises(DomainRuleViolated, match="199.00 DKK open"):
        account.allocate(payment_id=second, customer_id="cust", amount=dkk(19901))
    assert account.note_credit(credit_note := uuid4(), dkk(9900))
    assert not account.note_credit(credit_note, dkk(9900))  # the same credit note delivered twice
    assert account.open_amount == dkk(49900 - 9900 - 30000)
    account.allocate(payment_id=second, customer_id="cust", amount=dkk(10000))
    assert account.open_amount == dkk(0)
    assert account.paid_by == {str(first): dkk(30000), str(second): dkk(10000)}
    with pytest.raises(DomainRuleViolated, match="invoice 17 is paid in full"):
        account.allocate(payment_id=second, customer_id="cust", amount=dkk(1))
    account.release(first, dkk(5000))
    assert account.open_amount == dkk(5000)


def test_M6_M1_money_goes_only_to_open_invoices_of_the_same_customer_and_currency() -> None:
    account = an_invoice_account(customer="alice")
    with pytest.raises(DomainRuleViolated, match="customer 'alice'.*customer 'bob'"):
        account.allocate(payment_id=uuid4(), customer_id="bob", amount=dkk(100))
    with pytest.raises(DomainRuleViolated, match="in DKK, the payment in EUR"):
        account.allocate(payment_id=uuid4(), customer_id="alice", amount=Money(100, "EUR"))
    account.note_credit(uuid4(), dkk(49900))
    with pytest.raises(DomainRuleViolated, match="fully credited"):
        account.allocate(payment_id=uuid4(), customer_id="alice", amount=dkk(1))
    assert account.paid_by == {}


def test_I3_a_credit_note_releases_from_the_payments_in_the_order_they_paid() -> None:
    invoice_id = uuid4()
    account = an_invoice_account(30000, invoice_id=invoice_id)
    older, newer = a_payment(10000), a_payment(20000)
    for payment, part in ((older, dkk(10000)), (newer, dkk(15000))):
        account.allocate(payment_id=payment.id, customer_id="cust", amount=part)
        payment.allocate(invoice_id, part)
    credit_note = uuid4()

    credit_invoice(account, [older, newer], credit_note_id=credit_note, amount=dkk(12000))
    credit_invoice(account, [older, newer], credit_note_id=credit_note, amount=dkk(12000))  # twice

    assert (older.allocated, newer.allocated) == (dkk(0), dkk(13000))
    assert account.paid_by == {str(older.id): dkk(0), str(newer.id): dkk(13000)}
    assert (account.credited, account.open_amount) == (dkk(12000), dkk(5000))


def test_M6_P3_money_promised_to_a_refund_is_not_allocated_again() -> None:
    payment = a_payment(10000)
    refund = uuid4()
    assert payment.note_refund(refund, dkk(6000)) == {}  # nothing was placed meanwhile
    assert payment.note_refund(refund, dkk(6000)) == {}  # the same request delivered twice
    assert payment.unallocated == dkk(10000) and payment.placeable == dkk(4000)
    assert payment.refunds == {str(refund): dkk(6000)}
    with pytest.raises(DomainRuleViolated, match=r"60.00 DKK of it is being refunded\)"):
        payment.allocate(uuid4(), dkk(4001))


def test_M6_a_refund_takes_back_what_an_allocation_spent_before_payments_heard_of_it() -> None:
    older, newer = uuid4(), uuid4()
    payment = a_payment(10000)
    payment.allocate(older, dkk(3000))
    payment.allocate(newer, dkk(5000))  # meanwhile refunds granted a refund of the 10000 unallocated
    released = payment.note_refund(uuid4(), dkk(6000))
    assert released == {str(newer): dkk(4000)}  # the newest allocation gives back the shortfall
    assert payment.allocations == {str(older): dkk(3000), str(newer): dkk(1000)}
    assert payment.placeable == dkk(0) and payment.unallocated == dkk(6000)
    assert payment.note_refund(uuid4(), dkk(3000)) == {str(newer): dkk(1000), str(older): dkk(2000)}
    assert payment.unallocated == dkk(9000) and payment.being_refunded == dkk(9000)


def test_M6_the_invoice_gives_back_what_the_refund_takes_from_its_allocation() -> None:
    invoice_id = uuid4()
    account = an_invoice_account(8000, invoice_id=invoice_id)
    payment = a_payment(10000)
    account.allocate(payment_id=payment.id, customer_id="cust", amount=dkk(8000))
    payment.allocate(invoice_id, dkk(8000))

    keep_for_refund(payment, [account], refund_id=(refund := uuid4()), amount=dkk(5000))
    keep_for_refund(payment, [account], refund_id=refund, amount=dkk(5000))  # delivered twice

    assert payment.allocations == {str(invoice_id): dkk(5000)}
    assert account.paid_by == {str(payment.id): dkk(5000)} and account.open_amount == dkk(3000)
