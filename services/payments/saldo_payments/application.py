"""Payments commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from saldo_payments.domain import InvoiceAccount, Payment, check_allocations, check_received_at
from saldo_platform.errors import NotFound
from saldo_platform.eventstore import EventStoreApplication


class PaymentsApplication(EventStoreApplication):
    name = "payments"

    def receive_payment(self, business_unit: str, customer_id: str, method: str, amount: int,
                        currency: str, received_at: datetime, provider_reference: str | None,
                        allocations: list[tuple[UUID, int]]) -> Payment:
        check_received_at(received_at, datetime.now(UTC))
        allocated = {str(invoice_id): amount for invoice_id, amount in allocations}
        check_allocations(amount, allocated)
        invoices = [self._invoice(business_unit, invoice_id) for invoice_id, _ in allocations]
        payment = Payment(business_unit, customer_id, method, amount, currency, received_at,
                          provider_reference, allocated)
        for invoice, (_, part) in zip(invoices, allocations, strict=True):
            invoice.allocate(payment.id, customer_id, currency, part)
        # One transaction: the payment and each invoice's reservation (rule M6).
        self.save(payment, *invoices)
        return payment

    def allocate_payment(self, business_unit: str, payment_id: UUID, invoice_id: UUID,
                         amount: int) -> Payment:
        """Place unallocated money of a payment on an open invoice (rules P2, M6)."""
        payment: Payment = self.get_owned(payment_id, business_unit, Payment)
        invoice = self._invoice(business_unit, invoice_id)
        invoice.allocate(payment.id, payment.customer_id, payment.currency, amount)
        payment.allocate(invoice_id, amount)
        self.save(payment, invoice)
        return payment

    def _invoice(self, business_unit: str, invoice_id: UUID) -> InvoiceAccount:
        account: InvoiceAccount | None = self.get_or_none(InvoiceAccount.create_id(invoice_id))
        if account is None or account.business_unit != business_unit:
            raise NotFound(f"invoice {invoice_id} is not known to payments (a new invoice can take "
                           "a moment to appear)")
        return account

    # --- reactions to other services' events (policies); the caller saves what they return ---

    def invoice_issued(self, business_unit: str, invoice_id: UUID, number: int, customer_id: str,
                       currency: str, total: int) -> list[Any]:
        if self.get_or_none(InvoiceAccount.create_id(invoice_id)) is not None:
            return []  # announced twice
        return [InvoiceAccount(business_unit, invoice_id, number, customer_id, currency, total)]

    def release_for_credit_note(self, invoice_id: UUID, credit_note_id: UUID, amount: int) -> list[Any]:
        """A credit note lowers the invoice's debt and releases as much of what paid it (I3)."""
        account: InvoiceAccount | None = self.get_or_none(InvoiceAccount.create_id(invoice_id))
        if account is None or not account.note_credit(credit_note_id, amount):
            return []
        changed: list[Any] = [account]
        for payment_id in list(account.paid_by):
            if amount <= 0:
                break
            payment: Payment = self.repository.get(UUID(payment_id))
            released = payment.release(invoice_id, credit_note_id, amount)
            if released:
                account.release(payment.id, released)
                amount -= released
                changed.append(payment)
        return changed

    def refund_requested(self, payment_id: UUID, refund_id: UUID, amount: int) -> list[Any]:
        """Money promised to a refund is not allocated again; if a later allocation already
        took it, that allocation gives it back (rule M6)."""
        payment: Payment | None = self.get_or_none(payment_id)
        if payment is None:
            raise NotFound(f"payment {payment_id} of a refund is not known to payments")
        if str(refund_id) in payment.refunds:
            return []  # announced twice
        released = payment.note_refund(refund_id, amount)
        changed: list[Any] = [payment]
        for invoice_id, part in released.items():
            account: InvoiceAccount | None = self.get_or_none(
                InvoiceAccount.create_id(UUID(invoice_id)))
            if account is not None and account.paid_by.get(str(payment_id), 0) >= part:
                account.release(payment_id, part)
                changed.append(account)
        return changed
