"""The reminders run (rule I4), in process: the unit's schedule, never for paid or credited
invoices, nothing new when run twice on a day, and again for an invoice a release reopened (I3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from saldo_events import payments as payment_events
from saldo_events.envelope import Money as MoneyJSON
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine
from saldo_invoicing.integration import to_integration
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_invoicing.reminders import run_reminders
from saldo_kernel.money import Money
from saldo_platform.sql import Database
from tests.inprocess import (
    announced,
    deliver,
    in_memory,
    operator,
    project_published,
    read_models,
    register_customer,
    set_up_business_unit,
)

DUE = date(2026, 12, 1)


def day(n: int) -> date:
    return DUE + timedelta(days=n)


@dataclass
class Invoicing:
    app: InvoicingApplication
    db: Database
    projections: tuple[InvoicesProjection, PartiesProjection]
    payments: FollowPayments
    seen: int = 0

    async def project(self) -> None:
        """What the relay and the consumers would do: the read model catches up."""
        start = self.seen
        for projection in self.projections:
            self.seen = await project_published(self.app, to_integration, projection, start)

    def issue(self, amount: int = 10000) -> Invoice:
        with operator("bu-1"):
            return self.app.issue_invoice(
                business_unit="bu-1", customer_id="alice", due_date=DUE,
                lines=[InvoiceLine(description="Bladet", amount=Money(amount, "DKK"))])

    async def pay(self, invoice: Invoice, payment_id: UUID) -> None:
        await deliver(self.payments, announced(
            payment_events.PaymentReceived, payment_id=payment_id, customer_id="alice", method="card",
            amount=MoneyJSON(amount=invoice.total.minor_units, currency="DKK"),
            received_at=datetime.now(UTC),
            allocations=[payment_events.Allocation(invoice_id=invoice.id,
                                                   amount=invoice.total.minor_units)]))

    async def reminded(self, on: date) -> int:
        await self.project()
        return (await run_reminders(self.app, self.db, on=on)).sent

    def reminders_of(self, invoice: Invoice) -> list[date]:
        found: Invoice = self.app.repository.get(invoice.id)
        return found.reminders


@pytest.fixture
async def invoicing(tmp_path: Path) -> AsyncIterator[Invoicing]:
    app = in_memory(InvoicingApplication)
    async with read_models(tmp_path) as db:
        topics = ["saldo.invoicing.v1"]
        invoices, parties = InvoicesProjection(db, topics), PartiesProjection(db, topics)
        await invoices.setup()
        await parties.setup()
        set_up_business_unit(app, "bu-1", reminder_schedule_days=[7, 14])
        register_customer(app, "bu-1", "alice")
        yield Invoicing(app, db, (invoices, parties), FollowPayments(app, ["saldo.payments.v1"]))


async def test_I4_an_unpaid_invoice_is_reminded_on_the_units_schedule_once_a_day(
        invoicing: Invoicing) -> None:
    unpaid = invoicing.issue()
    assert await invoicing.reminded(day(6)) == 0  # not yet: the first is due 7 days after
    assert await invoicing.reminded(day(7)) == 1
    assert await invoicing.reminded(day(7)) == 0  # run twice on one day: nothing new
    assert await invoicing.reminded(day(13)) == 0
    assert await invoicing.reminded(day(14)) == 1
    assert await invoicing.reminded(day(60)) == 0  # the schedule [7, 14] is done
    assert invoicing.reminders_of(unpaid) == [day(7), day(14)]
    await invoicing.project()
    row = await invoicing.db.fetchrow(
        "SELECT reminders, last_reminder_on FROM invoices WHERE invoice_id = $1", str(unpaid.id))
    assert row is not None and (row["reminders"], row["last_reminder_on"]) == (2, day(14).isoformat())


async def test_I2_I4_paid_and_credited_invoices_get_no_reminder(invoicing: Invoicing) -> None:
    paid, credited = invoicing.issue(), invoicing.issue()
    await invoicing.pay(paid, uuid4())
    with operator("bu-1"):
        invoicing.app.issue_credit_note(business_unit="bu-1", invoice_id=credited.id, minor_units=10000,
                                        reason="cancelled before delivery")
    assert await invoicing.reminded(day(7)) == 0
    assert invoicing.reminders_of(paid) == [] and invoicing.reminders_of(credited) == []


async def test_I4_the_aggregate_decides_even_when_the_read_model_is_behind(invoicing: Invoicing) -> None:
    """Paid a moment ago, not yet in the read model: still no reminder."""
    invoice = invoicing.issue()
    await invoicing.project()
    await invoicing.pay(invoice, uuid4())  # recorded on the invoice, not yet projected
    assert (await run_reminders(invoicing.app, invoicing.db, on=day(7))).sent == 0


async def test_I3_I4_an_invoice_reopened_by_a_release_without_a_credit_note_is_reminded_again(
        invoicing: Invoicing) -> None:
    invoice = invoicing.issue()
    assert await invoicing.reminded(day(7)) == 1
    payment_id = uuid4()
    await invoicing.pay(invoice, payment_id)
    assert await invoicing.reminded(day(14)) == 0  # paid
    await deliver(invoicing.payments, announced(
        payment_events.AmountReleased, payment_id=payment_id, invoice_id=invoice.id, credit_note_id=None,
        customer_id="alice", amount=MoneyJSON(amount=10000, currency="DKK"), reason="paid by mistake"))
    reopened: Invoice = invoicing.app.repository.get(invoice.id)
    assert reopened.status == "open"
    assert await invoicing.reminded(day(20)) == 1  # the schedule resumes: the second reminder
    assert invoicing.reminders_of(invoice) == [day(7), day(20)]


async def test_I4_the_run_shows_its_progress_per_business_unit(invoicing: Invoicing,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    invoicing.issue()
    invoicing.issue()
    await invoicing.project()
    run = await run_reminders(invoicing.app, invoicing.db, on=day(7), progress=True)
    assert run.units == {"bu-1": (day(7), 2, 2)}
    err = capsys.readouterr().err
    assert "reminders bu-1 2026-12-08" in err and "2/2" in err and "2 reminders sent" in err


async def test_M3_a_run_for_one_unit_touches_no_other(invoicing: Invoicing) -> None:
    set_up_business_unit(invoicing.app, "bu-2")
    register_customer(invoicing.app, "bu-2", "bob")
    with operator("bu-2"):
        theirs = invoicing.app.issue_invoice(business_unit="bu-2", customer_id="bob", due_date=DUE,
                                             lines=[InvoiceLine(description="x", amount=Money(100, "DKK"))])
    invoicing.issue()
    await invoicing.project()
    run = await run_reminders(invoicing.app, invoicing.db, on=day(7), business_unit="bu-1")
    assert set(run.units) == {"bu-1"} and run.sent == 1
    assert invoicing.reminders_of(theirs) == []
