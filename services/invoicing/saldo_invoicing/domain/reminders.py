"""When an unpaid invoice's next reminder is due (rule I4). Pure: dates in, a date out."""

from __future__ import annotations

from datetime import date, timedelta


def next_reminder(*, due_date: date, schedule: list[int], sent: list[date]) -> date | None:
    """The business date from which the next reminder is due, or None when the schedule is done.

    Reminder n is due `schedule[n]` days after the due date. When reminders fell behind (the
    job did not run, or the invoice was paid and then reopened, I3) they resume one at a time:
    never closer to the previous reminder than the schedule spaces them.
    """
    n = len(sent)
    if n >= len(schedule):
        return None
    due = due_date + timedelta(days=schedule[n])
    if n:
        due = max(due, sent[-1] + timedelta(days=schedule[n] - schedule[n - 1]))
    return due
