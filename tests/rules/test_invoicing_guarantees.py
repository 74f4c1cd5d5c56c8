"""Guarantees of invoicing's application, policy, projections and jobs that no other test pinned
down, found by breaking the code on purpose (mutation testing): each test here failed against one
deliberate one-line change. In process: the in-memory event store, the read models on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import pytest

from saldo_events import invoicing as contracts
from saldo_events import payments as payment_events
from saldo_events.envelope import IntegrationEvent
from saldo_events.envelope import Money as MoneyJSON
from saldo_invoicing import mails, queries
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers, Terms
from saldo_invoicing.integration import to_integration
from saldo_invoicing.mails import DocumentMailsProjection, send_requested
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_invoicing.reminders import COMMAND, run_reminders
from saldo_kernel.money import Money
from saldo_platform import businessdates
from saldo_platform.cli import _service_command
from saldo_platform.mail import setup_outbox
from saldo_platform.settings import Settings
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


# --- documents by e-mail (rules C3, I3, I4) -----------------------------------------------------------


@dataclass
class Mailing:
    invoicing: Invoicing
    requests: DocumentMailsProjection
    runtime: Any
    seen: int = 0

    async def requested(self) -> list[tuple[str, str]]:
        """Deliver what was published since last time to the requests projection; the open
        requests as (kind, key)."""
        self.seen = await project_published(self.invoicing.app, to_integration, self.requests, self.seen)
        rows = await self.invoicing.db.fetch("SELECT kind, mail_key FROM document_mails ORDER BY mail_key")
        return [(r["kind"], r["mail_key"]) for r in rows]

    async def outbox(self) -> list[dict[str, Any]]:
        rows = await self.invoicing.db.fetch(
            "SELECT mail_key, recipient, subject, body, attachments FROM mail_outbox ORDER BY mail_key")
        return [dict(r) for r in rows]


@pytest.fixture
async def mailing(invoicing: Invoicing) -> Mailing:
    requests = DocumentMailsProjection(invoicing.db, ["saldo.invoicing.v1"])
    await requests.setup()
    await setup_outbox(invoicing.db)
    runtime = SimpleNamespace(application=invoicing.app, db=invoicing.db, stopping=asyncio.Event(),
                              settings=SimpleNamespace(payment_link="https://pay.example.dk/{payment_reference}"))
    return Mailing(invoicing, requests, runtime)


def credit(app: InvoicingApplication, invoice: Invoice, minor_units: int, unit: str = "bu-1") -> UUID:
    with operator(unit):
        credited = app.issue_credit_note(business_unit=unit, invoice_id=invoice.id,
                                         minor_units=minor_units, reason=f"credit of {minor_units}")
    note: UUID = list(credited.credit_notes)[-1]
    return note


def remind(app: InvoicingApplication, invoice: Invoice, on: date) -> None:
    with operator(invoice.business_unit):
        assert app.send_reminder(business_unit=invoice.business_unit, invoice_id=invoice.id, today=on)


async def test_C3_I4_invoices_and_credit_notes_are_mailed_for_the_email_channel_reminders_to_all(
        mailing: Mailing) -> None:
    """Alice's invoices go by e-mail: her invoice, each of its two credit notes and each of its
    two reminders is one mail (one request, one key, each). Bob has an EAN, so his invoice and
    credit note go as e-invoices and are not mailed; his reminder is (every customer has an
    e-mail address, C1). The requests are gone once the mails are queued."""
    app = mailing.invoicing.app
    set_up_business_unit(app, reminder_schedule_days=[7, 14])
    register_customer(app, customer_id="alice", email="alice@example.dk")
    register_customer(app, customer_id="bob", email="bob@example.dk", ean="5798000416604")
    alice, bob = mailing.invoicing.issue(customer_id="alice"), mailing.invoicing.issue(customer_id="bob")
    assert (alice.channel, bob.channel) == ("email", "e_invoice")
    first, second = credit(app, alice, 1000), credit(app, alice, 2000)
    bobs = credit(app, bob, 1000)
    for invoice in (alice, bob):
        remind(app, invoice, day(7))
    remind(app, alice, day(14))

    assert await mailing.requested() == sorted([
        ("credit_note", f"credit-note:{first}"), ("credit_note", f"credit-note:{second}"),
        ("credit_note", f"credit-note:{bobs}"),
        ("invoice", f"invoice:{alice.id}"), ("invoice", f"invoice:{bob.id}"),
        ("reminder", f"reminder:{alice.id}:1"), ("reminder", f"reminder:{alice.id}:2"),
        ("reminder", f"reminder:{bob.id}:1")], key=lambda r: r[1])
    await send_requested(mailing.runtime)

    assert await mailing.requested() == []
    queued = {m["mail_key"]: m for m in await mailing.outbox()}
    assert sorted(queued) == sorted([f"invoice:{alice.id}", f"credit-note:{first}", f"credit-note:{second}",
                                    f"reminder:{alice.id}:1", f"reminder:{alice.id}:2",
                                    f"reminder:{bob.id}:1"])
    assert queued[f"reminder:{bob.id}:1"]["recipient"] == "bob@example.dk"
    assert queued[f"reminder:{alice.id}:2"]["subject"].startswith("Reminder 2: invoice 1 ")
    # Credit notes are numbered after their invoice, in the order they were issued (I3).
    assert ['"1-1.pdf"' in queued[f"credit-note:{first}"]["attachments"],
            '"1-2.pdf"' in queued[f"credit-note:{second}"]["attachments"]] == [True, True]
    link = "https://pay.example.dk/" + quote(alice.payment_reference or "", safe="")  # "+" → %2B
    assert link in queued[f"invoice:{alice.id}"]["body"]


async def test_I4_a_request_is_deleted_only_with_its_mail_queued(
        mailing: Mailing, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queueing the mail and deleting its request are one transaction: when queueing fails the
    request stays, and the next pass mails it (exactly once)."""
    app = mailing.invoicing.app
    set_up_business_unit(app)
    register_customer(app)
    invoice = mailing.invoicing.issue()
    assert await mailing.requested() == [("invoice", f"invoice:{invoice.id}")]

    async def broken(tx: Any, mail: Any) -> bool:
        raise RuntimeError("the outbox is unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(mails, "enqueue", broken)
        with pytest.raises(RuntimeError):
            await send_requested(mailing.runtime)
    assert await mailing.requested() == [("invoice", f"invoice:{invoice.id}")]
    assert await mailing.outbox() == []
    await send_requested(mailing.runtime)
    assert [m["mail_key"] for m in await mailing.outbox()] == [f"invoice:{invoice.id}"]
    assert await mailing.requested() == []


async def test_I4_a_reminder_says_what_is_still_open_after_payments_and_credit_notes(
        mailing: Mailing) -> None:
    """100.00 invoiced, 30.00 paid, 20.00 credited: the reminder asks for 50.00."""
    app = mailing.invoicing.app
    set_up_business_unit(app, reminder_schedule_days=[7])
    register_customer(app)
    invoice = mailing.invoicing.issue(10000)
    await deliver(mailing.invoicing.payments, received(invoice, 3000))
    credit(app, invoice, 2000)
    remind(app, invoice, day(7))
    mail = mails.mail_of(app, "reminder", app.repository.get(invoice.id), "k", credit_note_id=None,
                         reminder=1, payment_link=None)
    assert mail is not None and f"{Money(5000, 'DKK')} is still open" in mail.body


async def test_I4_saldo_reminders_run_works_on_a_service_whose_read_models_were_never_set_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A service's own command (`saldo reminders run`) sets up the service's read models before
    it runs: on a fresh installation it answers that no unit has a business entity yet (exit 1)
    instead of failing on a missing table."""
    settings = Settings.from_env({"SALDO_MODE": "embedded", "SALDO_VAR_DIR": str(tmp_path)})
    args = argparse.Namespace(action="run", date=day(7), business_unit=None)
    assert await _service_command(settings, "invoicing", COMMAND, args) == 1
    assert "no business unit with a business entity" in capsys.readouterr().err


# --- what is published (the contracts other services and the accounting read) -------------------------


def _payload(event: Any) -> dict[str, Any]:
    """The event's own fields, without the envelope every event has."""
    own = set(type(event).model_fields) - set(IntegrationEvent.model_fields)
    return event.model_dump(mode="json", include=own)  # type: ignore[no-any-return]


async def test_M3_C1_C2_I1_I3_I4_every_field_of_every_published_event_says_what_happened(
        invoicing: Invoicing) -> None:
    """Each published field carries the aggregate's value, not a default: the unit's zone and
    schedule, the customer's agreements, a subscription's own method, the period an invoice
    covers (dates or issues), the channel and its reason, the FIK reference, a release's credit
    note, a reopening's reason, a reminder's number and business date, a stop's reason."""
    app = invoicing.app
    active = {"reference": "agr-1", "status": "active", "cancelled_at": None}
    cancelled = {"reference": "agr-0", "status": "cancelled",
                 "cancelled_at": datetime(2026, 10, 1, tzinfo=UTC)}
    set_up_business_unit(app, time_zone="America/New_York", reminder_schedule_days=[3, 9])
    register_customer(app, bank_account={"registration_number": "1234", "account_number": "567890"},
                      betalingsservice_mandate=active, e_invoice_to_online_banking=True,
                      card_agreement=cancelled, mobilepay_agreement=active)
    issues = start_subscription(app, period={"unit": "issues", "length": 4},
                                invoicing_method="print_your_own_slip")
    months = start_subscription(app, started_on=date(2026, 11, 1))
    payment_id = uuid4()
    with operator():
        by_issues = app.invoice_subscription(business_unit="bu-1", subscription_id=issues.id, due_date=DUE)
        by_months = app.invoice_subscription(business_unit="bu-1", subscription_id=months.id, due_date=DUE)
    await deliver(invoicing.payments, received(by_months, 14900, payment_id=payment_id))
    note = credit(app, by_months, 4900)
    await deliver(invoicing.payments, released(by_months, payment_id, 4900, credit_note_id=note))
    await deliver(invoicing.payments, released(by_months, payment_id, 10000, reason="chargeback"))
    remind(app, by_months, day(3))
    with operator():
        app.stop_subscription(business_unit="bu-1", subscription_id=issues.id, stop_date=date(2026, 12, 1),
                              issues_delivered=4, reason="moved abroad")

    events: dict[str, list[dict[str, Any]]] = {}
    for _, event in published(app, to_integration):
        events.setdefault(type(event).__name__, []).append(_payload(event))
    [unit] = events["BusinessEntityUpdated"]
    assert (unit["time_zone"], unit["reminder_schedule_days"], unit["fik_creditor_number"]) == (
        "America/New_York", [3, 9], "85236417")
    assert unit["postal_address"] == {"lines": ["Bladvej 1"], "postal_code": "8000", "city": "Aarhus C",
                                      "country": "DK"}
    [alice] = events["CustomerUpdated"]
    assert {k: alice[k] for k in ("bank_account", "betalingsservice_mandate", "e_invoice_to_online_banking",
                                  "card_agreement", "mobilepay_agreement")} == {
        "bank_account": {"registration_number": "1234", "account_number": "567890", "iban": None,
                         "bic": None},
        "betalingsservice_mandate": active, "e_invoice_to_online_banking": True,
        "card_agreement": {**cancelled, "cancelled_at": "2026-10-01T00:00:00Z"},
        "mobilepay_agreement": active}
    assert [s["invoicing_method"] for s in events["SubscriptionStarted"]] == ["print_your_own_slip", None]
    assert [(i["subscription_id"], i["period"], i["channel"], i["channel_reason"], i["payment_reference"])
            for i in events["InvoiceIssued"]] == [
        (str(issues.id), {"start": by_issues.period["start"].isoformat(), "end": None, "issues": 4},
         by_issues.channel, by_issues.channel_reason, by_issues.payment_reference),
        (str(months.id), {"start": "2026-11-01", "end": "2026-12-01", "issues": None},
         by_months.channel, by_months.channel_reason, by_months.payment_reference)]
    assert by_issues.channel_reason != by_issues.channel
    assert [p["period"] for p in events["SubscriptionPeriodInvoiced"]] == [
        i["period"] for i in events["InvoiceIssued"]]
    assert [r["credit_note_id"] for r in events["InvoicePaymentReleased"]] == [str(note)]
    assert [r["reason"] for r in events["InvoiceReopened"]] == ["chargeback"]
    assert [(r["number"], r["business_date"]) for r in events["ReminderSent"]] == [(1, day(3).isoformat())]
    assert [s["reason"] for s in events["SubscriptionStopped"]] == ["moved abroad"]


# --- invoicing a subscription while another invoice takes the number (rules I1, C2) -------------------


def test_I1_C2_a_subscription_invoice_that_lost_its_number_to_another_invoice_takes_the_next(
        invoicing: Invoicing, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process issued an invoice of its own lines between this command's read of the
    number sequence and its save: the save conflicts on the sequence only. The subscription
    did not change, so the command retries from what is saved and invoices the period with the
    next number, instead of refusing as if the period had been invoiced meanwhile."""
    app = invoicing.app
    set_up_business_unit(app)
    register_customer(app)
    subscription = start_subscription(app)
    save = app.save
    others: list[Invoice] = []

    def another_process_first(*aggregates: Any, **kwargs: Any) -> Any:
        if not others and any(isinstance(a, Invoice) and a.subscription_id for a in aggregates):
            numbers = (app.get_or_none(InvoiceNumbers.create_id("bu-1"))
                       or InvoiceNumbers(business_unit="bu-1"))
            other = Invoice.issue(numbers=numbers, customer_id="alice", due_date=DUE,
                                  lines=[InvoiceLine(description="x", amount=Money(100, "DKK"))],
                                  terms=Terms.of(entity=app.business_entity(business_unit="bu-1"),
                                                 customer=app.customer(business_unit="bu-1",
                                                                       customer_id="alice")))
            save(numbers, other)
            others.append(other)
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(app, "save", another_process_first)
    with operator():
        invoice = app.invoice_subscription(business_unit="bu-1", subscription_id=subscription.id,
                                           due_date=DUE)
    assert [o.number for o in others] == [1] and invoice.number == 2
    invoiced = app.repository.get(subscription.id).invoiced
    assert [(p["start"], p.get("end"), p.get("invoice_id")) for p in invoiced] == [
        (date(2026, 11, 1), date(2026, 12, 1), invoice.id)]
