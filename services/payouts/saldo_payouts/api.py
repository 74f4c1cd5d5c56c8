"""Payouts HTTP routes."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from saldo_payouts import queries
from saldo_payouts.application import PayoutsApplication
from saldo_payouts.queries import PayoutOut
from saldo_platform.http.app import etag, found_or_404, state
from saldo_platform.http.auth import Operator, Reader
from saldo_platform.http.pages import Page, Pages

router = APIRouter(tags=["payouts"])


@router.get("/payouts/ready", summary="Refunds ready for bank payout", response_model=Page[PayoutOut])
async def ready(who: Reader, request: Request, paging: Pages) -> Page[PayoutOut]:
    return await queries.payouts(state(request, "db"), who.business_unit, "ready", paging)


@router.get("/payouts/pending", summary="Pending refunds (no bank account yet)",
            response_model=Page[PayoutOut])
async def pending(who: Reader, request: Request, paging: Pages) -> Page[PayoutOut]:
    return await queries.payouts(state(request, "db"), who.business_unit, "pending", paging)


@router.get("/payouts/{payout_id}", response_model=PayoutOut)
async def get_payout(payout_id: UUID, who: Reader, request: Request, response: Response) -> PayoutOut:
    found = await queries.payout(state(request, "db"), who.business_unit, payout_id)
    return found_or_404(found, response, f"payout {payout_id}")


@router.post("/payouts/{payout_id}/mark-paid-out", response_model=PayoutOut)
def mark_paid_out(payout_id: UUID, who: Operator, request: Request, response: Response) -> PayoutOut:
    """The bank has paid the payout out: it leaves the draft state and is posted (rule B4)."""
    application: PayoutsApplication = state(request, "application")
    payout = application.mark_paid_out(business_unit=who.business_unit, payout_id=payout_id)
    response.headers["ETag"] = etag(payout.version)
    return PayoutOut.of(payout)
