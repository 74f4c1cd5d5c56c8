"""Invoice and credit-note documents over HTTP, in process: PDF for everyone, Peppol BIS 3 UBL
for customers with an EAN (rules C3, I1, I3), from the invoice as it was issued (M4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from lxml import etree

from saldo_invoicing.api import router
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.documents import validate_ubl
from saldo_invoicing.domain import InvoiceLine
from saldo_kernel.money import Money
from tests.inprocess import (
    in_memory,
    operator,
    read_models,
    register_customer,
    serving,
    set_up_business_unit,
)

EAN = "5790000435975"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


@pytest.fixture
async def invoicing(tmp_path: Path) -> AsyncIterator[tuple[InvoicingApplication, httpx.AsyncClient]]:
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app, "bu-1")
    register_customer(app, "bu-1", "public-library", ean=EAN, name="Aarhus Kommune, Bibliotek")
    register_customer(app, "bu-1", "alice", name="Alice Ærø")
    async with read_models(tmp_path) as db, serving("invoicing", router, app, db) as client:
        yield app, client


def issue(app: InvoicingApplication, customer_id: str, amount: int = 49900) -> str:
    with operator("bu-1"):
        invoice = app.issue_invoice(
            business_unit="bu-1", customer_id=customer_id, due_date=date(2026, 12, 31),
            lines=[InvoiceLine(description="Bladet, 12 måneder", amount=Money(amount, "DKK"))])
    return str(invoice.id)


def text(xml: bytes, element: str) -> list[str]:
    return [e.text or "" for e in etree.fromstring(xml).iter(f"{{{CBC}}}{element}")]


async def test_C3_an_ean_customers_invoice_is_a_valid_peppol_ubl_invoice_with_its_fik_reference(
        invoicing: tuple[InvoicingApplication, httpx.AsyncClient]) -> None:
    app, client = invoicing
    invoice_id = issue(app, "public-library")
    answer = await client.get(f"/v1/invoices/{invoice_id}/ubl")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/xml"
    validate_ubl(answer.content)  # the official UBL 2.1 schema accepts it
    invoice = app.repository.get(invoice_id)
    assert text(answer.content, "EndpointID")[-1] == EAN  # the buyer's Peppol address
    assert text(answer.content, "PaymentID") == [f"71#{invoice.payment_reference[3:18]}"]  # I1
    assert text(answer.content, "PayableAmount") == ["499.00"]


async def test_I1_every_invoice_has_a_pdf_with_its_fik_line(
        invoicing: tuple[InvoicingApplication, httpx.AsyncClient]) -> None:
    app, client = invoicing
    answer = await client.get(f"/v1/invoices/{issue(app, 'alice')}/pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-") and answer.content.rstrip().endswith(b"%%EOF")


async def test_C3_a_customer_without_an_ean_gets_no_ubl_document(
        invoicing: tuple[InvoicingApplication, httpx.AsyncClient]) -> None:
    app, client = invoicing
    answer = await client.get(f"/v1/invoices/{issue(app, 'alice')}/ubl")
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert "has no EAN" in answer.json()["detail"]


async def test_I3_a_credit_note_is_a_ubl_credit_note_naming_its_invoice_and_a_pdf(
        invoicing: tuple[InvoicingApplication, httpx.AsyncClient]) -> None:
    app, client = invoicing
    invoice_id = issue(app, "public-library")
    credit = await client.post(f"/v1/invoices/{invoice_id}/credit-notes",
                               json={"amount": 10000, "reason": "two issues missing"})
    assert credit.status_code == 201, credit.text
    base = f"/v1/invoices/{invoice_id}/credit-notes/{credit.json()['id']}"
    ubl = await client.get(f"{base}/ubl")
    assert ubl.status_code == 200, ubl.text
    validate_ubl(ubl.content)
    assert etree.fromstring(ubl.content).tag.endswith("}CreditNote")
    number = str(app.repository.get(invoice_id).number)
    ids = text(ubl.content, "ID")
    assert ids[0] == f"{number}-1"  # numbered after its invoice
    assert number in ids[1:]  # BillingReference: the invoice it credits (BR-55)
    assert text(ubl.content, "PayableAmount") == ["100.00"]
    pdf = await client.get(f"{base}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


async def test_M3_documents_of_another_unit_or_unknown_ones_are_not_found(
        invoicing: tuple[InvoicingApplication, httpx.AsyncClient]) -> None:
    app, client = invoicing
    set_up_business_unit(app, "bu-2")
    register_customer(app, "bu-2", "bob")
    with operator("bu-2"):
        theirs = app.issue_invoice(business_unit="bu-2", customer_id="bob", due_date=date(2026, 12, 31),
                                   lines=[InvoiceLine(description="x", amount=Money(100, "DKK"))])
    for path in (f"/v1/invoices/{theirs.id}/pdf", f"/v1/invoices/{theirs.id}/ubl",
                 f"/v1/invoices/{issue(app, 'alice')}/credit-notes/{theirs.id}/pdf"):
        answer = await client.get(path)
        assert answer.status_code == 404, (path, answer.text)


async def test_C3_a_currency_peppol_cannot_carry_is_a_409_naming_the_rule_not_a_500(tmp_path: Path) -> None:
    """Peppol amounts have at most two decimals (BR-DEC); Saldo never rounds money to fit (M1)."""
    app = in_memory(InvoicingApplication)
    set_up_business_unit(app, "bu-1", currency="BHD")
    register_customer(app, "bu-1", "ministry", ean=EAN)
    with operator("bu-1"):
        invoice = app.issue_invoice(business_unit="bu-1", customer_id="ministry", due_date=date(2026, 12, 31),
                                    lines=[InvoiceLine(description="Bladet", amount=Money(12345, "BHD"))])
    async with read_models(tmp_path) as db, serving("invoicing", router, app, db) as client:
        ubl = await client.get(f"/v1/invoices/{invoice.id}/ubl")
        assert ubl.status_code == 409, ubl.text
        assert "BR-DEC" in ubl.json()["detail"]
        pdf = await client.get(f"/v1/invoices/{invoice.id}/pdf")  # the PDF prints 12.345 BHD
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
