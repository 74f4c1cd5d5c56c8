"""ISO 4217 currencies (rules M1, M6), from the maintained `iso4217` package.

That package ships the ISO 4217 maintenance agency's current list with each currency's minor
unit. Codes without a minor unit are not money that can be counted in øre or cents: XXX ("no
currency"), XTS ("for testing"), precious metals (XAU, …) and accounting units (XDR, XBA, …).
They are refused like codes that do not exist at all.
"""

from __future__ import annotations

from iso4217 import Currency

MINOR_UNITS: dict[str, int] = {c.code: c.exponent for c in Currency if c.exponent is not None}


def check_currency(code: str) -> str:
    """The code itself, if it names a real currency; ValueError (a 422 in an HTTP body) if not."""
    if code not in MINOR_UNITS:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. DKK, EUR, SEK, NOK)")
    return code


def format_money(amount: int, currency: str) -> str:
    """Minor units as an operator reads them: 100000 DKK → "1,000.00 DKK" (messages only)."""
    exponent = MINOR_UNITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    text = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    return f"{sign}{text} {currency}"
