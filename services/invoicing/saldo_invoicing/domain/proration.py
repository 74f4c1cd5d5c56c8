"""The credit for the unused part of a subscription period (rule C4), in whole minor units.

Time-based periods are prorated by days, issue-based ones by issues not delivered. The share
is computed with integers only and rounded once, half up, so the used part and the credit
always add up to the invoiced total and no minor unit appears or vanishes (M1, M6).
Periods are half-open: `start` is the first day served, `end` the first day after the period.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Literal

from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money

TimeUnit = Literal["days", "months"]


def _whole_number(value: object, name: str) -> int:
    # bool is an int in Python, and a float share would reintroduce rounding errors.
    if type(value) is not int:
        raise DomainRuleViolated(f"{name} must be a whole number, not {value!r}")
    return value


def _add_months(start: date, months: int) -> date:
    """`start` moved by whole calendar months, clamped to the last day of a shorter month."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise DomainRuleViolated(f"a period of {months} months from {start} ends after the year 9999")
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def period_end(start: date, unit: TimeUnit, length: int) -> date:
    """The first day after a period of `length` days or calendar months starting on `start`.

    Months keep the day of the month, clamped to the month's end: Jan 31 + 1 month → Feb 28
    (Feb 29 in a leap year). Each end is computed from `start`, not from the previous end,
    so Jan 31 + 2 months is Mar 31. Issue-based periods have no end date.
    """
    _whole_number(length, "a period's length")
    if length < 1:
        raise DomainRuleViolated(f"a period's length is at least 1 (day or month), not {length}")
    if unit == "days":
        try:
            return start + timedelta(days=length)
        except OverflowError:
            raise DomainRuleViolated(
                f"a period of {length} days from {start} ends after the year 9999"
            ) from None
    if unit == "months":
        return _add_months(start, length)
    raise DomainRuleViolated(f"a time-based period is counted in days or months, not {unit!r}")


def _describe(start: date, end: date) -> str:
    # Operators read a period by its last day served, not by the exclusive end.
    return f"{start.isoformat()} – {(end - timedelta(days=1)).isoformat()}"


def days_in_period(start: date, end: date) -> int:
    """How many days the half-open period [start, end) serves; at least 1."""
    if end <= start:
        raise DomainRuleViolated(f"a period ends after it starts; {end} is not after {start}")
    return (end - start).days


def days_unused(start: date, end: date, stop_date: date) -> int:
    """Days of the period [start, end) not served when the subscription stops on `stop_date`.

    `stop_date` is the first day not served: stopping on `start` leaves the whole period unused,
    stopping on `end` leaves nothing. Any other date is refused.
    """
    days_in_period(start, end)
    if not start <= stop_date <= end:
        raise DomainRuleViolated(f"the stop date {stop_date} is outside the period {_describe(start, end)}")
    return (end - stop_date).days


def _check_share(total: Money, unused: int, of: int) -> None:
    _whole_number(unused, "the unused part")
    _whole_number(of, "the whole period")
    if of < 1:
        raise DomainRuleViolated(f"a period has at least 1 day or issue to share over, not {of}")
    if not 0 <= unused <= of:
        raise DomainRuleViolated(f"the unused part {unused} is not between 0 and the whole {of}")
    if total.minor_units < 0:
        raise DomainRuleViolated(f"only a total of zero or more is prorated, not {total}")


def unused_share(total: Money, *, unused: int, of: int) -> Money:
    """The credit for `unused` of `of` days (or issues): total × unused ÷ of, rounded half up once.

    0 <= credit <= total; unused = 0 gives nothing, unused = of the whole total.
    """
    _check_share(total, unused, of)
    # round(x) half up for x = a/b >= 0 is floor((2a + b) / 2b); integer division only.
    numerator = total.minor_units * unused
    return Money((2 * numerator + of) // (2 * of), total.currency)


def split(total: Money, *, unused: int, of: int) -> tuple[Money, Money]:
    """(used, credit): the part served and the part to credit, always adding up to `total`."""
    credit = unused_share(total, unused=unused, of=of)
    return total - credit, credit
