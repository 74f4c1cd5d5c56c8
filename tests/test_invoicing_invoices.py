"""Invoices end to end (rules C3, C4, I1, I2, I3, M4): invoicing, payments and refunds as their
own processes on real PostgreSQL and Kafka, driven over HTTP.

One service set serves the whole module; each test works in business units of its own, so the
tests do not depend on their order. What a rule expects is computed here independently of the
product's code (the Luhn digit, the prorated credit), not imported from it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from saldo_events import invoicing as contracts
from saldo_events.codec import decode, header
from saldo_events.envelope import IntegrationEvent
from saldo_platform.cli import open_api_keys
from saldo_platform.http.auth import ApiKeys
from saldo_platform.settings import Settings
from tests.infrastructure import Servers
from tests.kafka_tools import read_topic
from tests.scenarios import register_customer, set_up_business_unit, start_subscription
from tests.support import (
    Process,
    Saldo,
    dead_letters,
    distributed_env,
    eventually,
    settled,
    start_distributed,
    wait_healthy,
)

CREDITOR = "85236417"  # the business entity's FIK creditor number (tests/scenarios.py)
BANK = {"registration_number": "1234", "account_number": "0001234567"}
MANDATE = {"reference": "bs-1", "status": "active"}
CARD = {"reference": "card-1", "status": "active"}


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
    running = await start_distributed(env, tmp_path_factory.mktemp("invoices"),
                                      ("invoicing", "payments", "refunds"))
    keys = await open_api_keys(Settings.from_env(env))
    running.keys_store = keys  # type: ignore[attr-defined]  # new_unit makes keys with it
    try:
        yield running
    finally:
        running.stop()
        await running.client.aclose()
        await keys.close()


async def new_unit(saldo: Saldo, *, entity: bool = True, **overrides: Any) -> str:
    """A business unit of this test alone, with an operator key; its entity set up unless not."""
    unit = f"bu-{uuid.uuid4().hex[:8]}"
    keys: ApiKeys = saldo.keys_store  # type: ignore[attr-defined]
    saldo.keys[unit] = await keys.create(unit, ["operator"], f"operator of {unit}")
    if entity:
        await set_up_business_unit(saldo, unit, **overrides)
    return unit


def today() -> date:
    """The business units' business date (they all keep Europe/Copenhagen, rule M2)."""
    return datetime.now(ZoneInfo("Europe/Copenhagen")).date()


async def issue(saldo: Saldo, unit: str, customer: str, *amounts: int,
                due_date: date | None = None) -> dict[str, Any]:
    response = await saldo.post("invoicing", "/v1/invoices", {
        "customer_id": customer, "currency": "DKK",
        "due_date": (due_date or today() + timedelta(days=30)).isoformat(),
        "lines": [{"description": f"line {n}", "amount": a} for n, a in enumerate(amounts, 1)],
    }, business_unit=unit)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def invoice_period(saldo: Saldo, unit: str, subscription_id: str) -> dict[str, Any]:
    response = await saldo.post("invoicing", "/v1/invoices", {
        "subscription_id": subscription_id, "due_date": (today() + timedelta(days=14)).isoformat()},
        business_unit=unit)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def invoice_where(saldo: Saldo, unit: str, invoice_id: str, **expected: Any) -> dict[str, Any]:
    """GET the invoice once the read model shows `expected`."""

    async def shown() -> dict[str, Any] | None:
        found = await saldo.found("invoicing", f"/v1/invoices/{invoice_id}", unit)
        return found if found and all(found[k] == v for k, v in expected.items()) else None

    return await eventually(shown, what=f"invoice {invoice_id} with {expected}")


async def pay(saldo: Saldo, unit: str, customer: str, allocations: dict[str, int],
              amount: int | None = None) -> dict[str, Any]:
    """A card payment on POST /v1/payments, placed on the invoices at once (rule P2); retried
    while payments has not yet heard of an invoice (InvoiceIssued over Kafka)."""
    body = {"customer_id": customer, "method": "card",
            "amount": amount if amount is not None else sum(allocations.values()), "currency": "DKK",
            "received_at": "2026-11-20T10:00:00Z", "provider_reference": f"qp-{uuid.uuid4().hex[:6]}",
            "allocations": [{"invoice_id": i, "amount": a} for i, a in allocations.items()]}
    key = str(uuid.uuid4())  # one payment, however often it is retried

    async def accepted() -> httpx.Response | None:
        response = await saldo.post("payments", "/v1/payments", body, business_unit=unit, key=key)
        return response if response.status_code != 404 else None

    response = await eventually(accepted, what="payments to accept the allocations")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def published(saldo: Saldo, unit: str) -> list[IntegrationEvent]:
    """Everything invoicing published to Kafka for `unit`, in offset order."""
    settings = Settings.from_env(saldo.env)
    assert settings.kafka_bootstrap
    messages = await read_topic(settings.kafka_bootstrap, settings.topic("invoicing"))
    events = [decode(m.headers, m.value) for m in sorted(messages, key=lambda m: (m.partition, m.offset))
              if header(m.headers, "ce_type")]
    return [e for e in events if e.business_unit == unit]


async def stored_events(saldo: Saldo) -> int:
    """How many events the invoicing event store holds: a refused command adds none (not even
    the private InvoiceNumbers events, which are never published)."""
    conn = await asyncpg.connect(Settings.from_env(saldo.env).service_database("invoicing"))
    try:
        return int(await conn.fetchval('SELECT count(*) FROM "invoicing_events"'))
    finally:
        await conn.close()


def refused(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """A problem+json of `status` whose detail (or field locations) names each of `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem: dict[str, Any] = response.json()
    said = problem["detail"] + " " + " ".join(e["location"] for e in problem.get("errors") or [])
    for word in words:
        assert word in said, f"{word!r} not in {problem}"
    return problem


def luhn_valid(digits: str) -> bool:
    """Modulus 10 (Luhn), written out here rather than taken from the product: from the right,
    every second digit doubled (its digits summed), the whole a multiple of 10."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


# --- C3: the channel, resolved and recorded ----------------------------------------------------------


async def test_C3_the_invoice_records_its_resolved_channel_and_why_and_publishes_them(saldo: Saldo) -> None:
    """Rule C3 through HTTP: an EAN customer's invoice is an e-invoice whatever the methods say;
    a subscription's own method beats the unit's (one customer, two ways); bs_payment_slip with an
    active Betalingsservice mandate is an automatic withdrawal; email with an active card
    agreement is a card charge. The POST answer and the GET record the channel and its reason,
    and InvoiceIssued on Kafka carries both."""
    unit = await new_unit(saldo, invoicing_method="email")
    await register_customer(saldo, unit, "ean", ean="5790000435975")
    await register_customer(saldo, unit, "mandate", betalingsservice_mandate=MANDATE)
    await register_customer(saldo, unit, "card", card_agreement=CARD)
    await register_customer(saldo, unit, "plain")
    own_slip = await start_subscription(saldo, unit, "plain", invoicing_method="print_your_own_slip",
                                        started_on="2026-11-01")
    withdrawal = await start_subscription(saldo, unit, "mandate", invoicing_method="bs_payment_slip",
                                          started_on="2026-11-01")
    ean_slip = await start_subscription(saldo, unit, "ean", invoicing_method="bs_payment_slip",
                                        started_on="2026-11-01")

    answers = {
        "ean lines": await issue(saldo, unit, "ean", 10000),
        "ean subscription": await invoice_period(saldo, unit, ean_slip["id"]),
        "plain lines": await issue(saldo, unit, "plain", 10000),
        "plain subscription": await invoice_period(saldo, unit, own_slip["id"]),
        "mandate subscription": await invoice_period(saldo, unit, withdrawal["id"]),
        "mandate lines": await issue(saldo, unit, "mandate", 10000),
        "card lines": await issue(saldo, unit, "card", 10000),
    }
    channels = {what: a["channel"] for what, a in answers.items()}
    assert channels == {
        "ean lines": "e_invoice", "ean subscription": "e_invoice",  # EAN overrides every method
        "plain lines": "email", "plain subscription": "print_your_own_slip",  # own beats unit's
        "mandate subscription": "automatic_withdrawal", "mandate lines": "email",
        "card lines": "card_charge",
    }
    reasons = {what: a["channel_reason"] for what, a in answers.items()}
    assert "EAN 5790000435975" in reasons["ean subscription"]
    assert "subscription's own method print_your_own_slip" in reasons["plain subscription"]
    assert "business unit's method email" in reasons["plain lines"]
    assert "Betalingsservice mandate" in reasons["mandate subscription"]
    assert "card agreement" in reasons["card lines"]
    assert answers["mandate subscription"]["subscription_id"] == withdrawal["id"]

    for answer in answers.values():  # the GET answers what the POST answered
        assert (await invoice_where(saldo, unit, answer["id"], version=answer["version"])) == answer

    async def all_issued() -> list[contracts.InvoiceIssued] | None:
        events = [e for e in await published(saldo, unit) if isinstance(e, contracts.InvoiceIssued)]
        return events if len(events) == len(answers) else None

    issued = {str(e.invoice_id): e for e in await eventually(all_issued, what="InvoiceIssued on Kafka")}
    for answer in answers.values():
        event = issued[answer["id"]]
        assert (event.channel, event.channel_reason, event.payment_reference) == (
            answer["channel"], answer["channel_reason"], answer["payment_reference"])


# --- I1: numbers and FIK references -----------------------------------------------------------------


async def test_I1_numbers_are_gap_free_per_unit_and_each_carries_a_valid_unique_fik_reference(
        saldo: Saldo) -> None:
    """Rule I1: invoices issued eight at a time are numbered 1..n in each business unit without a
    gap; each payment reference is "+71<15 digits>+<creditor number>", its 15 digits the number
    zero-padded to 14 and a modulus-10 (Luhn) check digit, unique in the unit."""
    units = [await new_unit(saldo), await new_unit(saldo, fik_creditor_number="12345678")]
    for unit in units:
        await register_customer(saldo, unit, "c")
    answers = await asyncio.gather(*(issue(saldo, unit, "c", 100 + n)
                                     for n in range(12) for unit in units))
    for unit, creditor in zip(units, (CREDITOR, "12345678"), strict=True):
        mine = [a for a in answers if a["payment_reference"].endswith(f"+{creditor}")]
        assert sorted(a["number"] for a in mine) == list(range(1, 13))  # no gap, none twice
        assert len({a["payment_reference"] for a in mine}) == 12
        for answer in mine:
            match = re.fullmatch(r"\+71([0-9]{15})\+([0-9]{8})", answer["payment_reference"])
            assert match, answer["payment_reference"]
            payment_id, creditor_number = match.groups()
            assert payment_id[:14] == f"{answer['number']:014d}" and luhn_valid(payment_id)
            assert creditor_number == creditor

        async def all_listed(unit: str = unit) -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (
                await saldo.get("invoicing", "/v1/invoices?limit=100", unit)).json()["items"]
            return items if len(items) >= 12 else None

        listed = await eventually(all_listed, what="the unit's invoices listed")
        assert {i["id"] for i in listed} == {a["id"] for a in mine}  # none of the other unit's (M3)


# --- I2: status follows payments -----------------------------------------------------------------


async def test_I2_status_follows_payments_allocations_and_credit_notes_and_filters_by_status_and_overdue(
        saldo: Saldo) -> None:
    """Rule I2: an invoice is open, partially_paid once a payment's allocation covers part of it,
    paid once allocations cover it all, credited once credit notes cover it all; overdue is
    derived from the due date (unsettled and past due). ?status= and ?overdue= filter on them."""
    unit = await new_unit(saldo)
    await register_customer(saldo, unit, "c")
    past = today() - timedelta(days=10)
    paid = await issue(saldo, unit, "c", 6000, 4000)
    part = await issue(saldo, unit, "c", 10000, due_date=past)
    credited = await issue(saldo, unit, "c", 2500)
    overdue = await issue(saldo, unit, "c", 7000, due_date=past)
    fresh = await issue(saldo, unit, "c", 3000)
    assert (paid["status"], overdue["status"], overdue["overdue"]) == ("open", "open", True)

    await pay(saldo, unit, "c", {paid["id"]: 4000, part["id"]: 2500})
    shown = await invoice_where(saldo, unit, paid["id"], paid=4000)
    assert (shown["status"], shown["overdue"]) == ("partially_paid", False)
    shown = await invoice_where(saldo, unit, part["id"], paid=2500)
    assert (shown["status"], shown["overdue"]) == ("partially_paid", True)  # still owed, past due
    await pay(saldo, unit, "c", {paid["id"]: 6000})
    shown = await invoice_where(saldo, unit, paid["id"], paid=10000)
    assert shown["status"] == "paid"
    note = await saldo.post("invoicing", f"/v1/invoices/{credited['id']}/credit-notes",
                            {"amount": 2500, "reason": "cancelled"}, business_unit=unit)
    assert note.status_code == 201, note.text
    assert (await invoice_where(saldo, unit, credited["id"], credited=2500))["status"] == "credited"

    async def ids(query: str) -> list[str]:
        response = await saldo.get("invoicing", f"/v1/invoices?{query}", unit)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert await ids("status=open") == [overdue["id"], fresh["id"]]
    assert await ids("status=partially_paid") == [part["id"]]
    assert await ids("status=paid") == [paid["id"]]
    assert await ids("status=credited") == [credited["id"]]
    assert await ids("overdue=true") == [part["id"], overdue["id"]]
    assert await ids("overdue=false") == [paid["id"], credited["id"], fresh["id"]]
    assert await ids("status=open&overdue=true") == [overdue["id"]]
    refused(await saldo.get("invoicing", "/v1/invoices?status=overdue", unit), 422, "status")


# --- C4: a subscription stopped mid-period ---------------------------------------------------------


def prorated(total: int, unused: int, of: int) -> int:
    """total × unused ÷ of, rounded half up: the rule's arithmetic, written out independently."""
    whole, rest = divmod(total * unused, of)
    return whole + (1 if 2 * rest >= of else 0)


async def test_C4_a_time_based_subscription_stopped_mid_period_credits_the_unused_days_for_a_refund(
        saldo: Saldo) -> None:
    """Rule C4 end to end: November invoiced (149.00), paid by card, stopped on 11 November: 20 of
    the period's 30 days are unused, so a credit note of 149.00 × 20/30 = 99.33 (rounded half up)
    is issued on that invoice; the invoice stays settled (I3); payments releases the 99.33, which
    the payment shows unallocated, and refunds shows it refundable."""
    unit = await new_unit(saldo)
    await register_customer(saldo, unit, "c")
    subscription = await start_subscription(saldo, unit, "c", started_on="2026-11-01")
    invoice = await invoice_period(saldo, unit, subscription["id"])
    assert invoice["total"] == {"amount": 14900, "currency": "DKK"}
    payment = await pay(saldo, unit, "c", {invoice["id"]: 14900})
    await invoice_where(saldo, unit, invoice["id"], status="paid")

    expected = prorated(14900, (date(2026, 12, 1) - date(2026, 11, 11)).days, 30)
    assert expected == 9933
    stopped = await saldo.post("invoicing", f"/v1/subscriptions/{subscription['id']}/stop",
                               {"stop_date": "2026-11-11", "reason": "moved abroad"}, business_unit=unit)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["stopped_on"] == "2026-11-11"
    assert stopped.json()["invoiced_periods"] == [
        {"invoice_id": invoice["id"], "start": "2026-11-01", "end": "2026-12-01", "issues": None}]
    link = re.fullmatch(r'<(.+)>; rel="credit-note"', stopped.headers["link"])
    assert link, stopped.headers
    note = await eventually(lambda: saldo.found("invoicing", link[1].removeprefix("/invoicing"), unit),
                            what="the credit note")
    assert note["amount"] == {"amount": expected, "currency": "DKK"}
    assert "20 of 30 days unused" in note["reason"]

    shown = await invoice_where(saldo, unit, invoice["id"], credited=expected)
    assert shown["status"] == "paid"  # the debt shrank by as much as was released (I3)
    released = await eventually(
        lambda: _where(saldo, "payments", f"/v1/payments/{payment['id']}", unit, unallocated=expected),
        what="payments to release the credited amount")
    assert released["allocated"] == 14900 - expected
    await eventually(lambda: _where(saldo, "refunds", f"/v1/payments/{payment['id']}/refundable", unit,
                                    refundable=expected), what="refunds to see it refundable")
    shown = await invoice_where(saldo, unit, invoice["id"], paid=14900 - expected)
    assert shown["status"] == "paid"
    read = await eventually(lambda: _where(saldo, "invoicing", f"/v1/subscriptions/{subscription['id']}",
                                           unit, stopped_on="2026-11-11"), what="the stop read back")
    assert read["stop_reason"] == "moved abroad"
    events = await published(saldo, unit)
    [stop] = [e for e in events if isinstance(e, contracts.SubscriptionStopped)]
    [credit] = [e for e in events if isinstance(e, contracts.CreditNoteIssued)]
    assert (stop.stopped_on, str(credit.invoice_id), credit.amount.amount) == (
        date(2026, 11, 11), invoice["id"], expected)


async def test_C4_an_issue_based_subscription_stopped_credits_the_issues_not_delivered(saldo: Saldo) -> None:
    """Rule C4, issue-based: a period of 7 issues at 99.99, stopped after 2 were delivered:
    99.99 × 5/7 = 71.42 (rounded half up) is credited, released and refundable."""
    unit = await new_unit(saldo)
    await register_customer(saldo, unit, "c")
    subscription = await start_subscription(saldo, unit, "c", price={"amount": 9999, "currency": "DKK"},
                                            period={"unit": "issues", "length": 7})
    invoice = await invoice_period(saldo, unit, subscription["id"])
    payment = await pay(saldo, unit, "c", {invoice["id"]: 9999})
    await invoice_where(saldo, unit, invoice["id"], status="paid")
    expected = prorated(9999, 5, 7)
    assert expected == 7142
    stopped = await saldo.post("invoicing", f"/v1/subscriptions/{subscription['id']}/stop",
                               {"stop_date": today().isoformat(), "issues_delivered": 2,
                                "reason": "cancelled"}, business_unit=unit)
    assert stopped.status_code == 200, stopped.text
    await invoice_where(saldo, unit, invoice["id"], credited=expected, status="paid")
    await eventually(lambda: _where(saldo, "refunds", f"/v1/payments/{payment['id']}/refundable", unit,
                                    refundable=expected), what="refunds to see it refundable")


async def _where(saldo: Saldo, service: str, path: str, unit: str, **expected: Any) -> dict[str, Any] | None:
    found = await saldo.found(service, path, unit)
    return found if found and all(found.get(k) == v for k, v in expected.items()) else None


# --- I3: released without a credit note --------------------------------------------------------------


async def _deaf(saldo: Saldo, service: str) -> Process:
    """The service again on its port, its API and relay running but none of its consumers."""
    old = saldo.processes[service]
    old.stop()
    port = saldo.base_urls[service].rsplit(":", 1)[1].split("/")[0]
    process = Process(["serve", service, "--port", port, "--no-consumers"], saldo.env,
                      old.log_path).start()
    saldo.processes[service] = process
    await wait_healthy(saldo.client, saldo.base_urls[service], process)
    return process


async def test_I3_money_released_without_a_credit_note_makes_the_invoice_unpaid_again(saldo: Saldo) -> None:
    """Rule I3: a release without a credit note reopens the invoice (InvoiceReopened published,
    status partially_paid, then open).

    The honest way to get one today is the product's own: payments has no operator endpoint for
    a bare release yet, but it releases without a credit note when a refund was granted from
    money that an allocation meanwhile spent (rule M6). Refunds is kept deaf to payments' news
    (its consumers stopped) while 600.00 of a 1,000.00 payment is placed on the invoice, so it
    grants a refund of 1,000.00; payments, hearing of the refund, gives the 600.00 back
    (AmountReleased with the refund's id, no credit note) and the invoice is unpaid again. No
    event is forged on a topic: every service's books stay true.
    """
    unit = await new_unit(saldo)
    await register_customer(saldo, unit, "c")
    invoice = await issue(saldo, unit, "c", 20000, 10000)
    early = await pay(saldo, unit, "c", {invoice["id"]: 24000})  # part of it, before the race
    loose = await pay(saldo, unit, "c", {}, amount=100000)
    await eventually(lambda: _where(saldo, "refunds", f"/v1/payments/{loose['id']}/refundable", unit,
                                    refundable=100000), what="refunds to know the payment")
    await invoice_where(saldo, unit, invoice["id"], paid=24000)

    deaf = await _deaf(saldo, "refunds")
    try:
        placed = await saldo.post("payments", f"/v1/payments/{loose['id']}/allocations",
                                  {"invoice_id": invoice["id"], "amount": 6000}, business_unit=unit)
        assert placed.status_code == 200, placed.text
        await invoice_where(saldo, unit, invoice["id"], status="paid", paid=30000)
        refund = await saldo.post("refunds", "/v1/refunds", {
            "payment_id": loose["id"], "amount": 100000, "reason": "overpaid", "channel": "bank",
            "bank_account": BANK}, business_unit=unit)
        assert refund.status_code == 201, refund.text  # refunds had not heard of the allocation
        reopened = await invoice_where(saldo, unit, invoice["id"], paid=24000)
        assert (reopened["status"], reopened["credited"]) == ("partially_paid", 0)
    finally:
        deaf.stop()
        await saldo.restart("refunds")

    events = [e for e in await published(saldo, unit) if isinstance(e, contracts.InvoiceReopened)]
    assert [(str(e.invoice_id), str(e.payment_id), e.amount.amount) for e in events] == [
        (invoice["id"], loose["id"], 6000)]
    assert refund.json()["id"] in events[0].reason
    listed = (await saldo.get("invoicing", "/v1/invoices?status=partially_paid", unit)).json()["items"]
    assert [i["id"] for i in listed] == [invoice["id"]]
    assert early["allocated"] == 24000
    await settled(saldo)
    assert await dead_letters(saldo) == []


# --- Bad input: a 4xx naming the field and the rule, nothing written -------------------------------


async def test_bad_invoice_and_stop_commands_are_4xx_problems_naming_field_and_rule_and_write_nothing(
        saldo: Saldo) -> None:
    """Issue 7, Bad input (rules M4, C1, C2, C4, I3, M3, M1): unknown customer or subscription,
    another currency, zero/negative/overflowing amounts, more credit than remains, a stop date
    outside the period, issues_delivered out of range, another unit's invoice or subscription
    (404), no business entity yet (409), both subscription_id and lines: each refused with a
    problem+json naming the field (and the rule, where it is one), and not one event stored."""
    unit = await new_unit(saldo, entity=False)
    lines = [{"description": "x", "amount": 100}]
    body = {"customer_id": "c", "currency": "DKK", "due_date": "2026-12-31", "lines": lines}
    before = await stored_events(saldo)
    refused(await saldo.post("invoicing", "/v1/invoices", body, business_unit=unit), 409,
            "business entity", "M4")
    assert await stored_events(saldo) == before

    await set_up_business_unit(saldo, unit)
    await register_customer(saldo, unit, "c")
    subscription = await start_subscription(saldo, unit, "c", started_on="2026-11-01")
    issues = await start_subscription(saldo, unit, "c", period={"unit": "issues", "length": 4})
    invoice = await issue(saldo, unit, "c", 1000)
    period = await invoice_period(saldo, unit, subscription["id"])
    await invoice_period(saldo, unit, issues["id"])
    other = await new_unit(saldo)
    await register_customer(saldo, other, "c")
    theirs = await issue(saldo, other, "c", 1000)
    await settled(saldo)
    before = await stored_events(saldo)
    published_before = len(await published(saldo, unit))

    post = saldo.post
    unknown_subscription = str(uuid.uuid4())
    refusals = [
        (await post("invoicing", "/v1/invoices", {**body, "customer_id": "nobody"}, business_unit=unit),
         422, ("customer_id", "C1")),
        (await post("invoicing", "/v1/invoices", {"subscription_id": unknown_subscription,
                                                  "due_date": "2026-12-31"}, business_unit=unit),
         422, ("subscription_id", "C2")),
        (await post("invoicing", "/v1/invoices", {**body, "currency": "EUR"}, business_unit=unit),
         422, ("currency", "M4")),
        (await post("invoicing", "/v1/invoices", {**body, "lines": [{"description": "x", "amount": 0}]},
                    business_unit=unit), 422, ("body.lines.0.amount", "greater than 0")),
        (await post("invoicing", "/v1/invoices", {**body, "lines": [{"description": "x", "amount": -100}]},
                    business_unit=unit), 422, ("body.lines.0.amount", "greater than 0")),
        (await post("invoicing", "/v1/invoices", {**body, "lines": [{"description": "x",
                                                                     "amount": 10**30}]},
                    business_unit=unit), 422, ("body.lines.0.amount", "less than or equal to")),
        (await post("invoicing", "/v1/invoices", {**body, "lines": [{"description": "x",
                                                                     "amount": 100.0}]},
                    business_unit=unit), 422, ("body.lines.0.amount", "integer")),  # no floats (M1)
        (await post("invoicing", "/v1/invoices", {**body, "subscription_id": subscription["id"]},
                    business_unit=unit), 422, ("subscription_id", "lines")),
        (await post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                    {"amount": 1001, "reason": "too much"}, business_unit=unit), 422, ("amount", "I3")),
        (await post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                    {"amount": 0, "reason": "nothing"}, business_unit=unit), 422,
         ("body.amount", "greater than 0")),
        (await post("invoicing", f"/v1/subscriptions/{subscription['id']}/stop",
                    {"stop_date": "2026-10-15", "reason": "early"}, business_unit=unit),
         422, ("stop_date", "C4")),
        (await post("invoicing", f"/v1/subscriptions/{issues['id']}/stop",
                    {"stop_date": today().isoformat(), "issues_delivered": 5, "reason": "x"},
                    business_unit=unit), 422, ("issues_delivered", "C4")),
        (await post("invoicing", f"/v1/subscriptions/{issues['id']}/stop",
                    {"stop_date": today().isoformat(), "reason": "x"},
                    business_unit=unit), 422, ("issues_delivered", "C4")),
        (await post("invoicing", f"/v1/subscriptions/{issues['id']}/stop",
                    {"stop_date": today().isoformat(), "issues_delivered": -1, "reason": "x"},
                    business_unit=unit), 422, ("body.issues_delivered",)),
        (await post("invoicing", f"/v1/subscriptions/{unknown_subscription}/stop",
                    {"stop_date": "2026-11-11", "reason": "unknown"}, business_unit=unit),
         404, ("subscription",)),
        (await post("invoicing", f"/v1/invoices/{theirs['id']}/credit-notes",
                    {"amount": 100, "reason": "not mine"}, business_unit=unit), 404, ("invoice",)),
        (await post("invoicing", f"/v1/subscriptions/{subscription['id']}/stop",
                    {"stop_date": "2026-11-11", "reason": "not theirs"}, business_unit=other),
         404, ("subscription",)),
        (await post("invoicing", "/v1/invoices", {"subscription_id": subscription["id"],
                                                  "due_date": "2026-12-31"}, business_unit=other),
         422, ("subscription_id", "C2")),  # another unit's: unknown here (M3)
    ]
    wrong = []
    for n, (response, status, words) in enumerate(refusals):
        try:
            refused(response, status, *words)
        except AssertionError as e:
            wrong.append(f"refusal {n}: {e}")
    assert not wrong, "\n".join(wrong)

    await settled(saldo)
    assert await stored_events(saldo) == before  # not one event, not even a number taken
    assert len(await published(saldo, unit)) == published_before
    shown = await saldo.get("invoicing", f"/v1/subscriptions/{subscription['id']}", unit)
    assert shown.json()["stopped_on"] is None
    notes = await saldo.get("invoicing", f"/v1/invoices/{period['id']}/credit-notes", unit)
    assert notes.json()["items"] == []
    assert (await saldo.get("invoicing", f"/v1/invoices/{theirs['id']}", unit)).status_code == 404
