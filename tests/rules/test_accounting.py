"""Accounting's rules in process: the application, its policy and its ledger, no servers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from saldo_accounting import queries
from saldo_accounting.application import AccountingApplication
from saldo_accounting.domain import Account, Posting
from saldo_accounting.integration import to_integration
from saldo_accounting.policies import RecordPostings
from saldo_accounting.projections import LedgerProjection
from saldo_events import accounting as accounting_events
from saldo_events.envelope import IntegrationEvent
from saldo_events.envelope import Money as MoneyJSON
from saldo_events.invoicing import CreditNoteIssued, InvoiceIssued, InvoiceLine
from saldo_events.payments import Allocation, AmountReleased, PaymentAllocated, PaymentReceived
from saldo_events.payouts import PayoutDrafted, PayoutMarkedPaid
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money
from saldo_platform.http.pages import BEGINNING, Paging, decode_cursor
from tests.inprocess import announced, deliver, in_memory, project_published, read_models

TOPICS = ["saldo.invoicing.v1", "saldo.payments.v1", "saldo.payouts.v1"]


def dkk(amount: int) -> MoneyJSON:
    return MoneyJSON(amount=amount, currency="DKK")


def invoice_issued(total: int = 49900, business_unit: str = "bu-1") -> InvoiceIssued:
    return announced(InvoiceIssued, business_unit=business_unit, invoice_id=uuid4(), number=1,
                     customer_id="alice", total=dkk(total), due_date=date(2026, 12, 1),
                     lines=[InvoiceLine(description="issue", amount=total)])


def financial_events() -> list[IntegrationEvent]:
    """An invoice paid by card, the rest placed on a second invoice, the first credited in
    part, released and paid back to the bank: every invoice settled, 1.00 kr. left as credit."""
    first, second, payment_id = invoice_issued(49900), invoice_issued(10000), uuid4()
    return [
        first,
        second,
        announced(PaymentReceived, payment_id=payment_id, customer_id="alice", method="card",
                  amount=dkk(60000), received_at=datetime.now(UTC),
                  allocations=[Allocation(invoice_id=first.invoice_id, amount=49900)]),
        announced(PaymentAllocated, payment_id=payment_id, invoice_id=second.invoice_id,
                  amount=dkk(10000)),
        announced(CreditNoteIssued, invoice_id=first.invoice_id, credit_note_id=uuid4(),
                  customer_id="alice", amount=dkk(20000), reason="cancelled"),
        announced(AmountReleased, payment_id=payment_id, invoice_id=first.invoice_id,
                  credit_note_id=uuid4(), customer_id="alice", amount=dkk(20000)),
        announced(PayoutMarkedPaid, payout_id=uuid4(), refund_id=uuid4(), customer_id="alice",
                  amount=dkk(20000), posting_date=date(2026, 11, 23), bank_date=date(2026, 11, 23)),
    ]


def lines_of(posting: Posting) -> set[tuple[str, int, int]]:
    return {(str(x.account), x.debit.minor_units, x.credit.minor_units) for x in posting.lines}


def posting_of(app: AccountingApplication, event: IntegrationEvent) -> Posting:
    posting: Posting = app.repository.get(Posting.create_id(event.event_id))
    return posting


async def test_A1_each_financial_event_books_one_balanced_posting() -> None:
    app = in_memory(AccountingApplication)
    policy = RecordPostings(app, TOPICS)
    invoice, _, paid, allocated, credited, released, paid_out = events = financial_events()
    for event in events:
        await deliver(policy, event)

    assert lines_of(posting_of(app, invoice)) == {("receivables", 49900, 0), ("revenue", 0, 49900)}
    assert lines_of(posting_of(app, paid)) == {
        ("bank", 60000, 0), ("receivables", 0, 49900), ("customer_credit", 0, 10100)}
    assert lines_of(posting_of(app, allocated)) == {
        ("customer_credit", 10000, 0), ("receivables", 0, 10000)}
    assert lines_of(posting_of(app, credited)) == {("revenue", 20000, 0), ("receivables", 0, 20000)}
    assert lines_of(posting_of(app, released)) == {
        ("receivables", 20000, 0), ("customer_credit", 0, 20000)}
    payout = posting_of(app, paid_out)
    assert lines_of(payout) == {("customer_credit", 20000, 0), ("bank", 0, 20000)}
    assert payout.posting_date == date(2026, 11, 23)  # the payout's own posting date (rule B4)
    assert payout.source_event_type == "PayoutMarkedPaid" and payout.customer_id == "alice"
    for event in events:
        Posting.check_balanced(posting_of(app, event).lines)


async def test_A1_the_same_event_delivered_twice_books_once() -> None:
    app = in_memory(AccountingApplication)
    policy = RecordPostings(app, TOPICS)
    invoice = invoice_issued()

    at = await deliver(policy, invoice)
    await deliver(policy, invoice, at=at)  # the same message again (a consumer restarted)
    await deliver(policy, invoice)  # the relay published it again, at another offset

    assert posting_of(app, invoice).version == 1
    assert len(list(app.notification_log.select(start=1, limit=10))) == 1


async def test_B1_a_payout_draft_is_never_posted() -> None:
    app = in_memory(AccountingApplication)
    drafted = announced(PayoutDrafted, payout_id=uuid4(), refund_id=uuid4(), customer_id="alice",
                        amount=dkk(20000))
    await deliver(RecordPostings(app, TOPICS), drafted)

    assert app.get_or_none(Posting.create_id(drafted.event_id)) is None
    assert list(app.notification_log.select(start=1, limit=10)) == []


async def test_A1_an_invoice_of_zero_is_refused_and_books_nothing() -> None:
    """It would not balance on anything: a rule violation (dead-lettered by the consumer)."""
    app = in_memory(AccountingApplication)
    with pytest.raises(DomainRuleViolated, match="positive amount"):
        await deliver(RecordPostings(app, TOPICS), invoice_issued(0))
    assert list(app.notification_log.select(start=1, limit=10)) == []


async def test_M3_the_posting_carries_who_acted_and_is_published_in_minor_units() -> None:
    app = in_memory(AccountingApplication)
    invoice = invoice_issued(700, business_unit="bu-2")
    await deliver(RecordPostings(app, TOPICS), invoice)

    [recorded] = list(app.events.get(Posting.create_id(invoice.event_id)))
    assert recorded.meta["actor"] == "policy:accounting.record-postings"
    assert recorded.meta["causation_id"] == str(invoice.event_id)
    published = to_integration(recorded)
    assert isinstance(published, accounting_events.PostingRecorded)
    assert published.business_unit == "bu-2" and published.currency == "DKK"
    assert published.source_event_id == invoice.event_id
    assert [line.model_dump() for line in published.lines] == [
        {"account": "receivables", "debit": 700, "credit": 0},
        {"account": "revenue", "debit": 0, "credit": 700}]


async def test_A1_postings_listed_in_the_order_recorded_and_a_zero_trial_balance(tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        projection = LedgerProjection(db, ["saldo.accounting-sync.v1"])
        await projection.setup()
        app = in_memory(AccountingApplication)
        policy = RecordPostings(app, TOPICS)
        events = financial_events()
        for event in events:
            await deliver(policy, event)
        await deliver(policy, invoice_issued(300, business_unit="bu-2"))
        await project_published(app, to_integration, projection)
        await project_published(app, to_integration, projection)  # twice: each line once

        first = await queries.postings(db, "bu-1", Paging(4, BEGINNING))
        assert len(first.items) == 4 and first.next_cursor is not None
        rest = await queries.postings(db, "bu-1", Paging(4, decode_cursor(first.next_cursor)))
        assert len(rest.items) == 3 and rest.next_cursor is None

        # Oldest first, ties by id; each as the aggregate itself shows it, byte for byte.
        postings = sorted((posting_of(app, e) for e in events), key=lambda p: (p.created_on, str(p.id)))
        listed = first.items + rest.items
        assert [p.model_dump_json() for p in listed] == \
            [queries.PostingOut.of(p).model_dump_json() for p in postings]

        only = await queries.postings(db, "bu-1", Paging(10, BEGINNING), str(events[2].event_id))
        assert [p.source_event_type for p in only.items] == ["PaymentReceived"]
        assert len(only.items[0].lines) == 3

        balance = await queries.trial_balance(db, "bu-1")
        assert balance.model_dump(mode="json") == {"balanced": True, "currencies": {"DKK": {
            "accounts": {"bank": 40000, "customer_credit": -100, "receivables": 0,
                         "revenue": -39900}, "total": 0}}}
        other = await queries.trial_balance(db, "bu-2")  # rule M3: nothing of bu-1 in it
        assert other.model_dump(mode="json")["currencies"] == {
            "DKK": {"accounts": {"receivables": 300, "revenue": -300}, "total": 0}}
        assert (await queries.postings(db, "bu-2", Paging(10, BEGINNING), str(events[0].event_id))
                ).items == []


def test_a_posting_stored_before_amounts_were_money_is_read_as_money() -> None:
    """Posting.Recorded is class_version 2; version 1 stored one currency and integer lines."""
    app = in_memory(AccountingApplication)
    source_event_id = uuid4()
    posting_id = Posting.create_id(source_event_id)
    v1_state: dict[str, Any] = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-01T10:00:00+00:00"},
        "originator_topic": "saldo_accounting.domain:Posting",
        "meta": {"actor": "policy:accounting.record-postings"}, "business_unit": "bu-1",
        "source_event_id": {"_type_": "uuid_hex", "_data_": source_event_id.hex},
        "source_event_type": "PaymentReceived", "customer_id": "alice", "currency": "DKK",
        "posting_date": {"_type_": "date_iso", "_data_": "2026-11-01"},
        "lines": [{"account": "bank", "debit": 10000, "credit": 0},
                  {"account": "receivables", "debit": 0, "credit": 7000},
                  {"account": "customer_credit", "credit": 3000}],
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=posting_id, originator_version=1, topic="saldo_accounting.domain:Posting.Recorded",
        state=json.dumps(v1_state).encode())])

    posting: Posting = app.repository.get(posting_id)

    assert posting.currency == "DKK" and posting.posting_date == date(2026, 11, 1)
    assert [(line.account, line.debit, line.credit) for line in posting.lines] == [
        (Account.BANK, Money(10000, "DKK"), Money(0, "DKK")),
        (Account.RECEIVABLES, Money(0, "DKK"), Money(7000, "DKK")),
        (Account.CUSTOMER_CREDIT, Money(0, "DKK"), Money(3000, "DKK"))]
    Posting.check_balanced(posting.lines)

