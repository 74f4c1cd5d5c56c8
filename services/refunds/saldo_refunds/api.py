"""Refunds HTTP routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from saldo_events.envelope import BankAccount
from saldo_platform.context import Context
from saldo_platform.errors import NotFound
from saldo_platform.http.app import etag, state
from saldo_platform.http.auth import OPERATOR, READER, requires
from saldo_platform.http.bodies import MinorUnits, RequestBody
from saldo_platform.http.pages import Page, Paging, page_query
from saldo_refunds.application import RefundsApplication
from saldo_refunds.domain import PaymentAccount

router = APIRouter(tags=["refunds"])
Operator = Annotated[Context, Depends(requires(*OPERATOR))]
Reader = Annotated[Context, Depends(requires(*READER))]


class RequestRefund(RequestBody):
    payment_id: UUID
    amount: Annotated[MinorUnits, Field(description="minor units, at most the refundable amount")]
    reason: str = Field(min_length=1, max_length=500)
    channel: Literal["card", "mobilepay", "manual", "bank"] | None = Field(
        default=None, description="preselected from the payment's method when left out (rule R2)")
    bank_account: BankAccount | None = None


def app(request: Request) -> RefundsApplication:
    return state(request, "application")  # type: ignore[no-any-return]


@router.post("/refunds", status_code=201)
def request_refund(body: RequestRefund, who: Operator, request: Request,
                   response: Response) -> dict[str, Any]:
    refund = app(request).request_refund(
        who.business_unit, body.payment_id, body.amount, body.reason, body.channel,
        body.bank_account.model_dump(exclude_none=True) if body.bank_account else None,
    )
    response.headers["ETag"] = etag(refund.version)
    response.headers["Location"] = request.url_for("get_refund", refund_id=str(refund.id)).path
    return {"id": str(refund.id), "payment_id": str(refund.payment_id), "channel": refund.channel,
            "amount": {"amount": refund.amount, "currency": refund.currency},
            "status": refund.status, "version": refund.version}


@router.get("/payments/{payment_id}/refundable")
def refundable(payment_id: UUID, who: Reader, request: Request) -> dict[str, Any]:
    """What may still be refunded from one payment (rule P3), as the refunds service knows it."""
    account: PaymentAccount = app(request).get_owned(
        PaymentAccount.create_id(payment_id), who.business_unit, PaymentAccount)
    return {"payment_id": str(payment_id), "currency": account.currency,
            "amount": account.amount, "allocated": account.allocated,
            "in_progress": account.in_progress, "refunded": account.refunded,
            "refundable": account.refundable}


def _refund(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["refund_id"], "payment_id": row["payment_id"],
            "customer_id": row["customer_id"], "channel": row["channel"],
            "amount": {"amount": row["amount"], "currency": row["currency"]},
            "reason": row["reason"], "status": row["status"], "requested_at": row["requested_at"]}


@router.get("/refunds/{refund_id}")
async def get_refund(refund_id: UUID, who: Reader, request: Request) -> dict[str, Any]:
    row = await state(request, "db").fetchrow(
        "SELECT * FROM refunds WHERE refund_id = $1 AND business_unit = $2",
        str(refund_id), who.business_unit)
    if row is None:
        raise NotFound(f"refund {refund_id} not found")
    return _refund(row)


@router.get("/refunds")
async def list_refunds(who: Reader, request: Request,
                       paging: Annotated[Paging, Depends(page_query)]) -> Page:
    rows = await state(request, "db").fetch(
        "SELECT * FROM refunds WHERE business_unit = $1 AND refund_id > $2"
        " ORDER BY refund_id LIMIT $3", who.business_unit, paging.after or "", paging.limit + 1)
    return Page.of([_refund(r) for r in rows], paging.limit, cursor=lambda r: r["id"])
