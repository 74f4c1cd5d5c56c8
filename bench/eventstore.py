"""Appending to the event store: the product's path and the bare `eventsourcing` loop.

`fill` puts the events the relay will publish into a fresh invoicing event store: the business
unit set up and its customers registered first, as an operator does (rules M4, C1), then
invoices to them, issued as the product issues them (channel, FIK reference, buyer and seller).
`bare_append_loop` is ceiling (a): a minimal `eventsourcing` Application, one aggregate per
save, nothing of Saldo's. `saldo_append_loop` is the same loop through InvoicingApplication.
`aggregate_replay` loads an aggregate with many events (replay speed) and times the
`issue_invoice` command that has to load it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any, cast
from uuid import uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.progress import Ticker
from bench.stats import Rate
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import Invoice, InvoiceLine, InvoiceNumbers, Terms
from saldo_kernel.money import Money
from saldo_platform.context import Context, acting
from saldo_platform.eventstore import persistence_env
from tests.inprocess import register_customer, set_up_business_unit

BUSINESS_UNIT = "bench"
LINES: list[InvoiceLine] = [{"description": "Magazine, 12 months", "amount": Money(49900, "DKK")}]
DUE = date(2026, 12, 31)
CUSTOMERS = 10  # registered before the first invoice; the invoices go round them


def context() -> Context:
    """What an HTTP command would store with its events (the relay publishes it)."""
    return Context(business_unit=BUSINESS_UNIT, actor="api-key:bench",
                   correlation_id=str(uuid4()))


def set_up(app: InvoicingApplication, unit: str = BUSINESS_UNIT, customers: int = CUSTOMERS) -> list[Terms]:
    """The unit's business entity and `customers` customers (cust-0, cust-1, …), registered as an
    operator's PUTs register them (rules M4, C1; again, nothing is written); the terms an invoice
    to each of them is issued with (channel C3, FIK creditor I1, buyer and seller)."""
    entity = set_up_business_unit(app, unit)
    return [Terms.of(entity=entity, customer=register_customer(app, unit, f"cust-{n}"))
            for n in range(customers)]


def _issue(numbers: InvoiceNumbers, terms: list[Terms]) -> Invoice:
    """The next invoice, to the next customer in turn, through the product's `Invoice.issue`."""
    customer = (numbers.last + 1) % len(terms)
    return Invoice.issue(numbers=numbers, customer_id=f"cust-{customer}", lines=LINES, due_date=DUE,
                         terms=terms[customer])


def _numbers(after: int) -> InvoiceNumbers:
    """A number sequence at `after`, never saved: the store gets the invoices only, each of them
    an event the relay publishes (the product saves the sequence with each invoice)."""
    numbers = InvoiceNumbers(business_unit=BUSINESS_UNIT)
    for _ in range(after):
        numbers.take()
    numbers.collect_events()
    return numbers


def fill(app: InvoicingApplication, events: int, batch: int = 100) -> Rate:
    """`events` events: the unit set up with its customers (1 + CUSTOMERS events), then
    Invoice.Issued for the rest, `batch` invoices per transaction (setup, fast path)."""
    if events <= 1 + CUSTOMERS:
        raise ValueError(f"--events must be above {1 + CUSTOMERS}: the unit and its customers come first")
    ticker = Ticker("appending events for the relay", events)
    started = time.perf_counter()
    terms = set_up(app)
    numbers = _numbers(0)
    with acting(context()):
        for first in range(1 + CUSTOMERS, events, batch):
            app.save(*[_issue(numbers, terms) for _ in range(first, min(first + batch, events))])
            numbers.collect_events()  # not saved, see _numbers
            ticker.update(min(first + batch, events))
    return Rate(events, time.perf_counter() - started)


class Counter(Aggregate):
    """The smallest aggregate there is."""

    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name


class BareApplication(Application):  # type: ignore[type-arg]
    name = "bare"


def bare_append_loop(database_url: str, seconds: float, max_events: int) -> Rate:
    """Ceiling (a): `app.save(aggregate)` in a loop, one event per transaction."""
    app = BareApplication(env=persistence_env(database_url))
    try:
        return _timed_loop(lambda i: app.save(Counter(f"c{i}")), seconds, max_events,
                           "bare eventsourcing append loop")
    finally:
        app.close()


def saldo_append_loop(app: InvoicingApplication, seconds: float, max_events: int,
                      first_number: int) -> Rate:
    """The same loop through Saldo's application: metadata mapper, process recorder, an Invoice."""
    terms = set_up(app)  # done by `fill` already: writes nothing
    numbers = _numbers(first_number - 1)

    def step(_: int) -> None:
        app.save(_issue(numbers, terms))
        numbers.collect_events()  # not saved, see _numbers

    with acting(context()):
        return _timed_loop(step, seconds, max_events, "Saldo append loop (InvoicingApplication.save)")


def issue_invoice_loop(app: InvoicingApplication, seconds: float, max_invoices: int,
                       unit: str = f"{BUSINESS_UNIT}-issue") -> Rate:
    """Invoices issued in process per second: the whole `issue_invoice` command (entity and
    customer loaded, channel resolved, next number, FIK reference, saved with the sequence), one
    at a time, in a unit of its own."""
    set_up(app, unit)
    with acting(Context(business_unit=unit, actor="api-key:bench", correlation_id=str(uuid4()))):
        return _timed_loop(
            lambda i: app.issue_invoice(business_unit=unit, customer_id=f"cust-{i % CUSTOMERS}",
                                        lines=LINES, due_date=DUE),
            seconds, max_invoices, "issue_invoice in process")


def _timed_loop(step: Callable[[int], object], seconds: float, max_events: int,
                what: str) -> Rate:
    ticker = Ticker(f"{what} (≤{seconds:.0f} s)", max_events)
    started = time.perf_counter()
    deadline = started + seconds
    done = 0
    while done < max_events and time.perf_counter() < deadline:
        step(done)
        done += 1
        if done % 200 == 0:
            ticker.update(done)
    elapsed = time.perf_counter() - started
    ticker.update(max_events)
    return Rate(done, elapsed)


def aggregate_replay(app: InvoicingApplication, invoices_before: int,
                     probes: int = 3) -> dict[str, float]:
    """Replay of one aggregate with many events, and what that costs `issue_invoice`.

    A business unit's InvoiceNumbers aggregate gets one event per invoice ever issued, and
    `issue_invoice` loads it on every call. Returns events/s of loading it and the median
    time of `issue_invoice` in a fresh unit and in one with `invoices_before` invoices.
    """
    unit, fresh_unit = f"replay-{uuid4().hex[:6]}", f"fresh-{uuid4().hex[:6]}"
    for each in (unit, fresh_unit):  # set up first, not timed: issue_invoice needs them (M4, C1)
        set_up(app, each, customers=2)
    numbers = InvoiceNumbers(business_unit=unit)
    with acting(context()):
        # Saved through the application, a thousand at a time, so its snapshots are taken as
        # they are when invoices are issued one by one.
        for taken in range(invoices_before):
            numbers.take()
            if taken % 1000 == 999 or taken == invoices_before - 1:
                app.save(numbers)
    started = time.perf_counter()
    # The whole history, as an audit replay reads it; issue_invoice starts from a snapshot.
    loaded: Any = None
    for stored in app.events.get(InvoiceNumbers.create_id(unit)):
        loaded = cast(Any, stored).mutate(loaded)
    replay_s = time.perf_counter() - started
    assert loaded.last == invoices_before
    return {
        "aggregate_events": invoices_before + 1,
        "replay_seconds": replay_s,
        "replay_events_per_second": (invoices_before + 1) / replay_s,
        "issue_invoice_ms_fresh_unit": _median_issue_ms(app, fresh_unit, probes),
        "issue_invoice_ms_after_n_invoices": _median_issue_ms(app, unit, probes),
    }


def _median_issue_ms(app: InvoicingApplication, unit: str, probes: int) -> float:
    times = []
    with acting(Context(business_unit=unit, actor="api-key:bench", correlation_id=str(uuid4()))):
        for _ in range(probes):
            started = time.perf_counter()
            app.issue_invoice(business_unit=unit, customer_id="cust-1", lines=LINES, due_date=DUE)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000
