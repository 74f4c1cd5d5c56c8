"""An invoice or one of its credit notes as a `Document` to render (PDF, Peppol UBL).

From the invoice as it was issued: the buyer and seller snapshots it keeps, not today's
customer or business entity (rule M4), so a document printed again later is the same.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from saldo_invoicing.documents import Document, DocumentLine, Party, SellerAccount
from saldo_invoicing.domain import BilledParty, Invoice, Seller
from saldo_kernel.errors import Conflict


def invoice_document(invoice: Invoice, *, issue_date: date) -> Document:
    seller, buyer = _parties(invoice)
    return Document(
        kind="invoice", number=str(invoice.number), issue_date=issue_date, due_date=invoice.due_date,
        seller=_party(seller), seller_account=_account(seller), buyer=_party(buyer),
        lines=tuple(DocumentLine(description=line["description"], amount=line["amount"])
                    for line in invoice.lines),
        total=invoice.total, buyer_reference=invoice.customer_id,
        payment_reference=invoice.payment_reference,
        payment_message=f"{seller['payment_message_prefix']} {invoice.number}",
    )


def credit_note_document(invoice: Invoice, credit_note_id: UUID, *, issue_date: date) -> Document:
    """Numbered after its invoice: the invoice's number, "-", and the credit note's place (1, 2 …)."""
    seller, buyer = _parties(invoice)
    note = invoice.credit_notes[credit_note_id]
    place = list(invoice.credit_notes).index(credit_note_id) + 1
    return Document(
        kind="credit_note", number=f"{invoice.number}-{place}", issue_date=issue_date, due_date=None,
        seller=_party(seller), seller_account=_account(seller), buyer=_party(buyer),
        lines=(DocumentLine(description=note.reason, amount=note.amount),), total=note.amount,
        buyer_reference=invoice.customer_id, credited_invoice_number=str(invoice.number),
        payment_message=f"{seller['payment_message_prefix']} {invoice.number}-{place}",
    )


def _parties(invoice: Invoice) -> tuple[Seller, BilledParty]:
    if invoice.seller is None or invoice.buyer is None:
        raise Conflict(f"invoice {invoice.number} was issued before Saldo kept its buyer and seller; "
                       "it has no document")
    return invoice.seller, invoice.buyer


def _party(party: BilledParty) -> Party:
    return Party(name=party["name"], address_lines=tuple(party["address_lines"]),
                 postal_code=party["postal_code"], city=party["city"], country=party["country"] or "DK",
                 registration_number=party["registration_number"], ean=party["ean"],
                 email=party["email"])


def _account(seller: Seller) -> SellerAccount | None:
    account = seller["bank_account"]
    if not account:
        return None
    if "iban" in account:
        return SellerAccount.international(account["iban"], account["bic"])
    return SellerAccount.danish(account["registration_number"], account["account_number"])
