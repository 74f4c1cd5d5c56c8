"""Payments, the invoices they pay, and the rules that keep money conserved (M6). No I/O here."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_events.currencies import format_money
from saldo_platform.errors import DomainRuleViolated
from saldo_platform.eventstore import SaldoAggregate

# Clocks of payment providers and banks drift; a little ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)


def check_received_at(received_at: datetime, now: datetime) -> None:
    """A payment cannot have been received in the future (rule P1)."""
    if received_at > now + CLOCK_SKEW:
        raise DomainRuleViolated(
            f"received_at {received_at.isoformat()} is in the future; a payment is recorded "
            "once it has been received"
        )


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
        self.refunds: dict[str, int] = {}  # refund id -> amount promised to it by refunds (M6)

    @property
    def unallocated(self) -> int:
        """What is not allocated to any invoice (rule P2)."""
        return self.amount - sum(self.allocations.values())

    @property
    def placeable(self) -> int:
        """Unallocated money no refund has claimed: what may still go to an invoice (rule M6)."""
        return self.unallocated - sum(self.refunds.values())

    def allocate(self, invoice_id: UUID, amount: int) -> None:
        if amount <= 0:
            raise DomainRuleViolated("an allocation must be positive")
        if amount > self.placeable:
            claimed = sum(self.refunds.values())
            raise DomainRuleViolated(
                f"the payment has {format_money(self.placeable, self.currency)} left to allocate"
                + (f" ({format_money(claimed, self.currency)} of it is being refunded)" if claimed else "")
                + f"; {format_money(amount, self.currency)} cannot be allocated"
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

    def note_refund(self, refund_id: UUID, amount: int) -> dict[str, int]:
        """A refund of this payment was requested in the refunds service (rules P3, M6).

        The refunds service granted it from what it knew to be unallocated. If an allocation
        made here meanwhile (before either service heard of the other) spent that money, the
        refund keeps it: the newest allocations give back the shortfall and those invoices are
        unpaid again (I3, without a credit note). Returns what was released, per invoice.
        Once per refund: the refunds topic may deliver the request twice.
        """
        if str(refund_id) in self.refunds:
            return {}
        released: dict[str, int] = {}
        shortfall = amount - self.placeable
        for invoice_id in reversed(list(self.allocations)):
            if shortfall <= 0:
                break
            give_back = min(shortfall, self.allocations[invoice_id])
            if give_back > 0:
                self._release_for_refund(UUID(invoice_id), refund_id, give_back, self.currency,
                                         self.customer_id)
                released[invoice_id] = give_back
                shortfall -= give_back
        self._refund_noted(refund_id, amount)
        return released

    @event("ReleasedForRefund")
    def _release_for_refund(self, invoice_id: UUID, refund_id: UUID, amount: int, currency: str,
                            customer_id: str) -> None:
        self.allocations[str(invoice_id)] -= amount

    @event("RefundNoted")
    def _refund_noted(self, refund_id: UUID, amount: int) -> None:
        self.refunds[str(refund_id)] = amount


class InvoiceAccount(SaldoAggregate):
    """An invoice as the payments service sees it: how much may still be allocated to it (M6).

    Opened when the invoice is issued and told of its credit notes; every allocation reserves
    its amount here in the same transaction as the payment's own event. Two payments placed
    on one invoice at once therefore conflict on this aggregate's version, and the retry sees
    the smaller open amount: an invoice is never paid above its total.
    """

    @staticmethod
    def create_id(invoice_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:invoice-account:{invoice_id}")

    @event("Opened")
    def __init__(self, business_unit: str, invoice_id: UUID, number: int, customer_id: str,
                 currency: str, total: int) -> None:
        self.business_unit = business_unit
        self.invoice_id = invoice_id
        self.number = number
        self.customer_id = customer_id
        self.currency = currency
        self.total = total
        self.credited = 0
        self.credit_notes: list[str] = []
        self.paid_by: dict[str, int] = {}  # payment id -> amount allocated, in allocation order

    @property
    def allocated(self) -> int:
        return sum(self.paid_by.values())

    @property
    def open_amount(self) -> int:
        """Total − credited − already allocated (rule M6)."""
        return self.total - self.credited - self.allocated

    def allocate(self, payment_id: UUID, customer_id: str, currency: str, amount: int) -> None:
        """Money goes only to open invoices of the same customer and currency, never above
        what is open (rule M6; the business unit is the caller's, M3)."""
        if customer_id != self.customer_id:
            raise DomainRuleViolated(
                f"invoice {self.number} is customer {self.customer_id!r}'s and the payment is "
                f"customer {customer_id!r}'s: money is allocated only to the payer's own invoices"
            )
        if currency != self.currency:
            raise DomainRuleViolated(
                f"invoice {self.number} is in {self.currency}, the payment in {currency}: "
                "amounts in different currencies cannot be combined (rule M1)"
            )
        if self.open_amount <= 0:
            state = "fully credited" if self.credited >= self.total else "paid in full"
            raise DomainRuleViolated(f"invoice {self.number} is {state}; nothing is left to pay on it")
        if amount > self.open_amount:
            raise DomainRuleViolated(
                f"invoice {self.number} has {self._money(self.open_amount)} open (total "
                f"{self._money(self.total)}, credited {self._money(self.credited)}, already paid "
                f"{self._money(self.allocated)}); {self._money(amount)} cannot be allocated to it"
            )
        self._allocated(payment_id, amount)

    def _money(self, amount: int) -> str:
        return format_money(amount, self.currency)

    @event("Allocated")
    def _allocated(self, payment_id: UUID, amount: int) -> None:
        self.paid_by[str(payment_id)] = self.paid_by.get(str(payment_id), 0) + amount

    def note_credit(self, credit_note_id: UUID, amount: int) -> bool:
        """A credit note lowers what is owed (rule I3); once per credit note."""
        if str(credit_note_id) in self.credit_notes:
            return False
        self._credited(credit_note_id, amount)
        return True

    @event("Credited")
    def _credited(self, credit_note_id: UUID, amount: int) -> None:
        self.credited += amount
        self.credit_notes.append(str(credit_note_id))

    @event("Released")
    def release(self, payment_id: UUID, amount: int) -> None:
        """Money of a payment detached from this invoice (for a credit note or a refund)."""
        self.paid_by[str(payment_id)] -= amount


class InvoicePayments(SaldoAggregate):
    """Superseded by InvoiceAccount; kept so events stored before it stay readable."""

    @event("Started")
    def __init__(self, business_unit: str, invoice_id: UUID) -> None:
        self.business_unit = business_unit
        self.invoice_id = invoice_id
        self.payment_ids: list[UUID] = []

    @event("PaymentAdded")
    def add(self, payment_id: UUID) -> None:
        self.payment_ids.append(payment_id)
