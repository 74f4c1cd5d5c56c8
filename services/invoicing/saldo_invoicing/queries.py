"""The read side of invoicing: what a GET answers, from the read model (projections.py).

A command answers with the same representation, built from the aggregate it just saved
(`InvoiceOut.of`), so a client never sees two shapes of one invoice. Status and overdue are
the domain's rules (`invoice_status`, `is_overdue`), applied here to what the read model holds.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from saldo_events.envelope import Amount, BankAccount, Money
from saldo_events.invoicing import Agreement, PostalAddress, SubscriptionPeriod
from saldo_invoicing.domain import Invoice, InvoiceStatus, invoice_status, is_overdue
from saldo_invoicing.domain.channels import InvoicingMethod
from saldo_invoicing.domain.parties import BusinessEntity, Customer, Subscription
from saldo_kernel import money
from saldo_platform import businessdates
from saldo_platform.http.pages import Page, Paging, sortable_time
from saldo_platform.sql import Database

# The invoice overview: each invoice with what is paid on it.
INVOICES_WITH_PAID = (
    "SELECT i.*, coalesce(p.paid, 0) AS paid FROM invoices i"
    " LEFT JOIN invoice_payments p ON p.invoice_id = i.invoice_id"
)


class InvoiceOut(BaseModel):
    id: UUID
    number: int
    customer_id: str
    total: Money
    credited: Amount = Field(description="minor units of the total's currency, credited so far")
    paid: Amount = Field(description="minor units of the total's currency, paid so far")
    status: InvoiceStatus
    overdue: bool = Field(description="not settled and past its due date (rules I2, I4)")
    due_date: date
    issued_at: datetime
    version: int
    channel: str | None = Field(description="how it is delivered, resolved by rule C3")
    channel_reason: str | None = Field(description="why that channel (rule C3)")
    payment_reference: str | None = Field(
        description="FIK +71<15-digit payment id>+<creditor number> (rule I1)")
    subscription_id: UUID | None
    reminders: int = Field(description="reminders sent so far (rule I4)")
    last_reminder_on: date | None

    @classmethod
    def of(cls, invoice: Invoice, *, today: date) -> InvoiceOut:
        status = invoice.status
        return cls(id=invoice.id, number=invoice.number, customer_id=invoice.customer_id,
                   total=Money.of(invoice.total), credited=invoice.credited.minor_units,
                   paid=invoice.paid.minor_units, status=status,
                   overdue=is_overdue(status=status, due_date=invoice.due_date, today=today),
                   due_date=invoice.due_date, issued_at=invoice.created_on,
                   version=invoice.version, channel=invoice.channel,
                   channel_reason=invoice.channel_reason, payment_reference=invoice.payment_reference,
                   subscription_id=invoice.subscription_id, reminders=len(invoice.reminders),
                   last_reminder_on=invoice.reminders[-1] if invoice.reminders else None)

    @classmethod
    def from_row(cls, row: dict[str, Any], *, today: date) -> InvoiceOut:
        currency = row["currency"]
        due_date = date.fromisoformat(row["due_date"])
        status = invoice_status(total=money.Money(row["total"], currency),
                                credited=money.Money(row["credited"], currency),
                                paid=money.Money(row["paid"], currency))
        return cls(id=row["invoice_id"], number=row["number"], customer_id=row["customer_id"],
                   total=Money(amount=row["total"], currency=currency), credited=row["credited"],
                   paid=row["paid"], status=status,
                   overdue=is_overdue(status=status, due_date=due_date, today=today),
                   due_date=due_date, issued_at=row["issued_at"], version=row["version"],
                   channel=row["channel"], channel_reason=row["channel_reason"],
                   payment_reference=row["payment_reference"], subscription_id=row["subscription_id"],
                   reminders=row["reminders"], last_reminder_on=row["last_reminder_on"])


class CreditNoteOut(BaseModel):
    """A credit note (rule I3). Its `version` is the invoice's version it made: the ETag to send
    as If-Match with the invoice's next credit note."""

    id: UUID
    invoice_id: UUID
    customer_id: str
    amount: Money
    reason: str
    issued_at: datetime
    version: int

    @classmethod
    def just_issued(cls, invoice: Invoice) -> CreditNoteOut:
        """The credit note the invoice's newest event issued (answered by the command)."""
        credit_note_id = next(reversed(invoice.credit_notes))
        note = invoice.credit_notes[credit_note_id]
        return cls(id=credit_note_id, invoice_id=invoice.id, customer_id=invoice.customer_id,
                   amount=Money.of(note.amount), reason=note.reason, issued_at=invoice.modified_on,
                   version=invoice.version)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CreditNoteOut:
        return cls(id=row["credit_note_id"], invoice_id=row["invoice_id"],
                   customer_id=row["customer_id"],
                   amount=Money(amount=row["amount"], currency=row["currency"]), reason=row["reason"],
                   issued_at=row["issued_at"], version=row["version"])


async def credit_note(db: Database, business_unit: str, invoice_id: UUID,
                      credit_note_id: UUID) -> CreditNoteOut | None:
    row = await db.fetchrow(
        "SELECT * FROM credit_notes WHERE credit_note_id = $1 AND invoice_id = $2"
        " AND business_unit = $3", str(credit_note_id), str(invoice_id), business_unit)
    return CreditNoteOut.from_row(row) if row else None


async def credit_notes(db: Database, business_unit: str, invoice_id: UUID,
                       paging: Paging) -> Page[CreditNoteOut] | None:
    """An invoice's credit notes in the order they were issued; None if there is no such invoice
    in the business unit (rule M3: another unit's invoice is not found, not empty)."""
    if await db.fetchval("SELECT 1 FROM invoices WHERE invoice_id = $1 AND business_unit = $2",
                         str(invoice_id), business_unit) is None:
        return None
    rows = await db.fetch(
        "SELECT * FROM credit_notes WHERE invoice_id = $1 AND business_unit = $2"
        " AND (issued_at, credit_note_id) > ($3, $4) ORDER BY issued_at, credit_note_id LIMIT $5",
        str(invoice_id), business_unit, *paging.after, paging.limit + 1)
    items = [CreditNoteOut.from_row(r) for r in rows]
    return Page[CreditNoteOut].of(items, paging.limit,
                                  key=lambda c: (sortable_time(c.issued_at), str(c.id)))


async def invoice(db: Database, business_unit: str, invoice_id: UUID, *, today: date) -> InvoiceOut | None:
    row = await db.fetchrow(INVOICES_WITH_PAID + " WHERE i.invoice_id = $1 AND i.business_unit = $2",
                            str(invoice_id), business_unit)
    return InvoiceOut.from_row(row, today=today) if row else None


async def invoices(db: Database, business_unit: str, paging: Paging, *, customer_id: str | None,
                   status: InvoiceStatus | None, overdue: bool | None, today: date) -> Page[InvoiceOut]:
    """The unit's invoices in the order they were issued: of one customer, in one status (I2),
    overdue or not (past due and unsettled on the unit's business date `today`), if given."""
    unsettled = "i.status IN ('open', 'partially_paid') AND i.due_date < $6"
    rows = await db.fetch(
        INVOICES_WITH_PAID + " WHERE i.business_unit = $1 AND ($2 = '' OR i.customer_id = $2)"
        " AND ($7 = '' OR i.status = $7)"
        f" AND ($8 = '' OR ($8 = 'yes') = ({unsettled}))"
        " AND (i.issued_at, i.invoice_id) > ($3, $4) ORDER BY i.issued_at, i.invoice_id LIMIT $5",
        business_unit, customer_id or "", *paging.after, paging.limit + 1, today.isoformat(),
        status or "", "" if overdue is None else "yes" if overdue else "no")
    items = [InvoiceOut.from_row(r, today=today) for r in rows]
    return Page[InvoiceOut].of(items, paging.limit, key=lambda i: (sortable_time(i.issued_at), str(i.id)))


async def unit_today(db: Database, business_unit: str) -> date:
    """The unit's business date now, in its time zone (rule M2; the default until it has one)."""
    zone = await db.fetchval("SELECT time_zone FROM business_entities WHERE business_unit = $1",
                             business_unit)
    return businessdates.today(ZoneInfo(zone)) if zone else businessdates.today()


async def paid(db: Database, invoice_id: UUID, currency: str) -> money.Money:
    """What payments have reported paid on the invoice so far (PaymentReceived/Allocated, less
    AmountReleased)."""
    amount = await db.fetchval("SELECT paid FROM invoice_payments WHERE invoice_id = $1",
                               str(invoice_id))
    return money.Money(amount or 0, currency)


# --- The business entity, customers and subscriptions (rules M4, M5, C1, C2) ---------------------


def _parsed(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


class BusinessEntityOut(BaseModel):
    """The business unit's business entity (rules M4, M5); its ETag is its version."""

    legal_name: str
    registration_number: str = Field(description="Danish CVR number")
    postal_address: PostalAddress | None
    bank_account: BankAccount
    invoicing_method: InvoicingMethod
    payment_message_prefix: str
    currency: str
    time_zone: str
    reminder_schedule_days: list[int]
    fik_creditor_number: str
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, entity: BusinessEntity) -> BusinessEntityOut:
        return cls.model_validate({**entity.details, "updated_at": entity.modified_on,
                                   "version": entity.version})

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BusinessEntityOut:
        return cls(**{**row, "postal_address": _parsed(row["postal_address"]),
                      "bank_account": _parsed(row["bank_account"]),
                      "reminder_schedule_days": _parsed(row["reminder_schedule_days"])})


class CustomerOut(BaseModel):
    """A customer (rule C1) under the id the operator gave it; its ETag is its version."""

    customer_id: str
    name: str
    email: str
    postal_address: PostalAddress
    ean: str | None
    bank_account: BankAccount | None
    betalingsservice_mandate: Agreement | None
    e_invoice_to_online_banking: bool
    card_agreement: Agreement | None
    mobilepay_agreement: Agreement | None
    registered_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        return cls.model_validate({
            "customer_id": customer.customer_id, **customer.details,
            "registered_at": customer.created_on, "updated_at": customer.modified_on,
            "version": customer.version})

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CustomerOut:
        return cls(**{**row, **{name: _parsed(row[name]) for name in (
            "postal_address", "bank_account", "betalingsservice_mandate", "card_agreement",
            "mobilepay_agreement")}})


class InvoicedPeriodOut(BaseModel):
    invoice_id: UUID
    start: date
    end: date | None = Field(description="exclusive: the first day of the next period")
    issues: int | None


class SubscriptionOut(BaseModel):
    """A subscription (rule C2). Without an invoicing method of its own, the business
    entity's applies (rule C3)."""

    id: UUID
    customer_id: str
    product: str
    price: Money = Field(description="per period")
    period: SubscriptionPeriod
    invoicing_method: InvoicingMethod | None
    started_on: date
    stopped_on: date | None
    stop_reason: str | None = None
    started_at: datetime
    version: int
    invoiced_periods: list[InvoicedPeriodOut] = Field(
        default=[], description="what each of its invoices covers, oldest first (rules C2, C4)")

    @classmethod
    def of(cls, subscription: Subscription) -> SubscriptionOut:
        return cls(id=subscription.id, customer_id=subscription.customer_id,
                   product=subscription.product, price=Money.of(subscription.price),
                   period=SubscriptionPeriod(**subscription.period),
                   invoicing_method=subscription.invoicing_method,
                   started_on=subscription.started_on, stopped_on=subscription.stopped_on,
                   stop_reason=subscription.stop_reason, started_at=subscription.created_on,
                   version=subscription.version,
                   invoiced_periods=[InvoicedPeriodOut(invoice_id=p["invoice_id"], start=p["start"],
                                                       end=p.get("end"), issues=p.get("issues"))
                                     for p in subscription.invoiced])

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SubscriptionOut:
        return cls(id=row["subscription_id"], customer_id=row["customer_id"], product=row["product"],
                   price=Money(amount=row["price"], currency=row["currency"]),
                   period=SubscriptionPeriod(unit=row["period_unit"], length=row["period_length"]),
                   invoicing_method=row["invoicing_method"], started_on=row["started_on"],
                   stopped_on=row["stopped_on"], stop_reason=row["stop_reason"],
                   started_at=row["started_at"], version=row["version"])


async def business_entity(db: Database, business_unit: str) -> BusinessEntityOut | None:
    row = await db.fetchrow("SELECT * FROM business_entities WHERE business_unit = $1", business_unit)
    return BusinessEntityOut.from_row(row) if row else None


async def customer(db: Database, business_unit: str, customer_id: str) -> CustomerOut | None:
    row = await db.fetchrow("SELECT * FROM customers WHERE business_unit = $1 AND customer_id = $2",
                            business_unit, customer_id)
    return CustomerOut.from_row(row) if row else None


async def customers(db: Database, business_unit: str, paging: Paging) -> Page[CustomerOut]:
    """The unit's customers in the order they were registered."""
    rows = await db.fetch(
        "SELECT * FROM customers WHERE business_unit = $1 AND (registered_at, customer_id) > ($2, $3)"
        " ORDER BY registered_at, customer_id LIMIT $4", business_unit, *paging.after, paging.limit + 1)
    items = [CustomerOut.from_row(r) for r in rows]
    return Page[CustomerOut].of(items, paging.limit,
                                key=lambda c: (sortable_time(c.registered_at), c.customer_id))


async def subscription(db: Database, business_unit: str, subscription_id: UUID) -> SubscriptionOut | None:
    row = await db.fetchrow(
        "SELECT * FROM subscriptions WHERE subscription_id = $1 AND business_unit = $2",
        str(subscription_id), business_unit)
    return (await _with_periods(db, SubscriptionOut.from_row(row))) if row else None


async def _with_periods(db: Database, subscription: SubscriptionOut) -> SubscriptionOut:
    rows = await db.fetch("SELECT * FROM subscription_periods WHERE subscription_id = $1"
                          " ORDER BY period_start, invoice_id", str(subscription.id))
    subscription.invoiced_periods = [
        InvoicedPeriodOut(invoice_id=r["invoice_id"], start=r["period_start"], end=r["period_end"],
                          issues=r["issues"]) for r in rows]
    return subscription


async def subscriptions(db: Database, business_unit: str, paging: Paging, *,
                        customer_id: str | None) -> Page[SubscriptionOut]:
    """The unit's subscriptions (of one customer, if given), in the order they were started."""
    rows = await db.fetch(
        "SELECT * FROM subscriptions WHERE business_unit = $1 AND ($2 = '' OR customer_id = $2)"
        " AND (started_at, subscription_id) > ($3, $4) ORDER BY started_at, subscription_id LIMIT $5",
        business_unit, customer_id or "", *paging.after, paging.limit + 1)
    items = [await _with_periods(db, SubscriptionOut.from_row(r)) for r in rows]
    return Page[SubscriptionOut].of(items, paging.limit,
                                    key=lambda s: (sortable_time(s.started_at), str(s.id)))
