"""Invoicing commands: one method per command — load, call one aggregate method, save."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers
from saldo_kernel.errors import PreconditionFailed
from saldo_kernel.money import Money
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
