"""Downloadable documents: an invoice or credit note as PDF, and as Peppol BIS 3 UBL 2.1 XML
for customers with an EAN (rule C3: they get their invoices as e-invoices)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response

from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.documents import Document, render_pdf, render_ubl
from saldo_invoicing.domain import Invoice
from saldo_invoicing.printing import credit_note_document, invoice_document
from saldo_kernel.errors import Conflict, NotFound
from saldo_platform.http.app import state
from saldo_platform.http.auth import Reader

router = APIRouter(tags=["documents"])

PDF: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}},
                                              "description": "the document as a PDF"}}
UBL: dict[int | str, dict[str, Any]] = {200: {"content": {"application/xml": {}},
                                              "description": "Peppol BIS Billing 3.0, UBL 2.1"}}


def app(request: Request) -> InvoicingApplication:
    return state(request, "application")  # type: ignore[no-any-return]


async def _invoice(request: Request, business_unit: str, invoice_id: UUID) -> Invoice:
    invoice: Invoice = await asyncio.to_thread(app(request).get_owned, invoice_id, business_unit, Invoice)
    return invoice


async def _credit_note(request: Request, business_unit: str, invoice_id: UUID,
                       credit_note_id: UUID) -> Document:
    invoice = await _invoice(request, business_unit, invoice_id)
    if credit_note_id not in invoice.credit_notes:
        raise NotFound(f"credit note {credit_note_id} of invoice {invoice_id} not found")
    issued = await asyncio.to_thread(app(request).credit_note_issued_on, invoice, credit_note_id)
    return credit_note_document(invoice, credit_note_id, issue_date=issued)


def _ubl(document: Document) -> Response:
    if document.buyer.ean is None:
        raise Conflict(f"{document.buyer.name} has no EAN: Peppol documents are for customers with an "
                       "EAN (rule C3); download the PDF instead")
    try:
        xml = render_ubl(document)
    except ValueError as e:  # e.g. a currency of three decimals, which Peppol does not allow
        raise Conflict(f"{document.number} cannot be a Peppol BIS 3 document: {e}") from e
    return Response(xml, media_type="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{document.number}.xml"'})


def _pdf(document: Document) -> Response:
    return Response(render_pdf(document), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{document.number}.pdf"'})


@router.get("/invoices/{invoice_id}/pdf", responses=PDF, response_class=Response)
async def invoice_pdf(invoice_id: UUID, who: Reader, request: Request) -> Response:
    """The invoice as a PDF, with its FIK payment line (rule I1)."""
    invoice = await _invoice(request, who.business_unit, invoice_id)
    issued = app(request).issued_on(invoice)
    return await asyncio.to_thread(_pdf, invoice_document(invoice, issue_date=issued))


@router.get("/invoices/{invoice_id}/ubl", responses=UBL, response_class=Response)
async def invoice_ubl(invoice_id: UUID, who: Reader, request: Request) -> Response:
    """The invoice as a Peppol BIS 3 UBL 2.1 Invoice, for a customer with an EAN (rule C3)."""
    invoice = await _invoice(request, who.business_unit, invoice_id)
    issued = app(request).issued_on(invoice)
    return _ubl(invoice_document(invoice, issue_date=issued))


@router.get("/invoices/{invoice_id}/credit-notes/{credit_note_id}/pdf", responses=PDF,
            response_class=Response)
async def credit_note_pdf(invoice_id: UUID, credit_note_id: UUID, who: Reader, request: Request) -> Response:
    """The credit note as a PDF, naming the invoice it credits (rule I3)."""
    document = await _credit_note(request, who.business_unit, invoice_id, credit_note_id)
    return await asyncio.to_thread(_pdf, document)


@router.get("/invoices/{invoice_id}/credit-notes/{credit_note_id}/ubl", responses=UBL,
            response_class=Response)
async def credit_note_ubl(invoice_id: UUID, credit_note_id: UUID, who: Reader, request: Request) -> Response:
    """The credit note as a Peppol BIS 3 UBL 2.1 CreditNote, for a customer with an EAN."""
    return _ubl(await _credit_note(request, who.business_unit, invoice_id, credit_note_id))
