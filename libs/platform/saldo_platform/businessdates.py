"""Business dates are calendar dates in the business unit's time zone (rule M2).

Until the business entity carries its own zone (rule M4), every unit uses the default.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = ZoneInfo("Europe/Copenhagen")


def today(zone: ZoneInfo = DEFAULT_ZONE) -> date:
    return datetime.now(UTC).astimezone(zone).date()


def business_date(instant: datetime, zone: ZoneInfo = DEFAULT_ZONE) -> date:
    return instant.astimezone(zone).date()
