"""Invoices in process (rules C3, C4, I1, I2, I3, M3, M4): the invoicing application, its payments
policy, its routes (auth, problems) and its read model, no servers.

tests/test_invoicing_invoices.py proves the same rules over PostgreSQL and Kafka with payments
and refunds running; here each branch is cheap to reach, and "nothing written" is counted in the
event store itself.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from saldo_events import invoicing as contracts
from saldo_events import payments as payment_events
from saldo_events.envelope import Money as MoneyJSON
from saldo_invoicing import queries
from saldo_invoicing.api import router
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine
from saldo_invoicing.domain.parties import Subscription
from saldo_invoicing.integration import to_integration
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_kernel.errors import Conflict
from saldo_kernel.money import Money
from saldo_platform.http.pages import BEGINNING, Paging
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
    serving,
    set_up_business_unit,
    start_subscription,
)

DUE = date(2026, 12, 1)
ACTIVE = {"reference": "agreement-1", "status": "active", "cancelled_at": None}
CANCELLED = {"reference": "agreement-0", "status": "cancelled",
             "cancelled_at": datetime(2026, 10, 1, 12, tzinfo=UTC)}


def stored(app: InvoicingApplication) -> int:
    """How many events the application has stored: a refused command adds none."""
    count = after = 0
    while notifications := app.notification_log.select(start=after + 1, limit=10):
        count, after = count + len(notifications), notifications[-1].id
    return count


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def issue(app: InvoicingApplication, customer: str = "alice", *amounts: int, unit: str = "bu-1",
          due_date: date = DUE) -> Invoice:
    with operator(unit):
        return app.issue_invoice(business_unit=unit, customer_id=customer, due_date=due_date,
                                 lines=[InvoiceLine(description=f"line {n}", amount=dkk(a))
                                        for n, a in enumerate(amounts or (10000,), 1)])


def received(invoice: Invoice, amount: int, payment_id: UUID | None = None) -> Any:
    """PaymentReceived as payments publishes it, all of it placed on `invoice`."""
    return announced(payment_events.PaymentReceived, business_unit=invoice.business_unit,
                     payment_id=payment_id or uuid4(), customer_id=invoice.customer_id, method="card",
                     amount=MoneyJSON(amount=amount, currency="DKK"), received_at=datetime.now(UTC),
                     allocations=[payment_events.Allocation(invoice_id=invoice.id, amount=amount)])


def released(invoice: Invoice, payment_id: UUID, amount: int, *, credit_note_id: UUID | None = None,
             refund_id: UUID | None = None) -> Any:
    return announced(payment_events.AmountReleased, business_unit=invoice.business_unit,
                     payment_id=payment_id, invoice_id=invoice.id, credit_note_id=credit_note_id,
                     refund_id=refund_id, customer_id=invoice.customer_id,
                     amount=MoneyJSON(amount=amount, currency="DKK"))


@dataclass
class Invoicing:
    app: InvoicingApplication
    db: Database
    invoices: InvoicesProjection
    parties: PartiesProjection

    async def project(self) -> None:
        """Deliver everything published so far to both read models (each event once)."""
        self._seen = await project_published(self.app, to_integration, _Both(self.invoices, self.parties),
                                             getattr(self, "_seen", 0))


class _Both:
    """Both read models of invoicing, as one projection for `project_published`."""

    def __init__(self, *projections: Any) -> None:
        self.projections = projections

    async def apply(self, event: Any, at: Any) -> None:
        for projection in self.projections:
            await projection.apply(event, at)


@pytest.fixture
async def invoicing(tmp_path: Path) -> AsyncIterator[Invoicing]:
    async with read_models(tmp_path) as db:
        invoices = InvoicesProjection(db, ["saldo.invoicing.v1"])
        parties = PartiesProjection(db, ["saldo.invoicing.v1"])
        await invoices.setup()
        await parties.setup()
        yield Invoicing(in_memory(InvoicingApplication), db, invoices, parties)


# --- C3: every branch, recorded at issue and published --------------------------------------------

C3_CASES = [
    # (customer's facts, subscription's method, unit's method) -> (channel, part of the reason)
    ({"ean": "5790000435975"}, "bs_payment_slip", "email", "e_invoice", "EAN 5790000435975"),
    ({"ean": "5790000435975", "betalingsservice_mandate": ACTIVE}, None, "bs_payment_slip",
     "e_invoice", "overrides every invoicing method"),
    ({"betalingsservice_mandate": ACTIVE}, "bs_payment_slip", "email", "automatic_withdrawal",
     "subscription's own method bs_payment_slip"),
    ({"betalingsservice_mandate": ACTIVE}, None, "bs_payment_slip", "automatic_withdrawal",
     "business unit's method bs_payment_slip"),
    ({"betalingsservice_mandate": CANCELLED, "e_invoice_to_online_banking": True}, "bs_payment_slip",
     "email", "online_banking_e_invoice", "no active Betalingsservice mandate"),
    ({"betalingsservice_mandate": CANCELLED}, "bs_payment_slip", "email", "paper_slip", "payment slip"),
    ({"card_agreement": ACTIVE}, None, "email", "card_charge", "only a receipt"),
    ({"card_agreement": ACTIVE}, "print_your_own_slip", "email", "card_charge", "card agreement"),
    ({"card_agreement": CANCELLED}, None, "email", "email", "a PDF and a payment link"),
    ({}, "email", "manual", "email", "subscription's own method email"),
    ({}, "print_your_own_slip", "email", "print_your_own_slip", "print"),
    ({}, "preliminary_postponed", "email", "postponed", "postponed"),
    ({}, None, "manual", "manual", "business unit's method manual"),
]


@pytest.mark.parametrize(("customer", "own_method", "unit_method", "channel", "why"), C3_CASES)
def test_C3_the_invoice_records_the_channel_resolved_at_issue_and_why_and_publishes_both(
        customer: dict[str, Any], own_method: str | None, unit_method: str, channel: str, why: str) -> None:
    """Rule C3: an EAN overrides everything; else the subscription's own method, else the unit's;
    bs_payment_slip → automatic withdrawal with an active mandate, else e-invoice to online
    banking if enabled, else a paper slip; email/print_your_own_slip with an active card agreement
    → card charge; a cancelled agreement counts as none. Invoicing the subscription's period
    records the channel and its reason on the invoice and InvoiceIssued carries both."""
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app, invoicing_method=unit_method)
    register_customer(app, **customer)
    subscription = start_subscription(app, invoicing_method=own_method)
    with operator():
        invoice = app.invoice_subscription(business_unit="bu-1", subscription_id=subscription.id,
                                           due_date=DUE)
    assert invoice.channel == channel and why in invoice.channel_reason, invoice.channel_reason
    [issued] = [e for _, e in published(app, to_integration) if isinstance(e, contracts.InvoiceIssued)]
    assert (issued.channel, issued.channel_reason) == (channel, invoice.channel_reason)
    assert issued.subscription_id == subscription.id


def test_C3_an_issued_invoice_keeps_its_channel_when_the_customer_changes_later() -> None:
    """Rule C3: the channel is resolved when the invoice is issued; the customer's EAN added
    afterwards decides the next invoice, not the one already issued."""
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app)
    register_customer(app)
    before = issue(app)
    register_customer(app, ean="5790000435975")
    after = issue(app)
    assert app.repository.get(before.id).channel == "email"
    assert after.channel == "e_invoice"


# --- I1: numbers and FIK references -----------------------------------------------------------------


async def test_I1_a_refused_invoice_takes_no_number_and_each_number_has_its_fik_reference(
        invoicing: Invoicing) -> None:
    """Rule I1: a refused invoice (another currency, unknown customer) takes no number, so the
    next one follows without a gap; the reference is +71, the number padded to 14 digits with
    its Luhn check digit, and the unit's creditor number."""
    app = invoicing.app
    set_up_business_unit(app)
    register_customer(app)
    async with serving("invoicing", router, app, invoicing.db) as client:
        first = await client.post("/v1/invoices", json={
            "customer_id": "alice", "currency": "DKK", "due_date": "2026-12-01",
            "lines": [{"description": "x", "amount": 100}]})
        count = stored(app)
        for refused in ({"currency": "EUR"}, {"customer_id": "nobody"}):
            answer = await client.post("/v1/invoices", json={
                "customer_id": "alice", "currency": "DKK", "due_date": "2026-12-01",
                "lines": [{"description": "x", "amount": 100}], **refused})
            assert answer.status_code == 422, answer.text
        assert stored(app) == count
        second = await client.post("/v1/invoices", json={
            "customer_id": "alice", "currency": "DKK", "due_date": "2026-12-01",
            "lines": [{"description": "x", "amount": 100}]})
    assert [first.json()["number"], second.json()["number"]] == [1, 2]
    # 00000000000001 → weights 2,1,2… from the right: 1×2 = 2, check digit 8; 2×2 = 4 → 6.
    assert [first.json()["payment_reference"], second.json()["payment_reference"]] == [
        "+71000000000000018+85236417", "+71000000000000026+85236417"]


def test_I1_C2_two_requests_invoicing_one_subscription_at_once_never_invoice_one_period_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules I1, C2: two commands (outside HTTP, where a save writes at once, e.g. a job) both
    read the subscription's next period before either saved. The second one's save conflicts;
    it must not then record the period the first one just invoiced: November is invoiced once,
    the second is a Conflict (409), and no number is lost."""
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app)
    register_customer(app)
    subscription = start_subscription(app)
    both_read = threading.Barrier(2, timeout=10)
    next_period = Subscription.next_period

    def read_together(self: Subscription, *, today: date) -> Any:
        period = next_period(self, today=today)
        both_read.wait()  # each has read the period before either saves
        return period

    monkeypatch.setattr(Subscription, "next_period", read_together)
    outcomes: list[Any] = []

    def invoice() -> None:
        with operator():
            try:
                outcomes.append(app.invoice_subscription(business_unit="bu-1",
                                                         subscription_id=subscription.id, due_date=DUE))
            except Conflict as e:
                outcomes.append(e)

    threads = [threading.Thread(target=invoice) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    periods = [(p["start"], p.get("end")) for p in app.repository.get(subscription.id).invoiced]
    assert len(periods) == len(set(periods)), periods  # no period invoiced twice
    [invoice] = [o for o in outcomes if isinstance(o, Invoice)]
    [conflict] = [o for o in outcomes if isinstance(o, Conflict)]
    assert periods == [(date(2026, 11, 1), date(2026, 12, 1))] and invoice.number == 1
    assert "invoiced by another request" in conflict.detail
    assert issue(app).number == 2  # the refused one's number was not lost (I1)


# --- I2: status, and the filters ------------------------------------------------------------------


async def test_I2_status_follows_allocations_releases_and_credit_notes_and_the_list_filters_on_it(
        invoicing: Invoicing) -> None:
    """Rule I2: open → partially_paid → paid as payments' allocations arrive; a credit note whose
    money payments released keeps it paid (I3); a credit note of the whole total → credited. The
    list filters on status and on overdue (unsettled and past due, on the unit's business date)."""
    app = invoicing.app
    set_up_business_unit(app)
    register_customer(app)
    paid, part, credited, untouched = (issue(app, "alice", 10000) for _ in range(4))
    follow = FollowPayments(app, ["saldo.payments.v1"])
    payment_id = uuid4()
    await deliver(follow, received(paid, 3000, payment_id))
    assert app.repository.get(paid.id).status == "partially_paid"
    await deliver(follow, announced(payment_events.PaymentAllocated, payment_id=payment_id,
                                    invoice_id=paid.id, amount=MoneyJSON(amount=7000, currency="DKK")))
    assert app.repository.get(paid.id).status == "paid"
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=paid.id, minor_units=2500, reason="x")
    note = next(iter(app.repository.get(paid.id).credit_notes))
    await deliver(follow, released(paid, payment_id, 2500, credit_note_id=note))
    assert (app.repository.get(paid.id).status, app.repository.get(paid.id).paid) == ("paid", dkk(7500))
    await deliver(follow, received(part, 9999))
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=credited.id, minor_units=10000,
                              reason="cancelled")
    await invoicing.project()

    async def ids(status: Any = None, overdue: bool | None = None, today: date = DUE) -> list[UUID]:
        page = await queries.invoices(invoicing.db, "bu-1", Paging(50, BEGINNING), customer_id=None,
                                      status=status, overdue=overdue, today=today)
        return [i.id for i in page.items]

    later = DUE + timedelta(days=1)
    assert await ids("paid") == [paid.id]
    assert await ids("partially_paid") == [part.id]
    assert await ids("credited") == [credited.id]
    assert await ids("open") == [untouched.id]
    assert await ids(overdue=True) == []  # on the due date itself nothing is overdue
    assert await ids(overdue=True, today=later) == [part.id, untouched.id]
    assert await ids(overdue=False, today=later) == [paid.id, credited.id]
    shown = await queries.invoice(invoicing.db, "bu-1", paid.id, today=later)
    assert shown is not None and (shown.status, shown.paid, shown.credited) == ("paid", 7500, 2500)


# --- I3: a release without a credit note ------------------------------------------------------------


async def test_I3_a_release_without_a_credit_note_reopens_the_invoice_and_its_reminders_resume(
        invoicing: Invoicing) -> None:
    """Rule I3 (and I4): paid in full, the invoice is due no reminder; payments then releases
    4,000 of it for a refund, without a credit note: InvoiceReopened is published, the invoice is
    partially_paid (then open once all is released) and reminder_due is again not None, so the
    reminder run sends one. A release for a credit note, by contrast, keeps it settled."""
    app = invoicing.app
    set_up_business_unit(app, reminder_schedule_days=[7, 14])
    register_customer(app)
    invoice, credited = issue(app), issue(app)
    follow = FollowPayments(app, ["saldo.payments.v1"])
    payment_id, refund_id = uuid4(), uuid4()
    await deliver(follow, received(invoice, 10000, payment_id))
    week_late = DUE + timedelta(days=7)
    assert app.repository.get(invoice.id).reminder_due(today=week_late, schedule=[7, 14]) is None

    await deliver(follow, released(invoice, payment_id, 4000, refund_id=refund_id))
    reopened: Invoice = app.repository.get(invoice.id)
    assert (reopened.status, reopened.paid) == ("partially_paid", dkk(6000))
    assert reopened.reminder_due(today=week_late, schedule=[7, 14]) == 1
    with operator():
        assert app.send_reminder(business_unit="bu-1", invoice_id=invoice.id, today=week_late)
    await deliver(follow, released(invoice, payment_id, 6000, refund_id=refund_id))
    assert app.repository.get(invoice.id).status == "open"

    events = [e for _, e in published(app, to_integration) if isinstance(e, contracts.InvoiceReopened)]
    assert [(e.invoice_id, e.payment_id, e.amount.amount) for e in events] == [
        (invoice.id, payment_id, 4000), (invoice.id, payment_id, 6000)]
    assert str(refund_id) in events[0].reason
    await invoicing.project()
    shown = await queries.invoice(invoicing.db, "bu-1", invoice.id, today=week_late)
    assert shown is not None and (shown.status, shown.paid, shown.overdue, shown.reminders) == (
        "open", 0, True, 1)

    # For a credit note: the debt shrinks as the money goes, so the invoice stays settled.
    other = uuid4()
    await deliver(follow, received(credited, 10000, other))
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=credited.id, minor_units=4000, reason="x")
    note = next(iter(app.repository.get(credited.id).credit_notes))
    await deliver(follow, released(credited, other, 4000, credit_note_id=note))
    settled: Invoice = app.repository.get(credited.id)
    assert settled.status == "paid" and settled.reminder_due(today=week_late, schedule=[7, 14]) is None


# --- C4: a stop mid-period, through the routes ------------------------------------------------------


async def test_C4_a_stop_credits_the_unused_days_of_a_clamped_month_and_refuses_dates_outside_it(
        invoicing: Invoicing) -> None:
    """Rule C4: a month from 31 January ends on 28 February (clamped), so it has 28 days; stopped
    on 14 February, 14 are unused: 149.00 × 14/28 = 74.50 is credited on that invoice (the Link
    header names the credit note). A stop date before the period (here: before the start) is a
    422 on stop_date naming C4 and writes nothing; a second stop is a 409; a stopped subscription
    has no next period to invoice (409)."""
    app = invoicing.app
    set_up_business_unit(app)
    register_customer(app)
    subscription = start_subscription(app, started_on=date(2026, 1, 31))
    unbilled = start_subscription(app, started_on=date(2026, 1, 31))
    async with serving("invoicing", router, app, invoicing.db) as client:
        billed = await client.post("/v1/invoices", json={"subscription_id": str(subscription.id),
                                                         "due_date": "2026-02-14"})
        assert billed.status_code == 201, billed.text
        stop = f"/v1/subscriptions/{subscription.id}/stop"
        count = stored(app)
        for stop_date in ("2026-01-30", "2025-12-31"):
            refused = await client.post(stop, json={"stop_date": stop_date, "reason": "x"})
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"].startswith("stop_date: ") and "C4" in refused.json()["detail"]
        assert stored(app) == count

        stopped = await client.post(stop, json={"stop_date": "2026-02-14", "reason": "moved"})
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["invoiced_periods"] == [{
            "invoice_id": billed.json()["id"], "start": "2026-01-31", "end": "2026-02-28", "issues": None}]
        await invoicing.project()
        note = await client.get(stopped.headers["link"].split(">")[0].lstrip("<").removeprefix("/invoicing"))
        assert note.status_code == 200, note.text
        assert note.json()["amount"] == {"amount": 7450, "currency": "DKK"}
        assert "14 of 28 days unused" in note.json()["reason"]

        again = await client.post(stop, json={"stop_date": "2026-02-14", "reason": "moved"})
        assert again.status_code == 409, again.text
        more = await client.post("/v1/invoices", json={"subscription_id": str(subscription.id),
                                                       "due_date": "2026-03-14"})
        assert more.status_code == 409, more.text
        nothing_billed = await client.post(f"/v1/subscriptions/{unbilled.id}/stop",
                                           json={"stop_date": "2026-02-01", "reason": "never mind"})
        assert nothing_billed.status_code == 200 and "link" not in nothing_billed.headers
    assert app.repository.get(subscription.id).stopped_on == date(2026, 2, 14)


# --- Bad input through the routes: a 4xx naming field and rule, nothing stored ----------------------


async def test_bad_input_is_a_4xx_problem_naming_the_field_and_rule_and_stores_nothing(
        invoicing: Invoicing) -> None:
    """Issue 7, Bad input: each refusal is problem+json naming its field (and rule), and the
    event store holds not one event more. Another unit's invoice or subscription is not found
    (M3); no business entity yet is a 409 (M4)."""
    app = invoicing.app
    lines = [{"description": "x", "amount": 100}]
    body = {"customer_id": "alice", "currency": "DKK", "due_date": "2026-12-01", "lines": lines}
    async with serving("invoicing", router, app, invoicing.db) as client:
        early = await client.post("/v1/invoices", json=body)
        assert early.status_code == 409 and "M4" in early.json()["detail"], early.text
        set_up_business_unit(app)
        register_customer(app)
        subscription = start_subscription(app, started_on=date(2026, 11, 1))
        issues = start_subscription(app, period={"unit": "issues", "length": 4})
        invoice = issue(app)
        with operator():
            app.invoice_subscription(business_unit="bu-1", subscription_id=subscription.id, due_date=DUE)
            app.invoice_subscription(business_unit="bu-1", subscription_id=issues.id, due_date=DUE)
        set_up_business_unit(app, "bu-2")
        register_customer(app, "bu-2", "alice")
        theirs = issue(app, unit="bu-2")
        their_subscription = start_subscription(app, "bu-2", started_on=date(2026, 11, 1))
        count = stored(app)

        cases: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
            ("/v1/invoices", {**body, "customer_id": "nobody"}, 422, ("customer_id", "C1")),
            ("/v1/invoices", {"subscription_id": str(uuid4()), "due_date": "2026-12-01"}, 422,
             ("subscription_id", "C2")),
            ("/v1/invoices", {"subscription_id": str(their_subscription.id), "due_date": "2026-12-01"},
             422, ("subscription_id", "C2")),
            ("/v1/invoices", {**body, "currency": "EUR"}, 422, ("currency", "M4")),
            ("/v1/invoices", {**body, "currency": "XXX"}, 422, ("currency",)),
            ("/v1/invoices", {**body, "lines": [{"description": "x", "amount": 0}]}, 422,
             ("body.lines.0.amount", "greater than 0")),
            ("/v1/invoices", {**body, "lines": [{"description": "x", "amount": -5}]}, 422,
             ("body.lines.0.amount", "greater than 0")),
            ("/v1/invoices", {**body, "lines": [{"description": "x", "amount": 10**12 + 1}]}, 422,
             ("body.lines.0.amount", "less than or equal to")),
            ("/v1/invoices", {**body, "lines": [{"description": "x", "amount": "100"}]}, 422,
             ("body.lines.0.amount",)),
            ("/v1/invoices", {**body, "lines": []}, 422, ("body.lines",)),
            ("/v1/invoices", {**body, "subscription_id": str(subscription.id)}, 422, ("subscription_id",)),
            ("/v1/invoices", {"due_date": "2026-12-01"}, 422, ("customer_id",)),
            (f"/v1/invoices/{invoice.id}/credit-notes", {"amount": 10001, "reason": "x"}, 422,
             ("amount", "I3")),
            (f"/v1/invoices/{theirs.id}/credit-notes", {"amount": 1, "reason": "x"}, 404, ("invoice",)),
            (f"/v1/subscriptions/{subscription.id}/stop", {"stop_date": "2026-10-31", "reason": "x"}, 422,
             ("stop_date", "C4")),
            (f"/v1/subscriptions/{issues.id}/stop", {"stop_date": "2026-12-01", "issues_delivered": 5,
                                                     "reason": "x"}, 422, ("issues_delivered", "C4")),
            (f"/v1/subscriptions/{their_subscription.id}/stop", {"stop_date": "2026-11-11", "reason": "x"},
             404, ("subscription",)),
        ]
        wrong = []
        for path, sent, status, words in cases:
            answer = await client.post(path, json=sent)
            said = answer.text
            if (answer.status_code != status or answer.headers["content-type"] != "application/problem+json"
                    or not all(w in said for w in words)):
                wrong.append(f"{path} {sent}: {answer.status_code} {said}")
        assert not wrong, "\n".join(wrong)
    assert stored(app) == count
