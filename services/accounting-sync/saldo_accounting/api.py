"""Accounting HTTP routes: postings and the trial balance (read only; postings come from events)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from saldo_accounting import queries
from saldo_accounting.queries import PostingOut, TrialBalanceOut
from saldo_platform.http.app import state
from saldo_platform.http.auth import Reader
from saldo_platform.http.pages import Page, Pages

router = APIRouter(tags=["accounting"])


@router.get("/postings", response_model=Page[PostingOut])
async def postings(who: Reader, request: Request, paging: Pages,
                   source_event_id: str | None = None) -> Page[PostingOut]:
    """Postings in the order they were recorded (rule A1: each one balances)."""
    return await queries.postings(state(request, "db"), who.business_unit, paging, source_event_id)


@router.get("/trial-balance", response_model=TrialBalanceOut)
async def trial_balance(who: Reader, request: Request) -> TrialBalanceOut:
    """Balance per account and currency (debit − credit); the total is always zero (rule A1)."""
    return await queries.trial_balance(state(request, "db"), who.business_unit)
