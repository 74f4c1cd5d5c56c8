"""Proration of a stopped subscription's period (rule C4): integers only, rounded once, conserved (M1, M6)."""

from __future__ import annotations

import ast
import inspect
import math
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saldo_invoicing.domain import proration
from saldo_invoicing.domain.proration import (
    days_in_period,
    days_unused,
    period_end,
    split,
    unused_share,
)
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import Money


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


totals = st.integers(min_value=0, max_value=10**12).map(dkk)


@st.composite
def shares(draw: st.DrawFn) -> tuple[int, int]:
    of = draw(st.integers(min_value=1, max_value=10**6))
    return draw(st.integers(min_value=0, max_value=of)), of


# -- period_end -------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "unit", "length", "end"), [
    (date(2026, 1, 1), "days", 30, date(2026, 1, 31)),
    (date(2026, 1, 1), "days", 365, date(2027, 1, 1)),
    (date(2026, 1, 1), "months", 1, date(2026, 2, 1)),
    (date(2026, 1, 1), "months", 12, date(2027, 1, 1)),
    (date(2026, 1, 31), "months", 1, date(2026, 2, 28)),
    (date(2028, 1, 31), "months", 1, date(2028, 2, 29)),  # leap year
    (date(2026, 1, 31), "months", 2, date(2026, 3, 31)),  # from the start, not the clamped Feb 28
    (date(2026, 3, 31), "months", 1, date(2026, 4, 30)),
    (date(2026, 11, 15), "months", 3, date(2027, 2, 15)),
    (date(2024, 2, 29), "months", 12, date(2025, 2, 28)),
    (date(2026, 12, 31), "days", 1, date(2027, 1, 1)),
])
def test_C4_period_end_is_exclusive_and_months_clamp_to_the_month_end(
    start: date, unit: Any, length: int, end: date
) -> None:
    assert period_end(start, unit, length) == end


@pytest.mark.parametrize(("unit", "length", "message"), [
    ("days", 0, "at least 1 \\(day or month\\), not 0"),
    ("months", -1, "at least 1 \\(day or month\\), not -1"),
    ("issues", 4, "days or months, not 'issues'"),
    ("weeks", 1, "days or months"),
    ("days", 1.0, "whole number"),
    ("months", True, "whole number"),
])
def test_C4_period_end_refuses_what_is_not_a_time_based_period(unit: Any, length: Any, message: str) -> None:
    with pytest.raises(DomainRuleViolated, match=message):
        period_end(date(2026, 1, 1), unit, length)


def test_C4_period_end_refuses_to_run_past_the_calendar() -> None:
    with pytest.raises(DomainRuleViolated, match="after the year 9999"):
        period_end(date(9999, 12, 1), "months", 1)
    with pytest.raises(DomainRuleViolated, match="after the year 9999"):
        period_end(date(9999, 12, 1), "days", 31)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), st.integers(1, 120))
def test_C4_a_month_period_keeps_the_day_or_ends_on_the_last_day_of_the_month(
    start: date, months: int
) -> None:
    end = period_end(start, "months", months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day == start.day or (end.day < start.day and (end + timedelta(days=1)).day == 1)
    assert end > start


# -- days_unused ------------------------------------------------------------------------------

def test_C4_days_unused_counts_from_the_first_day_not_served() -> None:
    start, end = date(2026, 1, 1), date(2026, 2, 1)
    assert days_unused(start, end, date(2026, 1, 1)) == 31  # stopped before anything was served
    assert days_unused(start, end, date(2026, 1, 11)) == 21
    assert days_unused(start, end, date(2026, 1, 31)) == 1
    assert days_unused(start, end, date(2026, 2, 1)) == 0  # served in full
    assert days_in_period(start, end) == 31


@pytest.mark.parametrize("stop_date", [date(2026, 3, 1), date(2025, 12, 31), date(2026, 2, 2)])
def test_C4_a_stop_date_outside_the_period_is_refused(stop_date: date) -> None:
    with pytest.raises(DomainRuleViolated) as refused:
        days_unused(date(2026, 1, 1), date(2026, 2, 1), stop_date)
    assert refused.value.detail == f"the stop date {stop_date} is outside the period 2026-01-01 – 2026-01-31"


def test_C4_a_period_ends_after_it_starts() -> None:
    with pytest.raises(DomainRuleViolated, match="is not after"):
        days_unused(date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1))


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.sampled_from(["days", "months"]),
    st.integers(1, 24),
    st.data(),
)
def test_C4_days_unused_over_random_periods_and_stop_dates(
    start: date, unit: Any, length: int, data: st.DataObject
) -> None:
    end = period_end(start, unit, length)
    stop_date = data.draw(st.dates(min_value=start, max_value=end))
    unused, whole = days_unused(start, end, stop_date), days_in_period(start, end)
    assert 0 <= unused <= whole
    assert unused + (stop_date - start).days == whole
    total = data.draw(totals)
    used, credit = split(total, unused=unused, of=whole)
    assert used + credit == total and Money.zero("DKK") <= credit <= total


# -- unused_share and split -------------------------------------------------------------------

def test_C4_worked_example_a_year_of_499_dkk_stopped_with_100_days_left() -> None:
    # 49900 × 100 / 365 = 13671.23… øre → 136.71 DKK credited, 362.29 DKK used.
    assert split(dkk(49900), unused=100, of=365) == (dkk(36229), dkk(13671))
    assert str(unused_share(dkk(49900), unused=100, of=365)) == "136.71 DKK"


@pytest.mark.parametrize(("total", "unused", "of", "credit"), [
    (49900, 31, 31, 49900),  # stopped on the first day: everything back
    (49900, 0, 31, 0),  # stopped on the last day: nothing back
    (49900, 15, 31, 24145),  # 24145.16… → 24145
    (9900, 1, 2, 4950),
    (5, 1, 2, 3),  # 2.5 → 3: half up, not to even
    (15, 1, 2, 8),  # 7.5 → 8
    (100, 1, 8, 13),  # 12.5 → 13
    (100, 1, 3, 33),  # 33.33… → 33
    (200, 1, 3, 67),  # 66.66… → 67
    (1, 1, 3, 0),
    (12900, 3, 12, 3225),  # issue-based: 3 of 12 issues not delivered
    (0, 5, 10, 0),
])
def test_C4_unused_share_rounds_once_half_up(total: int, unused: int, of: int, credit: int) -> None:
    assert unused_share(dkk(total), unused=unused, of=of) == dkk(credit)
    used, credited = split(dkk(total), unused=unused, of=of)
    assert credited == dkk(credit) and used == dkk(total - credit)


def test_C4_half_up_where_a_float_would_round_down() -> None:
    # Exact halves of large totals, and a total beyond a float's 53-bit mantissa.
    assert unused_share(dkk(10**12 + 1), unused=1, of=2) == dkk(500000000001)
    assert unused_share(dkk(2**53 + 1), unused=1, of=1) == dkk(2**53 + 1)
    assert unused_share(dkk(3 * 10**12 + 3), unused=1, of=6) == dkk(500000000001)  # 500000000000.5 → up


def test_C4_the_currency_is_kept() -> None:
    assert unused_share(Money(1000, "EUR"), unused=1, of=4) == Money(250, "EUR")
    assert split(Money(1000, "SEK"), unused=1, of=4) == (Money(750, "SEK"), Money(250, "SEK"))


@pytest.mark.parametrize(("total", "unused", "of", "message"), [
    (100, -1, 10, "between 0 and the whole 10"),
    (100, 11, 10, "between 0 and the whole 10"),
    (100, 0, 0, "at least 1"),
    (100, 1.0, 10, "whole number"),
    (100, 1, 10.0, "whole number"),
    (100, True, 10, "whole number"),
    (-100, 1, 10, "zero or more"),
])
def test_C4_unused_share_refuses_a_share_that_is_not_a_part_of_the_whole(
    total: int, unused: Any, of: Any, message: str
) -> None:
    with pytest.raises(DomainRuleViolated, match=message):
        unused_share(dkk(total), unused=unused, of=of)
    with pytest.raises(DomainRuleViolated, match=message):
        split(dkk(total), unused=unused, of=of)


@given(totals, shares())
def test_C4_the_parts_always_sum_to_the_total(total: Money, share: tuple[int, int]) -> None:
    unused, of = share
    used, credit = split(total, unused=unused, of=of)
    assert used + credit == total
    assert dkk(0) <= credit <= total and dkk(0) <= used <= total


@given(totals, shares())
def test_C4_the_credit_is_the_exact_share_rounded_once_half_up(total: Money, share: tuple[int, int]) -> None:
    unused, of = share
    exact = Fraction(total.minor_units * unused, of)
    expected = math.floor(exact + Fraction(1, 2))  # half up, the exact share being >= 0
    assert unused_share(total, unused=unused, of=of).minor_units == expected
    assert abs(Fraction(unused_share(total, unused=unused, of=of).minor_units) - exact) <= Fraction(1, 2)


@given(totals, shares())
def test_C4_more_unused_never_credits_less(total: Money, share: tuple[int, int]) -> None:
    unused, of = share
    if unused < of:
        assert unused_share(total, unused=unused, of=of) <= unused_share(total, unused=unused + 1, of=of)


@given(totals, st.integers(min_value=1, max_value=10**6))
def test_C4_nothing_unused_credits_nothing_and_all_unused_credits_the_total(total: Money, of: int) -> None:
    assert unused_share(total, unused=0, of=of) == dkk(0)
    assert unused_share(total, unused=of, of=of) == total
    assert split(total, unused=0, of=of) == (total, dkk(0))


def test_M1_proration_never_divides_with_a_float() -> None:
    """No true division (`/`) anywhere in the module: shares are computed with `//` on integers."""
    tree = ast.parse(inspect.getsource(proration))
    divisions = [node for node in ast.walk(tree) if isinstance(node, ast.Div)]
    assert divisions == []
    floats = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
    assert floats == []
    assert "float(" not in inspect.getsource(proration)
