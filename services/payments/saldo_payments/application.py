"""Payments commands, and the reactions to invoices and refunds (one method per command)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_kernel.errors import NotFound
from saldo_kernel.money import Money
from saldo_payments.domain import (
    InvoiceAccount,
    Payment,
    PaymentMethod,
    check_allocations,
    check_received_at,
    credit_invoice,
    keep_for_refund,
)
from saldo_platform.eventstore import EventStoreApplication


class PaymentsApplication(EventStoreApplication):
    name = "payments"

    def receive_payment(self, *, business_unit: str, customer_id: str, method: PaymentMethod,
                        amount: Money, received_at: datetime, provider_reference: str | None,
                        allocations: dict[UUID, Money]) -> Payment:
        """A payment received, with the open invoices it pays at once (rules P1, P2, M6)."""
        check_received_at(received_at, now=datetime.now(UTC))
        allocated = {str(invoice_id): part for invoice_id, part in allocations.items()}
        check_allocations(amount, allocated)
        invoices = [self._invoice(business_unit, invoice_id) for invoice_id in allocations]
        payment = Payment(business_unit=business_unit, customer_id=customer_id, method=method,
                          amount=amount, received_at=received_at,
                          provider_reference=provider_reference, allocations=allocated)
        for invoice, part in zip(invoices, allocations.values(), strict=True):
            invoice.allocate(payment_id=payment.id, customer_id=customer_id, amount=part)
        # One transaction: the payment and each invoice's reservation (rule M6).
        self.save(payment, *invoices)
        return payment

    def allocate_payment(self, *, business_unit: str, payment_id: UUID, invoice_id: UUID,
                         minor_units: int) -> Payment:
        """Place unallocated money of a payment on an open invoice (rules P2, M6).

        The amount is in the payment's currency: the operator names no other.
        """
        payment: Payment = self.get_owned(payment_id, business_unit, Payment)
        amount = Money(minor_units, payment.currency)
        invoice = self._invoice(business_unit, invoice_id)
        invoice.allocate(payment_id=payment.id, customer_id=payment.customer_id, amount=amount)
        payment.allocate(invoice_id, amount)
        self.save(payment, invoice)
        return payment

    def _invoice(self, business_unit: str, invoice_id: UUID) -> InvoiceAccount:
        account: InvoiceAccount | None = self.get_or_none(InvoiceAccount.create_id(invoice_id))
        if account is None or account.business_unit != business_unit:
            raise NotFound(f"invoice {invoice_id} is not known to payments (a new invoice can take "
                           "a moment to appear)")
        return account

    # --- reactions to other services' events (policies.py) ---

    def invoice_issued(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                       invoice_id: UUID, number: int, customer_id: str, total: Money) -> None:
        if self.get_or_none(InvoiceAccount.create_id(invoice_id)) is not None:
            return  # announced twice
        processing_event.collect_events(InvoiceAccount(
            business_unit=business_unit, invoice_id=invoice_id, number=number,
            customer_id=customer_id, total=total))

    def release_for_credit_note(self, processing_event: ProcessingEvent[UUID], *, invoice_id: UUID,
                                credit_note_id: UUID, amount: Money) -> None:
        """A credit note lowers the invoice's debt and releases as much of what paid it (I3)."""
        account: InvoiceAccount | None = self.get_or_none(InvoiceAccount.create_id(invoice_id))
        if account is None:
            return  # an invoice issued before payments kept accounts of invoices
        payments: list[Payment] = [self.repository.get(UUID(p)) for p in account.paid_by]
        credit_invoice(account, payments, credit_note_id=credit_note_id, amount=amount)
        processing_event.collect_events(account, *payments)

    def refund_requested(self, processing_event: ProcessingEvent[UUID], *, payment_id: UUID,
                         refund_id: UUID, amount: Money) -> None:
        """Money promised to a refund is not allocated again (rule M6)."""
        payment: Payment | None = self.get_or_none(payment_id)
        if payment is None:
            raise NotFound(f"payment {payment_id} of a refund is not known to payments")
        invoices = [account for invoice_id in payment.allocations
                    if (account := self.get_or_none(InvoiceAccount.create_id(UUID(invoice_id))))]
        keep_for_refund(payment, invoices, refund_id=refund_id, amount=amount)
        processing_event.collect_events(payment, *invoices)
