"""The invoice aggregates' rules, without I/O."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from saldo_invoicing.domain import (
    Invoice,
    InvoiceLine,
    InvoiceNumbers,
    Seller,
    Terms,
    invoice_status,
    is_overdue,
    stop_subscription,
)
from saldo_invoicing.domain.fik import is_valid_payment_id
from saldo_invoicing.domain.parties import Subscription
from saldo_invoicing.domain.reminders import next_reminder
from saldo_kernel.errors import Conflict, DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money

DUE = date(2026, 12, 1)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def line(amount: Money, description: str = "Magazine, 12 months") -> InvoiceLine:
    return InvoiceLine(description=description, amount=amount)


SELLER = Seller(name="Ugebladet A/S", address_lines=["Havnegade 1"], postal_code="1058",
                city="København K", country="DK", email=None, ean=None,
                registration_number="13585628", bank_account=None, payment_message_prefix="UGEBL")
TERMS = Terms(channel="email", channel_reason="the business unit's preferred method email",
              fik_creditor_number="85474510", seller=SELLER,
              buyer={"name": "Alice", "address_lines": ["Vej 2"], "postal_code": "2100",
                     "city": "København Ø", "country": "DK", "email": "alice@example.dk",
                     "ean": None, "registration_number": None})


def issue(numbers: InvoiceNumbers, *lines_: InvoiceLine, due_date: date = DUE) -> Invoice:
    return Invoice.issue(numbers=numbers, customer_id="cust", lines=list(lines_), due_date=due_date,
                         terms=TERMS)


def an_invoice(amount: int = 10000, due_date: date = DUE) -> Invoice:
    return issue(InvoiceNumbers(business_unit="bu"), line(dkk(amount)), due_date=due_date)


def test_I1_invoice_numbers_count_up_without_gaps() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    issued = [issue(numbers, line(dkk(100))) for _ in range(3)]
    assert [i.number for i in issued] == [1, 2, 3] and numbers.last == 3
    assert InvoiceNumbers.create_id("bu") == numbers.id  # one sequence per business unit
    assert InvoiceNumbers.create_id("other") != numbers.id


def test_I1_a_refused_invoice_takes_no_number() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    with pytest.raises(DomainRuleViolated, match="at least one line"):
        issue(numbers)
    with pytest.raises(DomainRuleViolated, match="total must be positive, not -1.00 DKK"):
        issue(numbers, line(dkk(100)), line(dkk(-200), "discount"))
    assert numbers.last == 0


def test_M1_an_invoice_is_in_one_currency() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    with pytest.raises(CurrencyMismatch):
        issue(numbers, line(dkk(100)), line(Money(100, "EUR")))
    invoice = issue(numbers, line(dkk(100)), line(dkk(250)))
    assert invoice.total == dkk(350) and invoice.currency == "DKK" and invoice.number == 1


def test_I3_credit_notes_never_exceed_what_is_left_to_credit() -> None:
    invoice = an_invoice(10000)
    invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(6000), reason="two issues missing")
    assert invoice.creditable == dkk(4000)
    with pytest.raises(DomainRuleViolated,
                       match="invoice 1 has 40.00 DKK left to credit; a credit note of 40.01 DKK"):
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(4001), reason="too much")
    with pytest.raises(DomainRuleViolated, match="not positive"):
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(0), reason="nothing")
    with pytest.raises(CurrencyMismatch):
        invoice.issue_credit_note(credit_note_id=uuid4(), amount=Money(100, "EUR"), reason="euro")
    invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(4000), reason="the rest")
    assert invoice.creditable == dkk(0) and len(invoice.credit_notes) == 2
    assert invoice.status == "credited"


@pytest.mark.parametrize(("credited", "paid", "status"), [
    (0, 0, "open"),
    (0, 1, "partially_paid"),
    (0, 10000, "paid"),
    (4000, 6000, "paid"),  # a credit note settles its part (I3)
    (4000, 5999, "partially_paid"),
    (10000, 0, "credited"),
    (10000, 10000, "credited"),  # paid, then fully credited: nothing more to pay
])
def test_I2_status_from_total_credited_and_paid(credited: int, paid: int, status: str) -> None:
    assert invoice_status(total=dkk(10000), credited=dkk(credited), paid=dkk(paid)) == status


def test_I2_I4_overdue_is_unsettled_and_past_the_due_date() -> None:
    for status in ("open", "partially_paid"):
        assert not is_overdue(status=status, due_date=DUE, today=DUE)  # the due date still counts
        assert is_overdue(status=status, due_date=DUE, today=date(2026, 12, 2))
    for settled in ("paid", "credited"):  # a credited invoice never gets a reminder
        assert not is_overdue(status=settled, due_date=DUE, today=date(2027, 6, 1))


def test_I1_each_invoice_carries_a_fik_reference_made_from_its_number_and_its_resolved_channel() -> None:
    numbers = InvoiceNumbers(business_unit="bu")
    first, second = issue(numbers, line(dkk(100))), issue(numbers, line(dkk(100)))
    assert first.payment_reference == "+71" + "00000000000001" + "8" + "+85474510"
    payment_ids = {i.payment_reference.split("+")[1][2:] for i in (first, second) if i.payment_reference}
    assert len(payment_ids) == 2 and all(is_valid_payment_id(p) for p in payment_ids)
    assert (first.channel, first.channel_reason) == (TERMS.channel, TERMS.channel_reason)
    assert first.buyer == TERMS.buyer and first.seller == SELLER


def test_I2_I3_payments_applied_settle_a_release_for_a_credit_note_keeps_it_settled() -> None:
    invoice = an_invoice(10000)
    payment = uuid4()
    invoice.apply_payment(payment_id=payment, amount=dkk(4000), payments_event_id=uuid4())
    assert invoice.status == "partially_paid"
    invoice.apply_payment(payment_id=payment, amount=dkk(6000), payments_event_id=uuid4())
    assert invoice.status == "paid"
    note = uuid4()
    invoice.issue_credit_note(credit_note_id=note, amount=dkk(3000), reason="stopped early")
    invoice.release_for_credit_note(payment_id=payment, amount=dkk(3000), credit_note_id=note,
                                    payments_event_id=uuid4())
    assert (invoice.paid, invoice.credited, invoice.status) == (dkk(7000), dkk(3000), "paid")


def test_I3_a_release_without_a_credit_note_makes_the_invoice_unpaid_again() -> None:
    invoice = an_invoice(10000)
    invoice.apply_payment(payment_id=uuid4(), amount=dkk(10000), payments_event_id=uuid4())
    invoice.reopen(payment_id=uuid4(), amount=dkk(2500), reason="paid by mistake",
                   payments_event_id=uuid4())
    assert (invoice.paid, invoice.status) == (dkk(7500), "partially_paid")
    assert isinstance(invoice.collect_events()[-1], Invoice.Reopened)


SCHEDULE = [7, 14]


def days(n: int) -> date:
    return date.fromordinal(DUE.toordinal() + n)


def test_I4_reminders_follow_the_schedule_once_a_day_and_only_while_unpaid() -> None:
    invoice = an_invoice(10000)
    assert invoice.reminder_due(today=days(6), schedule=SCHEDULE) is None
    assert invoice.reminder_due(today=days(7), schedule=SCHEDULE) == 1
    invoice.send_reminder(today=days(7), schedule=SCHEDULE)
    assert invoice.reminder_due(today=days(7), schedule=SCHEDULE) is None  # run twice: nothing new
    assert invoice.reminder_due(today=days(13), schedule=SCHEDULE) is None
    invoice.send_reminder(today=days(14), schedule=SCHEDULE)
    assert invoice.reminder_due(today=days(100), schedule=SCHEDULE) is None  # the schedule is done
    with pytest.raises(DomainRuleViolated, match="no reminder due"):
        invoice.send_reminder(today=days(100), schedule=SCHEDULE)
    assert invoice.reminders == [days(7), days(14)]


def test_I4_paid_and_credited_invoices_get_no_reminder() -> None:
    paid = an_invoice(10000)
    paid.apply_payment(payment_id=uuid4(), amount=dkk(10000), payments_event_id=uuid4())
    credited = an_invoice(10000)
    credited.issue_credit_note(credit_note_id=uuid4(), amount=dkk(10000), reason="cancelled")
    for invoice in (paid, credited):
        assert invoice.reminder_due(today=days(30), schedule=SCHEDULE) is None


def test_I3_I4_a_reopened_invoice_gets_its_reminders_again_one_at_a_time() -> None:
    invoice = an_invoice(10000)
    invoice.send_reminder(today=days(8), schedule=SCHEDULE)
    payment = uuid4()
    invoice.apply_payment(payment_id=payment, amount=dkk(10000), payments_event_id=uuid4())
    assert invoice.reminder_due(today=days(20), schedule=SCHEDULE) is None
    invoice.reopen(payment_id=payment, amount=dkk(10000), reason="chargeback", payments_event_id=uuid4())
    assert invoice.reminder_due(today=days(20), schedule=SCHEDULE) == 2  # resumes where it stopped


def test_I4_late_reminders_keep_the_schedule_spacing() -> None:
    assert next_reminder(due_date=DUE, schedule=SCHEDULE, sent=[]) == days(7)
    assert next_reminder(due_date=DUE, schedule=SCHEDULE, sent=[days(7)]) == days(14)
    # the first went out late, on day 30: the second waits the schedule's 7 days after it
    assert next_reminder(due_date=DUE, schedule=SCHEDULE, sent=[days(30)]) == days(37)
    assert next_reminder(due_date=DUE, schedule=SCHEDULE, sent=[days(7), days(14)]) is None
    assert next_reminder(due_date=DUE, schedule=[], sent=[]) is None


def subscription_of(unit: str, length: int, started_on: date = date(2026, 1, 1)) -> Subscription:
    subscription = Subscription(business_unit="bu", customer_id="cust", product="Ugebladet",
                                price=dkk(49900), period={"unit": unit, "length": length},
                                invoicing_method=None, started_on=started_on)
    return subscription


def invoice_period(subscription: Subscription) -> Invoice:
    period = subscription.next_period(today=date(2026, 1, 1))
    invoice = issue(InvoiceNumbers(business_unit="bu"), line(subscription.price))
    subscription.period_invoiced(invoice_id=invoice.id, period=period)
    return invoice


def test_C2_time_based_periods_follow_each_other() -> None:
    subscription = subscription_of("months", 1, started_on=date(2026, 1, 31))
    assert subscription.next_period(today=date(2026, 5, 5)) == {"start": date(2026, 1, 31),
                                                                 "end": date(2026, 2, 28)}
    invoice_period(subscription)
    # counted from the start: the clamped February does not shift the months after it
    assert subscription.next_period(today=date(2026, 5, 5)) == {"start": date(2026, 2, 28),
                                                                 "end": date(2026, 3, 31)}
    invoice_period(subscription)
    assert subscription.next_period(today=date(2026, 5, 5)) == {"start": date(2026, 3, 31),
                                                                 "end": date(2026, 4, 30)}
    issues = subscription_of("issues", 10)
    assert issues.next_period(today=date(2026, 5, 5)) == {"start": date(2026, 5, 5), "issues": 10}


def test_C4_stopping_mid_period_credits_the_unused_days() -> None:
    subscription = subscription_of("days", 365)
    invoice = invoice_period(subscription)
    credit = stop_subscription(subscription=subscription, invoice=invoice, stop_date=date(2026, 9, 23),
                               issues_delivered=None, reason="moved abroad", credit_note_id=uuid4())
    # 100 of 365 days unused: 499.00 × 100/365 = 136.712… → 136.71 DKK, kept 362.29 DKK
    assert credit == dkk(13671) and invoice.credited == dkk(13671)
    assert subscription.stopped_on == date(2026, 9, 23)
    note = next(iter(invoice.credit_notes.values()))
    assert "100 of 365 days unused" in note.reason
    with pytest.raises(Conflict, match="already stopped"):
        subscription.stop(stop_date=date(2026, 10, 1), reason="again")


def test_C4_issue_based_periods_credit_the_issues_not_delivered() -> None:
    subscription = subscription_of("issues", 12)
    invoice = invoice_period(subscription)
    credit = stop_subscription(subscription=subscription, invoice=invoice, stop_date=date(2026, 3, 1),
                               issues_delivered=4, reason="too many magazines", credit_note_id=uuid4())
    assert credit == dkk(33267)  # 499.00 × 8/12 = 332.666… → 332.67 DKK
    other = subscription_of("issues", 12)
    invoice_period(other)
    with pytest.raises(DomainRuleViolated, match="0 to 12"):
        other.unused(stop_date=date(2026, 3, 1), issues_delivered=13)


def test_C4_a_stop_after_the_last_invoiced_period_credits_nothing() -> None:
    subscription = subscription_of("days", 365)
    invoice = invoice_period(subscription)
    credit = stop_subscription(subscription=subscription, invoice=invoice, stop_date=date(2027, 1, 2),
                               issues_delivered=None, reason="let it run out", credit_note_id=uuid4())
    assert credit is None and invoice.credited == dkk(0)
    assert subscription.stopped_on == date(2027, 1, 2)


@pytest.mark.parametrize("stop_date", [date(2025, 12, 31)])
def test_C4_a_stop_date_outside_the_period_is_refused_and_changes_nothing(stop_date: date) -> None:
    subscription = subscription_of("days", 365)
    invoice = invoice_period(subscription)
    with pytest.raises(DomainRuleViolated, match="outside the period"):
        stop_subscription(subscription=subscription, invoice=invoice, stop_date=stop_date,
                          issues_delivered=None, reason="x", credit_note_id=uuid4())
    assert subscription.stopped_on is None and invoice.credited == dkk(0)


def test_C4_I3_the_credit_never_exceeds_what_is_left_to_credit() -> None:
    subscription = subscription_of("days", 10)
    invoice = invoice_period(subscription)
    invoice.issue_credit_note(credit_note_id=uuid4(), amount=dkk(49000), reason="goodwill")
    credit = stop_subscription(subscription=subscription, invoice=invoice, stop_date=date(2026, 1, 1),
                               issues_delivered=None, reason="never started", credit_note_id=uuid4())
    assert credit == dkk(900) and invoice.creditable == dkk(0)


def test_I2_a_copy_of_a_payments_event_changes_nothing() -> None:
    """Payments' events arrive at least once; one published again at a new offset is the same
    event (its id): the invoice applies it once (rules I2, M6)."""
    invoice = an_invoice(10000)
    received, released = uuid4(), uuid4()
    for _ in range(2):
        invoice.apply_payment(payment_id=uuid4(), amount=dkk(10000), payments_event_id=received)
        invoice.reopen(payment_id=uuid4(), amount=dkk(2500), reason="chargeback",
                       payments_event_id=released)
    assert invoice.paid == dkk(7500) and len(invoice.collect_events()) == 3  # issued, applied, reopened
