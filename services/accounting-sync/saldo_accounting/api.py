"""Accounting HTTP routes: postings and the trial balance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from saldo_platform.context import Context
from saldo_platform.http.app import state
from saldo_platform.http.auth import READER, requires
from saldo_platform.http.pages import Page, Paging, page_query

router = APIRouter(tags=["accounting"])
Reader = Annotated[Context, Depends(requires(*READER))]


@router.get("/postings")
async def postings(who: Reader, request: Request, paging: Annotated[Paging, Depends(page_query)],
                   source_event_id: str | None = None) -> Page:
    lines = await state(request, "db").fetch(
        "SELECT * FROM posting_lines WHERE posting_id IN (SELECT posting_id FROM posting_lines"
        " WHERE line_no = 0 AND business_unit = $1 AND posting_id > $2"
        " AND ($3 = '' OR source_event_id = $3) ORDER BY posting_id LIMIT $4)"
        " ORDER BY posting_id, line_no",
        who.business_unit, paging.after or "", source_event_id or "", paging.limit + 1)
    grouped: dict[str, dict[str, Any]] = {}
    for line in lines:
        posting = grouped.setdefault(line["posting_id"], {
            "id": line["posting_id"], "source_event_id": line["source_event_id"],
            "source_event_type": line["source_event_type"], "customer_id": line["customer_id"],
            "currency": line["currency"], "posting_date": line["posting_date"], "lines": []})
        posting["lines"].append({"account": line["account"], "debit": line["debit"],
                                 "credit": line["credit"]})
    return Page.of(list(grouped.values()), paging.limit, cursor=lambda p: p["id"])


@router.get("/trial-balance")
async def trial_balance(who: Reader, request: Request) -> dict[str, Any]:
    """Balance per account and currency (debit − credit); the total is always zero (rule A1)."""
    rows = await state(request, "db").fetch(
        "SELECT currency, account, SUM(debit) AS debit, SUM(credit) AS credit FROM posting_lines"
        " WHERE business_unit = $1 GROUP BY currency, account ORDER BY currency, account",
        who.business_unit)
    currencies: dict[str, dict[str, Any]] = {}
    for r in rows:
        c = currencies.setdefault(r["currency"], {"accounts": {}, "total": 0})
        balance = int(r["debit"]) - int(r["credit"])
        c["accounts"][r["account"]] = balance
        c["total"] += balance
    return {"currencies": currencies,
            "balanced": all(c["total"] == 0 for c in currencies.values())}
