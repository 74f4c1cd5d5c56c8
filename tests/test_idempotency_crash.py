"""A retry after a crash never runs a command twice (issue 5, part 2; rules M6, I1, P3).

The process that serves a POST dies (as with kill -9, through a failpoint) at each instant
between its writes: after it claimed the Idempotency-Key, before the command's events are
recorded, after they are recorded, and after the answer is noted under the key. The client then
retries with the same key against the restarted process. Each time the retry gets the original
answer or the command runs exactly once: invoice numbers stay gap-free and unduplicated (I1),
and a refund reserves its amount once (P3).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scenarios import register_customer, set_up_business_unit
from tests.support import Process, Saldo, eventually, start_distributed, wait_healthy

# Every instant between two writes of one POST (http/idempotency.py).
POINTS = ("after-claim", "before-commit", "after-commit", "after-complete")
CRASHED = 86  # failpoints.py exits with this
# The dead attempt's claim is taken over after this; the default 10 s only makes the test wait.
TAKEOVER = {"SALDO_IDEMPOTENCY_TAKEOVER_SECONDS": "1"}


def invoice_body(customer: str) -> dict[str, Any]:
    return {"customer_id": customer, "currency": "DKK", "due_date": "2026-12-31",
            "lines": [{"description": "Magazine, 12 months", "amount": 12500}]}


async def restart(saldo: Saldo, service: str, failpoint: str | None) -> None:
    """Restart the process serving `service`, armed to die at `failpoint` (or not)."""
    spec = f"{failpoint}@http@{service}" if failpoint else ""
    if "embedded" not in saldo.processes:
        await saldo.restart(service, {"SALDO_FAILPOINTS": spec, **TAKEOVER})
        return
    old = saldo.processes["embedded"]
    old.stop()
    process = Process(old.args, {**saldo.env, "SALDO_FAILPOINTS": spec, **TAKEOVER}, old.log_path).start()
    saldo.processes["embedded"] = process
    await wait_healthy(saldo.client, saldo.base_urls["invoicing"], process)


def process_of(saldo: Saldo, service: str) -> Process:
    return saldo.processes.get("embedded") or saldo.processes[service]


async def post_and_crash(saldo: Saldo, service: str, path: str, body: Any, key: str) -> None:
    with pytest.raises(httpx.TransportError):
        await saldo.post(service, path, body, key=key)
    popen = process_of(saldo, service).popen
    assert popen is not None and popen.wait(30) == CRASHED, "the failpoint was not reached"


async def retry_until_answered(saldo: Saldo, service: str, path: str, body: Any,
                               key: str) -> httpx.Response:
    """Retry with the same key; 409 means the dead attempt's claim is not yet taken over."""

    async def answered() -> httpx.Response | None:
        response = await saldo.post(service, path, body, key=key)
        return None if response.status_code == 409 else response

    return await eventually(answered, timeout=60, what=f"an answer to the retry of {key}")


async def crash_and_retry_invoices(saldo: Saldo) -> None:
    # Set up as an operator does before invoicing (rules M4, C1), before any process is armed.
    await set_up_business_unit(saldo)
    for customer in ("before", *(f"customer-{point}" for point in POINTS), "after"):
        await register_customer(saldo, customer_id=customer)
    first = await saldo.post("invoicing", "/v1/invoices", invoice_body("before"))
    assert first.status_code == 201, first.text
    last_number = first.json()["number"]
    for point in POINTS:
        await restart(saldo, "invoicing", point)
        key, body = f"crash-{point}-{uuid.uuid4()}", invoice_body(f"customer-{point}")
        await post_and_crash(saldo, "invoicing", "/v1/invoices", body, key)
        await restart(saldo, "invoicing", None)

        retried = await retry_until_answered(saldo, "invoicing", "/v1/invoices", body, key)
        assert retried.status_code == 201, retried.text
        recorded_before_crash = point in ("after-commit", "after-complete")
        assert (retried.headers.get("idempotent-replayed") == "true") == recorded_before_crash, point
        # Rule I1: the retry's number follows the last one; a second invoice would have taken one.
        assert retried.json()["number"] == last_number + 1, point
        again = await saldo.post("invoicing", "/v1/invoices", body, key=key)
        assert again.status_code == 201 and again.json() == retried.json(), point
        assert again.headers["idempotent-replayed"] == "true"
        last_number += 1

    fresh = await saldo.post("invoicing", "/v1/invoices", invoice_body("after"))
    assert fresh.json()["number"] == last_number + 1  # nothing issued behind the client's back

    async def listed_once() -> bool:
        page = (await saldo.get("invoicing", "/v1/invoices?limit=500")).json()
        numbers = [i["number"] for i in page["items"]]
        return numbers == list(range(first.json()["number"], last_number + 2))

    await eventually(listed_once, what="exactly one invoice per command in the read model")


async def test_a_retry_after_a_crash_issues_one_invoice_distributed(env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    saldo = await start_distributed(env, tmp_path, services=("invoicing",))
    try:
        await crash_and_retry_invoices(saldo)
    finally:
        saldo.stop()
        await saldo.client.aclose()


async def test_a_retry_after_a_crash_issues_one_invoice_embedded(embedded: Saldo) -> None:
    await crash_and_retry_invoices(embedded)


async def test_a_retry_after_a_crash_refunds_once(env: dict[str, str], tmp_path: Path) -> None:
    """Rule P3 and M6: a refund retried after its process died reserves its amount once."""
    saldo = await start_distributed(env, tmp_path, services=("payments", "refunds"))
    try:
        paid = await saldo.post("payments", "/v1/payments", {
            "customer_id": "cust-crash", "method": "bank_transfer", "amount": 40000,
            "currency": "DKK", "received_at": "2026-11-21T09:00:00Z"})
        assert paid.status_code == 201, paid.text
        payment_id = paid.json()["id"]

        async def refundable() -> dict[str, Any] | None:
            return await saldo.found("refunds", f"/v1/payments/{payment_id}/refundable")

        await eventually(refundable, what="refunds to hear of the payment")
        for count, point in enumerate(POINTS, start=1):
            await restart(saldo, "refunds", point)
            key = f"refund-{point}-{uuid.uuid4()}"
            body = {"payment_id": payment_id, "amount": 8000, "reason": "double charge",
                    "channel": "bank",
                    "bank_account": {"registration_number": "1234", "account_number": "0001234567"}}
            await post_and_crash(saldo, "refunds", "/v1/refunds", body, key)
            await restart(saldo, "refunds", None)
            retried = await retry_until_answered(saldo, "refunds", "/v1/refunds", body, key)
            assert retried.status_code == 201, retried.text
            account = await refundable()
            assert account is not None
            assert account["in_progress"] == 8000 * count, (point, account)
            assert account["refundable"] == 40000 - 8000 * count, (point, account)
    finally:
        saldo.stop()
        await saldo.client.aclose()

