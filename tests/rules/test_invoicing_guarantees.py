"""Guarantees of invoicing's application, policy, projections and jobs that no other test pinned
down, found by breaking the code on purpose (mutation testing): each test here failed against one
deliberate one-line change. In process: the in-memory event store, the read models on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
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
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine
from saldo_invoicing.integration import to_integration
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_invoicing.reminders import run_reminders
from saldo_kernel.money import Money
from saldo_platform import businessdates
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
    start_subscription,
)

DUE = date(2026, 12, 1)


def day(n: int) -> date:
    return DUE + timedelta(days=n)


class _Both:
    def __init__(self, *projections: Any) -> None:
        self.projections = projections

    async def apply(self, event: Any, at: Any) -> None:
        for projection in self.projections:
            await projection.apply(event, at)


@dataclass
class Invoicing:
    app: InvoicingApplication
    db: Database
    invoices: InvoicesProjection
    parties: PartiesProjection
    payments: FollowPayments
    seen: int = 0

    async def project(self) -> None:
        """What the relay and the consumers would do: both read models catch up."""
        self.seen = await project_published(self.app, to_integration, _Both(self.invoices, self.parties),
                                            self.seen)

    def issue(self, amount: int = 10000, *, customer_id: str = "alice", unit: str = "bu-1",
              currency: str = "DKK", due_date: date = DUE) -> Invoice:
        with operator(unit):
            return self.app.issue_invoice(
                business_unit=unit, customer_id=customer_id, due_date=due_date,
                lines=[InvoiceLine(description="Bladet", amount=Money(amount, currency))])

    async def row(self, invoice: Invoice) -> dict[str, Any]:
        found = await self.db.fetchrow("SELECT * FROM invoices WHERE invoice_id = $1", str(invoice.id))
        assert found is not None
        return dict(found)


@pytest.fixture
async def invoicing(tmp_path: Path) -> AsyncIterator[Invoicing]:
    async with read_models(tmp_path) as db:
        topics = ["saldo.invoicing.v1"]
        invoices, parties = InvoicesProjection(db, topics), PartiesProjection(db, topics)
        await invoices.setup()
        await parties.setup()
        app = in_memory(InvoicingApplication)
        yield Invoicing(app, db, invoices, parties, FollowPayments(app, ["saldo.payments.v1"]))


def received(invoice: Invoice, *amounts: int, payment_id: UUID | None = None) -> Any:
    """PaymentReceived as payments publishes it: one allocation on `invoice` per amount."""
    currency = invoice.currency
    return announced(payment_events.PaymentReceived, business_unit=invoice.business_unit,
                     payment_id=payment_id or uuid4(), customer_id=invoice.customer_id, method="card",
                     amount=MoneyJSON(amount=sum(amounts), currency=currency), received_at=datetime.now(UTC),
                     allocations=[payment_events.Allocation(invoice_id=invoice.id, amount=a)
                                  for a in amounts])


def released(invoice: Invoice, payment_id: UUID, amount: int, **fields: Any) -> Any:
    return announced(payment_events.AmountReleased, business_unit=invoice.business_unit,
                     payment_id=payment_id, invoice_id=invoice.id, customer_id=invoice.customer_id,
                     amount=MoneyJSON(amount=amount, currency=invoice.currency),
                     **{"credit_note_id": None, **fields})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """Now is 1 December 2026 23:30 UTC: already 2 December in Copenhagen (the default zone),
    still 1 December in New York. A business date taken in the wrong zone is a day off (M2)."""
    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return now.astimezone(tz) if tz else now.replace(tzinfo=None)

    monkeypatch.setattr(businessdates, "datetime", Frozen)
    yield now


# --- payments followed (rules I2, I3) ---------------------------------------------------------------


async def test_I2_a_payment_split_over_allocations_of_one_invoice_is_applied_once_in_full(
        invoicing: Invoicing) -> None:
    """FollowPayments sums a payment's allocations per invoice: two allocations of 30.00 and 20.00
    on one EUR invoice are one PaymentApplied of 50.00 EUR (in the payment's currency, not a
    default one), and the read model shows 50.00 paid."""
    set_up_business_unit(invoicing.app, currency="EUR")
    register_customer(invoicing.app)
    invoice = invoicing.issue(10000, currency="EUR")
    await deliver(invoicing.payments, received(invoice, 3000, 2000))
    paid: Invoice = invoicing.app.repository.get(invoice.id)
    assert (paid.paid, paid.status) == (Money(5000, "EUR"), "partially_paid")
    applied = [e for _, e in published(invoicing.app, to_integration)
               if isinstance(e, contracts.InvoicePaymentApplied)]
    assert [(e.amount.amount, e.amount.currency) for e in applied] == [(5000, "EUR")]


async def test_I3_a_release_without_credit_note_refund_or_reason_still_says_why_it_reopened(
        invoicing: Invoicing) -> None:
    """An operator's release with no reason given: the invoice's history still reads
    "released without a credit note" (an empty reason would tell the operator nothing)."""
    set_up_business_unit(invoicing.app)
    register_customer(invoicing.app)
    invoice = invoicing.issue(10000)
    payment_id = uuid4()
    await deliver(invoicing.payments, received(invoice, 10000, payment_id=payment_id))
    await deliver(invoicing.payments, released(invoice, payment_id, 2500))
    await deliver(invoicing.payments, released(invoice, payment_id, 500, reason="paid twice by mistake"))
    reopened = [e for _, e in published(invoicing.app, to_integration)
                if isinstance(e, contracts.InvoiceReopened)]
    assert [e.reason for e in reopened] == ["released without a credit note", "paid twice by mistake"]


# --- stopping a subscription (rule C4) ----------------------------------------------------------------


async def test_C4_a_stop_that_credits_nothing_names_no_credited_invoice_and_leaves_it_alone(
        invoicing: Invoicing) -> None:
    """Stopped after its last invoiced period ended: nothing is credited, so the command returns
    no invoice (the route then sends no Link rel="credit-note") and the invoice is unchanged."""
    app = invoicing.app
    set_up_business_unit(app)
    register_customer(app)
    subscription = start_subscription(app, started_on=date(2026, 1, 1))
    with operator():
        invoice = app.invoice_subscription(business_unit="bu-1", subscription_id=subscription.id,
                                           due_date=DUE)
        stopped, credited = app.stop_subscription(business_unit="bu-1", subscription_id=subscription.id,
                                                  stop_date=date(2026, 3, 1), issues_delivered=None,
                                                  reason="let it run out")
    assert credited is None and stopped.stopped_on == date(2026, 3, 1)
    assert app.repository.get(invoice.id).version == invoice.version


# --- business dates in the unit's own time zone (rule M2) ---------------------------------------------


async def test_M2_the_applications_today_is_the_units_business_date(
        invoicing: Invoicing, clock: datetime) -> None:
    """Used for the overdue flag of the invoice a POST answers with: New York's date, not
    Copenhagen's, for a unit in New York."""
    set_up_business_unit(invoicing.app, "bu-1", time_zone="America/New_York")
    set_up_business_unit(invoicing.app, "bu-2")
    assert invoicing.app.unit_today("bu-1") == date(2026, 12, 1)
    assert invoicing.app.unit_today("bu-2") == date(2026, 12, 2)
    assert invoicing.app.unit_today("bu-without-entity") == date(2026, 12, 2)


# --- the invoices read model (rules I2, I3, I4) -------------------------------------------------------


async def test_I2_I3_I4_the_read_model_answers_what_the_invoice_says_after_every_kind_of_change(
        invoicing: Invoicing) -> None:
    """After each event the row is what the aggregate says (`InvoiceOut.of`): paid, status,
    reminders, the last reminder's date and the version (the ETag a client sends as If-Match),
    whichever event moved it last: a payment, a reminder, a release with or without a credit note."""
    app = invoicing.app
    set_up_business_unit(app, reminder_schedule_days=[7, 14])
    register_customer(app)
    invoice = invoicing.issue(10000)
    payment_id = uuid4()
    today = day(30)

    async def same() -> None:
        await invoicing.project()
        shown = await queries.invoice(invoicing.db, "bu-1", invoice.id, today=today)
        expected = queries.InvoiceOut.of(app.repository.get(invoice.id), today=today)
        assert shown is not None and shown.model_dump() == expected.model_dump()

    await same()
    await deliver(invoicing.payments, received(invoice, 4000, payment_id=payment_id))
    await same()  # partially paid, version 2
    with operator():
        assert app.send_reminder(business_unit="bu-1", invoice_id=invoice.id, today=day(8))
    await same()  # one reminder, on day 8
    await deliver(invoicing.payments, released(invoice, payment_id, 1000))
    await same()  # reopened by 10.00
    await deliver(invoicing.payments, received(invoice, 7000, payment_id=payment_id))
    await same()  # paid
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=invoice.id, minor_units=2000, reason="x")
    note = next(iter(app.repository.get(invoice.id).credit_notes))
    await deliver(invoicing.payments, released(invoice, payment_id, 2000, credit_note_id=note))
    await same()  # released for the credit note: still paid
    row = await invoicing.row(invoice)
    assert (row["status"], row["reminders"], row["last_reminder_on"]) == ("paid", 1, day(8).isoformat())


async def test_I4_a_reminder_projected_twice_is_counted_once(invoicing: Invoicing) -> None:
    """The reminders table's key (invoice, number) keeps the count right even when the same
    reminder reaches the projection's SQL twice (the consumer's event-id check aside): a second
    ReminderSent for the same number adds no row and does not count again."""
    app = invoicing.app
    set_up_business_unit(app, reminder_schedule_days=[7, 14])
    register_customer(app)
    invoice = invoicing.issue(10000)
    with operator():
        assert app.send_reminder(business_unit="bu-1", invoice_id=invoice.id, today=day(7))
    await invoicing.project()
    reminder = next(e for _, e in published(app, to_integration) if isinstance(e, contracts.ReminderSent))
    async with invoicing.db.transaction() as tx:
        await invoicing.invoices.project(tx, reminder)
    row = await invoicing.row(invoice)
    assert (row["reminders"], row["last_reminder_on"]) == (1, day(7).isoformat())
    assert await invoicing.db.fetchval("SELECT count(*) FROM reminders WHERE invoice_id = $1",
                                       str(invoice.id)) == 1


# --- the reminders run (rule I4) --------------------------------------------------------------------


async def test_M2_I4_each_unit_is_reminded_on_its_own_business_date(
        invoicing: Invoicing, clock: datetime) -> None:
    """Run without --date at 23:30 UTC on 1 December: it is 2 December in Copenhagen but still
    1 December in New York, so the New York unit's invoice whose first reminder is due on
    2 December gets none yet, while Copenhagen's does. The read model's today follows the same
    zone (the overdue flag of the invoice list)."""
    app = invoicing.app
    set_up_business_unit(app, "bu-ny", time_zone="America/New_York", reminder_schedule_days=[7])
    set_up_business_unit(app, "bu-cph", reminder_schedule_days=[7])
    for unit in ("bu-ny", "bu-cph"):
        register_customer(app, unit, "alice")
    new_york = invoicing.issue(unit="bu-ny", due_date=date(2026, 11, 25))
    copenhagen = invoicing.issue(unit="bu-cph", due_date=date(2026, 11, 25))
    await invoicing.project()
    run = await run_reminders(app, invoicing.db)
    assert run.units == {"bu-cph": (date(2026, 12, 2), 1, 1), "bu-ny": (date(2026, 12, 1), 1, 0)}
    assert app.repository.get(new_york.id).reminders == []
    assert app.repository.get(copenhagen.id).reminders == [date(2026, 12, 2)]
    assert await queries.unit_today(invoicing.db, "bu-ny") == date(2026, 12, 1)
    assert await queries.unit_today(invoicing.db, "bu-cph") == date(2026, 12, 2)
    assert await queries.unit_today(invoicing.db, "bu-without-entity") == date(2026, 12, 2)


async def test_I4_a_run_asked_to_stop_sends_nothing_more_and_the_next_run_goes_on(
        invoicing: Invoicing) -> None:
    """The service is shutting down (stopping is set): the run ends before the next invoice
    instead of holding the shutdown up; what it did not reach, the next run sends."""
    set_up_business_unit(invoicing.app, reminder_schedule_days=[7])
    register_customer(invoicing.app)
    invoice = invoicing.issue()
    await invoicing.project()
    stopping = asyncio.Event()
    stopping.set()
    assert (await run_reminders(invoicing.app, invoicing.db, on=day(7), stopping=stopping)).sent == 0
    assert invoicing.app.repository.get(invoice.id).reminders == []
    assert (await run_reminders(invoicing.app, invoicing.db, on=day(7), stopping=asyncio.Event())).sent == 1


async def test_I4_only_unsettled_invoices_past_their_due_date_are_counted_as_candidates(
        invoicing: Invoicing) -> None:
    """The run reports "unpaid past due" per unit: an invoice due today, a paid one and a
    credited one are not among them (the count operators read in `saldo reminders run`)."""
    app = invoicing.app
    set_up_business_unit(app, reminder_schedule_days=[7])
    register_customer(app)
    late, due_today, paid, credited = (invoicing.issue(), invoicing.issue(due_date=day(7)),
                                       invoicing.issue(), invoicing.issue())
    await deliver(invoicing.payments, received(paid, 10000))
    with operator():
        app.issue_credit_note(business_unit="bu-1", invoice_id=credited.id, minor_units=10000, reason="x")
    await invoicing.project()
    assert (await run_reminders(app, invoicing.db, on=day(7))).units == {"bu-1": (day(7), 1, 1)}
    assert [i.id for i in (late, due_today) if app.repository.get(i.id).reminders] == [late.id]
