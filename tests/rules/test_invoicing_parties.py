"""The business entity, customers and subscriptions in process (rules M4, M5, C1, C2, M3): the
application, its routes (auth, problems, If-Match) and its read model, no servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from saldo_events import invoicing as contracts
from saldo_events.envelope import BankAccount
from saldo_invoicing import queries
from saldo_invoicing.api import router
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.integration import to_integration
from saldo_invoicing.projections import PartiesProjection
from saldo_kernel.errors import Conflict, DomainRuleViolated, NotFound
from saldo_kernel.money import Money
from saldo_platform import businessdates
from saldo_platform.http.pages import BEGINNING, Paging, decode_cursor
from saldo_platform.sql import Database
from tests.inprocess import (
    deliver,
    in_memory,
    operator,
    project_published,
    published,
    read_models,
    register_customer,
    serving,
    set_up_business_unit,
    start_subscription,
)
from tests.scenarios import business_entity_body, customer_body

Parties = tuple[InvoicingApplication, Database, PartiesProjection]


@pytest.fixture
async def parties(tmp_path: Path) -> AsyncIterator[Parties]:
    async with read_models(tmp_path) as db:
        projection = PartiesProjection(db, ["saldo.invoicing.v1"])
        await projection.setup()
        yield in_memory(InvoicingApplication), db, projection


def stored(app: InvoicingApplication) -> int:
    """How many events the application has stored: a refused command adds none."""
    count = after = 0
    while notifications := app.notification_log.select(start=after + 1, limit=10):
        count, after = count + len(notifications), notifications[-1].id
    return count


# --- The business entity (M4, M5) --------------------------------------------------------------


async def test_M4_the_business_entity_is_put_whole_201_then_200_with_etag_and_if_match(
        parties: Parties) -> None:
    app, db, projection = parties
    async with serving("invoicing", router, app, db) as client:
        first = await client.put("/v1/business-entity", json=business_entity_body())
        assert first.status_code == 201, first.text
        assert first.headers["etag"] == '"1"' and first.headers["location"] == "/v1/business-entity"
        assert first.json()["bank_account"] == {"iban": "DK5000400440116243", "bic": "DABADKKK",
                                                "registration_number": None, "account_number": None}
        again = await client.put("/v1/business-entity", json=business_entity_body())
        assert again.status_code == 200 and again.json() == first.json()  # no change, no event
        assert stored(app) == 1

        changed = business_entity_body(
            invoicing_method="bs_payment_slip", reminder_schedule_days=[],
            bank_account={"registration_number": "1234", "account_number": "0001234567"})
        updated = await client.put("/v1/business-entity", json=changed, headers={"If-Match": '"1"'})
        assert updated.status_code == 200, updated.text
        assert updated.headers["etag"] == '"2"' and "location" not in updated.headers
        stale = await client.put("/v1/business-entity", json=business_entity_body(),
                                 headers={"If-Match": '"1"'})
        assert stale.status_code == 412 and "at version 2, not 1" in stale.json()["detail"]
        other_currency = await client.put("/v1/business-entity", json=business_entity_body("EUR"))
        assert other_currency.status_code == 409, other_currency.text
        assert "currency is DKK and cannot change" in other_currency.json()["detail"]

        assert (await client.get("/v1/business-entity")).status_code == 404  # not projected yet
        await project_published(app, to_integration, projection)
        got = await client.get("/v1/business-entity")
        assert got.content == updated.content and got.headers["etag"] == '"2"'  # GET = PUT's answer
        assert got.json()["invoicing_method"] == "bs_payment_slip"
        assert got.json()["reminder_schedule_days"] == []


async def test_M2_M4_the_time_zone_defaults_to_copenhagen_and_a_postal_address_is_optional(
        parties: Parties) -> None:
    app, db, _ = parties
    body = business_entity_body()
    del body["time_zone"], body["postal_address"]
    async with serving("invoicing", router, app, db) as client:
        answer = await client.put("/v1/business-entity", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["time_zone"] == "Europe/Copenhagen" and answer.json()["postal_address"] is None


BAD_ENTITIES: list[tuple[dict[str, Any], str, str]] = [
    ({"registration_number": "13585627"}, "body.registration_number", "modulus-11"),
    ({"bank_account": {"iban": "DK5000400440116244", "bic": "DABADKKK"}}, "body.bank_account.iban",
     "not a valid IBAN"),
    ({"bank_account": {"iban": "DK5000400440116243", "bic": "DABAZZKK"}}, "body.bank_account.bic",
     "not a valid BIC"),
    ({"bank_account": {"registration_number": "123", "account_number": "1"}},
     "body.bank_account.registration_number", "4 digits"),
    ({"bank_account": {"registration_number": "1234", "account_number": "12345678901"}},
     "body.bank_account.account_number", "1 to 10 digits"),
    ({"bank_account": {"iban": "DK5000400440116243"}}, "body.bank_account", "exactly one of the two"),
    ({"invoicing_method": "fax"}, "body.invoicing_method", "email"),
    ({"payment_message_prefix": "x" * 21}, "body.payment_message_prefix", "at most 20"),
    ({"currency": "XXX"}, "body.currency", "ISO 4217"),
    ({"time_zone": "Europe/Aarhus"}, "body.time_zone", "IANA"),
    ({"reminder_schedule_days": [14, 7]}, "body.reminder_schedule_days", "strictly increasing"),
    ({"reminder_schedule_days": [0]}, "body.reminder_schedule_days.0", "greater than or equal to 1"),
    ({"reminder_schedule_days": list(range(1, 12))}, "body.reminder_schedule_days", "at most 10"),
    ({"fik_creditor_number": "1234567"}, "body.fik_creditor_number", "8 digits"),
    ({"fik_creditor_number": "123456789"}, "body.fik_creditor_number", "at most 8"),
    ({"postal_address": {"lines": [], "postal_code": "8000", "city": "Aarhus", "country": "DK"}},
     "body.postal_address.lines", "at least 1"),
    ({"postal_address": {"lines": ["Vej 1"], "postal_code": "8000", "city": "Aarhus", "country": "XX"}},
     "body.postal_address.country", "ISO 3166-1"),
    ({"legal_name": ""}, "body.legal_name", "at least 1"),
    ({"website": "https://example.dk"}, "body.website", "Extra inputs"),
]


@pytest.mark.parametrize(("fields", "location", "message"), BAD_ENTITIES,
                         ids=[loc for _, loc, _ in BAD_ENTITIES])
async def test_M4_M5_an_invalid_business_entity_is_a_422_naming_the_field_and_nothing_is_written(
        parties: Parties, fields: dict[str, Any], location: str, message: str) -> None:
    app, db, _ = parties
    async with serving("invoicing", router, app, db) as client:
        answer = await client.put("/v1/business-entity", json=business_entity_body(**fields))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert any(e["location"] == location and message in e["message"] for e in answer.json()["errors"]), \
        answer.json()
    assert stored(app) == 0


# --- Customers (C1) ----------------------------------------------------------------------------


async def test_C1_a_customer_is_put_whole_under_the_operators_id_and_read_back(parties: Parties) -> None:
    app, db, projection = parties
    full = customer_body(
        ean="5790000435975", bank_account={"registration_number": "1234", "account_number": "1234567"},
        betalingsservice_mandate={"reference": "bs-77", "status": "active"},
        e_invoice_to_online_banking=True,
        card_agreement={"reference": "card-9", "status": "cancelled",
                        "cancelled_at": "2026-10-01T12:00:00+02:00"},
        mobilepay_agreement={"reference": "mp-3", "status": "active", "cancelled_at": None})
    async with serving("invoicing", router, app, db) as client:
        created = await client.put("/v1/customers/sub 1001", json=full)
        assert created.status_code == 201, created.text
        assert created.headers["location"] == "/v1/customers/sub%201001"
        assert created.headers["etag"] == '"1"'
        customer = created.json()
        assert customer["customer_id"] == "sub 1001" and customer["ean"] == "5790000435975"
        assert customer["card_agreement"] == {"reference": "card-9", "status": "cancelled",
                                              "cancelled_at": "2026-10-01T10:00:00Z"}  # UTC (M2)
        assert customer["registered_at"] == customer["updated_at"]

        moved = {**full, "postal_address": {"lines": ["Nørregade 2", "2. th."], "postal_code": "1165",
                                            "city": "København K", "country": "DK"}}
        updated = await client.put("/v1/customers/sub 1001", json=moved, headers={"If-Match": '"1"'})
        assert updated.status_code == 200 and updated.headers["etag"] == '"2"'
        assert updated.json()["registered_at"] == customer["registered_at"]

        await project_published(app, to_integration, projection)
        got = await client.get(created.headers["location"])
        assert got.content == updated.content and got.headers["etag"] == '"2"'
        assert (await client.get("/v1/customers/sub 1002")).status_code == 404


async def test_C1_customers_are_listed_in_the_order_they_were_registered_a_page_at_a_time(
        parties: Parties) -> None:
    app, db, projection = parties
    for customer_id in ("carl", "alice", "bob"):
        register_customer(app, customer_id=customer_id)
    register_customer(app, unit="bu-2", customer_id="dora")
    register_customer(app, customer_id="carl", email="carl@example.dk")  # changed: keeps its place
    await project_published(app, to_integration, projection)
    first = await queries.customers(db, "bu-1", Paging(2, BEGINNING))
    assert first.next_cursor is not None
    rest = await queries.customers(db, "bu-1", Paging(2, decode_cursor(first.next_cursor)))
    assert [c.customer_id for c in first.items + rest.items] == ["carl", "alice", "bob"]
    assert rest.next_cursor is None and first.items[0].email == "carl@example.dk"


@pytest.mark.parametrize(("fields", "location", "message"), [
    ({"email": "anna.example.dk"}, "body.email", "not a valid e-mail address"),
    ({"ean": "5790000435976"}, "body.ean", "GS1 check digit"),
    ({"bank_account": {"iban": "NO9386011117948", "bic": "DNBANOKK"}}, "body.bank_account.iban",
     "not a valid IBAN"),
    ({"card_agreement": {"reference": "c", "status": "cancelled"}}, "body.card_agreement",
     "cancelled_at is given exactly when"),
    ({"mobilepay_agreement": {"reference": "m", "status": "cancelled",
                              "cancelled_at": "2026-10-01T12:00:00"}},
     "body.mobilepay_agreement.cancelled_at", "timezone"),
    ({"betalingsservice_mandate": {"reference": "b", "status": "paused"}},
     "body.betalingsservice_mandate.status", "'active' or 'cancelled'"),
    ({"e_invoice_to_online_banking": "yes"}, "body.e_invoice_to_online_banking", "boolean"),
    ({"postal_address": None}, "body.postal_address", "valid dictionary"),
])
async def test_C1_an_invalid_customer_is_a_422_naming_the_field_and_nothing_is_written(
        parties: Parties, fields: dict[str, Any], location: str, message: str) -> None:
    app, db, _ = parties
    async with serving("invoicing", router, app, db) as client:
        answer = await client.put("/v1/customers/sub-1", json=customer_body(**fields))
        too_long = await client.put("/v1/customers/" + "x" * 101, json=customer_body())
    assert answer.status_code == 422, answer.text
    assert any(e["location"] == location and message in e["message"] for e in answer.json()["errors"]), \
        answer.json()
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["location"] == "path.customer_id"
    assert stored(app) == 0


async def test_R4_a_cancelled_agreement_cannot_be_made_active_again(parties: Parties) -> None:
    app, db, _ = parties
    cancelled = {"reference": "mp-1", "status": "cancelled", "cancelled_at": "2026-10-01T10:00:00Z"}
    async with serving("invoicing", router, app, db) as client:
        assert (await client.put("/v1/customers/c", json=customer_body(
            mobilepay_agreement=cancelled))).status_code == 201
        again = await client.put("/v1/customers/c", json=customer_body(
            mobilepay_agreement={"reference": "mp-1", "status": "active"}))
    assert again.status_code == 409 and "mp-1 was cancelled" in again.json()["detail"]
    assert stored(app) == 1


def test_C1_R4_every_change_of_a_customer_is_published_whole() -> None:
    """Payments and refunds keep a snapshot of each customer (R4 reads the agreement status)."""
    app = in_memory(InvoicingApplication)
    register_customer(app, customer_id="alice", mobilepay_agreement={
        "reference": "mp-1", "status": "active", "cancelled_at": None})
    register_customer(app, customer_id="alice", mobilepay_agreement={
        "reference": "mp-1", "status": "cancelled", "cancelled_at": datetime(2026, 10, 1, 10, tzinfo=UTC)})
    registered, cancelled = (e for _, e in published(app, to_integration))
    assert isinstance(registered, contracts.CustomerUpdated)
    assert isinstance(cancelled, contracts.CustomerUpdated)
    assert (registered.aggregate_version, cancelled.aggregate_version) == (1, 2)
    assert registered.actor == "api-key:test" and registered.business_unit == "bu-1"
    assert cancelled.model_dump(exclude={"event_id", "aggregate_version", "occurred_at", "correlation_id",
                                         "mobilepay_agreement"}) == registered.model_dump(
        exclude={"event_id", "aggregate_version", "occurred_at", "correlation_id", "mobilepay_agreement"})
    assert cancelled.mobilepay_agreement == contracts.Agreement(
        reference="mp-1", status="cancelled", cancelled_at=datetime(2026, 10, 1, 10, tzinfo=UTC))
    assert cancelled.postal_address.city == "Aarhus C" and cancelled.email == "alice@example.dk"


def test_M4_the_business_entity_is_published_whole_with_its_bank_account() -> None:
    """Payouts needs the entity's own account for the debtor side of payout files (B3), and
    refunds and payouts its payment-message prefix (B5)."""
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app)
    set_up_business_unit(app, bank_account={"registration_number": "1234", "account_number": "1"})
    first, second = (e for _, e in published(app, to_integration))
    assert isinstance(first, contracts.BusinessEntityUpdated)
    assert isinstance(second, contracts.BusinessEntityUpdated)
    assert first.bank_account == BankAccount(iban="DK5000400440116243", bic="DABADKKK")
    assert second.bank_account == BankAccount(registration_number="1234", account_number="1")
    assert (second.payment_message_prefix, second.currency, second.reminder_schedule_days,
            second.fik_creditor_number, second.time_zone) == (
        "Bladhuset", "DKK", [7, 14], "85236417", "Europe/Copenhagen")


# --- Subscriptions (C2) ------------------------------------------------------------------------


async def test_C2_a_subscription_needs_the_business_entity_a_known_customer_and_its_currency(
        parties: Parties) -> None:
    app, db, projection = parties
    body = {"customer_id": "alice", "product": "Bladet, quarterly",
            "price": {"amount": 39900, "currency": "DKK"}, "period": {"unit": "months", "length": 3}}
    async with serving("invoicing", router, app, db) as client:
        before_entity = await client.post("/v1/subscriptions", json=body)
        assert before_entity.status_code == 409, before_entity.text
        assert "PUT /v1/business-entity" in before_entity.json()["detail"]

        set_up_business_unit(app)
        unknown = await client.post("/v1/subscriptions", json=body)
        assert unknown.status_code == 422 and unknown.json()["detail"].startswith("customer_id: ")

        register_customer(app, customer_id="alice")
        in_euro = await client.post("/v1/subscriptions", json={
            **body, "price": {"amount": 39900, "currency": "EUR"}})
        assert in_euro.status_code == 422
        assert in_euro.json()["detail"] == ("price: 399.00 EUR is not in the business unit's "
                                            "currency DKK (rule M1)")
        before = stored(app)
        refusals: list[tuple[dict[str, Any], str]] = [
            ({"price": {"amount": 0, "currency": "DKK"}}, "body.price.amount"),
            ({"period": {"unit": "weeks", "length": 1}}, "body.period.unit"),
            ({"period": {"unit": "days", "length": 0}}, "body.period.length"),
            ({"invoicing_method": "fax"}, "body.invoicing_method"),
            ({"customer_id": ""}, "body.customer_id")]
        for bad, location in refusals:
            refused = await client.post("/v1/subscriptions", json={**body, **bad})
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["location"] == location
        assert stored(app) == before

        started = await client.post("/v1/subscriptions", json={
            **body, "invoicing_method": "bs_payment_slip", "started_on": "2026-11-01"})
        assert started.status_code == 201, started.text
        assert started.json()["invoicing_method"] == "bs_payment_slip"
        assert started.json()["period"] == {"unit": "months", "length": 3}
        assert started.json()["stopped_on"] is None and started.json()["started_on"] == "2026-11-01"
        await project_published(app, to_integration, projection)
        got = await client.get(started.headers["location"])
        assert got.content == started.content and got.headers["etag"] == '"1"'


def test_C2_one_customer_two_subscriptions_each_with_its_own_invoicing_method() -> None:
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app, invoicing_method="email")
    register_customer(app, customer_id="alice")
    paper = start_subscription(app, invoicing_method="bs_payment_slip",
                               period={"unit": "issues", "length": 12})
    inherited = start_subscription(app)
    assert (paper.invoicing_method, inherited.invoicing_method) == ("bs_payment_slip", None)
    started = [e for _, e in published(app, to_integration) if isinstance(e, contracts.SubscriptionStarted)]
    assert [(e.subscription_id, e.invoicing_method, e.period.unit) for e in started] == [
        (paper.id, "bs_payment_slip", "issues"), (inherited.id, None, "months")]
    assert started[1].price == contracts.Money(amount=14900, currency="DKK")


def test_M2_a_subscription_starts_today_in_the_business_units_time_zone() -> None:
    app = in_memory(InvoicingApplication)
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14 and UTC-11: never one date
        unit = f"bu-{zone}"
        set_up_business_unit(app, unit=unit, time_zone=zone)
        register_customer(app, unit=unit)
        with operator(unit):
            subscription = app.start_subscription(
                business_unit=unit, customer_id="alice", product="Bladet", price=Money(100, "DKK"),
                period={"unit": "days", "length": 30}, invoicing_method=None)
        assert subscription.started_on == businessdates.today(ZoneInfo(zone))


# --- Business units see only their own (M3) ----------------------------------------------------


async def test_M3_another_units_entity_customers_and_subscriptions_are_not_found(parties: Parties) -> None:
    app, db, projection = parties
    set_up_business_unit(app, unit="bu-1")
    register_customer(app, unit="bu-1", customer_id="alice")
    subscription = start_subscription(app, unit="bu-1")
    await project_published(app, to_integration, projection)
    async with serving("invoicing", router, app, db, business_unit="bu-2") as other:
        assert (await other.get("/v1/business-entity")).status_code == 404
        assert (await other.get("/v1/customers/alice")).status_code == 404
        assert (await other.get("/v1/customers")).json() == {"items": [], "next_cursor": None}
        assert (await other.get(f"/v1/subscriptions/{subscription.id}")).status_code == 404
        assert (await other.get("/v1/subscriptions?customer_id=alice")).json()["items"] == []
        # bu-2 sets itself up in EUR; bu-1's customer is unknown to it.
        assert (await other.put("/v1/business-entity", json=business_entity_body("EUR"))).status_code == 201
        refused = await other.post("/v1/subscriptions", json={
            "customer_id": "alice", "product": "x", "price": {"amount": 100, "currency": "EUR"},
            "period": {"unit": "days", "length": 7}})
        assert refused.status_code == 422 and "customer_id" in refused.json()["detail"]
        # The same customer id in bu-2 is another customer.
        same_id = await other.put("/v1/customers/alice", json=customer_body(name="Other Alice"))
        assert same_id.status_code == 201
    with operator("bu-2"), pytest.raises(NotFound):
        app.get_owned(subscription.id, "bu-2", type(subscription))
    await project_published(app, to_integration, projection)
    ours = await queries.customer(db, "bu-1", "alice")
    theirs = await queries.customer(db, "bu-2", "alice")
    assert ours is not None and theirs is not None
    assert (ours.name, theirs.name) == ("Customer alice", "Other Alice")
    entity = await queries.business_entity(db, "bu-1")
    assert entity is not None and entity.currency == "DKK"


async def test_C2_subscriptions_are_listed_by_start_of_one_customer_or_all(parties: Parties) -> None:
    app, db, projection = parties
    set_up_business_unit(app)
    for customer_id in ("alice", "bob"):
        register_customer(app, customer_id=customer_id)
    started = [start_subscription(app, customer_id=c) for c in ("alice", "bob", "alice")]
    await project_published(app, to_integration, projection)
    everyone = await queries.subscriptions(db, "bu-1", Paging(50, BEGINNING), customer_id=None)
    alices = await queries.subscriptions(db, "bu-1", Paging(1, BEGINNING), customer_id="alice")
    assert [s.id for s in everyone.items] == [s.id for s in started]
    assert [s.id for s in alices.items] == [started[0].id] and alices.next_cursor is not None
    rest = await queries.subscriptions(db, "bu-1", Paging(1, decode_cursor(alices.next_cursor)),
                                       customer_id="alice")
    assert [s.id for s in rest.items] == [started[2].id] and rest.next_cursor is None


async def test_E2_the_read_model_keeps_the_newest_version_whatever_the_order_of_delivery(
        parties: Parties) -> None:
    """A snapshot event read late (a rebuild, a republished event) never rolls a row back."""
    app, db, projection = parties
    register_customer(app, customer_id="alice", name="First")
    register_customer(app, customer_id="alice", name="Second")
    set_up_business_unit(app)
    register_customer(app, customer_id="alice", name="Second", email="second@example.dk")
    events = [e for _, e in published(app, to_integration)]
    for event in reversed(events):
        await deliver(projection, event)
    customer = await queries.customer(db, "bu-1", "alice")
    assert customer is not None and (customer.name, customer.email, customer.version) == (
        "Second", "second@example.dk", 3)


def test_application_errors_name_what_is_missing() -> None:
    app = in_memory(InvoicingApplication)
    with operator(), pytest.raises(Conflict, match="no business entity yet"):
        app.business_entity(business_unit="bu-1")
    with operator(), pytest.raises(DomainRuleViolated, match="customer_id: there is no customer 'bob'"):
        app.customer(business_unit="bu-1", customer_id="bob")


async def test_a_stopped_subscription_shows_its_stop_date(parties: Parties) -> None:
    """SubscriptionStopped (published by the stop, rule C4) sets stopped_on in the read model."""
    app, db, projection = parties
    set_up_business_unit(app)
    register_customer(app)
    subscription = start_subscription(app)
    await project_published(app, to_integration, projection)
    started = (await queries.subscription(db, "bu-1", subscription.id))
    assert started is not None
    stop = contracts.SubscriptionStopped(
        event_id=uuid4(), business_unit="bu-1", aggregate_id=subscription.id, aggregate_version=2,
        occurred_at=datetime.now(UTC), actor="test", correlation_id="c", subscription_id=subscription.id,
        customer_id="alice", stopped_on=date(2026, 12, 15))
    await deliver(projection, stop)
    stopped = await queries.subscription(db, "bu-1", subscription.id)
    assert stopped is not None and (stopped.stopped_on, stopped.version) == (date(2026, 12, 15), 2)

