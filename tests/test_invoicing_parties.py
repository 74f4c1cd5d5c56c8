"""The business entity, customers and subscriptions end to end (rules M4, M5, C1, C2, M3):
the invoicing service as its own process on real PostgreSQL and Kafka, driven over HTTP.

One invoicing process serves the whole module (the other services play no part here); each test
works in business units of its own, so the tests do not depend on their order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from saldo_events import invoicing as contracts
from saldo_events.codec import decode, header
from saldo_events.envelope import IntegrationEvent
from saldo_invoicing.domain.parties import BusinessEntity, Customer
from saldo_platform.cli import open_api_keys
from saldo_platform.settings import Settings
from tests.infrastructure import Servers
from tests.kafka_tools import read_topic
from tests.scenarios import (
    business_entity_body,
    customer_body,
    put,
    register_customer,
    set_up_business_unit,
    start_subscription,
)
from tests.support import Saldo, dead_letters, distributed_env, eventually, settled, start_distributed


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
    running = await start_distributed(env, tmp_path_factory.mktemp("parties"), ("invoicing",))
    keys = await open_api_keys(Settings.from_env(env))
    try:
        for unit in ("bu_c", "bu_d"):
            running.keys[unit] = await keys.create(unit, ["operator"], f"operator of {unit}")
        yield running
    finally:
        running.stop()
        await running.client.aclose()
        await keys.close()


async def read_back(saldo: Saldo, path: str, version: int, unit: str = "bu_a") -> dict[str, Any]:
    """The resource once the read model has caught up with `version`."""

    async def at_version() -> dict[str, Any] | None:
        found = await saldo.found("invoicing", path, unit)
        return found if found and found["version"] == version else None

    return await eventually(at_version, what=f"{path} at version {version}")


async def published(saldo: Saldo, unit: str) -> list[tuple[str, IntegrationEvent]]:
    """(ce_type, event) of everything invoicing published to Kafka for `unit`, in offset order."""
    settings = Settings.from_env(saldo.env)
    assert settings.kafka_bootstrap
    messages = await read_topic(settings.kafka_bootstrap, settings.topic("invoicing"))
    events = [(header(m.headers, "ce_type") or "", decode(m.headers, m.value))
              for m in sorted(messages, key=lambda m: (m.partition, m.offset))]
    return [(t, e) for t, e in events if e.business_unit == unit]


async def test_M4_C1_C2_set_up_register_subscribe_read_back_and_published_whole(saldo: Saldo) -> None:
    entity = await put(saldo, "invoicing", "/v1/business-entity", business_entity_body())
    assert entity.status_code == 201, entity.text
    assert entity.headers["location"] == "/invoicing/v1/business-entity"
    assert (await read_back(saldo, "/v1/business-entity", 1)) == entity.json()  # GET = PUT answer

    agreements = {"betalingsservice_mandate": {"reference": "bs-1", "status": "active"},
                  "mobilepay_agreement": {"reference": "mp-1", "status": "active"}}
    customer = await put(saldo, "invoicing", "/v1/customers/sub-1001", customer_body(**agreements))
    assert customer.status_code == 201 and customer.headers["etag"] == '"1"', customer.text
    cancelled = {**agreements, "mobilepay_agreement": {
        "reference": "mp-1", "status": "cancelled", "cancelled_at": "2026-11-20T09:30:00+01:00"}}
    changed = await put(saldo, "invoicing", "/v1/customers/sub-1001", customer_body(**cancelled),
                        **{"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"', changed.text
    stale = await put(saldo, "invoicing", "/v1/customers/sub-1001", customer_body(),
                      **{"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert (await read_back(saldo, "/v1/customers/sub-1001", 2)) == changed.json()

    subscription = await start_subscription(saldo, customer_id="sub-1001",
                                            invoicing_method="bs_payment_slip",
                                            period={"unit": "issues", "length": 10})
    assert subscription["invoicing_method"] == "bs_payment_slip"
    assert (await read_back(saldo, f"/v1/subscriptions/{subscription['id']}", 1)) == subscription
    listed = (await saldo.get("invoicing", "/v1/subscriptions?customer_id=sub-1001")).json()
    assert listed == {"items": [subscription], "next_cursor": None}

    async def all_published() -> list[tuple[str, IntegrationEvent]] | None:
        events = await published(saldo, "bu_a")
        return events if len(events) >= 4 else None

    events = await eventually(all_published, what="four events on the invoicing topic")
    types = [t for t, _ in events]
    assert sorted(types) == sorted(["dk.saldo.invoicing.BusinessEntityUpdated",
                                    "dk.saldo.invoicing.CustomerUpdated",
                                    "dk.saldo.invoicing.CustomerUpdated",
                                    "dk.saldo.invoicing.SubscriptionStarted"])
    entity_event = next(e for _, e in events if isinstance(e, contracts.BusinessEntityUpdated))
    assert entity_event.aggregate_id == BusinessEntity.create_id("bu_a")
    assert entity_event.bank_account.iban == "DK5000400440116243"  # payouts' debtor account (B3)
    assert entity_event.payment_message_prefix == "Bladhuset"  # refunds and payouts (B5)
    customer_events = [e for _, e in events if isinstance(e, contracts.CustomerUpdated)]
    assert [e.aggregate_version for e in customer_events] == [1, 2]
    assert {e.aggregate_id for e in customer_events} == {Customer.create_id("bu_a", "sub-1001")}
    latest = customer_events[-1]  # the whole customer, not a diff (rule R4 reads the agreement)
    assert latest.mobilepay_agreement is not None and latest.mobilepay_agreement.status == "cancelled"
    assert latest.betalingsservice_mandate is not None and latest.betalingsservice_mandate.status == "active"
    assert latest.email == "anna@example.dk" and latest.postal_address.country == "DK"
    await settled(saldo)
    assert await dead_letters(saldo) == []  # the read model took every one of them


async def test_M4_C1_C2_bad_input_is_a_4xx_problem_naming_the_field_and_nothing_is_written(
        saldo: Saldo) -> None:
    unit = "bu_c"
    subscription = {"customer_id": "c-1", "product": "Bladet",
                    "price": {"amount": 9900, "currency": "DKK"}, "period": {"unit": "days", "length": 30}}
    early = await saldo.post("invoicing", "/v1/subscriptions", subscription, business_unit=unit)
    assert early.status_code == 409 and "PUT /v1/business-entity" in early.json()["detail"], early.text

    refusals = [
        ("/v1/business-entity", business_entity_body(
            bank_account={"iban": "DK5000400440116244", "bic": "DABADKKK"}), "body.bank_account.iban"),
        ("/v1/business-entity", business_entity_body(registration_number="12345678"),
         "body.registration_number"),
        ("/v1/customers/c-1", customer_body(ean="5790000435976"), "body.ean"),
        ("/v1/customers/c-1", customer_body(
            bank_account={"registration_number": "12", "account_number": "1"}),
         "body.bank_account.registration_number"),
        ("/v1/customers/c-1", customer_body(email="not-an-address"), "body.email"),
    ]
    for path, body, location in refusals:
        answer = await put(saldo, "invoicing", path, body, unit)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert location in [e["location"] for e in answer.json()["errors"]], answer.json()

    await set_up_business_unit(saldo, unit)
    unknown = await saldo.post("invoicing", "/v1/subscriptions", subscription, business_unit=unit)
    assert unknown.status_code == 422 and "customer_id" in unknown.json()["detail"], unknown.text
    await register_customer(saldo, unit, "c-1")
    euro = await saldo.post("invoicing", "/v1/subscriptions",
                            {**subscription, "price": {"amount": 9900, "currency": "EUR"}},
                            business_unit=unit)
    assert euro.status_code == 422 and "price" in euro.json()["detail"], euro.text

    async def both_published() -> list[tuple[str, IntegrationEvent]] | None:
        events = await published(saldo, unit)
        return events if len(events) >= 2 else None

    # What was written: the entity and the customer, each once; nothing of the refusals.
    events = await eventually(both_published, what="the entity and customer of bu_c published")
    assert [t.rsplit(".", 1)[1] for t, _ in events] in (
        ["BusinessEntityUpdated", "CustomerUpdated"], ["CustomerUpdated", "BusinessEntityUpdated"])


async def test_M3_another_units_entity_customers_and_subscriptions_are_not_found(saldo: Saldo) -> None:
    await set_up_business_unit(saldo, "bu_d")
    await register_customer(saldo, "bu_d", "shared-id", name="Customer of A")
    subscription = await start_subscription(saldo, "bu_d", "shared-id")
    await read_back(saldo, f"/v1/subscriptions/{subscription['id']}", 1, unit="bu_d")

    assert (await saldo.get("invoicing", "/v1/business-entity", "bu_b")).status_code == 404
    assert (await saldo.get("invoicing", "/v1/customers/shared-id", "bu_b")).status_code == 404
    elsewhere = await saldo.get("invoicing", f"/v1/subscriptions/{subscription['id']}", "bu_b")
    assert elsewhere.status_code == 404  # read back in its own unit above: there, not here
    assert (await saldo.get("invoicing", "/v1/customers", "bu_b")).json()["items"] == []
    await set_up_business_unit(saldo, "bu_b")
    foreign = await saldo.post("invoicing", "/v1/subscriptions", {
        "customer_id": "shared-id", "product": "x", "price": {"amount": 100, "currency": "DKK"},
        "period": {"unit": "months", "length": 1}}, business_unit="bu_b")
    assert foreign.status_code == 422, foreign.text  # bu_d's customer is unknown to bu_b

    await register_customer(saldo, "bu_b", "shared-id", name="Customer of B")  # the same id: another one
    theirs = await read_back(saldo, "/v1/customers/shared-id", 1, unit="bu_b")
    ours = await read_back(saldo, "/v1/customers/shared-id", 1, unit="bu_d")
    assert (ours["name"], theirs["name"]) == ("Customer of A", "Customer of B")
