"""The refund and payment-account aggregates' rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money
from saldo_refunds.domain import PaymentAccount, Refund, preselected_channel

RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def an_account(method: str = "fik", amount: int = 10000, allocated: int = 0) -> PaymentAccount:
    return PaymentAccount(business_unit="bu", payment_id=uuid4(), customer_id="cust", method=method,
                          amount=dkk(amount), received_at=RECEIVED, allocated=dkk(allocated))


def test_P3_R1_refundable_is_unallocated_minus_refunds_in_progress() -> None:
    account = an_account("card", 10000, allocated=10000)
    assert account.refundable == dkk(0)
    released = uuid4()
    assert account.note_allocation_change(source_event_id=released, delta=dkk(-3000))
    assert not account.note_allocation_change(source_event_id=released, delta=dkk(-3000))  # twice
    assert account.refundable == dkk(3000)
    account.reserve(refund_id=uuid4(), amount=dkk(2000))
    assert account.refundable == dkk(1000)
    with pytest.raises(DomainRuleViolated, match="10.00 DKK refundable; a refund of 10.01 DKK"):
        account.reserve(refund_id=uuid4(), amount=dkk(1001))
    with pytest.raises(DomainRuleViolated, match="not positive"):
        account.reserve(refund_id=uuid4(), amount=dkk(-5))
    with pytest.raises(DomainRuleViolated, match="not positive"):
        account.reserve(refund_id=uuid4(), amount=dkk(0))
    assert account.refundable == dkk(1000)


def test_M1_a_payment_in_DKK_is_not_refunded_or_allocated_in_EUR() -> None:
    account = an_account(amount=10000)
    with pytest.raises(CurrencyMismatch):
        account.reserve(refund_id=uuid4(), amount=Money(100, "EUR"))
    with pytest.raises(CurrencyMismatch):
        account.note_allocation_change(source_event_id=uuid4(), delta=Money(100, "EUR"))
    assert account.refundable == dkk(10000) and account.version == 1


def test_M6_B4_a_completed_refund_counts_as_refunded_once() -> None:
    account = an_account("fik", 10000)
    refund = account.request_refund(amount=dkk(4000), reason="overpaid", channel="bank",
                                    bank_account=None)
    assert refund.status == "drafted"  # a bank refund is a draft bank payout at once (B1)
    assert (account.in_progress, account.refunded, account.refundable) == (dkk(4000), dkk(0), dkk(6000))
    payout = uuid4()
    assert refund.complete(payout_id=payout) and refund.status == "completed"
    assert account.settle(refund_id=refund.id)
    assert (account.in_progress, account.refunded, account.refundable) == (dkk(0), dkk(4000), dkk(6000))
    assert not refund.complete(payout_id=payout)  # PayoutMarkedPaid delivered twice
    assert not account.settle(refund_id=refund.id)
    assert account.refunded == dkk(4000)
    requested = Refund(business_unit="bu", payment_id=account.payment_id, customer_id="cust",
                       amount=dkk(100), channel="bank", reason="x", bank_account=None)
    with pytest.raises(DomainRuleViolated, match="only a drafted bank refund"):
        requested.complete(payout_id=uuid4())


def test_R2_refund_channel_is_preselected_from_the_payment_method() -> None:
    assert preselected_channel("card") == "card"
    assert preselected_channel("mobilepay") == "mobilepay"
    for method in ("betalingsservice", "fik", "bank_transfer", "manual"):
        assert preselected_channel(method) == "bank"


def test_R2_a_channel_the_product_cannot_pay_through_is_refused_with_the_reason() -> None:
    card = an_account("card", 10000)
    with pytest.raises(DomainRuleViolated, match=r"paid by card, which preselects the card refund "
                       r"channel \(rule R2\); the card refund channel is not available yet; "
                       r"choose channel 'bank'"):
        card.request_refund(amount=dkk(100), reason="x", channel=None, bank_account=None)
    for channel in ("card", "mobilepay", "manual"):
        with pytest.raises(DomainRuleViolated, match=f"^the {channel} refund channel is not available yet"):
            card.request_refund(amount=dkk(100), reason="x", channel=channel, bank_account=None)
    assert card.refundable == dkk(10000)  # nothing reserved by the refusals
    overridden = card.request_refund(amount=dkk(100), reason="x", channel="bank", bank_account=None)
    assert overridden.channel == "bank"  # the operator overrides the preselection (R2)
    by_bank = an_account("bank_transfer").request_refund(amount=dkk(100), reason="x", channel=None,
                                                         bank_account=None)
    assert by_bank.channel == "bank"
