"""The middle layer of tests: applications, policies and projections in this process.

No PostgreSQL, no Kafka: an application on the `eventsourcing` library's in-memory recorder,
a projection on a SQLite file. These tests prove a rule through the same application methods,
policies and SQL the services run, and are named after the rule (`test_P3_...`); the end-to-end
tests beside them prove the same paths over real PostgreSQL and Kafka.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import httpx
from eventsourcing.persistence import StoredEvent
from fastapi import APIRouter

from saldo_events.envelope import IntegrationEvent
from saldo_platform.bus import Message
from saldo_platform.context import Context, acting
from saldo_platform.eventstore import EventStoreApplication
from saldo_platform.http.app import create_api
from saldo_platform.http.auth import ApiKeys
from saldo_platform.http.idempotency import IdempotencyStore
from saldo_platform.policy import Policy
from saldo_platform.projection import Projection
from saldo_platform.relay import ToIntegration
from saldo_platform.sql import Database, open_database

App = TypeVar("App", bound=EventStoreApplication)
Event = TypeVar("Event", bound=IntegrationEvent)

_offsets = itertools.count()


def in_memory(application: type[App]) -> App:
    return application("memory:")


def operator(business_unit: str = "bu-1") -> Any:
    """Act as an operator of `business_unit` (the context an HTTP command runs in)."""
    return acting(Context(business_unit=business_unit, actor="api-key:test", correlation_id=str(uuid4())))


def announced(cls: type[Event], *, business_unit: str = "bu-1", aggregate_id: UUID | None = None,
              **fields: Any) -> Event:
    """An integration event as another service would publish it."""
    return cls(event_id=uuid4(), business_unit=business_unit, aggregate_id=aggregate_id or uuid4(),
               aggregate_version=1, occurred_at=datetime.now(UTC), actor="test",
               correlation_id=str(uuid4()), **fields)


def message(topic: str = "saldo.test.v1", partition: int = 0, offset: int | None = None) -> Message:
    return Message(topic, partition, next(_offsets) if offset is None else offset, None, b"", [])


def stored_v1(aggregate: str, aggregate_id: UUID, version: int, name: str, **state: Any) -> StoredEvent:
    """An event as a build before class_version 2 stored it (for upcaster tests): `aggregate`
    is its topic ("saldo_payouts.domain:Payout"), `state` its JSON fields as then written."""
    stamp = {"_type_": "datetime_iso", "_data_": f"2026-11-0{version}T10:00:00+00:00"}
    return StoredEvent(originator_id=aggregate_id, originator_version=version,
                       topic=f"{aggregate}.{name}",
                       state=json.dumps({"timestamp": stamp, "meta": {"actor": "api-key:old"},
                                         **state}).encode())


def published(app: EventStoreApplication, to_integration: ToIntegration,
              after: int = 0) -> list[tuple[int, IntegrationEvent]]:
    """What the relay would publish of the events stored after notification `after`, with
    each one's notification id."""
    found = []
    while notifications := app.notification_log.select(start=after + 1, limit=10):
        for notification in notifications:
            event = to_integration(app.mapper.to_domain_event(notification))
            if event is not None:
                found.append((notification.id, event))
        after = notifications[-1].id
    return found


async def project_published(app: EventStoreApplication, to_integration: ToIntegration,
                            projection: Projection, after: int = 0) -> int:
    """Deliver to `projection` what the relay would publish of the events stored after
    notification `after`, as the consumer would; returns the last notification id delivered."""
    events = published(app, to_integration, after)
    for _, event in events:
        await deliver(projection, event)
    return events[-1][0] if events else after


async def deliver(handler: Policy | Projection, event: IntegrationEvent,
                  at: Message | None = None) -> Message:
    """Hand `event` to a policy or projection as the consumer runner would; returns the message."""
    at = at or message()
    await handler.apply(event, at)
    return at


@asynccontextmanager
async def serving(service: str, router: APIRouter, application: EventStoreApplication, db: Database,
                  business_unit: str = "bu-1") -> AsyncIterator[httpx.AsyncClient]:
    """The service's real HTTP app (auth, idempotency, problems) over ASGI, on `db`, with a
    client holding an operator key of `business_unit`; every POST gets a fresh Idempotency-Key."""
    keys = ApiKeys(db)
    await keys.setup()
    await IdempotencyStore(db).setup()
    api = create_api(service, router, {"application": application, "db": db, "api_keys": keys}, db)
    token = await keys.create(business_unit, ["operator"], "in-process test")

    async def new_key(request: httpx.Request) -> None:
        if request.method == "POST" and "idempotency-key" not in request.headers:
            request.headers["Idempotency-Key"] = str(uuid4())

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=f"http://{service}",
                                 headers={"Authorization": f"Bearer {token}"},
                                 event_hooks={"request": [new_key]}) as client:
        yield client


@asynccontextmanager
async def read_models(tmp_path: Path) -> AsyncIterator[Database]:
    db = open_database(f"sqlite:{tmp_path / 'read.sqlite'}")
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


# --- Invoicing's parties: a business unit set up, customers registered (rules M4, C1, C2) ---------


def set_up_business_unit(app: Any, unit: str = "bu-1", currency: str = "DKK", **overrides: Any) -> Any:
    """The unit's business entity, as a valid PUT /v1/business-entity would set it up (rule M4);
    `overrides` replace fields of `saldo_invoicing.domain.parties.EntityDetails`."""
    from saldo_invoicing.domain.parties import EntityDetails

    details: dict[str, Any] = {
        "legal_name": "Bladhuset A/S", "registration_number": "13585628", "postal_address": {
            "lines": ["Bladvej 1"], "postal_code": "8000", "city": "Aarhus C", "country": "DK"},
        "bank_account": {"iban": "DK5000400440116243", "bic": "DABADKKK"},
        "invoicing_method": "email", "payment_message_prefix": "Bladhuset", "currency": currency,
        "time_zone": "Europe/Copenhagen", "reminder_schedule_days": [7, 14],
        "fik_creditor_number": "85236417", **overrides}
    with operator(unit):
        entity, _ = app.put_business_entity(business_unit=unit, details=EntityDetails(**details))
    return entity


def register_customer(app: Any, unit: str = "bu-1", customer_id: str = "alice", **overrides: Any) -> Any:
    """A customer as a valid PUT /v1/customers/{customer_id} would register it (rule C1);
    `overrides` replace fields of `saldo_invoicing.domain.parties.CustomerDetails`."""
    from saldo_invoicing.domain.parties import CustomerDetails

    details: dict[str, Any] = {
        "name": f"Customer {customer_id}", "email": "alice@example.dk", "postal_address": {
            "lines": ["Søndergade 1"], "postal_code": "8000", "city": "Aarhus C", "country": "DK"},
        "ean": None, "bank_account": None, "betalingsservice_mandate": None,
        "e_invoice_to_online_banking": False, "card_agreement": None, "mobilepay_agreement": None,
        **overrides}
    with operator(unit):
        customer, _ = app.put_customer(business_unit=unit, customer_id=customer_id,
                                       details=CustomerDetails(**details))
    return customer


def start_subscription(app: Any, unit: str = "bu-1", customer_id: str = "alice", **overrides: Any) -> Any:
    """A monthly subscription of 149.00 in the unit's currency, with no invoicing method of its
    own (rule C2); the unit must be set up and the customer registered. `overrides` replace
    keyword arguments of `InvoicingApplication.start_subscription` (price is Money)."""
    from datetime import date

    from saldo_kernel.money import Money

    arguments: dict[str, Any] = {
        "product": "Bladet, monthly", "period": {"unit": "months", "length": 1},
        "invoicing_method": None, "started_on": date(2026, 11, 1), **overrides}
    with operator(unit):
        if "price" not in arguments:
            arguments["price"] = Money(14900, app.business_entity(business_unit=unit).currency)
        return app.start_subscription(business_unit=unit, customer_id=customer_id, **arguments)
