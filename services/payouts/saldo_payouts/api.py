"""Payouts HTTP routes."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from saldo_payouts.application import PayoutsApplication
from saldo_platform.context import Context
from saldo_platform.errors import NotFound
from saldo_platform.http.app import etag, state
from saldo_platform.http.auth import OPERATOR, READER, requires
from saldo_platform.http.pages import Page, Paging, page_query

router = APIRouter(tags=["payouts"])
Operator = Annotated[Context, Depends(requires(*OPERATOR))]
Reader = Annotated[Context, Depends(requires(*READER))]

LISTS = {
    # "Refunds ready for bank payout" and "Pending refunds" (rule B2).
    "ready": "status = 'draft' AND bank_account IS NOT NULL",
    "pending": "status = 'draft' AND bank_account IS NULL",
}


def _payout(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["payout_id"], "refund_id": row["refund_id"],
            "customer_id": row["customer_id"],
            "amount": {"amount": row["amount"], "currency": row["currency"]},
            "bank_account": json.loads(row["bank_account"]) if row["bank_account"] else None,
            "status": row["status"], "posting_date": row["posting_date"],
            "bank_date": row["bank_date"], "version": row["version"]}


async def _list(request: Request, business_unit: str, which: str, paging: Paging) -> Page:
    rows = await state(request, "db").fetch(
        f"SELECT * FROM payouts WHERE business_unit = $1 AND {LISTS[which]}"
        " AND payout_id > $2 ORDER BY payout_id LIMIT $3",
        business_unit, paging.after or "", paging.limit + 1)
    return Page.of([_payout(r) for r in rows], paging.limit, cursor=lambda r: r["id"])


@router.get("/payouts/ready", summary="Refunds ready for bank payout")
async def ready(who: Reader, request: Request, paging: Annotated[Paging, Depends(page_query)]) -> Page:
    return await _list(request, who.business_unit, "ready", paging)


@router.get("/payouts/pending", summary="Pending refunds (no bank account yet)")
async def pending(who: Reader, request: Request, paging: Annotated[Paging, Depends(page_query)]) -> Page:
    return await _list(request, who.business_unit, "pending", paging)


@router.get("/payouts/{payout_id}")
async def get_payout(payout_id: UUID, who: Reader, request: Request) -> dict[str, Any]:
    row = await state(request, "db").fetchrow(
        "SELECT * FROM payouts WHERE payout_id = $1 AND business_unit = $2",
        str(payout_id), who.business_unit)
    if row is None:
        raise NotFound(f"payout {payout_id} not found")
    return _payout(row)


@router.post("/payouts/{payout_id}/mark-paid-out")
def mark_paid_out(payout_id: UUID, who: Operator, request: Request, response: Response) -> dict[str, Any]:
    application: PayoutsApplication = state(request, "application")
    payout = application.mark_paid_out(who.business_unit, payout_id)
    response.headers["ETag"] = etag(payout.version)
    return {"id": str(payout.id), "status": payout.status,
            "posting_date": payout.posting_date.isoformat(),
            "bank_date": payout.bank_date.isoformat(), "version": payout.version}
