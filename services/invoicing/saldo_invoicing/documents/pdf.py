"""An invoice or credit note as an A4 PDF, drawn with fpdf2.

Fonts: DejaVu Sans (a Unicode TrueType font, embedded as a subset) when it is installed, so
any name prints, æøå ÆØÅ included. Debian ships it as `fonts-dejavu-core`, which most desktop
and many server images have, but a slim container may not: then the PDF falls back to the
PDF core fonts (Helvetica, Courier), which cover Latin-1 (æøå ÆØÅ are in it); a character
outside Latin-1 prints as "?" there. `render_pdf(..., unicode_font=False)` forces the
fallback (tests use it to check it).

Output is deterministic: the creation date is the document's issue date and nothing else
varies, so the same document gives the same bytes on the same machine with the same fonts.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

from saldo_invoicing.documents.model import Document, Party, SellerAccount

# Where Linux distributions put DejaVu: Debian/Ubuntu, Fedora/RHEL, Arch/Alpine.
FONT_DIRECTORIES = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_MONO_FILE = "DejaVuSansMono.ttf"

_CORE_ENCODING = "windows-1252"  # a superset of Latin-1's letters: also – € “ ” ‘ ’
_INK = (30, 30, 30)
_MUTED = (110, 110, 110)
_RULE = (190, 190, 190)
_LEFT = 20.0  # mm
_WIDTH = 170.0  # mm between the margins of an A4 page


@dataclass(frozen=True)
class Fonts:
    """The families the page uses and whether they can print any Unicode character."""

    text: str
    mono: str
    unicode: bool


def find_unicode_font() -> Path | None:
    """The directory holding DejaVu Sans (regular, bold, mono), or None if it is not installed."""
    for directory in FONT_DIRECTORIES:
        if all((directory / name).is_file() for name in (*_FONT_FILES.values(), _MONO_FILE)):
            return directory
    return None


class _Sheet(FPDF):
    """An A4 page with the seller's footer and a page count on every page."""

    def __init__(self, document: Document, fonts: Fonts) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.document = document
        self.faces = fonts

    def text_of(self, value: str) -> str:
        """`value` as the fonts can print it: the core fonts have Windows-1252 only."""
        if self.faces.unicode:
            return value
        return "".join(_core_char(char) for char in value)

    def footer(self) -> None:
        seller = self.document.seller
        self.set_y(-15)
        self.set_font(self.faces.text, "", 8)
        self.set_text_color(*_MUTED)
        parts = [seller.name]
        if seller.registration_number:
            parts.append(f"CVR {seller.registration_number}")
        if seller.email:
            parts.append(seller.email)
        self.cell(_WIDTH - 30, 5, self.text_of("  ·  ".join(parts)))
        self.cell(30, 5, f"Page {self.page_no()} of {{nb}}", align=Align.R)


def _core_char(char: str) -> str:
    """`char` if Windows-1252 has it, else its base letter (ő → o), else "?"."""
    for candidate in (char, unicodedata.normalize("NFKD", char)[:1]):
        try:
            candidate.encode(_CORE_ENCODING)
        except UnicodeEncodeError:
            continue
        return candidate
    return "?"


def _title(document: Document) -> str:
    return "Credit note" if document.is_credit_note else "Invoice"


def _address(party: Party, *, show_country: bool) -> list[str]:
    lines = list(party.address_lines)
    town = " ".join(part for part in (party.postal_code, party.city) if part)
    if town:
        lines.append(town)
    if show_country:
        lines.append(party.country)
    return lines


def _account_lines(account: SellerAccount) -> list[str]:
    if account.iban is not None:
        grouped = " ".join(account.iban[i:i + 4] for i in range(0, len(account.iban), 4))
        return [f"IBAN {grouped}", f"BIC {account.bic}"]
    return [f"Reg. no. {account.registration_number}  Account no. {account.account_number}"]


def _fik_code_line(document: Document) -> str | None:
    """The FIK code line as a Danish payment slip prints it: +71< payment id +creditor<."""
    fik = document.fik()
    if fik is None:
        return None
    card_type, payment_id, creditor = fik
    return f"+{card_type}< {payment_id} +{creditor}<"


def _seller_block(pdf: _Sheet) -> None:
    seller = pdf.document.seller
    pdf.set_xy(_LEFT, 18)
    pdf.set_font(pdf.faces.text, "B", 15)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(95, 7, pdf.text_of(seller.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.faces.text, "", 9)
    pdf.set_text_color(*_MUTED)
    details = _address(seller, show_country=seller.country != pdf.document.buyer.country)
    if seller.registration_number:
        details.append(f"CVR {seller.registration_number}")
    if seller.email:
        details.append(seller.email)
    for line in details:
        pdf.cell(95, 4.5, pdf.text_of(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _facts_block(pdf: _Sheet) -> None:
    """Title, number, dates and references, in the top right corner."""
    document = pdf.document
    pdf.set_xy(120, 18)
    pdf.set_font(pdf.faces.text, "B", 20)
    pdf.set_text_color(*_INK)
    pdf.cell(70, 9, _title(document), align=Align.R, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.ln(3)
    facts: list[tuple[str, str]] = [
        ("Credit note no." if document.is_credit_note else "Invoice no.", document.number),
        ("Date", document.issue_date.isoformat()),
    ]
    if document.due_date is not None:
        facts.append(("Due date", document.due_date.isoformat()))
    if document.credited_invoice_number is not None:
        facts.append(("Credits invoice no.", document.credited_invoice_number))
    if document.buyer_reference is not None:
        facts.append(("Your reference", document.buyer_reference))
    if document.buyer.ean is not None:
        facts.append(("EAN", document.buyer.ean))
    for label, value in facts:
        pdf.set_x(120)
        pdf.set_font(pdf.faces.text, "", 9)
        pdf.set_text_color(*_MUTED)
        pdf.cell(32, 5.5, label)
        pdf.set_font(pdf.faces.text, "B", 9)
        pdf.set_text_color(*_INK)
        pdf.cell(38, 5.5, pdf.text_of(value), align=Align.R, new_x=XPos.LEFT, new_y=YPos.NEXT)


def _buyer_block(pdf: _Sheet) -> None:
    """The buyer where a C5/DL envelope's window shows it (DIN 5008: 20 mm left, 45 mm down)."""
    buyer = pdf.document.buyer
    # Lower only when a long seller address reaches down that far.
    pdf.set_xy(_LEFT, max(50, pdf.get_y() + 4))
    pdf.set_font(pdf.faces.text, "", 8)
    pdf.set_text_color(*_MUTED)
    pdf.cell(85, 5, "Bill to" if not pdf.document.is_credit_note else "Credit to",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.faces.text, "B", 11)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(85, 5.5, pdf.text_of(buyer.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.faces.text, "", 10)
    for line in _address(buyer, show_country=buyer.country != pdf.document.seller.country):
        pdf.cell(85, 5, pdf.text_of(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _lines_table(pdf: _Sheet) -> None:
    document = pdf.document
    pdf.set_y(max(pdf.get_y(), 82) + 8)
    pdf.set_font(pdf.faces.text, "", 10)
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_RULE)
    with pdf.table(
        col_widths=(118, 17, 35),
        width=_WIDTH,
        text_align=(Align.L, Align.R, Align.R),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD", color=_MUTED, size_pt=9),
        line_height=6,
        padding=(1.5, 1, 1.5, 1),
    ) as table:
        heading = table.row()
        heading.cell("Description")
        heading.cell("Qty")
        heading.cell("Amount")
        for line in document.lines:
            row = table.row()
            row.cell(pdf.text_of(line.description))
            row.cell(str(line.quantity))
            row.cell(str(line.amount))
    pdf.ln(2)
    pdf.set_font(pdf.faces.text, "B", 11)
    label = "Total credited" if document.is_credit_note else "Total due"
    pdf.cell(_WIDTH - 50, 8, label, align=Align.R)
    pdf.cell(50, 8, str(document.total), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _payment_block(pdf: _Sheet) -> None:
    document = pdf.document
    pdf.ln(6)
    pdf.set_text_color(*_INK)
    pdf.set_font(pdf.faces.text, "B", 10)
    if document.is_credit_note:
        pdf.cell(_WIDTH, 6, "Credit", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(pdf.faces.text, "", 10)
        pdf.multi_cell(_WIDTH, 5.5, pdf.text_of(
            f"This credit note credits {document.total} on invoice no. {document.credited_invoice_number}."),
            new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    pdf.cell(_WIDTH, 6, "Payment", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.faces.text, "", 10)
    assert document.due_date is not None  # an invoice always has one (model checks BR-CO-25)
    pdf.cell(_WIDTH, 5.5, f"Please pay {document.total} no later than {document.due_date.isoformat()}.",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    code_line = _fik_code_line(document)
    if code_line is not None:
        pdf.ln(1)
        pdf.set_font(pdf.faces.text, "", 9)
        pdf.set_text_color(*_MUTED)
        pdf.cell(45, 6, "Payment slip (FIK)")
        pdf.set_font(pdf.faces.mono, "", 11)
        pdf.set_text_color(*_INK)
        pdf.cell(_WIDTH - 45, 6, code_line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if document.seller_account is not None:
        for index, line in enumerate(_account_lines(document.seller_account)):
            pdf.set_font(pdf.faces.text, "", 9)
            pdf.set_text_color(*_MUTED)
            pdf.cell(45, 5.5, "Bank transfer" if index == 0 else "")
            pdf.set_font(pdf.faces.text, "", 10)
            pdf.set_text_color(*_INK)
            pdf.cell(_WIDTH - 45, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if document.payment_message is not None:
        pdf.set_font(pdf.faces.text, "", 9)
        pdf.set_text_color(*_MUTED)
        pdf.cell(45, 5.5, "Payment message")
        pdf.set_font(pdf.faces.text, "", 10)
        pdf.set_text_color(*_INK)
        pdf.cell(_WIDTH - 45, 5.5, pdf.text_of(document.payment_message), new_x=XPos.LMARGIN,
                 new_y=YPos.NEXT)


def _note_block(pdf: _Sheet) -> None:
    if pdf.document.note is None:
        return
    pdf.ln(6)
    pdf.set_font(pdf.faces.text, "", 9)
    pdf.set_text_color(*_MUTED)
    pdf.multi_cell(_WIDTH, 4.8, pdf.text_of(pdf.document.note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _fonts_for(pdf: FPDF, unicode_font: bool) -> Fonts:
    directory = find_unicode_font() if unicode_font else None
    if directory is None:
        return Fonts(text="helvetica", mono="courier", unicode=False)
    for style, name in _FONT_FILES.items():
        pdf.add_font("dejavu", style, directory / name)
    pdf.add_font("dejavumono", "", directory / _MONO_FILE)
    return Fonts(text="dejavu", mono="dejavumono", unicode=True)


def render_pdf(document: Document, *, compress: bool = True, unicode_font: bool = True) -> bytes:
    """The document as a PDF file's bytes.

    `compress=False` leaves the page content streams readable (tests look into them);
    `unicode_font=False` uses the core-font fallback even where DejaVu is installed.
    """
    # Fonts are registered before the sheet knows them; a throwaway FPDF is not needed
    # because _Sheet only reads `fonts` while drawing.
    sheet = _Sheet(document, Fonts("helvetica", "courier", False))
    sheet.faces = _fonts_for(sheet, unicode_font)
    sheet.core_fonts_encoding = _CORE_ENCODING
    sheet.set_compression(compress)
    sheet.set_creation_date(datetime.combine(document.issue_date, time(0, 0), tzinfo=UTC))
    sheet.set_producer("Saldo")
    sheet.set_creator("Saldo invoicing")
    sheet.set_title(sheet.text_of(f"{_title(document)} {document.number}"))
    sheet.set_author(sheet.text_of(document.seller.name))
    sheet.set_lang("en")
    sheet.set_margins(_LEFT, 15, _LEFT)
    sheet.set_auto_page_break(True, margin=22)
    sheet.add_page()
    _facts_block(sheet)
    _seller_block(sheet)
    _buyer_block(sheet)
    _lines_table(sheet)
    _payment_block(sheet)
    _note_block(sheet)
    return bytes(sheet.output())
