"""Invoices, credit notes and reminders by e-mail, through the platform's mail outbox.

Two steps, each exactly once:

1. `DocumentMailsProjection` turns InvoiceIssued, CreditNoteIssued and ReminderSent into a
   request row, in the same transaction as its consumer offset.
2. The `document-mails` job renders each request's PDF from the invoice as issued and, in one
   transaction, queues the mail (keyed, so never twice) and deletes the request. The outbox's
   sender job delivers it (saldo_platform.mail).

Who gets what (rule C3): an invoice and its credit notes are mailed when the invoice's channel
is `email` (a PDF and a payment link); other channels deliver otherwise (Peppol, Betalingsservice,
paper, the card). A reminder (I4) is mailed to every customer: each has an e-mail address (C1).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

from saldo_events import invoicing
from saldo_events.envelope import IntegrationEvent
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.documents import render_pdf
from saldo_invoicing.domain import Invoice
from saldo_invoicing.printing import credit_note_document, invoice_document
from saldo_platform.http.pages import sortable_time
from saldo_platform.jobs import Job
from saldo_platform.mail import Attachment, Mail, enqueue
from saldo_platform.projection import Projection
from saldo_platform.service import ServiceRuntime
from saldo_platform.sql import Executor

BATCH = 50


class DocumentMailsProjection(Projection):
    name = "invoicing.document-mails"
    read_model = False  # a queue: the job deletes each request once its mail is queued
    schema = {
        "document_mails": """(
            mail_key TEXT NOT NULL, business_unit TEXT NOT NULL, kind TEXT NOT NULL,
            invoice_id TEXT NOT NULL, credit_note_id TEXT, reminder BIGINT,
            requested_at TEXT NOT NULL, PRIMARY KEY (business_unit, mail_key))""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, invoicing.InvoiceIssued):
            await self._request(tx, event, f"invoice:{event.invoice_id}", "invoice", event.invoice_id)
        elif isinstance(event, invoicing.CreditNoteIssued):
            await self._request(tx, event, f"credit-note:{event.credit_note_id}", "credit_note",
                                event.invoice_id, credit_note_id=event.credit_note_id)
        elif isinstance(event, invoicing.ReminderSent):
            await self._request(tx, event, f"reminder:{event.invoice_id}:{event.number}", "reminder",
                                event.invoice_id, reminder=event.number)

    async def _request(self, tx: Executor, event: IntegrationEvent, key: str, kind: str, invoice_id: UUID,
                       *, credit_note_id: UUID | None = None, reminder: int | None = None) -> None:
        await tx.execute(self.sql(
            "INSERT INTO {document_mails} (mail_key, business_unit, kind, invoice_id, credit_note_id,"
            " reminder, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"),
            key, event.business_unit, kind, str(invoice_id),
            str(credit_note_id) if credit_note_id else None, reminder, sortable_time(event.occurred_at))


def mail_of(app: InvoicingApplication, kind: str, invoice: Invoice, key: str, *,
            credit_note_id: UUID | None, reminder: int | None, payment_link: str | None) -> Mail | None:
    """The mail a request asks for, or None when the invoice goes by another channel (C3)."""
    if invoice.buyer is None or invoice.buyer["email"] is None:
        return None  # issued before Saldo kept the buyer: no address to write to
    if kind != "reminder" and invoice.channel != "email":
        return None
    seller = invoice.seller["name"] if invoice.seller else ""
    greeting = f"Dear {invoice.buyer['name']},\n\n"
    online = ""
    if payment_link and invoice.payment_reference:  # "+71…" in a URL: "+" would read as a space
        reference = quote(invoice.payment_reference, safe="")
        online = f", or online: {payment_link.format(payment_reference=reference)}"
    pay = f"Pay with the FIK reference {invoice.payment_reference} in your online bank{online}.\n"
    if kind == "credit_note":
        assert credit_note_id is not None
        document = credit_note_document(invoice, credit_note_id,
                                        issue_date=app.credit_note_issued_on(invoice, credit_note_id))
        note = invoice.credit_notes[credit_note_id]
        subject = f"Credit note {document.number} for invoice {invoice.number} from {seller}"
        body = (greeting + f"we have credited {note.amount} on invoice {invoice.number}: {note.reason}.\n"
                "The credit note is attached.\n")
    else:
        document = invoice_document(invoice, issue_date=app.issued_on(invoice))
        if kind == "invoice":
            subject = f"Invoice {invoice.number} from {seller}"
            body = (greeting + f"invoice {invoice.number} of {invoice.total} is attached, due on "
                    f"{invoice.due_date}.\n" + pay)
        else:
            subject = f"Reminder {reminder}: invoice {invoice.number} from {seller} is overdue"
            body = (greeting + f"we have not yet received payment of invoice {invoice.number}, due on "
                    f"{invoice.due_date}: {invoice.total - invoice.paid - invoice.credited} is still "
                    "open. If you have paid in the meantime, please disregard this reminder.\n" + pay)
    return Mail(key=key, business_unit=invoice.business_unit, to=invoice.buyer["email"], subject=subject,
                body=body + f"\nKind regards,\n{seller}\n",
                attachments=[Attachment(f"{document.number}.pdf", "application/pdf", render_pdf(document))])


async def send_requested(runtime: ServiceRuntime) -> None:
    """Turn requests into queued mails, a batch at a time, until none is left or we stop."""
    app = runtime.application
    assert isinstance(app, InvoicingApplication)
    link = runtime.settings.payment_link
    while not runtime.stopping.is_set():
        rows = await runtime.db.fetch("SELECT * FROM document_mails ORDER BY requested_at LIMIT $1", BATCH)
        for row in rows:
            invoice: Invoice = await asyncio.to_thread(app.get_owned, UUID(row["invoice_id"]),
                                                       row["business_unit"], Invoice)
            mail = await asyncio.to_thread(
                mail_of, app, row["kind"], invoice, row["mail_key"], reminder=row["reminder"],
                credit_note_id=UUID(row["credit_note_id"]) if row["credit_note_id"] else None,
                payment_link=link)
            async with runtime.db.transaction() as tx:
                if mail is not None:
                    await enqueue(tx, mail)
                await tx.execute("DELETE FROM document_mails WHERE business_unit = $1 AND mail_key = $2",
                                 row["business_unit"], row["mail_key"])
        if len(rows) < BATCH:
            return


# One replica at a time: two would render the same PDFs (the outbox would still send one).
JOB = Job(name="document-mails", interval=timedelta(seconds=2), run=send_requested, exclusive=True)
