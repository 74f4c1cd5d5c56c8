"""Refunds' rules in process: the application, its policies and its read model, no servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, StoredEvent
from fastapi import FastAPI
from pydantic import ValidationError

from saldo_events import payments, refunds
from saldo_events.envelope import BankAccount
from saldo_events.envelope import Money as MoneyJSON
from saldo_events.payouts import PayoutMarkedPaid
from saldo_kernel.errors import DomainRuleViolated, NotFound
from saldo_kernel.money import Money
from saldo_platform.http.pages import BEGINNING, Paging, decode_cursor, sortable_time
from saldo_refunds import queries
from saldo_refunds.api import RequestRefund, router
from saldo_refunds.application import RefundsApplication
from saldo_refunds.domain import PaymentAccount, Refund
from saldo_refunds.integration import to_integration
from saldo_refunds.policies import FollowPayments, FollowPayouts
from saldo_refunds.projections import RefundsProjection
from saldo_refunds.queries import RefundOut
from tests.inprocess import announced, deliver, in_memory, operator, project_published, read_models, stored_v1

ACCOUNT = {"registration_number": "1234", "account_number": "0001234567"}
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def payment_received(method: str = "bank_transfer", amount: int = 49900,
                     allocated: int = 0, business_unit: str = "bu-1") -> payments.PaymentReceived:
    allocations = [payments.Allocation(invoice_id=uuid4(), amount=allocated)] if allocated else []
    return announced(payments.PaymentReceived, business_unit=business_unit, payment_id=uuid4(),
                     customer_id="alice", method=method,
                     amount=MoneyJSON(amount=amount, currency="DKK"), received_at=RECEIVED,
                     allocations=allocations)


async def a_payment(app: RefundsApplication, method: str = "bank_transfer", amount: int = 49900,
                    allocated: int = 0) -> UUID:
    """A payment refunds has heard of, as the payments topic announces it."""
    received = payment_received(method, amount, allocated)
    await deliver(FollowPayments(app, ["saldo.payments.v1"]), received)
    return received.payment_id


def refund_of(app: RefundsApplication, payment_id: UUID, minor_units: int,
              channel: Any = "bank", business_unit: str = "bu-1") -> Refund:
    with operator(business_unit):
        return app.request_refund(business_unit=business_unit, payment_id=payment_id,
                                  minor_units=minor_units, reason="subscription stopped",
                                  channel=channel, bank_account=ACCOUNT)


def account_of(app: RefundsApplication, payment_id: UUID) -> PaymentAccount:
    return app.payment_account(business_unit="bu-1", payment_id=payment_id)


# --- rules R1, P3: at most what is refundable ------------------------------------------------

async def test_R1_P3_a_refund_of_more_than_is_refundable_is_refused_in_the_operators_words() -> None:
    app = in_memory(RefundsApplication)
    payment_id = await a_payment(app, amount=49900)

    with pytest.raises(DomainRuleViolated, match=rf"^payment {payment_id} has 499.00 DKK refundable; "
                       r"a refund of 600.00 DKK is more than that$"):
        refund_of(app, payment_id, 60000)
    with pytest.raises(DomainRuleViolated, match="a refund of 0.00 DKK is not positive"):
        refund_of(app, payment_id, 0)

    account = account_of(app, payment_id)
    assert account.refundable == dkk(49900) and account.version == 1  # nothing was written


async def test_P3_refunds_in_progress_are_not_refundable_again() -> None:
    app = in_memory(RefundsApplication)
    payment_id = await a_payment(app, amount=49900, allocated=20000)  # paid an invoice at once

    refund_of(app, payment_id, 10000)
    with pytest.raises(DomainRuleViolated, match="has 199.00 DKK refundable; a refund of 199.01 DKK"):
        refund_of(app, payment_id, 19901)
    refund_of(app, payment_id, 19900)

    account = account_of(app, payment_id)
    assert (account.allocated, account.in_progress, account.refundable) == (dkk(20000), dkk(29900), dkk(0))


async def test_P3_two_operators_refunding_at_once_cannot_pay_the_customer_twice() -> None:
    app = in_memory(RefundsApplication)
    payment_id = await a_payment(app, amount=49900)
    first, second = account_of(app, payment_id), account_of(app, payment_id)
    with operator():
        one = first.request_refund(amount=dkk(30000), reason="a", channel="bank", bank_account=None)
        two = second.request_refund(amount=dkk(30000), reason="b", channel="bank", bank_account=None)

    app.save(first, one)
    with pytest.raises(IntegrityError):  # a 409 over HTTP: both checked 499.00 DKK refundable
        app.save(second, two)

    with pytest.raises(AggregateNotFoundError):
        app.repository.get(two.id)
    assert account_of(app, payment_id).refundable == dkk(19900)
    with pytest.raises(DomainRuleViolated, match="199.00 DKK refundable"):  # the retry
        refund_of(app, payment_id, 30000)


async def test_M3_a_payment_of_another_business_unit_is_not_found() -> None:
    app = in_memory(RefundsApplication)
    payment_id = await a_payment(app)

    with pytest.raises(NotFound, match=f"payment {payment_id} not found"):
        refund_of(app, payment_id, 100, business_unit="bu-2")
    with pytest.raises(NotFound):
        app.payment_account(business_unit="bu-2", payment_id=payment_id)
    assert account_of(app, payment_id).version == 1


# --- rule R2: the channel -----------------------------------------------------------------------

async def test_R2_the_channel_is_preselected_from_the_payment_method_and_may_be_overridden() -> None:
    app = in_memory(RefundsApplication)
    by_bank = await a_payment(app, method="fik")
    by_card = await a_payment(app, method="card")

    assert refund_of(app, by_bank, 100, channel=None).channel == "bank"
    with pytest.raises(DomainRuleViolated, match=rf"payment {by_card} was paid by card, which "
                       r"preselects the card refund channel \(rule R2\); the card refund channel "
                       r"is not available yet; choose channel 'bank'"):
        refund_of(app, by_card, 100, channel=None)
    assert refund_of(app, by_card, 100, channel="bank").channel == "bank"  # the operator's choice
    assert account_of(app, by_card).in_progress == dkk(100)


def test_R2_a_channel_the_product_cannot_serve_is_refused_with_why_and_never_offered() -> None:
    body = {"payment_id": str(uuid4()), "amount": 100, "reason": "x"}
    for channel in ("card", "mobilepay", "manual"):
        with pytest.raises(ValidationError) as refused:
            RequestRefund.model_validate({**body, "channel": channel})
        assert refused.value.errors()[0]["msg"] == (
            f"the {channel} refund channel is not available yet; choose channel 'bank'")
    with pytest.raises(ValidationError, match="'bank'"):
        RequestRefund.model_validate({**body, "channel": "cash"})  # not a channel at all
    assert RequestRefund.model_validate({**body, "channel": "bank"}).channel == "bank"
    assert RequestRefund.model_validate(body).channel is None  # preselected (R2)

    api = FastAPI()
    api.include_router(router, prefix="/v1")
    schemas = api.openapi()["components"]["schemas"]
    offered = json.dumps([schemas["RequestRefund"]["properties"]["channel"],
                          schemas["RefundOut"]["properties"]["channel"]])
    assert "bank" in offered
    assert not any(unbuilt in offered for unbuilt in ("card", "mobilepay", "manual"))


# --- rule B1, and what is published -----------------------------------------------------------

async def test_B1_a_bank_refund_is_drafted_as_a_bank_payout_and_published_with_who_acted() -> None:
    app = in_memory(RefundsApplication)
    payment_id = await a_payment(app)

    refund = refund_of(app, payment_id, 10000)

    assert refund.status == "drafted" and refund.version == 2
    published = [to_integration(e) for e in app.events.get(refund.id)]
    requested, drafted = published
    assert isinstance(requested, refunds.RefundRequested) and requested.channel == "bank"
    assert isinstance(drafted, refunds.RefundDrafted)
    assert drafted.amount == MoneyJSON(amount=10000, currency="DKK")
    assert drafted.bank_account == BankAccount(**ACCOUNT)
    assert drafted.actor == "api-key:test" and drafted.business_unit == "bu-1"
    assert drafted.refund_id == refund.id and drafted.payment_id == payment_id


# --- the policies -------------------------------------------------------------------------------

async def test_P3_M6_payments_events_delivered_twice_change_nothing() -> None:
    app = in_memory(RefundsApplication)
    policy = FollowPayments(app, ["saldo.payments.v1"])
    received = payment_received(amount=49900, allocated=10000)
    allocated = announced(payments.PaymentAllocated, payment_id=received.payment_id,
                          invoice_id=uuid4(), amount=MoneyJSON(amount=5000, currency="DKK"))
    released = announced(payments.AmountReleased, payment_id=received.payment_id,
                         invoice_id=uuid4(), credit_note_id=uuid4(), customer_id="alice",
                         amount=MoneyJSON(amount=2000, currency="DKK"))

    for event in (received, allocated, released):
        at = await deliver(policy, event)
        await deliver(policy, event, at)  # the same message again: the tracked offset skips it
        await deliver(policy, event)  # the relay published it again, at another offset

    account = account_of(app, received.payment_id)
    assert account.version == 3  # opened, allocated, released: once each
    assert account.allocated == dkk(10000 + 5000 - 2000)
    assert account.refundable == dkk(49900 - 13000)


async def test_B4_M6_a_paid_out_payout_completes_its_refund_once() -> None:
    app = in_memory(RefundsApplication)
    payment_id = await a_payment(app, amount=49900)
    refund = refund_of(app, payment_id, 10000)
    paid = announced(PayoutMarkedPaid, payout_id=uuid4(), refund_id=refund.id, customer_id="alice",
                     amount=MoneyJSON(amount=10000, currency="DKK"),
                     posting_date=RECEIVED.date(), bank_date=RECEIVED.date())
    policy = FollowPayouts(app, ["saldo.payouts.v1"])

    await deliver(policy, paid)
    await deliver(policy, paid)  # the payouts topic brought the news twice

    completed: Refund = app.repository.get(refund.id)
    assert completed.status == "completed" and completed.version == 3
    assert completed.payout_id == paid.payout_id
    account = account_of(app, payment_id)
    assert (account.in_progress, account.refunded, account.refundable) == (dkk(0), dkk(10000), dkk(39900))
    assert account.version == 3  # opened, reserved, settled
    succeeded = to_integration(list(app.events.get(refund.id))[-1])
    assert isinstance(succeeded, refunds.RefundSucceeded)
    assert succeeded.actor == "policy:refunds.follow-payouts" and succeeded.payout_id == paid.payout_id


async def test_B4_a_payout_of_a_refund_refunds_never_made_is_not_found() -> None:
    app = in_memory(RefundsApplication)
    paid = announced(PayoutMarkedPaid, payout_id=uuid4(), refund_id=uuid4(), customer_id="alice",
                     amount=MoneyJSON(amount=100, currency="DKK"),
                     posting_date=RECEIVED.date(), bank_date=RECEIVED.date())
    with pytest.raises(NotFound, match="is not known to refunds"):
        await deliver(FollowPayouts(app, ["saldo.payouts.v1"]), paid)


# --- the read model -----------------------------------------------------------------------------

async def test_R1_a_refund_reads_back_as_the_POST_answered_it(tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        projection = RefundsProjection(db, ["saldo.refunds.v1"])
        await projection.setup()
        app = in_memory(RefundsApplication)
        payment_id = await a_payment(app)
        refund = refund_of(app, payment_id, 10000)
        answered = RefundOut.of(refund).model_dump_json()  # what POST /v1/refunds answers

        await project_published(app, to_integration, projection)

        found = await queries.refund(db, "bu-1", refund.id)
        assert found is not None and found.model_dump_json() == answered
        assert found.status == "drafted" and found.version == 2
        assert found.amount == MoneyJSON(amount=10000, currency="DKK")
        assert await queries.refund(db, "bu-2", refund.id) is None  # rule M3


async def test_R1_refunds_list_in_the_order_they_were_requested_a_page_at_a_time(tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        projection = RefundsProjection(db, ["saldo.refunds.v1"])
        await projection.setup()
        # Ids that sort against time, and two refunds requested in the same instant.
        ids = [UUID(int=n) for n in (9, 7, 3, 5)]
        times = [RECEIVED, RECEIVED + timedelta(seconds=1), RECEIVED + timedelta(seconds=2),
                 RECEIVED + timedelta(seconds=2)]
        for refund_id, at in zip(ids, times, strict=True):
            requested = announced(refunds.RefundRequested, aggregate_id=refund_id, refund_id=refund_id,
                                  payment_id=uuid4(), customer_id="alice", channel="bank",
                                  amount=MoneyJSON(amount=100, currency="DKK"), reason="x")
            await deliver(projection, requested.model_copy(update={"occurred_at": at}))
        await deliver(projection, announced(
            refunds.RefundRequested, business_unit="bu-2", refund_id=UUID(int=1), payment_id=uuid4(),
            customer_id="bob", channel="bank", amount=MoneyJSON(amount=1, currency="DKK"), reason="y"))

        seen: list[RefundOut] = []
        page = await queries.refunds(db, "bu-1", Paging(2, BEGINNING))
        while True:
            seen += page.items
            if page.next_cursor is None:
                break
            page = await queries.refunds(db, "bu-1", Paging(2, decode_cursor(page.next_cursor)))

        assert [r.id for r in seen] == [UUID(int=9), UUID(int=7), UUID(int=3), UUID(int=5)]
        assert [sortable_time(r.requested_at) for r in seen] == [sortable_time(t) for t in times]
        assert all(r.status == "requested" for r in seen)


# --- stored events of earlier builds ----------------------------------------------------------

def test_a_payment_account_stored_before_amounts_were_money_is_read_as_money() -> None:
    """PaymentAccount.Opened is class_version 2; version 1 stored amounts and currency apart.
    Reserved always stored minor units of the payment's currency, and still does."""
    app = in_memory(RefundsApplication)
    payment_id = uuid4()
    account_id = PaymentAccount.create_id(payment_id)
    opened_v1 = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-01T10:00:00+00:00"},
        "originator_topic": "saldo_refunds.domain:PaymentAccount",
        "meta": {"actor": "policy:old"}, "business_unit": "bu-1",
        "payment_id": {"_type_": "uuid_hex", "_data_": payment_id.hex}, "customer_id": "alice",
        "method": "card", "amount": 49900, "currency": "DKK",
        "received_at": {"_type_": "datetime_iso", "_data_": "2026-11-01T09:00:00+00:00"},
        "allocated": 20000,
    }
    reserved = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-02T10:00:00+00:00"},
        "meta": {"actor": "api-key:old"},
        "refund_id": {"_type_": "uuid_hex", "_data_": uuid4().hex}, "amount": 10000,
    }
    app.recorder.insert_events([
        StoredEvent(originator_id=account_id, originator_version=1,
                    topic="saldo_refunds.domain:PaymentAccount.Opened",
                    state=json.dumps(opened_v1).encode()),
        StoredEvent(originator_id=account_id, originator_version=2,
                    topic="saldo_refunds.domain:PaymentAccount.Reserved",
                    state=json.dumps(reserved).encode()),
    ])

    account = app.payment_account(business_unit="bu-1", payment_id=payment_id)

    assert (account.amount, account.allocated) == (dkk(49900), dkk(20000))
    assert (account.in_progress, account.refundable) == (dkk(10000), dkk(19900))


def test_a_refund_stored_before_amounts_were_money_is_read_and_published_as_before() -> None:
    """Refund.Requested, .Drafted and .Succeeded are class_version 2: a version-1 history loads,
    and the relay (a rebuild, an audit replay) still publishes each event with its amount."""
    app = in_memory(RefundsApplication)
    refund_id, payment_id, payout_id = uuid4(), uuid4(), uuid4()

    def v1(version: int, name: str, **state: Any) -> StoredEvent:
        return stored_v1("saldo_refunds.domain:Refund", refund_id, version, name, **state)

    common = {"payment_id": {"_type_": "uuid_hex", "_data_": payment_id.hex}, "customer_id": "alice",
              "amount": 10000, "currency": "DKK"}
    app.recorder.insert_events([
        v1(1, "Requested", originator_topic="saldo_refunds.domain:Refund", business_unit="bu-1",
           channel="bank", reason="cancelled", bank_account=None, **common),
        v1(2, "Drafted", reason="cancelled", bank_account=None, **common),
        v1(3, "Succeeded", payout_id={"_type_": "uuid_hex", "_data_": payout_id.hex},
           channel="bank", **common),
    ])

    refund: Refund = app.repository.get(refund_id)
    assert (refund.amount, refund.status, refund.payout_id) == (dkk(10000), "completed", payout_id)
    published = [to_integration(e) for e in app.events.get(refund_id)]
    assert [type(e).__name__ for e in published] == ["RefundRequested", "RefundDrafted",
                                                     "RefundSucceeded"]
    assert {e.amount for e in published if e is not None} == {MoneyJSON(amount=10000, currency="DKK")}
