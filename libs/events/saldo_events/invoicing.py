"""Events published by the invoicing service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, StrictInt

from saldo_events.envelope import Amount, BankAccount, Contract, CurrencyCode, IntegrationEvent, Money


class InvoiceLine(Contract):
    description: str
    amount: Amount


class InvoicedPeriod(Contract):
    """What a subscription invoice covers: dates (end exclusive) or a number of issues."""

    start: date
    end: date | None = None
    issues: StrictInt | None = None


class InvoiceIssued(IntegrationEvent):
    SERVICE = "invoicing"
    invoice_id: UUID
    number: StrictInt
    customer_id: str
    total: Money
    due_date: date
    lines: list[InvoiceLine]
    # Added with channels and FIK (rules C3, I1); optional: earlier invoices have none.
    channel: str | None = Field(default=None, description="the delivery channel resolved by rule C3")
    channel_reason: str | None = None
    payment_reference: str | None = Field(
        default=None, description="FIK reference +71<15-digit payment id>+<creditor number> (rule I1)")
    subscription_id: UUID | None = None
    period: InvoicedPeriod | None = None


class InvoicePaymentApplied(IntegrationEvent):
    """Payments placed money of a payment on the invoice (its PaymentReceived or
    PaymentAllocated, as the invoice recorded it): the invoice's own account of what is paid."""

    SERVICE = "invoicing"
    invoice_id: UUID
    customer_id: str
    payment_id: UUID
    amount: Money


class InvoicePaymentReleased(IntegrationEvent):
    """Payments released money for one of the invoice's credit notes; it stays settled (I3)."""

    SERVICE = "invoicing"
    invoice_id: UUID
    customer_id: str
    payment_id: UUID
    amount: Money
    credit_note_id: UUID


class InvoiceReopened(IntegrationEvent):
    """Money paid on the invoice was released without a credit note: it is unpaid again by
    `amount` and its reminders resume (rule I3)."""

    SERVICE = "invoicing"
    invoice_id: UUID
    customer_id: str
    payment_id: UUID
    amount: Money
    reason: str


class ReminderSent(IntegrationEvent):
    """An unpaid invoice past its due date was reminded, on the unit's schedule (rule I4)."""

    SERVICE = "invoicing"
    invoice_id: UUID
    customer_id: str
    number: StrictInt = Field(description="1 for the first reminder of this invoice, 2 for the second …")
    business_date: date


class CreditNoteIssued(IntegrationEvent):
    SERVICE = "invoicing"
    invoice_id: UUID
    credit_note_id: UUID
    customer_id: str
    amount: Money
    reason: str


# --- The business entity, customers and subscriptions (rules M4, M5, C1, C2) ----------------------
#
# Each change to the business entity or a customer is published with the full state, so that a
# consumer (payouts' debtor account, refunds' agreement status, R4) keeps a snapshot and never
# has to ask invoicing.

InvoicingMethod = Literal["email", "bs_payment_slip", "print_your_own_slip",
                          "preliminary_postponed", "manual"]  # rule M5


class PostalAddress(Contract):
    lines: list[str]
    postal_code: str
    city: str
    country: str = Field(description="ISO 3166-1 alpha-2")


class Agreement(Contract):
    """A Betalingsservice mandate, card agreement or MobilePay agreement (rules C1, R4)."""

    reference: str
    status: Literal["active", "cancelled"]
    cancelled_at: datetime | None = Field(description="set exactly when the status is cancelled")


class SubscriptionPeriod(Contract):
    """Time-based (N days or months) or issue-based (N issues) (rule C2)."""

    unit: Literal["days", "months", "issues"]
    length: StrictInt


class BusinessEntityUpdated(IntegrationEvent):
    """The business unit's business entity as it now is, whole (rules M4, M5, B5, I4, M2)."""

    SERVICE = "invoicing"
    legal_name: str
    registration_number: str = Field(description="Danish CVR number")
    postal_address: PostalAddress | None = None
    bank_account: BankAccount
    invoicing_method: InvoicingMethod
    payment_message_prefix: str
    currency: CurrencyCode
    time_zone: str = Field(description="IANA time zone of the unit's business dates")
    reminder_schedule_days: list[StrictInt]
    fik_creditor_number: str


class CustomerUpdated(IntegrationEvent):
    """A customer as it now is, whole, on registration and every change (rule C1)."""

    SERVICE = "invoicing"
    customer_id: str
    name: str
    email: str
    postal_address: PostalAddress
    ean: str | None = None
    bank_account: BankAccount | None = None
    betalingsservice_mandate: Agreement | None = None
    e_invoice_to_online_banking: bool = False
    card_agreement: Agreement | None = None
    mobilepay_agreement: Agreement | None = None


class SubscriptionStarted(IntegrationEvent):
    SERVICE = "invoicing"
    subscription_id: UUID
    customer_id: str
    product: str
    price: Money = Field(description="per period")
    period: SubscriptionPeriod
    invoicing_method: InvoicingMethod | None = Field(
        description="the subscription's own method; null: the business entity's (rule C2)")
    started_on: date


class SubscriptionPeriodInvoiced(IntegrationEvent):
    """The subscription's next period was invoiced (rules C2, C4; renewals, I5, build on it)."""

    SERVICE = "invoicing"
    subscription_id: UUID
    customer_id: str
    invoice_id: UUID
    period: InvoicedPeriod


class SubscriptionStopped(IntegrationEvent):
    SERVICE = "invoicing"
    subscription_id: UUID
    customer_id: str
    stopped_on: date = Field(description="the first day not served (rule C4)")
    reason: str | None = None
