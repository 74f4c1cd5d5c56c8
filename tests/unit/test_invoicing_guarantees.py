"""Guarantees of the invoice domain that no other test pinned down, found by breaking the code on
purpose (mutation testing): each test here failed against one deliberate one-line change. No I/O.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest

from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers, Terms, stop_subscription
from saldo_invoicing.domain.parties import (
    BusinessEntity,
    Customer,
    CustomerDetails,
    EntityDetails,
    Subscription,
)
from saldo_invoicing.domain.reminders import next_reminder
from saldo_invoicing.printing import credit_note_document, invoice_document
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money
from saldo_platform.settings import Settings

DUE = date(2026, 12, 1)


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def day(n: int) -> date:
    return DUE + timedelta(days=n)


def entity(unit: str = "bu-1", **overrides: Any) -> BusinessEntity:
    details: dict[str, Any] = {
        "legal_name": "Bladhuset A/S", "registration_number": "13585628",
        "postal_address": {"lines": ["Bladvej 1", "3. sal"], "postal_code": "8000", "city": "Aarhus C",
                           "country": "DK"},
        "bank_account": {"registration_number": "1234", "account_number": "0012345678"},
        "invoicing_method": "email", "payment_message_prefix": "Bladhuset", "currency": "DKK",
        "time_zone": "Europe/Copenhagen", "reminder_schedule_days": [7, 14],
        "fik_creditor_number": "85236417", **overrides}
    return BusinessEntity.register(business_unit=unit, details=EntityDetails(**details))


def customer(unit: str = "bu-1", customer_id: str = "alice", **overrides: Any) -> Customer:
    details: dict[str, Any] = {
        "name": "Alice Hansen", "email": "alice@example.dk",
        "postal_address": {"lines": ["Søndergade 1", "c/o Bo"], "postal_code": "6270", "city": "Tønder",
                           "country": "DE"},
        "ean": "5798000416604", "bank_account": None, "betalingsservice_mandate": None,
        "e_invoice_to_online_banking": False, "card_agreement": None, "mobilepay_agreement": None,
        **overrides}
    return Customer.register(business_unit=unit, customer_id=customer_id, details=CustomerDetails(**details))


def subscription(of: Customer, unit: str = "issues", length: int = 12,
                 started_on: date = date(2026, 3, 1)) -> Subscription:
    return Subscription.start(entity=entity(of.business_unit), customer=of, product="Bladet",
                              price=dkk(60000), period={"unit": unit, "length": length},
                              invoicing_method=None, started_on=started_on)


# --- Terms.of: what an invoice is issued with (rules C3, M3, M4) ----------------------------------


def test_M4_C1_an_invoice_keeps_every_field_of_the_buyer_and_the_seller_as_they_were_at_issue() -> None:
    """The document printed or e-mailed later is made from these snapshots alone (printing.py):
    a field left out of them is missing from every PDF and e-invoice."""
    terms = Terms.of(entity=entity(), customer=customer())
    assert terms.buyer == {
        "name": "Alice Hansen", "address_lines": ["Søndergade 1", "c/o Bo"], "postal_code": "6270",
        "city": "Tønder", "country": "DE", "email": "alice@example.dk", "ean": "5798000416604",
        "registration_number": None}
    assert terms.seller == {
        "name": "Bladhuset A/S", "address_lines": ["Bladvej 1", "3. sal"], "postal_code": "8000",
        "city": "Aarhus C", "country": "DK", "email": None, "ean": None,
        "registration_number": "13585628",
        "bank_account": {"registration_number": "1234", "account_number": "0012345678"},
        "payment_message_prefix": "Bladhuset"}
    assert terms.fik_creditor_number == "85236417"


def test_M3_an_invoice_to_another_units_customer_is_refused() -> None:
    with pytest.raises(DomainRuleViolated, match="belong together"):
        Terms.of(entity=entity("bu-1"), customer=customer("bu-2"))


def test_C2_M3_an_invoice_for_another_customers_subscription_is_refused() -> None:
    alice, bob = customer(customer_id="alice"), customer(customer_id="bob")
    with pytest.raises(DomainRuleViolated, match="belong together"):
        Terms.of(entity=entity(), customer=alice, subscription=subscription(bob))


# --- reminders: the schedule's spacing (rule I4) ---------------------------------------------------


def test_I4_late_reminders_keep_each_gap_of_an_uneven_schedule() -> None:
    """Reminder n waits schedule[n] - schedule[n-1] days after the one before: with [3, 10, 30]
    the gaps are 7 and then 20 days (with [7, 14] a wrong gap of schedule[n-1] looks right)."""
    schedule = [3, 10, 30]
    assert next_reminder(due_date=DUE, schedule=schedule, sent=[day(20)]) == day(27)
    assert next_reminder(due_date=DUE, schedule=schedule, sent=[day(20), day(27)]) == day(47)
    assert next_reminder(due_date=DUE, schedule=schedule, sent=[day(3), day(10)]) == day(30)


# --- stopping a subscription (rule C4) -------------------------------------------------------------


def test_C4_a_stop_before_the_subscription_started_is_refused_on_stop_date_first() -> None:
    """The stop date is checked before anything else: an issue-based subscription stopped before
    it started is refused naming stop_date, not the missing issues_delivered, and nothing changes."""
    alice = customer()
    weekly = subscription(alice, started_on=date(2026, 3, 1))
    period = weekly.next_period(today=date(2026, 3, 1))
    invoice = Invoice.issue(numbers=InvoiceNumbers(business_unit="bu-1"), customer_id="alice",
                            lines=[InvoiceLine(description="Bladet", amount=dkk(60000))], due_date=DUE,
                            terms=Terms.of(entity=entity(), customer=alice, subscription=weekly,
                                           period=period))
    weekly.period_invoiced(invoice_id=invoice.id, period=period)
    with pytest.raises(DomainRuleViolated, match="stop_date: 2026-02-28 is before the subscription"):
        stop_subscription(subscription=weekly, invoice=invoice, stop_date=date(2026, 2, 28),
                          issues_delivered=None, reason="x", credit_note_id=uuid4())
    assert weekly.stopped_on is None and invoice.credited == dkk(0)


def test_C4_an_issue_based_stop_after_every_issue_was_delivered_credits_nothing() -> None:
    """issues_delivered may be every issue of the period (0 to 12 inclusive): nothing is left to
    credit, and the stop is not refused."""
    alice = customer()
    monthly = subscription(alice)
    period = monthly.next_period(today=date(2026, 3, 1))
    invoice = Invoice.issue(numbers=InvoiceNumbers(business_unit="bu-1"), customer_id="alice",
                            lines=[InvoiceLine(description="Bladet", amount=dkk(60000))], due_date=DUE,
                            terms=Terms.of(entity=entity(), customer=alice, subscription=monthly,
                                           period=period))
    monthly.period_invoiced(invoice_id=invoice.id, period=period)
    credit = stop_subscription(subscription=monthly, invoice=invoice, stop_date=date(2027, 3, 1),
                               issues_delivered=12, reason="all read", credit_note_id=uuid4())
    assert credit is None and invoice.credited == dkk(0) and monthly.stopped_on == date(2027, 3, 1)


# --- SALDO_PAYMENT_LINK (rule C3: e-mail with a PDF and a payment link) ----------------------------


def test_C3_the_payment_link_is_an_http_url_with_the_payment_reference_in_it() -> None:
    """A link every mailed invoice carries: refused at start-up unless it is http(s) and says
    where the invoice's FIK reference goes; unset is no link."""
    assert Settings.from_env({}).payment_link is None
    for good in ("https://pay.example.dk/?ref={payment_reference}", "http://localhost/{payment_reference}"):
        assert Settings.from_env({"SALDO_PAYMENT_LINK": good}).payment_link == good
    for wrong in ("ftp://pay.example.dk/{payment_reference}", "pay.example.dk/{payment_reference}",
                  "https://pay.example.dk/", "https://pay.example.dk/?ref={reference}"):
        with pytest.raises(ValueError, match="SALDO_PAYMENT_LINK"):
            Settings.from_env({"SALDO_PAYMENT_LINK": wrong})


# --- documents as printed (rules I1, I3, B5) -------------------------------------------------------


def test_I1_I3_documents_print_the_parties_as_issued_and_number_credit_notes_after_their_invoice() -> None:
    """The buyer's own country (a German address stays DE; only a seller with no address is
    taken to be in DK), the payment message "<prefix> <number>", and credit notes numbered
    "<invoice>-<n>" in the order they were issued, whenever one is printed."""
    terms = Terms.of(entity=entity(postal_address=None), customer=customer())
    invoice = Invoice.issue(numbers=InvoiceNumbers(business_unit="bu-1"), customer_id="alice",
                            lines=[InvoiceLine(description="Bladet", amount=dkk(10000))], due_date=DUE,
                            terms=terms)
    document = invoice_document(invoice, issue_date=date(2026, 11, 20))
    assert (document.buyer.country, document.seller.country) == ("DE", "DK")
    assert (document.number, document.payment_message) == ("1", "Bladhuset 1")
    first, second = uuid4(), uuid4()
    invoice.issue_credit_note(credit_note_id=first, amount=dkk(1000), reason="one issue missing")
    invoice.issue_credit_note(credit_note_id=second, amount=dkk(2000), reason="two more")
    notes = [credit_note_document(invoice, note, issue_date=date(2026, 11, 21)) for note in (first, second)]
    assert [(n.number, n.payment_message, n.credited_invoice_number, n.total) for n in notes] == [
        ("1-1", "Bladhuset 1-1", "1", dkk(1000)), ("1-2", "Bladhuset 1-2", "1", dkk(2000))]


def test_C3_the_channel_reason_says_whether_the_invoice_has_a_subscription() -> None:
    """An invoice of the operator's own lines has no subscription to take a method from; one for
    a subscription without a method of its own inherits the unit's. The reason tells them apart."""
    alice = customer(ean=None)
    own_lines = Terms.of(entity=entity(), customer=alice)
    renewal = Terms.of(entity=entity(), customer=alice, subscription=subscription(alice))
    assert (own_lines.channel, renewal.channel) == ("email", "email")
    assert "business unit's method email (no subscription)" in own_lines.channel_reason
    assert "the subscription has none of its own" in renewal.channel_reason
