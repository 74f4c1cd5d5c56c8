"""What operators look up about one customer, and the history of one invoice (rules P2, I2, I4, E1).

The customer's overview reads the invoicing read models as they are (invoices, credit notes
and reminders of `InvoicesProjection`, the customer and subscriptions of `PartiesProjection`)
and adds what only other services know: the customer's payments, with what is not allocated
flagged (rule P2), and their refunds. Those come from payments' and refunds' events into this
module's own tables (`OverviewProjection`); nothing here decides how money moves, it adds up
what the events carry.

An invoice's history is read from the event store itself, not from a read model (rule E1):
every event in order, with who caused it, when, why, and the invoice's balance after it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import HTTPException
from pydantic import BaseModel, Field

from saldo_events import payments, refunds
from saldo_events.envelope import IntegrationEvent, Money
from saldo_events.payments import PaymentMethod
from saldo_events.refunds import RefundChannel
from saldo_invoicing import queries
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceStatus
from saldo_invoicing.queries import CreditNoteOut, CustomerOut, InvoiceOut, SubscriptionOut
from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.money import Money as Amount
from saldo_platform.eventstore import event_metadata
from saldo_platform.http.pages import BEGINNING, Page, Paging, sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Database, Executor


class OverviewProjection(Projection):
    """Each customer's payments and refunds, as the payments and refunds services published them.

    One aggregate's events share a partition (the message key is its id), so a payment's
    allocations and releases always come after its `PaymentReceived`, and a refund's success
    after its request. Payments and refunds are two topics with no order between them, so
    neither table refers to the other: they are joined when read.
    """

    name = "invoicing.overview"
    schema = {
        "customer_payments": """(
            payment_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, customer_id TEXT NOT NULL,
            method TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            received_at TEXT NOT NULL, provider_reference TEXT, allocated BIGINT NOT NULL,
            released BIGINT NOT NULL, version BIGINT NOT NULL)""",
        "customer_refunds": """(
            refund_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, customer_id TEXT NOT NULL,
            payment_id TEXT NOT NULL, channel TEXT NOT NULL, amount BIGINT NOT NULL,
            currency TEXT NOT NULL, reason TEXT NOT NULL, requested_at TEXT NOT NULL,
            refunded_at TEXT)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, payments.PaymentReceived):
            await tx.execute(self.sql(
                "INSERT INTO {customer_payments} (payment_id, business_unit, customer_id, method,"
                " amount, currency, received_at, provider_reference, allocated, released, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10) ON CONFLICT DO NOTHING"),
                str(event.payment_id), event.business_unit, event.customer_id, event.method,
                event.amount.amount, event.amount.currency, sortable_time(event.received_at),
                event.provider_reference, sum(a.amount for a in event.allocations),
                event.aggregate_version)
        elif isinstance(event, payments.PaymentAllocated):
            await tx.execute(self.sql(
                "UPDATE {customer_payments} SET allocated = allocated + $2, version = $3"
                " WHERE payment_id = $1"),
                str(event.payment_id), event.amount.amount, event.aggregate_version)
        elif isinstance(event, payments.AmountReleased):
            # For a credit note or for a refund (rule M6): either way it is unallocated again.
            await tx.execute(self.sql(
                "UPDATE {customer_payments} SET released = released + $2, version = $3"
                " WHERE payment_id = $1"),
                str(event.payment_id), event.amount.amount, event.aggregate_version)
        elif isinstance(event, refunds.RefundRequested):
            await tx.execute(self.sql(
                "INSERT INTO {customer_refunds} (refund_id, business_unit, customer_id, payment_id,"
                " channel, amount, currency, reason, requested_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"),
                str(event.refund_id), event.business_unit, event.customer_id, str(event.payment_id),
                event.channel, event.amount.amount, event.amount.currency, event.reason,
                sortable_time(event.occurred_at))
        elif isinstance(event, refunds.RefundSucceeded):
            await tx.execute(self.sql(
                "UPDATE {customer_refunds} SET refunded_at = $2 WHERE refund_id = $1"),
                str(event.refund_id), sortable_time(event.occurred_at))


# --- The customer's overview (rules P2, I2, I4, M3) ---------------------------------------------


class CustomerPaymentOut(BaseModel):
    """A payment of the customer; `has_unallocated` is the operators' cue that money waits to
    be placed on an invoice or refunded (rule P2)."""

    id: UUID
    method: PaymentMethod
    amount: Money
    received_at: datetime
    provider_reference: str | None
    allocated: Money = Field(description="on invoices now: allocated, less what was released")
    unallocated: Money = Field(description="the amount less what is on invoices now (rule P2)")
    has_unallocated: bool = Field(description="some of it is not allocated (rule P2)")
    refund_in_progress: Money = Field(description="of its refunds, what has not reached the customer")
    refunded: Money = Field(description="of its refunds, what reached the customer")
    waiting: Money = Field(description="unallocated, less its refunds in progress and refunded: "
                                       "what is left to refund or re-use (rules P2, P3)")
    version: int = Field(description="the payment's version in the payments service")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CustomerPaymentOut:
        currency = row["currency"]
        allocated = row["allocated"] - row["released"]
        unallocated = row["amount"] - allocated
        # Refunds come from another topic than allocations: for a moment one can be ahead.
        waiting = max(unallocated - row["refund_in_progress"] - row["refunded"], 0)
        return cls(id=row["payment_id"], method=row["method"],
                   amount=Money(amount=row["amount"], currency=currency),
                   received_at=row["received_at"], provider_reference=row["provider_reference"],
                   allocated=Money(amount=allocated, currency=currency),
                   unallocated=Money(amount=unallocated, currency=currency),
                   has_unallocated=unallocated > 0,
                   refund_in_progress=Money(amount=row["refund_in_progress"], currency=currency),
                   refunded=Money(amount=row["refunded"], currency=currency),
                   waiting=Money(amount=waiting, currency=currency), version=row["version"])


class CustomerRefundOut(BaseModel):
    """A refund of one of the customer's payments, as the refunds service reported it."""

    id: UUID
    payment_id: UUID
    channel: RefundChannel
    amount: Money
    reason: str
    status: Literal["in_progress", "refunded"]
    requested_at: datetime
    refunded_at: datetime | None = Field(description="when the money reached the customer")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CustomerRefundOut:
        return cls(id=row["refund_id"], payment_id=row["payment_id"], channel=row["channel"],
                   amount=Money(amount=row["amount"], currency=row["currency"]), reason=row["reason"],
                   status="refunded" if row["refunded_at"] else "in_progress",
                   requested_at=row["requested_at"], refunded_at=row["refunded_at"])


class ReminderOut(BaseModel):
    """A reminder sent for one of the customer's invoices (rule I4)."""

    invoice_id: UUID
    invoice_number: int
    number: int = Field(description="the invoice's 1st, 2nd … reminder")
    business_date: date = Field(description="the business unit's date it was sent on (rule M2)")
    sent_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReminderOut:
        return cls(invoice_id=row["invoice_id"], invoice_number=row["invoice_number"],
                   number=row["number"], business_date=row["business_date"], sent_at=row["sent_at"])


class CustomerBalance(BaseModel):
    """The customer's standing at a glance; amounts per currency, in currency order."""

    unsettled_invoices: int = Field(description="open or partially paid (rule I2)")
    overdue_invoices: int = Field(description="unsettled and past due on the unit's business date (I2)")
    left_to_pay: list[Money] = Field(description="of unsettled invoices: total − credited − paid")
    payments_with_unallocated: int = Field(description="payments flagged by rule P2")
    unallocated: list[Money] = Field(description="what those payments have not allocated (rule P2)")


class CustomerOverview(BaseModel):
    """One customer of the business unit with everything invoiced, paid and refunded.

    Each list holds its first `limit` items in order of occurrence; its `next_cursor` continues
    on the list of its own (`after=`): GET /v1/invoices?customer_id=, /v1/subscriptions?customer_id=,
    /v1/customers/{customer_id}/credit-notes, …/reminders, …/payments and …/refunds.
    """

    customer: CustomerOut
    today: date = Field(description="the business unit's business date overdue is reckoned on (M2)")
    balance: CustomerBalance
    invoices: Page[InvoiceOut]
    credit_notes: Page[CreditNoteOut]
    reminders: Page[ReminderOut]
    subscriptions: Page[SubscriptionOut]
    payments: Page[CustomerPaymentOut]
    refunds: Page[CustomerRefundOut]


async def customer_overview(db: Database, business_unit: str, customer_id: str,
                            limit: int) -> CustomerOverview | None:
    """None when the unit has no such customer (rule M3: another unit's is not found here)."""
    customer = await queries.customer(db, business_unit, customer_id)
    if customer is None:
        return None
    today = await queries.unit_today(db, business_unit)
    first = Paging(limit, BEGINNING)
    return CustomerOverview(
        customer=customer, today=today, balance=await balance(db, business_unit, customer_id, today),
        invoices=await queries.invoices(db, business_unit, first, customer_id=customer_id,
                                        status=None, overdue=None, today=today),
        credit_notes=await credit_notes(db, business_unit, customer_id, first),
        reminders=await reminders(db, business_unit, customer_id, first),
        subscriptions=await queries.subscriptions(db, business_unit, first, customer_id=customer_id),
        payments=await customer_payments(db, business_unit, customer_id, first),
        refunds=await customer_refunds(db, business_unit, customer_id, first))


async def is_customer(db: Database, business_unit: str, customer_id: str) -> bool:
    return await db.fetchval("SELECT 1 FROM customers WHERE business_unit = $1 AND customer_id = $2",
                             business_unit, customer_id) is not None


async def balance(db: Database, business_unit: str, customer_id: str, today: date) -> CustomerBalance:
    """Counted in SQL over all the customer's rows, however many pages they fill."""
    invoices = await db.fetch(
        "SELECT i.currency, count(*) AS unsettled,"
        " coalesce(sum(CASE WHEN i.due_date < $3 THEN 1 ELSE 0 END), 0) AS overdue,"
        " CAST(sum(i.total - i.credited - coalesce(p.paid, 0)) AS BIGINT) AS left_to_pay"
        " FROM invoices i LEFT JOIN invoice_payments p ON p.invoice_id = i.invoice_id"
        " WHERE i.business_unit = $1 AND i.customer_id = $2 AND i.status IN ('open', 'partially_paid')"
        " GROUP BY i.currency ORDER BY i.currency", business_unit, customer_id, today.isoformat())
    flagged = await db.fetch(
        "SELECT currency, count(*) AS payments,"
        " CAST(sum(amount - allocated + released) AS BIGINT) AS unallocated FROM customer_payments"
        " WHERE business_unit = $1 AND customer_id = $2 AND amount - allocated + released > 0"
        " GROUP BY currency ORDER BY currency", business_unit, customer_id)
    return CustomerBalance(
        unsettled_invoices=sum(r["unsettled"] for r in invoices),
        overdue_invoices=sum(r["overdue"] for r in invoices),
        left_to_pay=[Money(amount=r["left_to_pay"], currency=r["currency"]) for r in invoices],
        payments_with_unallocated=sum(r["payments"] for r in flagged),
        unallocated=[Money(amount=r["unallocated"], currency=r["currency"]) for r in flagged])


async def credit_notes(db: Database, business_unit: str, customer_id: str,
                       paging: Paging) -> Page[CreditNoteOut]:
    """The customer's credit notes, of all its invoices, in the order they were issued (I3)."""
    rows = await db.fetch(
        "SELECT * FROM credit_notes WHERE business_unit = $1 AND customer_id = $2"
        " AND (issued_at, credit_note_id) > ($3, $4) ORDER BY issued_at, credit_note_id LIMIT $5",
        business_unit, customer_id, *paging.after, paging.limit + 1)
    return Page[CreditNoteOut].of([CreditNoteOut.from_row(r) for r in rows], paging.limit,
                                  key=lambda c: (sortable_time(c.issued_at), str(c.id)))


def _reminder_cursor_id(reminder: ReminderOut) -> str:
    return f"{reminder.invoice_id}:{reminder.number}"


def _after_reminder(paging: Paging) -> tuple[str, str, int]:
    """(sent_at, invoice id, number) of the last reminder already seen."""
    time, item = paging.after
    if (time, item) == BEGINNING:
        return "", "", 0
    invoice_id, _, number = item.rpartition(":")
    if not invoice_id or not number.isdigit():
        raise HTTPException(400, "after must be the next_cursor of a previous page, unchanged")
    return time, invoice_id, int(number)


async def reminders(db: Database, business_unit: str, customer_id: str, paging: Paging) -> Page[ReminderOut]:
    """The reminders sent for the customer's invoices, in the order they were sent (rule I4)."""
    rows = await db.fetch(
        "SELECT r.*, i.number AS invoice_number FROM reminders r"
        " JOIN invoices i ON i.invoice_id = r.invoice_id"
        " WHERE r.business_unit = $1 AND r.customer_id = $2"
        " AND (r.sent_at, r.invoice_id, r.number) > ($3, $4, $5)"
        " ORDER BY r.sent_at, r.invoice_id, r.number LIMIT $6",
        business_unit, customer_id, *_after_reminder(paging), paging.limit + 1)
    return Page[ReminderOut].of([ReminderOut.from_row(r) for r in rows], paging.limit,
                                key=lambda r: (sortable_time(r.sent_at), _reminder_cursor_id(r)))


async def customer_payments(db: Database, business_unit: str, customer_id: str,
                            paging: Paging) -> Page[CustomerPaymentOut]:
    """The customer's payments in the order they were received, with their refunds added up."""
    refunds_of = ("SELECT CAST(coalesce(sum(r.amount), 0) AS BIGINT) FROM customer_refunds r"
                  " WHERE r.payment_id = p.payment_id AND r.currency = p.currency AND r.refunded_at IS")
    rows = await db.fetch(
        f"SELECT p.*, ({refunds_of} NULL) AS refund_in_progress, ({refunds_of} NOT NULL) AS refunded"
        " FROM customer_payments p WHERE p.business_unit = $1 AND p.customer_id = $2"
        " AND (p.received_at, p.payment_id) > ($3, $4) ORDER BY p.received_at, p.payment_id LIMIT $5",
        business_unit, customer_id, *paging.after, paging.limit + 1)
    return Page[CustomerPaymentOut].of([CustomerPaymentOut.from_row(r) for r in rows], paging.limit,
                                       key=lambda p: (sortable_time(p.received_at), str(p.id)))


async def customer_refunds(db: Database, business_unit: str, customer_id: str,
                           paging: Paging) -> Page[CustomerRefundOut]:
    """The customer's refunds in the order they were requested."""
    rows = await db.fetch(
        "SELECT * FROM customer_refunds WHERE business_unit = $1 AND customer_id = $2"
        " AND (requested_at, refund_id) > ($3, $4) ORDER BY requested_at, refund_id LIMIT $5",
        business_unit, customer_id, *paging.after, paging.limit + 1)
    return Page[CustomerRefundOut].of([CustomerRefundOut.from_row(r) for r in rows], paging.limit,
                                      key=lambda r: (sortable_time(r.requested_at), str(r.id)))


# --- An invoice's history, from the event store (rules E1, E3) ----------------------------------

# What each of an invoice's events is called in operators' words.
HAPPENINGS: dict[type[SaldoAggregate.Event], str] = {
    Invoice.Issued: "issued",
    Invoice.CreditNoteIssued: "credit note issued",
    Invoice.PaymentApplied: "payment applied",
    Invoice.PaymentReleased: "payment released for a credit note",
    Invoice.Reopened: "reopened",
    Invoice.ReminderSent: "reminder sent",
}


def happening(event: SaldoAggregate.Event) -> str:
    """An event's name in operators' words; one not named yet still reads: "DocumentSent" is
    "document sent"."""
    known = HAPPENINGS.get(type(event))
    if known is not None:
        return known
    return re.sub(r"(?<!^)(?=[A-Z])", " ", type(event).__name__).lower()


class InvoiceBalance(BaseModel):
    """The invoice right after an event (rule I2)."""

    status: InvoiceStatus
    total: Money
    credited: Money
    paid: Money


class InvoiceEventOut(BaseModel):
    """One event of an invoice: what happened, when, who did it and why (rules E1, E3)."""

    version: int = Field(description="its place in the invoice's history; the invoice's ETag after it")
    what: str = Field(description="in operators' words: issued, credit note issued, payment applied, "
                                  "payment released for a credit note, reopened, reminder sent")
    summary: str = Field(description="one sentence an operator reads")
    at: datetime = Field(description="when it was recorded, UTC")
    who: str = Field(description='the API key ("api-key:<id>"), policy ("policy:<name>") or job '
                                 '("job:<name>") that caused it')
    why: str | None = Field(description="the reason given or applied: the credit note's, the "
                                        "release's, the channel's (rule C3), the reminder's (I4)")
    correlation_id: str | None = Field(description="shared by everything one request or run caused")
    causation_id: str | None = Field(description="the event id another service published, when a "
                                                 "policy reacted to it")
    amount: Money | None = Field(description="the amount it concerns: the total when issued")
    payment_id: UUID | None
    credit_note_id: UUID | None
    reminder: int | None = Field(description="the reminder's number (1st, 2nd …)")
    business_date: date | None = Field(description="the business date a reminder was sent on (M2)")
    balance_after: InvoiceBalance

    @classmethod
    def of(cls, event: SaldoAggregate.Event, invoice: Invoice) -> InvoiceEventOut:
        """`event` as it left `invoice` (the invoice with it and every earlier event applied)."""
        meta = event_metadata(event)
        amount: Amount | None = None
        why: str | None = None
        payment_id = credit_note_id = None
        reminder = business_date = None
        summary = f"{happening(event).capitalize()}."
        if isinstance(event, Invoice.Issued):
            amount, why = invoice.total, event.channel_reason
            summary = (f"Invoice {invoice.number} issued to {invoice.customer_id}: {invoice.total}, "
                       f"due {invoice.due_date}, by {invoice.channel}.")
        elif isinstance(event, Invoice.CreditNoteIssued):
            amount, why, credit_note_id = event.amount, event.reason, event.credit_note_id
            summary = f"Credit note of {event.amount} issued."
        elif isinstance(event, Invoice.PaymentApplied):
            amount, payment_id = event.amount, event.payment_id
            summary = f"{event.amount} of payment {event.payment_id} applied."
        elif isinstance(event, Invoice.PaymentReleased):
            amount, payment_id, credit_note_id = event.amount, event.payment_id, event.credit_note_id
            note = invoice.credit_notes.get(event.credit_note_id)
            why = note.reason if note else None
            summary = (f"{event.amount} of payment {event.payment_id} released for credit note "
                       f"{event.credit_note_id}; the invoice stays settled for it.")
        elif isinstance(event, Invoice.Reopened):
            amount, why, payment_id = event.amount, event.reason, event.payment_id
            summary = (f"{event.amount} of payment {event.payment_id} released without a credit "
                       "note: unpaid again by as much, reminders resume.")
        elif isinstance(event, Invoice.ReminderSent):
            reminder, business_date = event.number, event.business_date
            why = f"unpaid and past its due date {invoice.due_date} (rule I4)"
            summary = f"Reminder {event.number} sent on {event.business_date}."
        return cls(
            version=event.originator_version, what=happening(event), summary=summary,
            at=event.timestamp.astimezone(UTC), who=meta.get("actor") or "system", why=why,
            correlation_id=meta.get("correlation_id"), causation_id=meta.get("causation_id"),
            amount=Money.of(amount) if amount is not None else None, payment_id=payment_id,
            credit_note_id=credit_note_id, reminder=reminder, business_date=business_date,
            balance_after=InvoiceBalance(status=invoice.status, total=Money.of(invoice.total),
                                         credited=Money.of(invoice.credited),
                                         paid=Money.of(invoice.paid)))


def _after_version(paging: Paging) -> int:
    time, item = paging.after
    if (time, item) == BEGINNING:
        return 0
    if not item.isdigit():
        raise HTTPException(400, "after must be the next_cursor of a previous page, unchanged")
    return int(item)


def invoice_history(app: InvoicingApplication, business_unit: str, invoice_id: UUID,
                    paging: Paging) -> Page[InvoiceEventOut] | None:
    """The invoice's events in order, read from the event store (blocking: run it in a worker
    thread). None unless it is an invoice of `business_unit` (rule M3).

    Each page replays the events before it, through the aggregate's own mutators, so every
    entry's balance is exactly the invoice's state after that event.
    """
    after = _after_version(paging)
    invoice: Invoice | None = None
    entries: list[InvoiceEventOut] = []
    for stored in app.repository.event_store.get(invoice_id, lte=after + paging.limit + 1):
        if invoice is None and not isinstance(stored, Invoice.Issued):
            return None  # another kind of aggregate's id
        assert isinstance(stored, SaldoAggregate.Event)
        invoice = stored.mutate(invoice)
        assert isinstance(invoice, Invoice)
        if invoice.business_unit != business_unit:
            return None
        if stored.originator_version > after:
            entries.append(InvoiceEventOut.of(stored, invoice))
    if invoice is None:
        return None
    return Page[InvoiceEventOut].of(entries, paging.limit,
                                    key=lambda e: (sortable_time(e.at), str(e.version)))
