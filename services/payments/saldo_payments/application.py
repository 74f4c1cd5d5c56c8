"""Payments commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from saldo_payments.domain import InvoicePayments, Payment
from saldo_platform.eventstore import EventStoreApplication


class PaymentsApplication(EventStoreApplication):
    name = "payments"

    def receive_payment(self, business_unit: str, customer_id: str, method: str, amount: int,
                        currency: str, received_at: datetime, provider_reference: str | None,
                        allocations: list[tuple[UUID, int]]) -> Payment:
        payment = Payment(business_unit, customer_id, method, amount, currency, received_at,
                          provider_reference)
        indexes = []
        for invoice_id, allocated in allocations:
            payment.allocate(invoice_id, allocated)
            index = self.get_or_none(InvoicePayments.create_id(invoice_id)) or InvoicePayments(
                business_unit, invoice_id
            )
            index.add(payment.id)
            indexes.append(index)
        self.save(payment, *indexes)
        return payment

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
