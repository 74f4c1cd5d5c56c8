"""Payouts' rules in process: the application, its policy and its read model, no servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from saldo_events import payouts as payout_events
from saldo_events.envelope import BankAccount
from saldo_events.envelope import Money as MoneyJSON
from saldo_events.refunds import RefundDrafted
from saldo_kernel.errors import Conflict
from saldo_kernel.money import Money
from saldo_payouts import queries
from saldo_payouts.api import router
from saldo_payouts.application import PayoutsApplication
from saldo_payouts.domain import Payout
from saldo_payouts.integration import to_integration
from saldo_payouts.policies import DraftPayoutForRefund
from saldo_payouts.projections import PayoutsProjection
from saldo_platform.http.pages import BEGINNING, Paging, decode_cursor
from tests.inprocess import (
    announced,
    deliver,
    in_memory,
    operator,
    project_published,
    read_models,
    serving,
    stored_v1,
)

ACCOUNT = BankAccount(registration_number="1234", account_number="0001234567")


def refund_drafted(bank_account: BankAccount | None = ACCOUNT, amount: int = 49900) -> RefundDrafted:
    return announced(RefundDrafted, refund_id=uuid4(), payment_id=uuid4(), customer_id="alice",
                     amount=MoneyJSON(amount=amount, currency="DKK"), reason="cancelled",
                     bank_account=bank_account)


async def test_B1_a_bank_refund_becomes_one_draft_payout_however_often_it_is_announced() -> None:
    app = in_memory(PayoutsApplication)
    policy = DraftPayoutForRefund(app, ["saldo.refunds.v1"])
    drafted = refund_drafted()

    await deliver(policy, drafted)
    await deliver(policy, drafted)  # the relay published it again, at another offset

    payout: Payout = app.repository.get(Payout.create_id(drafted.refund_id))
    assert payout.status == "draft" and payout.amount == Money(49900, "DKK")
    assert payout.version == 1
    assert payout.ready


async def test_B4_a_payout_is_paid_out_once_then_it_is_a_conflict() -> None:
    app = in_memory(PayoutsApplication)
    drafted = refund_drafted()
    await deliver(DraftPayoutForRefund(app, ["saldo.refunds.v1"]), drafted)
    payout_id = Payout.create_id(drafted.refund_id)

    with operator("bu-1"):
        paid = app.mark_paid_out(business_unit="bu-1", payout_id=payout_id)
        assert paid.status == "paid_out" and paid.posting_date == paid.bank_date
        with pytest.raises(Conflict, match="already paid out"):
            app.mark_paid_out(business_unit="bu-1", payout_id=payout_id)


async def test_M3_the_event_carries_who_acted() -> None:
    app = in_memory(PayoutsApplication)
    drafted = refund_drafted()
    await deliver(DraftPayoutForRefund(app, ["saldo.refunds.v1"]), drafted)
    with operator("bu-1"):
        app.mark_paid_out(business_unit="bu-1", payout_id=Payout.create_id(drafted.refund_id))

    events = list(app.events.get(Payout.create_id(drafted.refund_id)))
    assert events[0].meta["actor"] == "policy:payouts.draft-for-refund"
    assert events[1].meta["actor"] == "api-key:test"
    published = to_integration(events[1])
    assert isinstance(published, payout_events.PayoutMarkedPaid)
    assert published.actor == "api-key:test" and published.amount.amount == 49900


async def test_B2_ready_and_pending_lists_in_the_order_the_refunds_came(tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        projection = PayoutsProjection(db, ["saldo.payouts.v1"])
        await projection.setup()
        app = in_memory(PayoutsApplication)
        policy = DraftPayoutForRefund(app, ["saldo.refunds.v1"])
        for drafted in [refund_drafted(), refund_drafted(bank_account=None), refund_drafted()]:
            await deliver(policy, drafted)
        await project_published(app, to_integration, projection)

        ready = await queries.payouts(db, "bu-1", "ready", Paging(1, BEGINNING))
        assert len(ready.items) == 1 and ready.next_cursor is not None
        rest = await queries.payouts(db, "bu-1", "ready", Paging(5, decode_cursor(ready.next_cursor)))
        pending = await queries.payouts(db, "bu-1", "pending", Paging(5, BEGINNING))
        assert len(rest.items) == 1 and rest.next_cursor is None
        assert ready.items[0].drafted_at < rest.items[0].drafted_at  # oldest first
        assert [p.bank_account for p in pending.items] == [None]


def test_a_payout_stored_before_amounts_were_money_is_read_as_money() -> None:
    """Payout.Drafted is class_version 2; version 1 stored the amount and currency apart."""
    app = in_memory(PayoutsApplication)
    payout_id, refund_id = uuid4(), uuid4()
    v1_state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-01T10:00:00+00:00"},
        "originator_topic": "saldo_payouts.domain:Payout",
        "meta": {"actor": "api-key:old"}, "business_unit": "bu-1",
        "refund_id": {"_type_": "uuid_hex", "_data_": refund_id.hex}, "customer_id": "alice",
        "amount": 49900, "currency": "DKK", "bank_account": None,
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=payout_id, originator_version=1, topic="saldo_payouts.domain:Payout.Drafted",
        state=json.dumps(v1_state).encode())])

    payout: Payout = app.repository.get(payout_id)

    assert payout.amount == Money(49900, "DKK")
    assert payout.refund_id == refund_id and payout.status == "draft"


async def test_B4_marking_paid_out_answers_what_a_get_shows_and_a_pending_refund_is_refused(
        tmp_path: Path) -> None:
    async with read_models(tmp_path) as db:
        projection = PayoutsProjection(db, ["saldo.payouts.v1"])
        await projection.setup()
        app = in_memory(PayoutsApplication)
        policy = DraftPayoutForRefund(app, ["saldo.refunds.v1"])
        ready, pending = refund_drafted(), refund_drafted(bank_account=None)
        for drafted in (ready, pending):
            await deliver(policy, drafted)
        seen = await project_published(app, to_integration, projection)
        async with serving("payouts", router, app, db) as client:
            marked = await client.post(f"/v1/payouts/{Payout.create_id(ready.refund_id)}/mark-paid-out")
            assert marked.status_code == 200, marked.text
            assert marked.json()["status"] == "paid_out" and marked.headers["etag"] == '"2"'
            await project_published(app, to_integration, projection, seen)
            got = await client.get(f"/v1/payouts/{marked.json()['id']}")
            assert got.content == marked.content and got.headers["etag"] == '"2"'

            refused = await client.post(f"/v1/payouts/{Payout.create_id(pending.refund_id)}/mark-paid-out")
            assert refused.status_code == 409 and "pending refund" in refused.json()["detail"]
            assert refused.headers["content-type"].startswith("application/problem+json")


def test_a_payout_paid_out_before_amounts_were_money_is_read_and_published_as_before() -> None:
    """Payout.MarkedPaid is class_version 2 too: its version-1 record loads and is published."""
    app = in_memory(PayoutsApplication)
    payout_id, refund_id = uuid4(), uuid4()

    def v1(version: int, name: str, **state: Any) -> StoredEvent:
        return stored_v1("saldo_payouts.domain:Payout", payout_id, version, name, **state)

    refund = {"refund_id": {"_type_": "uuid_hex", "_data_": refund_id.hex}, "customer_id": "alice",
              "amount": 49900, "currency": "DKK"}
    paid_on = {"_type_": "date_iso", "_data_": "2026-11-02"}
    app.recorder.insert_events([
        v1(1, "Drafted", originator_topic="saldo_payouts.domain:Payout", business_unit="bu-1",
           bank_account={"iban": "DK5000400440116243"}, **refund),
        v1(2, "MarkedPaid", posting_date=paid_on, bank_date=paid_on, **refund),
    ])

    payout: Payout = app.repository.get(payout_id)
    assert (payout.status, payout.amount) == ("paid_out", Money(49900, "DKK"))
    published = to_integration(list(app.events.get(payout_id))[1])
    assert isinstance(published, payout_events.PayoutMarkedPaid)
    assert published.amount == MoneyJSON(amount=49900, currency="DKK")
