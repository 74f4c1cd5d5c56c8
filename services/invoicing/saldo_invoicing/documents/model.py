"""What an invoice or credit-note document says, as plain frozen values. No I/O here.

The renderers (`pdf.py`, `ubl.py`) read only this, never an aggregate: the service builds a
`Document` from the invoice's snapshot of seller and buyer as they were when it was issued,
so a document rendered today says what the invoice said then.

The checks here are the ones a document cannot do without whatever produced it; a value that
breaks one is a programming error upstream (a ValueError naming the field), not a customer's
bad input: that was refused at the HTTP edge before anything was issued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from stdnum import ean

from saldo_invoicing.domain.fik import parse_fik_reference
from saldo_kernel.money import Money

DocumentKind = Literal["invoice", "credit_note"]
MAX_ADDRESS_LINES = 4

_COUNTRY = re.compile(r"[A-Z]{2}")
_CVR = re.compile(r"[0-9]{8}")
_EAN = re.compile(r"[0-9]{13}")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?")
_BANK_REGISTRATION = re.compile(r"[0-9]{4}")
_BANK_ACCOUNT = re.compile(r"[0-9]{1,10}")


def _text(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be non-empty text, not {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """The seller (a business entity) or the buyer (a customer) as printed on the document."""

    name: str
    address_lines: tuple[str, ...]  # 0 to 4 lines: street and number, c/o, …
    postal_code: str  # "" when unknown; an empty value is left out, never printed blank
    city: str
    country: str  # ISO 3166-1 alpha-2, e.g. "DK"
    registration_number: str | None = None  # Danish CVR number, 8 digits
    ean: str | None = None  # GLN/EAN location number, 13 digits: the buyer's Peppol address
    email: str | None = None

    def __post_init__(self) -> None:
        _text(self.name, "party name")
        lines = tuple(self.address_lines)
        object.__setattr__(self, "address_lines", lines)
        if len(lines) > MAX_ADDRESS_LINES or any(not _text(line, "address line") for line in lines):
            raise ValueError(f"a party has at most {MAX_ADDRESS_LINES} non-empty address lines: {lines!r}")
        if not _COUNTRY.fullmatch(self.country):
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code such as DK, not {self.country!r}")
        if self.registration_number is not None and not _CVR.fullmatch(self.registration_number):
            raise ValueError(f"a CVR number is 8 digits, not {self.registration_number!r}")
        if self.ean is not None and not (_EAN.fullmatch(self.ean) and ean.is_valid(self.ean)):
            raise ValueError(f"an EAN is 13 digits with a valid GS1 check digit, not {self.ean!r}")
        if self.email is not None:
            _text(self.email, "e-mail")


@dataclass(frozen=True, slots=True, kw_only=True)
class SellerAccount:
    """Where the buyer pays: an IBAN with its BIC, or a Danish registration and account number."""

    iban: str | None = None
    bic: str | None = None
    registration_number: str | None = None  # Danish bank registration number, 4 digits
    account_number: str | None = None  # Danish account number, up to 10 digits

    def __post_init__(self) -> None:
        international = self.iban is not None or self.bic is not None
        danish = self.registration_number is not None or self.account_number is not None
        if international == danish:
            raise ValueError("a seller account is either iban+bic or registration_number+account_number")
        if international:
            if self.iban is None or not _IBAN.fullmatch(self.iban):
                raise ValueError(f"an IBAN is written without spaces in capitals, not {self.iban!r}")
            if self.bic is None or not _BIC.fullmatch(self.bic):
                raise ValueError(f"a BIC is 8 or 11 capital letters and digits, not {self.bic!r}")
        else:
            if self.registration_number is None or not _BANK_REGISTRATION.fullmatch(self.registration_number):
                raise ValueError(f"a Danish bank registration number is 4 digits: {self.registration_number}")
            if self.account_number is None or not _BANK_ACCOUNT.fullmatch(self.account_number):
                raise ValueError(f"a Danish account number is 1 to 10 digits, not {self.account_number!r}")

    @classmethod
    def international(cls, iban: str, bic: str) -> SellerAccount:
        return cls(iban=iban, bic=bic)

    @classmethod
    def danish(cls, registration_number: str, account_number: str) -> SellerAccount:
        return cls(registration_number=registration_number, account_number=account_number)

    @property
    def is_iban(self) -> bool:
        return self.iban is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentLine:
    """One line: what was sold or credited and the line's total (not a unit price)."""

    description: str
    quantity: int = 1
    amount: Money

    def __post_init__(self) -> None:
        _text(self.description, "line description")
        if type(self.quantity) is not int or self.quantity < 1:
            raise ValueError(f"a line's quantity is a whole number from 1, not {self.quantity!r}")
        if not isinstance(self.amount, Money) or not self.amount.is_positive:
            raise ValueError(f"a line's amount is positive Money, not {self.amount!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """An invoice or a credit note, everything its PDF and its Peppol UBL say."""

    kind: DocumentKind
    number: str
    issue_date: date
    due_date: date | None  # invoices: required (EN 16931 BR-CO-25); credit notes: None
    seller: Party
    seller_account: SellerAccount | None
    buyer: Party
    lines: tuple[DocumentLine, ...]
    total: Money
    # The buyer's own reference (EN 16931 BT-10). Peppol requires it or an order reference
    # (PEPPOL-EN16931-R003); pass the customer id when the customer gave no reference of its own.
    buyer_reference: str | None = None
    payment_reference: str | None = None  # FIK "+71<15-digit payment id>+<8-digit creditor>" (I1)
    credited_invoice_number: str | None = None  # credit notes: the invoice they credit
    payment_message: str | None = None  # what the payer writes on a bank transfer (B5)
    note: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("invoice", "credit_note"):
            raise ValueError(f"a document is an invoice or a credit_note, not {self.kind!r}")
        _text(self.number, "document number")
        lines = tuple(self.lines)
        object.__setattr__(self, "lines", lines)
        if not lines:
            raise ValueError("a document has at least one line (EN 16931 BR-16)")
        currency = self.total.currency
        if any(line.amount.currency != currency for line in lines):
            raise ValueError(f"every line is in the document's currency {currency} (rule M1)")
        line_sum = sum((line.amount.minor_units for line in lines), 0)
        if line_sum != self.total.minor_units:
            raise ValueError(
                f"the lines add up to {Money(line_sum, currency)}, not the total {self.total} (BR-CO-10)")
        if self.kind == "invoice":
            if self.due_date is None:
                raise ValueError("an invoice has a due date (EN 16931 BR-CO-25)")
            if self.due_date < self.issue_date:
                raise ValueError(f"due date {self.due_date} is before issue date {self.issue_date}")
            if self.credited_invoice_number is not None:
                raise ValueError("only a credit note credits an invoice")
        else:
            if self.credited_invoice_number is None:
                raise ValueError("a credit note names the invoice it credits (credited_invoice_number)")
            _text(self.credited_invoice_number, "credited invoice number")
            if self.payment_reference is not None:
                raise ValueError("a credit note has nothing to pay, so no FIK payment reference")
        if self.payment_reference is not None:
            parse_fik_reference(self.payment_reference)  # raises InvalidFikReference (a ValueError)
        if self.buyer_reference is not None:
            _text(self.buyer_reference, "buyer reference")

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    def fik(self) -> tuple[str, str, str] | None:
        """(card type "71", 15-digit payment id, 8-digit creditor number), or None without FIK."""
        if self.payment_reference is None:
            return None
        return parse_fik_reference(self.payment_reference)
