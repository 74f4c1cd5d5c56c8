"""The HTTP conventions of DESIGN.md, checked the way a client meets them: over real HTTP, against
the five services as OS processes on real PostgreSQL and Kafka (distributed mode).

Idempotency-Key with Stripe's semantics; tenant isolation (rule M3); bearer API keys with roles;
RFC 9457 problems for bad input with nothing written (rule M1: integer minor units, no floats);
ETag / If-Match; and rule P3 under two operators refunding at once.

One Saldo serves the whole module (starting five processes costs seconds); every test gets its
own business units, so tests neither see nor disturb each other's data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from saldo_platform.http.auth import ApiKeys
from saldo_platform.settings import Settings
from tests.infrastructure import Servers
from tests.scenarios import issue_invoice, pay_invoice, register_customer, set_up_business_unit
from tests.support import (
    Saldo,
    create_key,
    distributed_with_keys,
    eventually,
    settled,
)

PROBLEM = "application/problem+json"
INVOICE: dict[str, Any] = {"customer_id": "cust-1", "currency": "DKK", "due_date": "2026-12-31",
           "lines": [{"description": "Magazine, 12 months", "amount": 49900}]}
BANK = {"registration_number": "1234", "account_number": "0001234567"}


_api_keys: ApiKeys  # the module's key store, see `saldo`


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    # Keys for fresh business units are made in-process (the CLI's own code, one process start
    # saved per key); `saldo keys create` itself is exercised for the auditor key below.
    global _api_keys
    async with distributed_with_keys(infra.database_url, infra.kafka_bootstrap,
                                     tmp_path_factory.mktemp("http-conventions")) as (running, _api_keys):
        yield running
    _no_unhandled_errors(running)


def _no_unhandled_errors(saldo: Saldo) -> None:
    """A 5xx on any input is a bug: no service may have logged an unhandled request error."""
    for name, process in saldo.processes.items():
        assert "unhandled error on" not in Path(process.log_path).read_text(errors="replace"), name


async def new_unit(saldo: Saldo, name: str, roles: str = "admin") -> str:
    """A fresh business unit (a tenant, rule M3) with a key holding `roles`, set up the way an
    operator sets one up before invoicing: its business entity (DKK) and customer `cust-1`
    (rules M4, C1), so INVOICE can be issued in it."""
    unit = f"{name}-{uuid.uuid4().hex[:8]}"
    setup = await _api_keys.create(unit, ["admin"], f"set-up key for {unit}")
    saldo.keys[unit] = setup
    await set_up_business_unit(saldo, unit)
    await register_customer(saldo, unit, INVOICE["customer_id"])
    if roles != "admin":
        saldo.keys[unit] = await _api_keys.create(unit, roles.split(","), f"test key for {unit}")
    return unit


async def call(saldo: Saldo, method: str, service: str, path: str, *, key: str | None,
               json: Any = None, content: bytes | None = None,
               headers: dict[str, str] | None = None,
               idempotency_key: str | None = "new") -> httpx.Response:
    """One request with exactly the headers given: `key` is the bearer key (None: no header)."""
    h: dict[str, str] = {}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    if method == "POST" and idempotency_key is not None:
        h["Idempotency-Key"] = str(uuid.uuid4()) if idempotency_key == "new" else idempotency_key
    if content is not None:
        h["Content-Type"] = "application/json"
    response = await saldo.client.request(method, saldo.base_urls[service] + path, json=json,
                                          content=content, headers={**h, **(headers or {})})
    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text}"
    return response


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem: the content type, and type/title/status/detail in the body."""
    assert response.status_code == status, f"not {status}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


async def refundable_payment(saldo: Saldo, unit: str, amount: int = 49900) -> dict[str, Any]:
    """An invoice paid by card, then fully credited: the payment is refundable (I3, P3)."""
    invoice = await issue_invoice(saldo, amount=amount, unit=unit)
    payment = await pay_invoice(saldo, invoice, unit=unit)
    credit = await saldo.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                              {"amount": amount, "reason": "subscription stopped"},
                              business_unit=unit)
    assert credit.status_code == 201, credit.text

    async def refundable() -> dict[str, Any] | None:
        found = await saldo.found("refunds", f"/v1/payments/{payment['id']}/refundable", unit)
        return found if found and found["refundable"] == amount else None

    await eventually(refundable, what="the credited amount to become refundable")
    return {"invoice": invoice, "payment": payment}


async def items(saldo: Saldo, service: str, path: str, unit: str) -> list[dict[str, Any]]:
    response = await saldo.get(service, path, unit)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# 1. Idempotency ---------------------------------------------------------------------------------

async def test_the_same_post_sent_eight_times_at_once_issues_one_invoice(saldo: Saldo) -> None:
    """An operator's client retries "issue invoice" eight times at once with one Idempotency-Key.

    Stripe's semantics (DESIGN.md, HTTP conventions): exactly one invoice is issued (rule I1:
    only number 1 is taken); each answer is the first success replayed (same status, same body,
    `idempotent-replayed: true`) or a 409 problem while the first still ran. A later retry
    replays the same body; the same key with another body is a 422 problem.
    """
    unit = await new_unit(saldo, "idem")
    key = str(uuid.uuid4())
    responses = await asyncio.gather(*[
        saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit, key=key)
        for _ in range(8)])

    statuses = [(r.status_code, r.text) for r in responses]
    assert all(r.status_code in (201, 409) for r in responses), statuses
    successes = [r for r in responses if r.status_code == 201]
    originals = [r for r in successes if "idempotent-replayed" not in r.headers]
    assert len(originals) == 1, "exactly one request ran; the rest were replays or 409s"
    first = originals[0]
    assert first.json()["number"] == 1
    for replay in successes:
        assert replay.content == first.content
        assert replay.headers["etag"] == first.headers["etag"]
        if replay is not first:
            assert replay.headers["idempotent-replayed"] == "true"
    for busy in (r for r in responses if r.status_code == 409):
        assert_problem(busy, 409)

    later = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit, key=key)
    assert later.status_code == 201
    assert later.content == first.content
    assert later.headers["idempotent-replayed"] == "true"

    other_body = {**INVOICE, "customer_id": "cust-2"}
    reused = await saldo.post("invoicing", "/v1/invoices", other_body, business_unit=unit, key=key)
    assert_problem(reused, 422)
    again = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit, key=key)
    assert again.content == first.content  # the 422 did not disturb what was stored

    # Only number 1 was taken: the next invoice, with a new key, is number 2 (no gap, rule I1).
    second = await issue_invoice(saldo, unit=unit)
    assert second["number"] == 2

    async def both_listed() -> list[dict[str, Any]] | None:
        listed = await items(saldo, "invoicing", "/v1/invoices", unit)
        return listed if len(listed) >= 2 else None

    await eventually(both_listed, what="both invoices in the read model")
    await settled(saldo)  # every consumer at the end of every topic: anything else is there too
    listed = await items(saldo, "invoicing", "/v1/invoices", unit)
    assert [(i["number"], i["id"]) for i in listed] == [(1, first.json()["id"]), (2, second["id"])]


async def test_an_idempotency_key_belongs_to_one_api_key(saldo: Saldo) -> None:
    """Keys are scoped to the caller (rule M3): another business unit sending the same
    Idempotency-Key and body gets its own invoice, never the first unit's stored response."""
    unit_a, unit_b = await new_unit(saldo, "scope-a"), await new_unit(saldo, "scope-b")
    key = str(uuid.uuid4())
    a = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit_a, key=key)
    b = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit_b, key=key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert b.json()["id"] != a.json()["id"]


async def test_a_post_without_a_usable_idempotency_key_is_refused(saldo: Saldo) -> None:
    """Every POST needs an Idempotency-Key of 1 to 255 characters: 400 problem, nothing issued."""
    unit = await new_unit(saldo, "nokey")
    key = saldo.keys[unit]
    missing = await call(saldo, "POST", "invoicing", "/v1/invoices", key=key, json=INVOICE,
                         idempotency_key=None)
    assert_problem(missing, 400)
    for bad in ("", "k" * 256):
        assert_problem(await call(saldo, "POST", "invoicing", "/v1/invoices", key=key, json=INVOICE,
                                  idempotency_key=bad), 400)
    assert (await issue_invoice(saldo, unit=unit))["number"] == 1


async def test_a_key_released_by_a_failed_request_is_claimed_before_running(saldo: Saldo) -> None:
    """A failed request frees its Idempotency-Key so the client may retry. A retry that arrives
    while the failed request still holds the key, and finds it released a moment later, must
    claim the key before it runs — else its response is never stored and the next retry takes
    effect a second time.

    Found with retries of a card payment in bursts of eight with one key while payments still
    answered 404 for a new invoice: two or three payments were made (intermittently). Made
    deterministic here with PostgreSQL itself: an earlier request's claim on the key, which
    this test releases exactly while the retry is waiting to look at it.
    """
    unit = await new_unit(saldo, "release")
    first = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit)
    assert first.status_code == 201
    db = await asyncpg.connect(Settings.from_env(saldo.env).service_database("invoicing"))
    try:
        # The caller's scope and this request's fingerprint, as stored for the first request.
        stored = await db.fetchrow("SELECT scope, request_sha256 FROM idempotency_keys"
                                   " WHERE body LIKE $1", f"%{first.json()['id']}%")
        key = str(uuid.uuid4())
        await db.execute(
            "INSERT INTO idempotency_keys (scope, key, request_sha256, state, created_at)"
            " VALUES ($1, $2, $3, 'running', '2000-01-01T00:00:00+00:00')",
            stored["scope"], key, stored["request_sha256"])
        async with db.transaction():
            await db.execute("SELECT 1 FROM idempotency_keys WHERE key = $1 FOR UPDATE", key)
            retry = asyncio.create_task(
                saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit, key=key))

            async def retry_waits_on_the_claim() -> bool:
                await db.execute("SELECT pg_stat_clear_snapshot()")  # fresh within this transaction
                return bool(await db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'UPDATE idempotency_keys%' AND datname = current_database()"))

            await eventually(retry_waits_on_the_claim, timeout=10,
                             what="the retry to wait on the claim")
            await db.execute("DELETE FROM idempotency_keys WHERE key = $1", key)  # released
        response = await retry
    finally:
        await db.close()
    assert response.status_code == 201, response.text
    assert response.json()["number"] == 2
    again = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit, key=key)
    assert again.headers.get("idempotent-replayed") == "true", "the retry's response was not stored"
    assert again.content == response.content
    assert (await issue_invoice(saldo, unit=unit))["number"] == 3


# 2. Tenant isolation ----------------------------------------------------------------------------

async def test_one_business_unit_sees_nothing_of_another(saldo: Saldo) -> None:
    """Rule M3: A's invoice, payment, refund and payout are invisible to B's key — a 404 exactly
    like that for an id that never existed (not a 403, which would confirm it exists), absent
    from B's lists, and B's commands on them are 404s that change nothing."""
    unit_a, unit_b = await new_unit(saldo, "tenant-a"), await new_unit(saldo, "tenant-b")
    a = await refundable_payment(saldo, unit_a)
    invoice, payment = a["invoice"], a["payment"]
    refund = await saldo.post("refunds", "/v1/refunds", {
        "payment_id": payment["id"], "amount": 10000, "reason": "goodwill", "channel": "bank",
        "bank_account": BANK}, business_unit=unit_a)
    assert refund.status_code == 201, refund.text

    async def a_payout() -> dict[str, Any] | None:
        ready = await items(saldo, "payouts", "/v1/payouts/ready", unit_a)
        return next((p for p in ready if p["refund_id"] == refund.json()["id"]), None)

    payout = await eventually(a_payout, what="A's payout in 'Refunds ready for bank payout'")
    b_invoice = await issue_invoice(saldo, unit=unit_b, customer="cust-b")  # B has data of its own
    await eventually(lambda: saldo.found("invoicing", f"/v1/invoices/{b_invoice['id']}", unit_b),
                     what="B's own invoice in B's read model")

    never = str(uuid.uuid4())
    for service, path in [
        ("invoicing", f"/v1/invoices/{invoice['id']}"),
        ("payments", f"/v1/payments/{payment['id']}"),
        ("refunds", f"/v1/payments/{payment['id']}/refundable"),
        ("refunds", f"/v1/refunds/{refund.json()['id']}"),
        ("payouts", f"/v1/payouts/{payout['id']}"),
    ]:
        theirs = assert_problem(await saldo.get(service, path, unit_b), 404)
        made_up = path.replace(path.split("/")[3], never)
        unknown = assert_problem(await saldo.get(service, made_up, unit_b), 404)
        assert (theirs["type"], theirs["title"]) == (unknown["type"], unknown["title"])
        assert (await saldo.get(service, path, unit_a)).status_code == 200

    # B's commands on A's things: not found, and nothing changed.
    assert_problem(await saldo.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                                    {"amount": 1, "reason": "x"}, business_unit=unit_b), 404)
    assert_problem(await saldo.post("payments", "/v1/payments", {
        "customer_id": "cust-b", "method": "card", "amount": 100, "currency": "DKK",
        "received_at": "2026-11-20T10:00:00Z",
        "allocations": [{"invoice_id": invoice["id"], "amount": 100}]}, business_unit=unit_b), 404)
    assert_problem(await saldo.post("refunds", "/v1/refunds", {
        "payment_id": payment["id"], "amount": 1, "reason": "x", "channel": "bank",
        "bank_account": BANK}, business_unit=unit_b), 404)
    assert_problem(await saldo.post("payouts", f"/v1/payouts/{payout['id']}/mark-paid-out", {},
                                    business_unit=unit_b), 404)

    # B's lists hold B's data only.
    b_invoices = await items(saldo, "invoicing", "/v1/invoices", unit_b)
    assert [i["id"] for i in b_invoices] == [b_invoice["id"]]
    by_a_customer = f"/v1/invoices?customer_id={invoice['customer_id']}"
    assert await items(saldo, "invoicing", by_a_customer, unit_b) == []
    assert await items(saldo, "payments", "/v1/payments", unit_b) == []
    assert await items(saldo, "refunds", "/v1/refunds", unit_b) == []
    assert await items(saldo, "payouts", "/v1/payouts/ready", unit_b) == []
    assert await items(saldo, "payouts", "/v1/payouts/pending", unit_b) == []
    b_postings = await items(saldo, "accounting-sync", "/v1/postings?limit=500", unit_b)
    assert all(p["source_event_type"] == "InvoiceIssued" for p in b_postings)
    assert payment["id"] not in str(b_postings) and invoice["id"] not in str(b_postings)

    # A's things are as A left them.
    assert (await saldo.found("refunds", f"/v1/payments/{payment['id']}/refundable", unit_a)) == {
        "payment_id": payment["id"], "currency": "DKK", "amount": 49900, "allocated": 0,
        "in_progress": 10000, "refunded": 0, "refundable": 39900}
    a_payout_now = await saldo.found("payouts", f"/v1/payouts/{payout['id']}", unit_a)
    assert a_payout_now is not None and a_payout_now["status"] == "draft"
    a_invoice = await saldo.found("invoicing", f"/v1/invoices/{invoice['id']}", unit_a)
    assert a_invoice is not None and a_invoice["credited"] == 49900


# 3. Auth ----------------------------------------------------------------------------------------

async def test_api_keys_and_roles(saldo: Saldo) -> None:
    """Every request carries a bearer API key (DESIGN.md): none, a wrong scheme, an unknown key
    or a wrong secret is a 401 problem with `WWW-Authenticate: Bearer`; an `auditor` may read
    but every command is a 403 problem, and nothing is written."""
    unit = await new_unit(saldo, "auth")
    admin = saldo.keys[unit]
    auditor = await asyncio.to_thread(create_key, saldo.env, unit, "auditor")
    key_id, _, secret = admin.removeprefix("sk_").partition("_")
    wrong_secret = f"sk_{key_id}_{'x' * len(secret)}"

    for method, body in (("GET", None), ("POST", INVOICE)):
        for key, basic in ((None, None), (None, f"Basic {admin}"), (wrong_secret, None),
                           ("sk_000000000000_unknown", None), ("not-even-a-key", None)):
            response = await call(saldo, method, "invoicing", "/v1/invoices", key=key, json=body,
                                  headers={"Authorization": basic} if basic else None)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"

    for service, path in [("invoicing", "/v1/invoices"), ("payments", "/v1/payments"),
                          ("refunds", "/v1/refunds"), ("payouts", "/v1/payouts/ready"),
                          ("payouts", "/v1/payouts/pending"), ("accounting-sync", "/v1/postings"),
                          ("accounting-sync", "/v1/trial-balance")]:
        response = await call(saldo, "GET", service, path, key=auditor)
        assert response.status_code == 200, (path, response.text)

    somewhere = str(uuid.uuid4())
    for service, path, body in [
        ("invoicing", "/v1/invoices", INVOICE),
        ("invoicing", f"/v1/invoices/{somewhere}/credit-notes", {"amount": 1, "reason": "x"}),
        ("payments", "/v1/payments", {"customer_id": "c", "method": "card", "amount": 1,
                                      "currency": "DKK", "received_at": "2026-11-20T10:00:00Z"}),
        ("refunds", "/v1/refunds", {"payment_id": somewhere, "amount": 1, "reason": "x"}),
        ("payouts", f"/v1/payouts/{somewhere}/mark-paid-out", {}),
    ]:
        assert_problem(await call(saldo, "POST", service, path, key=auditor, json=body), 403)

    assert (await issue_invoice(saldo, unit=unit))["number"] == 1  # the 401s and 403s wrote nothing


async def test_every_service_documents_its_api(saldo: Saldo) -> None:
    """OpenAPI at /docs (DESIGN.md), readable without a key; the request bodies in it say that
    amounts are integers (rule M1)."""
    for service, url in saldo.base_urls.items():
        assert (await saldo.client.get(url + "/docs")).status_code == 200, service
        spec = (await saldo.client.get(url + "/openapi.json")).json()
        assert spec["paths"], service
    spec = (await saldo.client.get(saldo.base_urls["invoicing"] + "/openapi.json")).json()
    line = spec["components"]["schemas"]["LineIn"]["properties"]["amount"]
    assert line["type"] == "integer" and line["exclusiveMinimum"] == 0
    # A path outside every service is a problem too, from the root app (embedded) or the service.
    root = saldo.base_urls["invoicing"].rsplit("/", 1)[0]
    assert_problem(await saldo.client.get(root + "/no-such-service/v1/anything"), 404)


# 4. Bad input -----------------------------------------------------------------------------------

def _invoice(**changes: Any) -> dict[str, Any]:
    return {**INVOICE, **changes}


def _line(**changes: Any) -> dict[str, Any]:
    return _invoice(lines=[{**INVOICE["lines"][0], **changes}])


BAD_INVOICES: list[tuple[str, Any]] = [
    ("float amount (rule M1)", _line(amount=49900.5)),
    ("float amount, even .0 (rule M1)", _line(amount=49900.0)),
    ("amount as a string", _line(amount="49900")),
    ("amount as a boolean", _line(amount=True)),
    ("zero amount", _line(amount=0)),
    ("negative amount", _line(amount=-100)),
    ("amount beyond any BIGINT", _line(amount=10**20)),
    ("lower-case currency", _invoice(currency="dkk")),
    ("four-letter currency", _invoice(currency="DKKK")),
    ("currency as a number", _invoice(currency=208)),
    ("no fields at all", {}),
    ("missing lines", {k: v for k, v in INVOICE.items() if k != "lines"}),
    ("missing customer", {k: v for k, v in INVOICE.items() if k != "customer_id"}),
    ("no lines", _invoice(lines=[])),
    ("extra field", _invoice(discount=100)),
    ("extra field in a line", _line(vat=25)),
    ("impossible due date", _invoice(due_date="2026-02-30")),
    ("NUL character in a text", _invoice(customer_id="cust\u00001")),
    ("NUL character in a line", _line(description="Magazine\u0000")),
    ("a list, not an object", [INVOICE]),
    ("null", None),
]


async def test_bad_input_is_a_problem_and_writes_nothing(saldo: Saldo) -> None:
    """Bad input gets an RFC 9457 problem with a 4xx — never a 5xx — and writes nothing: after
    every bad request the next good invoice still gets number 1, the invoice still accepts a
    credit note at version 1, the payment stays fully refundable, the lists hold one of each.

    Found here: an amount beyond BIGINT or a NUL character was accepted with 201 and then
    dead-lettered by every consumer (PostgreSQL cannot hold either), taking an invoice number
    that never reached the read model; the same invoice twice in one payment's allocations
    was a misleading 409 "changed by another request".
    """
    unit = await new_unit(saldo, "bad")
    key = saldo.keys[unit]

    async def post(service: str, path: str, body: Any, status: int, **kw: Any) -> dict[str, Any]:
        response = await call(saldo, "POST", service, path, key=key, json=body, **kw)
        return assert_problem(response, status)

    for label, body in BAD_INVOICES:
        problem = await post("invoicing", "/v1/invoices", body, 422)
        assert problem["detail"], label
    for raw, status in ((b"{not json", 422), (b'{"customer_id": "c",', 422), (b"", 422),
                        ('{"customer_id": "\u00e6"}'.encode("latin-1"), 400)):  # not UTF-8
        response = await call(saldo, "POST", "invoicing", "/v1/invoices", key=key, content=raw)
        assert_problem(response, status)
    for path in ("/v1/invoices/not-a-uuid", "/v1/invoices/123", "/v1/invoices?limit=0",
                 "/v1/invoices?limit=501", "/v1/invoices?after=%27%20OR%201%3D1"):
        assert_problem(await call(saldo, "GET", "invoicing", path, key=key), 422)
    for service, path in (("payments", "/v1/payments/nope"), ("refunds", "/v1/refunds/nope"),
                          ("refunds", "/v1/payments/nope/refundable"),
                          ("payouts", "/v1/payouts/nope")):
        assert_problem(await call(saldo, "GET", service, path, key=key), 422)
    for service, path in (("invoicing", "/v1/invoices?customer_id=%00"),  # was a 500
                          ("payments", "/v1/payments?customer_id=x%00"),
                          ("accounting-sync", "/v1/postings?source_event_id=%00")):
        assert_problem(await call(saldo, "GET", service, path, key=key), 400)

    invoice = await issue_invoice(saldo, unit=unit)
    assert invoice["number"] == 1  # nothing above took an invoice number (rule I1)
    notes = f"/v1/invoices/{invoice['id']}/credit-notes"
    await post("invoicing", notes, {"amount": 49901, "reason": "too much"}, 422)  # rule I3
    for amount in (49900.5, "100", 0, -1, 10**20, None):
        await post("invoicing", notes, {"amount": amount, "reason": "x"}, 422)
    await post("invoicing", notes, {"amount": 100}, 422)
    await post("invoicing", notes, {"amount": 100, "reason": "x", "extra": 1}, 422)
    await post("invoicing", notes, {"amount": 100, "reason": "\u0000"}, 422)
    some = {"amount": 100, "reason": "x"}
    await post("invoicing", "/v1/invoices/not-a-uuid/credit-notes", some, 422)
    await post("invoicing", f"/v1/invoices/{uuid.uuid4()}/credit-notes", some, 404)
    await post("invoicing", notes, some, 412, headers={"If-Match": "yesterday"})

    payment = {"customer_id": "cust-1", "method": "card", "amount": 10000, "currency": "DKK",
               "received_at": "2026-11-20T10:00:00Z"}

    async def currency_checked() -> httpx.Response | None:
        # 404 until payments has heard of the invoice; then the currency is what is wrong (M1).
        response = await call(saldo, "POST", "payments", "/v1/payments", key=key, json={
            **payment, "currency": "EUR",
            "allocations": [{"invoice_id": invoice["id"], "amount": 100}]})
        return response if response.status_code != 404 else None

    assert_problem(await eventually(currency_checked, what="payments to know the invoice"), 422)
    allocation = {"invoice_id": invoice["id"], "amount": 100}
    for body, status in [
        ({**payment, "allocations": [{"invoice_id": str(uuid.uuid4()), "amount": 100}]}, 404),
        ({**payment, "allocations": [{"invoice_id": "not-a-uuid", "amount": 100}]}, 422),
        ({**payment, "allocations": [{**allocation, "amount": 10001}]}, 422),  # more than paid
        ({**payment, "allocations": [allocation, allocation]}, 422),  # the same invoice twice
        ({**payment, "allocations": [{**allocation, "amount": 100.0}]}, 422),
        ({**payment, "amount": 10000.5}, 422),
        ({**payment, "amount": "10000"}, 422),
        ({**payment, "amount": -10000}, 422),
        ({**payment, "amount": 10**20}, 422),
        ({**payment, "currency": "Kr."}, 422),
        ({**payment, "method": "bitcoin"}, 422),
        ({**payment, "received_at": "2026-11-20T10:00:00"}, 422),  # no time zone (rule M2)
        ({**payment, "provider_reference": "qp\u0000"}, 422),
        ({**payment, "fee": 100}, 422),
        ({k: v for k, v in payment.items() if k != "amount"}, 422),
    ]:
        await post("payments", "/v1/payments", body, status)

    good = await call(saldo, "POST", "payments", "/v1/payments", key=key, json=payment)
    assert good.status_code == 201, good.text
    payment_id = good.json()["id"]

    async def refundable() -> dict[str, Any] | None:
        found = await saldo.found("refunds", f"/v1/payments/{payment_id}/refundable", unit)
        return found if found and found["refundable"] == 10000 else None

    await eventually(refundable, what="the unallocated payment to be refundable (rule P2, P3)")
    refund = {"payment_id": payment_id, "amount": 10000, "reason": "overpaid", "channel": "bank",
              "bank_account": BANK}
    for body, status in [
        ({**refund, "amount": 10001}, 422),  # more than refundable (rules R1, P3)
        ({**refund, "amount": 0}, 422),
        ({**refund, "amount": -1}, 422),
        ({**refund, "amount": 100.5}, 422),
        ({**refund, "amount": "100"}, 422),
        ({**refund, "payment_id": str(uuid.uuid4())}, 404),
        ({**refund, "payment_id": "nope"}, 422),
        ({**refund, "channel": "cash"}, 422),
        ({**refund, "reason": ""}, 422),
        ({**refund, "reason": "\u0000"}, 422),
        ({**refund, "bank_account": {**BANK, "swift": "x"}}, 422),
    ]:
        await post("refunds", "/v1/refunds", body, status)
    await post("payouts", "/v1/payouts/not-a-uuid/mark-paid-out", {}, 422)
    await post("payouts", f"/v1/payouts/{uuid.uuid4()}/mark-paid-out", {}, 404)

    # Nothing was written: no credit note (still version 1), nothing reserved, one of each.
    assert (await refundable()) is not None
    unchanged = await call(saldo, "POST", "invoicing", notes, key=key, json=some,
                           headers={"If-Match": '"1"'})
    assert unchanged.status_code == 201, unchanged.text
    whole = await call(saldo, "POST", "refunds", "/v1/refunds", key=key, json=refund)
    assert whole.status_code == 201, whole.text

    async def all_there() -> bool:
        listed = [await items(saldo, s, p, unit) for s, p in (
            ("invoicing", "/v1/invoices"), ("payments", "/v1/payments"),
            ("refunds", "/v1/refunds"))]
        return all(listed)

    await eventually(all_there, what="the good invoice, payment and refund in the read models")
    await settled(saldo)
    assert len(await items(saldo, "invoicing", "/v1/invoices", unit)) == 1
    assert [p["id"] for p in await items(saldo, "payments", "/v1/payments", unit)] == [payment_id]
    assert len(await items(saldo, "refunds", "/v1/refunds", unit)) == 1


async def test_a_float_or_out_of_range_allocation_is_refused_and_writes_nothing(saldo: Saldo) -> None:
    """Placing a payment's unallocated money on an invoice (rule P2) takes an amount in integer
    minor units from 1 to 10^12 (rule M1): a float — even 100.0 — a string, a boolean, zero, a
    negative or an out-of-range amount is a 422 problem, and the payment is not touched: the
    good allocation after them is the payment's first change (version 2)."""
    unit = await new_unit(saldo, "allocate")
    key = saldo.keys[unit]
    invoice = await issue_invoice(saldo, amount=30000, unit=unit)
    made = await saldo.post("payments", "/v1/payments", {
        "customer_id": invoice["customer_id"], "method": "bank_transfer", "amount": 10000,
        "currency": "DKK", "received_at": "2026-11-20T10:00:00Z"}, business_unit=unit)
    assert made.status_code == 201, made.text
    assert made.json()["version"] == 1
    path = f"/v1/payments/{made.json()['id']}/allocations"

    for amount in (100.0, 100.5, 1e2, "100", True, 0, -100, 10**12 + 1, 10**20, None, [100], {"amount": 100}):
        response = await call(saldo, "POST", "payments", path, key=key,
                              json={"invoice_id": invoice["id"], "amount": amount})
        assert_problem(response, 422)
    for body in ({"invoice_id": invoice["id"]}, {"invoice_id": invoice["id"], "amount": 100, "extra": 1}):
        assert_problem(await call(saldo, "POST", "payments", path, key=key, json=body), 422)

    async def allocated() -> httpx.Response | None:
        # 404 while payments has not heard of the invoice yet.
        response = await call(saldo, "POST", "payments", path, key=key,
                              json={"invoice_id": invoice["id"], "amount": 10000})
        return response if response.status_code != 404 else None

    good = await eventually(allocated, what="payments to know the invoice")
    assert good.status_code == 200, good.text
    assert (good.json()["version"], good.json()["unallocated"]) == (2, 0)  # nothing came before it
    await settled(saldo)
    seen = await saldo.found("payments", f"/v1/payments/{made.json()['id']}", unit)
    assert seen is not None and (seen["allocated"], seen["version"]) == (10000, 2)
    paid = await saldo.found("invoicing", f"/v1/invoices/{invoice['id']}", unit)
    assert paid is not None and paid["paid"] == 10000


# 5. ETag / If-Match -----------------------------------------------------------------------------

async def test_etag_and_if_match_on_an_invoice(saldo: Saldo) -> None:
    """`ETag` from the aggregate version, `If-Match` to guard a command (DESIGN.md): a credit note
    with a stale If-Match is a 412 problem and changes nothing. Also: `Location` of a created
    resource leads to it (it used to resolve to `/invoicing/v1/v1/invoices/…`)."""
    unit = await new_unit(saldo, "etag")
    created = await saldo.post("invoicing", "/v1/invoices", INVOICE, business_unit=unit)
    assert created.status_code == 201
    assert created.headers["etag"] == '"1"'
    invoice_url = str(created.url.join(created.headers["location"]))
    assert invoice_url == saldo.base_urls["invoicing"] + f"/v1/invoices/{created.json()['id']}"

    async def at_version(version: int) -> httpx.Response | None:
        response = await saldo.client.get(invoice_url, headers=saldo.headers(unit))
        ok = response.status_code == 200 and response.json()["version"] == version
        return response if ok else None

    seen = await eventually(lambda: at_version(1), what="the invoice at its Location")
    assert seen.headers["etag"] == '"1"'

    notes = f"/v1/invoices/{created.json()['id']}/credit-notes"
    credit = await saldo.post("invoicing", notes, {"amount": 10000, "reason": "one issue missed"},
                              business_unit=unit, headers={"If-Match": seen.headers["etag"]})
    assert credit.status_code == 201, credit.text
    assert credit.headers["etag"] == '"2"'

    stale = await saldo.post("invoicing", notes, {"amount": 5000, "reason": "again"},
                             business_unit=unit, headers={"If-Match": seen.headers["etag"]})
    assert_problem(stale, 412)
    fresh = await eventually(lambda: at_version(2), what="the credit note in the read model")
    assert fresh.headers["etag"] == '"2"'
    assert fresh.json()["credited"] == 10000  # the 412 changed nothing
    current = await saldo.post("invoicing", notes, {"amount": 5000, "reason": "again"},
                               business_unit=unit, headers={"If-Match": fresh.headers["etag"]})
    assert current.status_code == 201  # the invoice was still at version 2
    assert current.headers["etag"] == '"3"'
    credited = await eventually(lambda: at_version(3), what="the second credit note")
    assert credited.json()["credited"] == 15000

    made = await saldo.post("payments", "/v1/payments", {
        "customer_id": "c", "method": "manual", "amount": 1, "currency": "DKK",
        "received_at": "2026-11-20T10:00:00Z"}, business_unit=unit)
    assert made.status_code == 201
    payment_url = str(made.url.join(made.headers["location"]))
    assert payment_url == saldo.base_urls["payments"] + f"/v1/payments/{made.json()['id']}"
    async def payment_located() -> dict[str, Any] | None:
        response = await saldo.client.get(payment_url, headers=saldo.headers(unit))
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

    found = await eventually(payment_located, what="the payment at its Location")
    assert (found["id"], found["version"]) == (made.json()["id"], made.json()["version"])
