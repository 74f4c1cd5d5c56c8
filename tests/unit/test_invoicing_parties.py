"""The business entity, customers and subscriptions (rules M4, M5, C1, C2), and the validated
field types their HTTP bodies are made of; no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from saldo_invoicing.domain.channels import ChannelFacts
from saldo_invoicing.domain.parties import (
    Agreement,
    BusinessEntity,
    Customer,
    CustomerDetails,
    EntityDetails,
    Subscription,
    check_reminder_schedule,
    is_active,
)
from saldo_kernel.errors import Conflict, DomainRuleViolated
from saldo_kernel.money import Money
from saldo_platform.http.fields import (
    BankAccountIn,
    Bic,
    CountryCode,
    CvrNumber,
    Ean,
    Email,
    Iban,
    TimeZoneName,
)


def entity_details(**overrides: Any) -> EntityDetails:
    details = EntityDetails(
        legal_name="Bladhuset A/S", registration_number="13585628", postal_address=None,
        bank_account={"iban": "DK5000400440116243", "bic": "DABADKKK"}, invoicing_method="email",
        payment_message_prefix="Bladhuset", currency="DKK", time_zone="Europe/Copenhagen",
        reminder_schedule_days=[7, 14], fik_creditor_number="85236417")
    return EntityDetails(**{**details, **overrides})


def customer_details(**overrides: Any) -> CustomerDetails:
    details = CustomerDetails(
        name="Anna Hansen", email="anna@example.dk",
        postal_address={"lines": ["Søndergade 1"], "postal_code": "8000", "city": "Aarhus C",
                        "country": "DK"},
        ean=None, bank_account=None, betalingsservice_mandate=None, e_invoice_to_online_banking=False,
        card_agreement=None, mobilepay_agreement=None)
    return CustomerDetails(**{**details, **overrides})


def active(reference: str) -> Agreement:
    return Agreement(reference=reference, status="active", cancelled_at=None)


def cancelled(reference: str, at: datetime) -> Agreement:
    return Agreement(reference=reference, status="cancelled", cancelled_at=at)


def names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


# --- The business entity (M4, M5) --------------------------------------------------------------


def test_M4_one_business_entity_per_unit_registered_then_updated_whole() -> None:
    entity = BusinessEntity.register(business_unit="bu", details=entity_details())
    assert entity.id == BusinessEntity.create_id("bu") != BusinessEntity.create_id("other")
    assert entity.currency == "DKK" and entity.invoicing_method == "email"
    assert entity.revise(details=entity_details()) is False  # the same PUT again: no event
    assert entity.revise(details=entity_details(
        bank_account={"registration_number": "1234", "account_number": "0001234567"},
        invoicing_method="bs_payment_slip", reminder_schedule_days=[])) is True
    assert names(entity) == ["Registered", "Updated"]
    assert entity.details["bank_account"] == {"registration_number": "1234",
                                              "account_number": "0001234567"}
    assert entity.reminder_schedule_days == [] and entity.version == 2


def test_M1_the_business_entitys_currency_cannot_change() -> None:
    entity = BusinessEntity.register(business_unit="bu", details=entity_details())
    with pytest.raises(Conflict, match="currency is DKK and cannot change to EUR"):
        entity.revise(details=entity_details(currency="EUR"))
    assert entity.version == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("invoicing_method", "fax", "not one of the invoicing methods of rule M5"),
    ("currency", "XXX", "not an ISO 4217 currency"),
    ("payment_message_prefix", "", "payment_message_prefix is 1 to 20"),
    ("payment_message_prefix", "x" * 21, "payment_message_prefix is 1 to 20"),
    ("fik_creditor_number", "1234567", "8-digit FIK creditor number"),
    ("bank_account", {"iban": "DK5000400440116243"}, "iban, bic"),
    ("reminder_schedule_days", [14, 7], "strictly increasing"),
    ("reminder_schedule_days", [0, 7], "positive"),
    ("reminder_schedule_days", list(range(1, 12)), "at most 10"),
])
def test_M4_M5_I4_a_business_entity_breaking_a_rule_is_refused(field: str, value: Any, message: str) -> None:
    with pytest.raises(DomainRuleViolated, match=message):
        BusinessEntity.register(business_unit="bu", details=entity_details(**{field: value}))
    entity = BusinessEntity.register(business_unit="bu", details=entity_details())
    with pytest.raises(DomainRuleViolated, match=message):
        entity.revise(details=entity_details(**{field: value}))
    assert entity.version == 1


def test_I4_a_reminder_schedule_may_be_empty() -> None:
    check_reminder_schedule([])
    check_reminder_schedule([7, 14, 30])
    with pytest.raises(DomainRuleViolated):
        check_reminder_schedule([7, 7])


# --- Customers (C1) ----------------------------------------------------------------------------


def test_C1_a_customer_is_registered_then_updated_whole_and_only_when_something_changed() -> None:
    customer = Customer.register(business_unit="bu", customer_id="sub-1001", details=customer_details())
    assert customer.id == Customer.create_id("bu", "sub-1001")
    assert customer.id not in (Customer.create_id("other", "sub-1001"), Customer.create_id("bu", "sub-1002"))
    assert customer.revise(details=customer_details()) is False
    assert customer.revise(details=customer_details(ean="5790000435975")) is True
    assert names(customer) == ["Registered", "Updated"]
    assert customer.details["ean"] == "5790000435975" and customer.customer_id == "sub-1001"


def test_C1_an_agreements_cancelled_at_is_set_exactly_when_it_is_cancelled_and_kept_in_utc() -> None:
    with pytest.raises(DomainRuleViolated, match="card_agreement: cancelled_at is set exactly when"):
        Customer.register(business_unit="bu", customer_id="c", details=customer_details(
            card_agreement=Agreement(reference="card-1", status="cancelled", cancelled_at=None)))
    with pytest.raises(DomainRuleViolated, match="mobilepay_agreement: cancelled_at is set exactly"):
        Customer.register(business_unit="bu", customer_id="c", details=customer_details(
            mobilepay_agreement=Agreement(reference="mp-1", status="active",
                                          cancelled_at=datetime(2026, 1, 1, tzinfo=UTC))))
    with pytest.raises(DomainRuleViolated, match="needs a time zone"):
        Customer.register(business_unit="bu", customer_id="c", details=customer_details(
            mobilepay_agreement=cancelled("mp-1", datetime(2026, 1, 1))))
    copenhagen = timezone(timedelta(hours=1))
    customer = Customer.register(business_unit="bu", customer_id="c", details=customer_details(
        mobilepay_agreement=cancelled("mp-1", datetime(2026, 1, 1, 12, tzinfo=copenhagen))))
    stored = customer.details["mobilepay_agreement"]
    assert stored is not None and stored["cancelled_at"] == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert stored["cancelled_at"].tzinfo is UTC  # rule M2: instants in UTC


def test_R4_C3_a_cancelled_agreement_stays_cancelled() -> None:
    """Refunds (R4) and channel resolution (C3) act on a cancellation; it cannot be undone."""
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    customer = Customer.register(business_unit="bu", customer_id="c",
                                 details=customer_details(mobilepay_agreement=active("mp-1")))
    assert customer.revise(details=customer_details(mobilepay_agreement=cancelled("mp-1", at)))
    with pytest.raises(Conflict, match="mobilepay_agreement mp-1 was cancelled at 2026-03-01"):
        customer.revise(details=customer_details(mobilepay_agreement=active("mp-1")))
    with pytest.raises(Conflict, match="stays as it is"):
        customer.revise(details=customer_details(
            mobilepay_agreement=cancelled("mp-1", at + timedelta(days=1))))
    # A new agreement has its own reference; dropping the agreement is a change too.
    assert customer.revise(details=customer_details(mobilepay_agreement=active("mp-2")))
    assert customer.revise(details=customer_details())
    assert names(customer) == ["Registered", "Updated", "Updated", "Updated"]


def test_C3_the_customers_channel_facts_count_only_active_agreements() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    customer = Customer.register(business_unit="bu", customer_id="c", details=customer_details(
        ean="5790000435975", betalingsservice_mandate=active("bs-1"), e_invoice_to_online_banking=True,
        card_agreement=cancelled("card-1", at)))
    assert customer.channel_facts == ChannelFacts(ean="5790000435975", mandate_active=True,
                                                  e_invoice_to_online_banking=True,
                                                  card_agreement_active=False)
    assert is_active(active("x")) and not is_active(cancelled("x", at)) and not is_active(None)


# --- Subscriptions (C2) ------------------------------------------------------------------------


def a_subscription(entity: BusinessEntity | None = None, **overrides: Any) -> Subscription:
    arguments: dict[str, Any] = {
        "entity": entity or BusinessEntity.register(business_unit="bu", details=entity_details()),
        "customer": Customer.register(business_unit="bu", customer_id="c", details=customer_details()),
        "product": "Bladet, monthly", "price": Money(14900, "DKK"),
        "period": {"unit": "months", "length": 1}, "invoicing_method": None,
        "started_on": date(2026, 11, 1), **overrides}
    return Subscription.start(**arguments)


def test_C2_a_subscription_has_its_own_invoicing_method_or_none() -> None:
    own = a_subscription(invoicing_method="bs_payment_slip", period={"unit": "issues", "length": 12})
    inherited = a_subscription()
    assert own.invoicing_method == "bs_payment_slip" and own.issue_based
    assert inherited.invoicing_method is None and not inherited.issue_based
    assert own.id != inherited.id and own.customer_id == "c" and own.business_unit == "bu"
    assert own.stopped_on is None and own.started_on == date(2026, 11, 1)
    assert names(own) == ["Started"]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"price": Money(14900, "EUR")}, "price: 149.00 EUR is not in the business unit's currency DKK"),
    ({"price": Money(0, "DKK")}, "price: 0.00 DKK per period is not positive"),
    ({"period": {"unit": "days", "length": 0}}, "length: 1 or more"),
    ({"period": {"unit": "weeks", "length": 2}}, "days, months or issues"),
    ({"invoicing_method": "fax"}, "rule M5"),
])
def test_C2_M1_a_subscription_breaking_a_rule_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DomainRuleViolated, match=message):
        a_subscription(**overrides)


# --- Validated fields (saldo_platform.http.fields) ---------------------------------------------


class Body(BaseModel):
    iban: Iban | None = None
    bic: Bic | None = None
    ean: Ean | None = None
    cvr: CvrNumber | None = None
    email: Email | None = None
    country: CountryCode | None = None
    time_zone: TimeZoneName | None = None
    bank_account: BankAccountIn | None = None


def error_of(**fields: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        Body(**fields)
    (error,) = caught.value.errors()
    return ".".join(str(p) for p in error["loc"]), error["msg"]


def test_M4_C1_valid_identifiers_are_kept_in_one_spelling() -> None:
    body = Body(iban="dk50 0040 0440 1162 43", bic="dabadkkk", ean="5790000435975", cvr="1358 5628",
                email="Anna.Hansen@Example.DK", country="DK", time_zone="America/New_York",
                bank_account={"registration_number": "1234", "account_number": "0001234567"})
    assert (body.iban, body.bic, body.cvr) == ("DK5000400440116243", "DABADKKK", "13585628")
    assert body.email == "Anna.Hansen@example.dk"
    assert body.bank_account is not None
    assert body.bank_account.as_dict() == {"registration_number": "1234", "account_number": "0001234567"}


@pytest.mark.parametrize(("fields", "location", "message"), [
    ({"iban": "DK5000400440116244"}, "iban", "not a valid IBAN"),
    ({"iban": "DK50" + "0" * 40}, "iban", "not a valid IBAN"),
    ({"bic": "DABAZZKK"}, "bic", "not a valid BIC"),
    ({"bic": "DABA"}, "bic", "not a valid BIC"),
    ({"ean": "5790000435976"}, "ean", "GS1 check digit (rule C1)"),
    ({"ean": "579000043597"}, "ean", "13 digits"),
    ({"cvr": "13585627"}, "cvr", "modulus-11 check (rule M4)"),
    ({"email": "anna.example.dk"}, "email", "not a valid e-mail address"),
    ({"country": "XX"}, "country", "ISO 3166-1 alpha-2"),
    ({"country": "dk"}, "country", "ISO 3166-1 alpha-2"),
    ({"time_zone": "Europe/Aarhus"}, "time_zone", "IANA name"),
    ({"bank_account": {"iban": "DK5000400440116243"}}, "bank_account", "exactly one of the two"),
    ({"bank_account": {"iban": "DK5000400440116243", "bic": "DABADKKK",
                       "registration_number": "1234", "account_number": "1"}},
     "bank_account", "exactly one of the two"),
    ({"bank_account": {"registration_number": "12345", "account_number": "1"}},
     "bank_account.registration_number", "4 digits (rule M4)"),
    ({"bank_account": {"registration_number": "1234", "account_number": "12345678901"}},
     "bank_account.account_number", "1 to 10 digits (rule M4)"),
    ({"bank_account": {"registration_number": "1234", "account_number": "1", "swift": "x"}},
     "bank_account.swift", "Extra inputs"),
])
def test_M4_C1_an_invalid_identifier_is_refused_naming_its_field(
        fields: dict[str, Any], location: str, message: str) -> None:
    where, what = error_of(**fields)
    assert where == location and message in what
