"""Payments' rules in process: the application, its policies and its read model, no servers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from saldo_events import payments as payment_events
from saldo_events.envelope import Money as MoneyJSON
from saldo_events.invoicing import CreditNoteIssued, InvoiceIssued, InvoiceLine
from saldo_events.refunds import RefundRequested
from saldo_kernel.errors import DomainRuleViolated, NotFound
from saldo_kernel.money import Money
from saldo_payments import queries
from saldo_payments.application import PaymentsApplication
from saldo_payments.domain import InvoiceAccount, Payment, PaymentMethod
from saldo_payments.integration import to_integration
from saldo_payments.policies import FollowInvoices, FollowRefunds
from saldo_payments.projections import PaymentsProjection
from saldo_payments.queries import PaymentOut
from saldo_platform.http.pages import BEGINNING, Paging, decode_cursor
from tests.inprocess import announced, deliver, in_memory, operator, project_published, read_models

RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def invoice_issued(total: int = 49900, customer: str = "alice", business_unit: str = "bu-1",
                   currency: str = "DKK") -> InvoiceIssued:
    return announced(InvoiceIssued, business_unit=business_unit, invoice_id=uuid4(), number=17,
                     customer_id=customer, total=MoneyJSON(amount=total, currency=currency),
                     due_date=date(2026, 12, 31),
                     lines=[InvoiceLine(description="Magazine, 12 months", amount=total)])


async def with_invoice(total: int = 49900, **kwargs: Any) -> tuple[PaymentsApplication, UUID]:
    """Payments, having heard of one invoice (its account is open)."""
    app = in_memory(PaymentsApplication)
    issued = invoice_issued(total, **kwargs)
    await deliver(FollowInvoices(app, ["saldo.invoicing.v1"]), issued)
    return app, issued.invoice_id


def receive(app: PaymentsApplication, amount: int, allocations: dict[UUID, int] | None = None,
            received_at: datetime = RECEIVED, customer: str = "alice",
            business_unit: str = "bu-1") -> Payment:
    with operator(business_unit):
        return app.receive_payment(
            business_unit=business_unit, customer_id=customer, method="bank_transfer",
            amount=dkk(amount), received_at=received_at, provider_reference="bank-1",
            allocations={i: dkk(a) for i, a in (allocations or {}).items()})


def account(app: PaymentsApplication, invoice_id: UUID) -> InvoiceAccount:
    found: InvoiceAccount = app.repository.get(InvoiceAccount.create_id(invoice_id))
    return found


def stored(app: PaymentsApplication) -> list[Any]:
    return [app.mapper.to_domain_event(e) for e in app.recorder.select_notifications(start=1, limit=100)]


# --- commands -----------------------------------------------------------------------------------

def test_P1_a_payment_from_the_future_is_refused_and_nothing_is_written() -> None:
    app = in_memory(PaymentsApplication)
    receive(app, 100, received_at=datetime.now(UTC) + timedelta(minutes=1))  # clock skew
    with pytest.raises(DomainRuleViolated, match="in the future"):
        receive(app, 100, received_at=datetime.now(UTC) + timedelta(minutes=6))
    assert len(stored(app)) == 1


def test_P1_the_payment_methods_are_the_contracts() -> None:
    assert get_args(PaymentMethod) == get_args(payment_events.PaymentMethod)


async def test_P2_M6_a_payment_pays_its_invoice_at_once_and_reserves_it_in_the_same_save() -> None:
    app, invoice_id = await with_invoice(49900)

    payment = receive(app, 100000, {invoice_id: 49900})

    saved: Payment = app.repository.get(payment.id)
    assert (saved.allocated, saved.unallocated) == (dkk(49900), dkk(50100))
    assert account(app, invoice_id).paid_by == {str(payment.id): dkk(49900)}
    assert account(app, invoice_id).open_amount == dkk(0)


async def test_M6_an_allocation_above_the_open_amount_writes_nothing() -> None:
    app, invoice_id = await with_invoice(49900)
    before = len(stored(app))

    with pytest.raises(DomainRuleViolated,
                       match="invoice 17 has 499.00 DKK open .*an allocation of 1,000.00 DKK is more"):
        receive(app, 100000, {invoice_id: 100000})
    loose = receive(app, 100000)
    with operator(), pytest.raises(DomainRuleViolated, match="499.00 DKK open"):
        app.allocate_payment(business_unit="bu-1", payment_id=loose.id, invoice_id=invoice_id,
                             minor_units=49901)

    assert len(stored(app)) == before + 1  # only the loose payment
    assert account(app, invoice_id).version == 1


async def test_P2_unallocated_money_is_placed_later_in_the_payments_currency() -> None:
    app, invoice_id = await with_invoice(30000)
    loose = receive(app, 50000)
    with operator():
        placed = app.allocate_payment(business_unit="bu-1", payment_id=loose.id,
                                      invoice_id=invoice_id, minor_units=20000)
    assert (placed.version, placed.allocated, placed.unallocated) == (2, dkk(20000), dkk(30000))
    assert account(app, invoice_id).open_amount == dkk(10000)


async def test_M6_M1_only_the_payers_own_invoice_in_its_currency() -> None:
    app, invoice_id = await with_invoice(30000, customer="alice")
    with pytest.raises(DomainRuleViolated, match="customer 'alice'.*customer 'bob'"):
        receive(app, 30000, {invoice_id: 30000}, customer="bob")
    app_eur, in_euro = await with_invoice(30000, currency="EUR")
    with pytest.raises(DomainRuleViolated, match="in EUR, the payment in DKK"):
        receive(app_eur, 30000, {in_euro: 30000})


async def test_M3_another_units_invoice_and_payment_are_not_found() -> None:
    app, invoice_id = await with_invoice(30000, business_unit="bu-2")
    with pytest.raises(NotFound, match="not known to payments"):
        receive(app, 30000, {invoice_id: 100})
    theirs = receive(app, 30000, business_unit="bu-2")
    with operator(), pytest.raises(NotFound):
        app.allocate_payment(business_unit="bu-1", payment_id=theirs.id, invoice_id=invoice_id,
                             minor_units=100)


# --- policies -------------------------------------------------------------------------------------

async def test_M6_an_invoice_announced_twice_opens_one_account() -> None:
    app = in_memory(PaymentsApplication)
    policy = FollowInvoices(app, ["saldo.invoicing.v1"])
    issued = invoice_issued(49900)

    await deliver(policy, issued)
    await deliver(policy, issued)  # the relay published it again, at another offset

    opened = account(app, issued.invoice_id)
    assert (opened.version, opened.total, opened.number) == (1, dkk(49900), 17)
    assert opened.created_on is not None and len(stored(app)) == 1


async def test_I3_M6_a_credit_note_delivered_twice_releases_once() -> None:
    app, invoice_id = await with_invoice(30000)
    payment = receive(app, 30000, {invoice_id: 30000})
    credit_note = announced(CreditNoteIssued, invoice_id=invoice_id, credit_note_id=uuid4(),
                            customer_id="alice", amount=MoneyJSON(amount=10000, currency="DKK"),
                            reason="two issues missing")
    policy = FollowInvoices(app, ["saldo.invoicing.v1"])

    await deliver(policy, credit_note)
    await deliver(policy, credit_note)

    released: Payment = app.repository.get(payment.id)
    assert (released.allocated, released.unallocated) == (dkk(20000), dkk(10000))
    assert (account(app, invoice_id).credited, account(app, invoice_id).open_amount) == (dkk(10000), dkk(0))
    published = [p for p in map(to_integration, stored(app)) if isinstance(p, payment_events.AmountReleased)]
    assert [(p.amount.amount, p.credit_note_id, p.actor) for p in published] == \
        [(10000, credit_note.credit_note_id, "policy:payments.follow-invoices")]


async def test_M6_P3_a_refund_delivered_twice_takes_back_a_later_allocation_once() -> None:
    app, invoice_id = await with_invoice(30000)
    loose = receive(app, 100000)
    with operator():  # refunds granted 800.00 meanwhile; payments has not heard of it yet
        app.allocate_payment(business_unit="bu-1", payment_id=loose.id, invoice_id=invoice_id,
                             minor_units=30000)
    requested = announced(RefundRequested, refund_id=uuid4(), payment_id=loose.id, customer_id="alice",
                          channel="bank", amount=MoneyJSON(amount=80000, currency="DKK"),
                          reason="overpaid")
    policy = FollowRefunds(app, ["saldo.refunds.v1"])

    await deliver(policy, requested)
    await deliver(policy, requested)

    payment: Payment = app.repository.get(loose.id)
    assert (payment.allocated, payment.unallocated, payment.placeable) == (dkk(20000), dkk(80000), dkk(0))
    assert payment.refunds == {str(requested.refund_id): dkk(80000)}
    assert account(app, invoice_id).paid_by == {str(loose.id): dkk(20000)}
    published = [p for p in map(to_integration, stored(app)) if isinstance(p, payment_events.AmountReleased)]
    assert [(p.amount.amount, p.refund_id, p.credit_note_id) for p in published] == \
        [(10000, requested.refund_id, None)]
    with operator(), pytest.raises(DomainRuleViolated, match=r"800.00 DKK of it is being refunded"):
        app.allocate_payment(business_unit="bu-1", payment_id=loose.id, invoice_id=invoice_id,
                             minor_units=1)


# --- read model -----------------------------------------------------------------------------------

async def test_P2_payments_are_listed_in_the_order_they_were_received(tmp_path: Path) -> None:
    app = in_memory(PaymentsApplication)
    # Made in another order than received; one received in Copenhagen time, before the others.
    second = receive(app, 200, received_at=RECEIVED)
    third = receive(app, 300, received_at=RECEIVED + timedelta(hours=1))
    first = receive(app, 100, received_at=datetime(2026, 11, 20, 10, 30, tzinfo=timezone(timedelta(hours=1))))
    receive(app, 400, customer="bob")
    async with read_models(tmp_path) as db:
        projection = PaymentsProjection(db, ["saldo.payments.v1"])
        await projection.setup()
        await project_published(app, to_integration, projection)

        page = await queries.payments(db, "bu-1", Paging(2, BEGINNING), customer_id="alice")
        assert page.next_cursor is not None
        rest = await queries.payments(db, "bu-1", Paging(2, decode_cursor(page.next_cursor)),
                                      customer_id="alice")
        assert rest.next_cursor is None
        assert [p.id for p in page.items + rest.items] == [first.id, second.id, third.id]
        assert len((await queries.payments(db, "bu-1", Paging(10, BEGINNING))).items) == 4
        assert (await queries.payments(db, "bu-2", Paging(10, BEGINNING))).items == []  # M3


async def test_P2_a_command_answers_exactly_what_a_get_answers_once_projected(tmp_path: Path) -> None:
    app, invoice_id = await with_invoice(30000)
    received_at = datetime(2026, 11, 20, 11, 15, 30, 123456, tzinfo=timezone(timedelta(hours=1)))
    made = receive(app, 50000, received_at=received_at)
    with operator():
        placed = app.allocate_payment(business_unit="bu-1", payment_id=made.id, invoice_id=invoice_id,
                                      minor_units=20000)
    answered = PaymentOut.of(placed).model_dump_json()
    async with read_models(tmp_path) as db:
        projection = PaymentsProjection(db, ["saldo.payments.v1", "saldo.invoicing.v1"])
        await projection.setup()
        await project_published(app, to_integration, projection)

        seen = await queries.payment(db, "bu-1", made.id)
        assert seen is not None and seen.model_dump_json() == answered
        assert await queries.payment(db, "bu-2", made.id) is None  # M3
    assert json.loads(answered) == {
        "id": str(made.id), "customer_id": "alice", "method": "bank_transfer",
        "amount": {"amount": 50000, "currency": "DKK"}, "allocated": 20000, "unallocated": 30000,
        "received_at": "2026-11-20T10:15:30.123456Z", "provider_reference": "bank-1", "version": 2}


# --- stores of earlier builds -----------------------------------------------------------------------

def test_a_payment_stored_before_amounts_were_money_is_read_as_money() -> None:
    """Payment.Received is class_version 2; version 1 stored the amounts and currency apart."""
    app = in_memory(PaymentsApplication)
    payment_id, invoice_id = uuid4(), uuid4()
    v1_state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-01T10:00:00+00:00"},
        "originator_topic": "saldo_payments.domain:Payment",
        "meta": {"actor": "api-key:old"}, "business_unit": "bu-1", "customer_id": "alice",
        "method": "fik", "amount": 100000, "currency": "DKK",
        "received_at": {"_type_": "datetime_iso", "_data_": "2026-11-01T09:00:00+00:00"},
        "provider_reference": None, "allocations": {str(invoice_id): 49900},
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=payment_id, originator_version=1, topic="saldo_payments.domain:Payment.Received",
        state=json.dumps(v1_state).encode())])

    payment: Payment = app.repository.get(payment_id)

    assert payment.amount == dkk(100000)
    assert payment.allocations == {str(invoice_id): dkk(49900)}
    assert payment.unallocated == dkk(50100) and payment.method == "fik"


def uuid_json(value: UUID) -> dict[str, str]:
    return {"_type_": "uuid_hex", "_data_": value.hex}


def test_M6_histories_of_earlier_builds_still_add_up() -> None:
    """Every event of a payment and of an invoice account as an earlier build stored them
    (amounts as integers, a currency beside some of them), read back as Money."""
    app = in_memory(PaymentsApplication)
    payment_id, invoice_id, refund_id = uuid4(), uuid4(), uuid4()
    account_id = InvoiceAccount.create_id(invoice_id)
    at = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-01T10:00:00+00:00"}, "meta": {}}
    payment_stream = [
        ("Received", {"originator_topic": "saldo_payments.domain:Payment", "business_unit": "bu-1",
                      "customer_id": "alice", "method": "fik", "amount": 100000, "currency": "DKK",
                      "received_at": at["timestamp"], "provider_reference": None, "allocations": {}}),
        ("Allocated", {"invoice_id": uuid_json(invoice_id), "amount": 30000, "currency": "DKK"}),
        ("AmountReleased", {"invoice_id": uuid_json(invoice_id), "credit_note_id": uuid_json(uuid4()),
                            "amount": 5000, "currency": "DKK", "customer_id": "alice"}),
        ("ReleasedForRefund", {"invoice_id": uuid_json(invoice_id), "refund_id": uuid_json(refund_id),
                               "amount": 5000, "currency": "DKK", "customer_id": "alice"}),
        ("RefundNoted", {"refund_id": uuid_json(refund_id), "amount": 80000}),
    ]
    account_stream = [
        ("Opened", {"originator_topic": "saldo_payments.domain:InvoiceAccount", "business_unit": "bu-1",
                    "invoice_id": uuid_json(invoice_id), "number": 17, "customer_id": "alice",
                    "currency": "DKK", "total": 30000}),
        ("Allocated", {"payment_id": uuid_json(payment_id), "amount": 30000}),
        ("Credited", {"credit_note_id": uuid_json(uuid4()), "amount": 5000}),
        ("Released", {"payment_id": uuid_json(payment_id), "amount": 10000}),
    ]
    for aggregate, originator_id, stream in (("Payment", payment_id, payment_stream),
                                              ("InvoiceAccount", account_id, account_stream)):
        app.recorder.insert_events([
            StoredEvent(originator_id=originator_id, originator_version=version,
                        topic=f"saldo_payments.domain:{aggregate}.{name}",
                        state=json.dumps({**at, **state}).encode())
            for version, (name, state) in enumerate(stream, start=1)])

    payment: Payment = app.repository.get(payment_id)
    invoice = account(app, invoice_id)

    assert (payment.allocated, payment.unallocated, payment.placeable) == (dkk(20000), dkk(80000), dkk(0))
    assert payment.refunds == {str(refund_id): dkk(80000)}
    assert (invoice.total, invoice.credited, invoice.paid_by) == (dkk(30000), dkk(5000),
                                                                  {str(payment_id): dkk(20000)})
    assert invoice.open_amount == dkk(5000)
