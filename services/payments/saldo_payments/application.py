"""Payments commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from saldo_payments.domain import InvoicePayments, Payment, check_allocations
from saldo_platform.eventstore import EventStoreApplication


class PaymentsApplication(EventStoreApplication):
    name = "payments"

    def receive_payment(self, business_unit: str, customer_id: str, method: str, amount: int,
                        currency: str, received_at: datetime, provider_reference: str | None,
                        allocations: list[tuple[UUID, int]]) -> Payment:
        allocated = {str(invoice_id): amount for invoice_id, amount in allocations}
        check_allocations(amount, allocated)
        payment = Payment(business_unit, customer_id, method, amount, currency, received_at,
                          provider_reference, allocated)
        indexes = [self._index_with(business_unit, invoice_id, payment.id) for invoice_id, _ in allocations]
        self.save(payment, *indexes)
        return payment

    def allocate_payment(self, business_unit: str, payment_id: UUID, invoice_id: UUID,
                         amount: int) -> Payment:
        """Place unallocated money of a payment on an invoice (rule P2)."""
        payment: Payment = self.get_owned(payment_id, business_unit, Payment)
        payment.allocate(invoice_id, amount)
        self.save(payment, self._index_with(business_unit, invoice_id, payment.id))
        return payment

    def _index_with(self, business_unit: str, invoice_id: UUID, payment_id: UUID) -> InvoicePayments:
        index = self.get_or_none(InvoicePayments.create_id(invoice_id)) or InvoicePayments(
            business_unit, invoice_id)
        if payment_id not in index.payment_ids:
            index.add(payment_id)
        return index

    def release_for_credit_note(self, invoice_id: UUID, credit_note_id: UUID, amount: int) -> list[Any]:
        """The payments changed by releasing a credit note's amount; the caller saves them."""
        index: InvoicePayments | None = self.get_or_none(InvoicePayments.create_id(invoice_id))
        changed = []
        for payment_id in index.payment_ids if index else []:
            if amount <= 0:
                break
            payment: Payment = self.repository.get(payment_id)
            released = payment.release(invoice_id, credit_note_id, amount)
            if released:
                amount -= released
                changed.append(payment)
        return changed
