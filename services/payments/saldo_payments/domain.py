"""Payments, the invoices they pay, and the rules that keep money conserved (M6). No I/O here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money, upcast_amounts
from saldo_kernel.money import total as sum_of

# How a payment came (rule P1); the contract `saldo_events.payments.PaymentMethod` is the same list.
PaymentMethod = Literal["card", "mobilepay", "betalingsservice", "fik", "bank_transfer", "manual"]

# Clocks of payment providers and banks drift; a little ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)


def check_received_at(received_at: datetime, *, now: datetime) -> None:
    """A payment cannot have been received in the future (rule P1)."""
    if received_at > now + CLOCK_SKEW:
        raise DomainRuleViolated(
            f"received_at {received_at.isoformat()} is in the future; a payment is recorded "
            "once it has been received"
        )


def check_allocations(amount: Money, allocations: dict[str, Money]) -> None:
    """What a payment pays at once: each allocation above zero, together at most the payment
    (rule P2). `allocations` maps invoice id -> amount."""
    left = amount
    for invoice_id, part in allocations.items():
        part.check_positive_at_most(
            left, "an allocation of", f"the payment of {amount} has {{limit}} left for invoice {invoice_id}")
        left -= part


class Payment(SaldoAggregate):
    """A payment received (rule P1) and the invoices it pays; the rest is unallocated (rule P2)."""

    class Received(SaldoAggregate.Created):
        class_version = 2
        customer_id: str
        method: PaymentMethod
        amount: Money
        received_at: datetime
        provider_reference: str | None
        allocations: dict[str, Money]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            currency = state["currency"]
            upcast_amounts(state, "amount")
            state["allocations"] = {i: Money(a, currency) for i, a in state["allocations"].items()}

    @event(Received)
    def __init__(self, *, business_unit: str, customer_id: str, method: PaymentMethod, amount: Money,
                 received_at: datetime, provider_reference: str | None,
                 allocations: dict[str, Money]) -> None:
        """Received, and allocated at once to the invoices it pays (invoice id -> amount)."""
        self.business_unit = business_unit
        self.customer_id = customer_id
        self.method = method
        self.amount = amount
        self.received_at = received_at
        self.provider_reference = provider_reference
        self.allocations = dict(allocations)  # invoice id -> still allocated, oldest first
        self.released_for: list[str] = []  # credit notes already honoured
        self.refunds: dict[str, Money] = {}  # refund id -> amount promised to it by refunds (M6)

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def allocated(self) -> Money:
        return sum_of(list(self.allocations.values()), self.currency)

    @property
    def unallocated(self) -> Money:
        """What is not allocated to any invoice (rule P2)."""
        return self.amount - self.allocated

    @property
    def being_refunded(self) -> Money:
        return sum_of(list(self.refunds.values()), self.currency)

    @property
    def placeable(self) -> Money:
        """Unallocated money no refund has claimed: what may still go to an invoice (rule M6)."""
        return self.unallocated - self.being_refunded

    def allocate(self, invoice_id: UUID, amount: Money) -> None:
        """Place unallocated money on an invoice, never money promised to a refund (P2, M6)."""
        claimed = self.being_refunded
        amount.check_positive_at_most(
            self.placeable, "an allocation of", "the payment has {limit} left to allocate"
            + (f" ({claimed} of it is being refunded)" if claimed else ""))
        self._allocated(invoice_id=invoice_id, amount=amount)

    class Allocated(SaldoAggregate.Event):
        class_version = 2
        invoice_id: UUID
        amount: Money

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(Allocated)
    def _allocated(self, *, invoice_id: UUID, amount: Money) -> None:
        key = str(invoice_id)
        self.allocations[key] = self.allocations.get(key, Money.zero(self.currency)) + amount

    def release(self, *, invoice_id: UUID, credit_note_id: UUID, amount: Money) -> Money:
        """Release up to `amount` from the invoice for a credit note, once per credit note (I3).

        Returns what was released from this payment (zero if nothing).
        """
        nothing = Money.zero(self.currency)
        if str(credit_note_id) in self.released_for:
            return nothing
        releasable = amount.min(self.allocations.get(str(invoice_id), nothing))
        if not releasable.is_positive:
            return nothing
        self._amount_released(invoice_id=invoice_id, credit_note_id=credit_note_id,
                              amount=releasable, customer_id=self.customer_id)
        return releasable

    class AmountReleased(SaldoAggregate.Event):
        class_version = 2
        invoice_id: UUID
        credit_note_id: UUID
        amount: Money
        customer_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(AmountReleased)
    def _amount_released(self, *, invoice_id: UUID, credit_note_id: UUID, amount: Money,
                         customer_id: str) -> None:
        self.allocations[str(invoice_id)] -= amount
        self.released_for.append(str(credit_note_id))

    def note_refund(self, refund_id: UUID, amount: Money) -> dict[str, Money]:
        """A refund of this payment was requested in the refunds service (rules P3, M6).

        The refunds service granted it from what it knew to be unallocated. If an allocation
        made here meanwhile (before either service heard of the other) spent that money, the
        refund keeps it: the newest allocations give back the shortfall and those invoices are
        unpaid again (I3, without a credit note). Returns what was released, per invoice.
        Once per refund: the refunds topic may deliver the request twice.
        """
        if str(refund_id) in self.refunds:
            return {}
        released: dict[str, Money] = {}
        shortfall = amount - self.placeable
        for invoice_id in reversed(list(self.allocations)):
            if not shortfall.is_positive:
                break
            give_back = shortfall.min(self.allocations[invoice_id])
            if give_back.is_positive:
                self._released_for_refund(invoice_id=UUID(invoice_id), refund_id=refund_id,
                                          amount=give_back, customer_id=self.customer_id)
                released[invoice_id] = give_back
                shortfall -= give_back
        self._refund_noted(refund_id=refund_id, amount=amount.minor_units)
        return released

    class ReleasedForRefund(SaldoAggregate.Event):
        class_version = 2
        invoice_id: UUID
        refund_id: UUID
        amount: Money
        customer_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(ReleasedForRefund)
    def _released_for_refund(self, *, invoice_id: UUID, refund_id: UUID, amount: Money,
                             customer_id: str) -> None:
        self.allocations[str(invoice_id)] -= amount

    class RefundNoted(SaldoAggregate.Event):
        # Minor units of the payment's currency, as stored since the first build: version 1 kept
        # no currency, so it could not be upcast to Money. The payment holds it as Money.
        refund_id: UUID
        amount: int

    @event(RefundNoted)
    def _refund_noted(self, *, refund_id: UUID, amount: int) -> None:
        self.refunds[str(refund_id)] = Money(amount, self.currency)


class InvoiceAccount(SaldoAggregate):
    """An invoice as the payments service sees it: how much may still be allocated to it (M6).

    Opened when the invoice is issued and told of its credit notes; every allocation reserves
    its amount here in the same transaction as the payment's own event. Two payments placed
    on one invoice at once therefore conflict on this aggregate's version, and the retry sees
    the smaller open amount: an invoice is never paid above its total.

    Its events after `Opened` store amounts as minor units of the invoice's currency (as since
    the first build, which kept no currency with them); the account holds them as Money.
    """

    @staticmethod
    def create_id(invoice_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:invoice-account:{invoice_id}")

    class Opened(SaldoAggregate.Created):
        class_version = 2
        invoice_id: UUID
        number: int
        customer_id: str
        total: Money

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "total")

    @event(Opened)
    def __init__(self, *, business_unit: str, invoice_id: UUID, number: int, customer_id: str,
                 total: Money) -> None:
        self.business_unit = business_unit
        self.invoice_id = invoice_id
        self.number = number
        self.customer_id = customer_id
        self.total = total
        self.credited = Money.zero(total.currency)
        self.credit_notes: list[str] = []
        self.paid_by: dict[str, Money] = {}  # payment id -> amount allocated, in allocation order

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def allocated(self) -> Money:
        return sum_of(list(self.paid_by.values()), self.currency)

    @property
    def open_amount(self) -> Money:
        """Total − credited − already allocated (rule M6)."""
        return self.total - self.credited - self.allocated

    def allocate(self, *, payment_id: UUID, customer_id: str, amount: Money) -> None:
        """Money goes only to open invoices of the same customer and currency, never above
        what is open (rule M6; the business unit is the caller's, M3)."""
        if customer_id != self.customer_id:
            raise DomainRuleViolated(
                f"invoice {self.number} belongs to customer {self.customer_id!r} and the payment to "
                f"customer {customer_id!r}: money is allocated only to the payer's own invoices"
            )
        if amount.currency != self.currency:
            raise DomainRuleViolated(
                f"invoice {self.number} is in {self.currency}, the payment in {amount.currency}: "
                "amounts in different currencies cannot be combined (rule M1)"
            )
        if not self.open_amount.is_positive:
            state = "fully credited" if self.credited >= self.total else "paid in full"
            raise DomainRuleViolated(f"invoice {self.number} is {state}; nothing is left to pay on it")
        amount.check_positive_at_most(
            self.open_amount, "an allocation of",
            f"invoice {self.number} has {{limit}} open (total {self.total}, credited "
            f"{self.credited}, already paid {self.allocated})")
        self._allocated(payment_id=payment_id, amount=self._minor_units(amount))

    class Allocated(SaldoAggregate.Event):
        payment_id: UUID
        amount: int  # minor units of the invoice's currency

    @event(Allocated)
    def _allocated(self, *, payment_id: UUID, amount: int) -> None:
        key = str(payment_id)
        self.paid_by[key] = self.paid_by.get(key, Money.zero(self.currency)) + self._money(amount)

    def note_credit(self, credit_note_id: UUID, amount: Money) -> bool:
        """A credit note lowers what is owed (rule I3); once per credit note."""
        if str(credit_note_id) in self.credit_notes:
            return False
        self._credited(credit_note_id=credit_note_id, amount=self._minor_units(amount))
        return True

    class Credited(SaldoAggregate.Event):
        credit_note_id: UUID
        amount: int  # minor units of the invoice's currency

    @event(Credited)
    def _credited(self, *, credit_note_id: UUID, amount: int) -> None:
        self.credited += self._money(amount)
        self.credit_notes.append(str(credit_note_id))

    def release(self, payment_id: UUID, amount: Money) -> None:
        """Money of a payment detached from this invoice (for a credit note or a refund)."""
        self._released(payment_id=payment_id, amount=self._minor_units(amount))

    class Released(SaldoAggregate.Event):
        payment_id: UUID
        amount: int  # minor units of the invoice's currency

    @event(Released)
    def _released(self, *, payment_id: UUID, amount: int) -> None:
        self.paid_by[str(payment_id)] -= self._money(amount)

    def _minor_units(self, amount: Money) -> int:
        """`amount` as these events store it; an amount in another currency is refused (M1)."""
        return (Money.zero(self.currency) + amount).minor_units

    def _money(self, minor_units: int) -> Money:
        return Money(minor_units, self.currency)


def credit_invoice(account: InvoiceAccount, payments: list[Payment], *, credit_note_id: UUID,
                   amount: Money) -> None:
    """A credit note lowers the invoice's debt and releases as much of what paid it, from the
    payments in the order they were allocated (rule I3). Once per credit note.

    `payments` are those that paid the invoice (`account.paid_by`), in that order.
    """
    if not account.note_credit(credit_note_id, amount):
        return
    left = amount
    for payment in payments:
        if not left.is_positive:
            break
        released = payment.release(invoice_id=account.invoice_id, credit_note_id=credit_note_id,
                                   amount=left)
        if released:
            account.release(payment.id, released)
            left -= released


def keep_for_refund(payment: Payment, invoices: list[InvoiceAccount], *, refund_id: UUID,
                    amount: Money) -> None:
    """Money promised to a refund is not allocated again; if a later allocation already took
    it, that allocation gives it back and its invoice is unpaid again by as much (rules M6, I3).
    Once per refund.

    `invoices` are the accounts of the invoices the payment is allocated to.
    """
    nothing = Money.zero(payment.currency)
    released = payment.note_refund(refund_id, amount)
    for account in invoices:
        part = released.get(str(account.invoice_id), nothing)
        # An allocation made before invoices had accounts is not on the account: nothing to undo.
        if part.is_positive and account.paid_by.get(str(payment.id), nothing) >= part:
            account.release(payment.id, part)


class InvoicePayments(SaldoAggregate):
    """Superseded by InvoiceAccount; kept so events stored before it stay readable."""

    class Started(SaldoAggregate.Created):
        invoice_id: UUID

    @event(Started)
    def __init__(self, *, business_unit: str, invoice_id: UUID) -> None:
        self.business_unit = business_unit
        self.invoice_id = invoice_id
        self.payment_ids: list[UUID] = []

    class PaymentAdded(SaldoAggregate.Event):
        payment_id: UUID

    @event(PaymentAdded)
    def add(self, payment_id: UUID) -> None:
        self.payment_ids.append(payment_id)
