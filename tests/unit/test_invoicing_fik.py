"""The FIK payment reference, card type +71, with its modulus-10 check digit (rule I1)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saldo_invoicing.domain.fik import (
    LARGEST_INVOICE_NUMBER,
    InvalidFikReference,
    check_creditor_number,
    check_payment_id,
    fik_reference,
    invoice_number_of,
    is_valid_payment_id,
    luhn_check_digit,
    parse_fik_reference,
    payment_id,
)
from saldo_kernel.errors import DomainRuleViolated

invoice_numbers = st.integers(min_value=1, max_value=LARGEST_INVOICE_NUMBER)
creditor_numbers = st.from_regex(r"[0-9]{8}", fullmatch=True)


@pytest.mark.parametrize(("number", "check"), [
    ("7992739871", "3"),  # the textbook vector: 79927398713 is valid
    ("0", "0"),
    ("1", "8"),
    ("4992739871", "6"),
    ("1234567890", "3"),
    ("00000000000000", "0"),
    ("00000000000001", "8"),
    ("00000000001234", "4"),
])
def test_I1_luhn_check_digit_known_vectors(number: str, check: str) -> None:
    assert luhn_check_digit(number) == check


def test_I1_payment_id_is_the_invoice_number_padded_to_14_digits_plus_the_check_digit() -> None:
    assert payment_id(1) == "000000000000018"
    assert payment_id(1234) == "000000000012344"
    assert payment_id(79927398713 // 10) == "0000" + "7992739871" + "3"  # leading zeros weigh nothing
    assert payment_id(LARGEST_INVOICE_NUMBER) == "99999999999999" + luhn_check_digit("9" * 14)
    assert all(len(payment_id(n)) == 15 for n in (1, 10, 10**13, LARGEST_INVOICE_NUMBER))


def test_I1_the_printed_reference() -> None:
    assert fik_reference(1234, "85123456") == "+71000000000012344+85123456"


@pytest.mark.parametrize("invoice_number", [0, -1, 10**14, True, "12"])
def test_I1_an_invoice_number_that_does_not_fit_14_digits_is_refused(invoice_number: Any) -> None:
    with pytest.raises(InvalidFikReference, match="does not fit a FIK payment id"):
        payment_id(invoice_number)


@pytest.mark.parametrize("creditor", ["1234567", "123456789", "", "8512345a", "８５１２３４５６", "85 12345"])
def test_I1_a_creditor_number_is_exactly_8_digits(creditor: str) -> None:
    with pytest.raises(InvalidFikReference, match="is not 8 digits"):
        fik_reference(1, creditor)
    with pytest.raises(InvalidFikReference):
        check_creditor_number(creditor)


def test_I1_a_wrong_check_digit_is_refused_with_the_expected_one() -> None:
    with pytest.raises(InvalidFikReference, match="has check digit 5, but its digits give 4"):
        check_payment_id("000000000012345")
    with pytest.raises(InvalidFikReference, match="check digit"):
        parse_fik_reference("+71000000000012345+85123456")
    assert not is_valid_payment_id("000000000012345")


def test_I1_the_refusals_are_both_domain_rule_violations_and_value_errors() -> None:
    """An operator's bad input maps to a 4xx; parsing code may catch a plain ValueError."""
    for refuse in (lambda: payment_id(0), lambda: check_payment_id("1"), lambda: parse_fik_reference("x")):
        with pytest.raises(DomainRuleViolated):
            refuse()
        with pytest.raises(ValueError):
            refuse()


@pytest.mark.parametrize("value", [
    "", "00000000001234", "0000000000123440", "00000000001234a", "+00000000001234", "٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠",
])
def test_I1_a_payment_id_is_15_ascii_digits(value: str) -> None:
    assert not is_valid_payment_id(value)
    with pytest.raises(InvalidFikReference):
        check_payment_id(value)


@pytest.mark.parametrize("value", [
    "+71000000000012344+85123456",
    " +71000000000012344+85123456 ",
    "+71<000000000012344+85123456<",
    "+71< 000000000012344 +85123456<",
])
def test_I1_parse_reads_the_reference_as_printed_or_typed(value: str) -> None:
    assert parse_fik_reference(value) == ("71", "000000000012344", "85123456")
    assert invoice_number_of(parse_fik_reference(value)[1]) == 1234


@pytest.mark.parametrize(("value", "message"), [
    ("+73000000000012344+85123456", "card type \\+73 is not supported"),
    ("+01000000000012344+85123456", "card type \\+01"),
    ("71000000000012344+85123456", "is not a FIK reference"),
    ("+71000000000012344", "is not a FIK reference"),
    ("+7100000000012344+85123456", "is not 15 digits"),
    ("+71000000000012344+8512345", "is not 8 digits"),
    ("+71000000000012344+85123456+1", "is not a FIK reference"),
    ("", "is not a FIK reference"),
])
def test_I1_parse_refuses_what_is_not_a_card_type_71_reference(value: str, message: str) -> None:
    with pytest.raises(InvalidFikReference, match=message):
        parse_fik_reference(value)


@given(invoice_numbers, creditor_numbers)
def test_I1_round_trip(invoice_number: int, creditor: str) -> None:
    card_type, pid, parsed_creditor = parse_fik_reference(fik_reference(invoice_number, creditor))
    assert (card_type, parsed_creditor) == ("71", creditor)
    assert pid == payment_id(invoice_number) and is_valid_payment_id(pid)
    assert invoice_number_of(pid) == invoice_number


@given(invoice_numbers, st.integers(min_value=0, max_value=14), st.integers(min_value=1, max_value=9))
def test_I1_every_single_digit_change_is_detected(invoice_number: int, position: int, shift: int) -> None:
    pid = payment_id(invoice_number)
    changed = str((int(pid[position]) + shift) % 10)
    mistyped = pid[:position] + changed + pid[position + 1:]
    assert mistyped != pid
    assert not is_valid_payment_id(mistyped)


@given(invoice_numbers, st.integers(min_value=0, max_value=13))
def test_I1_every_adjacent_transposition_is_detected_except_09_and_90(
    invoice_number: int, position: int
) -> None:
    """Luhn's one known blind spot: swapping neighbouring 0 and 9 keeps the sum."""
    pid = payment_id(invoice_number)
    a, b = pid[position], pid[position + 1]
    swapped = pid[:position] + b + a + pid[position + 2:]
    if a == b or {a, b} == {"0", "9"}:
        return
    assert not is_valid_payment_id(swapped)


def test_I1_single_digit_changes_and_transpositions_exhaustively_for_one_id() -> None:
    """Every position and replacement for invoice 1234567 (hypothesis samples; this is all of them)."""
    pid = payment_id(1234567)
    for position in range(15):
        for digit in "0123456789":
            if digit != pid[position]:
                assert not is_valid_payment_id(pid[:position] + digit + pid[position + 1:])
    for position in range(14):
        a, b = pid[position], pid[position + 1]
        if a != b and {a, b} != {"0", "9"}:
            assert not is_valid_payment_id(pid[:position] + b + a + pid[position + 2:])


def test_I1_the_09_90_transposition_is_indeed_undetected() -> None:
    """Documents the limit the rule accepts rather than hiding it."""
    pid = payment_id(9)  # 000000000000009 + check
    swapped = pid[:12] + pid[13] + pid[12] + pid[14]
    assert pid[12:14] == "09" and is_valid_payment_id(swapped)


@pytest.mark.parametrize("digits", ["", "12a", "1 2", "²"])
def test_I1_luhn_is_computed_over_ascii_digits_only(digits: str) -> None:
    with pytest.raises(InvalidFikReference):
        luhn_check_digit(digits)
