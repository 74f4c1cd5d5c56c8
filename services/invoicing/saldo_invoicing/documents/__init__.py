"""Invoice and credit-note documents: a PDF for people, Peppol BIS 3 UBL for EAN customers.

Pure rendering: a `Document` (plain values, built by the service from an invoice's snapshot)
in, bytes out. Nothing here reads the event store or the network.
"""

from saldo_invoicing.documents.model import Document, DocumentKind, DocumentLine, Party, SellerAccount
from saldo_invoicing.documents.pdf import render_pdf
from saldo_invoicing.documents.ubl import InvalidUblDocument, render_ubl, validate_ubl

__all__ = [
    "Document",
    "DocumentKind",
    "DocumentLine",
    "InvalidUblDocument",
    "Party",
    "SellerAccount",
    "render_pdf",
    "render_ubl",
    "validate_ubl",
]
