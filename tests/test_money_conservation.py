"""Rule M6, money is conserved, as a property: random sequences of what operators do, through the
real applications over HTTP, and after every step the books of every business unit add up.

Each sequence has two business units, set up as operators do before invoicing: unit 0 invoices
in DKK, unit 1 in EUR (the business entity's currency, rule M4), each with customers alice and
bob registered (rule C1). The steps: issue an invoice (in another currency than the unit's it is
refused); receive a payment, loose or allocated at once (to any invoice: of
another customer, unit or currency, above what is open: the refusals are part of the test);
allocate later; issue a credit note; refund by bank; mark a payout paid out; send an earlier
request again with its Idempotency-Key and body. After each step every relay and consumer is
waited for until it reached the end of its topics (never a sleep), then tests/money.py checks,
for every payment, customer and business unit: amount = allocated + unallocated, unallocated =
refundable + in progress + refunded, no invoice paid above its total, the ledger's accounts
and a trial balance of zero, and that nothing was dead-lettered.

Profiles (SALDO_PROPERTY_PROFILE):
- default: the embedded product in this process (SQLite, in-process bus, httpx over ASGI), ten
  sequences of up to ten steps, derandomized, for every CI run (about half a minute); plus the
  distributed services (PostgreSQL, Kafka, OS processes) for two short sequences, so that path
  is never dead code.
- `long`: many more and longer sequences, randomized (hypothesis prints the failing sequence
  and a `@reproduce_failure` blob), in both modes.
SALDO_PROPERTY_SHRINK=0 reports a failing sequence as found, without minimising it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from saldo_platform.cli import host_app, open_api_keys
from saldo_platform.http.auth import ApiKeys
from saldo_platform.settings import SERVICES, Settings
from tests.money import assert_conserved, read_books
from tests.scenarios import register_customer, set_up_business_unit
from tests.support import Process, Saldo, dead_letters, settled

T = TypeVar("T")
LONG = os.environ.get("SALDO_PROPERTY_PROFILE") == "long"
# SALDO_PROPERTY_SHRINK=0: report the first failing sequence as found, without minimising it
# (each try runs real services, so shrinking a failure can take minutes).
SHRINK = os.environ.get("SALDO_PROPERTY_SHRINK", "1") != "0"
BANK = {"registration_number": "1234", "account_number": "0001234567"}


def profile(examples: int, steps: int, long_examples: int, long_steps: int,
            shrink: bool = True) -> settings:
    return settings(
        max_examples=long_examples if LONG else examples,
        stateful_step_count=long_steps if LONG else steps,
        deadline=None,
        derandomize=not LONG,  # CI: the same sequences every run; long: new ones, printed on failure
        database=None,  # nothing written into the work tree
        print_blob=True,
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if shrink and SHRINK else [])],
        suppress_health_check=list(HealthCheck),  # each step waits for real services
        report_multiple_bugs=False,
    )


IN_PROCESS = profile(examples=10, steps=10, long_examples=200, long_steps=40)
DISTRIBUTED = profile(examples=2, steps=6, long_examples=25, long_steps=30, shrink=LONG)


# --- the product, as the state machine (in its own thread) drives it ------------------------------

@dataclass
class Sent:
    """A request made, so that it can be sent again with the same Idempotency-Key and body."""

    kind: str
    service: str
    path: str
    body: Any
    unit: str
    key: str
    status: int
    text: str


class World:
    """A running Saldo, its event loop and its key store; the machine calls it from its thread."""

    def __init__(self, saldo: Saldo, keys: ApiKeys, loop: asyncio.AbstractEventLoop,
                 dead_letters_each_step: bool) -> None:
        self.saldo, self.keys, self.loop = saldo, keys, loop
        self.dead_letters_each_step = dead_letters_each_step
        self.steps = 0
        self.settle_seconds = 0.0
        self.outcomes = Counter[str]()  # "kind status", to see what the sequences exercised

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=300)

    def new_unit(self, currency: str, customers: list[str]) -> str:
        """A fresh business unit invoicing in `currency` (rule M4), `customers` registered (C1)."""
        unit = f"prop-{uuid.uuid4().hex[:8]}"
        self.saldo.keys[unit] = self.run(self.keys.create(unit, ["admin"], "property test"))
        self.run(set_up_business_unit(self.saldo, unit, currency))
        for customer in customers:
            self.run(register_customer(self.saldo, unit, customer))
        return unit

    def post(self, service: str, path: str, body: Any, unit: str, key: str) -> httpx.Response:
        response = self.run(self.saldo.post(service, path, body, business_unit=unit, key=key))
        assert response.status_code < 500, f"POST {path}: {response.status_code} {response.text}"
        # Steps run one at a time and wait for the services to settle: nothing may conflict.
        assert response.status_code != 409, f"POST {path}: {response.text}"
        return response

    def read(self, service: str, path: str, unit: str) -> dict[str, Any]:
        response = self.run(self.saldo.get(service, path, unit))
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()  # type: ignore[no-any-return]

    def settle(self) -> None:
        started = time.monotonic()
        self.run(settled(self.saldo))
        self.settle_seconds += time.monotonic() - started
        self.steps += 1


@dataclass(frozen=True)
class Invoice:
    id: str
    unit: int
    customer: str
    currency: str
    total: int


@dataclass(frozen=True)
class Payment:
    id: str
    unit: int
    customer: str
    currency: str
    amount: int


UNITS = st.sampled_from([0, 1])
UNIT_CURRENCIES = ["DKK", "EUR"]  # what each unit invoices in: its business entity's (rule M4)
CUSTOMER_IDS = ["alice", "bob"]  # registered in both units before the first step (rule C1)
CUSTOMERS = st.sampled_from(CUSTOMER_IDS)
CURRENCIES = st.sampled_from(["DKK", "DKK", "DKK", "EUR"])
# An invoice mostly in its unit's currency; sometimes in another one, which is refused (M4).
INVOICE_CURRENCIES = st.sampled_from(["own", "own", "own", "other"])
AMOUNTS = st.integers(1, 1500)
# Who pays an invoice when it is not its own customer: money must not go there (rule M6).
STRANGERS = st.sampled_from(["another customer", "another currency", "another unit"])
KINDS_CREATING = {"invoice": "invoices", "payment": "payments", "refund": "refunds",
                  "paid_out": "paid_out"}


def amount_near(data: st.DataObject, fits: int, edges: list[int]) -> int:
    """An amount to ask for: mostly all or half of what `fits`; else one at or just above an
    edge where some rule changes its answer (what is open, unallocated, credited, …); or any."""
    edges = sorted({e + d for e in [fits, *edges] for d in (0, 1) if e + d > 0})
    return data.draw(st.one_of(
        st.sampled_from([max(fits, 1), max(fits // 2, 1)]),
        st.sampled_from(edges),
        st.integers(1, 1500) if data.draw(st.booleans()) else st.sampled_from(edges),
    ))


class MoneyIsConserved(RuleBasedStateMachine):
    """Each step also knows, from the settled read models, whether it must be accepted: so a
    service refusing what it may not refuse fails the test as surely as one taking too much."""

    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        # Fresh business units for each sequence: one Saldo serves them all, and the units'
        # books are apart (rule M3), so every sequence starts from nothing.
        self.units = [self.world.new_unit(currency, CUSTOMER_IDS) for currency in UNIT_CURRENCIES]
        self.made = {unit: Counter[str]() for unit in self.units}
        self.sent: list[Sent] = []
        self.invoices: list[Invoice] = []
        self.payments: list[Payment] = []
        self.retries = 0

    def post(self, kind: str, service: str, path: str, body: Any, unit: int,
             expected: int) -> httpx.Response:
        key = str(uuid.uuid4())
        response = self.world.post(service, path, body, self.units[unit], key)
        assert response.status_code == expected, \
            f"{kind} {body}: expected {expected}, got {response.status_code} {response.text}"
        self.world.outcomes[f"{kind} {response.status_code}"] += 1
        if 200 <= response.status_code < 300 and kind in KINDS_CREATING:
            self.made[self.units[unit]][KINDS_CREATING[kind]] += 1
        self.sent.append(Sent(kind, service, path, body, self.units[unit], key,
                              response.status_code, response.text))
        return response

    def read(self, service: str, path: str, unit: int) -> dict[str, Any]:
        return self.world.read(service, path, self.units[unit])

    def open_amount(self, invoice: Invoice) -> int:
        """What invoicing shows as still to pay: total − credited − paid (rule M6)."""
        shown = self.read("invoicing", f"/v1/invoices/{invoice.id}", invoice.unit)
        return int(shown["total"]["amount"] - shown["credited"] - shown["paid"])

    def placeable(self, payment: Payment) -> int:
        """Unallocated and not promised to a refund: what refunds shows as refundable (P3)."""
        return int(self.read("refunds", f"/v1/payments/{payment.id}/refundable",
                             payment.unit)["refundable"])

    @staticmethod
    def payer_of(invoice: Invoice, payer: str) -> tuple[int, str, str]:
        """(unit, customer, currency) of someone paying `invoice`: its own customer, or not."""
        unit, customer, currency = invoice.unit, invoice.customer, invoice.currency
        if payer == "another customer":
            customer = "bob" if customer == "alice" else "alice"
        elif payer == "another currency":
            currency = "EUR" if currency == "DKK" else "DKK"
        elif payer == "another unit":
            unit = 1 - unit
        return unit, customer, currency

    def money_left(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Per payment what is unallocated, per invoice what is open and what may be credited,
        as the lists show them: for choosing targets where something can happen."""
        unallocated = {p["id"]: p["unallocated"] for unit in (0, 1)
                       for p in self.read("payments", "/v1/payments?limit=500", unit)["items"]}
        invoices = [i for unit in (0, 1)
                    for i in self.read("invoicing", "/v1/invoices?limit=500", unit)["items"]]
        open_ = {i["id"]: i["total"]["amount"] - i["credited"] - i["paid"] for i in invoices}
        creditable = {i["id"]: i["total"]["amount"] - i["credited"] for i in invoices}
        return unallocated, open_, creditable

    def pair(self, data: st.DataObject, payer: str) -> tuple[Payment, Invoice]:
        """A payment and an invoice for it: of its own customer, unit and currency, or not.

        Own pairs with money left on both sides are preferred, so that sequences place money
        often instead of mostly being refused.
        """
        unallocated, open_, _ = self.money_left()
        pairs = [(p, i) for p in self.payments for i in self.invoices
                 if (p.unit, p.customer, p.currency) == self.payer_of(i, payer)]
        # Money on both sides: then only the rule under test can refuse it.
        both = [(p, i) for p, i in pairs if unallocated.get(p.id, 0) > 0 and open_.get(i.id, 0) > 0]
        choice = both or pairs or [(p, i) for p in self.payments for i in self.invoices]
        return data.draw(st.sampled_from(choice))

    @staticmethod
    def likely(data: st.DataObject, items: list[T], worth_it: list[T]) -> T:
        """Mostly one where something is left to do, sometimes any (then often refused)."""
        if worth_it and data.draw(st.sampled_from([True, True, True, False])):
            return data.draw(st.sampled_from(worth_it))
        return data.draw(st.sampled_from(items))

    def refusal(self, invoice: Invoice, unit: int, customer: str, currency: str,
                amount: int) -> int | None:
        """404 for another unit's invoice (M3), 422 where rule M6 refuses, None if it may go."""
        if invoice.unit != unit:
            return 404
        if (invoice.customer, invoice.currency) != (customer, currency):
            return 422
        return 422 if amount > self.open_amount(invoice) else None

    # --- the steps ----------------------------------------------------------------------------

    @initialize(invoice=AMOUNTS, payment=st.integers(2, 1500), refunded=st.integers(1, 1000),
                unit=UNITS)
    def a_customer_with_an_invoice_money_to_place_and_a_refund_paid_out(
            self, invoice: int, payment: int, refunded: int, unit: int) -> None:
        """Every sequence starts where placing, crediting, refunding and paying out all can
        happen, and with money already refunded: each step has all of M6 to keep."""
        self.issue_invoice(unit, "alice", "own", invoice)
        self.receive_loose_payment(unit, "alice", UNIT_CURRENCIES[unit], payment, 60)
        self.world.settle()
        refund = self.post("refund", "refunds", "/v1/refunds", {
            "payment_id": self.payments[-1].id, "amount": min(refunded, payment - 1),
            "reason": "money back", "channel": "bank", "bank_account": BANK}, unit, 201)
        self.world.settle()
        [payout] = [p for p in self.read("payouts", "/v1/payouts/ready?limit=500", unit)["items"]
                    if p["refund_id"] == refund.json()["id"]]
        self.post("paid_out", "payouts", f"/v1/payouts/{payout['id']}/mark-paid-out", {}, unit, 200)

    @rule(unit=UNITS, customer=CUSTOMERS, which=INVOICE_CURRENCIES, amount=AMOUNTS)
    def issue_invoice(self, unit: int, customer: str, which: str, amount: int) -> None:
        """In the unit's own currency, or in another one: refused, nothing written (rule M4)."""
        own = UNIT_CURRENCIES[unit]
        currency = own if which == "own" else next(c for c in UNIT_CURRENCIES if c != own)
        response = self.post("invoice", "invoicing", "/v1/invoices", {
            "customer_id": customer, "currency": currency, "due_date": "2026-12-31",
            "lines": [{"description": "subscription", "amount": amount}]}, unit,
            201 if currency == own else 422)
        if response.status_code == 201:
            self.invoices.append(Invoice(response.json()["id"], unit, customer, currency, amount))

    @rule(unit=UNITS, customer=CUSTOMERS, currency=CURRENCIES, amount=AMOUNTS,
          minutes=st.integers(0, 60 * 24 * 30))
    def receive_loose_payment(self, unit: int, customer: str, currency: str, amount: int,
                              minutes: int) -> None:
        body = self._payment(customer, currency, amount, minutes, [])
        response = self.post("payment", "payments", "/v1/payments", body, unit, 201)
        self.payments.append(Payment(response.json()["id"], unit, customer, currency, amount))

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), second=st.sampled_from(["none", "none", "own", "another"]),
          extra=st.one_of(st.just(0), st.integers(1, 1000)))
    def pay_own_invoices(self, data: st.DataObject, second: str, extra: int) -> None:
        self.receive_allocated_payment(data, "own", second, extra)

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), payer=STRANGERS, extra=st.one_of(st.just(0), st.integers(1, 1000)))
    def pay_someone_elses_invoice(self, data: st.DataObject, payer: str, extra: int) -> None:
        self.receive_allocated_payment(data, payer, "none", extra)

    def receive_allocated_payment(self, data: st.DataObject, payer: str, second: str,
                                  extra: int) -> None:
        """Paying one or two invoices at once: the payer's own, or not (then refused, M6)."""
        first = data.draw(st.sampled_from(self.invoices))
        unit, customer, currency = self.payer_of(first, payer)
        targets = [first]
        if second != "none":
            mine = [i for i in self.invoices if i.id != first.id
                    and (i.unit, i.customer, i.currency) == (first.unit, first.customer, first.currency)]
            other = [i for i in self.invoices if i.id != first.id and i not in mine]
            choice = (mine if second == "own" else other) or mine or other
            if choice:
                targets.append(data.draw(st.sampled_from(choice)))
        amounts = []
        for target in targets:
            shown = self.read("invoicing", f"/v1/invoices/{target.id}", target.unit)
            total, paid = shown["total"]["amount"], shown["paid"]
            amounts.append(amount_near(data, total - shown["credited"] - paid, [total - paid, total]))
        refusals = {self.refusal(i, unit, customer, currency, a)
                    for i, a in zip(targets, amounts, strict=True)}
        expected = 404 if 404 in refusals else 422 if 422 in refusals else 201
        allocations = [(i.id, a) for i, a in zip(targets, amounts, strict=True)]
        amount = sum(amounts) + extra
        body = self._payment(customer, currency, amount, 0, allocations)
        response = self.post("payment", "payments", "/v1/payments", body, unit, expected)
        if response.status_code == 201:
            self.payments.append(Payment(response.json()["id"], unit, customer, currency, amount))

    @precondition(lambda self: self.invoices and self.payments)
    @rule(data=st.data())
    def allocate_later_to_own_invoice(self, data: st.DataObject) -> None:
        self.allocate_later(data, "own")

    @precondition(lambda self: self.invoices and self.payments)
    @rule(data=st.data(), payer=STRANGERS)
    def allocate_later_to_someone_elses(self, data: st.DataObject, payer: str) -> None:
        self.allocate_later(data, payer)

    def allocate_later(self, data: st.DataObject, payer: str) -> None:
        payment, invoice = self.pair(data, payer)
        placeable = self.placeable(payment)
        unallocated = self.read("payments", f"/v1/payments/{payment.id}", payment.unit)["unallocated"]
        shown = self.read("invoicing", f"/v1/invoices/{invoice.id}", invoice.unit)
        total, paid = shown["total"]["amount"], shown["paid"]
        open_ = total - shown["credited"] - paid
        amount = amount_near(data, min(open_, placeable),
                             [open_, placeable, unallocated, total - paid, total])
        expected = self.refusal(invoice, payment.unit, payment.customer, payment.currency, amount)
        if expected is None:
            expected = 422 if amount > placeable else 200
        self.post("allocation", "payments", f"/v1/payments/{payment.id}/allocations",
                  {"invoice_id": invoice.id, "amount": amount}, payment.unit, expected)

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def credit_note(self, data: st.DataObject) -> None:
        _, _, creditable_now = self.money_left()
        invoice = self.likely(data, self.invoices,
                              [i for i in self.invoices if creditable_now.get(i.id, 0) > 0])
        shown = self.read("invoicing", f"/v1/invoices/{invoice.id}", invoice.unit)
        creditable = shown["total"]["amount"] - shown["credited"]
        amount = amount_near(data, creditable, [invoice.total])
        self.post("credit", "invoicing", f"/v1/invoices/{invoice.id}/credit-notes",
                  {"amount": amount, "reason": "subscription stopped"}, invoice.unit,
                  201 if amount <= creditable else 422)

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def refund_by_bank(self, data: st.DataObject) -> None:
        unallocated, _, _ = self.money_left()
        payment = self.likely(data, self.payments,
                              [p for p in self.payments if unallocated.get(p.id, 0) > 0])
        refundable = self.placeable(payment)
        amount = amount_near(data, refundable, [unallocated.get(payment.id, 0), payment.amount])
        self.post("refund", "refunds", "/v1/refunds", {
            "payment_id": payment.id, "amount": amount, "reason": "money back", "channel": "bank",
            "bank_account": BANK}, payment.unit, 201 if amount <= refundable else 422)

    @precondition(lambda self: any(m["refunds"] > m["paid_out"] for m in self.made.values()))
    @rule(data=st.data())
    def mark_paid_out(self, data: st.DataObject) -> None:
        unit = data.draw(st.sampled_from([u for u, unit in enumerate(self.units)
                                          if self.made[unit]["refunds"] > self.made[unit]["paid_out"]]))
        ready = self.read("payouts", "/v1/payouts/ready?limit=500", unit)["items"]
        assert ready, "a refund by bank with a bank account is ready for payout (rule B2)"
        payout = data.draw(st.sampled_from(sorted(p["id"] for p in ready)))
        self.post("paid_out", "payouts", f"/v1/payouts/{payout}/mark-paid-out", {}, unit, 200)

    # At most one retry for every three requests, so that retries do not crowd out the rest.
    @precondition(lambda self: len(self.sent) > 3 * self.retries)
    @rule(data=st.data())
    def retry_with_the_same_key(self, data: st.DataObject) -> None:
        """The client sends an earlier request again: same Idempotency-Key, same body."""
        self.retries += 1
        sent = data.draw(st.sampled_from(self.sent))
        again = self.world.post(sent.service, sent.path, sent.body, sent.unit, sent.key)
        self.world.outcomes[f"retry {sent.kind} {again.status_code}"] += 1
        if 200 <= sent.status < 300:  # replayed, not run again
            assert (again.status_code, again.json()) == (sent.status, json.loads(sent.text))
            assert again.headers.get("idempotent-replayed") == "true"
            return
        # A refusal is not stored: the retry runs again and may pass now (e.g. more refundable).
        assert again.status_code < 500
        if 200 <= again.status_code < 300:
            sent.status, sent.text = again.status_code, again.text
            if sent.kind in KINDS_CREATING:
                self.made[sent.unit][KINDS_CREATING[sent.kind]] += 1

    @staticmethod
    def _payment(customer: str, currency: str, amount: int, minutes: int,
                 allocations: list[tuple[str, int]]) -> dict[str, Any]:
        received_at = datetime.now(UTC) - timedelta(minutes=minutes)
        return {"customer_id": customer, "method": "bank_transfer", "amount": amount,
                "currency": currency, "received_at": received_at.isoformat(),
                "provider_reference": f"ref-{uuid.uuid4().hex[:6]}",
                "allocations": [{"invoice_id": i, "amount": a} for i, a in allocations]}

    # --- after every step --------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self) -> None:
        """Rule M6 (with P2, P3, I2, I3, A1, M3) in every business unit, once all has settled."""
        self.world.settle()
        for unit in self.units:
            books = self.world.run(read_books(self.world.saldo, unit))
            assert_conserved(books)
            made = self.made[unit]
            # Refused commands wrote nothing; accepted ones each made exactly one thing.
            assert (len(books.invoices), len(books.payments), len(books.refunds)) == \
                (made["invoices"], made["payments"], made["refunds"]), (unit, made)
            assert sum(r["status"] == "completed" for r in books.refunds) == made["paid_out"]
        if self.world.dead_letters_each_step:
            assert self.world.run(dead_letters(self.world.saldo)) == []


async def run_machine(world: World, how: settings) -> None:
    machine = type("MoneyIsConservedHere", (MoneyIsConserved,), {"world": world})
    started = time.monotonic()
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=how)
    took = time.monotonic() - started
    print(f"\nproperty test: {world.steps} settled steps in {took:.1f} s "
          f"({world.settle_seconds:.1f} s waiting for the services to settle); "
          + ", ".join(f"{k}: {n}" for k, n in sorted(world.outcomes.items())))


# --- the embedded product in this process ----------------------------------------------------------

@asynccontextmanager
async def in_process(var: Path) -> AsyncIterator[tuple[Saldo, ApiKeys]]:
    """`saldo embedded` as cli.host_app builds it, served to httpx over ASGI in this event loop."""
    env = {**os.environ, "SALDO_MODE": "embedded", "SALDO_VAR_DIR": str(var)}
    for name in ("SALDO_DATABASE_URL", "SALDO_KAFKA_BOOTSTRAP", "SALDO_AUTH_DATABASE"):
        env.pop(name, None)
    settings_ = Settings.from_env(env)
    app = host_app(settings_, list(SERVICES))
    failed: list[BaseException] = []
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://saldo",
                                   timeout=60)
        # Not started: it stands for this process where tests/support.py asks what runs.
        here = Process(["embedded"], env, var / "embedded.log")
        saldo = Saldo({s: f"http://saldo/{s}" for s in SERVICES}, {}, env, {"embedded": here}, client)
        keys = await open_api_keys(settings_)
        try:
            yield saldo, keys
        except BaseException as e:
            # Raised through the lifespan it would skip the app's shutdown (as a server never
            # does), leave its SQLite threads running and keep pytest from exiting.
            failed.append(e)
        finally:
            await client.aclose()
            await keys.close()
    if failed:
        raise failed[0]


async def test_M6_money_is_conserved_in_process(tmp_path: Path) -> None:
    """Rule M6 as a property, the embedded product in this process (fast: every CI run)."""
    async with in_process(tmp_path / "var") as (saldo, keys):
        world = World(saldo, keys, asyncio.get_running_loop(), dead_letters_each_step=True)
        await run_machine(world, IN_PROCESS)


async def test_M6_money_is_conserved_distributed(distributed: Saldo) -> None:
    """Rule M6 as a property through the services on PostgreSQL and Kafka (few steps in CI;
    SALDO_PROPERTY_PROFILE=long for many)."""
    keys = await open_api_keys(Settings.from_env(distributed.env))
    try:
        world = World(distributed, keys, asyncio.get_running_loop(), dead_letters_each_step=False)
        await run_machine(world, DISTRIBUTED)
        assert await dead_letters(distributed) == []
    finally:
        await keys.close()

