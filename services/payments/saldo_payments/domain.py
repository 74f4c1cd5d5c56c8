"""Payments and their allocations. No I/O here."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_platform.errors import DomainRuleViolated
from saldo_platform.eventstore import SaldoAggregate


def check_allocations(amount: int, allocations: dict[str, int]) -> None:
    if any(a <= 0 for a in allocations.values()):
        raise DomainRuleViolated("an allocation must be positive")
    if sum(allocations.values()) > amount:
        raise DomainRuleViolated(
            f"the allocations add up to {sum(allocations.values())}, more than the payment's {amount}"
        )


class Payment(SaldoAggregate):
    @event("Received")
    def __init__(self, business_unit: str, customer_id: str, method: str, amount: int,
                 currency: str, received_at: datetime, provider_reference: str | None,
                 allocations: dict[str, int]) -> None:
        """Received, and allocated at once to the invoices it pays (invoice id -> amount)."""
        self.business_unit = business_unit
        self.customer_id = customer_id
        self.method = method
        self.amount = amount
        self.currency = currency
        self.received_at = received_at
        self.provider_reference = provider_reference
        self.allocations = dict(allocations)  # invoice id -> amount still allocated
        self.released_for: list[str] = []  # credit notes already honoured

    @property
    def unallocated(self) -> int:
        """What is not allocated to any invoice (rule P2)."""
        return self.amount - sum(self.allocations.values())

    def allocate(self, invoice_id: UUID, amount: int) -> None:
        if amount <= 0:
            raise DomainRuleViolated("an allocation must be positive")
        if amount > self.unallocated:
            raise DomainRuleViolated(
                f"the payment has {self.unallocated} {self.currency} unallocated; "
                f"cannot allocate {amount}"
            )
        self._allocate(invoice_id, amount, self.currency)

    @event("Allocated")
    def _allocate(self, invoice_id: UUID, amount: int, currency: str) -> None:
        self.allocations[str(invoice_id)] = self.allocations.get(str(invoice_id), 0) + amount

    def release(self, invoice_id: UUID, credit_note_id: UUID, amount: int) -> int:
        """Release up to `amount` from the invoice for a credit note, once per credit note (I3).

        Returns what was released from this payment.
        """
        if str(credit_note_id) in self.released_for:
            return 0
        releasable = min(amount, self.allocations.get(str(invoice_id), 0))
        if releasable <= 0:
            return 0
        self._release(invoice_id, credit_note_id, releasable, self.currency, self.customer_id)
        return releasable

    @event("AmountReleased")
    def _release(self, invoice_id: UUID, credit_note_id: UUID, amount: int, currency: str,
                 customer_id: str) -> None:
        self.allocations[str(invoice_id)] -= amount
        self.released_for.append(str(credit_note_id))


class InvoicePayments(SaldoAggregate):
    """Which payments are allocated to one invoice, so a credit note finds what to release."""

    @staticmethod
    def create_id(invoice_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:invoice-payments:{invoice_id}")

    @event("Started")
    def __init__(self, business_unit: str, invoice_id: UUID) -> None:
        self.business_unit = business_unit
        self.invoice_id = invoice_id
        self.payment_ids: list[UUID] = []

    @event("PaymentAdded")
    def add(self, payment_id: UUID) -> None:
        self.payment_ids.append(payment_id)
