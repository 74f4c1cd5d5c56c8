"""The FIK payment reference on an invoice, card type +71 (rule I1).

A bank payment quoting `+71<payment id>+<creditor number>` can be matched to its invoice:
the payment id is the invoice number, zero-padded to 14 digits, followed by one modulus-10
(Luhn) check digit, so a mistyped digit or two swapped neighbours are caught before matching.
"""

from __future__ import annotations

import re
from typing import Literal

from saldo_kernel.errors import DomainRuleViolated

CARD_TYPE: Literal["71"] = "71"
INVOICE_NUMBER_DIGITS = 14
PAYMENT_ID_DIGITS = INVOICE_NUMBER_DIGITS + 1
CREDITOR_NUMBER_DIGITS = 8
LARGEST_INVOICE_NUMBER = 10**INVOICE_NUMBER_DIGITS - 1

# ASCII digits only: str.isdigit() would also accept "²" or Arabic-Indic digits.
_DIGITS = re.compile(r"[0-9]+")
_REFERENCE = re.compile(
    r"\+(?P<card_type>[0-9]{2})<?\s*(?P<payment_id>[0-9]+)\s*\+\s*(?P<creditor>[0-9]+)<?"
)


class InvalidFikReference(DomainRuleViolated, ValueError):
    """A FIK number, payment id or creditor number is malformed or its check digit is wrong.

    A DomainRuleViolated, so an operator's bad input becomes a 4xx naming rule I1, and a
    ValueError, so parsing code can treat it like any other unreadable value.
    """


def luhn_check_digit(digits: str) -> str:
    """The modulus-10 (Luhn) check digit that makes `digits + check` valid.

    From the rightmost digit leftwards the weights are 2, 1, 2, 1, ...; a doubled digit
    above 9 counts as the sum of its digits; the check digit tops the sum up to a multiple of 10.
    """
    if not _DIGITS.fullmatch(digits):
        raise InvalidFikReference(f"a check digit is computed over digits only, not {digits!r}")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _luhn_valid(digits: str) -> bool:
    return luhn_check_digit(digits[:-1]) == digits[-1]


def payment_id(invoice_number: int) -> str:
    """The 15-digit payment id of invoice `invoice_number`: 14 digits zero-padded, then the check digit."""
    if type(invoice_number) is not int or not 1 <= invoice_number <= LARGEST_INVOICE_NUMBER:
        raise InvalidFikReference(
            f"invoice number {invoice_number!r} does not fit a FIK payment id (rule I1): "
            f"it must be a whole number from 1 to {LARGEST_INVOICE_NUMBER}"
        )
    body = f"{invoice_number:0{INVOICE_NUMBER_DIGITS}d}"
    return body + luhn_check_digit(body)


def is_valid_payment_id(value: str) -> bool:
    """True for 15 digits whose last is the right check digit."""
    return len(value) == PAYMENT_ID_DIGITS and _DIGITS.fullmatch(value) is not None and _luhn_valid(value)


def invoice_number_of(payment_id_: str) -> int:
    """The invoice number a valid payment id stands for; InvalidFikReference if it is not valid."""
    check_payment_id(payment_id_)
    return int(payment_id_[:INVOICE_NUMBER_DIGITS])


def check_payment_id(value: str) -> str:
    """`value` if it is a valid 15-digit payment id; otherwise InvalidFikReference saying why."""
    if len(value) != PAYMENT_ID_DIGITS or not _DIGITS.fullmatch(value):
        raise InvalidFikReference(f"payment id {value!r} is not {PAYMENT_ID_DIGITS} digits (rule I1)")
    expected = luhn_check_digit(value[:-1])
    if value[-1] != expected:
        raise InvalidFikReference(
            f"payment id {value} has check digit {value[-1]}, but its digits give {expected}: "
            "a digit is mistyped or two are swapped (rule I1)"
        )
    return value


def check_creditor_number(value: str) -> str:
    """`value` if it is an 8-digit FIK creditor number; otherwise InvalidFikReference."""
    if len(value) != CREDITOR_NUMBER_DIGITS or not _DIGITS.fullmatch(value):
        raise InvalidFikReference(
            f"FIK creditor number {value!r} is not {CREDITOR_NUMBER_DIGITS} digits (rule I1)"
        )
    return value


def fik_reference(invoice_number: int, creditor_number: str) -> str:
    """The reference printed on the invoice: `+71` + the 15-digit payment id + `+` + the 8-digit
    creditor number, e.g. invoice 1234, creditor 85123456 → "+71000000000012344+85123456"."""
    check_creditor_number(creditor_number)
    return f"+{CARD_TYPE}{payment_id(invoice_number)}+{creditor_number}"


def parse_fik_reference(value: str) -> tuple[Literal["71"], str, str]:
    """(card type "71", payment id, creditor number) from a FIK reference as a payer types it.

    Spaces around the parts and the "<" of the printed slip (`+71< 000000000012343 +85123456<`)
    are tolerated; anything else (another card type, wrong lengths, a wrong check digit) raises
    InvalidFikReference, a ValueError.
    """
    text = value.strip()
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise InvalidFikReference(
            f"{value!r} is not a FIK reference; it reads +71<15-digit payment id>+<8-digit creditor number>"
        )
    if match["card_type"] != CARD_TYPE:
        raise InvalidFikReference(
            f"FIK card type +{match['card_type']} is not supported; invoices carry card type +71 (rule I1)"
        )
    return CARD_TYPE, check_payment_id(match["payment_id"]), check_creditor_number(match["creditor"])
