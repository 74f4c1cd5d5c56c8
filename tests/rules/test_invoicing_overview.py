"""The customer's overview, the invoice list's filters and an invoice's history, in process
(rules P2, I2, I4, M3, E1, E3): the application on the in-memory event store, the read models
on SQLite, payments' and refunds' events delivered as the consumers would, the real routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest

from saldo_events import payments as payment_events
from saldo_events import refunds as refund_events
from saldo_events.envelope import IntegrationEvent
from saldo_events.envelope import Money as MoneyJSON
from saldo_invoicing import overview
from saldo_invoicing.api import router
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine
from saldo_invoicing.domain.parties import Customer
from saldo_invoicing.integration import to_integration
from saldo_invoicing.overview import HAPPENINGS, OverviewProjection, happening
from saldo_invoicing.policies import FollowPayments
from saldo_invoicing.projections import InvoicesProjection, PartiesProjection
from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.money import Money
from saldo_platform import businessdates
from saldo_platform.context import Context, acting
from saldo_platform.http.pages import BEGINNING, Paging, encode_cursor, sortable_time
from saldo_platform.sql import Database
from tests.inprocess import (
    announced,
    deliver,
    in_memory,
    operator,
    published,
    read_models,
    register_customer,
    serving,
    set_up_business_unit,
    start_subscription,
    stored_v1,
)

TODAY = businessdates.today(ZoneInfo("Europe/Copenhagen"))  # what the routes reckon overdue on (M2)
PAST_DUE = TODAY - timedelta(days=20)
NOT_YET_DUE = TODAY + timedelta(days=10)


def dkk(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "DKK"}


@dataclass
class World:
    """Invoicing with its read models, and what the payments and refunds services announce."""

    app: InvoicingApplication
    db: Database
    invoices: InvoicesProjection
    parties: PartiesProjection
    overview: OverviewProjection
    follow_payments: FollowPayments
    seen: int = 0

    async def catch_up(self) -> None:
        """Deliver what invoicing published since the last time to its own read models."""
        events = published(self.app, to_integration, self.seen)
        for _, event in events:
            await deliver(self.invoices, event)
            await deliver(self.parties, event)
        if events:
            self.seen = events[-1][0]

    async def announce(self, event: IntegrationEvent) -> None:
        """A payments or refunds event: the invoices follow payments (policy), the overview
        keeps both (projection), and invoicing's own read models catch up."""
        if event.__class__.__module__ == payment_events.__name__:
            await deliver(self.follow_payments, event)
        await deliver(self.overview, event)
        await self.catch_up()

    def issue(self, amount: int, *, due: date, unit: str = "bu-1", customer: str = "alice") -> Invoice:
        set_up_business_unit(self.app, unit)
        register_customer(self.app, unit, customer)
        with operator(unit):
            return self.app.issue_invoice(
                business_unit=unit, customer_id=customer, due_date=due,
                lines=[InvoiceLine(description="Bladet, 12 issues", amount=Money(amount, "DKK"))])

    def credit(self, invoice: Invoice, amount: int, reason: str = "two issues missing") -> UUID:
        with operator(invoice.business_unit):
            credited = self.app.issue_credit_note(business_unit=invoice.business_unit,
                                                  invoice_id=invoice.id, minor_units=amount,
                                                  reason=reason)
        return next(reversed(credited.credit_notes))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with read_models(tmp_path) as db:
        projections = (InvoicesProjection(db, ["saldo.invoicing.v1"]),
                       PartiesProjection(db, ["saldo.invoicing.v1"]),
                       OverviewProjection(db, ["saldo.payments.v1", "saldo.refunds.v1"]))
        for projection in projections:
            await projection.setup()
        app = in_memory(InvoicingApplication)
        yield World(app, db, *projections, FollowPayments(app, ["saldo.payments.v1"]))


def received(payment_id: UUID, amount: int, *allocations: tuple[Invoice, int], unit: str = "bu-1",
             customer: str = "alice", at: datetime | None = None,
             correlation_id: str | None = None) -> payment_events.PaymentReceived:
    extra = {"correlation_id": correlation_id} if correlation_id else {}
    event = announced(
        payment_events.PaymentReceived, business_unit=unit, aggregate_id=payment_id,
        payment_id=payment_id, customer_id=customer, method="card", amount=MoneyJSON(**dkk(amount)),
        received_at=at or datetime.now(UTC), provider_reference=f"qp-{payment_id.hex[:6]}",
        allocations=[payment_events.Allocation(invoice_id=i.id, amount=a) for i, a in allocations])
    return event.model_copy(update=extra)


def released(payment_id: UUID, invoice: Invoice, amount: int, *, credit_note_id: UUID | None = None,
             reason: str | None = None) -> payment_events.AmountReleased:
    return announced(payment_events.AmountReleased, business_unit=invoice.business_unit,
                     aggregate_id=payment_id, payment_id=payment_id, invoice_id=invoice.id,
                     credit_note_id=credit_note_id, customer_id=invoice.customer_id,
                     amount=MoneyJSON(**dkk(amount)), reason=reason)


async def ok(client: httpx.AsyncClient, path: str) -> Any:
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- The customer's overview ---------------------------------------------------------------------


async def test_P2_payments_with_money_not_allocated_are_flagged_in_the_customers_overview(
        world: World) -> None:
    first, second, third = (world.issue(a, due=NOT_YET_DUE) for a in (10000, 5000, 3000))
    await world.catch_up()
    p1, p2, p3 = uuid4(), uuid4(), uuid4()
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    await world.announce(received(p1, 15000, (first, 10000), at=start))  # 50.00 left over
    await world.announce(received(p2, 5000, (second, 5000), at=start + timedelta(hours=1)))
    await world.announce(received(p3, 3000, at=start + timedelta(hours=2)))  # nothing placed yet
    await world.announce(announced(payment_events.PaymentAllocated, aggregate_id=p3, payment_id=p3,
                                   invoice_id=third.id, amount=MoneyJSON(**dkk(3000))))
    credit_note = world.credit(second, 2000)
    await world.catch_up()
    await world.announce(released(p2, second, 2000, credit_note_id=credit_note))  # rule I3
    refund_id = uuid4()
    await world.announce(announced(
        refund_events.RefundRequested, refund_id=refund_id, payment_id=p1, customer_id="alice",
        channel="card", amount=MoneyJSON(**dkk(1000)), reason="asked for the rest back"))

    async with serving("invoicing", router, world.app, world.db) as client:
        seen = await ok(client, "/v1/customers/alice/overview")
        payments = seen["payments"]["items"]
        assert [p["id"] for p in payments] == [str(p1), str(p2), str(p3)]  # in received order
        assert [(p["allocated"]["amount"], p["unallocated"]["amount"], p["has_unallocated"])
                for p in payments] == [(10000, 5000, True), (3000, 2000, True), (3000, 0, False)]
        assert payments[0]["method"] == "card" and payments[0]["amount"] == dkk(15000)
        assert payments[0]["refund_in_progress"] == dkk(1000) and payments[0]["waiting"] == dkk(4000)
        assert seen["balance"] == {"unsettled_invoices": 0, "overdue_invoices": 0, "left_to_pay": [],
                                   "payments_with_unallocated": 2, "unallocated": [dkk(7000)]}
        assert [i["status"] for i in seen["invoices"]["items"]] == ["paid", "paid", "paid"]
        assert [r["status"] for r in seen["refunds"]["items"]] == ["in_progress"]

        await world.announce(announced(
            refund_events.RefundSucceeded, refund_id=refund_id, payment_id=p1, customer_id="alice",
            channel="card", amount=MoneyJSON(**dkk(1000))))
        after = await ok(client, "/v1/customers/alice/payments")
        # Refunded money stays unallocated (M6: unallocated = refundable + in progress + refunded),
        # so the flag stays; what still waits for an operator is shown beside it.
        assert after["items"][0]["has_unallocated"] is True
        assert (after["items"][0]["refunded"], after["items"][0]["refund_in_progress"],
                after["items"][0]["waiting"]) == (dkk(1000), dkk(0), dkk(4000))
        refunds = await ok(client, "/v1/customers/alice/refunds")
        assert refunds["items"][0]["status"] == "refunded" and refunds["items"][0]["refunded_at"]

        one_at_a_time = await ok(client, "/v1/customers/alice/payments?limit=2")
        rest = await ok(client, f"/v1/customers/alice/payments?limit=2&after={one_at_a_time['next_cursor']}")
        assert one_at_a_time["items"] + rest["items"] == after["items"] and rest["next_cursor"] is None


async def test_I2_I4_the_overview_shows_invoices_with_status_and_overdue_credit_notes_reminders(
        world: World) -> None:
    late, paid_in_part, fresh, credited = (
        world.issue(10000, due=PAST_DUE), world.issue(8000, due=PAST_DUE),
        world.issue(6000, due=NOT_YET_DUE), world.issue(4000, due=PAST_DUE))
    subscription = start_subscription(world.app, "bu-1", "alice")
    world.credit(credited, 4000, reason="never delivered")
    world.credit(late, 1000, reason="one issue late")
    await world.catch_up()
    await world.announce(received(uuid4(), 3000, (paid_in_part, 3000)))
    with acting(Context(business_unit="bu-1", actor="job:reminders", correlation_id="run-1")):
        for invoice, days in ((late, 7), (paid_in_part, 7), (late, 14)):
            assert world.app.send_reminder(business_unit="bu-1", invoice_id=invoice.id,
                                           today=PAST_DUE + timedelta(days=days))
        # Credited in full: never reminded (rule I2).
        assert not world.app.send_reminder(business_unit="bu-1", invoice_id=credited.id,
                                           today=PAST_DUE + timedelta(days=7))
    await world.catch_up()

    async with serving("invoicing", router, world.app, world.db) as client:
        seen = await ok(client, "/v1/customers/alice/overview")
        assert seen["customer"] == await ok(client, "/v1/customers/alice")
        assert seen["today"] == TODAY.isoformat()
        shown = {i["id"]: (i["status"], i["overdue"], i["paid"], i["credited"])
                 for i in seen["invoices"]["items"]}
        assert shown == {str(late.id): ("open", True, 0, 1000),
                         str(paid_in_part.id): ("partially_paid", True, 3000, 0),
                         str(fresh.id): ("open", False, 0, 0),
                         str(credited.id): ("credited", False, 0, 4000)}
        # The invoices as GET /v1/invoices?customer_id= shows them (InvoiceOut, not a copy).
        assert seen["invoices"] == await ok(client, "/v1/invoices?customer_id=alice")
        assert seen["balance"] == {"unsettled_invoices": 3, "overdue_invoices": 2,
                                   "left_to_pay": [dkk(9000 + 5000 + 6000)],
                                   "payments_with_unallocated": 0, "unallocated": []}
        assert [(n["invoice_id"], n["reason"]) for n in seen["credit_notes"]["items"]] == [
            (str(credited.id), "never delivered"), (str(late.id), "one issue late")]
        reminders = seen["reminders"]["items"]
        assert [(r["invoice_number"], r["number"], r["business_date"]) for r in reminders] == [
            (late.number, 1, (PAST_DUE + timedelta(days=7)).isoformat()),
            (paid_in_part.number, 1, (PAST_DUE + timedelta(days=7)).isoformat()),
            (late.number, 2, (PAST_DUE + timedelta(days=14)).isoformat())]
        assert [s["id"] for s in seen["subscriptions"]["items"]] == [str(subscription.id)]
        assert seen["payments"]["items"][0]["has_unallocated"] is False

        # Lists that grow are paged: each continues on its own route from the overview's cursor.
        short = await ok(client, "/v1/customers/alice/overview?limit=2")
        more_invoices = await ok(client, "/v1/invoices?customer_id=alice&after="
                                 + short["invoices"]["next_cursor"])
        assert short["invoices"]["items"] + more_invoices["items"] == seen["invoices"]["items"]
        more_reminders = await ok(client, "/v1/customers/alice/reminders?after="
                                  + short["reminders"]["next_cursor"])
        assert short["reminders"]["items"] + more_reminders["items"] == seen["reminders"]["items"]
        assert short["credit_notes"]["next_cursor"] is None  # exactly two: no next page
        notes = await ok(client, "/v1/customers/alice/credit-notes")
        assert notes["items"] == seen["credit_notes"]["items"]
        bad = await client.get("/v1/customers/alice/reminders?after=" + short["invoices"]["next_cursor"])
        assert bad.status_code == 400, bad.text  # another list's cursor is not a reminder's


async def test_M3_another_business_units_customer_and_money_are_not_seen(world: World) -> None:
    ours = world.issue(10000, due=PAST_DUE)
    theirs = world.issue(7000, due=PAST_DUE, unit="bu-2")  # their own "alice"
    register_customer(world.app, "bu-1", "bob")
    await world.catch_up()
    await world.announce(received(uuid4(), 9000, (theirs, 7000), unit="bu-2"))
    await world.announce(announced(
        refund_events.RefundRequested, business_unit="bu-2", refund_id=uuid4(), payment_id=uuid4(),
        customer_id="alice", channel="card", amount=MoneyJSON(**dkk(500)), reason="theirs"))

    async with serving("invoicing", router, world.app, world.db, "bu-1") as client, \
            serving("invoicing", router, world.app, world.db, "bu-2") as other:
        seen = await ok(client, "/v1/customers/alice/overview")
        assert [i["id"] for i in seen["invoices"]["items"]] == [str(ours.id)]
        assert seen["payments"]["items"] == [] and seen["refunds"]["items"] == []
        assert seen["balance"]["unallocated"] == [] and seen["balance"]["left_to_pay"] == [dkk(10000)]
        theirs_seen = await ok(other, "/v1/customers/alice/overview")
        assert [i["id"] for i in theirs_seen["invoices"]["items"]] == [str(theirs.id)]
        assert theirs_seen["balance"]["unallocated"] == [dkk(2000)]

        for path in ("overview", "payments", "refunds", "credit-notes", "reminders"):
            for client_, customer in ((other, "bob"), (client, "nobody")):
                answer = await client_.get(f"/v1/customers/{customer}/{path}")
                assert answer.status_code == 404, (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"


# --- The invoice list's filters (rule I2) -------------------------------------------------------


async def test_I2_the_invoice_list_filters_by_status_and_overdue(world: World) -> None:
    invoices = {
        "open, overdue": world.issue(1000, due=PAST_DUE),
        "open, not due": world.issue(1000, due=NOT_YET_DUE),
        "partly paid, overdue": world.issue(1000, due=PAST_DUE),
        "partly paid, not due": world.issue(1000, due=NOT_YET_DUE, customer="bob"),
        "paid after its due date": world.issue(1000, due=PAST_DUE),
        "credited": world.issue(1000, due=PAST_DUE),
        "reopened": world.issue(1000, due=PAST_DUE),
    }
    world.issue(1000, due=PAST_DUE, unit="bu-2")  # another unit's: never listed (M3)
    world.credit(invoices["credited"], 1000)
    await world.catch_up()
    payment = uuid4()
    await world.announce(received(
        payment, 5000, (invoices["partly paid, overdue"], 400), (invoices["paid after its due date"], 1000),
        (invoices["reopened"], 1000)))
    await world.announce(received(uuid4(), 400, (invoices["partly paid, not due"], 400), customer="bob"))
    # Released without a credit note: unpaid again (I3), so overdue again (I4).
    await world.announce(released(payment, invoices["reopened"], 1000, reason="chargeback"))
    name = {str(invoice.id): label for label, invoice in invoices.items()}

    async with serving("invoicing", router, world.app, world.db) as client:

        async def listed(query: str) -> set[str]:
            return {name[i["id"]] for i in (await ok(client, f"/v1/invoices?{query}"))["items"]}

        assert await listed("") == set(invoices)
        assert await listed("status=open") == {"open, overdue", "open, not due", "reopened"}
        assert await listed("status=partially_paid") == {"partly paid, overdue", "partly paid, not due"}
        assert await listed("status=paid") == {"paid after its due date"}
        assert await listed("status=credited") == {"credited"}
        # Overdue: unsettled and past due; a paid or credited invoice never is (I2).
        assert await listed("overdue=true") == {"open, overdue", "partly paid, overdue", "reopened"}
        assert await listed("overdue=false") == {"open, not due", "partly paid, not due",
                                                 "paid after its due date", "credited"}
        assert await listed("status=open&overdue=true") == {"open, overdue", "reopened"}
        assert await listed("status=partially_paid&overdue=false") == {"partly paid, not due"}
        assert await listed("status=paid&overdue=true") == set()
        assert await listed("status=partially_paid&customer_id=bob") == {"partly paid, not due"}
        every = (await ok(client, "/v1/invoices?overdue=true"))["items"]
        assert all(i["overdue"] for i in every)

        for query, field in (("status=overdue", "status"), ("overdue=maybe", "overdue")):
            wrong = await client.get(f"/v1/invoices?{query}")
            assert wrong.status_code == 422, wrong.text
            assert f"query.{field}" in [e["location"] for e in wrong.json()["errors"]], wrong.json()


# --- An invoice's history, from its event store (rules E1, E3) ------------------------------------


async def test_E1_E3_an_invoices_history_says_what_happened_when_who_and_why(world: World) -> None:
    set_up_business_unit(world.app, "bu-1")
    register_customer(world.app, "bu-1", "alice")
    async with serving("invoicing", router, world.app, world.db) as client, \
            serving("invoicing", router, world.app, world.db, "bu-2") as other:
        created = await client.post("/v1/invoices", json={
            "customer_id": "alice", "currency": "DKK", "due_date": PAST_DUE.isoformat(),
            "lines": [{"description": "Bladet, 12 issues", "amount": 49900}]},
            headers={"X-Correlation-Id": "corr-issue"})
        assert created.status_code == 201, created.text
        invoice_id = UUID(created.json()["id"])
        invoice: Invoice = world.app.repository.get(invoice_id)
        payment = uuid4()
        pay = received(payment, 49900, (invoice, 49900), correlation_id="corr-pay")
        await world.announce(pay)
        credited = await client.post(f"/v1/invoices/{invoice_id}/credit-notes", json={
            "amount": 10000, "reason": "two issues missing"}, headers={"X-Correlation-Id": "corr-credit"})
        assert credited.status_code == 201, credited.text
        credit_note_id = UUID(credited.json()["id"])
        await world.announce(released(payment, invoice, 10000, credit_note_id=credit_note_id))
        await world.announce(released(payment, invoice, 5000, reason="chargeback from the card issuer"))
        with acting(Context(business_unit="bu-1", actor="job:reminders", correlation_id="run-7")):
            assert world.app.send_reminder(business_unit="bu-1", invoice_id=invoice_id,
                                           today=PAST_DUE + timedelta(days=7))

        history = await ok(client, f"/v1/invoices/{invoice_id}/history")
        entries = history["items"]
        assert history["next_cursor"] is None
        assert [(e["version"], e["what"]) for e in entries] == [
            (1, "issued"), (2, "payment applied"), (3, "credit note issued"),
            (4, "payment released for a credit note"), (5, "reopened"), (6, "reminder sent")]
        api_key = entries[0]["who"]
        assert api_key.startswith("api-key:") and entries[2]["who"] == api_key
        policy = "policy:invoicing.follow-payments"
        assert [e["who"] for e in entries[1:]] == [policy, api_key, policy, policy, "job:reminders"]
        assert [e["why"] for e in entries] == [
            created.json()["channel_reason"], None, "two issues missing", "two issues missing",
            "chargeback from the card issuer", f"unpaid and past its due date {PAST_DUE} (rule I4)"]
        assert [e["correlation_id"] for e in entries[:4]] == ["corr-issue", "corr-pay", "corr-credit",
                                                              entries[3]["correlation_id"]]
        assert entries[5]["correlation_id"] == "run-7"
        # A policy's event names the other service's event it reacted to.
        assert entries[1]["causation_id"] == str(pay.event_id) and entries[0]["causation_id"] is None
        assert [e["amount"] for e in entries] == [dkk(49900), dkk(49900), dkk(10000), dkk(10000),
                                                  dkk(5000), None]
        assert [(e["payment_id"], e["credit_note_id"]) for e in entries[1:5]] == [
            (str(payment), None), (None, str(credit_note_id)), (str(payment), str(credit_note_id)),
            (str(payment), None)]
        assert (entries[5]["reminder"], entries[5]["business_date"]) == (
            1, (PAST_DUE + timedelta(days=7)).isoformat())
        assert [(e["balance_after"]["status"], e["balance_after"]["credited"]["amount"],
                 e["balance_after"]["paid"]["amount"]) for e in entries] == [
            ("open", 0, 0), ("paid", 0, 49900), ("paid", 10000, 49900), ("paid", 10000, 39900),
            ("partially_paid", 10000, 34900), ("partially_paid", 10000, 34900)]
        times = [datetime.fromisoformat(e["at"]) for e in entries]
        assert all(t.utcoffset() == timedelta(0) for t in times) and times == sorted(times)  # UTC (M2)
        assert entries[0]["summary"].startswith(f"Invoice {invoice.number} issued to alice: 499.00 DKK")

        first = await ok(client, f"/v1/invoices/{invoice_id}/history?limit=4")
        rest = await ok(client, f"/v1/invoices/{invoice_id}/history?limit=4&after={first['next_cursor']}")
        assert first["items"] + rest["items"] == entries and rest["next_cursor"] is None

        for asked, path in ((other, f"/v1/invoices/{invoice_id}/history"),  # another unit's (M3)
                            (client, f"/v1/invoices/{uuid4()}/history"),
                            (client, f"/v1/invoices/{Customer.create_id('bu-1', 'alice')}/history")):
            answer = await asked.get(path)
            assert answer.status_code == 404, (path, answer.text)
        cursor = encode_cursor(sortable_time(times[0]), "not-a-version")
        tampered = await client.get(f"/v1/invoices/{invoice_id}/history?after={cursor}")
        assert tampered.status_code == 400, tampered.text


def test_E1_the_history_reads_an_invoice_stored_by_an_earlier_build() -> None:
    app = in_memory(InvoicingApplication)
    invoice_id = uuid4()
    app.recorder.insert_events([stored_v1(
        "saldo_invoicing.domain:Invoice", invoice_id, 1, "Issued",
        originator_topic="saldo_invoicing.domain:Invoice", business_unit="bu-1", number=7,
        customer_id="alice", currency="DKK", lines=[{"description": "issue 1", "amount": 30000}],
        due_date={"_type_": "date_iso", "_data_": "2026-12-01"})])

    found = overview.invoice_history(app, "bu-1", invoice_id, Paging(50, BEGINNING))
    assert found is not None
    (entry,) = found.items
    assert (entry.what, entry.who, entry.amount, entry.why) == (
        "issued", "api-key:old", MoneyJSON(**dkk(30000)), "issued before channels were resolved")
    assert entry.correlation_id is None and entry.balance_after.status == "open"
    assert overview.invoice_history(app, "bu-2", invoice_id, Paging(50, BEGINNING)) is None  # M3


def test_E3_every_event_of_an_invoice_has_a_name_in_operators_words() -> None:
    events = {cls for name, cls in vars(Invoice).items() if name not in ("Event", "Created")
              and isinstance(cls, type) and issubclass(cls, SaldoAggregate.Event)}
    assert events == set(HAPPENINGS), "name the new invoice event in overview.HAPPENINGS"

    class DocumentSent(SaldoAggregate.Event):
        pass

    assert happening(DocumentSent.__new__(DocumentSent)) == "document sent"  # until it is named
