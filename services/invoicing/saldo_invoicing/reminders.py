"""The reminders run (rule I4): per business unit, on its business date, each unpaid invoice
past its due date gets the reminder its schedule says is due, and no more.

Run by the service's scheduled job and by hand with `saldo reminders run [--date D]`. The read
model only picks candidates; each invoice decides for itself (`Invoice.reminder_due`), so an
invoice paid a moment ago is not reminded, and running twice on one day sends nothing new.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID
from zoneinfo import ZoneInfo

from saldo_invoicing.application import InvoicingApplication
from saldo_platform import businessdates
from saldo_platform.context import Context, acting, new_correlation_id
from saldo_platform.progress import ProgressBar
from saldo_platform.sql import Database

ACTOR = "job:reminders"


@dataclass
class RemindersRun:
    """What one run did, per business unit: (business date, candidates looked at, reminders sent)."""

    units: dict[str, tuple[date, int, int]] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(sent for _, _, sent in self.units.values())


async def run_reminders(app: InvoicingApplication, db: Database, *, on: date | None = None,
                        business_unit: str | None = None, progress: bool = False) -> RemindersRun:
    """`on` is the business date to run for (default: today in each unit's time zone, M2)."""
    run = RemindersRun()
    correlation_id = new_correlation_id()  # one per run: its reminders can be found together
    units = await db.fetch("SELECT business_unit, time_zone FROM business_entities"
                           " WHERE $1 = '' OR business_unit = $1 ORDER BY business_unit",
                           business_unit or "")
    for unit in units:
        name = unit["business_unit"]
        today = on or businessdates.today(ZoneInfo(unit["time_zone"]))
        candidates = await db.fetch(
            "SELECT invoice_id FROM invoices WHERE business_unit = $1 AND due_date < $2"
            " AND status IN ('open', 'partially_paid') ORDER BY number", name, today.isoformat())
        bar = ProgressBar(f"reminders {name} {today}", len(candidates), enabled=progress)
        sent = 0
        for row in candidates:
            sent += await asyncio.to_thread(_remind, app, name, row["invoice_id"], today, correlation_id)
            bar.step()
        bar.finish(f"{sent} reminders sent, {len(candidates)} unpaid invoices past due")
        run.units[name] = (today, len(candidates), sent)
    return run


def _remind(app: InvoicingApplication, business_unit: str, invoice_id: str, today: date,
            correlation_id: str) -> bool:
    with acting(Context(business_unit=business_unit, actor=ACTOR, correlation_id=correlation_id)):
        return app.send_reminder(business_unit=business_unit, invoice_id=UUID(invoice_id), today=today)
