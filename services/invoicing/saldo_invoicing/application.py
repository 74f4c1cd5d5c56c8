"""Invoicing commands: one method per command — load, call one aggregate method, save."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError

from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers, Terms, stop_subscription
from saldo_invoicing.domain.channels import InvoicingMethod
from saldo_invoicing.domain.parties import (
    BusinessEntity,
    Customer,
    CustomerDetails,
    EntityDetails,
    Subscription,
    SubscriptionPeriod,
)
from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import Conflict, DomainRuleViolated, NotFound, PreconditionFailed
from saldo_kernel.money import Money
from saldo_platform import businessdates
from saldo_platform.eventstore import EventStoreApplication
from saldo_platform.unitofwork import one_at_a_time


class InvoicingApplication(EventStoreApplication):
    name = "invoicing"
    # Every invoice loads its unit's number sequence; a snapshot every 100 numbers keeps that
    # load short instead of replaying one event per invoice ever issued (docs/performance.md).
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {InvoiceNumbers: 100}

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        # Requests of this process take numbers one at a time, until the number is recorded,
        # instead of colliding and retrying; other processes still meet on the sequence's
        # version (optimistic, and the command runs again on the newer sequence).
        self._numbering = threading.Lock()

    def issue_credit_note(self, *, business_unit: str, invoice_id: UUID, minor_units: int,
                          reason: str, expected_version: int | None = None) -> Invoice:
        """A credit note of `minor_units` in the invoice's own currency (the body names none)."""
        invoice: Invoice = self.get_owned(invoice_id, business_unit, Invoice)
        if expected_version is not None and invoice.version != expected_version:
            raise PreconditionFailed(
                f"invoice {invoice.number} is at version {invoice.version}, not {expected_version}"
            )
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=Money(minor_units, invoice.currency),
                                  reason=reason)
        self.save(invoice)
        return invoice

    # --- the business entity, customers and subscriptions (rules M4, M5, C1, C2) ---

    def put_business_entity(self, *, business_unit: str, details: EntityDetails,
                            expected_version: int | None = None) -> tuple[BusinessEntity, bool]:
        """Register the unit's business entity, or replace what it says; True if registered now."""
        entity: BusinessEntity | None = self.get_or_none(BusinessEntity.create_id(business_unit))
        _check_version(entity, expected_version, "the business entity")
        if entity is None:
            entity = BusinessEntity.register(business_unit=business_unit, details=details)
        elif not entity.revise(details=details):
            return entity, False  # nothing changed, nothing to save
        self.save(entity)
        return entity, entity.version == 1

    def put_customer(self, *, business_unit: str, customer_id: str, details: CustomerDetails,
                     expected_version: int | None = None) -> tuple[Customer, bool]:
        """Register a customer under the operator's id, or replace what it is; True if registered now."""
        customer: Customer | None = self.get_or_none(Customer.create_id(business_unit, customer_id))
        _check_version(customer, expected_version, f"customer {customer_id}")
        if customer is None:
            customer = Customer.register(business_unit=business_unit, customer_id=customer_id,
                                         details=details)
        elif not customer.revise(details=details):
            return customer, False
        self.save(customer)
        return customer, customer.version == 1

    def start_subscription(self, *, business_unit: str, customer_id: str, product: str, price: Money,
                           period: SubscriptionPeriod, invoicing_method: InvoicingMethod | None,
                           started_on: date | None = None) -> Subscription:
        """Start a subscription for a registered customer, priced in the entity's currency (C2).

        Without a start date it starts today, in the business unit's time zone (rule M2).
        """
        entity = self.business_entity(business_unit=business_unit)
        subscription = Subscription.start(
            entity=entity, customer=self.customer(business_unit=business_unit, customer_id=customer_id),
            product=product, price=price, period=period, invoicing_method=invoicing_method,
            started_on=started_on or businessdates.today(ZoneInfo(entity.time_zone)))
        self.save(subscription)
        return subscription

    def business_entity(self, *, business_unit: str) -> BusinessEntity:
        """The unit's business entity; a Conflict (409) until it is set up (rule M4)."""
        entity: BusinessEntity | None = self.get_or_none(BusinessEntity.create_id(business_unit))
        if entity is None:
            raise Conflict(f"business unit {business_unit} has no business entity yet: set it up "
                           "first with PUT /v1/business-entity (its currency, bank account and "
                           "invoicing method, rule M4)")
        return entity

    def customer(self, *, business_unit: str, customer_id: str) -> Customer:
        """A customer named in a command's body; unknown is a 422 naming customer_id (M3: another
        unit's customer is unknown here)."""
        customer: Customer | None = self.get_or_none(Customer.create_id(business_unit, customer_id))
        if customer is None:
            raise DomainRuleViolated(f"customer_id: there is no customer {customer_id!r} in this "
                                     "business unit; register it first with PUT /v1/customers/"
                                     f"{customer_id} (rule C1)")
        return customer

    # --- invoices: issued to registered customers, for subscriptions' periods (C3, C4, I1) ---

    def issue_invoice(self, *, business_unit: str, customer_id: str, lines: list[InvoiceLine],
                      due_date: date) -> Invoice:
        """An invoice of the operator's own lines to a registered customer, in the entity's
        currency (M4), its channel resolved (C3) and its FIK reference made from its number (I1)."""
        entity = self.business_entity(business_unit=business_unit)
        customer = self.customer(business_unit=business_unit, customer_id=customer_id)
        _check_currency(lines, entity)
        return self._issue(business_unit, customer_id, lines, due_date,
                           Terms.of(entity=entity, customer=customer))

    def invoice_subscription(self, *, business_unit: str, subscription_id: UUID, due_date: date) -> Invoice:
        """Invoice the subscription's next period: one line of its price (rules C2, C3, I1)."""
        entity = self.business_entity(business_unit=business_unit)
        try:
            subscription: Subscription = self.get_owned(subscription_id, business_unit, Subscription)
        except NotFound:
            # Named in the body, like customer_id: a 422 on that field, not a 404 of the route
            # (M3: another unit's subscription is unknown here too).
            raise DomainRuleViolated(f"subscription_id: there is no subscription {subscription_id} in "
                                     "this business unit; start it first with POST /v1/subscriptions "
                                     "(rule C2)") from None
        customer = self.customer(business_unit=business_unit, customer_id=subscription.customer_id)
        period = subscription.next_period(today=self.today(entity))
        covers = (f"{period['issues']} issues" if "issues" in period
                  else f"{period['start']} – {period['end'] - timedelta(days=1)}")
        lines = [InvoiceLine(description=f"{subscription.product}, {covers}", amount=subscription.price)]
        return self._issue(business_unit, customer.customer_id, lines, due_date,
                           Terms.of(entity=entity, customer=customer, subscription=subscription,
                                    period=period),
                           subscription=subscription)

    def _issue(self, business_unit: str, customer_id: str, lines: list[InvoiceLine], due_date: date,
               terms: Terms, subscription: Subscription | None = None) -> Invoice:
        periods_read = len(subscription.invoiced) if subscription is not None else 0
        with one_at_a_time(self._numbering):
            for attempt in range(10):
                numbers = self.get_or_none(InvoiceNumbers.create_id(business_unit))
                if numbers is None:
                    numbers = InvoiceNumbers(business_unit=business_unit)
                invoice = Invoice.issue(numbers=numbers, customer_id=customer_id, lines=lines,
                                        due_date=due_date, terms=terms)
                if subscription is not None and terms.period is not None:
                    subscription.period_invoiced(invoice_id=invoice.id, period=terms.period)
                try:
                    self.save(numbers, invoice, *([subscription] if subscription else []))
                    return invoice
                except IntegrityError:
                    # Another invoice took this number at the same moment: take the next one.
                    if attempt == 9:
                        raise
                    if subscription is not None:  # it recorded the period: start from what is saved
                        subscription = self.get_owned(subscription.id, business_unit, Subscription)
                        if len(subscription.invoiced) != periods_read:
                            # Another command invoiced a period since this one read the next
                            # one: recording it again would invoice that period twice (C2, I1).
                            raise Conflict(f"subscription {subscription.id} had its next period "
                                           "invoiced by another request meanwhile; look at its "
                                           "invoiced_periods before invoicing it again") from None
        raise AssertionError("unreachable")

    def stop_subscription(self, *, business_unit: str, subscription_id: UUID, stop_date: date,
                          issues_delivered: int | None, reason: str) -> tuple[Subscription, Invoice | None]:
        """Stop it; the unused part of its last invoiced period is credited (rule C4), which
        makes payments release that money for a refund (I3). Returns the credited invoice."""
        subscription: Subscription = self.get_owned(subscription_id, business_unit, Subscription)
        last = subscription.invoiced[-1]["invoice_id"] if subscription.invoiced else None
        invoice: Invoice | None = self.get_owned(last, business_unit, Invoice) if last else None
        credit = stop_subscription(subscription=subscription, invoice=invoice, stop_date=stop_date,
                                   issues_delivered=issues_delivered, reason=reason,
                                   credit_note_id=uuid4())
        self.save(subscription, *([invoice] if invoice is not None and credit else []))
        return subscription, invoice if credit else None

    # --- reminders (rule I4) ---

    def send_reminder(self, *, business_unit: str, invoice_id: UUID, today: date) -> bool:
        """Record the reminder due on the unit's business date `today`; False if none is due
        (paid, credited, not yet, or already sent today)."""
        entity = self.business_entity(business_unit=business_unit)
        invoice: Invoice = self.get_owned(invoice_id, business_unit, Invoice)
        if invoice.reminder_due(today=today, schedule=entity.reminder_schedule_days) is None:
            return False
        invoice.send_reminder(today=today, schedule=entity.reminder_schedule_days)
        self.save(invoice)
        return True

    def today(self, entity: BusinessEntity) -> date:
        """The business unit's business date now, in its own time zone (rule M2)."""
        return businessdates.today(ZoneInfo(entity.time_zone))

    def issued_on(self, invoice: Invoice) -> date:
        """The business date it was issued, in the unit's time zone (rule M2)."""
        entity: BusinessEntity | None = self.get_or_none(BusinessEntity.create_id(invoice.business_unit))
        zone = ZoneInfo(entity.time_zone) if entity else businessdates.DEFAULT_ZONE
        return businessdates.business_date(invoice.created_on, zone)

    def credit_note_issued_on(self, invoice: Invoice, credit_note_id: UUID) -> date:
        """The business date one of its credit notes was issued: its event's time."""
        entity: BusinessEntity | None = self.get_or_none(BusinessEntity.create_id(invoice.business_unit))
        zone = ZoneInfo(entity.time_zone) if entity else businessdates.DEFAULT_ZONE
        for event in self.repository.event_store.get(invoice.id):
            if isinstance(event, Invoice.CreditNoteIssued) and event.credit_note_id == credit_note_id:
                return businessdates.business_date(event.timestamp, zone)
        raise NotFound(f"credit note {credit_note_id} of invoice {invoice.number} not found")

    def unit_today(self, business_unit: str) -> date:
        entity: BusinessEntity | None = self.get_or_none(BusinessEntity.create_id(business_unit))
        return self.today(entity) if entity else businessdates.today()

    # --- reactions to payments' events (policies.py) ---

    def apply_payment(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                      invoice_id: UUID, payment_id: UUID, amount: Money, payments_event_id: UUID) -> None:
        invoice: Invoice = self.get_owned(invoice_id, business_unit, Invoice)
        invoice.apply_payment(payment_id=payment_id, amount=amount, payments_event_id=payments_event_id)
        processing_event.collect_events(invoice)

    def release(self, processing_event: ProcessingEvent[UUID], *, business_unit: str, invoice_id: UUID,
                payment_id: UUID, amount: Money, credit_note_id: UUID | None, reason: str,
                payments_event_id: UUID) -> None:
        """A release for one of its credit notes keeps the invoice settled; any other reopens it (I3)."""
        invoice: Invoice = self.get_owned(invoice_id, business_unit, Invoice)
        if credit_note_id is not None:
            invoice.release_for_credit_note(payment_id=payment_id, amount=amount,
                                            credit_note_id=credit_note_id,
                                            payments_event_id=payments_event_id)
        else:
            invoice.reopen(payment_id=payment_id, amount=amount, reason=reason,
                           payments_event_id=payments_event_id)
        processing_event.collect_events(invoice)


def _check_version(aggregate: SaldoAggregate | None, expected_version: int | None, what: str) -> None:
    """If-Match: the version the client last read must still be the current one."""
    if expected_version is None:
        return
    if aggregate is None:
        raise PreconditionFailed(f"{what} does not exist yet; If-Match {expected_version} cannot match")
    if aggregate.version != expected_version:
        raise PreconditionFailed(f"{what} is at version {aggregate.version}, not {expected_version}")


def _check_currency(lines: list[InvoiceLine], entity: BusinessEntity) -> None:
    for line in lines:
        if line["amount"].currency != entity.currency:
            raise DomainRuleViolated(f"currency: invoices of this business unit are in {entity.currency}, "
                                     f"not {line['amount'].currency} (rule M4)")
