"""Refunds HTTP routes."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from saldo_events.envelope import BankAccount
from saldo_platform.http.app import etag, found_or_404, state
from saldo_platform.http.auth import Operator, Reader
from saldo_platform.http.bodies import MinorUnits, RequestBody
from saldo_platform.http.pages import Page, Pages
from saldo_refunds import queries
from saldo_refunds.application import RefundsApplication
from saldo_refunds.domain import AvailableChannel, RefundChannel, is_available, not_available_yet
from saldo_refunds.queries import RefundableOut, RefundOut

router = APIRouter(tags=["refunds"])


def _offered(value: Any) -> Any:
    """A channel rule R2 names but the product cannot pay through yet is refused with that reason
    (a 422), not as an unknown word; the schema offers only the channels that work today."""
    if value in get_args(RefundChannel) and not is_available(value):
        raise PydanticCustomError("channel_not_available", not_available_yet(value))
    return value


class RequestRefund(RequestBody):
    payment_id: UUID
    amount: Annotated[MinorUnits, Field(description="minor units of the payment's currency, "
                                                    "at most the refundable amount (rules R1, P3)")]
    reason: str = Field(min_length=1, max_length=500)
    channel: Annotated[AvailableChannel | None, BeforeValidator(_offered)] = Field(
        default=None, description="preselected from the payment's method when left out (rule R2)")
    bank_account: BankAccount | None = None


def app(request: Request) -> RefundsApplication:
    return state(request, "application")  # type: ignore[no-any-return]


@router.post("/refunds", status_code=201, response_model=RefundOut)
def request_refund(body: RequestRefund, who: Operator, request: Request,
                   response: Response) -> RefundOut:
    refund = app(request).request_refund(
        business_unit=who.business_unit, payment_id=body.payment_id, minor_units=body.amount,
        reason=body.reason, channel=body.channel,
        bank_account=body.bank_account.model_dump(exclude_none=True) if body.bank_account else None,
    )
    response.headers["ETag"] = etag(refund.version)
    response.headers["Location"] = request.url_for("get_refund", refund_id=str(refund.id)).path
    return RefundOut.of(refund)


@router.get("/payments/{payment_id}/refundable", response_model=RefundableOut)
def refundable(payment_id: UUID, who: Reader, request: Request) -> RefundableOut:
    """What may still be refunded from one payment (rule P3), as the refunds service knows it."""
    account = app(request).payment_account(business_unit=who.business_unit, payment_id=payment_id)
    return RefundableOut.of(account)


@router.get("/refunds/{refund_id}", response_model=RefundOut)
async def get_refund(refund_id: UUID, who: Reader, request: Request, response: Response) -> RefundOut:
    found = await queries.refund(state(request, "db"), who.business_unit, refund_id)
    return found_or_404(found, response, f"refund {refund_id}")


@router.get("/refunds", response_model=Page[RefundOut])
async def list_refunds(who: Reader, request: Request, paging: Pages) -> Page[RefundOut]:
    """The refunds in the order they were requested."""
    return await queries.refunds(state(request, "db"), who.business_unit, paging)
