"""Invoices, their numbers, credit notes, payments applied, releases and reminders. No I/O here.

The business entity, customers and subscriptions are in `parties`; channel resolution (C3),
FIK references (I1) and proration (C4) are pure functions in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, TypedDict
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_invoicing.domain.channels import resolve_channel
from saldo_invoicing.domain.fik import fik_reference
from saldo_invoicing.domain.parties import BusinessEntity, Customer, Subscription
from saldo_invoicing.domain.parties import InvoicedPeriod as Period
from saldo_invoicing.domain.proration import unused_share
from saldo_invoicing.domain.reminders import next_reminder
from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money, upcast_amounts

InvoiceStatus = Literal["open", "partially_paid", "paid", "credited"]


class InvoiceLine(TypedDict):
    description: str
    amount: Money


def lines_total(lines: list[InvoiceLine]) -> Money:
    """What the lines add up to; lines in two currencies are refused (rule M1)."""
    if not lines:
        raise DomainRuleViolated("an invoice needs at least one line")
    result = lines[0]["amount"]
    for line in lines[1:]:
        result += line["amount"]
    return result


def invoice_status(*, total: Money, credited: Money, paid: Money) -> InvoiceStatus:
    """open, partially_paid, paid or credited (rule I2); a credit note settles its part (I3).

    What is paid is the payments service's to know; the caller passes it in.
    """
    if credited >= total:
        return "credited"
    if paid + credited >= total:
        return "paid"
    if paid.is_positive:
        return "partially_paid"
    return "open"


def is_overdue(*, status: InvoiceStatus, due_date: date, today: date) -> bool:
    """Unsettled and past its due date: the invoice reminders are for (rules I2, I4).

    `today` is the business unit's business date (rule M2). On the due date itself the invoice
    is not yet overdue; a paid or credited invoice never is.
    """
    return status in ("open", "partially_paid") and due_date < today


class InvoiceNumbers(SaldoAggregate):
    """The business unit's invoice number sequence, saved with each invoice: no gaps (rule I1)."""

    @staticmethod
    def create_id(business_unit: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:invoice-numbers:{business_unit}")

    class Started(SaldoAggregate.Created):
        """The unit's first invoice is being numbered."""

    @event(Started)
    def __init__(self, *, business_unit: str) -> None:
        self.business_unit = business_unit
        self.last = 0

    class NumberTaken(SaldoAggregate.Event):
        """The next number went to an invoice saved in the same transaction."""

    @event(NumberTaken)
    def take(self) -> None:
        self.last += 1


@dataclass(frozen=True)
class CreditNote:
    """A credit note of an invoice: what it credited and why (rule I3)."""

    amount: Money
    reason: str


class BilledParty(TypedDict):
    """A party as printed on the invoice when it was issued: later changes do not rewrite it."""

    name: str
    address_lines: list[str]
    postal_code: str
    city: str
    country: str
    email: str | None
    ean: str | None
    registration_number: str | None


class Seller(BilledParty):
    bank_account: dict[str, str] | None
    payment_message_prefix: str


@dataclass(frozen=True)
class Terms:
    """Everything an invoice is issued with besides its lines: decided by the application from
    the business entity, the customer and the subscription (rules C3, I1)."""

    channel: str
    channel_reason: str
    fik_creditor_number: str
    buyer: BilledParty
    seller: Seller
    subscription_id: UUID | None = None
    period: Period | None = None

    @classmethod
    def of(cls, *, entity: BusinessEntity, customer: Customer, subscription: Subscription | None = None,
           period: Period | None = None) -> Terms:
        """The channel resolved now (rule C3) and the parties as they are now (rule M4)."""
        if customer.business_unit != entity.business_unit or (
                subscription is not None and subscription.customer_id != customer.customer_id):
            raise DomainRuleViolated("an invoice's customer and subscription belong together (rule M3)")
        resolved = resolve_channel(
            customer=customer.channel_facts, unit_method=entity.invoicing_method,
            subscription_method=subscription.invoicing_method if subscription else None,
            for_subscription=subscription is not None)
        c, e = customer.details, entity.details
        address = e["postal_address"] or {"lines": [], "postal_code": "", "city": "", "country": ""}
        return cls(
            channel=resolved.channel, channel_reason=resolved.reason,
            fik_creditor_number=e["fik_creditor_number"],
            buyer=BilledParty(name=c["name"], address_lines=c["postal_address"]["lines"],
                              postal_code=c["postal_address"]["postal_code"],
                              city=c["postal_address"]["city"], country=c["postal_address"]["country"],
                              email=c["email"], ean=c["ean"], registration_number=None),
            seller=Seller(name=e["legal_name"], address_lines=address["lines"],
                          postal_code=address["postal_code"], city=address["city"],
                          country=address["country"], email=None, ean=None,
                          registration_number=e["registration_number"],
                          bank_account=e["bank_account"],
                          payment_message_prefix=e["payment_message_prefix"]),
            subscription_id=subscription.id if subscription else None, period=period,
        )


class Invoice(SaldoAggregate):
    """An invoice to one customer: numbered lines in one currency, due on a business date (I1)."""

    @classmethod
    def issue(cls, *, numbers: InvoiceNumbers, customer_id: str, lines: list[InvoiceLine],
              due_date: date, terms: Terms) -> Invoice:
        """Takes the unit's next number (rule I1) for lines that add up to a positive total, and
        the FIK payment reference made from that number.

        The caller saves `numbers` together with the invoice, so a number is never lost.
        """
        total = lines_total(lines)
        if not total.is_positive:
            raise DomainRuleViolated(f"an invoice's total must be positive, not {total}")
        numbers.take()
        invoice: Invoice = cls(
            business_unit=numbers.business_unit, number=numbers.last, customer_id=customer_id,
            lines=lines, due_date=due_date, channel=terms.channel, channel_reason=terms.channel_reason,
            payment_reference=fik_reference(numbers.last, terms.fik_creditor_number),
            subscription_id=terms.subscription_id, period=terms.period, buyer=terms.buyer,
            seller=terms.seller,
        )
        return invoice

    class Issued(SaldoAggregate.Created):
        class_version = 3
        number: int
        customer_id: str
        lines: list[InvoiceLine]
        due_date: date
        channel: str
        channel_reason: str
        payment_reference: str | None
        subscription_id: UUID | None
        period: Period | None
        buyer: BilledParty | None
        seller: Seller | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Version 1 kept integer line amounts and the invoice's currency beside them.
            currency = state.pop("currency")
            state["lines"] = [{**line, "amount": Money(line["amount"], currency)}
                              for line in state["lines"]]

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            # Invoices issued before channels, FIK references and customers existed.
            state.update(channel="unresolved", channel_reason="issued before channels were resolved",
                         payment_reference=None, subscription_id=None, period=None, buyer=None,
                         seller=None)

    @event(Issued)
    def __init__(self, *, business_unit: str, number: int, customer_id: str,
                 lines: list[InvoiceLine], due_date: date, channel: str, channel_reason: str,
                 payment_reference: str | None, subscription_id: UUID | None, period: Period | None,
                 buyer: BilledParty | None, seller: Seller | None) -> None:
        self.business_unit = business_unit
        self.number = number
        self.customer_id = customer_id
        self.lines = lines
        self.due_date = due_date
        self.channel = channel
        self.channel_reason = channel_reason
        self.payment_reference = payment_reference
        self.subscription_id = subscription_id
        self.period = period
        self.buyer = buyer
        self.seller = seller
        self.total = lines_total(lines)
        self.credited = Money.zero(self.total.currency)
        self.paid = Money.zero(self.total.currency)
        self.credit_notes: dict[UUID, CreditNote] = {}
        self.reminders: list[date] = []
        self.followed: set[UUID] = set()  # payments events applied (see `follows`)

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def creditable(self) -> Money:
        """What is left to credit: the total minus every credit note so far (rule I3)."""
        return self.total - self.credited

    @property
    def status(self) -> InvoiceStatus:
        """From what payments reported paid (PaymentApplied, less releases) and credited (I2)."""
        return invoice_status(total=self.total, credited=self.credited, paid=self.paid)

    def issue_credit_note(self, *, credit_note_id: UUID, amount: Money, reason: str) -> None:
        """Credit part or all of the invoice; never more than is left to credit (rule I3)."""
        amount.check_positive_at_most(self.creditable, "a credit note of",
                                      f"amount (rule I3): invoice {self.number} has {{limit}} left to credit")
        self._credit(credit_note_id=credit_note_id, amount=amount, customer_id=self.customer_id,
                     reason=reason)

    class CreditNoteIssued(SaldoAggregate.Event):
        class_version = 2
        credit_note_id: UUID
        amount: Money
        customer_id: str
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(CreditNoteIssued)
    def _credit(self, *, credit_note_id: UUID, amount: Money, customer_id: str, reason: str) -> None:
        self.credited += amount
        self.credit_notes[credit_note_id] = CreditNote(amount=amount, reason=reason)

    # Payments' events reach the invoice at least once (a copy at a new offset is possible):
    # each change remembers the payments event it follows, and a copy changes nothing.

    def follows(self, payments_event_id: UUID) -> bool:
        """Whether this payments event was already applied to the invoice."""
        return payments_event_id in self.followed

    class PaymentApplied(SaldoAggregate.Event):
        """Payments allocated money of one payment to this invoice (PaymentReceived/Allocated)."""

        payment_id: UUID
        amount: Money
        customer_id: str
        payments_event_id: UUID

    def apply_payment(self, *, payment_id: UUID, amount: Money, payments_event_id: UUID) -> None:
        if not self.follows(payments_event_id):
            self._applied(payment_id=payment_id, amount=amount, customer_id=self.customer_id,
                          payments_event_id=payments_event_id)

    @event(PaymentApplied)
    def _applied(self, *, payment_id: UUID, amount: Money, customer_id: str,
                 payments_event_id: UUID) -> None:
        self.paid += amount
        self.followed.add(payments_event_id)

    class PaymentReleased(SaldoAggregate.Event):
        """Payments detached money for one of this invoice's credit notes: the debt shrank by
        as much, so the invoice stays settled (rule I3)."""

        payment_id: UUID
        amount: Money
        credit_note_id: UUID
        customer_id: str
        payments_event_id: UUID

    def release_for_credit_note(self, *, payment_id: UUID, amount: Money, credit_note_id: UUID,
                                payments_event_id: UUID) -> None:
        if not self.follows(payments_event_id):
            self._released(payment_id=payment_id, amount=amount, credit_note_id=credit_note_id,
                           customer_id=self.customer_id, payments_event_id=payments_event_id)

    @event(PaymentReleased)
    def _released(self, *, payment_id: UUID, amount: Money, credit_note_id: UUID, customer_id: str,
                  payments_event_id: UUID) -> None:
        self.paid -= amount
        self.followed.add(payments_event_id)

    class Reopened(SaldoAggregate.Event):
        """Money was released without a credit note: the invoice is unpaid again by that
        amount and its reminders resume (rule I3)."""

        payment_id: UUID
        amount: Money
        reason: str
        customer_id: str
        payments_event_id: UUID

    def reopen(self, *, payment_id: UUID, amount: Money, reason: str, payments_event_id: UUID) -> None:
        if not self.follows(payments_event_id):
            self._reopen(payment_id=payment_id, amount=amount, reason=reason,
                         customer_id=self.customer_id, payments_event_id=payments_event_id)

    @event(Reopened)
    def _reopen(self, *, payment_id: UUID, amount: Money, reason: str, customer_id: str,
                payments_event_id: UUID) -> None:
        self.paid -= amount
        self.followed.add(payments_event_id)

    def reminder_due(self, *, today: date, schedule: list[int]) -> int | None:
        """The number of the reminder due on `today` (the unit's business date, M2), if any:
        only while unpaid and past due, on the unit's schedule, one per day (rules I2, I4)."""
        if not is_overdue(status=self.status, due_date=self.due_date, today=today):
            return None
        due = next_reminder(due_date=self.due_date, schedule=schedule, sent=self.reminders)
        if due is None or due > today or (self.reminders and self.reminders[-1] >= today):
            return None
        return len(self.reminders) + 1

    def send_reminder(self, *, today: date, schedule: list[int]) -> None:
        number = self.reminder_due(today=today, schedule=schedule)
        if number is None:
            raise DomainRuleViolated(f"invoice {self.number} has no reminder due on {today}")
        self._remind(number=number, business_date=today, customer_id=self.customer_id)

    class ReminderSent(SaldoAggregate.Event):
        number: int
        business_date: date
        customer_id: str

    @event(ReminderSent)
    def _remind(self, *, number: int, business_date: date, customer_id: str) -> None:
        self.reminders.append(business_date)


def stop_subscription(*, subscription: Subscription, invoice: Invoice | None, stop_date: date,
                      issues_delivered: int | None, reason: str, credit_note_id: UUID) -> Money | None:
    """Stop the subscription and credit the unused part of its last invoiced period (rule C4).

    The credit is the period's invoice total times unused/of, in integer minor units, rounded
    once: what is kept and what is credited always add up to the total. Never more than is
    left to credit (I3); its credit note makes payments release the money (I3), which leaves
    the customer a balance to refund. None when nothing is credited.
    """
    _check_stop_date(subscription, stop_date)
    if invoice is None:  # nothing invoiced yet: nothing to credit
        subscription.stop(stop_date=stop_date, reason=reason)
        return None
    if subscription.invoiced[-1].get("invoice_id") != invoice.id:
        raise DomainRuleViolated("the invoice given is not the subscription's last invoiced period")
    unused, of = subscription.unused(stop_date=stop_date, issues_delivered=issues_delivered)
    subscription.stop(stop_date=stop_date, reason=reason)
    credit = min(unused_share(invoice.total, unused=unused, of=of), invoice.creditable)
    if not credit.is_positive:
        return None
    what = "issues not delivered" if subscription.issue_based else "days unused"
    invoice.issue_credit_note(credit_note_id=credit_note_id, amount=credit,
                              reason=f"subscription stopped on {stop_date}: {unused} of {of} {what}"
                                     f" ({reason})")
    return credit


def _check_stop_date(subscription: Subscription, stop_date: date) -> None:
    """The stop date an operator sent, refused on its own field and rule before anything changes:
    not before the last invoiced time-based period began (a period already served cannot be
    un-served; after it ends, nothing is left to credit), and never before the subscription
    started (rule C4)."""
    last = subscription.invoiced[-1] if subscription.invoiced else None
    if last is not None and "end" in last and stop_date < last["start"]:
        raise DomainRuleViolated(
            f"stop_date: {stop_date} is outside the period {last['start']} – "
            f"{last['end'] - timedelta(days=1)} last invoiced (rule C4); stop it on a day of that "
            f"period, or from {last['end']} on to credit nothing")
    if stop_date < subscription.started_on:
        raise DomainRuleViolated(f"stop_date: {stop_date} is before the subscription started on "
                                 f"{subscription.started_on} (rule C4)")
