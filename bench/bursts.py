"""Commands/s per service: `n` commands at a fixed concurrency, then until their effects show.

Each burst prepares the next: payments (no allocation) → refunds of them (by bank) → the
payouts those refunds create are marked paid out. Invoicing is its own burst.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.client import Client
from bench.progress import Ticker
from bench.skeleton import invoice_body, payment_body, refund_body, set_up
from bench.stats import Latency

Request = tuple[str, dict[str, Any]]  # path, body


async def burst(c: Client, service: str, requests: list[Request],
                concurrency: int) -> tuple[list[httpx.Response | None], dict[str, Any]]:
    """Send all requests, at most `concurrency` at a time; latency and commands/s."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)
    responses: list[httpx.Response | None] = [None] * len(requests)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    ticker = Ticker(f"{service}: {len(requests)} commands, {concurrency} at a time", len(requests))

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            path, body = requests[i]
            started = time.perf_counter()
            try:
                response = await c.saldo.post(service, path, body)
            except httpx.HTTPError:
                statuses[-1] += 1  # -1: no HTTP answer at all
                continue
            elapsed = time.perf_counter() - started
            statuses[response.status_code] += 1
            if response.is_success:
                latencies.append(elapsed)
            responses[i] = response
            ticker.update(sum(statuses.values()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ok = len(latencies)
    return responses, {
        "commands": len(requests), "succeeded": ok, "concurrency": concurrency,
        "seconds": elapsed, "per_second": ok / elapsed if elapsed else 0.0,
        "latency_ms": Latency.of_seconds(latencies).as_dict(),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def _drain(c: Client, started: float, expected: int, count: Callable[[], Awaitable[int]],
                 what: str) -> dict[str, Any]:
    """Seconds from the burst's start until `count()` reaches `expected`."""
    seen = 0

    async def reached() -> bool:
        nonlocal seen
        seen = await count()
        return seen >= expected

    try:
        await c.until(reached, what, poll_s=0.05)
    except Exception as e:  # noqa: BLE001 - reported in the results
        return {"what": what, "expected": expected, "seen": seen, "error": str(e)}
    seconds = time.perf_counter() - started
    return {"what": what, "expected": expected, "seconds": seconds,
            "per_second": expected / seconds}


def _refundable(c: Client, payment_id: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    return lambda: c.found("refunds", f"/v1/payments/{payment_id}/refundable")


def _ids(responses: list[httpx.Response | None]) -> list[dict[str, Any]]:
    return [r.json() for r in responses if r is not None and r.is_success]


async def run_bursts(c: Client, tag: str, n: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    customer = f"{tag}-burst"
    await set_up(c, customer)  # before the clock starts: an operator registers the customer once

    started = time.perf_counter()
    responses, out["invoicing"] = await burst(
        c, "invoicing", [("/v1/invoices", invoice_body(customer))] * n, concurrency)
    ok = len(_ids(responses))
    out["invoicing"]["drain"] = await _drain(
        c, started, ok, lambda: c.count_pages("invoicing", f"/v1/invoices?customer_id={customer}"),
        "all issued invoices in the invoicing read model")

    started = time.perf_counter()
    responses, out["payments"] = await burst(
        c, "payments", [("/v1/payments", payment_body(customer, None))] * n, concurrency)
    payments = _ids(responses)
    out["payments"]["drain"] = await _drain(
        c, started, len(payments),
        lambda: c.count_pages("payments", f"/v1/payments?customer_id={customer}"),
        "all payments in the payments read model")
    for payment in payments:  # refunds must know each payment before it can refund it
        await c.until(_refundable(c, payment["id"]), "payment known to refunds")

    started = time.perf_counter()
    responses, out["refunds"] = await burst(
        c, "refunds", [("/v1/refunds", refund_body(p["id"])) for p in payments], concurrency)
    refunds = {r["id"] for r in _ids(responses)}
    out["refunds"]["drain"] = await _drain(
        c, started, len(refunds),
        lambda: c.count_pages("payouts", "/v1/payouts/ready", lambda p: p["refund_id"] in refunds),
        "a ready payout for every refund")

    payouts: list[str] = []
    cursor = None
    while True:  # the ready list, all pages
        after = f"&after={cursor}" if cursor else ""
        page = (await c.get("payouts", f"/v1/payouts/ready?limit=500{after}")).json()
        payouts += [p["id"] for p in page["items"] if p["refund_id"] in refunds]
        if not (cursor := page.get("next_cursor")):
            break
    def paid_out_postings() -> Awaitable[int]:
        return c.count_pages("accounting-sync", "/v1/postings",
                             lambda p: p["source_event_type"] == "PayoutMarkedPaid")

    before = await paid_out_postings()  # the single cases' payouts
    started = time.perf_counter()
    responses, out["payouts"] = await burst(
        c, "payouts", [(f"/v1/payouts/{p}/mark-paid-out", {}) for p in payouts], concurrency)
    marked = len(_ids(responses))

    async def new_paid_out_postings() -> int:
        return await paid_out_postings() - before

    out["payouts"]["drain"] = await _drain(
        c, started, marked, new_paid_out_postings,
        "a PayoutMarkedPaid posting for every payout (accounting read model)")
    return out
