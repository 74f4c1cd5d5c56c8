"""Invoicing's rules in process: the application, its read model and its routes, no servers.

Invoicing has no policy: it only reads payments' events, into its read model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from eventsourcing.persistence import StoredEvent

from saldo_events import invoicing as invoice_events
from saldo_events import payments as payment_events
from saldo_events.envelope import Money as MoneyJSON
from saldo_invoicing import queries
from saldo_invoicing.api import router
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers
from saldo_invoicing.integration import to_integration
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_invoicing.queries import InvoiceOut
from saldo_kernel.errors import DomainRuleViolated, NotFound, PreconditionFailed
from saldo_kernel.money import Money
from saldo_platform.http.app import create_api
from saldo_platform.http.auth import ApiKeys
from saldo_platform.http.idempotency import IdempotencyStore
from saldo_platform.http.pages import BEGINNING, Paging, decode_cursor
from saldo_platform.sql import Database
from tests.inprocess import (
    announced,
    deliver,
    in_memory,
    operator,
    project_published,
    published,
    read_models,
    register_customer,
    set_up_business_unit,
    stored_v1,
)

DUE = date(2026, 12, 1)


def lines(*amounts: int, currency: str = "DKK") -> list[InvoiceLine]:
    return [InvoiceLine(description=f"issue {n}", amount=Money(a, currency))
            for n, a in enumerate(amounts, 1)]


def issue(app: InvoicingApplication, *amounts: int, unit: str = "bu-1",
          customer: str = "alice") -> Invoice:
    """An invoice to a registered customer of a set-up unit (a repeated PUT writes nothing)."""
    set_up_business_unit(app, unit)
    register_customer(app, unit, customer)
    with operator(unit):
        return app.issue_invoice(business_unit=unit, customer_id=customer, lines=lines(*amounts),
                                 due_date=DUE)


@pytest.fixture
async def read_model(tmp_path: Path) -> AsyncIterator[tuple[Database, InvoicesProjection]]:
    async with read_models(tmp_path) as db:
        projection = InvoicesProjection(db, ["saldo.invoicing.v1"])
        await projection.setup()
        yield db, projection


def test_I1_each_unit_numbers_its_invoices_without_gaps() -> None:
    app = in_memory(InvoicingApplication)
    assert [issue(app, 100).number for _ in range(3)] == [1, 2, 3]
    with operator(), pytest.raises(DomainRuleViolated, match="total must be positive"):
        app.issue_invoice(business_unit="bu-1", customer_id="alice", lines=lines(100, -100),
                          due_date=DUE)
    assert issue(app, 100).number == 4  # the refused invoice took no number
    assert issue(app, 100, unit="bu-2").number == 1  # each business unit has its own sequence (M3)


def test_I1_numbering_continues_from_a_snapshot_of_the_sequence() -> None:
    app = in_memory(InvoicingApplication)  # a snapshot every 100 numbers
    for _ in range(100):
        issue(app, 100)
    assert app.snapshots is not None
    snapshot = list(app.snapshots.get(InvoiceNumbers.create_id("bu-1"), desc=True, limit=1))
    assert [s.originator_version for s in snapshot] == [100]  # Started + 99 NumberTaken
    assert issue(app, 100).number == 101


def test_I3_a_credit_note_credits_at_most_what_is_left_and_honours_if_match() -> None:
    app = in_memory(InvoicingApplication)
    invoice = issue(app, 30000)
    with operator():
        credited = app.issue_credit_note(business_unit="bu-1", invoice_id=invoice.id,
                                         minor_units=10000, reason="one issue missing",
                                         expected_version=1)
        assert credited.credited == Money(10000, "DKK") and credited.version == 2
        with pytest.raises(PreconditionFailed, match="at version 2, not 1"):
            app.issue_credit_note(business_unit="bu-1", invoice_id=invoice.id, minor_units=100,
                                  reason="stale", expected_version=1)
        with pytest.raises(DomainRuleViolated, match="has 200.00 DKK left to credit; a credit "
                                                     "note of 200.01 DKK is more than that"):
            app.issue_credit_note(business_unit="bu-1", invoice_id=invoice.id, minor_units=20001,
                                  reason="too much")
        with pytest.raises(NotFound):  # another unit's invoice is not there for it (M3)
            app.issue_credit_note(business_unit="bu-2", invoice_id=invoice.id, minor_units=100,
                                  reason="not ours")
    stored: Invoice = app.repository.get(invoice.id)
    assert stored.version == 2 and stored.creditable == Money(20000, "DKK")


def test_M3_the_events_carry_who_acted_and_are_published_in_minor_units() -> None:
    app = in_memory(InvoicingApplication)
    invoice = issue(app, 30000, 19900)
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=invoice.id, minor_units=100,
                              reason="late")
    issued, credit_note = (to_integration(e) for e in app.events.get(invoice.id))
    assert isinstance(issued, invoice_events.InvoiceIssued) and issued.actor == "api-key:test"
    assert issued.total == MoneyJSON(amount=49900, currency="DKK")
    assert [line.amount for line in issued.lines] == [30000, 19900]
    assert isinstance(credit_note, invoice_events.CreditNoteIssued)
    assert credit_note.amount == MoneyJSON(amount=100, currency="DKK") and credit_note.reason == "late"


async def test_I2_status_paid_and_overdue_follow_payments_and_today(
        read_model: tuple[Database, InvoicesProjection]) -> None:
    db, projection = read_model
    app = in_memory(InvoicingApplication)
    paid_in_part, credited, untouched = issue(app, 10000), issue(app, 10000), issue(app, 10000)
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=credited.id, minor_units=4000,
                              reason="two issues missing")
    follow_payments = FollowPayments(app, ["saldo.payments.v1"])
    payment_id = uuid4()
    received = announced(
        payment_events.PaymentReceived, payment_id=payment_id, customer_id="alice", method="card",
        amount=MoneyJSON(amount=20000, currency="DKK"), received_at=datetime.now(UTC),
        allocations=[payment_events.Allocation(invoice_id=paid_in_part.id, amount=2500),
                     payment_events.Allocation(invoice_id=credited.id, amount=10000)])
    await deliver(follow_payments, received)
    await deliver(follow_payments, announced(  # payments releases the credited part (rule I3)
        payment_events.AmountReleased, payment_id=payment_id, invoice_id=credited.id,
        credit_note_id=next(iter(app.repository.get(credited.id).credit_notes)), customer_id="alice",
        amount=MoneyJSON(amount=4000, currency="DKK")))
    await project_published(app, to_integration, projection)

    async def shown(invoice: Invoice, today: date) -> tuple[str, int, bool]:
        found = await queries.invoice(db, "bu-1", invoice.id, today=today)
        assert found is not None
        return found.status, found.paid, found.overdue

    on_due_date, day_after = DUE, DUE + timedelta(days=1)
    assert await shown(paid_in_part, on_due_date) == ("partially_paid", 2500, False)
    assert await shown(paid_in_part, day_after) == ("partially_paid", 2500, True)
    assert await shown(credited, day_after) == ("paid", 6000, False)  # 4000 credited + 6000 paid
    assert await shown(untouched, day_after) == ("open", 0, True)
    assert await queries.invoice(db, "bu-2", untouched.id, today=DUE) is None  # rule M3


async def test_I1_the_list_is_in_issue_order_a_page_at_a_time(
        read_model: tuple[Database, InvoicesProjection]) -> None:
    db, projection = read_model
    app = in_memory(InvoicingApplication)
    issued = [issue(app, 100, customer=c) for c in ("alice", "bob", "alice", "alice")]
    issue(app, 100, unit="bu-2")
    # Published out of number order: the list still follows the time each was issued.
    invoices = [e for _, e in published(app, to_integration) if isinstance(e, invoice_events.InvoiceIssued)]
    start = datetime(2026, 11, 20, 10, tzinfo=UTC)
    for event in reversed(invoices):
        await deliver(projection, event.model_copy(
            update={"occurred_at": start + timedelta(seconds=event.number)}))

    first = await queries.invoices(db, "bu-1", Paging(2, BEGINNING), customer_id=None, status=None,
                                   overdue=None, today=DUE)
    assert first.next_cursor is not None
    rest = await queries.invoices(db, "bu-1", Paging(2, decode_cursor(first.next_cursor)),
                                  customer_id=None, status=None, overdue=None, today=DUE)
    assert rest.next_cursor is None
    assert [i.id for i in first.items + rest.items] == [i.id for i in issued]
    assert [i.number for i in first.items + rest.items] == [1, 2, 3, 4]
    alices = await queries.invoices(db, "bu-1", Paging(50, BEGINNING), customer_id="alice", status=None,
                                   overdue=None, today=DUE)
    assert [i.number for i in alices.items] == [1, 3, 4]


async def test_I3_an_invoices_credit_notes_are_listed_in_the_order_they_were_issued(
        read_model: tuple[Database, InvoicesProjection]) -> None:
    db, projection = read_model
    app = in_memory(InvoicingApplication)
    invoice = issue(app, 30000)
    with operator("bu-1"):
        for amount in (100, 200, 300):
            app.issue_credit_note(business_unit="bu-1", invoice_id=invoice.id, minor_units=amount,
                                  reason=f"credit {amount}")
    notes = [e for _, e in published(app, to_integration) if isinstance(e, invoice_events.CreditNoteIssued)]
    start = datetime(2026, 11, 20, 10, tzinfo=UTC)
    await deliver(projection, next(e for _, e in published(app, to_integration)
                                   if isinstance(e, invoice_events.InvoiceIssued)))
    for seconds, event in reversed(list(enumerate(notes))):  # published in reverse: time decides
        await deliver(projection, event.model_copy(
            update={"occurred_at": start + timedelta(seconds=seconds)}))

    first = await queries.credit_notes(db, "bu-1", invoice.id, Paging(2, BEGINNING))
    assert first is not None and first.next_cursor is not None
    rest = await queries.credit_notes(db, "bu-1", invoice.id, Paging(2, decode_cursor(first.next_cursor)))
    assert rest is not None and rest.next_cursor is None
    assert [n.reason for n in first.items + rest.items] == ["credit 100", "credit 200", "credit 300"]
    assert await queries.credit_notes(db, "bu-2", invoice.id, Paging(2, BEGINNING)) is None  # M3


async def test_I1_I3_a_post_answers_exactly_what_a_get_answers_once_projected(
        read_model: tuple[Database, InvoicesProjection]) -> None:
    """The POST's answer is built from the aggregate, the GET's from the read model (M1: amounts
    in integer minor units both times)."""
    db, projection = read_model
    app = in_memory(InvoicingApplication)
    keys = ApiKeys(db)
    await keys.setup()
    await IdempotencyStore(db).setup()
    api = create_api("invoicing", router, {"application": app, "db": db, "api_keys": keys}, db)
    await PartiesProjection(db, ["saldo.invoicing.v1"]).setup()  # the unit's time zone (M2)
    set_up_business_unit(app, "bu-1")
    register_customer(app, "bu-1", "alice")
    token = await keys.create("bu-1", ["operator"], "test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://invoicing",
                                 headers={"Authorization": f"Bearer {token}"}) as client:

        async def post(path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
            return await client.post(path, json=body, headers={"Idempotency-Key": str(uuid4()), **headers})

        created = await post("/v1/invoices", {
            "customer_id": "alice", "currency": "DKK", "due_date": DUE.isoformat(),
            "lines": [{"description": "Magazine, 12 months", "amount": 49900}]})
        assert created.status_code == 201, created.text
        assert created.headers["etag"] == '"1"'
        assert created.json()["total"] == {"amount": 49900, "currency": "DKK"}
        seen = await project_published(app, to_integration, projection)
        got = await client.get(created.headers["location"])
        assert got.content == created.content and got.headers["etag"] == '"1"'

        await deliver(FollowPayments(app, ["saldo.payments.v1"]), announced(  # paid in full
            payment_events.PaymentReceived, payment_id=uuid4(), customer_id="alice", method="card",
            amount=MoneyJSON(amount=49900, currency="DKK"), received_at=datetime.now(UTC),
            allocations=[payment_events.Allocation(invoice_id=created.json()["id"], amount=49900)]))
        notes = f"/v1/invoices/{created.json()['id']}/credit-notes"
        credit = await post(notes, {"amount": 10000, "reason": "one issue missing"}, **{"If-Match": '"2"'})
        assert credit.status_code == 201, credit.text
        assert credit.headers["etag"] == '"3"'
        assert {k: credit.json()[k] for k in ("invoice_id", "amount", "reason", "version")} == {
            "invoice_id": created.json()["id"], "amount": {"amount": 10000, "currency": "DKK"},
            "reason": "one issue missing", "version": 3}
        stale = await post(notes, {"amount": 100, "reason": "again"}, **{"If-Match": '"2"'})
        assert stale.status_code == 412, stale.text
        await project_published(app, to_integration, projection, seen)
        got = await client.get(credit.headers["location"])  # the credit note, as issued
        assert got.content == credit.content and got.headers["etag"] == '"3"'
        assert (await client.get(notes)).json() == {"items": [credit.json()], "next_cursor": None}

        invoice = (await client.get(created.headers["location"])).json()
        assert {k: invoice[k] for k in ("credited", "paid", "status", "version")} == {
            "credited": 10000, "paid": 49900, "status": "paid", "version": 3}
        listed = await client.get("/v1/invoices")
        assert listed.json() == {"items": [invoice], "next_cursor": None}
        elsewhere = await client.get(f"/v1/invoices/{uuid4()}/credit-notes/{credit.json()['id']}")
        assert elsewhere.status_code == 404  # a credit note is found only under its own invoice
        assert (await client.get(f"/v1/invoices/{uuid4()}/credit-notes")).status_code == 404


def test_an_invoice_stored_before_amounts_were_money_is_read_as_money() -> None:
    """Invoice.Issued and Invoice.CreditNoteIssued are class_version 2; version 1 stored integer
    amounts and the currency apart."""
    app = in_memory(InvoicingApplication)
    invoice_id, credit_note_id = uuid4(), uuid4()

    def v1(version: int, name: str, **state: Any) -> StoredEvent:
        return stored_v1("saldo_invoicing.domain:Invoice", invoice_id, version, name, **state)

    app.recorder.insert_events([
        v1(1, "Issued", originator_topic="saldo_invoicing.domain:Invoice", business_unit="bu-1",
           number=7, customer_id="alice", currency="DKK",
           lines=[{"description": "issue 1", "amount": 30000}, {"description": "issue 2", "amount": 19900}],
           due_date={"_type_": "date_iso", "_data_": "2026-12-01"}),
        v1(2, "CreditNoteIssued", credit_note_id={"_type_": "uuid_hex", "_data_": credit_note_id.hex},
           amount=10000, currency="DKK", customer_id="alice", reason="one issue missing"),
    ])

    invoice: Invoice = app.repository.get(invoice_id)

    assert invoice.lines[1] == {"description": "issue 2", "amount": Money(19900, "DKK")}
    assert invoice.total == Money(49900, "DKK") and invoice.credited == Money(10000, "DKK")
    assert invoice.number == 7 and invoice.due_date == DUE and list(invoice.credit_notes) == [credit_note_id]
    shown = InvoiceOut.of(invoice, today=DUE)
    assert (shown.status, shown.credited, shown.id) == ("open", 10000, UUID(str(invoice_id)))
