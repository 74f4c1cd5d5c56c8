"""Which domain events are published, and as what (libs/events contracts)."""

from __future__ import annotations

from typing import Any

from saldo_events import invoicing as contracts
from saldo_events.envelope import BankAccount, IntegrationEvent, Money
from saldo_invoicing.domain import Invoice, lines_total
from saldo_invoicing.domain.parties import (
    Agreement,
    BusinessEntity,
    Customer,
    InvoicedPeriod,
    PostalAddress,
    Subscription,
)
from saldo_platform.relay import envelope


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Invoice.Issued):
        return contracts.InvoiceIssued(
            **envelope(e), invoice_id=e.originator_id, number=e.number,
            customer_id=e.customer_id, total=Money.of(lines_total(e.lines)), due_date=e.due_date,
            lines=[contracts.InvoiceLine(description=line["description"],
                                         amount=line["amount"].minor_units) for line in e.lines],
            channel=e.channel, channel_reason=e.channel_reason, payment_reference=e.payment_reference,
            subscription_id=e.subscription_id,
            period=_period(e.period) if e.period else None,
        )
    if isinstance(e, Invoice.PaymentApplied):
        return contracts.InvoicePaymentApplied(
            **envelope(e), invoice_id=e.originator_id, customer_id=e.customer_id,
            payment_id=e.payment_id, amount=Money.of(e.amount))
    if isinstance(e, Invoice.PaymentReleased):
        return contracts.InvoicePaymentReleased(
            **envelope(e), invoice_id=e.originator_id, customer_id=e.customer_id,
            payment_id=e.payment_id, amount=Money.of(e.amount), credit_note_id=e.credit_note_id)
    if isinstance(e, Invoice.Reopened):
        return contracts.InvoiceReopened(
            **envelope(e), invoice_id=e.originator_id, customer_id=e.customer_id,
            payment_id=e.payment_id, amount=Money.of(e.amount), reason=e.reason)
    if isinstance(e, Invoice.ReminderSent):
        return contracts.ReminderSent(
            **envelope(e), invoice_id=e.originator_id, customer_id=e.customer_id, number=e.number,
            business_date=e.business_date)
    if isinstance(e, Invoice.CreditNoteIssued):
        return contracts.CreditNoteIssued(
            **envelope(e), invoice_id=e.originator_id, credit_note_id=e.credit_note_id,
            customer_id=e.customer_id, amount=Money.of(e.amount), reason=e.reason,
        )
    if isinstance(e, BusinessEntity.Registered | BusinessEntity.Updated):
        return contracts.BusinessEntityUpdated(
            **envelope(e), legal_name=e.legal_name, registration_number=e.registration_number,
            postal_address=_address(e.postal_address), bank_account=BankAccount(**e.bank_account),
            invoicing_method=e.invoicing_method, payment_message_prefix=e.payment_message_prefix,
            currency=e.currency, time_zone=e.time_zone, reminder_schedule_days=e.reminder_schedule_days,
            fik_creditor_number=e.fik_creditor_number,
        )
    if isinstance(e, Customer.Registered | Customer.Updated):
        return contracts.CustomerUpdated(
            **envelope(e), customer_id=e.customer_id, name=e.name, email=e.email,
            postal_address=contracts.PostalAddress(**e.postal_address), ean=e.ean,
            bank_account=BankAccount(**e.bank_account) if e.bank_account else None,
            betalingsservice_mandate=_agreement(e.betalingsservice_mandate),
            e_invoice_to_online_banking=e.e_invoice_to_online_banking,
            card_agreement=_agreement(e.card_agreement),
            mobilepay_agreement=_agreement(e.mobilepay_agreement),
        )
    if isinstance(e, Subscription.Started):
        return contracts.SubscriptionStarted(
            **envelope(e), subscription_id=e.originator_id, customer_id=e.customer_id,
            product=e.product, price=Money.of(e.price),
            period=contracts.SubscriptionPeriod(**e.period), invoicing_method=e.invoicing_method,
            started_on=e.started_on,
        )
    if isinstance(e, Subscription.PeriodInvoiced):
        return contracts.SubscriptionPeriodInvoiced(
            **envelope(e), subscription_id=e.originator_id, customer_id=e.customer_id,
            invoice_id=e.invoice_id, period=_period(e.period))
    if isinstance(e, Subscription.Stopped):
        return contracts.SubscriptionStopped(
            **envelope(e), subscription_id=e.originator_id, customer_id=e.customer_id,
            stopped_on=e.stopped_on, reason=e.reason)
    return None  # the number sequence is private to this service


def _period(period: InvoicedPeriod) -> contracts.InvoicedPeriod:
    return contracts.InvoicedPeriod(start=period["start"], end=period.get("end"),
                                    issues=period.get("issues"))


def _address(address: PostalAddress | None) -> contracts.PostalAddress | None:
    return contracts.PostalAddress(**address) if address else None


def _agreement(agreement: Agreement | None) -> contracts.Agreement | None:
    return contracts.Agreement(**agreement) if agreement else None
