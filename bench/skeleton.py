"""HTTP command → read model latency of the walking-skeleton steps, one business case at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from bench.client import Client
from tests.scenarios import register_customer, set_up_business_unit

AMOUNT = 49900
BANK_ACCOUNT = {"registration_number": "1234", "account_number": "0001234567"}

# The steps the brief names, then the hand-overs between them that a client has to wait for.
STEPS = (
    "issue invoice → invoice in GET /invoicing/v1/invoices/{id}",
    "record payment → invoice status 'paid'",
    "credit note → payment unallocated in payments read model",
    "refund → payout in /payouts/v1/payouts/ready",
    "mark paid out → PayoutMarkedPaid posting in accounting",
)
HANDOVERS = (
    "issue invoice → payments accepts an allocation to it",
    "credit note → amount refundable in refunds",
)


def invoice_body(customer: str) -> dict[str, Any]:
    return {"customer_id": customer, "currency": "DKK", "due_date": "2026-12-31",
            "lines": [{"description": "Magazine, 12 months", "amount": AMOUNT}]}


def payment_body(customer: str, allocate_to: str | None) -> dict[str, Any]:
    return {"customer_id": customer, "method": "bank_transfer", "amount": AMOUNT,
            "currency": "DKK", "received_at": "2026-11-20T10:00:00Z",
            "provider_reference": "bench",
            "allocations": [{"invoice_id": allocate_to, "amount": AMOUNT}] if allocate_to else []}


def refund_body(payment_id: str) -> dict[str, Any]:
    return {"payment_id": payment_id, "amount": AMOUNT, "reason": "subscription stopped",
            "channel": "bank", "bank_account": BANK_ACCOUNT}


def _created(response: Any, what: str) -> dict[str, Any]:
    if not response.is_success:
        raise RuntimeError(f"{what}: {response.status_code} {response.text}")
    return response.json()  # type: ignore[no-any-return]


async def set_up(c: Client, *customers: str) -> None:
    """What an operator does before invoicing (rules M4, C1): the business unit's entity, then
    the customers (a repeated PUT writes nothing). Not timed, and not counted as a command."""
    await set_up_business_unit(c.saldo)
    for customer in customers:
        await register_customer(c.saldo, customer_id=customer)


async def one_case(c: Client, customer: str) -> dict[str, float]:
    """Seconds per step for one invoice → payment → credit note → refund → payout, to a
    customer registered first (not timed)."""
    await set_up(c, customer)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    invoice = _created(await c.post("invoicing", "/v1/invoices", invoice_body(customer)), "invoice")
    await c.until(lambda: c.found("invoicing", f"/v1/invoices/{invoice['id']}"), "invoice")
    out[STEPS[0]] = time.perf_counter() - t0

    t1, t1_elapsed = t0, 0.0

    async def accepted() -> Any:
        nonlocal t1, t1_elapsed
        t1 = time.perf_counter()
        response = await c.post("payments", "/v1/payments", payment_body(customer, invoice["id"]),
                                record=False)
        t1_elapsed = time.perf_counter() - t1
        return None if response.status_code == 404 else response  # 404: invoice not known yet

    response = await c.until(accepted, "payments accepting the allocation")
    c.commands["payments"].append(t1_elapsed)  # only the accepted POST counts as a command
    c.statuses["payments"][response.status_code] += 1
    payment = _created(response, "payment")
    out[HANDOVERS[0]] = t1 - t0

    async def paid() -> Any:
        found = await c.found("invoicing", f"/v1/invoices/{invoice['id']}")
        return found if found and found["status"] == "paid" else None

    await c.until(paid, "invoice status paid")
    out[STEPS[1]] = time.perf_counter() - t1

    t2 = time.perf_counter()
    _created(await c.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                          {"amount": AMOUNT, "reason": "subscription stopped"}), "credit note")

    async def released() -> Any:
        found = await c.found("payments", f"/v1/payments/{payment['id']}")
        return found if found and found["unallocated"] == AMOUNT else None

    await c.until(released, "payment unallocated")
    out[STEPS[2]] = time.perf_counter() - t2

    async def refundable() -> Any:
        found = await c.found("refunds", f"/v1/payments/{payment['id']}/refundable")
        return found if found and found["refundable"] == AMOUNT else None

    await c.until(refundable, "refundable amount")
    out[HANDOVERS[1]] = time.perf_counter() - t2

    t3 = time.perf_counter()
    refund = _created(await c.post("refunds", "/v1/refunds", refund_body(payment["id"])), "refund")

    async def ready() -> Any:
        items = (await c.get("payouts", "/v1/payouts/ready?limit=500")).json()["items"]
        return next((p for p in items if p["refund_id"] == refund["id"]), None)

    payout = await c.until(ready, "payout in the ready list")
    out[STEPS[3]] = time.perf_counter() - t3

    t4 = time.perf_counter()
    marked = _created(await c.post("payouts", f"/v1/payouts/{payout['id']}/mark-paid-out", {}),
                      "mark paid out")
    # The relay's event id is deterministic: uuid5 of the aggregate id and version (relay.py).
    event_id = uuid5(NAMESPACE_URL, f"saldo:{payout['id']}:{marked['version']}")

    async def posted() -> Any:
        page = (await c.get("accounting-sync", f"/v1/postings?source_event_id={event_id}")).json()
        return page["items"] or None

    await c.until(posted, "PayoutMarkedPaid posting")
    out[STEPS[4]] = time.perf_counter() - t4
    return out


async def run_cases(c: Client, tag: str, iterations: int, warmup: int,
                    say: Callable[[str], None]
                    ) -> tuple[dict[str, list[float]], list[str], list[dict[str, float]]]:
    """`warmup` uncounted cases (consumer groups joining, connections), then `iterations`.

    Returns the seconds per step of the measured cases, failures, and the warm-up cases' steps.
    """
    warmups: list[dict[str, float]] = []
    for i in range(warmup):
        try:
            started = time.perf_counter()
            result = await one_case(c, f"{tag}-warmup-{i}")
            warmups.append(result)
            say(f"warm-up case {i + 1}/{warmup}: {time.perf_counter() - started:.1f} s ("
                + " | ".join(f"{seconds * 1000:.0f}" for seconds in result.values()) + " ms)")
        except Exception as e:  # noqa: BLE001 - reported; the measured cases follow anyway
            say(f"warm-up case {i + 1} failed: {e}")
    c.commands.clear()
    c.queries.clear()
    c.statuses.clear()
    samples: dict[str, list[float]] = {step: [] for step in (*STEPS, *HANDOVERS)}
    failures: list[str] = []
    for i in range(iterations):
        try:
            result = await one_case(c, f"{tag}-case-{i}")
        except Exception as e:  # noqa: BLE001 - a failed case is reported, the run goes on
            failures.append(f"case {i}: {type(e).__name__}: {e}")
            say(f"case {i + 1} failed: {e}")
            continue
        for step, seconds in result.items():
            samples[step].append(seconds)
        say(f"case {i + 1}/{iterations}: "
            + " | ".join(f"{seconds * 1000:.0f}" for seconds in result.values()) + " ms")
    return samples, failures, warmups
