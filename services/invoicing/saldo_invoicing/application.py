"""Invoicing commands: one method per command — load, call one aggregate method, save."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError

from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers
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
from saldo_kernel.errors import Conflict, DomainRuleViolated, PreconditionFailed
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

    def issue_invoice(self, *, business_unit: str, customer_id: str, lines: list[InvoiceLine],
                      due_date: date) -> Invoice:
        with one_at_a_time(self._numbering):
            for attempt in range(10):
                numbers = self.get_or_none(InvoiceNumbers.create_id(business_unit))
                if numbers is None:
                    numbers = InvoiceNumbers(business_unit=business_unit)
                invoice = Invoice.issue(numbers=numbers, customer_id=customer_id, lines=lines,
                                        due_date=due_date)
                try:
                    self.save(numbers, invoice)
                    return invoice
                except IntegrityError:
                    # Another invoice took this number at the same moment: take the next one.
                    if attempt == 9:
                        raise
        raise AssertionError("unreachable")

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


def _check_version(aggregate: SaldoAggregate | None, expected_version: int | None, what: str) -> None:
    """If-Match: the version the client last read must still be the current one."""
    if expected_version is None:
        return
    if aggregate is None:
        raise PreconditionFailed(f"{what} does not exist yet; If-Match {expected_version} cannot match")
    if aggregate.version != expected_version:
        raise PreconditionFailed(f"{what} is at version {aggregate.version}, not {expected_version}")
