"""Validated field types for HTTP bodies: bank accounts, EAN and CVR numbers, e-mail, countries,
time zones (rules M4, C1, M2).

A body that passes these is safe to store as an event: each type refuses what is not a real
identifier with a message naming the rule, and answers the value in one canonical spelling
(an IBAN without spaces, a BIC in capitals, an e-mail with its domain in lower case), so the
same account is never stored in two spellings. Used as field types in a service's `RequestBody`:

    class CustomerIn(RequestBody):
        email: Email
        bank_account: BankAccountIn | None = None

Pydantic then answers a 422 problem whose `errors` name the field (`body.bank_account.iban`).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import pycountry  # schwifty's own country list (ISO 3166-1), installed with it
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum import ean as gs1
from stdnum.dk import cvr

from saldo_platform.http.bodies import RequestBody


def _no_spaces(value: Any) -> Any:
    """People copy account numbers with spaces ("DK50 0040 …"); the value is the same."""
    return re.sub(r"\s+", "", value) if isinstance(value, str) else value


def _iban(value: str) -> str:
    if len(value) > 34:
        raise ValueError("not a valid IBAN (longer than 34 characters) (rule M4)")
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as e:
        raise ValueError(f"not a valid IBAN ({e}) (rule M4)") from None


def _bic(value: str) -> str:
    if len(value) not in (8, 11):
        raise ValueError("not a valid BIC (8 or 11 characters) (rule M4)")
    try:
        return str(BIC(value).compact)
    except SchwiftyException as e:
        raise ValueError(f"not a valid BIC ({e}) (rule M4)") from None


def _registration_number(value: str) -> str:
    if not re.fullmatch(r"[0-9]{4}", value):
        raise ValueError("a Danish registration number (reg.nr.) is 4 digits (rule M4)")
    return value


def _account_number(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,10}", value):
        raise ValueError("a Danish account number is 1 to 10 digits (rule M4)")
    return value


def _ean(value: str) -> str:
    if not (re.fullmatch(r"[0-9]{13}", value) and gs1.is_valid(value)):
        raise ValueError("an EAN (GLN) number is 13 digits ending in a GS1 check digit (rule C1)")
    return value


def _cvr(value: str) -> str:
    if not re.fullmatch(r"[0-9]{8}", value) or not cvr.is_valid(value):
        raise ValueError("a CVR number is 8 digits that pass the modulus-11 check (rule M4)")
    return value


def _email(value: str) -> str:
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as e:
        raise ValueError(f"not a valid e-mail address: {e} (rule C1)") from None


def _country(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{2}", value) or pycountry.countries.get(alpha_2=value) is None:
        raise ValueError("a country is an ISO 3166-1 alpha-2 code in capitals, e.g. DK (rule C1)")
    return value


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("a time zone is an IANA name, e.g. Europe/Copenhagen (rule M2)")
    return value


def _described(pattern: str | None, description: str, example: str, *, max_length: int) -> Any:
    """The JSON Schema a client reads; the functions above check and give the messages."""
    # Only described here: the checks are the functions', so every message names the rule.
    extra: dict[str, Any] = {"maxLength": max_length, **({"pattern": pattern} if pattern else {})}
    return Field(description=description, examples=[example], json_schema_extra=extra)


# A value is checked by its function after spaces are dropped, with a message naming the rule.
Iban = Annotated[str, BeforeValidator(_no_spaces), _described(
    "^[A-Z]{2}[0-9]{2}[A-Za-z0-9]{11,30}$", "IBAN, spaces allowed", "DK5000400440116243",
    max_length=34), AfterValidator(_iban)]
Bic = Annotated[str, BeforeValidator(_no_spaces), _described(
    "^[A-Za-z0-9]{8}([A-Za-z0-9]{3})?$", "BIC (SWIFT code), 8 or 11 characters", "DABADKKK",
    max_length=11), AfterValidator(_bic)]
DanishRegistrationNumber = Annotated[str, BeforeValidator(_no_spaces), _described(
    "^[0-9]{4}$", "the bank's registration number (reg.nr.), 4 digits", "1234", max_length=4),
    AfterValidator(_registration_number)]
DanishAccountNumber = Annotated[str, BeforeValidator(_no_spaces), _described(
    "^[0-9]{1,10}$", "the account number, up to 10 digits", "0001234567", max_length=10),
    AfterValidator(_account_number)]
Ean = Annotated[str, BeforeValidator(_no_spaces), _described(
    "^[0-9]{13}$", "EAN (GLN) location number: 13 digits ending in a GS1 check digit",
    "5790000435975", max_length=13), AfterValidator(_ean)]
CvrNumber = Annotated[str, BeforeValidator(_no_spaces), _described(
    "^[0-9]{8}$", "Danish CVR number: 8 digits with a modulus-11 check", "13585628", max_length=8),
    AfterValidator(_cvr)]
Email = Annotated[str, _described(None, "e-mail address", "anna@example.dk", max_length=254),
                  AfterValidator(_email)]
CountryCode = Annotated[str, _described("^[A-Z]{2}$", "ISO 3166-1 alpha-2 country code", "DK",
                                        max_length=2), AfterValidator(_country)]
TimeZoneName = Annotated[str, _described(None, "IANA time zone name", "Europe/Copenhagen",
                                         max_length=64), AfterValidator(_time_zone)]


class BankAccountIn(RequestBody):
    """A bank account, in exactly one of two shapes (rule M4): an IBAN with its BIC, or a Danish
    registration number with an account number."""

    iban: Iban | None = None
    bic: Bic | None = None
    registration_number: DanishRegistrationNumber | None = None
    account_number: DanishAccountNumber | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> BankAccountIn:
        international = (self.iban, self.bic)
        danish = (self.registration_number, self.account_number)
        if all(international) and not any(danish) or all(danish) and not any(international):
            return self
        raise ValueError("a bank account is either {iban, bic} or {registration_number, "
                         "account_number}, exactly one of the two, both fields of it (rule M4)")

    def as_dict(self) -> dict[str, str]:
        """The fields of its shape only, as the domains and contracts keep a bank account."""
        return self.model_dump(exclude_none=True)
